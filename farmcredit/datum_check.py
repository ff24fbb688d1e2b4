"""Whether parcels in China were read in the datum they were drawn in (``--parcels-datum``).

Parcels in China here: those in the rectangle the GCJ-02 formulas move (``china_maps.CHINA_RECTANGLE``) but outside
the lands in it that the Chinese web maps show in WGS 84 (``china_maps.WGS84_REGIONS``: India, Korea, ...), where no
other datum is ever suggested.

An outline drawn on a Chinese web map (GCJ-02, BD-09) and read as WGS 84, or the other way round, lies 0.1-1.5 km
beside its field, and every measure of it is a neighbour's. Nothing else in a run says so. This check reads small
windows of a few clear dates around a seeded sample of parcels, at the positions the datum given puts them and at
those each other datum would put the same drawn coordinates, and scores how well each outline sits on one field
(``outline_fit``). It only warns and records: it never moves a parcel or changes a decision.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from rasterio.windows import Window, union

from farmcredit.china_maps import (
    CHINA_RECTANGLE,
    DATUM_NAMES,
    DATUMS,
    gcj02_to_bd09,
    in_china,
    to_wgs84,
    wgs84_region,
    wgs84_to_gcj02,
)
from farmcredit.imagery import Imagery, read_window
from farmcredit.imagery.naming import NDVI_BANDS
from farmcredit.imagery.read import SeasonCube

logger = logging.getLogger(__name__)

SAMPLE_PARCELS = 100  # parcels scored, a seeded sample
SAMPLE_SEED = 0
DATE_PICK_WINDOWS = 8  # windows (at the positions given) read on every date to pick the dates scored
DATES_SCORED = 3  # the clearest dates with the widest NDVI spread
READ_BLOCK_PX = 256  # windows starting in one such block are read together
RING_M = 20.0  # the ring outside an outline its inside is compared with, metres wide
MIN_PIXELS = 4  # clear pixels inside and in the ring for a date to score a parcel
SPREAD_FLOOR = 0.05  # NDVI: a uniform inside does not make any small contrast look large
# Warn only where another datum's median fit is FIT_RATIO times the given one's and it fits better on MIN_BETTER_SHARE
# of at least MIN_SCORED parcels scored at both. Measured on sample_tiles (simulated) in every pairing of the three
# datums: the datum drawn in 1.21-1.29, the others 0.26-0.38 (ratio 3.2 or more), better on 74-85% of parcels, the
# wrong ones on 15-25%; two small simulated seasons 0.84-1.46 against 0.20-0.41. Real land-use parcels (Slovenia)
# separate far less (0.27 against 0.20 moved 500 m, 60% better): the thresholds keep false alarms out, at the cost of
# missing a wrong datum on imagery where fields differ little.
FIT_RATIO = 2.0
MIN_BETTER_SHARE = 0.6
MIN_SCORED = 20
MIN_ON_IMAGERY_SHARE = 0.5  # a candidate that puts this share of the sample on the imagery is named when all are off
# ... and only where its median fit, over at least MIN_SCORED parcels, reaches FIT_RATIO times the least a datum offset
# from the one drawn in scored above (0.20). Measured on sample_tiles: parcels drawn on Baidu beside the imagery's edge
# 0.49 there; those of the imagery's eastern 350 m moved 350 m east (another place), which GCJ-02 and BD-09 move onto
# fields not theirs, 0.15-0.17.
MIN_ALIGNED_FIT = 0.4


@dataclass(frozen=True)
class DatumCheck:
    """What the check measured.

    Attributes:
        given: the datum the parcels were read in.
        fit: median ``outline_fit`` of the parcels scored, per datum (NaN where too few were scored).
        better_share: per other datum, the share of parcels scored at both that fit better there than as given.
        scored: per datum, the parcels scored there (``outline_fit`` not NaN).
        on_imagery: per datum, the share of the parcels in China (module docstring) lying on the imagery there.
        suggested: the datum that fits clearly better than the one given, or None.
    """

    given: str
    fit: dict[str, float]
    better_share: dict[str, float]
    scored: dict[str, int]
    on_imagery: dict[str, float]
    suggested: str | None

    def record(self) -> dict[str, object]:
        """The run record's ``datum_check``: the median fit per datum, and what it suggests."""
        return {"fit": {datum: _rounded(value) for datum, value in self.fit.items()},
                "better_share": {datum: _rounded(value) for datum, value in self.better_share.items()},
                "parcels_scored": self.scored, "suggested": self.suggested}

    def off_imagery_hint(self) -> str | None:
        """Where the sample lies off the imagery as given but mostly on it in another datum (``MIN_ON_IMAGERY_SHARE``),
        its outlines fitting fields there (``MIN_ALIGNED_FIT``): the words that say so."""
        if self.on_imagery.get(self.given, 0.0) >= MIN_ON_IMAGERY_SHARE:
            return None
        best = max((d for d in self.on_imagery if d != self.given), key=lambda d: self.on_imagery[d], default=None)
        if (best is None or self.on_imagery[best] < MIN_ON_IMAGERY_SHARE or self.scored[best] < MIN_SCORED
                or not self.fit[best] >= MIN_ALIGNED_FIT):
            return None
        return (f"read as drawn in {DATUM_NAMES[best]}, {self.on_imagery[best]:.0%} of those sampled would lie on it, "
                f"their outlines fitting its fields (median fit {self.fit[best]:.2f}): if they were drawn on a Chinese "
                f"web map, give --parcels-datum {best} (parcels_datum= in Python)")


