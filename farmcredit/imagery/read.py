"""`read_window`: a window of a season as reflectance on the base grid, with a clear-sky mask."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from itertools import chain
from typing import TypeVar

import affine
import numpy as np
import rasterio
import rasterio.crs
import rasterio.warp
import rasterio.windows
from rasterio.errors import RasterioError
from rasterio.windows import Window

from farmcredit.errors import ImageryError
from farmcredit.formats import open_raster
from farmcredit.imagery._gdal import NO_CRS, gdal_env, gdal_message
from farmcredit.imagery.naming import L2A_DN_SCALE, NDVI_BANDS, SCL, band_name
from farmcredit.imagery.scene import Imagery, Scene

ArrayOrTensor = TypeVar("ArrayOrTensor")
# SCL 4 vegetation, 5 not vegetated, 6 water; 7 (unclassified) is left out by choice.
CLEAR_SCL_CLASSES: tuple[int, ...] = (4, 5, 6)
SNOW_SCL, WATER_SCL = 11, 6
# A pixel reads as snow (Fmask's and Sen2Cor's test) where its NDSI, (B03 - B11) / (B03 + B11), is over 0.4 with green
# over 0.1 and NIR over 0.11: the NIR floor keeps turbid water and flooded paddies (bright green, dark NIR) out. Such a
# pixel is not clear whatever its SCL: a cloud mask of the user's own (s2cloudless, eo-learn's CLM) writes snow as 4,
# and Sen2Cor leaks thin or patchy snow as 4 or 5; snow read as bare land wipes the fields out of the cropland map.
SNOW_BANDS: tuple[str, str, str] = ("B03", "B08", "B11")
SNOW_MIN_NDSI, SNOW_MIN_GREEN, SNOW_MIN_NIR = 0.4, 0.1, 0.11
# Where Sen2Cor calls the pixel water (SCL 6), NIR must be over 0.3, as snow's is (0.75 fresh, 0.4 and more old) and
# silt-laden water's is not (the sample season's ponds, as the Yellow River, reach NIR 0.2 with NDSI 0.6); snow left
# clear on water pixels still cost a CNN a hundred approvals of 752 parcels (3% of the scene).
SNOW_MIN_NIR_ON_WATER = 0.3
DEFAULT_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B08", "B8A", "B11")
# Reflectance no land surface has: under L2A's lowest (-0.1, its offset) a fill value such as -9999 or -1; above 2
# (snow and glint reach about 1.6) a fill such as 65535 or saturation, unless most values are so: digital numbers,
# which the CNN refuses with advice.
MIN_REFLECTANCE, HIGH_REFLECTANCE = -0.2, 2.0
# Values a float band is judged on (``float_scale``).
SAMPLE_VALUES = 1000


def float_scale(bands: Iterable[tuple[rasterio.DatasetReader, int]]) -> float:
    """Reflectance per stored value of float bands (each a dataset and band index): 1 where they hold reflectance (0-1:
    SNAP, openEO, a FLOAT32 export), 1e-4 where most of their values are over ``HIGH_REFLECTANCE``: DNs stored as
    floats (an Earth Engine export cast to float).

    Each band is sampled by a decimated read, then block by block while fewer than ``SAMPLE_VALUES`` values are found
    (data clipped to small parcels, a first date masked whole), the bands pooled. A band that does not read is passed
    over: its reads fail where parcels need it, and are reported there.
    """
    found: list[np.ndarray] = []
    for values in _sampled(bands):
        found.append(values)
        if sum(map(len, found)) >= SAMPLE_VALUES:
            break
    values = np.concatenate(found) if found else np.empty(0)
    return L2A_DN_SCALE if values.size and np.mean(values > HIGH_REFLECTANCE) > 0.5 else 1.0


def _sampled(bands: Iterable[tuple[rasterio.DatasetReader, int]]) -> Iterator[np.ndarray]:
    """The values with data of each band's decimated read, then of its blocks in turn (``float_scale``)."""
    for dataset, index in bands:
        for window in chain([None], (window for _, window in dataset.block_windows(index))):
            try:
                sample = (dataset.read(index, out_shape=(min(dataset.height, 64), min(dataset.width, 64)), masked=True)
                          if window is None else dataset.read(index, window=window, masked=True)).compressed()
            except RasterioError:
                break
            yield sample[np.isfinite(sample) & (sample != 0)]


