"""A North China Plain smallholder landscape: roads, a river, villages, trees, ponds and farm fields.

Everything is in metres in the scene's UTM CRS. Land-cover objects do not overlap: each layer is
cut out of the layers below it, and the fields tile what is left of the farmland.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import shapely
from shapely.geometry import Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from farmcredit.simulate.fields import block_orientation, subdivide_block
from farmcredit.simulate.grid import SceneGrid
from farmcredit.simulate.terrain import blob, points_near_roads, polygonal, river, road_lines

CROPS: tuple[str, ...] = ("wheat", "maize", "rice", "soybean")
FALLOW = "fallow"
# Land-cover kinds an object can have (phenology.py gives each a seasonal course).
COVERS: tuple[str, ...] = ("crop", "fallow", "forest", "grass", "water", "village", "road", "track")

# Share of fields by crop in a Huai-river county (wheat and maize dominate, rice near water).
CROP_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"wheat": 0.30, "maize": 0.25, "rice": 0.20, "soybean": 0.15, FALLOW: 0.10}
)
MIN_FIELD_M2 = 500.0  # 0.05 ha: anything smaller is a field margin, not a parcel
POND_SHARE = 0.03
PARTLY_CULTIVATED_SHARE = 0.10
CONSOLIDATED_BLOCK_SHARE = 0.12
ROTATED_BLOCK_SHARE = 0.10


@dataclass(frozen=True)
class Field:
    """A farm field as it is on the ground.

    Attributes:
        field_id: Index in ``Landscape.fields``.
        geometry: Field outline, metres.
        crop: One of CROPS, or "fallow" (nothing sown this season).
        health: 0.6-1.0, scales the crop's peak green cover; weed vigour (0.2-1.0) when fallow.
        cultivated: The sown part of the field (empty when fallow), metres.
        partly_cultivated: True when part of a cropped field was left unsown.
        shift_days: Calendar shift of this field's sowing and harvest, days.
        soil_brightness: Multiplier on the soil endmember (soil type and moisture).
    """

    field_id: int
    geometry: Polygon
    crop: str
    health: float
    cultivated: BaseGeometry
    partly_cultivated: bool
    shift_days: float
    soil_brightness: float


@dataclass(frozen=True)
class LandObject:
    """One patch of uniform land cover, rendered from its own seasonal course.

    Attributes:
        geometry: Outline, metres.
        cover: One of COVERS.
        crop: Crop name for cover "crop", else "".
        vigour: Crop health or weed/tree vigour, 0-1.
        shift_days: Calendar shift, days.
        soil_brightness: Multiplier on the soil endmember.
        patchiness: Within-object standard deviation of green cover, as a fraction of it.
    """

    geometry: BaseGeometry
    cover: str
    crop: str = ""
    vigour: float = 1.0
    shift_days: float = 0.0
    soil_brightness: float = 1.0
    patchiness: float = 0.1


@dataclass(frozen=True)
class _BlockTraits:
    """What the fields of one block share: neighbours grow alike on the same soil and calendar."""

    favourite_crop: str
    shift_days: float
    soil_brightness: float
    stress: float


@dataclass(frozen=True)
class Landscape:
    """Fields and every land-cover object of the scene (objects do not overlap)."""

    fields: tuple[Field, ...]
    objects: tuple[LandObject, ...]


def build_landscape(grid: SceneGrid, rng: np.random.Generator) -> Landscape:
    """Generate the landscape over a grid's rendered area.

    Args:
        grid: Scene grid (the 60 m extent is filled, so coarse edge pixels are real mixtures).
        rng: Random generator.

    Returns:
        The landscape; its objects cover the whole rendered area.
    """
    scene = box(*grid.render_bounds())
    side = math.sqrt(scene.area)
    km2 = scene.area / 1e6
    objects: list[LandObject] = []
    occupied: BaseGeometry = Polygon()

    def claim(geometry: BaseGeometry) -> BaseGeometry:
        nonlocal occupied
        free = polygonal(shapely.difference(shapely.intersection(geometry, scene), occupied))
        occupied = shapely.union(occupied, free)
        return free

    roads = road_lines(scene, rng)
    for line, width, paved in roads:
        surface = claim(line.buffer(width / 2, cap_style="flat"))
        objects.append(LandObject(surface, "road" if paved else "track", soil_brightness=1.15))
    water, banks = river(scene, rng)
    objects.append(LandObject(claim(water), "water", vigour=0.3, soil_brightness=1.1))
    objects.append(LandObject(claim(banks), "grass", vigour=rng.uniform(0.6, 1.0), patchiness=0.25))
    for line, width, paved in roads:
        # Poplar rows line the paved roads of the plain.
        if paved and rng.random() < 0.7:
            objects.append(LandObject(claim(line.buffer(width / 2 + 8.0, cap_style="flat")), "forest", patchiness=0.15))
    for centre in points_near_roads(roads, scene, max(1, round(km2 * 0.5)), rng):
        patch = blob(centre, min(rng.uniform(90.0, 200.0), side * 0.15), rng)
        objects.append(LandObject(claim(patch), "village", vigour=rng.uniform(0.5, 1.0), soil_brightness=1.1))
    for cover, count, radius in (("forest", km2 * 1.2, (40.0, 130.0)), ("grass", km2 * 0.8, (30.0, 90.0))):
        for _ in range(max(1, round(count))):
            centre = Point(rng.uniform(*scene.bounds[0::2]), rng.uniform(*scene.bounds[1::2]))
            objects.append(
                LandObject(
                    claim(blob(centre, rng.uniform(*radius), rng)), cover, vigour=rng.uniform(0.7, 1.0), patchiness=0.2
                )
            )

    farmland = shapely.get_parts(shapely.difference(scene, occupied))
    fields, field_objects, margins = _farm(farmland, rng)
    objects.extend(field_objects)
    objects.append(LandObject(polygonal(shapely.union_all(margins)), "grass", vigour=0.8, patchiness=0.3))
    kept = tuple(o for o in objects if not o.geometry.is_empty)
    return Landscape(fields=tuple(fields), objects=kept)


def _farm(blocks: np.ndarray, rng: np.random.Generator) -> tuple[list[Field], list[LandObject], list[BaseGeometry]]:
    """Subdivide farmland blocks into fields and draw each field's crop, health and calendar."""
    margins: list[BaseGeometry] = []
    cells: list[Polygon] = []
    traits: list[_BlockTraits] = []
    names = list(CROP_WEIGHTS)
    weights = np.array(list(CROP_WEIGHTS.values()))
    for block in blocks:
        if block.area < MIN_FIELD_M2:
            margins.append(block)
            continue
        angle = block_orientation(block)
        if rng.random() < ROTATED_BLOCK_SHARE:
            angle += rng.uniform(-0.6, 0.6)
        consolidated = block.area > 40_000 and rng.random() < CONSOLIDATED_BLOCK_SHARE
        block_traits = _BlockTraits(
            favourite_crop=names[rng.choice(len(names), p=weights)],
            shift_days=rng.normal(0.0, 4.0),
            soil_brightness=rng.uniform(0.85, 1.15),
            stress=rng.uniform(0.0, 0.12),
        )
        for cell in subdivide_block(block, angle, consolidated, rng):
            thin = cell.area < 4.0 * cell.length  # narrower than about 8 m on average
            if cell.area < MIN_FIELD_M2 or thin:
                margins.append(cell)
            else:
                cells.append(cell)
                traits.append(block_traits)

    fields: list[Field] = []
    objects: list[LandObject] = []
    for cell, block_traits in zip(_node_shared_edges(cells), traits):
        if rng.random() < POND_SHARE and cell.area < 10_000:
            objects.append(LandObject(cell, "water", vigour=rng.uniform(0.0, 1.0), soil_brightness=0.9))
            continue
        crop = block_traits.favourite_crop if rng.random() < 0.55 else names[rng.choice(len(names), p=weights)]
        shift = float(np.clip(block_traits.shift_days + rng.normal(0.0, 3.0), -12.0, 12.0))
        soil = float(block_traits.soil_brightness * rng.normal(1.0, 0.03))
        if crop == FALLOW:
            vigour = float(rng.uniform(0.2, 1.0))
            fields.append(Field(len(fields), cell, FALLOW, vigour, Polygon(), False, shift, soil))
            objects.append(LandObject(cell, "fallow", vigour=vigour, soil_brightness=soil, patchiness=0.4))
            continue
        health = round(float(np.clip(0.6 + 0.4 * rng.beta(4.0, 1.6) - block_traits.stress, 0.6, 1.0)), 3)
        cultivated: BaseGeometry = cell
        partly = bool(rng.random() < PARTLY_CULTIVATED_SHARE and cell.area > 1_500)
        if partly:
            cultivated, abandoned = _split_off_end(cell, rng.uniform(0.2, 0.6), rng)
            objects.append(
                LandObject(
                    abandoned, "fallow", vigour=float(rng.uniform(0.3, 1.0)), soil_brightness=soil, patchiness=0.4
                )
            )
        fields.append(Field(len(fields), cell, crop, health, cultivated, partly, shift, soil))
        # Weaker fields are patchier: uneven emergence, pests, waterlogging.
        objects.append(LandObject(cultivated, "crop", crop, health, shift, soil, 0.03 + 0.35 * (1.0 - health)))
    return fields, objects, margins


