"""The assess pipeline end to end on a small simulated season, including bad input."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet
import pyogrio
import pyogrio.raw
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.warp import calculate_default_transform

from farmcredit.config import Config, load_config
from farmcredit.credit.limit import LIMIT_STEPS, money
from farmcredit.hashing import source_hash
from farmcredit.imagery import Imagery, open_imagery
from farmcredit.outputs.tables import parquet_typed
from farmcredit.pipeline import _command_line, _warn_calendars, assess, run_assessment
from farmcredit.segmentation import load_cropland_model

REQUIRED_COLUMNS = [
    "parcel_id", "borrower_id", "status", "reason", "declared_area_ha", "polygon_area_ha",
    "cultivated_area_ha", "cultivated_area_low_ha", "cultivated_area_high_ha", "cultivated_fraction",
    "crop", "crop_confidence", "declared_crop_probability", "declared_crop_contradicted", "priced_crop", "ndvi_peak",
    "ndvi_peak_date",
    "health_index", "health_reference",
    "clear_observations", "yield_p10_t_ha", "yield_p50_t_ha", "relative_yield", "expected_revenue", "loan_limit",
    "risk_grade", "decision", "model_version", "config_hash",
]


@pytest.fixture(scope="module")
def baseline(small_season, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    results = assess(small_season.parcels_path, small_season.imagery_dir, out=out)
    return results, out


@pytest.mark.parametrize(("season", "why"), [
    ("2022-03-01/2023-03-01", r"holds 1 March twice \(2022-03-01 and 2023-03-01\)"),  # both day 60 too
    ("2023-03-01/2024-02-29", "holds 2024-02-29, day 60 of the year as 2023-03-01 is"),
    ("2024-03-01/2025-03-01", r"holds 1 March twice \(2024-03-01 and 2025-03-01\)"),  # days 61 and 60
    ("2023-07-01/2024-06-30", "holds 2024-06-30, day 182 of the year as 2023-07-01 is"),
    ("2024-03-01", "nor a pair of dates$"),  # no Python's words on unpacking
    ("2023-03-01/2024-03-01", "is 367 days long"),
    ("2023-02-29/2023-10-31", "day is out of range for month"),  # the reason, not only the form wanted
])
def test_a_season_of_one_day_of_the_year_twice_or_no_such_day_is_refused_saying_why(season: str, why: str) -> None:
    """The crop calendars read a date as its day of the year: a second 1 March counted as more of the first's."""
    from datetime import date

    from farmcredit.dates import as_season
    from farmcredit.errors import InputError

    with pytest.raises(InputError, match=why):
        as_season(season)
    assert as_season("2024-01-01/2024-12-31") == (date(2024, 1, 1), date(2024, 12, 31))  # 366 days, each its own
    assert as_season("2024-03-02/2025-03-01") == (date(2024, 3, 2), date(2025, 3, 1))  # 365 days
    assert as_season("2022-03-01/2023-02-28") is not None and as_season("2022-03-01/2023-03-01", None) is not None


@pytest.mark.parametrize("season", ["20240301/20241031", "2024-W10-5/2024-10-31", "2024-03-01/2024-10-31T00:00",
                                    "２０２４-03-01/2024-10-31"])
def test_a_season_is_read_in_the_same_form_on_every_python(season: str) -> None:
    """YYYY-MM-DD only: Python 3.11's fromisoformat also reads compact and week dates, 3.10's refuses them, so one
    --season would be read by one and refused by the other."""
    from datetime import date

    from farmcredit.dates import as_season
    from farmcredit.errors import InputError

    with pytest.raises(InputError, match="is not START/END"):
        as_season(season)
    assert as_season(" 2024-03-01/2024-10-31 ") == (date(2024, 3, 1), date(2024, 10, 31))


def test_parcels_and_imagery_of_another_type_are_refused_naming_the_argument(small_season) -> None:
    """A DataFrame, None or a GeoDataFrame without its geometry failed inside pathlib or geopandas (expected str,
    bytes or os.PathLike object; CRS without an active geometry column)."""
    from farmcredit.errors import InputError

    parcels = gpd.read_file(small_season.parcels_path).head(3)
    imagery = small_season.imagery_dir
    refusals = [
        (pd.DataFrame(parcels), imagery, r"parcels= takes a parcel file path or a GeoDataFrame \(got DataFrame: make "
                                         r"one with geopandas\.GeoDataFrame\(df, geometry=\.\.\., crs=\.\.\.\)\)"),
        (None, imagery, r"parcels= takes a parcel file path or a GeoDataFrame \(got None\)$"),
        (gpd.GeoDataFrame(pd.DataFrame(parcels).rename(columns={"geometry": "outline"})), imagery,
         "parcels= GeoDataFrame has no active geometry column: set one with set_geometry"),
        (parcels, None, r"imagery= takes the path of a folder of scenes, .* or an Imagery .*\(got None\)"),
        (small_season.parcels_path, 3, r"imagery= takes .*\(got int\)"),
    ]
    for given_parcels, given_imagery, message in refusals:
        with pytest.raises(InputError, match=message):
            assess(given_parcels, given_imagery, model="rule")


def test_every_parcel_gets_one_row_in_input_order(baseline, small_season) -> None:
    results, _ = baseline
    parcels = gpd.read_file(small_season.parcels_path)
    assert list(results["parcel_id"]) == list(parcels["parcel_id"])
    assert set(REQUIRED_COLUMNS) <= set(results.columns)
    assert set(results["status"]) <= {"ok", "flagged", "error"}
    assert set(results["decision"]) <= {"approve", "refer", "decline"}
    assert (results["decision"] == "approve").any()
    ok = results["status"] != "error"
    columns = ("cultivated_area_low_ha", "cultivated_area_ha", "cultivated_area_high_ha")
    low, mid, high = (results.loc[ok, c] for c in columns)
    assert ((low <= mid + 1e-12) & (mid <= high + 1e-12)).all()


def test_repaired_geometries_are_flagged_and_referred(baseline, small_season) -> None:
    results, _ = baseline
    truth = pd.read_csv(small_season.truth_path, dtype={"parcel_id": str})
    broken = truth.loc[truth["broken_geometry"].astype(str).str.lower() == "true", "parcel_id"]
    rows = results.set_index("parcel_id").loc[broken]
    assert len(rows) and rows["reason"].str.contains("GEOMETRY_REPAIRED").all()
    assert (rows["decision"] != "approve").all()