def is_reflectance(values: ArrayOrTensor) -> ArrayOrTensor:
    """Where ``values`` (a numpy array or a torch tensor) could be land's reflectance: finite, from
    ``MIN_REFLECTANCE`` to ``HIGH_REFLECTANCE`` (NaN and infinities fail both comparisons)."""
    return (values >= MIN_REFLECTANCE) & (values <= HIGH_REFLECTANCE)


@dataclass(frozen=True)
class SeasonCube:
    """A window of a season on the base (10 m) grid.

    Attributes:
        reflectance: float32 (time, band, rows, cols), surface reflectance 0-1; NaN where no data.
        clear: bool (time, rows, cols): data in every cube band, SCL in the clear classes (every data pixel for
            scenes without SCL) and not read as snow (``looks_like_snow``, where the cube holds ``SNOW_BANDS``).
        snow: bool (time, rows, cols): data and snow: SCL ``SNOW_SCL``, or read as snow where the SCL called it
            clear (cloud it calls cloud stays so); never clear.
        snow_unmasked: bool (time, rows, cols): read as snow where the SCL (or a scene without one) called it clear:
            masked as snow here, not by the cloud mask.
        bands: Band names along the band axis.
        dates: Acquisition date of each time step.
        scene_ids: Scene id of each time step.
        source: int16 (time, rows, cols): the index, in its scene's ``parts`` (0 for a scene of one product), of the
            product each pixel was read from (cloud or a band's fill value too); -1 where none has data in any band.
        transform: Affine transform of this window, metres.
        crs: CRS of the window.
        read_errors: (scene_id, path, message) for files that failed to open or decode in this window where
            their scene (mosaic part) has data; only the blocks (tiles, strips) that fail are NaN and not clear.
        lost: bool (time, rows, cols): where a read failure cost a date a clear pixel: the file's failed part had
            data there (or nothing else of the product read to tell), its SCL was not read as cloudy there, and no
            other part of the scene supplied a clear pixel (a cloudy pixel lost costs no clear date).
        uncovered: bool (time, rows, cols): where a band file short of its product's extent (cropped or exported
            apart) left a date without data, or an SCL so short left it not clear: the product's other files have
            data there, that one does not reach it, and (as for ``lost``) it would have been clear and no other part
            of the scene supplied a clear pixel.
        error_lost: bool (k, rows, cols), one for each of ``read_errors``: where that file's failure cost its date a
            clear pixel (``lost``, of that file alone).
    """

    reflectance: np.ndarray
    clear: np.ndarray
    bands: tuple[str, ...]
    dates: tuple[date, ...]
    scene_ids: tuple[str, ...]
    source: np.ndarray
    transform: affine.Affine
    crs: rasterio.crs.CRS
    read_errors: tuple[tuple[str, str, str], ...]
    lost: np.ndarray
    uncovered: np.ndarray
    error_lost: np.ndarray
    snow: np.ndarray
    snow_unmasked: np.ndarray

    def crop(self, window: Window) -> SeasonCube:
        """The part of this cube under ``window`` (whole pixels, in this cube's pixel coordinates, inside it)."""
        rows, cols = window.toslices()
        return replace(self, reflectance=self.reflectance[..., rows, cols], clear=self.clear[..., rows, cols],
                       source=self.source[..., rows, cols], lost=self.lost[..., rows, cols],
                       uncovered=self.uncovered[..., rows, cols], error_lost=self.error_lost[..., rows, cols],
                       snow=self.snow[..., rows, cols], snow_unmasked=self.snow_unmasked[..., rows, cols],
                       transform=self.transform @ affine.Affine.translation(cols.start, rows.start))

    def imaged(self) -> np.ndarray:
        """bool (rows, cols): where the imagery holds red and NIR on at least one date, so a cell clouded on every
        date is imaged and one of no data or fill values on every date (a swath's edge, off the grid) is not; every
        cell a read failure left without data on some date (``lost``), whose data is unknown."""
        red, nir = (self.reflectance[:, self.bands.index(band)] for band in NDVI_BANDS)
        return (np.isfinite(red) & np.isfinite(nir)).any(axis=0) | self.lost.any(axis=0)