def _node_shared_edges(cells: list[Polygon]) -> list[Polygon]:
    """Insert each neighbour's corners into a cell's edges where they touch (T-junctions).

    Neighbours then share identical vertices along common edges, so rounding coordinates when the
    outlines are written cannot make them overlap. Cells are noded in turn against the already
    noded ones, so two nearly coincident corners settle on one position instead of swapping.
    """
    geometries = np.array(cells, dtype=object)
    tree = shapely.STRtree(geometries)
    for index, cell in enumerate(cells):
        neighbours = [n for n in tree.query(cell, predicate="dwithin", distance=0.01) if n != index]
        corners = shapely.get_coordinates(shapely.boundary(geometries[neighbours]))
        if len(corners):
            snapped = shapely.snap(cell, shapely.multipoints(corners), tolerance=0.005)
            if snapped.is_valid and isinstance(snapped, Polygon):
                geometries[index] = snapped
    return list(geometries)


def _split_off_end(field: Polygon, share: float, rng: np.random.Generator) -> tuple[BaseGeometry, BaseGeometry]:
    """(cultivated, abandoned): a share of the field at one end of its long axis left unsown."""
    angle = block_orientation(field)
    direction = np.array([math.cos(angle), math.sin(angle)]) * (1 if rng.random() < 0.5 else -1)
    coords = np.asarray(field.exterior.coords)
    along = coords @ direction
    lo, hi = float(along.min()), float(along.max())
    # Bisect the cut position so the abandoned end has the wanted share of the area.
    normal = np.array([-direction[1], direction[0]])
    reach = float(np.ptp(coords @ normal)) + 10.0
    centre = float(coords.mean(axis=0) @ normal)
    for _ in range(30):
        cut = (lo + hi) / 2
        end = _half_plane(direction, normal, cut, along.max() + 10.0, centre, reach)
        abandoned = shapely.intersection(field, end)
        if abandoned.area > share * field.area:
            lo = cut
        else:
            hi = cut
    return polygonal(shapely.difference(field, abandoned)), polygonal(abandoned)


def _half_plane(
    direction: np.ndarray, normal: np.ndarray, start: float, stop: float, centre: float, reach: float
) -> Polygon:
    """Rectangle from ``start`` to ``stop`` along ``direction``, ``reach`` either side of ``centre``."""
    corners = [
        direction * a + normal * (centre + b)
        for a, b in ((start, -reach), (stop, -reach), (stop, reach), (start, reach))
    ]
    return Polygon(corners)
