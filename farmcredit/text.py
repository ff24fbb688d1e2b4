"""Wording shared by messages: a list cut short; how names compare when case and width do not tell them apart; a
number written with a decimal comma."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# A number written with a decimal comma, as European and Latin American spreadsheets save them: 0,53 or -1.234,5.
DECIMAL_COMMA = re.compile(r"^[+-]?[\d.]*\d,\d+$")


def some(names: Sequence[str], limit: int = 3) -> str:
    """Up to ``limit`` names, comma-separated, and how many more."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def composed(name: str) -> str:
    """``name`` in one Unicode form (NFC): a letter typed as one character or as a base and its mark (Bengali ড়,
    Devanagari ड़, é) alike, and nothing else changed; how region names match, exactly but for that."""
    return unicodedata.normalize("NFC", name)


def folded(name: str) -> str:
    """``name`` as a reader sees it: Unicode's compatibility form (full-width Ｗ as W, é one character or two alike,
    the ideographic space as a blank), outer blanks off, any case (NFKC, casefold)."""
    return unicodedata.normalize("NFKC", name).strip().casefold()
