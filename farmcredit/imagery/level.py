"""Whether imagery no metadata gives the processing level of looks top-of-atmosphere (Level-1C): its blue band tells.

Over dense vegetation, surface reflectance (L2A) in blue (B02) is low: leaves absorb it. Top-of-atmosphere reflectance
(L1C) adds the atmosphere's path radiance (haze), which L2A's correction takes off, and blue most of all. Medians of B02
over clear pixels of NDVI above 0.6: FTW Austria's L2A 0.023 and 0.034 (its two dates), ``sample_tiles``' simulated
L2A 0.045 (0.039-0.053 per date); eo-learn Slovenia's L1C 0.073-0.078 per date, EuroSAT's L1C patches 0.083-0.092
per vegetated class. ``TOP_OF_ATMOSPHERE_BLUE`` lies between, 0.015 above the simulated L2A and 0.013 below the
least hazy real L1C.

The same sample tells dates hazy though their SCL calls them clear (``check_atmosphere``): a date's blue standing over
the season's typical, whatever the level; warned of and recorded, never masked.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from farmcredit.imagery.naming import OFFSET_BASELINE_SINCE
from farmcredit.imagery.read import SNOW_BANDS, read_window
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
# A date's haze statistic (``date_blue``): the median blue over its clear dense vegetation where it has this many such
# pixels (a median of 50 is within about 0.002 of the whole's), else the DARK_OBJECT_PERCENTILE of its clear pixels'
# blue where it has MIN_DARK_OBJECT_PIXELS (haze brightens the darkest pixels as much, and thick haze takes a date's
# vegetation under NDVI 0.6; ``sample_tiles``' early dates' darkest, bare soil, read up to 0.017 over its typical).
MIN_DATE_DENSE_PIXELS = 50
DARK_OBJECT_PERCENTILE = 1
MIN_DARK_OBJECT_PIXELS = 1000
# A date whose statistic stands this far (reflectance) over the season's lower quartile (SEASON_PERCENTILE) is hazy.
# Clear dates stand at most 0.011 over it: ``sample_tiles``' 15 (0.040-0.054; 0.0075 over their median), FTW
# Austria's real L2A 0.009 (two dates). The sample's peak dates hazed toward 0.30 reflectance, their SCL clear (a
# review): 15% 0.032-0.034 over, 35% 0.080-0.083 (dark pixels); the eo-learn Slovenia km2's L1C date its cloud mask
# called clear 0.11. The median was the season's first: with half a season's dates hazy (a --season narrowed to its
# peak), it rose halfway to them, and none stood out.
HAZE_MARGIN = 0.02
SEASON_PERCENTILE = 25

# The imagery sources warned of in the run under way (``one_warning_per_source``), as (warning, source): warning
# "top-of-atmosphere" or "hazy dates"; None outside a run, where each check warns.
_WARNED_SOURCES: ContextVar[set[tuple[str, str]] | None] = ContextVar("warned_sources", default=None)


@contextmanager
def one_warning_per_source() -> Iterator[None]:
    """A run (a command, say) in which ``warn_if_top_of_atmosphere`` and ``check_atmosphere`` warn of each imagery
    source once, however often the run opens it (``evaluate`` of a labelled scene reads its labels' imagery, then
    assesses its parcels on it). Nested, the outermost run holds; a decorator too, a run per call."""
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


@dataclass(frozen=True)
class BlueSample:
    """Blue (B02) reflectance (0-1) read in the sample windows around parcel centres (``sample_blue``), per date.

    Attributes:
        dates: each date of the imagery.
        dense: per date, the blue of its clear pixels of NDVI above ``DENSE_VEGETATION_NDVI``.
        clear: per date, the blue of its clear pixels.
    """

    dates: tuple[date, ...]
    dense: tuple[np.ndarray, ...]
    clear: tuple[np.ndarray, ...]


def sample_blue(imagery: Imagery, centres: np.ndarray, clear_classes: Collection[int]) -> BlueSample:
    """Blue (B02) of every date of ``SAMPLE_WINDOW_PX`` windows around ``centres`` ((k, 2) x, y in the imagery's CRS;
    up to ``MAX_SAMPLE_WINDOWS`` of them, spread over the list), read one by one until ``ENOUGH_DENSE_PIXELS`` pixels
    of dense vegetation (all dates together), each pixel counted once where windows overlap."""
    dense: list[list[np.ndarray]] = [[] for _ in imagery.scenes]
    clear: list[list[np.ndarray]] = [[] for _ in imagery.scenes]
    read: list[Window] = []
    picks = np.unique(np.linspace(0, len(centres) - 1, min(len(centres), MAX_SAMPLE_WINDOWS)).round().astype(int))
    height, width = imagery.shape
    for x, y in centres[picks]:
        col, row = ~imagery.transform @ (x, y)
        col_off = int(np.clip(col - SAMPLE_WINDOW_PX // 2, 0, max(width - SAMPLE_WINDOW_PX, 0)))
        row_off = int(np.clip(row - SAMPLE_WINDOW_PX // 2, 0, max(height - SAMPLE_WINDOW_PX, 0)))
        window = Window(col_off, row_off, min(SAMPLE_WINDOW_PX, width), min(SAMPLE_WINDOW_PX, height))
        unread = _unread(window, read)
        if not unread.any():  # a small image, or parcels close together: the window was read whole already
            continue
        read.append(window)
        # With the snow test's bands where the imagery has them: snow left clear is not haze (``looks_like_snow``).
        cube = read_window(imagery, window, (*DENSE_BLUE_BANDS, *SNOW_BANDS), clear_classes)
        blue, red, nir = (cube.reflectance[:, cube.bands.index(band)] for band in DENSE_BLUE_BANDS)
        seen = cube.clear & np.isfinite(blue) & unread
        with np.errstate(divide="ignore", invalid="ignore"):
            vegetated = seen & ((nir - red) / (nir + red) > DENSE_VEGETATION_NDVI)
        for step in range(len(blue)):
            dense[step].append(blue[step][vegetated[step]])
            clear[step].append(blue[step][seen[step]])
        if sum(len(part) for parts in dense for part in parts) >= ENOUGH_DENSE_PIXELS:
            break
    joined = [tuple(np.concatenate(parts) if parts else np.empty(0, np.float32) for parts in kind)
              for kind in (dense, clear)]
    return BlueSample(tuple(scene.acquired.date() for scene in imagery.scenes), *joined)


def dense_vegetation_blue(
    imagery: Imagery, centres: np.ndarray, clear_classes: Collection[int]
) -> tuple[float, int]:
    """Median blue (B02) reflectance (0-1) over the clear pixels of NDVI above ``DENSE_VEGETATION_NDVI``, every date,
    of the sample windows around ``centres`` (``sample_blue``).

    Returns:
        The median (NaN where no such pixel) and how many pixels it is taken over.
    """
    return _pooled_dense_blue(sample_blue(imagery, centres, clear_classes))


def _pooled_dense_blue(sample: BlueSample) -> tuple[float, int]:
    """``dense_vegetation_blue`` of a sample read already."""
    pixels = np.concatenate(sample.dense) if sample.dense else np.empty(0)
    return (float(np.median(pixels)) if len(pixels) else float("nan")), len(pixels)


def _unread(window: Window, read: list[Window]) -> np.ndarray:
    """(rows, cols) of ``window``: True where no window of ``read`` covers the pixel (each pixel is counted once)."""
    unread = np.ones((int(window.height), int(window.width)), dtype=bool)
    for earlier in read:
        top, left = earlier.row_off - window.row_off, earlier.col_off - window.col_off
        unread[max(top, 0):max(top + earlier.height, 0), max(left, 0):max(left + earlier.width, 0)] = False
    return unread


@dataclass(frozen=True)
class HazyDate:
    """A date whose blue stands ``HAZE_MARGIN`` over the season's (``hazy_dates``): reflectance 0-1.

    Attributes:
        day: the date.
        blue: its haze statistic (``date_blue``).
        season_blue: the lower quartile of the statistic over the season's dates (``SEASON_PERCENTILE``).
    """

    day: date
    blue: float
    season_blue: float

    def record(self) -> dict:
        """The date as ``run.json`` lists it (``hazy_dates``)."""
        return {"date": self.day.isoformat(), "blue": round(self.blue, 4), "season_blue": round(self.season_blue, 4)}


def date_blue(dense: np.ndarray, clear: np.ndarray) -> float:
    """A date's haze statistic from its sampled blue (``BlueSample``): the median over dense vegetation where it has
    ``MIN_DATE_DENSE_PIXELS``, else the ``DARK_OBJECT_PERCENTILE`` of its clear pixels where it has
    ``MIN_DARK_OBJECT_PIXELS``, else NaN. Neither moves much as crops grow and are cut; haze brightens both (and
    takes a date's dense vegetation under NDVI 0.6 where thick)."""
    if len(dense) >= MIN_DATE_DENSE_PIXELS:
        return float(np.median(dense))
    if len(clear) >= MIN_DARK_OBJECT_PIXELS:
        return float(np.percentile(clear, DARK_OBJECT_PERCENTILE))
    return float("nan")


def hazy_dates(sample: BlueSample) -> tuple[HazyDate, ...]:
    """The dates of ``sample`` whose statistic (``date_blue``) stands over the dates' lower quartile
    (``SEASON_PERCENTILE``) by more than ``HAZE_MARGIN``: haze the cloud mask called clear. Dates without enough pixels
    are not judged."""
    blues = np.array([date_blue(dense, clear) for dense, clear in zip(sample.dense, sample.clear, strict=True)])
    if np.isfinite(blues).sum() < 2:
        return ()
    season = float(np.nanpercentile(blues, SEASON_PERCENTILE))
    return tuple(HazyDate(day, float(blue), season) for day, blue in zip(sample.dates, blues, strict=True)
            if blue > season + HAZE_MARGIN)


def check_atmosphere(imagery: Imagery, centres: np.ndarray, clear_classes: Collection[int]) -> tuple[HazyDate, ...]:
    """Both checks of the blue band on one read of the sample windows around ``centres`` (``sample_blue``): warn where
    the imagery looks top-of-atmosphere (as ``warn_if_top_of_atmosphere``), and find and warn of its hazy dates
    (``hazy_dates``). Within ``one_warning_per_source``, each source is warned of once.

    Returns:
        The hazy dates, for the run record; nothing is masked (a date flagged wrongly must not change a decision).
    """
    if not len(centres) or "B02" not in imagery.bands:
        return ()
    sample = sample_blue(imagery, centres, clear_classes)
    if _top_of_atmosphere_unchecked(imagery):
        _warn_top_of_atmosphere(imagery, sample)
    hazy = hazy_dates(sample)
    warned = _WARNED_SOURCES.get()
    if hazy and ("hazy dates", imagery.source) not in (warned or ()):
        scenes = [scene.scene_id for scene in imagery.scenes if scene.acquired.date() in {d.day for d in hazy}]
        # A stack's dates are bands of one file, named by made-up scene ids: its bands are what to drop.
        drop = ("drop those dates' bands from the stack (and from --bands)" if Path(imagery.source).is_file()
                else f"remove their scenes ({', '.join(scenes)})")
        masked = "its scene classification (SCL) called them clear" if imagery.has_scl else "no SCL masks them"
        logger.warning(
            "%d date(s) of %s look hazy: the blue (B02) of %s stands over the season's lower quartile %.3f by more "
            "than %g (median blue of clear dense vegetation, NDVI over %g, or of the darkest %d%% of clear pixels "
            "where too little is), though %s; haze lowers a date's NDVI, so parcels' health and peak NDVI may be "
            "understated. Nothing was masked: to leave them out, %s, or give a --season (season= in Python) without "
            "them, and run again",
            len(hazy), imagery.source, ", ".join(f"{d.day} {d.blue:.3f}" for d in hazy), hazy[0].season_blue,
            HAZE_MARGIN, DENSE_VEGETATION_NDVI, DARK_OBJECT_PERCENTILE, masked, drop)
        if warned is not None:
            warned.add(("hazy dates", imagery.source))
    return hazy


def warn_if_top_of_atmosphere(imagery: Imagery, centres: np.ndarray, clear_classes: Collection[int]) -> None:
    """Warn where imagery of unknown level (``level_unknown``) with a blue band looks top-of-atmosphere: the median
    blue of at least ``MIN_DENSE_PIXELS`` dense-vegetation pixels around ``centres`` (``dense_vegetation_blue``) is
    over ``TOP_OF_ATMOSPHERE_BLUE``. Within ``one_warning_per_source``, a source already warned of is not
    checked again."""
    if len(centres) and "B02" in imagery.bands and _top_of_atmosphere_unchecked(imagery):
        _warn_top_of_atmosphere(imagery, sample_blue(imagery, centres, clear_classes))


def _top_of_atmosphere_unchecked(imagery: Imagery) -> bool:
    """Whether ``imagery`` is of unknown level and not yet warned of as top-of-atmosphere in the run under way."""
    return level_unknown(imagery) and ("top-of-atmosphere", imagery.source) not in (_WARNED_SOURCES.get() or ())


def _warn_top_of_atmosphere(imagery: Imagery, sample: BlueSample) -> None:
    """``warn_if_top_of_atmosphere`` on the blue sampled already."""
    blue, pixels = _pooled_dense_blue(sample)
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
        warned = _WARNED_SOURCES.get()
        if warned is not None:
            warned.add(("top-of-atmosphere", imagery.source))
