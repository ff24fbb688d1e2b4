"""Whether imagery no metadata gives the processing level of looks top-of-atmosphere (Level-1C): its blue band tells.

Over dense vegetation, surface reflectance (L2A) in blue (B02) is low: leaves absorb it. Top-of-atmosphere reflectance
(L1C) adds the atmosphere's path radiance (haze), which L2A's correction takes off, and blue most of all. Medians of B02
over clear pixels of NDVI above 0.6: FTW Austria's L2A 0.023 and 0.034 (its two dates), ``sample_tiles``' simulated
L2A 0.045 (0.039-0.053 per date); eo-learn Slovenia's L1C 0.073-0.078 per date, EuroSAT's L1C patches 0.083-0.092
per vegetated class. ``TOP_OF_ATMOSPHERE_BLUE`` lies between, 0.015 above the simulated L2A and 0.013 below the
least hazy real L1C.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from rasterio.windows import Window

from farmcredit.imagery.naming import OFFSET_BASELINE_SINCE
from farmcredit.imagery.read import read_window
from farmcredit.imagery.scene import Imagery

logger = logging.getLogger(__name__)

DENSE_VEGETATION_NDVI = 0.6
TOP_OF_ATMOSPHERE_BLUE = 0.06
MIN_DENSE_PIXELS = 1000
# Enough to judge by: reading stops there (one window of a farmed landscape's season usually holds as many).
ENOUGH_DENSE_PIXELS = 20_000
SAMPLE_WINDOW_PX = 256
MAX_SAMPLE_WINDOWS = 8
DENSE_BLUE_BANDS = ("B02", "B04", "B08")

# The imagery sources warned of as top-of-atmosphere in the run under way (``one_warning_per_source``); None
# outside a run, where each check warns.
_WARNED_SOURCES: ContextVar[set[str] | None] = ContextVar("top_of_atmosphere_warned_sources", default=None)


@contextmanager
def one_warning_per_source() -> Iterator[None]:
    """A run (a command, say) in which ``warn_if_top_of_atmosphere`` warns of each imagery source once, however
    often the run opens it (``evaluate`` of a labelled scene reads its labels' imagery, then assesses its parcels on
    it). Nested, the outermost run holds; a decorator too, a run per call."""
    if _WARNED_SOURCES.get() is not None:
        yield
        return
    token = _WARNED_SOURCES.set(set())
    try:
        yield
    finally:
        _WARNED_SOURCES.reset(token)


def level_unknown(imagery: Imagery) -> bool:
    """True where some product of ``imagery`` has no metadata giving its level and no B10 (cirrus, an L1C band whose
    presence ``stack_scenes`` warns of) says it is L1C."""
    products = [part for scene in imagery.scenes for part in (scene.parts or (scene,))]
    if any("B10" in product.band_paths for product in products):
        return False
    return any(product.level is None for product in products)


def dense_vegetation_blue(
    imagery: Imagery, centres: np.ndarray, clear_classes: Collection[int]
) -> tuple[float, int]:
    """Median blue (B02) reflectance (0-1) over the clear pixels of NDVI above ``DENSE_VEGETATION_NDVI``, every date,
    of ``SAMPLE_WINDOW_PX`` windows around ``centres`` ((k, 2) x, y in the imagery's CRS; up to
    ``MAX_SAMPLE_WINDOWS`` of them, spread over the list), read one by one until ``ENOUGH_DENSE_PIXELS``, each pixel
    counted once where windows overlap.

    Returns:
        The median (NaN where no such pixel) and how many pixels it is taken over.
    """
    blues: list[np.ndarray] = []
    read: list[Window] = []
    picks = np.unique(np.linspace(0, len(centres) - 1, min(len(centres), MAX_SAMPLE_WINDOWS)).round().astype(int))
    height, width = imagery.shape
    for x, y in centres[picks]:
        col, row = ~imagery.transform * (x, y)
        col_off = int(np.clip(col - SAMPLE_WINDOW_PX // 2, 0, max(width - SAMPLE_WINDOW_PX, 0)))
        row_off = int(np.clip(row - SAMPLE_WINDOW_PX // 2, 0, max(height - SAMPLE_WINDOW_PX, 0)))
        window = Window(col_off, row_off, min(SAMPLE_WINDOW_PX, width), min(SAMPLE_WINDOW_PX, height))
        unread = _unread(window, read)
        if not unread.any():  # a small image, or parcels close together: the window was read whole already
            continue
        read.append(window)
        cube = read_window(imagery, window, DENSE_BLUE_BANDS, clear_classes)
        blue, red, nir = (cube.reflectance[:, cube.bands.index(band)] for band in DENSE_BLUE_BANDS)
        with np.errstate(divide="ignore", invalid="ignore"):
            dense = cube.clear & ((nir - red) / (nir + red) > DENSE_VEGETATION_NDVI) & np.isfinite(blue)
        blues.append(blue[dense & unread])
        if sum(map(len, blues)) >= ENOUGH_DENSE_PIXELS:
            break
    pixels = np.concatenate(blues) if blues else np.empty(0)
    return (float(np.median(pixels)) if len(pixels) else float("nan")), len(pixels)


def _unread(window: Window, read: list[Window]) -> np.ndarray:
    """(rows, cols) of ``window``: True where no window of ``read`` covers the pixel (each pixel is counted once)."""
    unread = np.ones((int(window.height), int(window.width)), dtype=bool)
    for earlier in read:
        top, left = earlier.row_off - window.row_off, earlier.col_off - window.col_off
        unread[max(top, 0):max(top + earlier.height, 0), max(left, 0):max(left + earlier.width, 0)] = False
    return unread


def warn_if_top_of_atmosphere(imagery: Imagery, centres: np.ndarray, clear_classes: Collection[int]) -> None:
    """Warn where imagery of unknown level (``level_unknown``) with a blue band looks top-of-atmosphere: the median
    blue of at least ``MIN_DENSE_PIXELS`` dense-vegetation pixels around ``centres`` (``dense_vegetation_blue``) is
    over ``TOP_OF_ATMOSPHERE_BLUE``. Within ``one_warning_per_source``, a source already warned of is not
    checked again."""
    warned = _WARNED_SOURCES.get()
    if not len(centres) or "B02" not in imagery.bands or not level_unknown(imagery) or imagery.source in (warned or ()):
        return
    blue, pixels = dense_vegetation_blue(imagery, centres, clear_classes)
    if pixels >= MIN_DENSE_PIXELS and blue > TOP_OF_ATMOSPHERE_BLUE:
        # L2A of baseline 04.00 and later read without its -1000 DN offset is 0.1 too high in every band: as hazy.
        # Integer DNs of unknown level only: float reflectance takes no offset, and an item or a SAFE product says.
        unshifted = any(part.level is None and part.dn_scale != 1.0 and part.dn_offset == 0
                        and part.acquired.date() >= OFFSET_BASELINE_SINCE
                        for scene in imagery.scenes for part in (scene.parts or (scene,)))
        offset = (f", or, as it was read with DN offset 0, L2A of processing baseline 04.00 or later (from "
                  f"{OFFSET_BASELINE_SINCE}) read without its -1000 DN offset, every band 0.1 too high: try "
                  "--dn-offset -1000 (dn_offset= in Python) first" if unshifted else "")
        logger.warning("%s looks like top-of-atmosphere (Level-1C) reflectance: its blue (B02) over %d clear pixels "
                       "of dense vegetation (NDVI over %g) has a median of %.3f, over the %g surface reflectance "
                       "(Level-2A) stays under (haze, which L2A's atmospheric correction takes off)%s; farmcredit's "
                       "models and thresholds are set on L2A: give L2A products of these dates (an L2A collection, "
                       "or L1C corrected by sen2cor)", imagery.source, pixels, DENSE_VEGETATION_NDVI, blue,
                       TOP_OF_ATMOSPHERE_BLUE, offset)
        if warned is not None:
            warned.add(imagery.source)
