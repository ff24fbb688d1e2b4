"""Wording shared by messages: a list cut short."""

from __future__ import annotations

from collections.abc import Sequence


def some(names: Sequence[str], limit: int = 3) -> str:
    """Up to ``limit`` names, comma-separated, and how many more."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