def test_outputs_are_written_and_readable(baseline) -> None:
    results, out = baseline
    layers = dict(pyogrio.list_layers(out / "results.gpkg"))
    assert set(layers) == {"parcels", "borrowers", "layer_styles"}  # layer_styles: the QGIS styles
    with sqlite3.connect(out / "results.gpkg") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200  # GeoPackage 1.2
    assert len(gpd.read_file(out / "results.gpkg", layer="parcels")) == len(results)
    with sqlite3.connect(out / "results.gpkg") as db:  # missing text is NULL, not pandas' "<NA>" (no region here)
        assert db.execute("SELECT count(*) FROM parcels WHERE region IS NULL").fetchone()[0] == len(results)
        assert not db.execute("SELECT count(*) FROM borrowers WHERE borrower_id = '<NA>'").fetchone()[0]
    assert len(gpd.read_parquet(out / "results.parquet")) == len(results)
    assert len(pd.read_csv(out / "results.csv")) == len(results)
    for table in ("results.csv", "borrowers.csv"):  # UTF-8 as Excel reads it: with a byte-order mark
        assert (out / table).read_bytes()[:3] == b"\xef\xbb\xbf"
    # Text columns stay text in Arrow when they hold no value (no region here), so runs stack.
    schema = pyarrow.parquet.read_schema(out / "results.parquet")
    assert results["region"].isna().all() and schema.field("region").type == schema.field("parcel_id").type
    assert not [field.name for field in schema if pyarrow.types.is_null(field.type)]
    read = gpd.read_parquet(out / "results.parquet")  # and as the other text reads back: a loader's check holds
    assert read["region"].dtype == read["parcel_id"].dtype and read["region"].isna().all()
    assert (out / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["hash"] == results["config_hash"].iloc[0]
    assert record["inputs"]["imagery"]["clouds_masked"] is True
    assert record["inputs"]["imagery"]["ground_pixel_m"] == pytest.approx([10.0, 10.0], rel=2e-3)  # UTM's scale
    assert len(record["inputs"]["parcels"]["sha256"]) == 64
    assert record["inputs"]["imagery"]["scenes"] and record["code"]["farmcredit"]
    assert record["code"]["source_sha256"] == source_hash()  # the code that ran, with or without git


def test_same_inputs_give_the_same_results(baseline, small_season) -> None:
    again = assess(small_season.parcels_path, small_season.imagery_dir)
    pd.testing.assert_frame_equal(pd.DataFrame(baseline[0].drop(columns="geometry")),
                                  pd.DataFrame(again.drop(columns="geometry")))


def test_parcels_in_another_crs_give_the_same_results(baseline, small_season, tmp_path) -> None:
    path = tmp_path / "parcels_3857.gpkg"
    gpd.read_file(small_season.parcels_path).to_crs(3857).to_file(path)
    other = assess(path, small_season.imagery_dir)
    np.testing.assert_allclose(other["cultivated_area_ha"], baseline[0]["cultivated_area_ha"], rtol=1e-5, atol=1e-6)
    assert list(other["decision"]) == list(baseline[0]["decision"])


def test_parcels_with_m_values_are_assessed_and_written_as_without(baseline, small_season, tmp_path) -> None:
    """A GPS field walk's PolygonM (``ogr2ogr -dim XYM``) was read and measured, then results.gpkg failed to write
    ("Could not create geometry at index 0 for WKB type 1073741827") and every result was lost."""
    parcels = gpd.read_file(small_season.parcels_path)
    wkt = shapely.to_wkt(parcels.geometry.to_numpy(), rounding_precision=-1)
    measured = [re.sub(r"(-?[\d.]+ -?[\d.]+)(?=[,)])", r"\1 0", text).replace("POLYGON", "POLYGON M") for text in wkt]
    path = tmp_path / "walked.gpkg"
    columns = [c for c in parcels.columns if c != "geometry"]
    pyogrio.raw.write(path, shapely.to_wkb(shapely.from_wkt(measured), flavor="iso"),
                      [parcels[c].to_numpy() for c in columns], columns, geometry_type="Measured Polygon",
                      crs="EPSG:4326", driver="GPKG")
    assert gpd.read_file(path, use_arrow=True).geometry.has_m.all()
    results = assess(path, small_season.imagery_dir, out=tmp_path / "out")
    for column in ("cultivated_area_ha", "decision", "loan_limit"):
        pd.testing.assert_series_equal(results[column], baseline[0][column])
    assert len(gpd.read_file(tmp_path / "out" / "results.gpkg", layer="parcels")) == len(results)


def test_cnn_results_do_not_depend_on_how_the_parcels_are_grouped_into_windows(baseline, small_season,
                                                                             monkeypatch) -> None:
    """Each window is read with the CNN's context around it, so a parcel gets the probabilities of one pass over
    the whole grid whatever else shares its window (without it, 2 of sample_tiles' 752 decisions moved)."""
    import farmcredit.pipeline
    from farmcredit.config import load_config

    config = load_config()
    monkeypatch.setattr(farmcredit.pipeline, "load_config", lambda given: given)  # chunk_px 16, under a config's floor
    small = config.model_copy(update={"imagery": config.imagery.model_copy(update={"chunk_px": 16})})
    apart = assess(small_season.parcels_path, small_season.imagery_dir, config=small)
    np.testing.assert_allclose(apart["cultivated_fraction"], baseline[0]["cultivated_fraction"], atol=1e-6)
    assert list(apart["decision"]) == list(baseline[0]["decision"])
    assert list(apart["loan_limit"]) == list(baseline[0]["loan_limit"])


def test_a_window_read_with_the_cnns_context_sees_what_a_whole_grid_pass_sees_around_persistent_clouds() -> None:
    """Windows anywhere (corners too), chipped smaller than their context, among clouds masked on every date."""
    from rasterio.windows import Window
    from scipy import ndimage

    from farmcredit.imagery import read_window
    from farmcredit.pipeline import context_window
    from farmcredit.segmentation.cnn import CnnCroplandModel

    imagery = open_imagery(Path(__file__).resolve().parents[1] / "sample_tiles" / "imagery")
    rows, cols = imagery.shape
    shipped = load_cropland_model("cnn", device="cpu")
    model = CnnCroplandModel(shipped.net, shipped.card, "cpu", chip_px=128)
    cube = read_window(imagery, Window(0, 0, cols, rows), model.bands)
    rng = np.random.default_rng(0)
    clouds = ndimage.binary_dilation(rng.random((rows, cols)) < 0.0004, iterations=int(rng.integers(10, 30)))
    clear = cube.clear & ~clouds
    whole = model.predict(cube.reflectance, clear, cube.bands).crop_probability
    windows = [Window(0, 0, 7, 9), Window(cols - 5, rows - 6, 5, 6), Window(0, rows - 3, 11, 3)]
    windows += [Window(int(c), int(r), 30, 20) for r, c in rng.integers(0, (rows - 20, cols - 30), (8, 2))]
    for window in windows:
        read = context_window(window, model, (rows, cols))
        part = Window(window.col_off - read.col_off, window.row_off - read.row_off, window.width, window.height)
        got = model.predict(cube.reflectance[(..., *read.toslices())], clear[(..., *read.toslices())],
                            cube.bands).crop_probability[part.toslices()]
        np.testing.assert_allclose(got, whole[window.toslices()], atol=1e-6)  # NaN where clouds, both


@pytest.mark.parametrize("name", ["cnn", "rule"])
def test_a_model_run_on_gpu_workers_reads_the_context_the_model_itself_reads(name: str) -> None:
    """The context read around a window is looked up in one place (``model_read_context``): the batch's GPU wrapper
    and a single run read the same window for the CNN (its context) and for the per-pixel rule (the window alone)."""
    from rasterio.windows import Window

    from farmcredit.batch.placement import GpuInference
    from farmcredit.pipeline import context_window, model_read_context

    model = load_cropland_model(name, device="cpu")
    wrapped = GpuInference(model)
    assert wrapped.read_context == model_read_context(model) == ((0, 1) if name == "rule" else model.read_context)
    window = Window(70, 45, 30, 20)
    assert context_window(window, wrapped, (400, 500)) == context_window(window, model, (400, 500))
    assert (context_window(window, model, (400, 500)) == window) == (name == "rule")


def test_parcels_outside_the_imagery_are_reported_and_the_rest_complete(
        baseline, small_season, caplog: pytest.LogCaptureFixture) -> None:
    parcels = gpd.read_file(small_season.parcels_path)
    imagery = open_imagery(small_season.imagery_dir)
    left, top = imagery.transform.c, imagery.transform.f
    straddling = shapely.box(left - 30, top - 200, left + 50, top - 120)
    far_away = shapely.box(left - 9000, top - 200, left - 8900, top - 100)
    extra = gpd.GeoDataFrame({"parcel_id": ["EDGE", "AWAY"], "borrower_id": ["X", "Y"]},
                             geometry=[straddling, far_away], crs=imagery.crs).to_crs(parcels.crs)
    with caplog.at_level(logging.WARNING):
        results = run_assessment(pd.concat([parcels, extra], ignore_index=True), imagery).parcels
    assert "outside the imagery" not in caplog.text  # one parcel far off: its row says so
    edge, away = results.iloc[-2], results.iloc[-1]
    assert "PARTLY_OUTSIDE_IMAGERY" in edge["reason"] and edge["decision"] == "refer"
    assert edge["polygon_area_ha"] == pytest.approx(0.64, rel=1e-4)  # 80 m x 80 m in zone 50, measured in its own 49
    # 30 of its 80 m lie off the imagery: fallow or all crop there, the interval spans both.
    assert edge["cultivated_area_high_ha"] - edge["cultivated_area_low_ha"] >= 30 / 80 * edge["polygon_area_ha"] - 1e-9
    assert away["status"] == "error" and away["reason"] == "OUTSIDE_IMAGERY" and away["loan_limit"] == 0
    pd.testing.assert_series_equal(
        results["cultivated_area_ha"].iloc[:-2], baseline[0]["cultivated_area_ha"], check_names=False
    )


def test_a_parcel_mostly_off_the_imagery_is_referred_with_no_limit_and_one_nearly_all_on_it_keeps_its_decision(
        small_season) -> None:
    """Under ``agronomy.min_share_on_imagery`` (half) on the imagery, SLIVER (5% on) is referred MOSTLY_OUTSIDE_IMAGERY
    with no limit, not judged on its sliver as it was with the setting at 0; NEARLY (97.5% on) is as it was."""
    parcels = gpd.read_file(small_season.parcels_path)
    imagery = open_imagery(small_season.imagery_dir)
    left, top = imagery.transform.c, imagery.transform.f
    extra = gpd.GeoDataFrame({"parcel_id": ["SLIVER", "NEARLY"], "borrower_id": ["X", "Y"]},
                             geometry=[shapely.box(left - 76, top - 200, left + 4, top - 120),
                                       shapely.box(left - 2, top - 300, left + 78, top - 220)], crs=imagery.crs)
    parcels = pd.concat([parcels.to_crs(imagery.crs), extra], ignore_index=True)
    config = load_config()
    judged = config.model_copy(update={"agronomy": config.agronomy.model_copy(update={"min_share_on_imagery": 0.0})})
    default, on_sliver = (run_assessment(parcels, imagery, model="rule", config=c) for c in (config, judged))
    sliver, nearly = default.parcels.iloc[-2], default.parcels.iloc[-1]
    assert "PARTLY_OUTSIDE_IMAGERY" in on_sliver.parcels.iloc[-2]["reason_all"]
    assert (sliver["decision"], sliver["loan_limit"]) == ("refer", 0.0) and pd.isna(sliver["risk_grade"])
    assert sliver["reason"].startswith("MOSTLY_OUTSIDE_IMAGERY") and "PARTLY_OUTSIDE" not in sliver["reason_all"]
    assert sliver["limit_arithmetic"].endswith("(refer: MOSTLY_OUTSIDE_IMAGERY)")
    assert default.borrowers.set_index("borrower_id").loc["X", "decision"] == "refer"
    assert "PARTLY_OUTSIDE_IMAGERY" in nearly["reason_all"]
    same = default.parcels.columns.drop("config_hash")
    pd.testing.assert_series_equal(nearly[same], on_sliver.parcels.iloc[-1][same])


def test_parcels_all_off_the_imagery_are_warned_of_naming_where_both_lie(
        small_season, caplog: pytest.LogCaptureFixture) -> None:
    """Parcels whose CRS label is wrong (latitude and longitude swapped put fields of 33 N 74 E in the Arctic) ran
    with exit 0, every parcel OUTSIDE_IMAGERY, saying only that they could not be assessed."""
    parcels = gpd.read_file(small_season.parcels_path).head(10)
    lon, lat = parcels.total_bounds[:2]
    arctic = parcels.set_geometry(parcels.geometry.translate(74 - lon, 74 - lat))
    imagery = open_imagery(small_season.imagery_dir)
    with caplog.at_level(logging.WARNING):
        results = run_assessment(arctic, imagery, model="rule").parcels
    assert (results["reason"] == "OUTSIDE_IMAGERY").all()
    west, south, east, north = gpd.GeoSeries([shapely.box(*array_bounds(*imagery.shape, imagery.transform))],
                                             crs=imagery.crs).to_crs(4326).total_bounds
    assert (f"the parcels' GeoDataFrame: 10 of 10 parcels lie wholly outside the imagery: they span longitude "
            f"74.0000 to {arctic.total_bounds[2]:.4f}, latitude 74.0000 to {arctic.total_bounds[3]:.4f} (read in "
            f"EPSG:4326, the CRS they declare), the imagery longitude {west:.4f} to {east:.4f}, latitude "
            f"{south:.4f} to {north:.4f}") in caplog.text
    assert "their file's CRS may be mislabelled" in caplog.text
    assert "as --parcels-crs (parcels_crs= in Python) applies only to a file that declares none" in caplog.text


def test_parcels_sharing_an_id_are_left_out_of_the_ndvi_series(small_season) -> None:
    """Two rows of one parcel id (both DUPLICATE_PARCEL_ID) mixed their series under that id."""
    parcels = gpd.read_file(small_season.parcels_path).head(6)
    parcels.loc[1, "parcel_id"] = parcels.loc[0, "parcel_id"]
    assessment = run_assessment(parcels, small_season.imagery_dir, model="rule")
    dates = len(assessment.series["date"].unique())
    assert assessment.series.groupby("parcel_id").size().to_dict() == {pid: dates for pid in parcels["parcel_id"][2:]}


def _regridded(imagery: Imagery, crs: str, units: float = 10.0) -> Imagery:
    """The season on a grid of ``units``-unit cells in ``crs`` over the same ground (its files read reprojected)."""
    transform, width, height = calculate_default_transform(
        imagery.crs, crs, imagery.shape[1], imagery.shape[0], *array_bounds(*imagery.shape, imagery.transform),
        resolution=units)
    return dataclasses.replace(imagery, crs=CRS.from_user_input(crs), transform=transform, shape=(height, width))


def _regridded_to_10m(imagery: Imagery, crs: str) -> Imagery:
    """``_regridded`` with cells 10 m on the ground at the grid's centre (11.9 units in Web Mercator at 33 N)."""
    across, _ = _regridded(imagery, crs).ground_pixel_m()
    return _regridded(imagery, crs, 10.0 * 10.0 / across)


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:32651", "EPSG:32650"])
def test_a_parcels_area_is_planar_in_its_own_utm_zone_whatever_the_imagerys_crs(small_season, crs: str) -> None:
    """The scene straddles 114 E, where UTM zone 49 meets 50: each parcel gets the area of the zone of its centroid,
    on a Web Mercator grid (2.4x at 50 N), one a zone further east (1.7% over at 114 E) or the scene's own."""
    imagery = _regridded_to_10m(open_imagery(small_season.imagery_dir), crs)
    results = run_assessment(small_season.parcels_path, imagery, model="rule").parcels  # outlines as repaired
    west = results.to_crs(32649).centroid.to_crs(4326).x.to_numpy() < 114.0
    assert 0 < west.sum() < len(results)
    zone_ha = np.where(west, results.to_crs(32649).area, results.to_crs(32650).area) / 1e4
    np.testing.assert_allclose(results["polygon_area_ha"], zone_ha, rtol=1e-6)


@pytest.mark.parametrize(("crs", "units", "ground"), [("EPSG:32650", 20.0, "19.99"), ("EPSG:32650", 60.0, "59.97"),
                                                   ("EPSG:3857", 10.0, "8.40")],
                         ids=["utm-20m", "utm-60m", "web-mercator-10-units"])
def test_imagery_whose_pixels_are_not_10m_on_the_ground_is_refused_saying_how_to_reproject_it(
        small_season, crs: str, units: float, ground: str) -> None:
    """The models were built on 10 m pixels: FTW Austria at 20 m read 11% less cultivated area, and in Web Mercator
    at 10 units (EO Browser's download: 6.7 m there, 8.4 m here at 33 N) 60% more; such grids were read without a
    word. A grid of 10 m on the ground passes in Web Mercator too (the test above)."""
    from farmcredit.errors import ImageryError

    imagery = _regridded(open_imagery(small_season.imagery_dir), crs, units)
    with pytest.raises(ImageryError) as refused:
        run_assessment(small_season.parcels_path, imagery, model="rule")
    message = str(refused.value)
    assert f"its pixels are {ground}" in message and "m on the ground" in message and "Sentinel-2's 10 m" in message
    # The grid's own UTM zone, else its centre's (113.9996 E: zone 49).
    assert f"gdalwarp -t_srs EPSG:{32650 if crs == 'EPSG:32650' else 32649} -tr 10 10 -tap -r near" in message


def _blank_west_strip(imagery_dir: Path, metres: float) -> None:
    """Write no data (0) in the westmost ``metres`` of every band and SCL file of every scene: a swath's edge."""
    for path in imagery_dir.glob("*/*.tif"):
        with rasterio.open(path) as source:
            profile, values = source.profile, source.read()
            columns = round(metres / source.res[0])
        values[..., :columns] = 0
        with rasterio.open(path, "w", **(profile | {"driver": "GTiff"})) as target:
            target.write(values)


def test_south_up_band_files_give_the_results_of_the_north_up_ones(baseline, small_season, tmp_path) -> None:
    """A south-up GeoTIFF (rows from south to north, transform e > 0: an ascending-y array as rioxarray writes it)
    was read in file row order, so the CNN saw the scene mirrored north-south (FTW Austria: a parcel 45% cultivated
    read 18%); it is read north-up, on the grid of the north-up files."""
    south_up = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, south_up)
    for path in south_up.glob("*/*.tif"):
        with rasterio.open(path) as source:
            profile, values, grid = source.profile, source.read(), source.transform
        flipped = Affine(grid.a, 0.0, grid.c, 0.0, -grid.e, grid.f + values.shape[1] * grid.e)
        with rasterio.open(path, "w", **(profile | {"driver": "GTiff", "transform": flipped})) as target:
            target.write(values[:, ::-1])
    assert open_imagery(south_up).transform == open_imagery(small_season.imagery_dir).transform
    pd.testing.assert_frame_equal(assess(small_season.parcels_path, south_up), baseline[0])


