"""What `open_imagery` returns: acquisitions (`Scene`), a season of them on one grid (`Imagery`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import affine
import rasterio.crs


@dataclass(frozen=True)
class Scene:
    """One Sentinel-2 acquisition: where each band's pixels are and how DNs become reflectance.

    Reflectance (0-1) = (DN + dn_offset) * dn_scale; DN 0 is no data.

    Attributes:
        scene_id: Product id (STAC item id, folder name, or "<stack name>_<YYYYMMDD>").
        acquired: Acquisition time, UTC (midnight when only the date is known).
        band_paths: Band name ("B02".."B12", "B8A", "SCL") -> (GDAL path, 1-based band index).
        dn_offset: Added to the DN before scaling, DN (-1000: baseline >= 04.00, not yet applied).
        dn_scale: Reflectance per DN (1e-4 for L2A integers, 1 for float reflectance).
        cloud_cover: Scene cloud cover from metadata, percent; None when unknown.
        parts: For a date seen by several products (tiles, UTM zones, orbits): those products in
            priority order; each pixel comes from the first part that sees it clear, else the first
            that has data. Empty for a single product. A mosaic's own band_paths, offset and scale
            are its first part's.
    """

    scene_id: str
    acquired: datetime
    band_paths: Mapping[str, tuple[str, int]]
    dn_offset: float
    dn_scale: float
    cloud_cover: float | None
    parts: tuple[Scene, ...] = ()


@dataclass(frozen=True)
class Imagery:
    """A season of co-registered scenes on one grid (the grid of the finest of B02/B03/B04/B08).

    Attributes:
        source: The folder or stack file the scenes came from.
        scenes: Scenes sorted by acquisition time.
        crs: CRS of every scene.
        transform: Affine transform of the base (10 m) grid, metres.
        shape: (height, width) of the base grid, pixels.
        bands: Reflectance bands present in every scene, in wavelength order (SCL excluded).
        has_scl: True when every scene has a scene classification (SCL) layer.
        unopened: (scene id, band, path, GDAL's message) of each local band file GDAL could not open (missing,
            empty, not a raster).
        left_out: (scene id, why) of each scene of the season left out of it (no 10 m band file opens; no red or
            NIR file where most scenes have one).
    """

    source: str
    scenes: tuple[Scene, ...]
    crs: rasterio.crs.CRS
    transform: affine.Affine
    shape: tuple[int, int]
    bands: tuple[str, ...]
    has_scl: bool
    unopened: tuple[tuple[str, str, str, str], ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()
