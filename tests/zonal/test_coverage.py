"""Exact cell coverage checked cell by cell against shapely intersections."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from farmcredit.zonal import Coverage, coverage_fractions

PIXEL = 10.0
HEIGHT, WIDTH = 30, 40
NORTH_UP = Affine(PIXEL, 0, 500_000.0, 0, -PIXEL, 4_400_300.0)
SOUTH_UP = Affine(PIXEL, 0, 500_000.0, 0, PIXEL, 4_400_000.0)
X0, Y0 = 500_000.0, 4_400_000.0  # south-west corner of the raster in both transforms


def shapely_fractions(geometries, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """Dense (parcels, rows, cols) fractions from shapely intersections with every cell."""
    rows, cols = np.indices(shape).reshape(2, -1)
    xa, ya = transform @ (cols, rows)
    xb, yb = transform @ (cols + 1, rows + 1)
    cells = shapely.box(
        np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)
    )
    cell_area = abs(transform.a * transform.e)
    dense = np.zeros((len(geometries), *shape))
    for i, geom in enumerate(geometries):
        if geom is not None and geom.geom_type in ("Polygon", "MultiPolygon"):
            dense[i] = (shapely.area(shapely.intersection(cells, geom)) / cell_area).reshape(shape)
    return dense


def to_dense(cov: Coverage, shape: tuple[int, int]) -> np.ndarray:
    dense = np.zeros((cov.n_parcels, *shape))
    dense[cov.parcel, cov.row, cov.col] = cov.fraction
    return dense


def rotated_rectangle(rng: np.random.Generator, centre, length: float, width: float):
    angle = rng.uniform(0, np.pi)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [length / 2, width / 2]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return shapely.Polygon(corners @ rot.T + centre)


def irregular_quad(rng: np.random.Generator, centre, radius: float):
    angles = np.sort(rng.uniform(0, 2 * np.pi, 4))
    radii = rng.uniform(0.4, 1.0, 4) * radius
    return shapely.Polygon(np.c_[np.cos(angles), np.sin(angles)] * radii[:, None] + centre)


def star(rng: np.random.Generator, centre, radius: float, points: int = 7):
    """A concave star-shaped polygon."""
    angles = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False)
    radii = np.where(np.arange(2 * points) % 2 == 0, radius, radius * rng.uniform(0.2, 0.6))
    return shapely.Polygon(np.c_[np.cos(angles), np.sin(angles)] * radii[:, None] + centre)


def mixed_parcels(rng: np.random.Generator, n: int, margin: float = 0.0) -> list:
    """Rotated rectangles, quads, concave stars, holes and multipolygons over the raster."""
    lo = np.array([X0 - margin, Y0 - margin])
    hi = np.array([X0 + WIDTH * PIXEL + margin, Y0 + HEIGHT * PIXEL + margin])
    parcels = []
    for i in range(n):
        centre = rng.uniform(lo, hi)
        kind = i % 5
        if kind == 0:
            geom = rotated_rectangle(rng, centre, rng.uniform(5, 120), rng.uniform(3, 40))
        elif kind == 1:
            geom = irregular_quad(rng, centre, rng.uniform(5, 60))
        elif kind == 2:
            geom = star(rng, centre, rng.uniform(10, 60))
        elif kind == 3:
            outer = rotated_rectangle(rng, centre, rng.uniform(40, 120), rng.uniform(30, 60))
            geom = outer.difference(shapely.Point(centre).buffer(rng.uniform(3, 12), 5))
        else:
            other = centre + rng.uniform(-80, 80, 2)
            geom = shapely.MultiPolygon(
                [irregular_quad(rng, centre, 20.0), star(rng, other, rng.uniform(5, 25))]
            )
        if i % 2:  # both ring orientations
            geom = shapely.reverse(geom)
        parcels.append(geom)
    return parcels


def assert_matches_shapely(parcels: list, transform: Affine) -> Coverage:
    """Check every cell's fraction against shapely's intersection area; return the coverage."""
    cov = coverage_fractions(parcels, transform, (HEIGHT, WIDTH))
    np.testing.assert_allclose(
        to_dense(cov, (HEIGHT, WIDTH)), shapely_fractions(parcels, transform, (HEIGHT, WIDTH)), rtol=0, atol=1e-9
    )
    return cov


def test_fractions_match_shapely_cell_by_cell() -> None:
    rng = np.random.default_rng(1)
    parcels = [p for p in mixed_parcels(rng, 120) if p.is_valid]
    assert_matches_shapely(parcels, NORTH_UP)


def test_coverage_is_sorted_and_in_range() -> None:
    parcels = mixed_parcels(np.random.default_rng(2), 60, margin=100)
    cov = coverage_fractions(parcels, NORTH_UP, (HEIGHT, WIDTH))
    assert cov.n_parcels == 60
    assert all(a.dtype == np.int64 for a in (cov.parcel, cov.row, cov.col))
    assert np.all(np.diff(cov.parcel) >= 0)
    assert np.all((cov.fraction > 0) & (cov.fraction <= 1))
    assert np.all((cov.row >= 0) & (cov.row < HEIGHT) & (cov.col >= 0) & (cov.col < WIDTH))
    assert len(np.unique(np.c_[cov.parcel, cov.row, cov.col], axis=0)) == len(cov.parcel)


def test_area_sums_to_polygon_area_inside_raster() -> None:
    rng = np.random.default_rng(3)
    parcels = [p for p in mixed_parcels(rng, 200, margin=-100) if p.is_valid]
    cov = coverage_fractions(parcels, NORTH_UP, (HEIGHT, WIDTH))
    area = np.bincount(cov.parcel, cov.fraction, minlength=len(parcels)) * PIXEL**2
    np.testing.assert_allclose(area, shapely.area(parcels), rtol=1e-9)


def test_parcels_partly_and_wholly_outside_keep_only_inside_cells() -> None:
    rng = np.random.default_rng(4)
    parcels = [p for p in mixed_parcels(rng, 150, margin=150) if p.is_valid]
    parcels.append(shapely.box(X0 - 1000, Y0 - 1000, X0 - 500, Y0 - 500))
    parcels.append(shapely.box(X0 - 50, Y0 - 50, X0 + 1000, Y0 + 1000))  # covers the raster
    cov = assert_matches_shapely(parcels, NORTH_UP)
    assert not np.any(cov.parcel == len(parcels) - 2)
    assert np.sum(cov.parcel == len(parcels) - 1) == HEIGHT * WIDTH


def test_vertices_and_edges_on_grid_lines() -> None:
    on_grid = [
        shapely.box(X0 + 20, Y0 + 30, X0 + 70, Y0 + 90),  # edges along grid lines
        shapely.Polygon(
            [(X0 + 50, Y0 + 10), (X0 + 90, Y0 + 50), (X0 + 50, Y0 + 90), (X0 + 10, Y0 + 50)]
        ),
        shapely.Polygon([(X0 + 100, Y0 + 100), (X0 + 130, Y0 + 100), (X0 + 100, Y0 + 125)]),
        shapely.box(X0 + 200, Y0 + 100, X0 + 210, Y0 + 110),  # exactly one cell
        shapely.box(X0 + 200, Y0 + 100, X0 + 230, Y0 + 140).difference(
            shapely.box(X0 + 210, Y0 + 110, X0 + 220, Y0 + 130)
        ),
        shapely.box(X0, Y0, X0 + WIDTH * PIXEL, Y0 + HEIGHT * PIXEL),  # the raster itself
    ]
    cov = assert_matches_shapely(on_grid, NORTH_UP)
    assert np.sum(cov.parcel == 3) == 1
    assert np.all(cov.fraction[cov.parcel == 5] == 1.0)


@pytest.mark.parametrize(
    "transform", [NORTH_UP, SOUTH_UP], ids=["negative-height", "positive-height"]
)
def test_pixel_height_sign(transform: Affine) -> None:
    parcels = [p for p in mixed_parcels(np.random.default_rng(5), 40, margin=50) if p.is_valid]
    assert_matches_shapely(parcels, transform)


def test_non_square_pixels_and_mirrored_columns() -> None:
    transform = Affine(-7.5, 0, X0 + WIDTH * 7.5, 0, -12.0, Y0 + HEIGHT * 12.0)
    parcels = [p for p in mixed_parcels(np.random.default_rng(6), 40) if p.is_valid]
    assert_matches_shapely(parcels, transform)


def test_none_empty_and_non_polygons_get_no_cells() -> None:
    box = shapely.box(X0 + 10, Y0 + 10, X0 + 30, Y0 + 30)
    geometries = [
        None,
        shapely.Polygon(),
        shapely.Point(X0 + 5, Y0 + 5),
        box,
        shapely.LineString([(X0, Y0), (X0 + 50, Y0 + 50)]),
        shapely.MultiPolygon(),
    ]
    cov = coverage_fractions(geometries, NORTH_UP, (HEIGHT, WIDTH))
    assert cov.n_parcels == 6
    assert set(cov.parcel.tolist()) == {3}
    assert cov.fraction.sum() == pytest.approx(4.0)


def test_plain_polygons_read_the_same_as_rings_of_mixed_input() -> None:
    """Plain polygons take a faster reading path than holes and multipolygons."""
    rng = np.random.default_rng(8)
    plain = [
        irregular_quad(rng, rng.uniform([X0, Y0], [X0 + 400, Y0 + 300]), 40.0) for _ in range(30)
    ]
    alone = coverage_fractions(plain, NORTH_UP, (HEIGHT, WIDTH))
    mixed = coverage_fractions(plain + mixed_parcels(rng, 5), NORTH_UP, (HEIGHT, WIDTH))
    first = mixed.parcel < len(plain)
    for name in ("parcel", "row", "col", "fraction"):
        np.testing.assert_array_equal(getattr(mixed, name)[first], getattr(alone, name))


def test_no_geometries() -> None:
    cov = coverage_fractions([], NORTH_UP, (HEIGHT, WIDTH))
    assert cov.n_parcels == 0 and len(cov.parcel) == 0 and cov.fraction.dtype == np.float64


def test_rotated_transform_is_refused() -> None:
    with pytest.raises(ValueError, match="north-up"):
        coverage_fractions(
            [shapely.box(0, 0, 1, 1)], NORTH_UP @ Affine.rotation(10), (HEIGHT, WIDTH)
        )


def test_many_parcels_span_several_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    parcels = [p for p in mixed_parcels(np.random.default_rng(7), 100, margin=20) if p.is_valid]
    whole = coverage_fractions(parcels, NORTH_UP, (HEIGHT, WIDTH))
    monkeypatch.setattr("farmcredit.zonal.coverage._BATCH_CELLS", 500)
    batched = coverage_fractions(parcels, NORTH_UP, (HEIGHT, WIDTH))
    for name in ("parcel", "row", "col"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(whole, name))
    np.testing.assert_allclose(batched.fraction, whole.fraction, rtol=0, atol=1e-12)


coordinate = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    centre=st.tuples(coordinate, coordinate),
    radii=st.lists(st.floats(min_value=0.5, max_value=60.0), min_size=3, max_size=12),
    turn=st.floats(min_value=0.0, max_value=2 * np.pi),
    snap=st.booleans(),
)
def test_property_area_is_conserved(centre, radii, turn, snap) -> None:
    """Sum of fraction x cell area equals the polygon area for star polygons in the raster."""
    angles = turn + np.linspace(0, 2 * np.pi, len(radii), endpoint=False)
    cx = X0 + 70 + centre[0] * (WIDTH * PIXEL - 140)
    cy = Y0 + 70 + centre[1] * (HEIGHT * PIXEL - 140)
    xy = np.c_[cx + np.cos(angles) * radii, cy + np.sin(angles) * radii]
    if snap:  # put vertices on grid lines
        xy = np.round(xy / PIXEL) * PIXEL
    polygon = shapely.Polygon(xy)
    assume(polygon.is_valid)
    cov = coverage_fractions([polygon], NORTH_UP, (HEIGHT, WIDTH))
    area = cov.fraction.sum() * PIXEL**2
    assert area == pytest.approx(shapely.area(polygon), rel=1e-9, abs=1e-9)