def test_a_strip_without_data_on_any_date_is_off_the_imagery_as_beyond_the_grids_edge(small_season, tmp_path) -> None:
    """Every parcel measures, is flagged and gets its interval as if the grid ended where the data does: the part of
    EDGE in no data widens its interval (PARTLY_OUTSIDE_IMAGERY), AWAY, wholly in it, is OUTSIDE_IMAGERY."""
    strip = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, strip)
    _blank_west_strip(strip, 60.0)
    full = open_imagery(strip)
    ends = dataclasses.replace(full, transform=full.transform @ Affine.translation(6, 0),
                               shape=(full.shape[0], full.shape[1] - 6))  # the same files; the grid starts 60 m east
    left, top = full.transform.c + 60, full.transform.f
    extra = gpd.GeoDataFrame({"parcel_id": ["EDGE", "AWAY"], "borrower_id": ["X", "Y"]},
                             geometry=[shapely.box(left - 16, top - 200, left + 64, top - 120),
                                       shapely.box(left - 50, top - 200, left - 10, top - 120)], crs=full.crs)
    parcels = pd.concat([gpd.read_file(small_season.parcels_path).to_crs(full.crs), extra], ignore_index=True)
    in_strip, beyond = (run_assessment(parcels, imagery, model="rule") for imagery in (full, ends))
    pd.testing.assert_frame_equal(in_strip.parcels, beyond.parcels)
    pd.testing.assert_frame_equal(in_strip.series, beyond.series)  # clear shares over the part with data
    edge, away = in_strip.parcels.iloc[-2], in_strip.parcels.iloc[-1]
    assert "PARTLY_OUTSIDE_IMAGERY" in edge["reason"]
    assert edge["cultivated_area_high_ha"] - edge["cultivated_area_low_ha"] >= 0.2 * edge["polygon_area_ha"] - 1e-9
    assert away["reason"] == "OUTSIDE_IMAGERY"


def test_overcast_date_counts_as_no_observation(small_season, caplog: pytest.LogCaptureFixture) -> None:
    imagery = open_imagery(small_season.imagery_dir)
    overcast = [s for s in imagery.scenes if s.cloud_cover is not None and s.cloud_cover >= 99.9]
    assert overcast, "the simulator writes at least one all-cloud date"
    day = overcast[0].acquired.date()
    with caplog.at_level(logging.WARNING, logger="farmcredit.pipeline"):
        results = assess(small_season.parcels_path, small_season.imagery_dir, season=(day, day))
    # A season too short for any parcel is told once, not only by each parcel's code, which blames the clouds.
    assert "the season holds 1 date(s) of imagery, fewer than the 4 clear dates a parcel needs" in caplog.text
    assert "widen --season (season= in Python)" in caplog.text
    usable = results["status"] != "error"
    assert (results.loc[usable, "clear_observations"] == 0).all()
    assert results.loc[usable, "reason"].str.contains("NO_CLEAR_OBSERVATIONS").all()
    assert (results["decision"] != "approve").all()
    # No clear date anywhere: one line says so, and no parcel is also told its peak was missed (PEAK_NOT_OBSERVED
    # advised a --season covering the peak of a season that spans it).
    assert (f"no clear image over any parcel on any of the season's 1 date(s): clouds or their shadows (SCL) cover "
            f"every parcel on each, or it has no data or no readable file there; all {usable.sum()} parcel(s) "
            "measured are referred NO_CLEAR_OBSERVATIONS") in caplog.text
    assert not results["reason_all"].str.contains("PEAK_NOT_OBSERVED").any()
    assert "no clear image near their crop's peak" not in caplog.text
    # Nor is a crop calendar blamed (it told of 0 parcels priced as maize referred PEAK_NOT_OBSERVED), nor a parcel's
    # health said unrated for want of a clear image near its crop's peak: it has none all season.
    assert "falls near" not in caplog.text
    assert (results.loc[usable, "health_reference"] == "not rated: no clear image of the season over the parcel").all()


def test_a_truncated_band_masks_that_date_and_the_run_completes(small_season, tmp_path) -> None:
    imagery_dir = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, imagery_dir)
    band = sorted(imagery_dir.glob("*/B08.tif"))[2]
    data = band.read_bytes()
    band.write_bytes(data[: len(data) * 2 // 3])
    results = assess(small_season.parcels_path, imagery_dir)
    assert len(results) == small_season.n_parcels
    assert results["reason"].str.contains("IMAGERY_READ_ERROR").any()
    assert (results["decision"] == "approve").any()


@pytest.mark.parametrize("model", ["rule", "cnn"])
def test_a_scene_whose_nir_gdal_cannot_open_costs_that_date_alone(small_season, tmp_path, model: str,
                                                                    monkeypatch) -> None:
    """Named in run.json; every parcel skips that date (IMAGERY_READ_ERROR) and is measured as without it (the CNN
    keeps its context: the window read alone would lose the date as well)."""
    broken, without = tmp_path / "broken", tmp_path / "without"
    shutil.copytree(small_season.imagery_dir, broken)
    shutil.copytree(small_season.imagery_dir, without)
    scene = sorted(path.name for path in broken.iterdir() if path.is_dir())[2]
    (broken / scene / "B08.tif").write_bytes(b"")
    shutil.rmtree(without / scene)

    import farmcredit.pipeline
    from farmcredit.config import load_config

    config = load_config()
    monkeypatch.setattr(farmcredit.pipeline, "load_config", lambda given: given)  # chunk_px 16, under a config's floor
    small = config.model_copy(update={"imagery": config.imagery.model_copy(update={"chunk_px": 16})})  # context
    results = assess(small_season.parcels_path, broken, model=model, config=small, out=tmp_path / "out")
    expected = assess(small_season.parcels_path, without, model=model, config=small)
    results, expected = results.set_index("parcel_id"), expected.set_index("parcel_id")
    assert results["reason"].str.contains("IMAGERY_READ_ERROR").mean() > 0.9  # the rest have 4 codes before it
    columns = ["clear_observations", "cultivated_area_ha", "ndvi_peak", "loan_limit", "decision"]
    pd.testing.assert_frame_equal(results[columns], expected[columns])
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    (unopened,) = record["inputs"]["imagery"]["unopened_files"]
    assert (unopened["scene_id"], unopened["band"], unopened["file"]) == (scene, "B08", str(broken / scene / "B08.tif"))
    assert {failure["file"] for failure in record["read_failures"]} == {str(broken / scene / "B08.tif")}


def test_a_band_whose_file_no_scene_opens_is_named_when_ndvi_needs_it(small_season, tmp_path) -> None:
    from farmcredit.errors import ImageryError

    imagery_dir = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, imagery_dir)
    for band in imagery_dir.glob("*/B04.tif"):
        band.unlink()
    with pytest.raises(ImageryError, match=r"lacks B04 in some or all .*; GDAL cannot open .*B04.tif \(No such file"):
        assess(small_season.parcels_path, imagery_dir, model="rule")


def test_a_scene_left_out_of_the_season_is_named_in_run_json(small_season, tmp_path) -> None:
    imagery_dir = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, imagery_dir)
    scene = sorted(path.name for path in imagery_dir.iterdir() if path.is_dir())[1]
    for band in (imagery_dir / scene).glob("B0[2348].tif"):  # a download cut short: its grid cannot be known
        band.write_bytes(b"")
    assess(small_season.parcels_path, imagery_dir, model="rule", out=tmp_path / "out")
    record = json.loads((tmp_path / "out" / "run.json").read_text())["inputs"]["imagery"]
    assert record["left_out_scenes"] == [{"scene_id": scene, "reason": "GDAL can open none of its 10 m band files "
                                                                       "B02, B03, B04, B08"}]
    assert scene not in {entry["scene_id"] for entry in record["scenes"]}


def test_two_years_of_imagery_are_refused_unless_a_season_of_at_most_a_year_picks_one(small_season, two_years) -> None:
    """The crop calendars are days of the year: read as one season, two years' dates doubled clear_observations (a
    PD feature) and took the better year's peak, unwarned."""
    from farmcredit.errors import ImageryError, InputError

    with pytest.raises(ImageryError, match=f"imagery {two_years} holds dates from 2023-03-01 to 2024-10-27, more than "
                                           r"one season: .* pass --season START/END \(season= in Python\) of at "
                                           "most a year"):
        assess(small_season.parcels_path, two_years, model="rule")
    with pytest.raises(InputError, match=r"season '2023-03-01/2024-10-27' is 607 days long: .* at most a year, "
                                         "no day of the year in it twice; "
                                         r"assess each year with its own --season START/END \(season= in Python\)"):
        assess(small_season.parcels_path, two_years, season="2023-03-01/2024-10-27", model="rule")
    one_year = assess(small_season.parcels_path, two_years, season="2024-01-01/2024-12-31", model="rule")
    expected = assess(small_season.parcels_path, small_season.imagery_dir, model="rule")
    pd.testing.assert_frame_equal(one_year.drop(columns="geometry"), expected.drop(columns="geometry"))
    # A winter crop's season crosses the new year: 2023's last date and 2024's spring and summer, 289 days.
    winter = assess(small_season.parcels_path, two_years, season="2023-10-01/2024-07-15", model="rule")
    assert {"2023-10-27", "2024-07-14"} <= set(winter["ndvi_peak_date"].astype(str))


def test_a_crop_declared_by_another_of_its_names_is_that_crop(small_season, tmp_path) -> None:
    """A Chinese loan officer writes 小麦, not wheat: it used to be UNKNOWN_DECLARED_CROP, never checked or priced."""
    parcels = gpd.read_file(small_season.parcels_path)
    named = {"wheat": "小麦", "maize": "Corn ", "rice": "水稻", "soybean": "大豆"}
    parcels["declared_crop"] = parcels["declared_crop"].map(lambda crop: named.get(crop, crop))
    parcels.to_file(tmp_path / "chinese.gpkg")
    english = assess(small_season.parcels_path, small_season.imagery_dir, model="rule")
    chinese = assess(tmp_path / "chinese.gpkg", small_season.imagery_dir, model="rule")
    assert set(parcels["declared_crop"].dropna()) & set(named.values())
    columns = ["reason", "loan_limit", "decision", "crop"]
    pd.testing.assert_frame_equal(chinese[columns], english[columns])
    assert not chinese["reason"].str.contains("UNKNOWN_DECLARED_CROP").any()
    # The results keep what was declared (as read: outer spaces off, lower case).
    assert chinese["declared_crop"].tolist() == [named.get(crop, crop).strip().lower() if isinstance(crop, str)
                                                 else crop for crop in english["declared_crop"]]


def test_parcels_of_a_crs_with_no_way_to_the_imagerys_are_refused_naming_both(small_season, tmp_path) -> None:
    """A local engineering CRS reads (its coordinates stand) but cannot be placed on UTM imagery: exit 2, not a
    ProjError traceback."""
    from farmcredit.errors import InputError

    local = 'LOCAL_CS["site",LOCAL_DATUM["site",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
    parcels = gpd.read_file(small_season.parcels_path).head(2).set_crs(local, allow_override=True)
    parcels.to_file(tmp_path / "site.gpkg")
    with pytest.raises(InputError, match=r"coordinate reference system \(site\) cannot be transformed to the imagery"):
        run_assessment(tmp_path / "site.gpkg", small_season.imagery_dir, model="rule")


def test_imagery_without_nir_is_refused_naming_the_bands_it_has(small_season, tmp_path) -> None:
    """With no B08 every parcel would read as never clear: refused up front, whatever the model."""
    from datetime import date

    import rasterio

    from farmcredit.errors import ImageryError

    scene = sorted(small_season.imagery_dir.iterdir())[0]
    with rasterio.open(scene / "B04.tif") as red:
        profile = red.profile | {"count": 3}
    with rasterio.open(tmp_path / "stack.tif", "w", **profile) as stack:
        for index, band in enumerate(("B04", "B03", "B02"), start=1):
            with rasterio.open(scene / f"{band}.tif") as source:
                stack.write(source.read(1), index)
    day = date(2024, 5, 10)
    imagery = open_imagery(tmp_path / "stack.tif", band_layout=[(day, "B04"), (day, "B03"), (day, "B02")])
    with pytest.raises(ImageryError, match=r"stack.tif lacks B08 .*B02, B03, B04\); NDVI needs red \(B04\) and NIR"):
        run_assessment(small_season.parcels_path, imagery, model="rule")


