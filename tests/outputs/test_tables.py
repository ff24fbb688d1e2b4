"""Writing a run's outputs (``write_outputs``) through the public functions of ``farmcredit.outputs``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

from farmcredit import assess
from farmcredit.outputs import output_folder, render_preview, write_outputs, write_rasters
from farmcredit.pipeline import Assessment


def test_folders_and_files_named_as_text_are_taken_as_paths(assessed: Assessment, tmp_path: Path) -> None:
    """Each stopped with AttributeError ('str' object has no attribute ...) on a folder named as text."""
    out = tmp_path / "results"
    assert output_folder(str(out), create=False) == out and not out.exists()
    files = write_outputs(str(out), assessed)
    assert all(path.parent == out and path.is_file() for path in files.values())
    assert write_rasters(str(out), assessed) == {kind: files[kind] for kind in write_rasters(out, assessed)}
    assert render_preview(str(out)) == files["preview"]
    parcel_id = str(assessed.parcels["parcel_id"].iloc[0])
    drawn = render_preview(str(out / "results.gpkg"), out=str(tmp_path / "one.png"), parcel_id=parcel_id)
    assert drawn == tmp_path / "one.png" and drawn.is_file()


@pytest.mark.parametrize(("out", "folder"), [("~/x", ("home", "x")), ("~nosuchuser_xyz/r", ("~nosuchuser_xyz", "r"))])
def test_an_out_under_the_home_folder_written_as_tilde_gets_every_output(assessed: Assessment, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch, out: str,
                                                                         folder: tuple[str, str]) -> None:
    """out="~/x" split the run: the lock, marker and rasters went to ./~/x, pandas' tables to $HOME/x. An unknown
    user's ~name stopped the run (RuntimeError: Could not determine home directory) where the CLI and pandas take it
    as a folder so named."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    files = write_outputs(out, assessed)
    assert all(path.parent == tmp_path.joinpath(*folder) and path.is_file() for path in files.values())
    assert not (tmp_path / "~").exists()


def test_calendar_days_are_written_as_dates_not_midnight_times(outputs: Path, assessed: Assessment) -> None:
    """A naive midnight (Parquet timestamp, GeoPackage DateTime) showed as the day before in a tool reading it as UTC
    west of Greenwich; a date has no time to shift. The CSV keeps its text."""
    assert pq.read_schema(outputs / "results.parquet").field("ndvi_peak_date").type == pa.date32()
    assert pq.read_schema(outputs / "ndvi_series.parquet").field("date").type == pa.date32()
    info = pyogrio.read_info(outputs / "results.gpkg", layer="parcels")
    assert dict(zip(info["fields"], info["dtypes"]))["ndvi_peak_date"] == "datetime64[D]"  # an OGR Date field
    peaks = assessed.parcels["ndvi_peak_date"]
    written = pd.read_parquet(outputs / "results.parquet")["ndvi_peak_date"]
    assert written.notna().any() and (pd.to_datetime(written) == peaks).equals(peaks.notna())
    csv = pd.read_csv(outputs / "results.csv", encoding="utf-8-sig", dtype=str)["ndvi_peak_date"].dropna()
    assert csv.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


