"""Fonts of the figures (previews, credit reports): ids, borrower names and regions are often Chinese, Hindi or in
another script, and are drawn as written, never read as mathtext."""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import matplotlib
from matplotlib import font_manager

# Fonts with Chinese glyphs: Linux (Noto, Source Han, WenQuanYi, Droid, AR PL; matplotlib before 3.11 names a Noto
# CJK collection by its first face, JP), Windows (Microsoft YaHei, SimHei), macOS (PingFang, Heiti).
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans CJK JP", "Source Han Sans JP",
                "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN",
                "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
# The scripts lenders' ids, names and regions are written in beyond DejaVu Sans's, each with its fonts: Linux (Noto,
# then the distribution's own: Lohit, KACST, TLWG, Abyssinica), Windows, macOS. The first installed of each is drawn
# in, behind DejaVu Sans: matplotlib takes each glyph from the first family of the list that has it.
SCRIPT_FAMILIES: dict[str, tuple[str, ...]] = {
    "Chinese": CJK_FAMILIES,
    "Devanagari": ("Noto Sans Devanagari", "Lohit Devanagari", "Mangal", "Nirmala UI", "Kohinoor Devanagari",
                   "Devanagari Sangam MN"),
    "Bengali": ("Noto Sans Bengali", "Lohit Bengali", "Vrinda", "Nirmala UI", "Kohinoor Bangla", "Bangla Sangam MN"),
    "Tamil": ("Noto Sans Tamil", "Lohit Tamil", "Latha", "Nirmala UI", "Tamil Sangam MN"),
    "Arabic": ("Noto Sans Arabic", "Noto Naskh Arabic", "KacstOne", "Segoe UI", "Geeza Pro"),
    "Thai": ("Noto Sans Thai", "Loma", "Garuda", "Leelawadee UI", "Tahoma", "Thonburi"),
    "Ethiopic": ("Noto Sans Ethiopic", "Abyssinica SIL", "Nyala", "Ebrima", "Kefa"),
}
# rcParams are the process's: two figures drawn at once in two threads would undo each other's fonts.
_RC_LOCK = threading.RLock()
# matplotlib's warning of a character none of the figure's fonts has (a rare one in a name: 𠮷).
_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from")

logger = logging.getLogger(__name__)


@cache
def font_families() -> tuple[str, ...]:
    """DejaVu Sans, then the first installed family of each script of ``SCRIPT_FAMILIES`` (a script without one shows
    as boxes).

    matplotlib lists the fonts it found when it first ran; when a script has none of those, the system's font folders
    are read again once (some 20 ms a process), so a font installed since is found.
    """
    def first_of_each() -> dict[str, str]:
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
        return {script: found for script, families in SCRIPT_FAMILIES.items()
                if (found := next((name for name in families if name in installed), None))}

    if len(found := first_of_each()) < len(SCRIPT_FAMILIES):
        known = {entry.fname for entry in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    font_manager.fontManager.addfont(path)
                except Exception:  # noqa: BLE001 - a font file FreeType cannot read, as matplotlib's own scan
                    continue
        found = first_of_each()
    return tuple(dict.fromkeys(("DejaVu Sans", *found.values())))  # Nirmala UI, one family of three scripts, once


@contextmanager
def figure_fonts() -> Iterator[None]:
    """Draw figures made within (as a ``with`` block or a decorator) in ``font_families()``, one thread at a time.

    Their text is plain: a ``$`` in a parcel id, region or file name (data the lender's files bring) draws as a
    ``$``, not as the start of a formula (``P$x$`` in italics, or a mathtext error that stops the figure).
    """
    # text.parse_math is read as each Text is made; tick labels are made as the figure is saved, so within, too.
    with _RC_LOCK, matplotlib.rc_context({"font.family": list(font_families()), "text.parse_math": False}):
        yield


@contextmanager
def missing_glyphs_told(out: Path) -> Iterator[None]:
    """matplotlib's warnings of characters none of the figure's fonts has (a rare one in a name, 𠮷, or a script with
    no font installed: one warning a character and drawing, in its words, on the console), told once instead of the
    figures written to ``out``, in the tool's: they are drawn as boxes. Other warnings pass as they came."""
    missing: dict[str, None] = {}
    shown = warnings.showwarning

    def told(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        if found := _MISSING_GLYPH.match(str(message)):
            missing[chr(int(found[1]))] = None
        else:
            shown(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.filterwarnings("always", _MISSING_GLYPH.pattern, UserWarning)  # every drawing's, not once a process
        warnings.showwarning = told
        yield
    if missing:
        logger.warning("%s: the fonts (%s) have no glyph for %s, drawn as a box; farmcredit draws in the first "
                       "installed font of each of %s (the README lists them under preview.png): one of the "
                       "character's script, installed, draws it", out, ", ".join(font_families()),
                       ", ".join(f"{char!r} (U+{ord(char):04X})" for char in missing), ", ".join(SCRIPT_FAMILIES))