def test_a_file_failing_only_in_the_cnns_context_costs_the_window_its_context_not_its_date(tmp_path) -> None:
    import rasterio
    from rasterio.windows import Window

    from farmcredit.config import load_config
    from farmcredit.pipeline import measure_windows

    imagery_dir = tmp_path / "imagery"
    shutil.copytree(Path(__file__).resolve().parents[1] / "sample_tiles" / "imagery", imagery_dir)
    band = sorted(imagery_dir.glob("*/B04.tif"))[3]
    with rasterio.open(band) as source:  # 256 px tiles: garble the one under rows 256-319, columns 0-255
        offset, size = (int(source.get_tag_item(f"BLOCK_{key}_0_1", "TIFF", bidx=1)) for key in ("OFFSET", "SIZE"))
    with band.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * size)
    imagery = open_imagery(imagery_dir)
    inside, beside = Window(100, 250, 12, 12), Window(100, 186, 12, 12)  # in the tile; above it, in the CNN's reach
    end = beside.row_off + beside.height
    assert inside.row_off + inside.height > 256 and end <= 256 < end + 60
    left, top = imagery.transform.c, imagery.transform.f
    geoms = np.array([shapely.box(left + 10 * (w.col_off + 2), top - 10 * (w.row_off + 10),
                                  left + 10 * (w.col_off + 10), top - 10 * (w.row_off + 2)) for w in (inside, beside)])
    model = load_cropland_model("cnn", device="cpu")
    stats = measure_windows(geoms, imagery, load_config(), model, [(inside, np.array([0])), (beside, np.array([1]))])
    assert stats["read_error"].tolist() == [True, False]
    assert np.isnan(stats["clear"][0, 3]) or stats["clear"][0, 3] == 0
    pristine = measure_windows(geoms, open_imagery(Path(__file__).resolve().parents[1] / "sample_tiles" / "imagery"),
                               load_config(), model, [(beside, np.array([1]))])
    np.testing.assert_array_equal(stats["clear"][1], pristine["clear"][1])
    # Measured alone, the window beside the tile still names the file (a warning, run.json, a batch rerun).
    alone = measure_windows(geoms, imagery, load_config(), model, [(beside, np.array([1]))])
    assert alone["read_error"].tolist() == [False, False]
    # ... as costing no parcel a clear observation, though the window's context lost pixels (measured again).
    assert alone["read_failures"][:, :2].tolist() == [[band.parent.name, str(band)]]
    assert alone["read_failures"][:, 3].tolist() == [0] and alone["context_failed"].tolist() == [False, True]
    np.testing.assert_array_equal(alone["clear"][1], pristine["clear"][1])


SAMPLE_TILES = Path(__file__).resolve().parents[1] / "sample_tiles"
MAY_20 = "S2A_50SKB_20240520_0_L2A"
MEASURED = ["clear_observations", "cultivated_area_ha", "ndvi_peak", "crop"]


@pytest.fixture(scope="module")
def sample_rule_results() -> pd.DataFrame:
    """sample_tiles assessed with the rule, by parcel id: the run a read failure is compared with."""
    return assess(SAMPLE_TILES / "parcels.geojson", SAMPLE_TILES / "imagery", model="rule").set_index("parcel_id")


def test_a_summer_crop_after_winter_wheat_is_valued_on_its_own_peak(sample_rule_results, tmp_path) -> None:
    """sample_tiles' maize, rice and soybean pixels given clear wheat's reflectance up to 4 June, as where they follow
    winter wheat: their parcels took the wheat's April-May NDVI as their peak (CNN: P00073, maize, 0.69 on 5 May, its
    limit 380 CNY for 170). Each summer crop the call names is valued on the highest of its own season
    (``season_days``); a wheat parcel's peak date is as on the sample."""
    with rasterio.open(SAMPLE_TILES / "landcover.tif") as source:
        kind, cover = source.read()
    summer, wheat = np.isin(kind, [2, 3, 4]), (kind == 1) & (cover >= 90)
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    for scene in sorted(imagery.glob("*_L2A")):
        if pd.Timestamp(scene.name.split("_")[2]).day_of_year > 156:  # the wheat harvested, the summer crop sown
            continue
        with rasterio.open(scene / "SCL.tif") as source:
            clear20 = np.isin(source.read(1), [4, 5, 6])
        clear = np.kron(clear20, np.ones((2, 2), dtype=bool))  # SCL is 20 m
        if not (wheat & clear).any():
            continue
        for band in scene.glob("B0[2348].tif"):  # the 10 m bands: the rule's NDVI and EVI
            with rasterio.open(band) as source:
                values, profile = source.read(1), source.profile
            values[summer & clear] = np.median(values[wheat & clear]).astype(values.dtype)
            with rasterio.open(band, "w", **profile) as target:
                target.write(values, 1)
    parcels = gpd.read_file(SAMPLE_TILES / "parcels.geojson")
    parcels = parcels[parcels["parcel_id"].between("P00060", "P00120")]
    parcels.to_file(tmp_path / "parcels.geojson")
    results = assess(tmp_path / "parcels.geojson", imagery, model="rule").set_index("parcel_id")
    truth = pd.read_csv(SAMPLE_TILES / "truth.csv", dtype={"parcel_id": str}).set_index("parcel_id")
    crops = truth["true_crop"].reindex(results.index)
    # Those the call recognises; one no template fits (unknown, referred CROP_NOT_RECOGNISED) keeps the season's.
    summer_crops = results[crops.isin(["maize", "rice", "soybean"]) & results["ndvi_peak"].notna()
                           & (results["crop"] != "unknown")]
    assert len(summer_crops) >= 5 and (summer_crops["ndvi_peak_date"].dt.month >= 7).all()
    assert results.loc["P00073", "ndvi_peak_date"].month == 8 and results.loc["P00073", "ndvi_peak"] < 0.66
    wheat_parcels = results.index[(crops == "wheat") & (results["priced_crop"] == "wheat")]
    assert len(wheat_parcels) >= 5  # their edges' summer pixels read greener in spring: the date, not the value
    dates = results.loc[wheat_parcels, "ndvi_peak_date"]
    # As on the sample, where it saw no peak too (PEAK_NOT_OBSERVED: no date, NaT).
    pd.testing.assert_series_equal(dates, sample_rule_results.loc[wheat_parcels, "ndvi_peak_date"])
    assert dates.notna().sum() >= 5


def test_a_partly_cultivated_parcels_uniformity_is_its_crops_not_its_bare_parts(sample_rule_results) -> None:
    """sample_tiles' P00142, wheat on 0.163 ha of its 0.338 (bare land the rest): its NDVI varied by 0.27 over the
    outline at its peak, and its PD rose for an 'uneven crop' that was its bare half (grade D, as the outline cut to
    the wheat got A); over its cropland pixels, where its peak is read, it varies by 0.09 (grade C). The 47 parcels
    cultivated on under 90% of their outline read 0.19 on average, over twice those cultivated on more (0.09)."""
    parcel = sample_rule_results.loc["P00142"]
    assert 0.4 < parcel["cultivated_fraction"] < 0.6 and parcel["ndvi_uniformity"] < 0.15
    measured = sample_rule_results[sample_rule_results["ndvi_uniformity"].notna()]
    partly = measured["cultivated_fraction"] < 0.9
    uniformity = measured["ndvi_uniformity"].groupby(partly).mean()
    assert partly.sum() > 40 and uniformity[True] < 1.5 * uniformity[False], uniformity


def test_the_ndvi_series_holds_the_ndvi_its_health_and_yield_read(tmp_path) -> None:
    """sample_tiles' P00142, wheat on half its outline: the series held the outline's NDVI alone, which peaked at 0.52
    where its ndvi_peak, over its cropland pixels, read 0.77; its preview drew the one its health was not ranked on."""
    parcels = gpd.read_file(SAMPLE_TILES / "parcels.geojson")
    parcels = parcels[parcels["parcel_id"].between("P00130", "P00150")]
    assessment = run_assessment(parcels, SAMPLE_TILES / "imagery", model="rule")
    parcel = assessment.parcels.set_index("parcel_id").loc["P00142"]
    series = assessment.series.set_index(["parcel_id", "date"]).loc[("P00142", parcel["ndvi_peak_date"])]
    assert series["crop_ndvi_mean"] == parcel["ndvi_peak"] > series["ndvi_mean"] + 0.1
    assert series["crop_ndvi_std"] == parcel["ndvi_uniformity"] < series["ndvi_std"]


