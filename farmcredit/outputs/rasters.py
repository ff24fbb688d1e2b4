"""Raster outputs: Cloud-Optimized GeoTIFFs on the parcels' extent, each with a ``.qml`` sidecar.

- ``cropland_probability.tif``: P(cropland) per pixel, from the cropland model (0-1).
- ``cropland_class.tif``: the CNN's class per pixel (0 non-crop, then its crop classes, named in
  the file's ``CLASSES`` tag and its style); not written for the rule, which has no classes.
- ``ndvi_peak.tif``: the season's highest clear-sky NDVI per pixel.
- ``health_index.tif``: each parcel's health index (0-100) burnt into the pixels whose centre it holds, or,
  for a parcel holding none (smaller than a pixel, a narrow strip between centres), those it touches.
- ``true_colour.tif``: B04/B03/B02 of the date the parcels are clearest (the next clearest where a
  file of that date fails to read), reflectance x 10^4.

The first three are per-pixel layers the pipeline computes window by window (``PixelRasters``
gathers them while it runs); the others are made here. Everything is written in strips or
windows, so memory stays bounded by a strip, not by the tile.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import rasterio.shutil
import rasterio.windows
import shapely
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from rasterio.windows import Window

from farmcredit.errors import InputError
from farmcredit.imagery import Imagery, Scene, read_window
from farmcredit.imagery._gdal import gdal_message
from farmcredit.locking import ScratchFolder
from farmcredit.outputs.styles import qml_text, raster_style
from farmcredit.parcels import map_only

# What writing a raster raises: rasterio's errors and GDAL's own (a full disk's), which rasterio.errors does not export.
RASTER_WRITE_ERRORS = (RasterioError, CPLE_BaseError)

if TYPE_CHECKING:
    from farmcredit.pipeline import Assessment

RASTER_NAMES = ("true_colour", "cropland_probability", "cropland_class", "ndvi_peak", "health_index")
# Class layers: uint8 with this nodata, and overviews that keep each area's commonest class (a class has no average).
CATEGORICAL = ("cropland_class",)
CLASS_NODATA = 255
DESCRIPTIONS = {
    "cropland_probability": "probability that the pixel is cropland (0-1), from the cropland model",
    "cropland_class": "cropland model's class (0 non-crop, then the crop classes named in CLASSES; crop where "
                      "P(crop) >= 0.5); named crop types are learnt from simulated scenes only, and the parcels' "
                      "crop column comes from NDVI templates",
    "ndvi_peak": "highest clear-sky NDVI of the season",
    "health_index": "parcel health index (0-100): peak NDVI percentile among same-crop parcels",
    "true_colour": "surface reflectance x 10000 (B04 red, B03 green, B02 blue) of the clearest date",
}
TRUE_COLOUR_BANDS = ("B04", "B03", "B02")
REFLECTANCE_SCALE = 10_000
BLOCK_PX = 256
STRIP_ROWS = 512
# Strips of parcel numbers the health raster keeps rasterized ahead of the one it burns (see ``_health_strips``).
LOOKAHEAD_STRIPS = 1
# GDAL's block cache while writing: its default (5% of RAM) would hold a tile's worth of blocks.
WRITE_CACHE_MB = 128


class RasterGrid(NamedTuple):
    """The output rasters' grid: a window of the imagery grid, its transform and CRS."""

    window: Window
    transform: rasterio.Affine
    crs: rasterio.crs.CRS