def _rounded(value: float) -> float | None:
    return round(value, 3) if np.isfinite(value) else None


def check_datum(parcels: gpd.GeoSeries, imagery: Imagery, datum: str,
                clear_classes: Collection[int]) -> DatumCheck | None:
    """Score the parcels' outlines on the imagery as read in ``datum`` and as each other datum would place the same
    drawn coordinates (``outline_fit``, on a seeded sample of ``SAMPLE_PARCELS`` parcels in China on the imagery in one
    datum or more, and the ``DATES_SCORED`` best dates), and warn where another fits clearly better (``FIT_RATIO``,
    ``MIN_BETTER_SHARE``), naming ``--parcels-datum``.

    Args:
        parcels: the parcels as read (``datum`` undone: WGS 84 positions), in their CRS; None where unusable.
        imagery: the season.
        datum: the ``--parcels-datum`` given.
        clear_classes: SCL classes counted as clear.

    Returns:
        The check, or None where no usable parcel lies in China (module docstring: nothing moves elsewhere, and no
        other datum is suggested where the maps show WGS 84).
    """
    geoms = parcels.to_numpy()
    usable = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms))
    if not len(usable) or parcels.crs is None:
        return None
    centres = shapely.get_coordinates(gpd.GeoSeries(shapely.centroid(geoms[usable]), crs=parcels.crs)
                                      .to_crs("EPSG:4326").to_numpy())
    china = in_china(centres[:, 0], centres[:, 1]) & (wgs84_region(centres[:, 0], centres[:, 1]) == "")
    if not china.any():
        return None
    usable, centres = usable[china], centres[china]
    # Parcels off the imagery in every datum score nowhere: the sample is drawn from the others, where there are any.
    positions = candidate_centres(centres, datum, imagery.crs)
    on_grid = {candidate: _on_grid(placed, imagery) for candidate, placed in positions.items()}
    on_any = np.logical_or.reduce(list(on_grid.values()))
    pool = np.flatnonzero(on_any) if on_any.any() else np.arange(len(usable))
    picked = np.sort(np.random.default_rng(SAMPLE_SEED).choice(pool, min(SAMPLE_PARCELS, len(pool)), replace=False))
    local = gpd.GeoSeries(geoms[usable[picked]], crs=parcels.crs).to_crs(imagery.crs).to_numpy()
    placed = candidate_outlines(local, {candidate: at[picked] for candidate, at in positions.items()}, datum)
    on_imagery = {candidate: float(on.mean()) for candidate, on in on_grid.items()}
    season = best_dates(imagery, placed[datum], clear_classes)
    fits = {candidate: outline_fits(season, outlines, clear_classes) for candidate, outlines in placed.items()}
    check = judged(datum, fits, on_imagery)
    if check.suggested is not None:
        logger.warning(
            "the parcels' outlines fit the imagery's fields clearly better as drawn in %s than in %s, the datum "
            "given: median fit %s (NDVI contrast with a %g m ring outside, over the inside's spread; %d parcels in "
            "the rectangle the GCJ-02 formulas move, %s, off the lands there its maps show in WGS 84, scored at "
            "both, on %d clear date(s)), and %.0f%% of them fit better so. Were they drawn on a "
            "Chinese web map, or not? Read in the wrong datum each parcel is measured 0.1-1.5 km off, on a "
            "neighbour's land: assess them again with --parcels-datum %s (parcels_datum= in Python)",
            DATUM_NAMES[check.suggested], DATUM_NAMES[datum],
            ", ".join(f"{name} {value:.2f}" for name, value in check.fit.items()), RING_M,
            int((np.isfinite(fits[datum]) & np.isfinite(fits[check.suggested])).sum()), CHINA_RECTANGLE,
            len(season.scenes), 100 * check.better_share[check.suggested], check.suggested)
    return check