def _cut_to_90_percent(band: Path) -> int:
    """Cut ``band`` (a tiled GeoTIFF) to 90% of its bytes, as a download cut short; the first row of its blocks that
    no longer read."""
    band.write_bytes(band.read_bytes()[: band.stat().st_size * 9 // 10])
    with rasterio.open(band) as dataset:
        for _, window in dataset.block_windows(1):
            try:
                dataset.read(1, window=window)
            except rasterio.errors.RasterioError:
                return int(window.row_off)
    raise AssertionError(f"{band} still reads whole")


def test_a_band_cut_short_costs_the_date_only_to_parcels_on_its_blocks_that_fail(
        sample_rule_results, tmp_path) -> None:
    """Parcels on the blocks that still decode keep the date: measured as without the failure; those on blocks
    that fail skip it (IMAGERY_READ_ERROR)."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    first_lost_row = _cut_to_90_percent(imagery / MAY_20 / "B04.tif")
    results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule", out=tmp_path / "out")
    _assert_flagged_below_row(results.set_index("parcel_id"), sample_rule_results, imagery, first_lost_row)
    [failure] = json.loads((tmp_path / "out" / "run.json").read_text())["read_failures"]
    assert failure["file"] == str(imagery / MAY_20 / "B04.tif")
    assert failure["cost_parcels"] == results["reason_all"].str.contains("IMAGERY_READ_ERROR").sum() > 50


def test_a_band_file_the_model_does_not_read_failing_costs_no_parcel_a_date(sample_rule_results, tmp_path) -> None:
    """The rule read B05 (red edge) for an index nothing used: its file empty, a parcel lost the date, and one
    approved was referred PEAK_NOT_OBSERVED with a limit of 0."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    (imagery / MAY_20 / "B05.tif").write_bytes(b"")
    results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule").set_index("parcel_id")
    assert not results["reason_all"].str.contains("IMAGERY_READ_ERROR").any()
    pd.testing.assert_frame_equal(results[MEASURED + ["decision", "loan_limit"]],
                                  sample_rule_results[MEASURED + ["decision", "loan_limit"]])


def test_two_files_failing_on_one_date_each_say_what_they_cost(tmp_path) -> None:
    """Each failed file's ``cost_parcels`` is the parcels it cost, not every parcel its date lost: B04 cut to 90%
    (its lower blocks fail) was charged with the 752 parcels B08 cut to 60% (every block) cost the date."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    _cut_to_90_percent(imagery / MAY_20 / "B04.tif")
    alone = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule", out=tmp_path / "b04")
    b04_alone = json.loads((tmp_path / "b04" / "run.json").read_text())["read_failures"][0]["cost_parcels"]
    assert b04_alone == alone["reason_all"].str.contains("IMAGERY_READ_ERROR").sum() > 50
    b08 = imagery / MAY_20 / "B08.tif"
    b08.write_bytes(b08.read_bytes()[: b08.stat().st_size * 6 // 10])
    both = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule", out=tmp_path / "both")
    costs = {Path(f["file"]).name: f["cost_parcels"]
             for f in json.loads((tmp_path / "both" / "run.json").read_text())["read_failures"]}
    flagged = both["reason_all"].str.contains("IMAGERY_READ_ERROR").sum()
    assert costs["B08.tif"] == flagged > costs["B04.tif"] and costs["B04.tif"] <= b04_alone


def _assert_flagged_below_row(results: pd.DataFrame, clean: pd.DataFrame, imagery: Path, row: int) -> None:
    """The sample's parcels wholly above grid row ``row`` of ``imagery`` (more than 500) are measured as on the clean
    imagery (``clean``) and unflagged; those wholly below it (more than 50) are flagged IMAGERY_READ_ERROR, some with
    fewer clear observations."""
    grid = open_imagery(imagery)
    outlines = gpd.read_file(SAMPLE_TILES / "parcels.geojson").set_index("parcel_id").to_crs(grid.crs).bounds
    top_row = (grid.transform.f - outlines["maxy"]) / -grid.transform.e
    bottom_row = (grid.transform.f - outlines["miny"]) / -grid.transform.e
    above, below = bottom_row < row, top_row >= row
    assert above.sum() > 500 and below.sum() > 50
    flagged = results["reason_all"].str.contains("IMAGERY_READ_ERROR")
    assert not flagged[above].any() and flagged[below].all()
    pd.testing.assert_frame_equal(results.loc[above, MEASURED], clean.loc[above, MEASURED])
    assert (results.loc[below, "clear_observations"] < clean.loc[below, "clear_observations"]).any()


def test_a_broken_copy_of_a_scene_whose_twin_reads_flags_no_parcel(sample_rule_results, tmp_path) -> None:
    """Another product of the same date supplies every pixel the broken one fails on: the results are the clean
    run's, no parcel is flagged IMAGERY_READ_ERROR, and the file is still named in run.json."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    twin = imagery / MAY_20.replace("_0_", "_1_")
    shutil.copytree(imagery / MAY_20, twin)
    _cut_to_90_percent(twin / "B04.tif")
    results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule", out=tmp_path / "out")
    results = results.set_index("parcel_id")
    assert not results["reason"].str.contains("IMAGERY_READ_ERROR").any()
    columns = [*MEASURED, "loan_limit", "decision", "status", "reason"]
    pd.testing.assert_frame_equal(results[columns], sample_rule_results[columns])
    [failure] = json.loads((tmp_path / "out" / "run.json").read_text())["read_failures"]
    assert failure["file"] == str(twin / "B04.tif") and failure["cost_parcels"] == 0  # named, not said to cost data


def test_a_clear_date_a_failed_file_loses_is_flagged_where_its_twin_is_cloudy(sample_rule_results, tmp_path) -> None:
    """A twin product of the date under cloud stands in for a B04 that does not open: every parcel that loses a
    clear observation by it is flagged IMAGERY_READ_ERROR (the cloudy pixels counted as supplied: none was)."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    twin = imagery / MAY_20.replace("_0_", "_1_")
    shutil.copytree(imagery / MAY_20, twin)
    with rasterio.open(twin / "SCL.tif") as scl:
        profile = scl.profile | {"driver": "GTiff"}
    with rasterio.open(twin / "SCL.tif", "w", **profile) as scl:
        scl.write(np.full((profile["height"], profile["width"]), 9, dtype=profile["dtype"]), 1)  # all cloud
    band = imagery / MAY_20 / "B04.tif"
    band.write_bytes(bytes(band.stat().st_size))
    results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule").set_index("parcel_id")
    fewer = results["clear_observations"] < sample_rule_results["clear_observations"]
    flagged = results["reason"].str.contains("IMAGERY_READ_ERROR")
    assert fewer.sum() > 100 and flagged[fewer].all()


def test_a_parcel_of_too_many_vertices_stays_on_the_map_and_unmeasured_outlines_have_no_area(
        small_season, tmp_path) -> None:
    """TOO_MANY_VERTICES keeps a thinned outline in the outputs (not measured); a parcel whose outline was not read
    has polygon_area_ha empty, not 0 ha, and so has a borrower of no other parcel."""
    from farmcredit.parcels import MAX_PARCEL_VERTICES

    parcels = gpd.read_file(small_season.parcels_path).head(4)
    field = parcels.geometry.iloc[3]
    walked = shapely.segmentize(field.exterior, field.exterior.length / (MAX_PARCEL_VERTICES + 100))
    parcels.loc[3, "geometry"] = shapely.Polygon(walked)
    parcels.loc[2, "geometry"] = None
    parcels.loc[2, "borrower_id"] = "ALONE"
    results = assess(parcels, small_season.imagery_dir, model="rule", out=tmp_path / "out")
    walk, nothing = results.iloc[3], results.iloc[2]
    assert "TOO_MANY_VERTICES" in walk["reason"] and nothing["reason"] == "EMPTY_GEOMETRY"
    assert np.isnan(walk["polygon_area_ha"]) and np.isnan(nothing["polygon_area_ha"])
    written = gpd.read_file(tmp_path / "out" / "results.gpkg", layer="parcels").set_index("parcel_id")
    assert written.loc[walk["parcel_id"]].geometry.area == pytest.approx(field.area, rel=1e-3)
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("parcel_id")
    assert np.isfinite(table.loc[walk["parcel_id"], ["lon", "lat"]].astype(float)).all()
    borrowers = pd.read_csv(tmp_path / "out" / "borrowers.csv").set_index("borrower_id")
    assert np.isnan(borrowers.loc["ALONE", "polygon_area_ha"])


def test_unusable_rows_keep_their_own_reason_and_outputs_still_write(small_season, tmp_path) -> None:
    parcels = gpd.read_file(small_season.parcels_path).head(10)
    extra = gpd.GeoDataFrame(
        {"parcel_id": ["POINT", "NOTHING", None], "borrower_id": ["Z", "Z", "Z"]},
        geometry=[shapely.Point(parcels.geometry.iloc[0].centroid), None, parcels.geometry.iloc[1]],
        crs=parcels.crs,
    )
    path = tmp_path / "parcels.gpkg"
    pd.concat([parcels, extra], ignore_index=True).to_file(path)
    results = assess(path, small_season.imagery_dir, out=tmp_path / "out").set_index("parcel_id")
    assert results.loc["POINT", "reason"] == "NOT_A_POLYGON"
    assert results.loc["NOTHING", "reason"] == "EMPTY_GEOMETRY"
    # Its outline copies parcel 2's and its borrower differs: the same land pledged twice.
    assert results.loc["row-13", "reason"] == "MISSING_PARCEL_ID;PARCEL_OVERLAP"
    assert (results.loc[["POINT", "NOTHING", "row-13"], "status"] == "error").all()
    assert len(gpd.read_file(tmp_path / "out" / "results.gpkg", layer="parcels")) == 13


def test_a_file_of_which_no_parcel_is_a_polygon_is_refused_naming_what_it_holds(small_season, tmp_path) -> None:
    """A phone's GPS points in place of outlines: not a traceback, nor a run of errors that exits 0 (every parcel
    NOT_A_POLYGON), but the input refused, naming the points and the layer to export."""
    from farmcredit.errors import InputError

    parcels = gpd.read_file(small_season.parcels_path).head(2)
    points = parcels.assign(geometry=parcels.geometry.representative_point())
    with pytest.raises(InputError, match=r"no parcel is a polygon that can be measured \(2 Point\): .*export the "
                                         "parcels' polygon layer"):
        assess(points, small_season.imagery_dir, model="rule", out=tmp_path / "out")


def test_an_outline_with_a_vertex_typed_kilometres_off_is_drawn_not_read_and_the_rest_are_as_without_it(
        baseline, small_season, tmp_path) -> None:
    """Its window would hold all the kilometres its outline spans (tens of GB for a vertex 100 km off): it is not
    read, pledges no other parcel's land, has no area and widens no raster (nor blanks the health of the fields it
    crosses), but the outputs draw it, an error, so its vertices can be checked in QGIS."""
    parcels = gpd.read_file(small_season.parcels_path)
    first = parcels.to_crs(parcels.estimate_utm_crs()).geometry.iloc[0]
    x, y = first.exterior.coords[0]
    stray = gpd.GeoSeries([shapely.Polygon([(x, y), (x + 30, y), (x + 10_000, y - 10_000), (x, y - 30)])],
                          crs=parcels.estimate_utm_crs()).to_crs(parcels.crs)
    extra = gpd.GeoDataFrame({"parcel_id": ["TYPO"], "borrower_id": ["Z"]}, geometry=stray.to_numpy(),
                             crs=parcels.crs)
    path = tmp_path / "parcels.gpkg"
    pd.concat([parcels, extra], ignore_index=True).to_file(path)
    results = assess(path, small_season.imagery_dir, out=tmp_path / "out").set_index("parcel_id")
    assert results.loc["TYPO", ["status", "reason"]].tolist() == ["error", "PARCEL_TOO_LARGE"]
    assert np.isnan(results.loc["TYPO", "polygon_area_ha"])
    pd.testing.assert_frame_equal(results.drop(index="TYPO"), baseline[0].set_index("parcel_id"))
    out, before = tmp_path / "out", baseline[1]
    written = gpd.read_file(out / "results.gpkg", layer="parcels").set_index("parcel_id").to_crs(parcels.crs)
    assert written.loc["TYPO", "status"] == "error" and shapely.equals(written.loc["TYPO"].geometry, stray.iloc[0])
    table = pd.read_csv(out / "results.csv").set_index("parcel_id")
    assert np.isfinite(table.loc["TYPO", ["lon", "lat"]].astype(float)).all()
    borrowers = gpd.read_file(out / "results.gpkg", layer="borrowers").set_index("borrower_id")
    assert borrowers.loc["Z"].geometry is not None and np.isnan(borrowers.loc["Z", "polygon_area_ha"])
    for name in ("health_index.tif", "ndvi_peak.tif", "true_colour.tif"):
        with rasterio.open(out / name) as typo, rasterio.open(before / name) as without:
            assert (typo.shape, typo.transform) == (without.shape, without.transform)
            np.testing.assert_array_equal(typo.read(), without.read())
    from matplotlib.image import imread

    assert imread(out / "preview.png").shape == imread(before / "preview.png").shape  # the run's map as wide


def test_parcels_whose_centres_lie_off_the_grid_at_opposite_edges_get_windows_of_their_own() -> None:
    """A centre off the grid's west edge has column chunk -1; grouped by row and column chunk, it is not the chunk
    past the east edge of the row above (one window across the whole grid)."""
    from rasterio.windows import Window

    from farmcredit.pipeline import plan_windows

    imagery = Imagery(source="grid", scenes=(), crs=CRS.from_epsg(32650), transform=Affine(10, 0, 0, 0, -10, 0),
                      shape=(320, 320), bands=("B04", "B08"), has_scl=True)

    def box(col0: int, row0: int, col1: int, row1: int) -> shapely.Polygon:
        return shapely.box(10 * col0, -10 * row1, 10 * col1, -10 * row0)

    windows = plan_windows(np.array([box(-200, 70, 10, 80), box(300, 10, 400, 20)], dtype=object), imagery, 64)
    assert [(window, members.tolist()) for window, members in windows] == [
        (Window(300, 10, 20, 10), [1]), (Window(0, 70, 10, 10), [0])]


def test_only_windows_around_the_parcels_are_read(small_season) -> None:
    from farmcredit.pipeline import plan_windows

    imagery = open_imagery(small_season.imagery_dir)
    left, top = imagery.transform.c, imagery.transform.f
    corners = [shapely.box(left + 15, top - 45, left + 45, top - 15),
               shapely.box(left + 905, top - 945, left + 935, top - 915)]
    windows = plan_windows(np.array(corners, dtype=object), imagery, chunk_px=32)
    assert len(windows) == 2
    assert all(w.width <= 4 and w.height <= 4 for w, _ in windows)
    assert sum(w.width * w.height for w, _ in windows) < 0.01 * imagery.shape[0] * imagery.shape[1]


def test_borrower_records_list_parcel_ids_holding_the_list_separator_whole(small_season, tmp_path) -> None:
    """``;`` joins ids in the tables' text columns; the audit records list each id whole all the same."""
    parcels = gpd.read_file(small_season.parcels_path).head(3)
    parcels["parcel_id"] = ["P;33", "P; 34", "P35"]
    parcels["borrower_id"] = "B1"
    parcels.to_file(tmp_path / "parcels.gpkg")
    assess(tmp_path / "parcels.gpkg", small_season.imagery_dir, model="rule", out=tmp_path / "out")
    (line,) = [json.loads(text) for text in (tmp_path / "out" / "borrower_decisions.jsonl").read_text().splitlines()]
    assert line["parcel_ids"] == pd.Series(parcels["parcel_id"]).sort_values().tolist()  # in id order, each whole
    assert set(line["decided_by"]) <= set(line["parcel_ids"]) and line["decided_by"]
    assert [step.split(" = ")[0] for step in line["limit_arithmetic"]][:3] == ["parcel limits", "capped", "rounded"]
    assert "(P; 34)" in line["limit_arithmetic"][0] and all(step.count(" = ") <= 2 for step in line["limit_arithmetic"])


