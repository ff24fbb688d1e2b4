"""CSV as spreadsheets read it: UTF-8 with a byte-order mark, and text that would run as a formula quoted.

Excel reads a CSV as UTF-8 only when it starts with a byte-order mark (else in the system's code page: GBK on Chinese
Windows, where 地块 turns to garbage), and runs a cell starting with ``= + - @``, a tab or a carriage return as a
formula (an id such as ``=HYPERLINK(...)`` or ``+86 138...``). Such text is written after a quote mark, which Excel
shows as text and ``read_csv`` takes off again. Lines end in CRLF, as RFC 4180 and Excel write them: a carriage
return within a cell is then quoted, where a bare one would end the row (in Excel as in ``read_csv``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

# Text a spreadsheet would run as a formula, after any quote marks already guarding it.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (no index) for spreadsheets: UTF-8 with a BOM, CRLF line ends, formula-like text quoted."""
    _map_text(frame, _quoted).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def read_csv(path: Path, dtype: dict[str, type]) -> pd.DataFrame:
    """Read a CSV ``write_csv`` wrote (or any UTF-8 one, BOM or not), the text it quoted as written."""
    return _map_text(pd.read_csv(path, dtype=dtype), _unquoted)


def _map_text(frame: pd.DataFrame, change: Callable[[object], object]) -> pd.DataFrame:
    out = frame.copy()
    for column in out.select_dtypes(include=["object", "string"]).columns:
        out[column] = out[column].map(change)
    return out


def _quoted(value: object) -> object:
    return f"'{value}" if isinstance(value, str) and _FORMULA.match(value) else value


def _unquoted(value: object) -> object:
    return value[1:] if isinstance(value, str) and value.startswith("'") and _FORMULA.match(value, 1) else value