def candidate_centres(centres: np.ndarray, datum: str, crs: object) -> dict[str, np.ndarray]:
    """Each datum's position, in ``crs`` (x, y rows), of the centres ``centres`` (WGS 84 longitude and latitude, read in
    ``datum``): the coordinates drawn (``datum`` redone) read in that datum."""
    lon, lat = centres[:, 0], centres[:, 1]
    if datum != "wgs84":
        lon, lat = wgs84_to_gcj02(lon, lat)
        if datum == "bd09":
            lon, lat = gcj02_to_bd09(lon, lat)
    drawn = shapely.points(lon, lat)
    to_local = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return {candidate: np.column_stack(to_local.transform(*shapely.get_coordinates(to_wgs84(drawn, candidate)).T))
            for candidate in DATUMS}


def candidate_outlines(local: np.ndarray, centres: dict[str, np.ndarray], datum: str) -> dict[str, np.ndarray]:
    """Each datum's position of the outlines ``local`` (read in ``datum``), their centres there ``centres``
    (``candidate_centres``, in the outlines' CRS). Each outline moves as its centre does: the offsets change by
    centimetres over a field."""
    coords, index = shapely.get_coordinates(local, return_index=True)
    return {candidate: local if candidate == datum
            else shapely.set_coordinates(local.copy(), coords + (centres[candidate] - centres[datum])[index])
            for candidate in DATUMS}


def _on_grid(points: np.ndarray, imagery: Imagery) -> np.ndarray:
    """True where a point (x, y rows in the imagery's CRS) lies on the imagery's grid."""
    cols, rows = ~imagery.transform @ points.T
    return (rows >= 0) & (rows < imagery.shape[0]) & (cols >= 0) & (cols < imagery.shape[1])


def _on_imagery(outlines: np.ndarray, imagery: Imagery) -> np.ndarray:
    """True where an outline's centre lies on the imagery's grid."""
    return _on_grid(shapely.get_coordinates(shapely.centroid(outlines)), imagery)


def best_dates(imagery: Imagery, outlines: np.ndarray, clear_classes: Collection[int]) -> Imagery:
    """``imagery`` narrowed to its ``DATES_SCORED`` dates of most clear pixels times NDVI spread (standard deviation)
    in windows around ``DATE_PICK_WINDOWS`` of ``outlines``: fields differ most then."""
    if len(imagery.scenes) <= DATES_SCORED:
        return imagery
    merit = np.zeros(len(imagery.scenes))
    picks = outlines[np.unique(np.linspace(0, len(outlines) - 1, DATE_PICK_WINDOWS).round().astype(int))]
    for _, cube in _cubes(imagery, picks, clear_classes):
        ndvi = _ndvi(cube.reflectance)
        for step in range(len(ndvi)):
            seen = ndvi[step][cube.clear[step] & np.isfinite(ndvi[step])]
            merit[step] += len(seen) * float(np.std(seen)) if len(seen) > 1 else 0.0
    keep = np.sort(np.argsort(-merit, kind="stable")[:DATES_SCORED])
    return replace(imagery, scenes=tuple(imagery.scenes[i] for i in keep))


