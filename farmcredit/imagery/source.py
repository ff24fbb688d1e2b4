"""`open_imagery`: find a season's scenes, open each band file's header once, check the grids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import affine
import rasterio
import rasterio.crs
from rasterio.errors import RasterioError

from farmcredit.errors import ImageryError
from farmcredit.imagery._gdal import gdal_env, gdal_message
from farmcredit.imagery.earthsearch import find_scenes
from farmcredit.imagery.naming import BASE_GRID_BANDS, SCL, band_sort_key
from farmcredit.imagery.scene import Imagery, Scene
from farmcredit.imagery.stack import stack_scenes


@dataclass(frozen=True)
class _Grid:
    crs: rasterio.crs.CRS
    transform: affine.Affine
    shape: tuple[int, int]

    def matches(self, other: _Grid) -> bool:
        return (
            self.crs == other.crs
            and self.shape == other.shape
            and self.transform.almost_equals(other.transform, precision=1e-6)
        )

    def __str__(self) -> str:
        return (
            f"{self.crs.to_string()}, {abs(self.transform.a):g} m pixels, origin "
            f"({self.transform.c:g}, {self.transform.f:g}), {self.shape[0]}x{self.shape[1]} px"
        )


def open_imagery(
    src: str | Path,
    season: tuple[date, date] | None = None,
    *,
    band_layout: Sequence[tuple[date | None, str]] | None = None,
    dn_offset: float | None = None,
) -> Imagery:
    """Open a season of Sentinel-2 L2A scenes from a folder or a multi-band GeoTIFF stack.

    Args:
        src: A folder of Earth Search-layout scene folders (searched recursively), or a stack file.
        season: (start, end) dates, inclusive; scenes acquired outside are left out.
        band_layout: For a stack without usable band descriptions: (date or None, band name)
            per raster band, in order.
        dn_offset: DN offset for scene folders without a STAC item and for integer stacks
            (default 0); items carry their own.

    Returns:
        The scenes sorted by acquisition time, on the base (10 m) grid they share.

    Raises:
        ImageryError: src is missing or holds no scenes, a band file cannot be opened, the stack's
            bands cannot be identified, or scenes lie on different grids.

    >>> imagery = open_imagery("s2/earthsearch-29RKH-2020")  # doctest: +SKIP
    >>> imagery.bands[:4], imagery.shape  # doctest: +SKIP
    (('B01', 'B02', 'B03', 'B04'), (1098, 1098))
    """
    path = Path(src)
    if not path.exists():
        raise ImageryError(f"{path}: imagery source does not exist")
    if path.is_dir():
        if band_layout is not None:
            raise ImageryError(f"{path}: band_layout applies to a GeoTIFF stack, not a folder")
        scenes = find_scenes(path, dn_offset)
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
    headers: dict[str, _Grid] = {}
    with gdal_env():
        grids = [_base_grid(scene, headers) for scene in scenes]
    for scene, grid in zip(scenes[1:], grids[1:], strict=True):
        if not grid.matches(grids[0]):
            raise ImageryError(
                f"{path}: scenes lie on different grids: {scenes[0].scene_id} is on {grids[0]} "
                f"but {scene.scene_id} is on {grid}; mosaicking or reprojecting scenes is not "
                "supported yet (a later issue), so give one tile's scenes"
            )

    common = set.intersection(*(set(scene.band_paths) - {SCL} for scene in scenes))
    return Imagery(
        source=str(path),
        scenes=tuple(scenes),
        crs=grids[0].crs,
        transform=grids[0].transform,
        shape=grids[0].shape,
        bands=tuple(sorted(common, key=band_sort_key)),
        has_scl=all(SCL in scene.band_paths for scene in scenes),
    )


def _base_grid(scene: Scene, headers: dict[str, _Grid]) -> _Grid:
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


def _header(scene: Scene, band: str, band_path: str) -> _Grid:
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
    return _Grid(crs=crs, transform=transform, shape=shape)
