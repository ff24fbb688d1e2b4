"""Fonts of the figures (previews, credit reports): ids, borrower names and regions are often Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib
from matplotlib import font_manager

# Fonts with Chinese glyphs, the first installed of them behind DejaVu Sans (matplotlib takes each glyph from the
# first family that has it): Linux (Noto, Source Han, WenQuanYi), Windows (Microsoft YaHei, SimHei), macOS.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")


def font_families() -> list[str]:
    """DejaVu Sans, then the first of ``CJK_FAMILIES`` matplotlib finds installed (none: Chinese shows as boxes)."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *[name for name in CJK_FAMILIES if name in installed][:1]]


@contextmanager
def figure_fonts() -> Iterator[None]:
    """Draw figures made within (as a ``with`` block or a decorator) in ``font_families()``."""
    with matplotlib.rc_context({"font.family": font_families()}):
        yield