def _cubes(imagery: Imagery, outlines: np.ndarray, clear_classes: Collection[int]) -> Iterator[tuple[int, SeasonCube]]:
    """The cube of each outline's window (``_window``), in the order read: the windows whose corners share a block of
    ``READ_BLOCK_PX`` are read as one (opening each file once for many parcels, not once for each)."""
    windows = [_window(outline, imagery) for outline in outlines]
    blocks: dict[tuple[int, int], list[int]] = {}
    for i, window in enumerate(windows):
        blocks.setdefault((window.col_off // READ_BLOCK_PX, window.row_off // READ_BLOCK_PX), []).append(i)
    for members in blocks.values():
        joined = union(*(windows[i] for i in members))
        cube = read_window(imagery, joined, NDVI_BANDS, clear_classes)
        for i in members:
            yield i, cube.crop(Window(windows[i].col_off - joined.col_off, windows[i].row_off - joined.row_off,
                                      windows[i].width, windows[i].height))


def _window(outline: object, imagery: Imagery) -> Window:
    """The pixels of ``outline`` and its ring (``RING_M``), a pixel to spare."""
    west, south, east, north = shapely.bounds(shapely.buffer(outline, RING_M + abs(imagery.transform.a)))
    col0, row0 = ~imagery.transform @ (west, north)
    col1, row1 = ~imagery.transform @ (east, south)
    col0, col1, row0, row1 = (int(np.floor(min(col0, col1))), int(np.ceil(max(col0, col1))),
                              int(np.floor(min(row0, row1))), int(np.ceil(max(row0, row1))))
    return Window(col0, row0, col1 - col0, row1 - row0)


def _ndvi(reflectance: np.ndarray) -> np.ndarray:
    """NDVI (time, rows, cols) of a (time, band, rows, cols) cube of ``NDVI_BANDS``."""
    red, nir = reflectance[:, 0], reflectance[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (nir - red) / (nir + red)


def outline_fits(imagery: Imagery, outlines: np.ndarray, clear_classes: Collection[int]) -> np.ndarray:
    """``outline_fit`` of each outline (NaN where off the imagery or too cloudy)."""
    fits = np.full(len(outlines), np.nan)
    on = np.flatnonzero(_on_imagery(outlines, imagery))
    for i, cube in _cubes(imagery, outlines[on], clear_classes):
        rows, cols = cube.clear.shape[1:]
        xs, ys = cube.transform @ np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
        inside = shapely.contains_xy(outlines[on[i]], xs, ys)
        ring = shapely.contains_xy(shapely.buffer(outlines[on[i]], RING_M), xs, ys) & ~inside
        fits[on[i]] = outline_fit(_ndvi(cube.reflectance), cube.clear, inside, ring)
    return fits


def outline_fit(ndvi: np.ndarray, clear: np.ndarray, inside: np.ndarray, ring: np.ndarray) -> float:
    """How well an outline sits on one field: per date, the difference of the median NDVI inside and in the ring
    outside, over the inside's NDVI standard deviation (at least ``SPREAD_FLOOR``), averaged over the dates with
    ``MIN_PIXELS`` clear pixels in both. An outline on its field is uniform inside and unlike its neighbours; one
    offset straddles fields: spread inside, much like its ring. NaN where no date scores.

    Args:
        ndvi: (time, rows, cols) NDVI.
        clear: (time, rows, cols) clear pixels.
        inside, ring: (rows, cols) the outline's pixels and its ring's.
    """
    scores = []
    for values, seen in zip(ndvi, clear & np.isfinite(ndvi), strict=True):
        within, around = values[inside & seen], values[ring & seen]
        if len(within) >= MIN_PIXELS and len(around) >= MIN_PIXELS:
            contrast = abs(float(np.median(within)) - float(np.median(around)))
            scores.append(contrast / max(float(np.std(within)), SPREAD_FLOOR))
    return float(np.mean(scores)) if scores else float("nan")


def judged(datum: str, fits: dict[str, np.ndarray], on_imagery: dict[str, float]) -> DatumCheck:
    """The ``DatumCheck`` of the per-parcel ``fits`` at each datum: the datum suggested, if any, fits best of those
    whose median is ``FIT_RATIO`` times the given one's and that fit better on ``MIN_BETTER_SHARE`` of at least
    ``MIN_SCORED`` parcels scored at both."""
    given = fits[datum]
    median = {name: float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
              for name, values in fits.items()}
    better, scored = {}, {name: int(np.isfinite(values).sum()) for name, values in fits.items()}
    for name, values in fits.items():
        both = np.isfinite(values) & np.isfinite(given)
        better[name] = float((values[both] > given[both]).mean()) if both.any() else float("nan")
    clearly = [name for name in fits if name != datum and np.isfinite(median[name])
               and np.isfinite(better[name]) and int((np.isfinite(fits[name]) & np.isfinite(given)).sum()) >= MIN_SCORED
               and better[name] >= MIN_BETTER_SHARE
               and (not np.isfinite(median[datum]) or median[name] >= FIT_RATIO * median[datum])]
    suggested = max(clearly, key=lambda name: median[name], default=None)
    return DatumCheck(datum, median, {n: v for n, v in better.items() if n != datum}, scored, on_imagery, suggested)