class PixelRasters:
    """Per-pixel layers of each measured window, gathered into GeoTIFFs covering ``extent``.

    Pass ``add`` to ``measure_parcels``. The files are tiled, uncompressed and sparse (blocks no
    window touched are never written) in a temporary folder removed with this object, so a full
    tile costs disk only where there are parcels and no memory beyond one window.

    Example:
        >>> pixels = PixelRasters(imagery, Window(0, 0, 512, 512))  # doctest: +SKIP
        >>> pixels.add(Window(0, 0, 64, 64), {"ndvi_peak": peak})  # doctest: +SKIP
        >>> pixels.paths["ndvi_peak"]  # doctest: +SKIP
    """

    def __init__(self, imagery: Imagery, extent: Window, class_names: tuple[str, ...] = ()) -> None:
        self.grid = RasterGrid(extent, rasterio.windows.transform(extent, imagery.transform), imagery.crs)
        self.class_names = tuple(class_names)  # of the cropland_class layer, when the model has classes
        self.paths: dict[str, Path] = {}
        self._folder = ScratchFolder("pixels")

    def add(self, window: Window, layers: Mapping[str, np.ndarray]) -> None:
        """Write one window's layers (rows x cols of ``window`` on the imagery grid, NaN where unknown).

        ``CATEGORICAL`` layers are stored as uint8 (``CLASS_NODATA`` where unknown), the others as float32.
        """
        extent = self.grid.window
        inside = Window(window.col_off - extent.col_off, window.row_off - extent.row_off, window.width, window.height)
        try:
            for name, values in layers.items():
                categorical = name in CATEGORICAL
                if name not in self.paths:
                    self.paths[name] = Path(self._folder.name) / f"{name}.tif"
                    dtype, nodata = ("uint8", CLASS_NODATA) if categorical else ("float32", np.nan)
                    _create_tiff(self.paths[name], self.grid, 1, dtype, nodata, SPARSE_OK=True).close()
                stored = (np.where(np.isfinite(values), values, CLASS_NODATA).astype(np.uint8) if categorical
                          else values.astype(np.float32, copy=False))
                try:
                    dataset = rasterio.open(self.paths[name], "r+")
                except TypeError as exc:  # a file a full disk cut short is no GeoTIFF to rasterio, not an IO error
                    raise RasterioError(f"{self.paths[name].name}: {exc}") from exc
                with dataset:
                    dataset.write(stored, 1, window=inside)
        except RASTER_WRITE_ERRORS as exc:
            raise InputError(f"writing the per-pixel layers in {self._folder.name} stopped: {gdal_message(exc)}; free "
                             "space there, or set TMPDIR to a folder with room") from exc


