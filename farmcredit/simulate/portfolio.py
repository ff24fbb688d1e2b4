"""The loan portfolio: pledged parcels, their borrowers and declarations, and the exact ground truth.

Parcels are farm fields as a loan officer would record them: outlines in WGS84 (rounded to 1e-8
degrees, about 1 mm), a declared crop and a declared area. A few declarations are wrong on
purpose (over-declared area, another crop) and a few outlines are self-intersecting bow-ties.
Truth areas are computed on the outline as written, reprojected back to the scene's UTM CRS.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Transformer
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from farmcredit.simulate.grid import SceneGrid
from farmcredit.simulate.landscape import CROP_WEIGHTS, CROPS, FALLOW, Field, Landscape
from farmcredit.simulate.spec import SimulationSpec
from farmcredit.simulate.writer import write_file

COORDINATE_DECIMALS = 8
BORROWER_SIZES = (1, 2, 3, 4, 5)
BORROWER_SIZE_WEIGHTS = (0.30, 0.30, 0.20, 0.12, 0.08)
# An over-declared parcel claims more than this multiple of what is really sown.
OVER_DECLARED_RATIO = 1.5
TRUTH_COLUMNS = (
    "parcel_id",
    "borrower_id",
    "true_crop",
    "polygon_area_ha",
    "true_cultivated_area_ha",
    "health_factor",
    "over_declared",
    "broken_geometry",
    "crop_mismatch",
    "partly_cultivated",
)
# The bow-tie's two swapped vertices sit this far inside the parcel's longest edge.
BOW_TIE_INSET_M = 0.5

Ring = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Parcel:
    """A pledged parcel with its declaration and truth.

    Attributes:
        parcel_id: e.g. "P00001".
        borrower_id: e.g. "B0001".
        field: The field on the ground.
        declared_crop: Crop the borrower declared (one of CROPS).
        declared_area_ha: Area the borrower declared, ha (0.01 ha steps).
        rings: Outline as written, lon/lat degrees: exterior ring first, then holes.
        broken_geometry: True when the written outline self-intersects.
        polygon_area_ha: Area of the intended outline, ha.
        true_cultivated_area_ha: Sown area inside the intended outline, ha.
    """

    parcel_id: str
    borrower_id: str
    field: Field
    declared_crop: str
    declared_area_ha: float
    rings: tuple[Ring, ...]
    broken_geometry: bool
    polygon_area_ha: float
    true_cultivated_area_ha: float

    @property
    def over_declared(self) -> bool:
        """True when the declared area exceeds 1.5 x the truly cultivated area (fallow included)."""
        return self.declared_area_ha > OVER_DECLARED_RATIO * self.true_cultivated_area_ha

    @property
    def crop_mismatch(self) -> bool:
        """True when the declared crop is not what grows (always so for a fallow parcel)."""
        return self.declared_crop != self.field.crop


def build_portfolio(
    landscape: Landscape, grid: SceneGrid, spec: SimulationSpec, rng: np.random.Generator
) -> tuple[Parcel, ...]:
    """Pick pledged fields, group them by borrower and write their declarations.

    Args:
        landscape: The simulated landscape.
        grid: Scene grid (its CRS is the truth's).
        spec: Portfolio shares (parcels, broken outlines, over-declared, crop mismatches).
        rng: Random generator.

    Returns:
        Parcels ordered by parcel id; a borrower's parcels are numbered consecutively.
    """
    fields = [f for f in landscape.fields if _inside(f.geometry, grid)]
    count = max(1, round(spec.portfolio_fraction * len(fields)))
    chosen = [fields[i] for i in rng.choice(len(fields), size=count, replace=False)]
    # A borrower farms plots near the village: number parcels neighbourhood by neighbourhood.
    centres = np.array([f.geometry.centroid.coords[0] for f in chosen])
    order = np.lexsort((rng.random(count), centres[:, 0] // 400.0, -(centres[:, 1] // 400.0)))
    chosen = [chosen[i] for i in order]
    borrowers = _borrower_numbers(count, rng)

    cropped = [i for i, f in enumerate(chosen) if f.crop != FALLOW]
    picks = rng.permutation(cropped).tolist()
    n_over = min(len(picks), round(spec.over_declared_fraction * count))
    n_mismatch = min(len(picks) - n_over, round(spec.crop_mismatch_fraction * count))
    over = set(picks[:n_over])
    mismatch = set(picks[n_over : n_over + n_mismatch])

    to_wgs84 = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    to_utm = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    broken: dict[int, tuple[tuple[Ring, ...], tuple[Ring, ...]]] = {}
    for i in rng.permutation(cropped).tolist():
        if len(broken) == spec.n_broken_geometries:
            break
        bow_tie = _bow_tie(orient(chosen[i].geometry, sign=1.0), to_wgs84, to_utm)
        if bow_tie is not None:
            broken[i] = bow_tie

    parcels = []
    for i, field in enumerate(chosen):
        if i in broken:
            rings, intended_rings = broken[i]
        else:
            rings = intended_rings = _lonlat_rings(orient(field.geometry, sign=1.0), to_wgs84)
        polygon = _utm_polygon(intended_rings, to_utm)
        polygon_ha = polygon.area / 1e4
        if field.crop == FALLOW:
            cultivated_ha = 0.0
        elif field.partly_cultivated:
            cultivated_ha = polygon.intersection(field.cultivated).area / 1e4
        else:
            cultivated_ha = polygon_ha
        declared_crop = _declared_crop(field.crop, i in mismatch, rng)
        if field.crop == FALLOW:
            declared = polygon_ha * rng.uniform(0.95, 1.05)  # the plot as pledged, nothing sown
        elif i in over:
            declared = cultivated_ha * rng.uniform(1.6, 3.0)
        else:
            declared = cultivated_ha * rng.uniform(0.95, 1.05)
        parcels.append(
            Parcel(
                parcel_id=f"P{i + 1:05d}",
                borrower_id=f"B{borrowers[i]:04d}",
                field=field,
                declared_crop=declared_crop,
                declared_area_ha=max(0.01, round(declared, 2)),
                rings=rings,
                broken_geometry=i in broken,
                polygon_area_ha=polygon_ha,
                true_cultivated_area_ha=cultivated_ha,
            )
        )
    return tuple(parcels)


def write_parcels(parcels: tuple[Parcel, ...], path: Path) -> None:
    """Write parcels as an RFC 7946 GeoJSON FeatureCollection (WGS84), one feature per line."""
    lines = []
    for parcel in parcels:
        feature = {
            "type": "Feature",
            "properties": {
                "parcel_id": parcel.parcel_id,
                "borrower_id": parcel.borrower_id,
                "declared_crop": parcel.declared_crop,
                "declared_area_ha": parcel.declared_area_ha,
            },
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring] for ring in parcel.rings]},
        }
        lines.append(json.dumps(feature, separators=(",", ":")))
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    write_file(path, text)


def write_truth(parcels: tuple[Parcel, ...], path: Path) -> None:
    """Write truth.csv: one row per parcel, areas in ha to 1e-6 ha (0.01 m2)."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(TRUTH_COLUMNS)
    for parcel in parcels:
        fallow = parcel.field.crop == FALLOW
        writer.writerow(
            [
                parcel.parcel_id,
                parcel.borrower_id,
                parcel.field.crop,
                f"{parcel.polygon_area_ha:.6f}",
                f"{parcel.true_cultivated_area_ha:.6f}",
                "" if fallow else f"{parcel.field.health:.3f}",
                parcel.over_declared,
                parcel.broken_geometry,
                parcel.crop_mismatch,
                parcel.field.partly_cultivated,
            ]
        )
    write_file(path, stream.getvalue())


def _inside(geometry: Polygon, grid: SceneGrid) -> bool:
    """True when a field lies wholly inside the 10 m scene (the rendered extent is a little larger)."""
    west, south, east, north = grid.bounds()
    minx, miny, maxx, maxy = geometry.bounds
    return west <= minx and maxx <= east and south <= miny and maxy <= north


def _borrower_numbers(count: int, rng: np.random.Generator) -> list[int]:
    """Borrower number of each parcel in order: runs of 1-5 parcels."""
    numbers: list[int] = []
    borrower = 0
    while len(numbers) < count:
        borrower += 1
        numbers.extend([borrower] * int(rng.choice(BORROWER_SIZES, p=BORROWER_SIZE_WEIGHTS)))
    return numbers[:count]


def _declared_crop(crop: str, mismatched: bool, rng: np.random.Generator) -> str:
    if crop != FALLOW and not mismatched:
        return crop
    others = [c for c in CROPS if c != crop]
    weights = np.array([CROP_WEIGHTS[c] for c in others])
    return others[int(rng.choice(len(others), p=weights / weights.sum()))]


def _lonlat_rings(polygon: Polygon, to_wgs84: Transformer) -> tuple[Ring, ...]:
    rings = [polygon.exterior, *polygon.interiors]
    return tuple(_lonlat(np.asarray(ring.coords), to_wgs84) for ring in rings)


def _lonlat(coords: np.ndarray, to_wgs84: Transformer) -> Ring:
    lon, lat = to_wgs84.transform(coords[:, 0], coords[:, 1])
    return tuple((round(float(x), COORDINATE_DECIMALS), round(float(y), COORDINATE_DECIMALS)) for x, y in zip(lon, lat))


def _utm_polygon(rings: tuple[Ring, ...], to_utm: Transformer) -> Polygon:
    """A written outline back in the scene CRS, metres."""
    projected = []
    for ring in rings:
        lon, lat = np.array(ring).T
        x, y = to_utm.transform(lon, lat)
        projected.append(np.column_stack([x, y]))
    return Polygon(projected[0], projected[1:])


def _bow_tie(
    outline: Polygon, to_wgs84: Transformer, to_utm: Transformer
) -> tuple[tuple[Ring, ...], tuple[Ring, ...]] | None:
    """(written, intended) rings of a bow-tie: two vertices on the longest edge in swapped order.

    The intended outline gets two extra vertices just inside its longest edge; writing them in
    the wrong order makes the edge cross itself, enclosing a sliver of a few square metres, so
    ``make_valid`` recovers nearly the intended area. None when the result is not such a bow-tie.
    """
    ring = np.asarray(outline.exterior.coords)[:-1]
    edges = np.roll(ring, -1, axis=0) - ring
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    k = int(np.argmax(lengths))
    if lengths[k] < 20.0:
        return None
    along = edges[k] / lengths[k]
    inward = np.array([-along[1], along[0]])  # interior lies left of a counter-clockwise ring
    first = ring[k] + 0.3 * lengths[k] * along + BOW_TIE_INSET_M * inward
    second = ring[k] + 0.7 * lengths[k] * along + BOW_TIE_INSET_M * inward
    dented = np.vstack([ring[: k + 1], first, second, ring[k + 1 :]])
    intended_ring = _lonlat(np.vstack([dented, dented[:1]]), to_wgs84)
    holes = tuple(_lonlat(np.asarray(hole.coords), to_wgs84) for hole in outline.interiors)
    written_ring = list(intended_ring)
    written_ring[k + 1], written_ring[k + 2] = written_ring[k + 2], written_ring[k + 1]
    written = (tuple(written_ring), *holes)
    intended = (intended_ring, *holes)
    if _utm_polygon(written, to_utm).is_valid or not _utm_polygon(intended, to_utm).is_valid:
        return None
    return written, intended