def test_decision_records_are_complete_and_identical_for_identical_runs(small_season, tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assess(small_season.parcels_path, small_season.imagery_dir, out=first)
    assess(small_season.parcels_path, small_season.imagery_dir, out=second)
    records = (first / "decisions.jsonl").read_text()
    assert records == (second / "decisions.jsonl").read_text()
    lines = [json.loads(line) for line in records.splitlines()]
    assert len(lines) == small_season.n_parcels
    record = lines[0]
    expected = {"inputs", "signals", "risk_features", "limit_arithmetic", "config_hash", "models", "imagery", "code"}
    assert expected <= set(record)
    assert record["models"]["cropland"] == load_cropland_model().describe()  # name and hash of the model run
    for line in lines:  # the arithmetic ends at the limit offered, or says why there is none
        last = line["limit_arithmetic"][-1]
        assert last.startswith(f"loan_limit = {money(line['loan_limit'])} CNY") or (
            last.startswith("no limit: ") and line["loan_limit"] == 0 and line["decision"] != "approve")
        # Split where each step begins, never inside a min(a; b).
        assert [step.split(" = ")[0] for step in line["limit_arithmetic"]] == [*LIMIT_STEPS] or [last] == line[
            "limit_arithmetic"]
    assert all(reason["sentence"] for reason in record["reasons"])
    assert "region" in record["inputs"]
    borrower_records = (first / "borrower_decisions.jsonl").read_text()
    assert borrower_records == (second / "borrower_decisions.jsonl").read_text()
    borrowers = pd.read_csv(first / "borrowers.csv", dtype={"borrower_id": str})
    by_parcel = {line["parcel_id"]: line for line in lines}
    for line, (_, row) in zip(map(json.loads, borrower_records.splitlines()), borrowers.iterrows(), strict=True):
        assert (line["borrower_id"], line["loan_limit"], line["decision"]) == (row["borrower_id"], row["loan_limit"],
                                                                              row["decision"])
        total = sum(by_parcel[pid]["loan_limit"] for pid in line["parcel_ids"])
        assert line["limit_arithmetic"][0].endswith(f"= {money(round(total, 2))} CNY")
        assert line["config_hash"] == record["config_hash"]
        shown = row["reason"].split(";") if isinstance(row["reason"], str) else []  # an empty cell reads as NaN
        assert [reason["code"] for reason in line["reasons"]][:4] == shown


def test_the_python_api_takes_what_the_cli_takes_and_refuses_alike(small_season, tmp_path: Path) -> None:
    """Parcels as a GeoDataFrame are checked as a file's are; seasons as the CLI writes them or as dates; the
    imagery options the CLI has."""
    from datetime import datetime

    from farmcredit.errors import ImageryError, InputError

    parcels = gpd.read_file(small_season.parcels_path).head(5)
    run = {"model": "rule"}
    with pytest.raises(InputError, match="contains no parcels"):
        assess(parcels.iloc[:0], small_season.imagery_dir, **run)
    naive = parcels.set_crs(None, allow_override=True)
    with pytest.raises(InputError, match="declares no coordinate reference system.*parcels_crs="):
        assess(naive, small_season.imagery_dir, **run)
    expected = assess(parcels, small_season.imagery_dir, **run)
    given = assess(naive, small_season.imagery_dir, parcels_crs=parcels.crs.to_string(), **run)
    pd.testing.assert_frame_equal(given.drop(columns="geometry"), expected.drop(columns="geometry"))
    first, last = min(small_season.dates), max(small_season.dates)
    seasons = [f"{first}/{last}", (str(first), str(last)), (datetime.combine(first, datetime.min.time()),
                                                            pd.Timestamp(last))]
    for season in seasons:
        pd.testing.assert_frame_equal(assess(parcels, small_season.imagery_dir, season=season, **run), expected)
    for season, message in (((last, first), "ends before it starts"), ("2024-03-01", r"season= in Python\) is not"),
                            ((1, 2), "is not START/END")):
        with pytest.raises(InputError, match=message):
            assess(parcels, small_season.imagery_dir, season=season, **run)
    # The CLI's --dn-offset and --device: scene folders read with a DN offset (they have STAC items, which carry
    # theirs: the same results), the CNN where asked: on the CPU; on CUDA where torch sees it, else refused.
    import torch

    pd.testing.assert_frame_equal(assess(parcels, small_season.imagery_dir, dn_offset=-1000, **run), expected)

    def device_run(device: str) -> str:
        assess(parcels, small_season.imagery_dir, model="cnn", device=device, out=tmp_path / device)
        return json.loads((tmp_path / device / "run.json").read_text())["models"]["cropland"]["device"]

    assert device_run("cpu") == "cpu"
    if torch.cuda.is_available():
        assert device_run("cuda") == "cuda"
    else:
        with pytest.raises(InputError, match=r"--device cuda \(device= in Python\) asked for, but torch sees no "
                                             "CUDA GPU"):
            device_run("cuda")
    with pytest.raises(ImageryError, match="a remote source: fetch it into a folder first"):
        assess(parcels, "stac", **run)


def test_parcels_crs_takes_an_epsg_code_or_a_crs_as_well_as_a_string(small_season) -> None:
    """parcels_crs=4326 or a pyproj CRS read the parcels, then failed in shlex.quote (a bare TypeError) as the printed
    fetch command was put together: the CRS is now named as a --parcels-crs writes it, and what is no CRS refused."""
    import pyproj

    from farmcredit.errors import InputError

    parcels = gpd.read_file(small_season.parcels_path).head(3)
    naive, epsg = parcels.set_crs(None, allow_override=True), parcels.crs.to_epsg()
    expected = run_assessment(parcels, small_season.imagery_dir, model="rule").parcels
    for given in (epsg, pyproj.CRS.from_epsg(epsg), parcels.crs):
        result = run_assessment(naive, small_season.imagery_dir, model="rule", parcels_crs=given)
        pd.testing.assert_frame_equal(result.parcels.drop(columns="geometry"), expected.drop(columns="geometry"))
        assert result.record["inputs"]["parcels"]["parcels_crs"] == f"EPSG:{epsg}"
    with pytest.raises(InputError, match=r"parcels_crs= takes a CRS .* not 3\.5"):
        run_assessment(naive, small_season.imagery_dir, model="rule", parcels_crs=3.5)


def test_a_config_made_in_python_is_checked_on_entry(small_season, tmp_path: Path) -> None:
    """A Config changed with ``model_copy`` (which checks nothing) ran silently where ``load_config`` refuses its
    values: every borrower declined by a minimum loan above the cap, or limits rounded to 0.001."""
    from farmcredit.batch import run_batch
    from farmcredit.errors import ConfigError

    config = load_config()
    bad = config.model_copy(update={"credit": config.credit.model_copy(update={"rounding_step": 0.001})})
    for run in (assess, run_assessment, lambda *args, **kwargs: run_batch(*args, tmp_path / "batch", **kwargs)):
        with pytest.raises(ConfigError, match=r"config= \(a Config\): credit.rounding_step"):
            run(small_season.parcels_path, small_season.imagery_dir, config=bad, model="rule")


@pytest.mark.parametrize("stop", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_write_that_does_not_finish_is_marked_and_refused_as_unfinished(
        small_season, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: BaseException) -> None:
    """An earlier run's folder written over by a run that stops part-way (a full disk, Ctrl-C): marked, its mix of
    new and old files reads as unfinished, never as either run; results copied without run.json still read."""
    import farmcredit.outputs.tables as tables
    from farmcredit.credit.report import load_results
    from farmcredit.errors import InputError
    from farmcredit.locking import UNFINISHED
    from farmcredit.outputs import render_preview, write_outputs

    result = run_assessment(small_season.parcels_path, small_season.imagery_dir, model="rule")
    write_outputs(tmp_path, result)
    assert (tmp_path / "run.json").is_file() and not (tmp_path / UNFINISHED).exists()
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in ("results.gpkg", "results.parquet", "true_colour.tif"):
        shutil.copy(tmp_path / name, copied / name)
    assert render_preview(copied).is_file() and len(load_results(copied)) == len(result.parcels)

    def full(*_: object) -> None:
        raise stop

    monkeypatch.setattr(tables, "write_csv", full)  # after the GeoPackage and GeoParquet are new
    with pytest.raises(InputError if isinstance(stop, OSError) else KeyboardInterrupt) as stopped:
        write_outputs(tmp_path, result)
    if isinstance(stop, OSError):
        assert f"writing the outputs in {tmp_path} stopped" in str(stopped.value)
        assert "No space left on device" in str(stopped.value) and UNFINISHED in str(stopped.value)
        assert re.search(r"\([0-9,.]+ MiB free on its disk\)", str(stopped.value))
    assert (tmp_path / UNFINISHED).exists() and not (tmp_path / "preview.png").exists()
    # The earlier run's audit record is not left beside the new tables (`cp *` leaves the marker behind).
    assert not (tmp_path / "run.json").exists()
    for refused in (lambda: render_preview(tmp_path), lambda: load_results(tmp_path),
                    lambda: load_results(tmp_path / "results.csv")):
        with pytest.raises(InputError, match="its outputs were left unfinished"):
            refused()


def test_a_season_narrows_imagery_opened_already_as_it_narrows_a_path(small_season, tmp_path: Path) -> None:
    """An ``Imagery`` was read whole whatever ``season`` said (16 dates, not the season's 4, on the sample); the
    options that say how to open a path were ignored with it, and are refused."""
    from farmcredit.errors import ImageryError, InputError

    opened = open_imagery(small_season.imagery_dir)
    season = "2024-04-01/2024-08-31"
    by_path = run_assessment(small_season.parcels_path, small_season.imagery_dir, season=season, model="rule")
    by_object = run_assessment(small_season.parcels_path, opened, season=season, model="rule")
    assert len(by_object.imagery.scenes) == len(by_path.imagery.scenes) == 5 < len(opened.scenes)
    pd.testing.assert_frame_equal(by_object.parcels, by_path.parcels)
    for part in ("season_dates", "season_requested", "inputs"):
        assert by_object.record[part] == by_path.record[part]
    # The season asked for, beside the dates read (which may be fewer); none asked for, None.
    assert by_path.record["season_requested"] == season and by_path.record["season_dates"][0] > "2024-04-01"
    assert run_assessment(small_season.parcels_path, opened, model="rule").record["season_requested"] is None
    with pytest.raises(ImageryError, match=r"none of the 8 scenes was acquired within 2025-01-01\.\.2025-02-01"):
        run_assessment(small_season.parcels_path, opened, season="2025-01-01/2025-02-01", model="rule")
    for option in ({"dn_offset": -1000}, {"band_layout": [(None, "B04")]}):
        with pytest.raises(InputError, match="band_layout= and dn_offset= .* apply when imagery is a path"):
            assess(small_season.parcels_path, opened, model="rule", **option)


def test_results_of_a_geodataframe_carry_its_index_and_are_measured_by_position(small_season, tmp_path: Path) -> None:
    """The results had a fresh RangeIndex: ``g["loan_limit"] = results["loan_limit"]`` on a sorted or filtered frame
    gave most parcels another's limit (706 of the sample's 752). Labels sorted, filtered or repeated (``pd.concat``)
    are the results'; the run reads rows by position, so each gives what the same rows in a RangeIndex give."""
    parcels = gpd.read_file(small_season.parcels_path)
    head = parcels.iloc[:20].reset_index(drop=True)
    head.loc[3, "parcel_id"], head.loc[14, "geometry"] = None, None  # rows the run refers, by position
    variants = {
        "sorted": parcels.sort_values("parcel_id", ascending=False),
        "filtered": parcels[parcels.index % 3 != 0],
        "repeated": pd.concat([head.iloc[:10], head.iloc[10:].reset_index(drop=True)]),
        "named": parcels.set_axis(pd.Index([f"field {i}" for i in range(len(parcels))], name="field")),
    }
    for name, frame in variants.items():
        results = assess(frame, small_season.imagery_dir, model="rule", out=tmp_path / name)
        assert results.index.equals(frame.index) and results.index.name == frame.index.name, name
        assert (results["parcel_id"] == frame["parcel_id"].fillna(results["parcel_id"])).all(), name
        by_position = assess(frame.reset_index(drop=True), small_season.imagery_dir, model="rule")
        assert isinstance(by_position.index, pd.RangeIndex)
        pd.testing.assert_frame_equal(results, by_position.set_axis(frame.index), check_names=True)
        joined = frame.assign(loan_limit=results["loan_limit"])  # the caller's join lines up
        np.testing.assert_array_equal(joined["loan_limit"].to_numpy(), by_position["loan_limit"].to_numpy())
        written = gpd.read_parquet(tmp_path / name / "results.parquet")  # the files number rows as before
        record = json.loads((tmp_path / name / "run.json").read_text(encoding="utf-8"))
        pd.testing.assert_frame_equal(written.drop(columns="geometry"),  # as write_outputs types the file
                                      parquet_typed(by_position, record).drop(columns="geometry"), check_dtype=False)
    assert isinstance(assess(small_season.parcels_path, small_season.imagery_dir, model="rule").index,
                      pd.RangeIndex)


def test_the_packages_python_api_is_seen_by_dir_and_type_checkers() -> None:
    """Imported on first use (``__getattr__``), the pipeline's names are listed by ``dir`` (tab completion) and
    imported under ``TYPE_CHECKING`` (type checkers and editors, the package shipping ``py.typed``)."""
    import ast

    import farmcredit

    public = set(farmcredit.__all__) - {"__version__"}
    assert {"assess", "run_assessment"} <= public <= set(dir(farmcredit))
    assert {name for name in dir(farmcredit) if not name.startswith("_")} == public  # not the helpers imported there
    tree = ast.parse(Path(farmcredit.__file__).read_text(encoding="utf-8"))
    checked = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    lazy = {alias.name for node in checked.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert lazy == set(farmcredit._PIPELINE_NAMES) and public - lazy == {"ConfigError", "FarmcreditError",
                                                                         "ImageryError", "InputError"}
    assert farmcredit.run_assessment is run_assessment and farmcredit.assess is assess
    # The errors a caller catches, importable from the package (they were only in farmcredit.errors).
    from farmcredit.errors import InputError

    assert farmcredit.InputError is InputError and issubclass(farmcredit.InputError, farmcredit.FarmcreditError)
    result = farmcredit.run_assessment(SAMPLE_TILES / "parcels.geojson", SAMPLE_TILES / "imagery", model="rule")
    assert len(repr(result)) < 300 and "752 parcels" in repr(result)  # a notebook's cell shows a line, not 80,000


def test_an_out_that_is_a_file_is_refused_before_anything_is_measured(small_season, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``assess(..., out=a file)`` ran the whole season, then failed writing; it fails first, as the CLI's --out."""
    from farmcredit import pipeline
    from farmcredit.errors import InputError

    def measured(*_: object, **__: object) -> None:
        raise AssertionError("measured before out= was checked")

    monkeypatch.setattr(pipeline, "run_assessment", measured)
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    with pytest.raises(InputError, match="is a file, not a folder"):
        assess(small_season.parcels_path, small_season.imagery_dir, model="rule", out=afile)


@pytest.mark.parametrize(("season", "code", "warning"), [
    ("2024-03-01/2024-06-14", "SEASON_MISSES_CROP", "parcel(s) show no crop, but no clear image of theirs reads them "
                                                    "bare while their crop is green"),
    ("2024-03-01/2024-07-25", "PEAK_NOT_OBSERVED", "parcel(s) have no clear image near their crop's peak"),
])
def test_parcels_a_short_season_cannot_judge_are_warned_of_in_python_too(
        small_season, caplog: pytest.LogCaptureFixture, season: str, code: str, warning: str) -> None:
    """Only the CLI said how many parcels a season ending early refers (SEASON_MISSES_CROP, PEAK_NOT_OBSERVED)."""
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        results = assess(small_season.parcels_path, small_season.imagery_dir, season=season, model="rule")
    referred = results["reason_all"].str.split(";").map(lambda codes: code in codes).sum()
    assert referred >= 3 and f"{referred} {warning}" in caplog.text


def _half_a_year_off(template: tuple[tuple[float, float], ...]) -> list[list[float]]:
    """A crop calendar moved by 183 days round the new year, as the packaged Chinese ones read on a southern season."""
    from farmcredit.agronomy.signals import template_at

    days = np.array([*range(1, 366, 7), 366])
    return [[int(day), round(float(ndvi), 3)]
            for day, ndvi in zip(days, template_at(np.array(template), (days - 184) % 366 + 1))]


def test_a_crop_calendar_whose_peak_the_season_misses_is_warned_of_naming_its_template(
        small_season, caplog: pytest.LogCaptureFixture) -> None:
    """The packaged Chinese calendars on a Zambian season (November to April): 425 parcels were referred
    PEAK_NOT_OBSERVED and told that a --season covering the peak rates them, when their crops' calendar was wrong.
    Here the calendars are half a year off the simulated season's: maize, soybean and rice (whose season the dates
    reach, in April) are seen green in August, outside their calendars' seasons, and told of their ndvi_template
    first; wheat is seen."""
    values = load_config().model_dump()
    for spec in values["crops"].values():
        spec["ndvi_template"] = _half_a_year_off(spec["ndvi_template"])
    config = Config.model_validate(values)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        results = assess(small_season.parcels_path, small_season.imagery_dir, season="2024-04-01/2024-10-31",
                         config=config, model="rule")
    unseen = results["reason_all"].str.split(";").map(lambda codes: "PEAK_NOT_OBSERVED" in codes)
    said = {crop: [record.getMessage() for record in caplog.records if f"near {crop}'s peak" in record.getMessage()]
            for crop in config.crops}
    [maize] = said["maize"]
    maize_unseen = (unseen & (results["priced_crop"] == "maize")).sum()
    assert maize.startswith("none of the season's 7 date(s), 2024-04-05 to 2024-10-27, falls near maize's peak as its "
                            "crop calendar has it, 27 January to 1 March (days 27-61 of the year), give or take "
                            f"the 15 days a parcel's season may shift: {maize_unseen} "
                            "parcel(s) priced as maize are referred PEAK_NOT_OBSERVED")
    assert maize.endswith("; its ndvi_template in --config (crops.maize.ndvi_template) sets its calendar: where maize "
                          "grows in other months (a southern season), give one peaking then (a crop green across the "
                          "new year: points on day 1 and 366); else a --season (season= in Python) reaching its peak "
                          "rates them")
    [rice] = said["rice"]
    assert rice.endswith("; else a --season (season= in Python) reaching its peak rates them")
    assert said["wheat"] == []
    told = unseen & results["priced_crop"].isin(["maize", "soybean"])
    assert told.sum() > 0
    assert f"{(unseen & ~told).sum()} parcel(s) have no clear image near their crop's peak" in caplog.text


def test_a_season_ending_before_its_crops_grow_is_told_of_the_season_first(
        small_season, caplog: pytest.LogCaptureFixture) -> None:
    """A season ending before the summer crops grow blamed the maize, rice and soybean calendars first (no date fell
    in their seasons), though the parcels show those crops nowhere green, so nothing says the calendar is wrong."""
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assess(small_season.parcels_path, small_season.imagery_dir, season="2024-04-01/2024-05-31", model="rule")
    said = [record.getMessage() for record in caplog.records if "near maize's peak" in record.getMessage()]
    [maize] = said
    assert "referred PEAK_NOT_OBSERVED (health and yield not rated); a --season (season= in Python) reaching its " \
           "peak rates them, or its ndvi_template" in maize


def test_a_crop_calendar_is_not_warned_of_where_it_refers_no_parcel(caplog: pytest.LogCaptureFixture) -> None:
    """A spring season misses maize's peak, but the parcel declared maize is priced as the wheat it shows: the warning
    told of '0 parcel(s) priced as maize are referred PEAK_NOT_OBSERVED' and advised a season reaching maize's peak."""
    parcels = pd.DataFrame({"parcel_id": ["P1"], "declared_crop": ["maize"], "priced_crop": ["wheat"]})
    series = pd.DataFrame({"parcel_id": ["P1"], "date": [pd.Timestamp("2024-04-20")], "clear_share": [1.0],
                           "ndvi_mean": [0.7]})
    codes = pd.Series([["CROP_MISMATCH"]])
    dates = [pd.Timestamp(day).date() for day in ("2024-04-05", "2024-04-20", "2024-05-05")]
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        told = _warn_calendars(load_config(), parcels, series, codes, dates)
    assert not told.any()
    assert "peak" not in caplog.text


def test_parcels_clouds_leave_too_few_clear_images_are_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    """A season of enough dates whose clouds left parcels too few clear ones referred them all with no warning: only a
    season of too few dates was warned of. The sample's 20 April is cloud over all, so four dates leave three."""
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        results = assess(SAMPLE_TILES / "parcels.geojson", SAMPLE_TILES / "imagery", season="2024-03-01/2024-04-25",
                         model="rule")
    referred = results["reason_all"].str.contains("CLEAR_OBSERVATIONS").sum()
    assert referred == len(results)
    assert (f"{referred} parcel(s) have fewer than 4 clear images of the season's 4 dates (FEW_CLEAR_OBSERVATIONS, "
            "NO_CLEAR_OBSERVATIONS: referred)") in caplog.text
    assert "the season holds" not in caplog.text


def test_parcels_read_failures_left_too_few_clear_images_are_not_said_to_be_clouded(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every date's B08 cut short: the parcels on its failed blocks have no clear date, which the read failures'
    warning tells; the clouds warning told them to take a longer season."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    for band in sorted(imagery.glob("*/B08.tif")):
        band.write_bytes(band.read_bytes()[: band.stat().st_size * 9 // 10])
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule")
    codes = results["reason_all"].str.split(";")
    assert codes.map(lambda c: "NO_CLEAR_OBSERVATIONS" in c and "IMAGERY_READ_ERROR" in c).sum() > 50
    clouded = codes.map(lambda c: "CLEAR_OBSERVATIONS" in ";".join(c) and "IMAGERY_READ_ERROR" not in c).sum()
    said = f"{clouded} parcel(s) have fewer than" if clouded else "clear images of the season"
    assert (said in caplog.text) == bool(clouded)
    # The read failures' warning says how many of its parcels it left too few clear dates (they were in no warning).
    failed = codes.map(lambda c: "IMAGERY_READ_ERROR" in c and "CLEAR_OBSERVATIONS" in ";".join(c)).sum()
    assert f"(IMAGERY_READ_ERROR), {failed} of them left with too few clear dates" in caplog.text


def test_a_failed_files_path_is_recorded_absolute_as_the_scenes_files_are(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a relative --imagery, assess wrote a failed file's path relative (batch: absolute), so an auditor could
    not match it to its scene's file record."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SAMPLE_TILES / "imagery", "imagery")
    _cut_to_90_percent(Path("imagery") / MAY_20 / "B04.tif")
    assess(SAMPLE_TILES / "parcels.geojson", "imagery", model="rule", out="out")
    [failure] = json.loads(Path("out/run.json").read_text())["read_failures"]
    assert failure["file"] == str(tmp_path / "imagery" / MAY_20 / "B04.tif")


def test_parcels_whose_health_too_few_peers_rate_are_warned_of_as_graded_on_average_health(
        small_season, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A farmer's parcels assessed alone have no peers: their health is not rated (FEW_PEERS, info) and the risk
    model takes it as average, so a sickly crop graded alone fared better than in its portfolio, in silence."""
    parcels = gpd.read_file(small_season.parcels_path).iloc[:3]
    alone = tmp_path / "alone.geojson"
    parcels.to_file(alone)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        results = assess(alone, small_season.imagery_dir, model="rule")
    unrated = results["reason_all"].str.split(";").map(lambda codes: "FEW_PEERS" in codes).sum()
    assert unrated >= 1 and results.loc[results["reason_all"].str.contains("FEW_PEERS"), "health_index"].isna().all()
    assert (f"{unrated} parcel(s) have too few cropland parcels beside them in this run to rate their health "
            "(FEW_PEERS): their risk grade takes it as average") in caplog.text


@pytest.mark.parametrize("entry", ["assess", "run_batch"])
def test_the_rule_model_is_warned_of_as_a_baseline_that_called_real_forest_cultivated(
        small_season, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        entry: str) -> None:
    """On a real Slovenian season the rule called deciduous forest, grassland and shrubland cultivated and approved
    loans on them, without a word; each run with it says, once and before measuring, to decide on the CNN."""
    from farmcredit import pipeline
    from farmcredit.batch import runner

    class Measured(Exception):
        pass

    def measured(*_: object, **__: object) -> None:
        raise Measured

    monkeypatch.setattr(pipeline, "run_assessment", measured)
    monkeypatch.setattr(runner, "load_inputs", measured)
    run = {"assess": pipeline.assess, "run_batch": lambda *args, **kw: runner.run_batch(*args, tmp_path, **kw)}[entry]
    with caplog.at_level(logging.WARNING, logger="farmcredit"), pytest.raises(Measured):
        run(small_season.parcels_path, small_season.imagery_dir, model="rule")
    assert caplog.text.count("the phenology rule (phenology-rule-v1) is a baseline, measured on simulated seasons: "
                             "on a real season (Slovenia, 2017) it called deciduous forest, grassland and shrubland "
                             "cultivated") == 1
    assert 'decide on the CNN, the default (--model cnn, model="cnn" in Python)' in caplog.text


def test_an_uncalibrated_model_and_an_out_holding_a_batch_runs_partitions_are_warned_of_in_python_too(
        small_season, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the CLI warned of a model card without ``mixed_margin`` and of an out= holding a batch run's partitions;
    ``assess`` does, before measuring."""
    from farmcredit import pipeline
    from farmcredit.batch.partitions import MANIFEST
    from farmcredit.segmentation.card import DEFAULT_WEIGHTS, card_path

    weights = tmp_path / "tuned.safetensors"
    weights.write_bytes(DEFAULT_WEIGHTS.read_bytes())
    card = json.loads(card_path(DEFAULT_WEIGHTS).read_text())
    card["calibration"] = {"a": 1.0, "b": 0.0}  # as `farmcredit train` leaves it
    card_path(weights).write_text(json.dumps(card))
    out = tmp_path / "out"
    (out / "partitions").mkdir(parents=True)
    (out / "partitions" / MANIFEST).write_text("{}")

    class Measured(Exception):
        pass

    def measured(*_: object, **__: object) -> None:
        raise Measured

    monkeypatch.setattr(pipeline, "run_assessment", measured)
    with caplog.at_level(logging.WARNING, logger="farmcredit"), pytest.raises(Measured):
        assess(small_season.parcels_path, small_season.imagery_dir, model=weights, device="cpu", out=out)
    assert caplog.text.count("has no calibrated area interval") == 1 and "`farmcredit calibrate" in caplog.text
    assert f"{out / 'partitions'} holds a batch run's partitions" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="farmcredit"), pytest.raises(Measured):
        assess(small_season.parcels_path, small_season.imagery_dir, model="cnn", device="cpu")
    assert "no calibrated area interval" not in caplog.text and "partitions" not in caplog.text


def test_parcels_a_band_file_short_of_its_scene_misses_skip_that_date_with_a_reason(
        sample_rule_results, tmp_path) -> None:
    """A B04 cropped to its top three quarters (a band exported apart) costs the parcels below them that date: they
    say so (IMAGERY_READ_ERROR), as for a file that fails to decode; the parcels it covers keep their measurements
    and get no such reason."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    band_file = imagery / MAY_20 / "B04.tif"
    with rasterio.open(band_file) as source:
        kept_rows = source.height * 3 // 4
        values, profile = source.read()[:, :kept_rows], source.profile | {"height": kept_rows}
    with rasterio.open(band_file, "w", **profile) as dataset:
        dataset.write(values)
    results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule").set_index("parcel_id")
    _assert_flagged_below_row(results, sample_rule_results, imagery, kept_rows)


def test_parcels_band_files_short_of_their_scenes_leave_too_few_clear_dates_are_warned_of(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """B08 of all dates but the first two cropped to its top half: the parcels below have two clear dates at most
    (IMAGERY_READ_ERROR, no file failing to read). The clouds warning left out every IMAGERY_READ_ERROR parcel,
    counted by the read failures' warning, which says nothing where no file failed: 350 referrals were in no
    warning."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    for band_file in sorted(imagery.glob("*/B08.tif"))[2:]:
        with rasterio.open(band_file) as source:
            kept_rows = source.height // 2
            values, profile = source.read()[:, :kept_rows], source.profile | {"height": kept_rows}
        with rasterio.open(band_file, "w", **profile) as dataset:
            dataset.write(values)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule")
    referred = results["reason_all"].str.contains("CLEAR_OBSERVATIONS").sum()
    assert results["reason_all"].str.contains("IMAGERY_READ_ERROR").sum() > 100 and referred > 100
    assert f"{referred} parcel(s) have fewer than 4 clear images" in caplog.text


def test_parcels_outside_the_windows_a_fetch_wrote_are_warned_of_once_with_the_fetch_that_adds_them(
        small_season, tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """Two parcels off a folder `farmcredit fetch` wrote were only OUTSIDE_IMAGERY rows, with no word of what to do:
    one warning says they lie outside the windows fetched and gives the fetch command that adds them (the season
    assessed, the fetch's cloud limit and collection where not the defaults); off imagery no fetch wrote, nothing."""
    from farmcredit.imagery.fetch import FETCH_BANDS, FetchManifest, RemoteSource

    imagery = tmp_path / "fetched imagery"
    shutil.copytree(small_season.imagery_dir, imagery)
    parcels = gpd.read_file(small_season.parcels_path)
    grid = open_imagery(imagery)
    left, top = grid.transform.c, grid.transform.f
    away = gpd.GeoDataFrame({"parcel_id": ["AWAY1", "AWAY2"], "borrower_id": ["X", "Y"]},
                            geometry=[shapely.box(left - 9000, top - 200, left - 8900, top - 100),
                                      shapely.box(left - 9000, top - 400, left - 8900, top - 300)], crs=grid.crs)
    path = tmp_path / "fields.gpkg"
    pd.concat([parcels, away.to_crs(parcels.crs)], ignore_index=True).to_file(path)
    with caplog.at_level(logging.WARNING):
        assess(path, imagery, model="rule")
    assert "outside" not in caplog.text  # not fetched: the rows alone say it
    FetchManifest(source=RemoteSource("stac", "https://example.org/stac", "sentinel-2-c1-l2a").describe(),
                  season=("2024-01-01", "2024-12-31"), max_cloud=30.0, bands=FETCH_BANDS,
                  area_bounds=(0.0, 0.0, 1.0, 1.0), scenes=()).write(imagery)
    season = tuple(str(scene.acquired.date()) for scene in (grid.scenes[0], grid.scenes[-1]))
    for asked, fetch_season in ((None, "2024-01-01/2024-12-31"), (season, "/".join(season))):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            results = assess(path, imagery, model="rule", season=asked)
        assert (results["reason"].iloc[-2:] == "OUTSIDE_IMAGERY").all()
        said = [record.getMessage() for record in caplog.records if "outside" in record.getMessage()]
        assert said == [
            f"parcel file {path}: 2 of {len(parcels) + 2} parcel(s) lie wholly outside the windows their imagery "
            "folder was fetched for, so they are not assessed (OUTSIDE_IMAGERY); fetch theirs into it, then assess "
            f"again (a rerun downloads nothing already there): farmcredit fetch {path} --season {fetch_season} "
            f"--out '{imagery}' --stac-url https://example.org/stac --collection sentinel-2-c1-l2a --max-cloud 30"]


def test_the_fetch_manifest_is_not_read_when_every_parcel_lies_on_the_imagery(
        small_season, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetch command that adds parcels' windows is only for parcels off them: with none off, no manifest.json is
    read nor command built (it was, on every run)."""
    import farmcredit.pipeline

    def refused(source: object) -> None:
        raise AssertionError(f"manifest of {source} read with every parcel on the imagery")

    monkeypatch.setattr(farmcredit.pipeline, "read_manifest", refused)
    results = assess(small_season.parcels_path, small_season.imagery_dir, model="rule")
    assert not results["reason"].str.contains("OUTSIDE_IMAGERY").any()


def test_the_fetch_command_printed_on_windows_is_quoted_as_cmd_exe_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """shlex's single quotes are no quotes to cmd.exe: the fetch command printed on Windows did not run as printed."""
    words = ["farmcredit", "fetch", r"C:\My Fields\parcels.gpkg", "--out", "img"]
    assert _command_line(words) == r"farmcredit fetch 'C:\My Fields\parcels.gpkg' --out img"
    with monkeypatch.context() as patched:
        patched.setattr(os, "name", "nt")
        windows = _command_line(words)
    assert windows == r'farmcredit fetch "C:\My Fields\parcels.gpkg" --out img'


def test_a_parcels_figures_do_not_depend_on_the_order_of_the_parcels_measured_with_it() -> None:
    """One running sum over every parcel's rows of cells carried each row's rounding residue into the parcels after
    it: on sample_tiles in 64 px windows, its 752 parcels in reverse order changed 57 parcels' NDVI means in the last
    digit, and batch (parcels by id) differed so from assess (file order). Each row's sum now starts from 0."""
    from farmcredit.pipeline import load_inputs, measure_parcels

    config = load_config().model_copy(update={"imagery": load_config().imagery.model_copy(update={"chunk_px": 64})})
    inputs = load_inputs(SAMPLE_TILES / "parcels.geojson", SAMPLE_TILES / "imagery", config=config)
    model = load_cropland_model("rule")
    reverse = np.arange(len(inputs.geoms))[::-1]
    forward, _ = measure_parcels(inputs.geoms, inputs.imagery, config, model)
    backward, _ = measure_parcels(inputs.geoms[reverse], inputs.imagery, config, model)
    for field in dataclasses.fields(forward):
        values = getattr(forward, field.name)
        if isinstance(values, np.ndarray) and values.dtype.kind == "f" and len(values) == len(reverse):
            np.testing.assert_array_equal(getattr(backward, field.name)[reverse], values, err_msg=field.name)


MARCH_1 = "S2A_50SKB_20240301_0_L2A"
# Snow's reflectance (B03 0.84, B08 0.75, B11 0.08: NDSI 0.83) as the sample's DNs hold it (+1000, baseline 05.10).
SNOW_REFLECTANCE = {"B01": 0.80, "B02": 0.85, "B03": 0.84, "B04": 0.82, "B05": 0.80, "B06": 0.78, "B07": 0.77,
                    "B08": 0.75, "B8A": 0.72, "B09": 0.60, "B11": 0.08, "B12": 0.06}


def _snow_over(scene: Path, scl: int, north_only: bool = False) -> None:
    """Write snow over a sample scene's data (its north half only: ``north_only``), its SCL as ``scl`` there."""
    for band in [*SNOW_REFLECTANCE, "SCL"]:
        with rasterio.open(scene / f"{band}.tif") as source:
            values, profile = source.read(1), source.profile
        where = values > 0
        if north_only:
            where[values.shape[0] // 2:] = False
        values[where] = scl if band == "SCL" else round(SNOW_REFLECTANCE[band] * 10_000 + 1000)
        with rasterio.open(scene / f"{band}.tif", "w", **profile) as target:
            target.write(values, 1)


def test_snow_the_cloud_mask_calls_clear_is_masked_and_named(
        sample_rule_results, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Snow over half of 1 March that a cloud mask of one's own wrote as clear (SCL 4) was read as bare land, with no
    warning (the rule lent 218,600 for the sample's 201,600; the CNN declined 470 parcels, not 101). Read as snow by its
    spectrum, it is masked: the decisions are the snow-free ones, and the run names the date."""
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE_TILES / "imagery", imagery)
    _snow_over(imagery / MARCH_1, scl=4, north_only=True)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        results = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule", out=tmp_path / "out")
    changed = (results.set_index("parcel_id")["decision"] != sample_rule_results["decision"]).sum()
    assert changed <= 5
    assert results["cultivated_area_ha"].sum() == pytest.approx(sample_rule_results["cultivated_area_ha"].sum(),
                                                                rel=0.02)
    [day] = [day for day in json.loads((tmp_path / "out" / "run.json").read_text())["season_clear"]["dates"]
             if day["parcels_snow_called_clear"]]
    assert day["date"] == "2024-03-01" and day["parcels_snow"] > 300
    assert ("1 date(s) had snow over parcels that their cloud mask called clear: masked as snow (2024-03-01: "
            f"{day['parcels_snow_called_clear']} parcel(s))") in caplog.text
    assert "look hazy" not in caplog.text  # snow is not haze


def test_dates_snow_hid_are_told_as_snow_not_as_cloud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Three winter dates under snow (SCL 11) were told as cloud: 'check the imagery's cloud mask', or 'a longer
    --season, or more dates in it', which in winter are more snow. Snow is counted apart from cloud (run.json's
    parcels_snow) and named, with a winter crop's advice."""
    imagery = tmp_path / "imagery"
    for scene in (MARCH_1, "S2B_50SKB_20240316_0_L2A"):
        shutil.copytree(SAMPLE_TILES / "imagery" / scene, imagery / scene)
    for day in ("20231215", "20240114", "20240213"):
        name = MARCH_1.replace("20240301", day)
        shutil.copytree(imagery / MARCH_1, imagery / name)
        item = json.loads((imagery / name / f"{MARCH_1}.json").read_text())
        (imagery / name / f"{MARCH_1}.json").unlink()
        item["id"], item["properties"]["datetime"] = name, f"{day[:4]}-{day[4:6]}-{day[6:]}T02:54:19.855000Z"
        (imagery / name / f"{name}.json").write_text(json.dumps(item))
        _snow_over(imagery / name, scl=11)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        winter = assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule", season="2023-12-01/2024-02-28",
                        out=tmp_path / "winter")
    record = json.loads((tmp_path / "winter" / "run.json").read_text())["season_clear"]
    assert [day["parcels_snow"] for day in record["dates"]] == [record["parcels_measured"]] * 3
    assert "snow (SCL 11, or read as snow) covers every parcel" in caplog.text
    assert "judged from its spring green-up" in caplog.text
    assert "check the imagery's cloud mask" not in caplog.text
    assert winter["reason_text"].str.contains("snow").all()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assess(SAMPLE_TILES / "parcels.geojson", imagery, model="rule", season="2023-12-01/2024-03-20")
    assert "snow (SCL 11, or read as snow) hides them on most of the others" in caplog.text
    assert "a longer --season (season= in Python), or more dates in it" not in caplog.text


def test_a_field_drawn_to_its_edge_grades_and_lends_as_drawn_3m_inside() -> None:
    """sample_tiles' fields beside other crops and a road: drawn to their real edge (as in truth), the 10 m cells the
    outline cuts, mostly the neighbour's land, pulled their NDVI down at plain coverage weights (P00030: peak 0.53 for
    0.56 drawn 3 m inside, declined for approved; P00051: 0.655 for 0.701, grade D for B, 332.74 CNY for 468.79).
    Weighed by coverage squared, the larger outline lends no less, decides no worse, is graded at most a step lower
    and peaks within 0.045."""
    parcels = gpd.read_file(SAMPLE_TILES / "parcels.geojson").drop(columns="declared_area_ha").to_crs(32650)
    parcels = parcels[parcels["parcel_id"].between("P00001", "P00160")]
    drawn_inside = parcels.copy()
    fields = drawn_inside["parcel_id"].isin(["P00030", "P00051"])
    drawn_inside.loc[fields, "geometry"] = drawn_inside.loc[fields, "geometry"].buffer(-3, join_style="mitre")
    edge, inside = (run_assessment(outlines, SAMPLE_TILES / "imagery", model="rule").parcels.set_index("parcel_id")
                    for outlines in (parcels, drawn_inside))
    rank = {"decline": 0, "refer": 1, "approve": 2}
    for parcel in ("P00030", "P00051"):
        at_edge, within = edge.loc[parcel], inside.loc[parcel]
        assert at_edge["cultivated_area_ha"] > within["cultivated_area_ha"], parcel
        assert abs(at_edge["ndvi_peak"] - within["ndvi_peak"]) < 0.045, parcel
        assert at_edge["loan_limit"] >= within["loan_limit"], parcel
        assert rank[at_edge["decision"]] >= rank[within["decision"]], parcel
        assert ord(at_edge["risk_grade"]) - ord(within["risk_grade"]) <= 1, parcel
