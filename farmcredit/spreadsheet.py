"""CSV as spreadsheets read it: UTF-8 with a byte-order mark, and text a spreadsheet would run or change quoted.

Excel reads a CSV as UTF-8 only when it starts with a byte-order mark (else in the system's code page: GBK on Chinese
Windows, where 地块 turns to garbage), and runs a cell starting with ``= + - @``, a tab or a carriage return as a
formula (an id such as ``=HYPERLINK(...)`` or ``+86 138...``). It also reads text that looks like a number or a date
as one, and saves it as shown: ``0042`` becomes 42, ``12.10`` 12.1 (the same as ``12.1``), a number of 12 digits or
more is shown, and saved, as 1.23457E+11 (an 18-digit ID-card number keeps 15 digits even unshown), ``1E5`` becomes
100000 and ``3-4``, ``4-Mar`` or ``05/2024`` a date. Such text is
written after a quote mark, which Excel shows as text and ``read_csv`` takes off again. Lines end in CRLF, as RFC 4180
and Excel write them: a carriage return within a cell is then quoted, where a bare one would end the row (in Excel as in
``read_csv``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from farmcredit.errors import InputError

# Text a spreadsheet would run as a formula, after any quote marks already guarding it.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
# Text a spreadsheet would read as a number or a date, losing what was written: leading zeros, a decimal's trailing
# zeros, digits past the 11 its General format shows, an exponent, a day and month or month and year.
_MONTH = "(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_LOSSY = re.compile(rf"'*(0\d+|\d+\.\d*0|\d{{12,}}|\d+(\.\d*)?[eE][+-]?\d+|\d{{1,4}}[-/]\d{{1,2}}([-/]\d{{1,4}})?"
                    rf"|\d{{1,2}}/\d{{4}}|\d{{1,2}}-{_MONTH}|{_MONTH}-\d{{1,4}})",
                    re.IGNORECASE | re.ASCII)  # a spreadsheet reads 0-9 as digits, not ০-৯


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (no index) for spreadsheets: UTF-8 with a BOM, CRLF line ends, formula-like text quoted."""
    _map_text(frame, _quoted).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def read_csv(path: Path, dtype: dict[str, type], what: str) -> pd.DataFrame:
    """Read a CSV ``write_csv`` wrote (or any UTF-8 one, BOM or not), the text it quoted as written.

    Raises:
        InputError: it is not UTF-8 (``read_utf8_csv``), or it was cut short (``_refuse_cut``).
    """
    frame = read_utf8_csv(path, what, dtype)
    _refuse_cut(path, what)
    return _map_text(frame, unquoted)


def _refuse_cut(path: Path, what: str) -> None:
    """Refuse a UTF-8 CSV cut short, as a copy or download that stopped writes it: one not ending in a line break, or a
    row with fewer fields than the header (``pd.read_csv`` fills the missing cells with NaN and counts the row).

    Raises:
        InputError: naming the file and, for a short row, its line.
    """
    text = path.read_text(encoding="utf-8-sig")
    if text and not text.endswith(("\n", "\r")):
        raise InputError(f"{what} {path} does not end with a line break: it was cut short (a copy or download that did "
                         "not finish); copy or write it again")
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, [])
    for row in rows:
        if row and len(row) < len(header):
            raise InputError(f"{what} {path} has {len(row)} fields on line {rows.line_num} where its header has "
                             f"{len(header)}: it was cut short or edited; copy or write it again")


def read_utf8_csv(path: Path, what: str, dtype: dict[str, type] | None = None) -> pd.DataFrame:
    """``pd.read_csv`` of a UTF-8 CSV (BOM or not), the ``what`` file (as messages name it: "history file").

    Raises:
        InputError: it is not UTF-8 text (a CSV Excel saves on Chinese Windows is GBK), saying how to save it.
    """
    try:
        return pd.read_csv(path, dtype=dtype)
    except UnicodeDecodeError as exc:
        raise InputError(f'{what} {path} is not UTF-8 text ({exc.reason}); save it in Excel as "CSV UTF-8 (逗号分隔)'
                         '(*.csv)"') from exc


def _map_text(frame: pd.DataFrame, change: Callable[[object], object]) -> pd.DataFrame:
    out = frame.copy()
    for column in out.select_dtypes(include=["object", "string"]).columns:
        out[column] = out[column].map(change)
    return out


def _quoted(value: object) -> object:
    return f"'{value}" if isinstance(value, str) and _guarded(value, 0) else value


def unquoted(value: object) -> object:
    """``value`` as written where ``write_csv`` quoted it (``'000001`` is 000001, ``''0042`` is '0042); else as given.

    Example:
        >>> unquoted("'000001"), unquoted("'P1")
        ('000001', "'P1")
    """
    return value[1:] if isinstance(value, str) and value.startswith("'") and _guarded(value, 1) else value


def _guarded(text: str, start: int) -> bool:
    """Whether ``text`` from ``start`` is what a spreadsheet would run as a formula or change into a number or date."""
    return bool(_FORMULA.match(text, start) or _LOSSY.fullmatch(text, start))
