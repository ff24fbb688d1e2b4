"""Many tiles, many zones: one grid for a season whose scenes lie on different grids, one scene per date.

- Scenes of one CRS (tiles of one UTM zone) share a pixel lattice, as Sentinel-2 tiles do; the
  season's grid is the union of their extents on that lattice (of the finest pixels, the one
  most of them share). One off it (a 20 m product among 10 m ones) is read as a scene of another
  CRS is, with a warning.
- Scenes in other CRSs (a neighbouring UTM zone) are read through their own CRS: each base-grid
  pixel takes the pixel holding its centre (nearest neighbour). The season's CRS is the one whose
  scenes of the finest pixels hold the most of them summed over the dates (ties: the smaller EPSG
  code), so most parcels keep native pixels on most dates.
- Scenes acquired on the same date (overlapping tiles, two zones, two orbits, a reprocessed
  duplicate) become one mosaic scene, so no parcel is observed twice on a date: per pixel, the
  first part that sees it clear, else the first with data. Parts on the season's grid come first,
  then the least cloudy, then by id, so the choice is deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import affine
import numpy as np
import rasterio.crs
from rasterio.warp import transform_bounds

from farmcredit.imagery.scene import Scene

logger = logging.getLogger(__name__)
# Grids whose origins differ by a whole number of pixels to this precision share a lattice.
_LATTICE_TOLERANCE_PX = 1e-3


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, transform (metres) and (height, width) in pixels."""

    crs: rasterio.crs.CRS
    transform: affine.Affine
    shape: tuple[int, int]

    def matches(self, other: Grid) -> bool:
        return (
            self.crs == other.crs
            and self.shape == other.shape
            and self.transform.almost_equals(other.transform, precision=1e-6)
        )

    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the grid's CRS."""
        west, north = self.transform.c, self.transform.f
        east = west + self.shape[1] * self.transform.a
        south = north + self.shape[0] * self.transform.e
        return (min(west, east), min(south, north), max(west, east), max(south, north))

    def __str__(self) -> str:
        return (
            f"{self.crs.to_string()}, {abs(self.transform.a):g} m pixels, origin "
            f"({self.transform.c:.1f}, {self.transform.f:.1f}), {self.shape[0]}x{self.shape[1]} px"
        )


def season_grid(scenes: Sequence[Scene], grids: Sequence[Grid]) -> Grid:
    """The grid a season is read on: the scenes' common grid, or the union of their extents on the pixel lattice of
    the season's CRS with the finest pixels (10 m, not a 20 m product's) that most scenes of that size share (ties:
    the earlier scene).

    A scene of that CRS off the lattice (a 20 m product among 10 m ones, an origin half a pixel off) is read as a
    scene of another CRS is, each pixel from the one holding its centre, with a warning.

    Args:
        scenes: The scenes, in time order.
        grids: Each scene's base (10 m) grid.
    """
    if all(grid.matches(grids[0]) for grid in grids[1:]):
        return grids[0]
    crs = _season_crs(grids)
    lattices: list[list[int]] = []  # scenes of the season's CRS by lattice, in time order
    for index, grid in enumerate(grids):
        if grid.crs != crs:
            continue
        for group in lattices:
            if same_lattice(grids[group[0]].transform, grid.transform):
                group.append(index)
                break
        else:
            lattices.append([index])
    finest = min(abs(grids[group[0]].transform.a) for group in lattices)
    main = max((group for group in lattices if np.isclose(abs(grids[group[0]].transform.a), finest)), key=len)
    first = grids[main[0]]
    for index in sorted(index for group in lattices if group is not main for index in group):
        logger.warning("scene %s (%s) is off the pixel lattice of the season's %d scenes on it in its CRS (%s): "
                       "each pixel is read from the one holding its centre", scenes[index].scene_id, grids[index],
                       len(main), first)
    extents = np.array([
        grid.bounds() if grid.crs == crs else transform_bounds(grid.crs, crs, *grid.bounds(), densify_pts=21)
        for grid in grids
    ])
    west, south = extents[:, 0].min(), extents[:, 1].min()
    east, north = extents[:, 2].max(), extents[:, 3].max()
    size = first.transform.a
    # Snap outwards to the lattice of the CRS's own scenes.
    col0 = np.floor((west - first.transform.c) / size + _LATTICE_TOLERANCE_PX)
    col1 = np.ceil((east - first.transform.c) / size - _LATTICE_TOLERANCE_PX)
    row0 = np.floor((north - first.transform.f) / first.transform.e + _LATTICE_TOLERANCE_PX)
    row1 = np.ceil((south - first.transform.f) / first.transform.e - _LATTICE_TOLERANCE_PX)
    transform = first.transform @ affine.Affine.translation(col0, row0)
    return Grid(crs=crs, transform=transform, shape=(int(row1 - row0), int(col1 - col0)))


