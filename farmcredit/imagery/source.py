"""`open_imagery`: find a season's scenes, open each band file's header once, check the grids."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.errors import RasterioError

from farmcredit.dates import as_season
from farmcredit.errors import ImageryError
from farmcredit.formats import open_raster
from farmcredit.imagery._gdal import NO_CRS, gdal_env, gdal_message
from farmcredit.imagery.earthsearch import find_scenes
from farmcredit.imagery.mosaic import Grid, merge_same_date, season_grid
from farmcredit.imagery.naming import BASE_GRID_BANDS, NDVI_BANDS, SCL, SURFACE_BANDS, band_sort_key
from farmcredit.imagery.safe import safe_scenes
from farmcredit.imagery.scene import Imagery, Scene
from farmcredit.imagery.stack import stack_scenes
from farmcredit.text import some

logger = logging.getLogger(__name__)


def open_imagery(
    src: str | Path,
    season: str | Sequence[date | str] | None = None,
    *,
    band_layout: Sequence[tuple[date | str | None, str]] | None = None,
    dn_offset: float | None = None,
    fetch_parcels: str = "PARCELS",
) -> Imagery:
    """Open a season of Sentinel-2 L2A scenes from a folder, a SAFE product or a multi-band GeoTIFF stack.

    Scenes on different tiles or UTM zones are read on one grid and scenes of one date are
    mosaicked (see `farmcredit.imagery.mosaic`).

    Args:
        src: A folder of Earth Search-layout scene folders and/or L2A SAFE products (.SAFE folders
            or their .zip), searched recursively; a single SAFE product; or a stack file.
        season: First and last day, inclusive, as ``assess`` takes it (``START/END`` text or a pair of dates,
            datetimes, Timestamps or YYYY-MM-DD text: ``farmcredit.dates.as_season``, of any length); scenes
            acquired outside are left out.
        band_layout: For a stack without usable band descriptions: (date or None, band name)
            per raster band, in order (dates in the forms ``season`` takes).
        dn_offset: DN offset for scene folders without a STAC item and for integer stacks
            (default 0); items and SAFE products carry their own (given where every scene does, it is warned of as
            ignored).
        fetch_parcels: The parcels as the ``farmcredit fetch`` command a season after the scenes' prints them (the
            file and the options it is read with).

    Returns:
        One scene per date sorted by acquisition time, on the base (10 m) grid of the season. Band files are local
        (an item's hrefs are read inside ``src``: see ``scene_from_item``); those GDAL cannot open are listed in
        ``unopened`` and warned of: a band no scene's file opens is read on no date; otherwise reading the file fails
        where its scene has data, costing the parcels there that date; a scene with no 10 m band file that opens is
        left out. A folder under ``src`` that cannot be listed (permissions) is warned of and kept in
        ``unread_folders``: its scenes are not read.

    Raises:
        InputError: ``season`` is not such a pair, or ends before it starts.
        ImageryError: src is missing, cannot be listed or holds no scenes, no scene has a 10 m
            band file or (of those with one) an SCL file GDAL can open, the stack's bands cannot be
            identified, or a `farmcredit simulate` writing src did not finish.

    >>> imagery = open_imagery("s2/earthsearch-29RKH-2020")  # doctest: +SKIP
    >>> imagery.bands[:4], imagery.shape  # doctest: +SKIP
    (('B01', 'B02', 'B03', 'B04'), (1098, 1098))
    """
    season = as_season(season, None)
    path = Path(src)
    if not path.exists():
        from farmcredit.imagery.fetch import parse_remote_source

        remote = " (a remote source: fetch it into a folder first, `farmcredit fetch` or "\
            "farmcredit.imagery.fetch.fetch_imagery, and read that)" if parse_remote_source(str(src)) else ""
        raise ImageryError(f"{path}: imagery source does not exist{remote}")
    if path.is_dir() or path.suffix.lower() == ".zip":
        if band_layout is not None:
            raise ImageryError(f"{path}: a band layout, --bands (band_layout= in Python), applies to a GeoTIFF "
                               "stack, not a folder or SAFE product; leave it out")
        scenes, unread_folders = find_scenes(path, dn_offset, season) if path.is_dir() else (safe_scenes(path), [])
    else:
        scenes, unread_folders = stack_scenes(path, band_layout, dn_offset, season), []
    if not scenes:
        raise ImageryError(
            f"{path}: no Sentinel-2 scenes found (expected scene folders with band files such as "
            "B04.tif, or STAC items)"
        )
    if season is not None:
        scenes = _season_scenes(scenes, season, path, fetch_parcels)
    scenes.sort(key=lambda scene: (scene.acquired, scene.scene_id))
    if dn_offset is not None and all(scene.level is not None for scene in scenes):  # each has an item's or a SAFE's
        logger.warning("%s: every scene's STAC item or SAFE metadata gives its DN offset (%s): --dn-offset %g "
                       "(dn_offset= in Python) is ignored", path,
                       ", ".join(f"{offset:g}" for offset in sorted({scene.dn_offset for scene in scenes})), dn_offset)

    # A stack's scenes all point into one file: open each path once for the whole season.
    headers: dict[str, Grid | str] = {}
    with gdal_env():
        for scene in scenes:
            for band_path, _ in scene.band_paths.values():
                if band_path not in headers:
                    headers[band_path] = _header(band_path)
    _warn_of_misplaced_bands(scenes, headers)
    unopened = tuple((scene.scene_id, band, scene.band_paths[band][0], message) for scene in scenes
                     for band in sorted(scene.band_paths, key=band_sort_key)
                     if isinstance(message := headers[scene.band_paths[band][0]], str))
    scenes, grids, unread = _with_grids(scenes, headers, unopened)
    scenes = _without_unopenable_bands(scenes, headers)
    scenes, grids, without_ndvi = _with_ndvi_bands(scenes, grids)
    grid = season_grid(scenes, grids)
    scenes = merge_same_date(scenes, grids, grid)

    products = _products(scenes)
    bands, has_scl = _band_summary(products)
    somewhere = set().union(*(set(product.band_paths) for product in products))
    if SCL not in somewhere:
        logger.warning("no scene has a scene classification (SCL) layer: clouds, shadows and haze are not masked "
                       "(every pixel with data counts as clear; a clouded date reads as bare land); give L2A products "
                       "with their SCL, or a stack with a band named SCL")
    elif unmasked := [product.scene_id for product in products if SCL not in product.band_paths]:
        logger.warning("%d scene(s) have no SCL layer, which other scenes have: their clouds are not masked (every "
                       "pixel with data counts as clear): %s", len(unmasked), some(unmasked))
    for band in sorted(somewhere.intersection(SURFACE_BANDS) - set(bands), key=band_sort_key):
        lacking = [product.scene_id for product in products if band not in product.band_paths]
        logger.warning("band %s is not in every scene, so it is read on no date (%d lack it: %s)",
                       band, len(lacking), some(lacking))
    return Imagery(
        source=str(path),
        scenes=tuple(scenes),
        crs=grid.crs,
        transform=grid.transform,
        shape=grid.shape,
        bands=bands,
        has_scl=has_scl,
        unopened=unopened,
        left_out=(*unread, *without_ndvi),
        unread_folders=tuple(unread_folders),
        band_layout=None if band_layout is None else tuple(band_layout),
        dn_offset=dn_offset,
    )


def within_season(imagery: Imagery, season: str | Sequence[date | str] | None) -> Imagery:
    """``imagery`` (opened already) with only the scenes acquired within ``season`` (first and last day, inclusive),
    exactly as ``open_imagery`` opens its source for that season: itself where the season keeps every scene and none
    was left out, else its source opened again for the season (with the band layout and DN offset it was opened
    with), since which bands every scene opens, and which scenes are left out, depend on the season's scenes.
    ``season`` as ``open_imagery`` takes it; None keeps every scene.

    Raises:
        InputError: ``season`` is not a season (``farmcredit.dates.as_season``).
        ImageryError: none of its scenes was acquired within ``season``; or as ``open_imagery`` raises.

    >>> spring = within_season(open_imagery("scenes/"), (date(2024, 3, 1), date(2024, 4, 30)))  # doctest: +SKIP
    """
    season = as_season(season, None)
    if season is None or (len(_season_scenes(imagery.scenes, season, imagery.source)) == len(imagery.scenes)
                          and not imagery.left_out):
        return imagery
    return open_imagery(imagery.source, season, band_layout=imagery.band_layout, dn_offset=imagery.dn_offset)


def _season_scenes(scenes: Sequence[Scene], season: tuple[date, date], source: str | Path,
                   fetch_parcels: str = "PARCELS") -> list[Scene]:
    """The scenes acquired within ``season`` (first and last day, inclusive), in their order; a season after them
    is told to be fetched over ``fetch_parcels`` (``open_imagery``).

    Raises:
        ImageryError: none is, naming ``source``.
    """
    start, end = season
    in_season = [scene for scene in scenes if start <= scene.acquired.date() <= end]
    if not in_season:
        # Named, since the usual cause is last season's --season rerun on this season's folder.
        first, last = min(scene.acquired.date() for scene in scenes), max(scene.acquired.date() for scene in scenes)
        said = (f"{source}: none of the {len(scenes)} scenes was acquired within {start}..{end}; its scenes run "
                f"{first}..{last}")
        if start > last:
            # A season after the last scene is not one to read older scenes for: an earlier year's crops would be
            # lent on as this season's.
            raise ImageryError(f"{said}: it holds no imagery of this season yet; fetch it (farmcredit fetch "
                               f"{fetch_parcels} --season {start}/{end} --source stac --out FOLDER) or give --imagery "
                               "a folder of this season's scenes")
        raise ImageryError(f"{said}: give a --season (season= in Python) within them")
    return in_season


def _products(scenes: Iterable[Scene]) -> list[Scene]:
    """The products of ``scenes``: each mosaic's parts, each single product itself."""
    return [part for scene in scenes for part in (scene.parts or (scene,))]


def _band_summary(products: Sequence[Scene]) -> tuple[tuple[str, ...], bool]:
    """The reflectance bands every product has (SCL aside), in wavelength order, and whether every product has an
    SCL layer (``Imagery.bands``, ``Imagery.has_scl``)."""
    common = set.intersection(*(set(product.band_paths) - {SCL} for product in products))
    return tuple(sorted(common, key=band_sort_key)), all(SCL in product.band_paths for product in products)


def _without_unopenable_bands(scenes: list[Scene], headers: Mapping[str, Grid | str]) -> list[Scene]:
    """The scenes without the bands whose file GDAL can open in no scene (as if never there) and without atmospheric
    bands (B01, B09, B10: never read) it cannot open; each said in a warning.

    Another band file GDAL cannot open stays: reading it fails where its scene has data, and the parcels read there
    skip that date (``IMAGERY_READ_ERROR``), as for a file that fails to decode.

    Args:
        scenes: The season's scenes.
        headers: Grid, or GDAL's message, of each band file, by path.

    Raises:
        ImageryError: GDAL can open the SCL file of no scene that has one: without it clouds would read as clear.
    """
    dropped: set[str] = set()
    for band in sorted({band for scene in scenes for band in scene.band_paths}, key=band_sort_key):
        paths = [scene.band_paths[band][0] for scene in scenes if band in scene.band_paths]
        failed = [path for path in paths if isinstance(headers[path], str)]
        if not failed:
            continue
        first = f"{failed[0]}: {headers[failed[0]]}"
        if band not in SURFACE_BANDS and band != SCL:
            dropped.add(band)
        elif len(failed) < len(paths):
            logger.warning("band %s: GDAL cannot open its file in %d scene(s) (%s); where it is read, the parcels "
                           "skip that date (IMAGERY_READ_ERROR)", band, len(failed), first)
        elif band == SCL:
            raise ImageryError(f"GDAL can open no scene's SCL file ({first}), and without the scene classification "
                               "clouds would read as clear")
        else:
            dropped.add(band)
            logger.warning("band %s: GDAL can open its file in no scene (%s), so it is read on no date", band, first)
    return [replace(scene, band_paths={band: entry for band, entry in scene.band_paths.items()
                                       if band not in dropped or isinstance(headers[entry[0]], Grid)})
            for scene in scenes]


def _with_ndvi_bands(
    scenes: list[Scene], grids: list[Grid]
) -> tuple[list[Scene], list[Grid], list[tuple[str, str]]]:
    """The scenes, less the few without a band file NDVI needs (red or NIR: a scene folder missing B08, say), each
    left out with a warning: kept, they would take the band off every date. When as many lack it as have it, all
    are kept, and the run stops naming the band (``load_inputs``) rather than lose most of the season.

    Returns:
        The scenes kept, their grids, and (scene id, why) of each left out.
    """
    missing = [[band for band in NDVI_BANDS if band not in scene.band_paths] for scene in scenes]
    if any(2 * sum(band in bands for bands in missing) >= len(scenes) for band in NDVI_BANDS):
        return scenes, grids, []  # a band most scenes lack: the season lacks it
    left_out = [(scene.scene_id, f"no {' or '.join(bands)} file, which NDVI needs and most scenes have")
                for scene, bands in zip(scenes, missing, strict=True) if bands]
    for scene_id, why in left_out:
        logger.warning("scene %s has %s: it is left out of the season", scene_id, why)
    return ([scene for scene, bands in zip(scenes, missing, strict=True) if not bands],
            [grid for grid, bands in zip(grids, missing, strict=True) if not bands], left_out)


def _base_path(scene: Scene, headers: Mapping[str, Grid | str]) -> str | None:
    """The 10 m band file that defines the scene's grid; None when GDAL opens none.

    Of the 10 m files GDAL opens, those in the CRS most of the scene's files share (SCL and 20 m bands too: one band
    exported in another projection does not move the scene), then of the pixel size most of those share (ties: the
    finer), the first in band order.
    """
    files = [grid for path, _ in scene.band_paths.values() if isinstance(grid := headers[path], Grid)]
    tens = [(path, grid) for band in BASE_GRID_BANDS
            if isinstance(grid := headers.get(path := scene.band_paths.get(band, ("",))[0]), Grid)]
    if not tens:
        return None
    crs = max((grid.crs for _, grid in tens), key=lambda crs: sum(grid.crs == crs for grid in files))
    shared = [(path, grid) for path, grid in tens if grid.crs == crs]
    sizes = [abs(grid.transform.a) for _, grid in shared]
    size = max(sizes, key=lambda size: (sum(np.isclose(size, other) for other in sizes), -size))
    return next(path for (path, _), own in zip(shared, sizes, strict=True) if np.isclose(own, size))


def _warn_of_misplaced_bands(scenes: Sequence[Scene], headers: Mapping[str, Grid | str]) -> None:
    """Warn of each band file in another CRS than its scene's grid (a band exported in another projection, say): it
    is read where it says it lies, as a scene of a neighbouring UTM zone is; and of each whose extent lies more than
    one of its own pixels off the grid's on a side (a band cropped or exported apart): parcels it does not cover have
    no reading of it on that date, which they lost in silence."""
    for scene in scenes:
        if (base_path := _base_path(scene, headers)) is None:
            continue
        base = headers[base_path]
        for band_path, _ in scene.band_paths.values():
            if not isinstance(grid := headers[band_path], Grid):
                continue
            if grid.crs != base.crs:
                logger.warning("%s: its CRS %s differs from %s of %s, which defines scene %s's grid; it is read "
                               "through its own, each pixel from the one holding its centre", band_path,
                               grid.crs.to_string(), base.crs.to_string(), base_path, scene.scene_id)
            elif _extent_differs(grid, base):
                logger.warning("%s: its extent %s differs by more than a pixel from %s of %s (west, south, east, "
                               "north in %s), which defines scene %s's grid; parcels it does not cover have no reading "
                               "of it on that date, which they skip (IMAGERY_READ_ERROR)", band_path, _extent(grid),
                               _extent(base), base_path, base.crs.to_string(), scene.scene_id)


def _extent_differs(grid: Grid, base: Grid) -> bool:
    """Whether a side of ``grid`` (in ``base``'s CRS) lies more than one of ``grid``'s pixels from ``base``'s: a 20 m
    or 60 m band of a 10 m scene reaches a part of a pixel past it."""
    pixel = (abs(grid.transform.a), abs(grid.transform.e)) * 2
    return any(abs(side - base_side) > size for side, base_side, size in zip(grid.bounds(), base.bounds(), pixel,
                                                                             strict=True))


def _extent(grid: Grid) -> str:
    """The grid's bounds as a warning quotes them: (west, south, east, north), to the tenth of a unit."""
    return f"({', '.join(f'{side:.1f}' for side in grid.bounds())})"


def _with_grids(
    scenes: list[Scene], headers: Mapping[str, Grid | str], unopened: Sequence[tuple[str, str, str, str]]
) -> tuple[list[Scene], list[Grid], list[tuple[str, str]]]:
    """The scenes with a 10 m band file GDAL can open, and each one's grid (``_base_path``); the others are left
    out of the season with a warning.

    Returns:
        The scenes kept, their grids, and (scene id, why) of each left out.

    Raises:
        ImageryError: No scene has one.
    """
    kept: list[tuple[Scene, Grid]] = []
    left_out: list[tuple[str, str]] = []
    for scene in scenes:
        if (base_path := _base_path(scene, headers)) is None:
            left_out.append((scene.scene_id, f"GDAL can open none of its 10 m band files {', '.join(BASE_GRID_BANDS)}"))
            logger.warning("scene %s: %s, which define its grid; it is left out of the season", *left_out[-1])
            continue
        kept.append((scene, headers[base_path]))
    if not kept:
        failure = next((f": {path}: {message}" for _, band, path, message in unopened if band in BASE_GRID_BANDS), "")
        raise ImageryError(f"no scene has a 10 m band {BASE_GRID_BANDS} that GDAL can open, which define the base "
                           f"grid{failure}")
    return [scene for scene, _ in kept], [grid for _, grid in kept], left_out


def _header(band_path: str) -> Grid | str:
    """The file's grid, or GDAL's message when it cannot open the file (missing, truncated, not a raster)."""
    try:
        with open_raster(band_path) as dataset:
            crs, transform = dataset.crs, dataset.transform
            shape = (dataset.height, dataset.width)
    except RasterioError as error:
        return gdal_message(error).replace(f"'{band_path}' ", "").replace(f"{band_path}: ", "")
    if crs is None:  # not a georeferenced band (a PNG saved as B05.tif, say): as a file GDAL cannot open
        return NO_CRS
    # Reading maps pixel centres along rows and columns separately, so grids must be axis-aligned.
    if transform.b != 0 or transform.d != 0:
        raise ImageryError(f"{band_path}: rotated or sheared grids are not supported: {transform}")
    return Grid(crs=crs, transform=north_up(transform, shape), shape=shape)


def north_up(transform: Affine, shape: tuple[int, int]) -> Affine:
    """The transform of the same pixels with rows running north to south and columns west to east.

    A south-up file (``e > 0``: an ascending-y array as rioxarray writes it) or an east-to-west one covers the same
    ground; read on the north-up grid, each pixel is taken from the file row and column holding its centre
    (``read._sample``), so the scene is read as it lies rather than mirrored.
    """
    if transform.e > 0:
        transform = transform @ Affine.translation(0, shape[0]) @ Affine.scale(1, -1)
    if transform.a < 0:
        transform = transform @ Affine.translation(shape[1], 0) @ Affine.scale(-1, 1)
    return transform
