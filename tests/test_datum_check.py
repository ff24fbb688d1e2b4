"""The datum check: parcels in China read in the wrong datum (--parcels-datum) are warned of, the right one named."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from farmcredit.china_maps import gcj02_to_bd09, wgs84_to_gcj02
from farmcredit.datum_check import FIT_RATIO, RING_M, check_datum, outline_fit
from farmcredit.imagery import open_imagery
from farmcredit.parcels import read_parcels
from farmcredit.pipeline import run_assessment

SAMPLE = Path("sample_tiles")
CLEAR = (4, 5, 6)


def _as_drawn_on(parcels: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """``parcels`` (WGS 84) as a map of ``datum`` would have them drawn."""
    def forward(coords: np.ndarray) -> np.ndarray:
        if datum == "wgs84":
            return coords
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack(gcj02_to_bd09(lon, lat) if datum == "bd09" else (lon, lat))

    return parcels.set_geometry(shapely.transform(parcels.geometry.to_numpy(), forward))


@pytest.fixture(scope="module")
def sample_imagery():
    return open_imagery(SAMPLE / "imagery")


@pytest.mark.parametrize(("drawn", "given", "suggested"), [
    ("wgs84", "wgs84", None), ("gcj02", "gcj02", None), ("bd09", "bd09", None),
    ("gcj02", "wgs84", "gcj02"), ("wgs84", "gcj02", "wgs84"), ("bd09", "wgs84", "bd09"), ("gcj02", "bd09", "gcj02"),
])
def test_the_datum_drawn_in_fits_clearly_best_and_only_a_wrong_one_is_warned_of(
    tmp_path: Path, sample_imagery, caplog: pytest.LogCaptureFixture, drawn: str, given: str, suggested: str | None
) -> None:
    path = tmp_path / "parcels.geojson"
    _as_drawn_on(gpd.read_file(SAMPLE / "parcels.geojson"), drawn).to_file(path)
    parcels = read_parcels(path, datum=given)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        check = check_datum(parcels.geometry, sample_imagery, given, CLEAR)
    assert check is not None and check.suggested == suggested
    # Measured: the datum drawn in 1.21-1.29, the others 0.26-0.38.
    assert all(check.fit[drawn] >= FIT_RATIO * fit for datum, fit in check.fit.items() if datum != drawn)
    warned = [r.getMessage() for r in caplog.records if r.name == "farmcredit.datum_check"]
    if suggested is None:
        assert not warned and check.record()["suggested"] is None
    else:
        assert len(warned) == 1 and f"--parcels-datum {suggested}" in warned[0] and "median fit" in warned[0]


def test_a_simulated_season_as_given_raises_no_false_alarm(small_season, caplog: pytest.LogCaptureFixture) -> None:
    parcels = read_parcels(small_season.parcels_path)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        check = check_datum(parcels.geometry, open_imagery(small_season.imagery_dir), "wgs84", CLEAR)
    assert check is not None and check.suggested is None
    assert not [r for r in caplog.records if r.name == "farmcredit.datum_check"]


def test_parcels_outside_china_are_not_checked(sample_imagery) -> None:
    parcels = gpd.read_file(SAMPLE / "parcels.geojson")
    abroad = parcels.set_geometry(shapely.transform(parcels.geometry.to_numpy(), lambda c: c - [120.0, 0.0]))
    assert check_datum(abroad.geometry, sample_imagery, "wgs84", CLEAR) is None


def test_parcels_drawn_on_baidu_off_the_imagery_are_told_the_datum_before_a_crs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    truth = gpd.read_file(SAMPLE / "parcels.geojson")
    drawn = _as_drawn_on(truth, "bd09")
    imagery = open_imagery(SAMPLE / "imagery")
    west, south, east, north = gpd.GeoSeries([shapely.box(*imagery.transform @ (0, imagery.shape[0]),
                                                          *imagery.transform @ (imagery.shape[1], 0))],
                                             crs=imagery.crs).to_crs("EPSG:4326").total_bounds
    off = ~drawn.intersects(shapely.box(west, south, east, north))
    path = tmp_path / "baidu.geojson"
    drawn[off.to_numpy()].to_file(path)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        result = run_assessment(path, imagery, model="rule")
    assert (result.parcels["status"] == "error").all()
    told = next(r.getMessage() for r in caplog.records if "wholly outside the imagery" in r.getMessage())
    assert "--parcels-datum bd09" in told and told.index("--parcels-datum bd09") < told.index("mislabelled")


def test_a_run_of_parcels_drawn_on_amap_read_as_wgs84_warns_records_and_decides_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "amap.geojson"
    _as_drawn_on(gpd.read_file(SAMPLE / "parcels.geojson").iloc[:150], "gcj02").to_file(path)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        checked = run_assessment(path, SAMPLE / "imagery", model="rule")
    record = checked.record["inputs"]["parcels"]["datum_check"]
    assert record["suggested"] == "gcj02" and record["fit"]["gcj02"] >= FIT_RATIO * record["fit"]["wgs84"]
    assert sum("--parcels-datum gcj02" in r.getMessage() for r in caplog.records) == 1
    monkeypatch.setattr("farmcredit.pipeline.check_datum", lambda *args: None)
    unchecked = run_assessment(path, SAMPLE / "imagery", model="rule")
    assert unchecked.record["inputs"]["parcels"]["datum_check"] is None
    assert checked.parcels["loan_limit"].equals(unchecked.parcels["loan_limit"])
    assert checked.borrowers["decision"].equals(unchecked.borrowers["decision"])


def test_real_outlines_fit_their_fields_better_than_moved_500_m(shared_data: Path) -> None:
    """88 real land-use parcels (Slovenia, RABA) on 3 clear dates: the measure itself, away from China."""
    folder = shared_data / "s2" / "eolearn-slovenia"
    scenes = np.load(folder / "REFERENCE_SCENES.npy")  # time, y, x, 13 bands
    clear = np.load(folder / "CLM.npy")[: len(scenes), ..., 0] == 0
    red, nir = scenes[..., 3], scenes[..., 7]
    ndvi = (nir - red) / (nir + red)
    west, south, east, north = gpd.read_file(folder / "bbox.geojson").total_bounds
    rows, cols = ndvi.shape[1:]
    xs, ys = Affine((east - west) / cols, 0, west, 0, -(north - south) / rows, north) * np.meshgrid(
        np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    grid = shapely.box(west, south, east, north)

    def fit(outline: shapely.Geometry) -> float:
        if not shapely.contains(grid, shapely.buffer(outline, RING_M)):
            return float("nan")
        inside = shapely.contains_xy(outline, xs, ys)
        return outline_fit(ndvi, clear, inside, shapely.contains_xy(shapely.buffer(outline, RING_M), xs, ys) & ~inside)

    outlines = gpd.read_file(folder / "LULC.gpkg").geometry.to_numpy()
    true = np.array([fit(outline) for outline in outlines])
    pairs = []
    for east_m, north_m in ((500, 0), (-500, 0), (0, 500), (0, -500)):
        moved = np.array([fit(shapely.affinity.translate(outline, east_m, north_m)) for outline in outlines])
        both = np.isfinite(true) & np.isfinite(moved)
        pairs += list(zip(true[both], moved[both], strict=True))
    at_truth, moved_off = np.array(pairs).T
    # Measured: 52 pairs, median 0.27 at the truth, 0.20 moved; 60% fit better at the truth.
    assert len(at_truth) >= 40
    assert np.median(at_truth) > 1.2 * np.median(moved_off) and (at_truth > moved_off).mean() > 0.55


def test_parcels_of_another_place_that_another_datum_moves_onto_the_imagery_are_not_told_that_datum(
    sample_imagery,
) -> None:
    """The parcels of the imagery's eastern 350 m moved 350 m east, beside it: read as drawn on a Chinese web map they
    lie on it, but not on their fields."""
    local = gpd.read_file(SAMPLE / "parcels.geojson").to_crs(sample_imagery.crs)
    east = (sample_imagery.transform @ (sample_imagery.shape[1], 0))[0]
    strip = local[local.geometry.bounds["minx"].to_numpy() > east - 350.0]
    moved = strip.set_geometry(shapely.transform(strip.geometry.to_numpy(), lambda c: c + [350.0, 0.0]))
    check = check_datum(moved.to_crs("EPSG:4326").geometry, sample_imagery, "wgs84", CLEAR)
    assert check is not None and check.on_imagery["wgs84"] == 0.0
    assert max(check.on_imagery.values()) >= 0.5 and check.off_imagery_hint() is None


def test_parcels_drawn_on_amap_are_warned_of_where_most_of_the_file_lies_off_the_imagery(
    tmp_path: Path, sample_imagery
) -> None:
    """The sample parcels drawn on Amap read as WGS 84, with four copies 0.04 degrees apart east of the imagery: the
    sample of 100 was drawn before the parcels off the imagery were left out, 16 scored, and no datum suggested. It is
    now drawn from the parcels on the imagery in one datum or more."""
    amap = _as_drawn_on(gpd.read_file(SAMPLE / "parcels.geojson"), "gcj02")
    copies = [amap.set_geometry(shapely.transform(amap.geometry.to_numpy(), lambda c, k=k: c + [0.04 * k, 0.0]))
              for k in range(5)]
    path = tmp_path / "amap.geojson"
    gpd.GeoDataFrame(gpd.pd.concat(copies, ignore_index=True), crs="EPSG:4326").to_file(path)
    check = check_datum(read_parcels(path).geometry, sample_imagery, "wgs84", CLEAR)
    assert check is not None and check.suggested == "gcj02" and check.scored["gcj02"] >= 80
    assert check.on_imagery["gcj02"] == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize(("east", "north"), [(-34.0, -10.0), (14.0, 3.0)])  # India (South Asia), Korea
def test_parcels_where_the_chinese_maps_show_wgs84_are_not_checked(sample_imagery, east: float, north: float) -> None:
    """Parcels in India or Korea lie in the GCJ-02 formulas' rectangle, but the maps show WGS 84 there: they were
    checked, as 'parcels in China', and could be told --parcels-datum gcj02."""
    parcels = gpd.read_file(SAMPLE / "parcels.geojson")
    moved = parcels.set_geometry(shapely.transform(parcels.geometry.to_numpy(), lambda c: c + [east, north]))
    assert check_datum(moved.geometry, sample_imagery, "wgs84", CLEAR) is None