def write_rasters(out_dir: str | Path, assessment: Assessment) -> dict[str, Path]:
    """Write the raster outputs of ``assessment`` into ``out_dir``, each with its ``.qml``.

    Returns:
        The files written: ``<name>`` the GeoTIFF, ``<name>_qml`` its style. None when no parcel
        overlaps the imagery; the per-pixel layers only when the run kept them (see
        ``run_assessment(pixel_layers=True)``). Outputs of these names the run does not write (e.g.
        the CNN's class map left by an earlier run into this folder) are removed.
    """
    out_dir = Path(out_dir)
    files = _write_rasters(out_dir, assessment) if assessment.grid_window is not None else {}
    for name in RASTER_NAMES:
        if name not in files:
            for suffix in (".tif", ".qml"):
                (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    return files


def _write_rasters(out_dir: Path, assessment: Assessment) -> dict[str, Path]:
    """``write_rasters`` for a run with parcels on the imagery."""
    imagery = assessment.imagery
    grid = RasterGrid(assessment.grid_window, rasterio.windows.transform(assessment.grid_window, imagery.transform),
                 imagery.crs)
    files: dict[str, Path] = {}
    with rasterio.Env(GDAL_CACHEMAX=WRITE_CACHE_MB), ScratchFolder("rasters") as scratch:
        classes = pixel_classes(assessment)
        sources = {name: (path, {}) for name, path in (assessment.pixels.paths if assessment.pixels else {}).items()}
        if "cropland_class" in sources:
            sources["cropland_class"][1]["CLASSES"] = ",".join(classes)
        path = Path(scratch) / "true_colour.tif"
        scene = _write_true_colour(path, grid, imagery, scenes_by_clearness(imagery, assessment.series))
        if scene is not None:
            sources["true_colour"] = (path, {"SCENE_ID": scene.scene_id, "ACQUIRED": scene.acquired.date().isoformat()})
        # Every outline measured takes its pixels, rated or not (fallow, an error): a plot beside it fills none of
        # them. One never measured (``map_only``: a vertex typed kilometres off) would blank the fields it spans.
        parcels = assessment.parcels.to_crs(imagery.crs)
        measured = ~map_only(parcels["reason_all"].str.split(";"))
        drawn = parcels[parcels.geometry.notna() & ~parcels.geometry.is_empty & measured]
        geoms = drawn.geometry.to_numpy()
        health = drawn["health_index"].where(drawn["status"] != "error").to_numpy(dtype=np.float32)
        path = Path(scratch) / "health_index.tif"
        _write_strips(path, grid, 1, "float32", np.nan, _health_strips(geoms, health, grid))
        sources["health_index"] = (path, {})
        for name in (name for name in RASTER_NAMES if name in sources):
            files[name] = out_dir / f"{name}.tif"
            _to_cog(*sources[name], files[name], name)
            files[f"{name}_qml"] = files[name].with_suffix(".qml")
            files[f"{name}_qml"].write_text(qml_text(raster_style(name, classes)) + "\n", encoding="utf-8")
    return files


def pixel_classes(assessment: Assessment) -> tuple[str, ...]:
    """The class names of the run's ``cropland_class`` layer; empty when the model has no classes."""
    return assessment.pixels.class_names if assessment.pixels else ()


def scenes_by_clearness(imagery: Imagery, series: pd.DataFrame) -> list[Scene]:
    """The scenes, those whose date the parcels are clearest on (mean clear share) first; ties go mid-season.

    Where no parcel was measured, the scene's metadata cloud cover decides instead.
    """
    clear = series.groupby("date")["clear_share"].mean()
    middle = len(imagery.scenes) // 2

    def cloudiness(step: int) -> tuple[float, int]:
        scene = imagery.scenes[step]
        share = clear.get(pd.Timestamp(scene.acquired.date()), np.nan)
        if np.isfinite(share):
            return 1.0 - float(share), abs(step - middle)
        return 1.0 + (scene.cloud_cover if scene.cloud_cover is not None else 50.0) / 100, abs(step - middle)

    return [imagery.scenes[step] for step in sorted(range(len(imagery.scenes)), key=cloudiness)]


def _write_true_colour(path: Path, grid: RasterGrid, imagery: Imagery, scenes: list[Scene]) -> Scene | None:
    """Write the true colour of the first of ``scenes`` with red, green and blue files that read (a corrupt file
    costs the picture its date, not the run); the scene written, None when none could be. A date of several
    tiles or UTM zones is read as its statistics are: the mosaic of its parts on the imagery grid."""
    for scene in scenes:
        if all(band in part.band_paths for part in scene.parts or (scene,) for band in TRUE_COLOUR_BANDS):
            date = replace(imagery, scenes=(scene,), bands=TRUE_COLOUR_BANDS)
            try:
                _write_strips(path, grid, 3, "uint16", 0,
                              (_true_colour_strip(date, strip, grid.window) for strip in _strips(grid)))
            except UnreadableScene:  # a failure to write is the run's to tell (a full disk), not the date's
                continue
            return scene
    return None


class UnreadableScene(Exception):
    """A scene's red, green or blue file failed to read for the true-colour picture."""


def _true_colour_strip(imagery: Imagery, strip: Window, window: Window) -> np.ndarray:
    """Reflectance x 10^4 of B04/B03/B02 of ``imagery``'s one scene on ``strip`` of the output grid (``window`` of
    the imagery grid); 0 where no data.

    Raises:
        UnreadableScene: A file failed to read.
    """
    on_imagery = Window(window.col_off + strip.col_off, window.row_off + strip.row_off, strip.width, strip.height)
    cube = read_window(imagery, on_imagery, TRUE_COLOUR_BANDS)
    if cube.lost.any():  # a file failed where no other product of the date stood in
        raise UnreadableScene(f"{cube.read_errors[0][1]}: {cube.read_errors[0][2]}")
    reflectance = cube.reflectance[0] * REFLECTANCE_SCALE
    return np.where(np.isfinite(reflectance), np.clip(np.round(reflectance), 1, 65535), 0).astype(np.uint16)


def _health_strips(geoms: np.ndarray, values: np.ndarray, grid: RasterGrid) -> Iterator[np.ndarray]:
    """Each parcel's value (NaN for one not rated) on the pixels of ``grid`` whose centre it holds, NaN elsewhere, a
    strip (1, rows, cols) at a time in ``_strips`` order; a rated parcel holding no pixel centre (one another parcel
    burnt over counts as not) on the pixels it touches whose centre no parcel holds.

    Whether a parcel holds a centre is known once every strip it reaches is rasterized, so each strip's numbers are
    rasterized once, ahead of its burning, and kept until burnt, at most ``LOOKAHEAD_STRIPS`` ahead: a parcel reaching
    further (a tile-long one) has those strips rasterized an extra time rather than held.
    """
    bounds = shapely.bounds(geoms)
    strips = _strips(grid)
    near = [_near_strip(bounds, strip, grid.transform) for strip in strips]
    last_strip = np.zeros(len(geoms), dtype=int)
    for index, near_strip in enumerate(near):
        last_strip[near_strip] = index
    holds = np.zeros(len(geoms), dtype=bool)
    rated = np.isfinite(values)
    lookup = np.append(values, np.nan).astype(np.float32)  # number 0, no parcel, reads the NaN at its end
    kept: dict[int, np.ndarray] = {}
    counted = -1  # the strips up to this one have had their parcels holding centres told
    for index, strip in enumerate(strips):
        for ahead in range(index, int(last_strip[near[index]].max(initial=index)) + 1):
            keep = ahead <= index + LOOKAHEAD_STRIPS
            if ahead in kept or (ahead <= counted and not keep):
                continue
            numbers = _parcel_numbers(geoms, near[ahead], strips[ahead], grid.transform)
            holds[np.unique(numbers[numbers > 0]) - 1] = True
            counted = max(counted, ahead)
            if keep:
                kept[ahead] = numbers
        held = kept.pop(index)
        touched = _parcel_numbers(geoms, near[index] & ~holds & rated, strip, grid.transform, all_touched=True)
        yield np.where(held > 0, lookup[held - 1], lookup[touched - 1])[None]


def _parcel_numbers(geoms: np.ndarray, chosen: np.ndarray, strip: Window, transform: rasterio.Affine,
                    all_touched: bool = False) -> np.ndarray:
    """Over the strip, the number (position + 1) of the ``chosen`` parcel burnt into each pixel: the last holding its
    centre (or touching it, ``all_touched``); 0 where none."""
    numbers = np.zeros((int(strip.height), int(strip.width)), dtype=np.int32)
    chosen = np.flatnonzero(chosen)
    if chosen.size:
        rasterio.features.rasterize(zip(geoms[chosen], chosen + 1), out=numbers, all_touched=all_touched,
                                    transform=rasterio.windows.transform(strip, transform))
    return numbers


def _near_strip(bounds: np.ndarray, strip: Window, transform: rasterio.Affine) -> np.ndarray:
    """Which geometries' ``bounds`` (n, 4) overlap the strip."""
    x0, y0, x1, y1 = rasterio.windows.bounds(strip, transform)
    return (bounds[:, 0] < x1) & (bounds[:, 2] > x0) & (bounds[:, 1] < y1) & (bounds[:, 3] > y0)


def _strips(grid: RasterGrid) -> list[Window]:
    """The grid's rows in strips of ``STRIP_ROWS``, top to bottom."""
    height, width = int(grid.window.height), int(grid.window.width)
    return [Window(0, top, width, min(STRIP_ROWS, height - top)) for top in range(0, height, STRIP_ROWS)]


def _write_strips(path: Path, grid: RasterGrid, count: int, dtype: str, nodata: float,
                  strip_values: Iterable[np.ndarray]) -> None:
    """Fill a GeoTIFF on ``grid`` strip by strip with ``strip_values``, one (count, rows, cols) per ``_strips(grid)``.

    Raises:
        RasterioError: It could not be written (named, with GDAL's words: a full disk, say).
    """
    try:
        with _create_tiff(path, grid, count, dtype, nodata) as dataset:
            for strip, values in zip(_strips(grid), strip_values, strict=True):
                dataset.write(values, window=strip)
    except RASTER_WRITE_ERRORS as exc:
        raise RasterioError(f"{path.name} (written first in {path.parent}): {gdal_message(exc)}") from exc


def _create_tiff(path: Path, grid: RasterGrid, count: int, dtype: str, nodata: float,
                 **options: object) -> rasterio.io.DatasetWriter:
    """A tiled, uncompressed GeoTIFF on ``grid``: fast to fill in any order, compressed by ``_to_cog``."""
    return rasterio.open(path, "w", driver="GTiff", width=int(grid.window.width), height=int(grid.window.height),
                         count=count, dtype=dtype, nodata=nodata, crs=grid.crs, transform=grid.transform, tiled=True,
                         blockxsize=BLOCK_PX, blockysize=BLOCK_PX, **options)


def _to_cog(source: Path, tags: dict[str, str], target: Path, name: str) -> None:
    """Copy ``source`` to a Cloud-Optimized GeoTIFF with overviews, its description and ``tags``."""
    with rasterio.open(source, "r+") as dataset:
        dataset.update_tags(DESCRIPTION=DESCRIPTIONS[name], **tags)
        for band in range(1, dataset.count + 1):
            dataset.set_band_description(band, TRUE_COLOUR_BANDS[band - 1] if name == "true_colour" else name)
        if name == "true_colour":  # red, green, blue also for tools that ignore the .qml
            dataset.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
    target.unlink(missing_ok=True)
    # Averaged overviews: a zoomed-out map shows each area's mean, not one sampled pixel (classes: the commonest).
    rasterio.shutil.copy(source, target, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES", BLOCKSIZE=BLOCK_PX,
                         OVERVIEW_RESAMPLING="MODE" if name in CATEGORICAL else "AVERAGE", NUM_THREADS="ALL_CPUS")
