"""Figure fonts: Chinese ids and regions in a font that has their glyphs."""

from __future__ import annotations

import pytest
from matplotlib import font_manager

from farmcredit.fonts import CJK_FAMILIES, font_families


def test_a_cjk_font_installed_after_matplotlib_listed_its_fonts_is_found(monkeypatch: pytest.MonkeyPatch,
                                                                         cjk_font: None) -> None:
    """matplotlib caches its font list: a font installed later (as the README advises) was never seen."""
    cjk_files = {entry.fname for entry in font_manager.fontManager.ttflist if entry.name in CJK_FAMILIES}
    stale = [entry for entry in font_manager.fontManager.ttflist if entry.fname not in cjk_files]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)
    font_families.cache_clear()
    try:
        assert font_families()[0] == "DejaVu Sans" and font_families()[1] in CJK_FAMILIES
    finally:
        font_families.cache_clear()