def test_audit_files_keep_chinese_as_written_in_utf8_whatever_the_locale(small_season, tmp_path: Path) -> None:
    """run.json and the decision records held 张三 as \\u5f20\\u4e09, which an auditor's grep for 张三 never finds;
    written under a locale that is not UTF-8 (LC_ALL=C), they are still UTF-8, and read back so."""
    import json
    import os
    import subprocess
    import sys

    parcels = gpd.read_file(small_season.parcels_path).head(4)
    parcels["borrower_id"] = ["张三", "张三", "李四", "王五"]
    parcels.to_file(tmp_path / "parcels.geojson")
    script = ("import sys; from farmcredit import assess; from farmcredit.credit.report import load_results; "
              "assess(sys.argv[1], sys.argv[2], model='rule', out=sys.argv[3]); "
              "print(load_results(sys.argv[3]).attrs['currency'])")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "parcels.geojson"),
                           str(small_season.imagery_dir), str(tmp_path / "out")], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONUTF8": "0", "LC_ALL": "C"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CNY"
    for name in ("run.json", "decisions.jsonl", "borrower_decisions.jsonl"):
        text = (tmp_path / "out" / name).read_bytes().decode("utf-8")
        assert "\\u" not in text, name
    record = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert "小麦" in record["config"]["values"]["crops"]["wheat"]["aliases"]
    for name in ("decisions.jsonl", "borrower_decisions.jsonl"):
        assert '"borrower_id": "张三"' in (tmp_path / "out" / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize("parcels_kept", ["one parcel", "a MultiPolygon parcel"])
def test_both_layers_are_always_multipolygons(small_season, tmp_path: Path, parcels_kept: str) -> None:
    """The declared type followed the data (Polygon for one parcel, MultiPolygon when one input was one), so runs
    appended weekly into one warehouse table warned or failed on the type."""
    parcels = gpd.read_file(small_season.parcels_path).head(1 if parcels_kept == "one parcel" else 4)
    if parcels_kept == "a MultiPolygon parcel":  # the first parcel in two parts: its own outline and the fourth's
        parcels.loc[0, "geometry"] = shapely.MultiPolygon([parcels.geometry[0], parcels.geometry[3]])
        parcels = parcels.head(3)
    assess(parcels, small_season.imagery_dir, model="rule", out=tmp_path / "out")
    layers = dict(pyogrio.list_layers(tmp_path / "out" / "results.gpkg"))
    assert layers["parcels"] == layers["borrowers"] == "MultiPolygon"
    written = gpd.read_file(tmp_path / "out" / "results.gpkg", layer="parcels").geometry
    assert shapely.get_num_geometries(written).tolist() == shapely.get_num_geometries(parcels.geometry).tolist()


def test_a_failed_writes_free_space_names_the_temporary_folder_where_it_is_another_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rasters are written in the temporary folder first: a full TMPDIR was blamed on --out's disk."""
    import tempfile

    from farmcredit.outputs.tables import free_space

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to put the temporary folder on")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert re.fullmatch(r"[0-9,.]+ MiB free on its disk", free_space(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(shm))
    assert re.fullmatch(r"[0-9,.]+ MiB free on its disk; [0-9,.]+ MiB free on the temporary folder /dev/shm \(TMPDIR\)",
                        free_space(tmp_path))


def test_borrowers_are_written_to_geoparquet_as_the_geopackage_layer_holds_them(tmp_path: Path) -> None:
    """A warehouse loader had the borrowers only in the GeoPackage or in the CSV, whose quoted ids ('0042) do not
    join with results.parquet's."""
    import geopandas as gpd
    import pandas as pd

    from farmcredit.outputs import write_outputs
    from farmcredit.pipeline import run_assessment

    sample = Path(__file__).resolve().parents[2] / "sample_tiles"
    parcels = gpd.read_file(sample / "parcels.geojson").head(40)
    parcels["borrower_id"] = "00" + parcels["borrower_id"].str[1:]  # ids a spreadsheet would take for numbers
    files = write_outputs(tmp_path, run_assessment(parcels, sample / "imagery", model="rule"))
    borrowers = gpd.read_parquet(files["borrowers_parquet"])
    layer = gpd.read_file(files["gpkg"], layer="borrowers")
    days = {column: "datetime64[s]" for column in ("season_start", "season_end")}  # Parquet's date32, OGR's Date
    pd.testing.assert_frame_equal(pd.DataFrame(borrowers.drop(columns="geometry")).astype(days),
                                  pd.DataFrame(layer.drop(columns="geometry")).astype(days), check_dtype=False)
    assert borrowers.crs == parcels.crs and borrowers["borrower_id"].str.startswith("00").all()
    results = gpd.read_parquet(files["parquet"])
    assert set(results["borrower_id"]) == set(borrowers["borrower_id"])


def test_text_columns_holding_no_value_reach_the_geopackage_as_text(assessed: Assessment, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A run without regions handed its all-None ``region`` to the GeoPackage's Arrow writer as Arrow's ``null`` type,
    which GDAL before 3.10 (pyogrio before 0.11) refuses: every such run stopped, its message showing the free space as
    if the disk were at fault. The writer is handed text; read back, the column still holds no value."""
    from farmcredit.credit.report import load_results

    assert assessed.parcels["region"].isna().all()
    handed: list[gpd.GeoDataFrame] = []
    to_file = gpd.GeoDataFrame.to_file

    def recorded(frame: gpd.GeoDataFrame, *args: object, **options: object) -> None:
        handed.append(frame)
        to_file(frame, *args, **options)

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", recorded)
    write_outputs(tmp_path, assessed)
    assert len(handed) == 2  # the parcels and borrowers layers
    for frame in handed:
        schema = pa.Schema.from_pandas(pd.DataFrame(frame.drop(columns=frame.geometry.name)), preserve_index=False)
        assert [field.name for field in schema if field.type == pa.null()] == []
    info = pyogrio.read_info(tmp_path / "results.gpkg", layer="parcels")
    assert dict(zip(info["fields"], info["dtypes"]))["region"] == "object"  # an OGR String field
    assert pyogrio.read_dataframe(tmp_path / "results.gpkg", read_geometry=False)["region"].isna().all()
    assert load_results(tmp_path / "results.gpkg")["region"].isna().all()


def test_seasons_append_into_one_table_and_are_told_apart_by_their_season(small_season, two_years: Path,
                                                                          tmp_path: Path) -> None:
    """Neither table said which season a row was from, and ``declared_area_mu`` was written only by a run whose file
    declared mu: appending such a season into another's GeoPackage table failed ("Could not find field index for
    field 'declared_area_mu'"). Every run writes both, each table its run's season (the --season asked for, else
    the first and last dates read), as dates."""
    parcels = gpd.read_file(small_season.parcels_path).head(6)
    in_mu = parcels.assign(declared_area_mu=parcels["declared_area_ha"] * 15).drop(columns="declared_area_ha")
    assess(parcels, two_years, model="rule", season="2023-01-01/2023-12-31", out=tmp_path / "2023")
    assess(in_mu, small_season.imagery_dir, model="rule", out=tmp_path / "2024")
    dates_2024 = pd.to_datetime(json.loads((tmp_path / "2024" / "run.json").read_text())["season_dates"])
    book = tmp_path / "2023" / "results.gpkg"
    for layer in ("parcels", "borrowers"):
        pyogrio.write_dataframe(gpd.read_file(tmp_path / "2024" / "results.gpkg", layer=layer), book, layer=layer,
                                append=True)
        stacked = gpd.read_file(book, layer=layer)
        seasons = stacked[["season_start", "season_end"]].drop_duplicates().astype(str).to_numpy().tolist()
        assert seasons == [["2023-01-01", "2023-12-31"], [str(dates_2024[0].date()), str(dates_2024[-1].date())]]
        assert stacked["config_hash"].notna().all(), layer
    info = pyogrio.read_info(book, layer="borrowers")
    assert dict(zip(info["fields"], info["dtypes"]))["season_start"] == "datetime64[D]"  # an OGR Date field
    mu = gpd.read_file(book, layer="parcels")["declared_area_mu"]
    assert mu.head(6).isna().all() and mu.tail(6).notna().all()
    for name in ("results.parquet", "borrowers.parquet"):
        schema = pq.read_schema(tmp_path / "2023" / name)
        assert schema.field("season_end").type == pa.date32() and schema.names == pq.read_schema(
            tmp_path / "2024" / name).names, name
    csv = pd.read_csv(tmp_path / "2023" / "borrowers.csv", encoding="utf-8-sig", dtype=str)
    assert set(csv["season_start"]) == {"2023-01-01"}


def test_every_table_says_the_currency_of_its_limits_beside_them(outputs: Path) -> None:
    """No table said what its loan limits were in (only run.json did): a borrowers.csv read alone, or stacked with an
    INR run's, showed bare figures. Every table has ``currency`` after ``loan_limit``, the run's."""
    currency = json.loads((outputs / "run.json").read_text(encoding="utf-8"))["config"]["values"]["credit"]["currency"]
    for layer, csv, parquet in (("parcels", "results.csv", "results.parquet"),
                                ("borrowers", "borrowers.csv", "borrowers.parquet")):
        for table in (gpd.read_file(outputs / "results.gpkg", layer=layer),
                      pd.read_csv(outputs / csv, encoding="utf-8-sig", dtype=str), pd.read_parquet(outputs / parquet)):
            columns = list(table.columns)
            assert columns[columns.index("loan_limit") + 1] == "currency", layer
            assert set(table["currency"]) == {currency}, layer


def test_a_borrowers_point_is_the_same_whatever_the_crs_its_parcels_came_in() -> None:
    """lon / lat were a point found in the parcels' own CRS: sample_tiles/' B0302, two fields 3 km apart (P00710,
    P00711), was placed on the one in WGS84 and on the other in UTM."""
    from farmcredit.outputs.tables import _attributes

    parcels = gpd.read_file(Path(__file__).resolve().parents[2] / "sample_tiles" / "parcels.geojson")
    fields = parcels[parcels["parcel_id"].isin(["P00710", "P00711"])]
    borrower = gpd.GeoDataFrame({"borrower_id": ["B0302"]}, geometry=[fields.union_all()], crs=fields.crs)
    in_wgs84 = _attributes(borrower).iloc[0]
    in_utm = _attributes(borrower.to_crs(32650)).iloc[0]
    assert (in_utm.lon, in_utm.lat) == pytest.approx((in_wgs84.lon, in_wgs84.lat), abs=1e-7)