def read_window(
    imagery: Imagery,
    window: Window,
    bands: Sequence[str] = DEFAULT_BANDS,
    clear_classes: Collection[int] = CLEAR_SCL_CLASSES,
) -> SeasonCube:
    """Read one window of every scene, bringing 20 m / 60 m bands and SCL to the 10 m grid.

    Only the window is read from each file. Coarser pixels are repeated (nearest neighbour: each
    20 m pixel becomes 2x2), so a mixed coarse pixel stays one honest value rather than a blend.
    A file that fails to decode is read again block by block (its tiles or strips): only the pixels of the blocks
    that fail are NaN and not clear (all of the scene's for a file that does not open), and they are ``lost`` where
    they would have been clear (the failed part's SCL clear there, or not read) and no other part of the scene
    supplies a clear pixel;
    the file is listed in ``read_errors`` where its scene has data there.
    A pixel that reads as snow (``looks_like_snow``; where ``bands`` hold ``SNOW_BANDS``) is not clear whatever its
    SCL (water's with a higher NIR floor), and is ``snow`` as one SCL calls snow is.
    Pixels a band file (SCL included) does not reach, where its product's other files have data, are ``uncovered``
    on that date where (as for ``lost``) they would have been clear and no other part of the scene supplies a clear
    pixel.

    Args:
        imagery: From `open_imagery`.
        window: On the base grid, whole pixels (fractions are rounded); may extend beyond the grid,
            where the cube is NaN and not clear.
        bands: Bands wanted; those not in every scene (``imagery.bands``) are left out of the cube.
        clear_classes: SCL classes counted as clear sky.

    Returns:
        The season cube of the window.

    >>> window = Window(col_off=100, row_off=200, width=64, height=64)  # doctest: +SKIP
    >>> cube = read_window(imagery, window, bands=("B04", "B08"))  # doctest: +SKIP
    >>> cube.reflectance.shape  # (time, band, rows, cols)  # doctest: +SKIP
    (3, 2, 64, 64)
    """
    col_off, row_off, width, height = (
        int(round(value))
        for value in (window.col_off, window.row_off, window.width, window.height)
    )
    if width < 0 or height < 0:
        raise ValueError(f"window has a negative size: {window}")
    cube_bands = _cube_bands(imagery, bands)
    base = imagery.transform
    columns = col_off + np.arange(width)
    rows = row_off + np.arange(height)
    x_centres = base.c + (columns + 0.5) * base.a
    y_centres = base.f + (rows + 0.5) * base.e
    inside = ((rows >= 0) & (rows < imagery.shape[0]))[:, None] & (
        (columns >= 0) & (columns < imagery.shape[1])
    )[None, :]
    clear_values = np.asarray(list(clear_classes))

    reflectance = np.full(
        (len(imagery.scenes), len(cube_bands), height, width), np.nan, dtype=np.float32
    )
    clear = np.zeros((len(imagery.scenes), height, width), dtype=bool)
    source = np.full((len(imagery.scenes), height, width), -1, dtype=np.int16)
    lost = np.zeros((len(imagery.scenes), height, width), dtype=bool)
    uncovered = np.zeros((len(imagery.scenes), height, width), dtype=bool)
    snow = np.zeros((len(imagery.scenes), height, width), dtype=bool)
    snow_unmasked = np.zeros((len(imagery.scenes), height, width), dtype=bool)
    read_errors: list[tuple[str, str, str]] = []
    error_lost: list[np.ndarray] = []
    with gdal_env():
        for step, scene in enumerate(imagery.scenes):
            # Per pixel: 0 no data, 1 data, 2 clear; a later mosaic part replaces only a worse pixel.
            best = np.full((height, width), -1, dtype=np.int8)
            # Per pixel, whether a failed part would have given a clear pixel where it lost data, and the same of a
            # part whose file is short of its extent where the file does not reach.
            wanted = np.zeros((height, width), dtype=bool)
            short = np.zeros((height, width), dtype=bool)
            wanted_by_file: list[np.ndarray] = []  # each failed file's share of ``wanted``
            for index, part in enumerate(scene.parts or (scene,)):
                layers_wanted = [*cube_bands, SCL] if SCL in part.band_paths else list(cube_bands)
                layers, unread, failures, unreached = _read_layers(part, layers_wanted, x_centres, y_centres,
                                                                   imagery.crs)
                values = np.stack([(layers[band] + part.dn_offset) * part.dn_scale for band in cube_bands])
                values[:, ~inside] = np.nan
                any_data = np.logical_or.reduce([np.isfinite(layer) for layer in layers.values()])
                if failures:
                    failed = np.logical_or.reduce(list(unread.values()))
                    values[:, failed] = np.nan
                    # A failure costs the part where it has data: the layers that were read tell where (all of it
                    # where none was). A part of a mosaic that holds no pixel of the window costs nothing.
                    unknown = np.logical_and.reduce(list(unread.values())) if len(unread) == len(layers) else False
                    had_data = unknown | any_data
                    if (lost_here := failed & had_data & inside).any():
                        wanted_here = lost_here & _would_be_clear(layers, unread, clear_values)
                        wanted |= wanted_here
                        for path, message in failures:
                            read_errors.append((part.scene_id, path, message))
                            wanted_by_file.append(wanted_here & np.logical_or.reduce(
                                [unread[layer] for layer in unread if part.band_paths[layer][0] == path]))
                # Off a short file's extent the part's other files tell whether it had data (a part of a mosaic
                # beside the window reaches none of it, and costs nothing); an SCL short of it leaves the pixel
                # not known to be cloudy, as a failed one does.
                if (unreached_here := np.logical_or.reduce(list(unreached.values()), initial=False) & inside
                        & any_data).any():
                    short |= unreached_here & _would_be_clear(layers, unreached, clear_values)
                has_data = np.isfinite(values).all(axis=0)
                masked_clear = has_data & np.isin(layers[SCL], clear_values) if SCL in layers else has_data
                read_as_snow = looks_like_snow(values, cube_bands, np.where(
                    layers[SCL] == WATER_SCL, SNOW_MIN_NIR_ON_WATER, SNOW_MIN_NIR) if SCL in layers else SNOW_MIN_NIR)
                is_clear = masked_clear & ~read_as_snow
                unmasked = masked_clear & read_as_snow
                # What the SCL calls cloud stays cloud: bright ice cloud can pass the snow test.
                scl_snow = has_data & (layers[SCL] == SNOW_SCL) & ~is_clear if SCL in layers else False
                is_snow = unmasked | scl_snow
                quality = has_data.astype(np.int8) + is_clear
                take = quality > best
                reflectance[step][:, take] = values[:, take]
                clear[step][take] = is_clear[take]
                snow[step][take] = is_snow[take]
                snow_unmasked[step][take] = unmasked[take]
                source[step][take] = np.where(has_data[take], index, -1)
                best[take] = quality[take]
            # Lost where the failed part would have given a clear pixel and no other part of the scene supplied one
            # (a cloudy pixel lost costs no clear date).
            lost[step] = wanted & (best < 2)
            uncovered[step] = short & (best < 2)
            error_lost.extend(file_wanted & (best < 2) for file_wanted in wanted_by_file)

    _mask_fill_values(reflectance, clear)
    source[~np.isfinite(reflectance).any(axis=1)] = -1  # every band a fill value: nothing was read there
    return SeasonCube(
        reflectance=reflectance,
        clear=clear,
        bands=cube_bands,
        dates=tuple(scene.acquired.date() for scene in imagery.scenes),
        scene_ids=tuple(scene.scene_id for scene in imagery.scenes),
        source=source,
        transform=rasterio.windows.transform(Window(col_off, row_off, width, height), base),
        crs=imagery.crs,
        read_errors=tuple(read_errors),
        lost=lost,
        uncovered=uncovered,
        error_lost=np.array(error_lost, dtype=bool).reshape(len(error_lost), height, width),
        snow=snow,
        snow_unmasked=snow_unmasked,
    )


