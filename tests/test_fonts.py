"""Figure fonts: Chinese and Hindi ids and regions in a font that has their glyphs."""

from __future__ import annotations

import pytest
from matplotlib import font_manager

from farmcredit.fonts import CJK_FAMILIES, SCRIPT_FAMILIES, font_families


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


def test_a_devanagari_font_is_drawn_in_behind_the_chinese_one(monkeypatch: pytest.MonkeyPatch,
                                                              devanagari_font: None) -> None:
    """Only DejaVu Sans and a CJK font were drawn in: Hindi ids showed as boxes whatever font was installed."""
    families = SCRIPT_FAMILIES["Devanagari"]
    stale = [entry for entry in font_manager.fontManager.ttflist if entry.name not in families]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)  # installed after matplotlib listed its fonts
    font_families.cache_clear()
    try:
        assert font_families()[0] == "DejaVu Sans" and set(font_families()) & set(families)
    finally:
        font_families.cache_clear()
