"""Coverage-weighted zonal statistics against exactextract and a brute-force shapely version."""

from __future__ import annotations

from pathlib import Path

import exactextract
import geopandas
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from farmcredit.zonal import Coverage, coverage_fractions, zonal_stats

PIXEL = 10.0
CELL_AREA = PIXEL * PIXEL
HEIGHT, WIDTH = 120, 150
TRANSFORM = Affine(PIXEL, 0, 500_000.0, 0, -PIXEL, 4_401_200.0)
NODATA = -9999.0
EXTRACT_OPS = ["count", "mean", "stdev", "min", "max"]
EXTRACT_OPS += ["quantile(q=0.1)", "quantile(q=0.5)", "quantile(q=0.9)"]


def make_parcels(rng: np.random.Generator, n: int) -> list[shapely.Polygon]:
    """Rotated rectangles and irregular quadrilaterals of 0.05-2 ha, some with holes, some
    crossing the raster edge, a few wholly outside it."""
    x0, y1 = TRANSFORM.c, TRANSFORM.f
    x1, y0 = x0 + WIDTH * PIXEL, y1 - HEIGHT * PIXEL
    parcels = []
    for i in range(n):
        centre = rng.uniform([x0 - 60, y0 - 60], [x1 + 60, y1 + 60])
        area = rng.uniform(500, 20_000)
        if i % 2:
            aspect = rng.uniform(1, 3)
            half = np.sqrt(area * aspect) / 2, np.sqrt(area / aspect) / 2
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, 4))
            radius = np.sqrt(area / 2) * rng.uniform(0.6, 1.0, 4)
            corners = np.c_[np.cos(angles), np.sin(angles)] * radius[:, None]
        turn = rng.uniform(0, np.pi)
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        parcel = shapely.Polygon(corners @ rotation.T + centre)
        if i % 7 == 0:
            parcel = parcel.difference(shapely.Point(centre).buffer(np.sqrt(area) / 6, 4))
        parcels.append(parcel)
    return [p for p in parcels if p.is_valid and not p.is_empty]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two float32 GeoTIFFs (continuous values; values in steps of 0.05 with many ties),
    both with nodata cells and NaNs, plus parcels over them."""
    rng = np.random.default_rng(42)
    folder = tmp_path_factory.mktemp("zonal")
    continuous = rng.uniform(-0.2, 0.9, (HEIGHT, WIDTH)).astype(np.float32)
    stepped = np.round(continuous * 20) / 20
    paths = {}
    for name, values in (("continuous", continuous), ("stepped", stepped)):
        values = values.copy()
        values[rng.random(values.shape) < 0.05] = NODATA
        values[rng.random(values.shape) < 0.01] = np.nan
        values[10:50, 30:90] = NODATA  # a cloud: some parcels have no valid cell
        path = folder / f"{name}.tif"
        profile = dict(
            driver="GTiff",
            height=HEIGHT,
            width=WIDTH,
            count=1,
            dtype="float32",
            crs="EPSG:32650",
            transform=TRANSFORM,
            nodata=NODATA,
        )
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values, 1)
        paths[name] = path
    parcels = make_parcels(rng, 300)
    return {"paths": paths, "parcels": parcels}


def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(path) as src:
        values = src.read(1)
    return values, values != NODATA


def farmcredit_stats(path: Path, parcels: list) -> dict[str, np.ndarray]:
    values, valid = read(path)
    cov = coverage_fractions(parcels, TRANSFORM, (HEIGHT, WIDTH))
    return zonal_stats(cov, values, valid, cell_area=CELL_AREA)


@pytest.mark.parametrize("raster", ["continuous", "stepped"])
def test_matches_exactextract(scene: dict, raster: str) -> None:
    path, parcels = scene["paths"][raster], scene["parcels"]
    frame = geopandas.GeoDataFrame(geometry=parcels, crs="EPSG:32650")
    ref = exactextract.exact_extract(str(path), frame, EXTRACT_OPS, output="pandas")
    ours = farmcredit_stats(path, parcels)

    has_valid = ref["count"].to_numpy() > 0
    assert np.any(~has_valid & (ours["coverage_area"] > 0)), "no parcel wholly under the cloud"
    np.testing.assert_allclose(ours["valid_area"], ref["count"] * CELL_AREA, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours["count"], ref["count"], rtol=1e-6, atol=1e-9)
    # exactextract keeps coverage fractions and returned quantiles in float32 (~6e-8 relative)
    # for a float32 raster, so its quantiles are compared to 1e-7 absolute. (It also keeps
    # slivers under the 1e-12 coverage farmcredit drops, which shift its quantile positions;
    # this scene has none.)
    for ours_name, ref_name, atol in [
        ("mean", "mean", 1e-9),
        ("std", "stdev", 1e-9),
        ("min", "min", 0),
        ("max", "max", 0),
        ("p10", "quantile_10", 1e-7),
        ("p50", "quantile_50", 1e-7),
        ("p90", "quantile_90", 1e-7),
    ]:
        expected = ref[ref_name].to_numpy(dtype=float)
        np.testing.assert_allclose(
            ours[ours_name][has_valid], expected[has_valid], rtol=1e-6, atol=atol, err_msg=ours_name
        )
        assert np.all(np.isnan(ours[ours_name][~has_valid])), ours_name


def brute_force(parcel: shapely.Geometry, values: np.ndarray, valid: np.ndarray) -> dict:
    """Per-parcel statistics from shapely cell intersections and plain numpy."""
    rows, cols = np.indices(values.shape).reshape(2, -1)
    x0, y1 = TRANSFORM.c, TRANSFORM.f
    cells = shapely.box(
        x0 + cols * PIXEL, y1 - (rows + 1) * PIXEL, x0 + (cols + 1) * PIXEL, y1 - rows * PIXEL
    )
    fraction = shapely.area(shapely.intersection(cells, parcel)) / CELL_AREA
    ok = (fraction > 1e-12) & valid.ravel() & ~np.isnan(values.ravel())
    w, x = fraction[ok], values.ravel()[ok].astype(np.float64)
    result = {
        "coverage_area": fraction[fraction > 1e-12].sum() * CELL_AREA,
        "valid_area": w.sum() * CELL_AREA,
        "count": w.sum(),
    }
    if w.sum() > 0:
        mean = np.sum(w * x) / w.sum()
        result |= {
            "mean": mean,
            "std": np.sqrt(np.sum(w * (x - mean) ** 2) / w.sum()),
            "min": x.min(),
            "max": x.max(),
        }
    return result


def test_matches_brute_force_shapely(scene: dict) -> None:
    path, parcels = scene["paths"]["continuous"], scene["parcels"][:60]
    values, valid = read(path)
    ours = farmcredit_stats(path, parcels)
    for i, parcel in enumerate(parcels):
        for name, expected in brute_force(parcel, values, valid).items():
            assert ours[name][i] == pytest.approx(expected, rel=1e-9, abs=1e-9), (i, name)


def test_layers_of_a_stack_match_single_layers(scene: dict) -> None:
    continuous, valid_a = read(scene["paths"]["continuous"])
    stepped, valid_b = read(scene["paths"]["stepped"])
    cov = coverage_fractions(scene["parcels"], TRANSFORM, (HEIGHT, WIDTH))
    stack = zonal_stats(
        cov, np.stack([continuous, stepped]), np.stack([valid_a, valid_b]), cell_area=CELL_AREA
    )
    for layer, (values, valid) in enumerate([(continuous, valid_a), (stepped, valid_b)]):
        single = zonal_stats(cov, values, valid, cell_area=CELL_AREA)
        for name, array in single.items():
            assert stack[name].shape == (len(scene["parcels"]), 2)
            # Percentiles use one running weight sum per batch: rounding differs by layout.
            np.testing.assert_allclose(stack[name][:, layer], array, rtol=1e-9, err_msg=name)


def test_batches_give_the_same_result(scene: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    path, parcels = scene["paths"]["stepped"], scene["parcels"]
    whole = farmcredit_stats(path, parcels)
    monkeypatch.setattr("farmcredit.zonal.stats._BATCH_ENTRIES", 700)
    batched = farmcredit_stats(path, parcels)
    for name, array in whole.items():
        np.testing.assert_allclose(batched[name], array, rtol=1e-9, atol=1e-12, err_msg=name)


def test_integer_values_match_float_values(scene: dict) -> None:
    values, valid = read(scene["paths"]["stepped"])
    scaled = np.where(valid & ~np.isnan(values), np.round(values * 20), -1).astype(np.int16)
    cov = coverage_fractions(scene["parcels"], TRANSFORM, (HEIGHT, WIDTH))
    ints = zonal_stats(cov, scaled, scaled >= 0, cell_area=CELL_AREA)
    floats = zonal_stats(cov, scaled.astype(np.float32), scaled >= 0, cell_area=CELL_AREA)
    for name, array in floats.items():
        np.testing.assert_allclose(ints[name], array, rtol=1e-12, err_msg=name)


def test_equal_weights_give_numpy_linear_percentiles() -> None:
    values = np.array([[3.0, 1.0, 4.0, 1.5, 9.0, 2.5, 6.0]])
    cov = Coverage(
        np.zeros(7, dtype=np.int64),
        np.zeros(7, dtype=np.int64),
        np.arange(7, dtype=np.int64),
        np.full(7, 0.5),
        1,
    )
    stats = zonal_stats(cov, values, cell_area=1.0, percentiles=(0, 10, 37.5, 50, 90, 100))
    for q in (0, 10, 37.5, 50, 90, 100):
        assert stats[f"p{q:g}"][0] == pytest.approx(np.percentile(values, q))
    assert stats["coverage_area"][0] == pytest.approx(3.5)


def test_parcels_without_cells_or_valid_cells_get_nan() -> None:
    # Parcel 1 has only masked or NaN cells, parcels 0 and 3 none, parcel 2 valid ones.
    cov = Coverage(
        np.array([1, 1, 2, 2, 2]),
        np.zeros(5, dtype=np.int64),
        np.array([0, 1, 2, 3, 4]),
        np.array([1.0, 0.5, 1.0, 1.0, 0.5]),
        4,
    )
    values = np.array([[np.nan, 2.0, 3.0, 1.0, 7.0]], dtype=np.float32)
    valid = np.array([[True, False, True, True, True]])
    stats = zonal_stats(cov, values, valid, cell_area=4.0)
    np.testing.assert_array_equal(stats["coverage_area"], [0.0, 6.0, 10.0, 0.0])
    np.testing.assert_array_equal(stats["valid_area"], [0.0, 0.0, 10.0, 0.0])
    np.testing.assert_array_equal(stats["count"], [0.0, 0.0, 2.5, 0.0])
    np.testing.assert_array_equal(stats["valid_fraction"], [np.nan, 0.0, 1.0, np.nan])
    for name in ("mean", "std", "min", "max", "p10", "p50", "p90"):
        assert np.all(np.isnan(stats[name][[0, 1, 3]])), name
    assert stats["min"][2] == 1.0 and stats["max"][2] == 7.0
    assert stats["mean"][2] == pytest.approx((3.0 + 1.0 + 3.5) / 2.5)
    # Values 1, 3, 7 with weights 1, 1, 0.5 sit at s = 0, 3, 5; the median is at 0.5 * 2 * 2.5.
    assert stats["p50"][2] == pytest.approx(1.0 + 2.5 / 3 * 2.0)


def test_a_masked_arrays_nodata_is_left_out(tmp_path: Path) -> None:
    """rasterio's read(masked=True) masks nodata; those cells are no more data than cells marked invalid."""
    path = tmp_path / "nodata.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="float32", nodata=-9999,
                       transform=Affine(10, 0, 0, 0, -10, 20)) as dst:
        dst.write(np.array([[0.5, -9999], [0.7, 0.3]], dtype=np.float32), 1)
    with rasterio.open(path) as src:
        band = src.read(1, masked=True)
    cov = coverage_fractions([shapely.box(0, 0, 20, 20)], Affine(10, 0, 0, 0, -10, 20), (2, 2))
    stats = zonal_stats(cov, band, cell_area=100.0)
    assert stats["valid_area"][0] == 300.0 and stats["mean"][0] == pytest.approx(0.5)
    assert stats["min"][0] == np.float32(0.3)
    also_cloudy = zonal_stats(cov, band, np.array([[True, True], [False, True]]), cell_area=100.0)
    assert also_cloudy["valid_area"][0] == 200.0 and also_cloudy["mean"][0] == pytest.approx(0.4)