def looks_like_snow(
    values: np.ndarray, bands: Sequence[str], min_nir: float | np.ndarray = SNOW_MIN_NIR
) -> np.ndarray:
    """bool (rows, cols): where ``values`` (band, rows, cols; reflectance 0-1, of ``bands``) read as snow (NDSI over
    ``SNOW_MIN_NDSI``, green over ``SNOW_MIN_GREEN``, NIR over ``min_nir``, one or per pixel); nowhere without
    ``SNOW_BANDS``.

    >>> looks_like_snow(np.array([[[0.84, 0.08]], [[0.75, 0.03]], [[0.08, 0.02]]]), SNOW_BANDS).tolist()  # snow, water
    [[True, False]]
    """
    if not set(SNOW_BANDS) <= set(bands):
        return np.zeros(values.shape[1:], dtype=bool)
    green, nir, swir = (values[list(bands).index(band)] for band in SNOW_BANDS)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndsi = (green - swir) / (green + swir)
    return (ndsi > SNOW_MIN_NDSI) & (green > SNOW_MIN_GREEN) & (nir > min_nir)


def _would_be_clear(
    layers: dict[str, np.ndarray], unread: dict[str, np.ndarray], clear_values: np.ndarray
) -> np.ndarray:
    """bool (rows, cols): where a part whose files failed (``unread``; or do not reach the pixel) would have given
    a clear pixel: all but where its SCL was read and is not clear (clear, or not known to be cloudy: only a clear
    pixel of another part stands in for it)."""
    shape = next(iter(layers.values())).shape
    if SCL not in layers:
        return np.ones(shape, dtype=bool)
    return np.isin(layers[SCL], clear_values) | unread.get(SCL, np.zeros(shape, dtype=bool))