def merge_same_date(scenes: Sequence[Scene], grids: Sequence[Grid], season: Grid) -> list[Scene]:
    """One scene per acquisition date (UTC); several scenes of a date become one mosaic scene.

    Args:
        scenes: Scenes sorted by acquisition time.
        grids: Each scene's base grid.
        season: The season's grid (parts on it, native pixels, come first).

    Returns:
        Scenes sorted by acquisition time, one per date.
    """
    by_date: dict[object, list[tuple[Scene, Grid]]] = {}
    for scene, grid in zip(scenes, grids, strict=True):
        by_date.setdefault(scene.acquired.date(), []).append((scene, grid))
    merged = []
    for group in by_date.values():
        if len(group) == 1:
            merged.append(group[0][0])
            continue
        parts = tuple(
            scene for scene, _ in sorted(
                group,
                key=lambda pair: (
                    pair[1].crs != season.crs or not same_lattice(season.transform, pair[1].transform),
                    pair[0].cloud_cover if pair[0].cloud_cover is not None else 101.0,
                    pair[0].scene_id,
                ),
            )
        )
        covers = [part.cloud_cover for part in parts]
        merged.append(
            Scene(
                scene_id="+".join(part.scene_id for part in parts),
                acquired=min(part.acquired for part in parts),
                band_paths=parts[0].band_paths,
                dn_offset=parts[0].dn_offset,
                dn_scale=parts[0].dn_scale,
                cloud_cover=None if None in covers else round(float(np.mean(covers)), 6),
                parts=parts,
                level=parts[0].level,
            )
        )
    merged.sort(key=lambda scene: (scene.acquired, scene.scene_id))
    return merged


def _season_crs(grids: Sequence[Grid]) -> rasterio.crs.CRS:
    """The CRS whose scenes of the finest pixels (10 m, not 20 m products') hold the most pixels over the season: a
    tile seen on 15 dates outweighs a neighbour's seen on one, whose pixels would otherwise resample all 15 (ties:
    the smaller EPSG code)."""
    finest = min(abs(grid.transform.a) for grid in grids)
    counts: list[tuple[rasterio.crs.CRS, int]] = []
    for grid in (grid for grid in grids if np.isclose(abs(grid.transform.a), finest)):
        pixels = grid.shape[0] * grid.shape[1]
        for index, (crs, total) in enumerate(counts):
            if crs == grid.crs:
                counts[index] = (crs, total + pixels)
                break
        else:
            counts.append((grid.crs, pixels))
    return max(counts, key=lambda pair: (pair[1], -(pair[0].to_epsg() or 0), pair[0].to_string()))[0]


def same_lattice(a: affine.Affine, b: affine.Affine) -> bool:
    """True when two north-up grids have the same pixel size and origins a whole number of pixels apart."""
    if not (np.isclose(a.a, b.a) and np.isclose(a.e, b.e)):
        return False
    columns = (b.c - a.c) / a.a
    rows = (b.f - a.f) / a.e
    return abs(columns - round(columns)) < _LATTICE_TOLERANCE_PX and abs(rows - round(rows)) < _LATTICE_TOLERANCE_PX