def test_no_covered_cells_at_all() -> None:
    cov = coverage_fractions([None, shapely.Point(0, 0)], TRANSFORM, (HEIGHT, WIDTH))
    stats = zonal_stats(cov, np.zeros((3, HEIGHT, WIDTH), dtype=np.float32), cell_area=CELL_AREA)
    assert stats["mean"].shape == (2, 3) and np.all(np.isnan(stats["mean"]))
    np.testing.assert_array_equal(stats["coverage_area"], 0.0)


def test_bad_inputs_are_refused() -> None:
    cov = Coverage(np.array([0]), np.array([2]), np.array([0]), np.array([1.0]), 1)
    with pytest.raises(ValueError, match="outside"):
        zonal_stats(cov, np.zeros((2, 2)), cell_area=1.0)
    with pytest.raises(ValueError, match="valid"):
        zonal_stats(cov, np.zeros((3, 3)), np.ones((2, 3), dtype=bool), cell_area=1.0)
    with pytest.raises(ValueError, match="percentiles"):
        zonal_stats(cov, np.zeros((3, 3)), cell_area=1.0, percentiles=(120,))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        zonal_stats(cov, np.zeros(3), cell_area=1.0)


def test_squared_weights_let_a_field_drawn_to_its_edge_read_its_crop_not_its_neighbours() -> None:
    """A field of NDVI 0.8 whose outline ends 3 m into the 10 m cells of a road (NDVI 0.1) beside it: at plain
    coverage those edge cells pull its mean to 0.69; weighed by coverage squared (``weight_power=2``) it reads 0.76,
    while its areas, valid share and count stay exact."""
    transform = Affine(10, 0, 0, 0, -10, 30)
    ndvi = np.array([[0.8, 0.8, 0.1], [0.8, 0.8, 0.1], [0.8, 0.8, 0.1]])
    valid = np.array([[True, True, True], [True, True, True], [False, True, True]])
    cov = coverage_fractions([shapely.box(0, 0, 23, 30)], transform, (3, 3))
    plain = zonal_stats(cov, ndvi, valid, cell_area=100.0, percentiles=())
    squared = zonal_stats(cov, ndvi, valid, cell_area=100.0, percentiles=(), weight_power=2)
    assert plain["mean"][0] == pytest.approx((5 * 0.8 + 3 * 0.3 * 0.1) / 5.9)
    assert squared["mean"][0] == pytest.approx((5 * 0.8 + 3 * 0.09 * 0.1) / 5.27)
    assert squared["mean"][0] > plain["mean"][0] + 0.06
    assert squared["std"][0] < plain["std"][0]
    for name in ("coverage_area", "valid_area", "valid_fraction", "count", "min", "max"):
        assert squared[name][0] == pytest.approx(plain[name][0]), name
    assert squared["valid_area"][0] == pytest.approx(590.0)
    with pytest.raises(ValueError, match="weight_power"):
        zonal_stats(cov, ndvi, cell_area=100.0, weight_power=0)