def _cube_bands(imagery: Imagery, bands: Sequence[str]) -> tuple[str, ...]:
    """The requested bands present in every scene, in the order asked, each once."""
    names = []
    for label in bands:
        name = band_name(label)
        if name is None or name == SCL:
            raise ValueError(f"{label!r} is not a Sentinel-2 reflectance band")
        if name in imagery.bands and name not in names:
            names.append(name)
    if not names:
        raise ImageryError(
            f"{imagery.source}: none of the bands {tuple(bands)} is in every scene "
            f"(available: {imagery.bands})"
        )
    return tuple(names)


def _read_layers(
    scene: Scene, layers: Sequence[str], x_centres: np.ndarray, y_centres: np.ndarray, crs: rasterio.crs.CRS
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[tuple[str, str]], dict[str, np.ndarray]]:
    """Raw values (DN or SCL class) of each layer on the window, float32, NaN where no data or not read.

    Pixel centres are in ``crs``; a file in another CRS is sampled at the centres transformed into its own.

    Returns:
        The layers; bool masks of where the layers of files that failed were not read (everywhere for a file that
        does not open); (path, GDAL's message) of those files; and bool masks of the pixels whose centre lies
        beyond the extent of a layer's file, for the layers of files that opened and reach not all of them.
    """
    by_path: dict[str, list[tuple[str, int]]] = {}
    for layer in layers:
        layer_path, index = scene.band_paths[layer]
        by_path.setdefault(layer_path, []).append((layer, index))
    shape = (len(y_centres), len(x_centres))
    values: dict[str, np.ndarray] = {}
    unread: dict[str, np.ndarray] = {}
    unreached: dict[str, np.ndarray] = {}
    failures: list[tuple[str, str]] = []
    for layer_path, wanted in by_path.items():
        indexes = [index for _, index in wanted]
        sampled, failed, message = np.full((len(indexes), *shape), np.nan, dtype=np.float32), None, None
        reached = np.ones(shape, dtype=bool)
        try:
            with open_raster(layer_path) as dataset:
                if dataset.crs is None:  # not georeferenced (a picture saved as B05.tif): no pixel is placed
                    message = NO_CRS
                elif dataset.crs == crs:
                    sampled, reached, failed, message = _sample(dataset, indexes, x_centres, y_centres)
                else:
                    sampled, reached, failed, message = _sample_reprojected(dataset, indexes, x_centres, y_centres,
                                                                            crs)
        except RasterioError as error:
            message = gdal_message(error)
        if message is not None:
            failures.append((layer_path, message))
            failed = np.ones(shape, dtype=bool) if failed is None else failed
            unread.update((layer, failed) for layer, _ in wanted)
        elif not reached.all():
            unreached.update((layer, ~reached) for layer, _ in wanted)
        values.update((layer, array) for (layer, _), array in zip(wanted, sampled, strict=True))
    return values, unread, failures, unreached


