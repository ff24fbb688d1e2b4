"""Fields and land cover: a partition of the scene into irregular smallholder parcels."""

from __future__ import annotations

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import Polygon, box

from farmcredit.simulate.fields import block_orientation, subdivide_block
from farmcredit.simulate.grid import scene_grid
from farmcredit.simulate.landscape import build_landscape


def test_fields_tile_their_block_without_overlap() -> None:
    block = affinity.rotate(Polygon([(0, 0), (600, 30), (580, 400), (-20, 380)]), 23, origin=(0, 0))
    cells = np.array(subdivide_block(block, block_orientation(block), False, np.random.default_rng(0)), dtype=object)
    assert abs(shapely.area(cells).sum() - block.area) < 0.5
    left, right = shapely.STRtree(cells).query(cells, predicate="intersects")
    pairs = left < right
    # Overlays run on a 1 mm grid: neighbours may overlap by slivers of a few square centimetres
    # (build_landscape nodes them away before any field becomes a parcel).
    assert shapely.area(shapely.intersection(cells[left[pairs]], cells[right[pairs]])).max() < 0.05


def test_fields_are_not_axis_aligned_rectangles() -> None:
    block = box(0, 0, 500, 300)
    cells = subdivide_block(block, 0.3, False, np.random.default_rng(1))
    interior = [c for c in cells if c.within(block.buffer(-5))]
    # Jittered, tilted boundaries: fields fill less of their bounding box than a rectangle does.
    fill = [c.area / c.envelope.area for c in interior]
    assert len(interior) > 10 and np.median(fill) < 0.9


def test_landscape_objects_partition_the_scene() -> None:
    grid = scene_grid(114.0, 33.0, 96)
    landscape = build_landscape(grid, np.random.default_rng(5))
    geometries = np.array([o.geometry for o in landscape.objects], dtype=object)
    scene = box(*grid.render_bounds())
    assert abs(shapely.area(geometries).sum() - scene.area) < 0.001 * scene.area
    left, right = shapely.STRtree(geometries).query(geometries, predicate="intersects")
    pairs = left < right
    # Noding moves field corners by millimetres: overlaps with roads and margins stay negligible.
    assert shapely.area(shapely.intersection(geometries[left[pairs]], geometries[right[pairs]])).sum() < 10.0
    covers = {o.cover for o in landscape.objects}
    assert {"crop", "fallow", "forest", "grass", "water", "village", "road"} <= covers
    crops = {f.crop for f in landscape.fields}
    assert {"wheat", "maize", "rice", "soybean"} <= crops


def test_partly_cultivated_fields_keep_most_of_their_area_sown() -> None:
    landscape = build_landscape(scene_grid(114.0, 33.0, 160), np.random.default_rng(2))
    partly = [f for f in landscape.fields if f.partly_cultivated]
    assert partly
    for field in partly:
        share = field.cultivated.area / field.geometry.area
        assert 0.35 < share < 0.85
        assert field.cultivated.within(field.geometry.buffer(0.01))
