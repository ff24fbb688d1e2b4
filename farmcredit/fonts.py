"""Fonts of the figures (previews, credit reports): ids, borrower names and regions are often Chinese, and are drawn
as written, never read as mathtext."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import matplotlib
from matplotlib import font_manager

# Fonts with Chinese glyphs, the first installed of them behind DejaVu Sans (matplotlib takes each glyph from the
# first family that has it): Linux (Noto, Source Han, WenQuanYi, Droid, AR PL; matplotlib before 3.11 names a Noto
# CJK collection by its first face, JP), Windows (Microsoft YaHei, SimHei), macOS (PingFang, Heiti).
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans CJK JP", "Source Han Sans JP",
                "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN",
                "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
# rcParams are the process's: two figures drawn at once in two threads would undo each other's fonts.
_RC_LOCK = threading.RLock()


@cache
def font_families() -> tuple[str, ...]:
    """DejaVu Sans, then the first of ``CJK_FAMILIES`` installed (none: Chinese shows as boxes).

    matplotlib lists the fonts it found when it first ran; when none of those has Chinese glyphs, the system's font
    folders are read again once, so a font installed since is found.
    """
    def first_cjk() -> list[str]:
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
        return [name for name in CJK_FAMILIES if name in installed][:1]

    if not (found := first_cjk()):
        known = {entry.fname for entry in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    font_manager.fontManager.addfont(path)
                except Exception:  # noqa: BLE001 - a font file FreeType cannot read, as matplotlib's own scan
                    continue
        found = first_cjk()
    return ("DejaVu Sans", *found)


@contextmanager
def figure_fonts() -> Iterator[None]:
    """Draw figures made within (as a ``with`` block or a decorator) in ``font_families()``, one thread at a time.

    Their text is plain: a ``$`` in a parcel id, region or file name (data the lender's files bring) draws as a
    ``$``, not as the start of a formula (``P$x$`` in italics, or a mathtext error that stops the figure).
    """
    # text.parse_math is read as each Text is made; tick labels are made as the figure is saved, so within, too.
    with _RC_LOCK, matplotlib.rc_context({"font.family": list(font_families()), "text.parse_math": False}):
        yield