def _read_blocks(
    dataset: rasterio.DatasetReader, indexes: list[int], window: Window
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """float32 (len(indexes), rows, cols) of ``window`` (inside the file); where that read fails, each of the file's
    blocks (tiles, or strips) under the window is read in turn, NaN on those that fail (a file cut short).

    Returns:
        The values, the bool (rows, cols) mask of pixels not read (None when all were) and GDAL's message of the
        failed whole read (None when all were read).
    """
    try:
        return dataset.read(indexes, window=window, out_dtype="float32"), None, None
    except RasterioError as error:
        message = gdal_message(error)
    (top, bottom), (left, right) = window.toranges()
    values = np.full((len(indexes), bottom - top, right - left), np.nan, dtype=np.float32)
    failed = np.zeros(values.shape[1:], dtype=bool)
    block_height, block_width = dataset.block_shapes[indexes[0] - 1]
    for row in range(top // block_height * block_height, bottom, block_height):
        for column in range(left // block_width * block_width, right, block_width):
            r0, r1 = max(row, top), min(row + block_height, bottom)
            c0, c1 = max(column, left), min(column + block_width, right)
            part = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
            try:
                values[(slice(None), *part)] = dataset.read(
                    indexes, window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float32")
            except RasterioError:
                failed[part] = True
    return (values, failed, message) if failed.any() else (values, None, None)


def _sample(
    dataset: rasterio.DatasetReader,
    indexes: list[int],
    x_centres: np.ndarray,
    y_centres: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str | None]:
    """The file's pixels containing each base-pixel centre (nearest neighbour), NaN where no data or not read.

    Returns:
        float32 (len(indexes), len(y_centres), len(x_centres)); bool (len(y_centres), len(x_centres)), where a
        centre lies within the file's extent; and as `_read_blocks` the pixels not read and why.
    """
    grid = dataset.transform
    columns = np.floor((x_centres - grid.c) / grid.a).astype(np.int64)
    rows = np.floor((y_centres - grid.f) / grid.e).astype(np.int64)
    column_ok = (columns >= 0) & (columns < dataset.width)
    row_ok = (rows >= 0) & (rows < dataset.height)
    out = np.full((len(indexes), rows.size, columns.size), np.nan, dtype=np.float32)
    reached = row_ok[:, None] & column_ok[None, :]
    if not reached.any():
        return out, reached, None, None
    first_column, first_row = columns[column_ok].min(), rows[row_ok].min()
    block, unread, message = _read_blocks(dataset, indexes, Window(
        first_column,
        first_row,
        columns[column_ok].max() + 1 - first_column,
        rows[row_ok].max() + 1 - first_row,
    ))
    to, start = np.ix_(row_ok.nonzero()[0], column_ok.nonzero()[0]), np.ix_(rows[row_ok] - first_row,
                                                                           columns[column_ok] - first_column)
    out[(slice(None), *to)] = block[(slice(None), *start)]
    _mask_nodata(dataset, indexes, out)
    return out, reached, _placed(unread, out.shape[1:], to, start), message


def _sample_reprojected(
    dataset: rasterio.DatasetReader,
    indexes: list[int],
    x_centres: np.ndarray,
    y_centres: np.ndarray,
    crs: rasterio.crs.CRS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str | None]:
    """`_sample` for a file in another CRS (a neighbouring UTM zone): nearest pixel to each centre."""
    x_grid, y_grid = np.meshgrid(x_centres, y_centres)
    xs, ys = rasterio.warp.transform(crs, dataset.crs, x_grid.ravel(), y_grid.ravel())
    grid = dataset.transform
    columns = np.floor((np.asarray(xs) - grid.c) / grid.a).astype(np.int64).reshape(x_grid.shape)
    rows = np.floor((np.asarray(ys) - grid.f) / grid.e).astype(np.int64).reshape(x_grid.shape)
    ok = (columns >= 0) & (columns < dataset.width) & (rows >= 0) & (rows < dataset.height)
    out = np.full((len(indexes), *x_grid.shape), np.nan, dtype=np.float32)
    if not ok.any():
        return out, ok, None, None
    first_column, first_row = columns[ok].min(), rows[ok].min()
    window = Window(first_column, first_row, columns[ok].max() + 1 - first_column, rows[ok].max() + 1 - first_row)
    block, unread, message = _read_blocks(dataset, indexes, window)
    start = (rows[ok] - first_row, columns[ok] - first_column)
    out[:, ok] = block[(slice(None), *start)]
    _mask_nodata(dataset, indexes, out)
    return out, ok, _placed(unread, out.shape[1:], ok, start), message


def _placed(
    unread: np.ndarray | None, shape: tuple[int, ...], to: tuple[np.ndarray, ...] | np.ndarray, start: tuple
) -> np.ndarray | None:
    """The file's pixels not read (``_read_blocks``) as the base pixels sampled from them, by the samplers' indices."""
    if unread is None:
        return None
    placed = np.zeros(shape, dtype=bool)
    placed[to] = unread[start]
    return placed


def _mask_fill_values(reflectance: np.ndarray, clear: np.ndarray) -> None:
    """Make clear values no land surface has no data, in place: under ``MIN_REFLECTANCE`` always, above
    ``HIGH_REFLECTANCE`` where they are the few of their date and band's clear values (fill values, saturation;
    most: that band of that date is in digital numbers, left for the model to refuse). A pixel-date with one such
    band is not clear."""
    seen = clear[:, None] & np.isfinite(reflectance)
    high = seen & (reflectance > HIGH_REFLECTANCE)
    unreal = seen & (reflectance < MIN_REFLECTANCE)
    few = np.count_nonzero(high, axis=(-2, -1)) <= 0.5 * np.count_nonzero(seen, axis=(-2, -1))
    unreal |= high & few[..., None, None]
    reflectance[unreal] = np.nan
    clear &= ~unreal.any(axis=1)


def _mask_nodata(dataset: rasterio.DatasetReader, indexes: list[int], out: np.ndarray) -> None:
    """Set no-data samples (DN 0, the header's nodata, non-finite) to NaN, in place."""
    for layer, index in enumerate(indexes):
        nodata = dataset.nodatavals[index - 1]
        # DN 0 is Sentinel-2's no-data value whatever the file header says.
        missing = (out[layer] == 0) | ~np.isfinite(out[layer])
        if nodata is not None:
            missing |= out[layer] == nodata
        out[layer][missing] = np.nan
