"""`open_imagery`: find a season's scenes, open each band file's header once, check the grids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError

from farmcredit.errors import ImageryError
from farmcredit.imagery._gdal import gdal_env, gdal_message
from farmcredit.imagery.earthsearch import find_scenes
from farmcredit.imagery.mosaic import Grid, merge_same_date, season_grid
from farmcredit.imagery.naming import BASE_GRID_BANDS, SCL, band_sort_key
from farmcredit.imagery.safe import safe_scene
from farmcredit.imagery.scene import Imagery, Scene
from farmcredit.imagery.stack import stack_scenes


def open_imagery(
    src: str | Path,
    season: tuple[date, date] | None = None,
    *,
    band_layout: Sequence[tuple[date | None, str]] | None = None,
    dn_offset: float | None = None,
) -> Imagery:
    """Open a season of Sentinel-2 L2A scenes from a folder, a SAFE product or a multi-band GeoTIFF stack.

    Scenes on different tiles or UTM zones are read on one grid and scenes of one date are
    mosaicked (see `farmcredit.imagery.mosaic`).

    Args:
        src: A folder of Earth Search-layout scene folders and/or L2A SAFE products (.SAFE folders
            or their .zip), searched recursively; a single SAFE product; or a stack file.
        season: (start, end) dates, inclusive; scenes acquired outside are left out.
        band_layout: For a stack without usable band descriptions: (date or None, band name)
            per raster band, in order.
        dn_offset: DN offset for scene folders without a STAC item and for integer stacks
            (default 0); items carry their own.

    Returns:
        One scene per date sorted by acquisition time, on the base (10 m) grid of the season.

    Raises:
        ImageryError: src is missing or holds no scenes, a band file cannot be opened, the stack's
            bands cannot be identified, or scenes of one CRS lie on different pixel lattices.

    >>> imagery = open_imagery("s2/earthsearch-29RKH-2020")  # doctest: +SKIP
    >>> imagery.bands[:4], imagery.shape  # doctest: +SKIP
    (('B01', 'B02', 'B03', 'B04'), (1098, 1098))
    """
    path = Path(src)
    if not path.exists():
        raise ImageryError(f"{path}: imagery source does not exist")
    if path.is_dir() or path.suffix.lower() == ".zip":
        if band_layout is not None:
            raise ImageryError(f"{path}: band_layout applies to a GeoTIFF stack, not a folder or SAFE product")
        scenes = find_scenes(path, dn_offset) if path.is_dir() else [safe_scene(path)]
    else:
        scenes = stack_scenes(path, band_layout, dn_offset)
    if not scenes:
        raise ImageryError(
            f"{path}: no Sentinel-2 scenes found (expected scene folders with band files such as "
            "B04.tif, or STAC items)"
        )
    if season is not None:
        start, end = season
        in_season = [scene for scene in scenes if start <= scene.acquired.date() <= end]
        if not in_season:
            raise ImageryError(
                f"{path}: none of the {len(scenes)} scenes was acquired within {start}..{end}"
            )
        scenes = in_season
    scenes.sort(key=lambda scene: (scene.acquired, scene.scene_id))

    # A stack's scenes all point into one file: open each path once for the whole season.
    headers: dict[str, Grid] = {}
    with gdal_env():
        grids = [_base_grid(scene, headers) for scene in scenes]
    grid = season_grid(str(path), scenes, grids)
    scenes = merge_same_date(scenes, grids, grid.crs)

    products = [part for scene in scenes for part in (scene.parts or (scene,))]
    common = set.intersection(*(set(product.band_paths) - {SCL} for product in products))
    return Imagery(
        source=str(path),
        scenes=tuple(scenes),
        crs=grid.crs,
        transform=grid.transform,
        shape=grid.shape,
        bands=tuple(sorted(common, key=band_sort_key)),
        has_scl=all(SCL in product.band_paths for product in products),
    )


def _base_grid(scene: Scene, headers: dict[str, Grid]) -> Grid:
    """Check every band file of a scene; return the grid of its finest 10 m band.

    Args:
        scene: The scene.
        headers: Grids of the files opened so far, by path; this scene's files are added.
    """
    for band, (band_path, _) in scene.band_paths.items():
        if band_path not in headers:
            headers[band_path] = _header(scene, band, band_path)
    grids = {band_path: headers[band_path] for band_path, _ in scene.band_paths.values()}
    base_bands = [band for band in BASE_GRID_BANDS if band in scene.band_paths]
    if not base_bands:
        raise ImageryError(
            f"scene {scene.scene_id}: has none of the 10 m bands {BASE_GRID_BANDS}, which define "
            "the base grid"
        )
    base_path = min(
        (scene.band_paths[band][0] for band in base_bands),
        key=lambda band_path: abs(grids[band_path].transform.a),
    )
    base = grids[base_path]
    for band_path, grid in grids.items():
        if grid.crs != base.crs:
            raise ImageryError(
                f"{band_path}: CRS {grid.crs.to_string()} differs from {base.crs.to_string()} of "
                f"{base_path} in scene {scene.scene_id}"
            )
    return base


def _header(scene: Scene, band: str, band_path: str) -> Grid:
    try:
        with rasterio.open(band_path) as dataset:
            crs, transform = dataset.crs, dataset.transform
            shape = (dataset.height, dataset.width)
    except RasterioError as error:
        raise ImageryError(
            f"{band_path}: GDAL cannot open it as a raster ({gdal_message(error)}); band "
            f"{band} of scene {scene.scene_id} is missing, truncated or not a GeoTIFF"
        ) from error
    if crs is None:
        raise ImageryError(f"{band_path}: has no CRS (band {band} of scene {scene.scene_id})")
    # Reading maps pixel centres along rows and columns separately, so grids must be axis-aligned.
    if transform.b != 0 or transform.d != 0:
        raise ImageryError(f"{band_path}: rotated or sheared grids are not supported: {transform}")
    return Grid(crs=crs, transform=transform, shape=shape)
