"""Terrain features of the plain: road grids, a meandering river, irregular patches (metres, UTM)."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

Road = tuple[LineString, float, bool]


def road_lines(scene: Polygon, rng: np.random.Generator) -> list[Road]:
    """(centreline, width m, paved) of a grid of field tracks in two families plus a diagonal road."""
    cx, cy = scene.centroid.x, scene.centroid.y
    reach = math.sqrt(scene.area)
    theta = rng.uniform(0.0, math.pi)
    families = (
        (theta, rng.uniform(350.0, 600.0)),
        (theta + math.pi / 2 + rng.uniform(-0.3, 0.3), rng.uniform(300.0, 650.0)),
    )
    roads: list[Road] = []
    for direction, spacing in families:
        offsets = np.arange(-reach, reach, spacing) + rng.uniform(0.0, spacing)
        paved_index = int(np.argmin(np.abs(offsets)))
        for index, offset in enumerate(offsets):
            offset += rng.normal(0.0, spacing * 0.08)
            line = _bent_line(cx, cy, direction + rng.normal(0.0, 0.04), offset, reach, rng)
            if line.intersects(scene):
                paved = index == paved_index
                roads.append((line, rng.uniform(7.0, 9.0) if paved else rng.uniform(3.0, 5.0), paved))
    diagonal = theta + rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
    roads.append((_bent_line(cx, cy, diagonal, rng.uniform(-0.3, 0.3) * reach, reach, rng), 8.0, True))
    return roads


def _bent_line(
    cx: float, cy: float, direction: float, offset: float, reach: float, rng: np.random.Generator
) -> LineString:
    """A long straight line across the scene with one gentle bend."""
    along = np.array([math.cos(direction), math.sin(direction)])
    across = np.array([-along[1], along[0]])
    centre = np.array([cx, cy]) + across * offset
    bend = centre + along * rng.uniform(-0.3, 0.3) * reach
    turn = rng.normal(0.0, 0.05)
    after = np.array([math.cos(direction + turn), math.sin(direction + turn)])
    return LineString([bend - along * 2 * reach, bend, bend + after * 2 * reach])


def river(scene: Polygon, rng: np.random.Generator) -> tuple[BaseGeometry, BaseGeometry]:
    """(water, banks): a meandering river through the middle half of the scene."""
    cx, cy = scene.centroid.x, scene.centroid.y
    reach = math.sqrt(scene.area)
    direction = rng.uniform(0.0, math.pi)
    along = np.array([math.cos(direction), math.sin(direction)])
    across = np.array([-along[1], along[0]])
    s = np.linspace(-reach, reach, 400)
    meander = sum(
        rng.uniform(20.0, 90.0) * np.sin(2 * np.pi * s / rng.uniform(500.0, 1500.0) + rng.uniform(0, 2 * np.pi))
        for _ in range(2)
    )
    shift = rng.uniform(-0.25, 0.25) * reach
    points = np.array([cx, cy]) + s[:, None] * along + (shift + meander)[:, None] * across
    centreline = LineString(points)
    water = centreline.buffer(rng.uniform(8.0, 18.0))
    banks = shapely.difference(centreline.buffer(water.area / centreline.length / 2 + rng.uniform(10.0, 20.0)), water)
    return water, banks


def points_near_roads(roads: list[Road], scene: Polygon, count: int, rng: np.random.Generator) -> list[Point]:
    """Village sites: points a little off the roads, inside the scene."""
    inside = [shapely.intersection(line, scene) for line, _, _ in roads]
    inside = [line for line in inside if line.length > 0]
    points = []
    for _ in range(count):
        line = inside[rng.integers(len(inside))]
        point = line.interpolate(rng.uniform(0.1, 0.9) * line.length)
        points.append(Point(point.x + rng.normal(0.0, 60.0), point.y + rng.normal(0.0, 60.0)))
    return points


def blob(centre: Point, radius: float, rng: np.random.Generator) -> Polygon:
    """An irregular round patch (a village, a wood): a circle with random low harmonics."""
    angles = np.linspace(0.0, 2 * np.pi, 32, endpoint=False)
    scale = np.ones_like(angles)
    for harmonic in (2, 3, 5):
        scale += rng.uniform(0.0, 0.25 / harmonic * 2) * np.cos(harmonic * angles + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(scale, 0.4, None)
    return Polygon(np.column_stack([centre.x + r * np.cos(angles), centre.y + r * np.sin(angles)]))


def polygonal(geometry: BaseGeometry) -> MultiPolygon:
    """The polygon parts of any geometry as one MultiPolygon (points and lines from overlays dropped)."""
    parts = shapely.get_parts(geometry)
    return MultiPolygon([part for part in parts if isinstance(part, Polygon) and not part.is_empty])
