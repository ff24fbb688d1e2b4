"""Cut a block of farmland into smallholder fields: long strips, cut across into irregular quadrilaterals."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import Polygon

# Neighbouring boundaries keep at least this gap (m) so strips and cuts never cross.
MIN_GAP_M = 6.0
# A consolidated field is capped below the 3 ha upper bound of a smallholder parcel.
MAX_FIELD_M2 = 28_000.0
# Overlay on a 1 mm grid: snap rounding keeps GEOS robust where boundaries nearly coincide.
GRID_M = 0.001


def block_orientation(block: Polygon) -> float:
    """Direction of the long side of a block's minimum rotated rectangle, radians from east."""
    corners = np.asarray(block.minimum_rotated_rectangle.exterior.coords)[:4]
    sides = np.diff(np.vstack([corners, corners[:1]]), axis=0)[:2]
    longest = sides[np.argmax(np.hypot(sides[:, 0], sides[:, 1]))]
    return math.atan2(longest[1], longest[0])


def subdivide_block(block: Polygon, angle: float, consolidated: bool, rng: np.random.Generator) -> list[Polygon]:
    """Fields tiling a block (their union is the block; they do not overlap).

    Strips run along ``angle``; each strip is cut across into fields. Strip and cut boundaries are
    polylines with jittered vertices and slight tilts, so fields are irregular and not axis-aligned.

    Args:
        block: Farmland polygon, metres.
        angle: Strip direction, radians from east.
        consolidated: True for a block of larger, consolidated fields (about 0.6-2.8 ha).
        rng: Random generator.

    Returns:
        Polygons in metres; slivers are included (the caller decides what is too small to farm).
    """
    # Work about the block's centroid: small coordinates keep the overlay precise.
    origin = block.centroid
    local = affinity.rotate(
        affinity.translate(block, -origin.x, -origin.y), -angle, origin=(0.0, 0.0), use_radians=True
    )
    minx, miny, maxx, maxy = local.bounds
    if consolidated:
        widths = rng.uniform(60.0, 140.0, size=int((maxy - miny) / 60.0) + 2)
    else:
        widths = np.clip(rng.lognormal(math.log(25.0), 0.4, size=int((maxy - miny) / 12.0) + 2), 12.0, 60.0)
    edges = miny - 1.0 + np.concatenate([[0.0], np.cumsum(widths)])
    edges = edges[: np.searchsorted(edges, maxy + 1.0) + 1]
    xs = np.linspace(minx - 5.0, maxx + 5.0, max(2, int((maxx - minx) / 120.0) + 2))
    # Strip boundaries share a tilt (a block is farmed in parallel strips) plus their own wobble.
    tilt = rng.normal(0.0, 0.01)
    lines = (
        edges[:, None]
        + (tilt + rng.normal(0.0, 0.004, size=(len(edges), 1))) * (xs - xs.mean())[None, :]
        + np.clip(rng.normal(0.0, 1.0, size=(len(edges), len(xs))), -2.5, 2.5)
    )
    lines[0], lines[-1] = miny - 5.0, maxy + 5.0
    lines = _keep_apart(lines)

    cells: list[Polygon] = []
    for lower, upper in zip(lines[:-1], lines[1:]):
        strip = Polygon(np.vstack([np.column_stack([xs, lower]), np.column_stack([xs[::-1], upper[::-1]])]))
        width = float(np.mean(upper - lower))
        cells.extend(_cut_strip(strip, width, consolidated, minx, maxx, rng))
    local_cells = shapely.intersection(np.asarray(cells, dtype=object), local, grid_size=GRID_M)
    parts = shapely.get_parts(local_cells)
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1.0)]
    return [
        affinity.translate(affinity.rotate(part, angle, origin=(0.0, 0.0), use_radians=True), origin.x, origin.y)
        for part in parts
    ]


def _cut_strip(
    strip: Polygon, width: float, consolidated: bool, minx: float, maxx: float, rng: np.random.Generator
) -> list[Polygon]:
    """Cut one strip across into fields of jittered length."""
    _, sy0, _, sy1 = strip.bounds
    ys = np.array([sy0 - 2.0, (sy0 + sy1) / 2.0, sy1 + 2.0])
    max_length = MAX_FIELD_M2 / width
    if consolidated:
        lengths = rng.uniform(100.0, 220.0, size=int((maxx - minx) / 100.0) + 2)
    else:
        lengths = np.clip(rng.lognormal(math.log(110.0), 0.45, size=int((maxx - minx) / 40.0) + 2), 40.0, 260.0)
    lengths = np.minimum(lengths, max_length)
    # Start before the block so the first field is not always a full-length one.
    cuts = minx - rng.uniform(0.0, lengths[0]) + np.concatenate([[0.0], np.cumsum(lengths)])
    cuts = cuts[: np.searchsorted(cuts, maxx + 5.0) + 1]
    if len(cuts) < 2:
        return [strip]
    # Cross cuts are rarely square to the strip: a per-cut tilt and a wobble at mid-strip.
    lines = (
        cuts[:, None]
        + rng.normal(0.0, 0.12, size=(len(cuts), 1)) * (ys - ys.mean())[None, :]
        + np.clip(rng.normal(0.0, 1.5, size=(len(cuts), len(ys))), -3.0, 3.0)
    )
    lines[0], lines[-1] = minx - 10.0, maxx + 10.0
    lines = _keep_apart(lines)
    bands = [
        Polygon(np.vstack([np.column_stack([left, ys]), np.column_stack([right[::-1], ys[::-1]])]))
        for left, right in zip(lines[:-1], lines[1:])
    ]
    return list(shapely.intersection(np.asarray(bands, dtype=object), strip, grid_size=GRID_M))


def _keep_apart(lines: np.ndarray) -> np.ndarray:
    """Push each boundary polyline at least MIN_GAP_M past the previous one at every shared vertex.

    Boundaries share their sample positions, so ordering at every vertex keeps them apart along
    their whole (piecewise linear) length and the band between two of them is a valid polygon.
    """
    out = lines.copy()
    for i in range(1, len(out)):
        out[i] = np.maximum(out[i], out[i - 1] + MIN_GAP_M)
    return out
