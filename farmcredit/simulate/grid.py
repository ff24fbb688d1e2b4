"""The scene's pixel grids: 10, 20 and 60 m rasters sharing one origin, as in a Sentinel-2 tile."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from pyproj import Transformer

# Sentinel-2 tile origins are multiples of 60 m, so the 10/20/60 m grids nest exactly.
COARSEST_M = 60
BASE_M = 10


@dataclass(frozen=True)
class SceneGrid:
    """A north-up UTM grid; every resolution starts at the same upper-left corner.

    Attributes:
        epsg: EPSG code of the UTM zone, e.g. 32650.
        west: Easting of the left edge, metres (a multiple of 60).
        north: Northing of the top edge, metres (a multiple of 60).
        size_px: 10 m pixels per side of the written 10 m rasters.
    """

    epsg: int
    west: float
    north: float
    size_px: int

    @property
    def crs(self) -> str:
        """CRS as an authority string, e.g. "EPSG:32650"."""
        return f"EPSG:{self.epsg}"

    @property
    def render_px(self) -> int:
        """10 m pixels per side of the rendered area: the 60 m grid's extent, which covers the scene."""
        return self.shape(COARSEST_M)[0] * COARSEST_M // BASE_M

    def shape(self, resolution_m: int) -> tuple[int, int]:
        """(rows, cols) of the raster at a resolution (10, 20 or 60 m), rounded up to cover the scene."""
        side = math.ceil(self.size_px * BASE_M / resolution_m)
        return side, side

    def transform(self, resolution_m: float) -> Affine:
        """Affine transform of the raster at a resolution, metres per pixel."""
        return Affine(resolution_m, 0.0, self.west, 0.0, -resolution_m, self.north)

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the 10 m rasters, metres."""
        side = self.size_px * BASE_M
        return self.west, self.north - side, self.west + side, self.north

    def render_bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the rendered area (the 60 m rasters' extent), metres."""
        side = self.render_px * BASE_M
        return self.west, self.north - side, self.west + side, self.north


def scene_grid(centre_lon: float, centre_lat: float, size_px: int) -> SceneGrid:
    """The grid of a square scene centred near a point, in the point's UTM zone (north).

    Args:
        centre_lon: Longitude, degrees east.
        centre_lat: Latitude, degrees north.
        size_px: 10 m pixels per side.

    Example:
        >>> grid = scene_grid(114.0, 33.0, 320)
        >>> grid.crs, grid.west % 60, grid.shape(60)
        ('EPSG:32650', 0.0, (54, 54))
    """
    zone = int((centre_lon + 180) // 6) + 1
    epsg = 32600 + zone
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    easting, northing = to_utm.transform(centre_lon, centre_lat)
    half = size_px * BASE_M / 2
    west = math.floor((easting - half) / COARSEST_M) * COARSEST_M
    north = math.ceil((northing + half) / COARSEST_M) * COARSEST_M
    return SceneGrid(epsg=epsg, west=float(west), north=float(north), size_px=size_px)
