"""Parcels drawn on Chinese web maps (GCJ-02, BD-09): moved back to WGS 84 before anything is read."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from farmcredit.china_maps import (
    bd09_to_gcj02,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_region,
    wgs84_to_gcj02,
)
from farmcredit.errors import InputError
from farmcredit.parcels import parcels_from_frame, read_parcels

# Published reference pairs (WGS 84 lon, lat -> GCJ-02 lon, lat), as other GCJ-02 implementations test against.
GCJ02_PAIRS = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]
# A published GCJ-02 -> BD-09 pair (Jiaxing).
BD09_PAIR = ((121.09626935575027, 30.608604331756705), (121.10271732371203, 30.61484572185035))


@pytest.mark.parametrize(("wgs", "gcj"), GCJ02_PAIRS)
def test_gcj02_matches_the_published_pairs_both_ways(wgs, gcj) -> None:
    assert np.allclose(wgs84_to_gcj02(*wgs), gcj, rtol=0, atol=1e-9)
    assert np.allclose(gcj02_to_wgs84(*gcj), wgs, rtol=0, atol=1e-9)  # the iteration inverts it to ~0.1 mm


def test_bd09_matches_the_published_pair_both_ways() -> None:
    gcj, bd = BD09_PAIR
    assert np.allclose(gcj02_to_bd09(*gcj), bd, rtol=0, atol=1e-9)
    assert np.allclose(bd09_to_gcj02(*bd), gcj, rtol=0, atol=1e-9)


def test_positions_outside_china_are_not_moved() -> None:
    lon, lat = np.array([2.35, -47.9, 36.8]), np.array([48.85, -15.8, -1.3])  # Paris, Brasilia, Nairobi
    assert np.array_equal(np.column_stack(wgs84_to_gcj02(lon, lat)), np.column_stack([lon, lat]))
    points = shapely.points(lon, lat)
    assert all(shapely.equals_exact(to_wgs84(points, datum), points, 0).all() for datum in ("gcj02", "bd09"))


def _as_drawn_on(parcels: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """``parcels`` (WGS 84) as a Chinese web map of ``datum`` would have them drawn."""
    def forward(coords: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack(gcj02_to_bd09(lon, lat) if datum == "bd09" else (lon, lat))

    return parcels.set_geometry(shapely.transform(parcels.geometry.to_numpy(), forward), crs=parcels.crs)


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_parcels_drawn_on_a_chinese_map_are_read_where_they_lie(tmp_path: Path, datum: str) -> None:
    truth = read_parcels("sample_tiles/parcels.geojson")
    path = tmp_path / "drawn.geojson"
    _as_drawn_on(gpd.read_file("sample_tiles/parcels.geojson"), datum).to_file(path)
    as_drawn, moved = read_parcels(path), read_parcels(path, datum=datum)
    utm = "EPSG:32649"
    off = truth.to_crs(utm).centroid.distance(as_drawn.to_crs(utm).centroid)
    assert off.between(300, 1500).all()  # read as WGS 84 they lie 0.3-1.5 km off: another field each
    back = truth.to_crs(utm).centroid.distance(moved.to_crs(utm).centroid)
    assert back.max() < 0.001
    assert np.allclose(moved.to_crs(utm).area, truth.to_crs(utm).area, rtol=1e-6)


@pytest.mark.parametrize("crs", ["EPSG:4547", "EPSG:3857"])  # ogr2ogr's Gauss-Kruger; QGIS on Gaode's tiles
def test_outlines_reprojected_since_they_were_drawn_are_moved_where_they_lie(tmp_path: Path, crs: str) -> None:
    """A GCJ-02 file reprojected keeps its offset: it is undone in its CRS's longitude and latitude, in its CRS."""
    parcels = gpd.read_file("sample_tiles/parcels.geojson").head(20)
    truth_path, drawn_path = tmp_path / "truth.gpkg", tmp_path / "drawn.gpkg"
    parcels.to_crs(crs).to_file(truth_path)
    _as_drawn_on(parcels, "gcj02").to_crs(crs).to_file(drawn_path)
    truth, moved = read_parcels(truth_path), read_parcels(drawn_path, datum="gcj02")
    assert moved.crs == truth.crs == crs
    assert shapely.hausdorff_distance(moved.geometry.to_numpy(), truth.geometry.to_numpy()).max() < 0.001  # m


def test_a_datum_is_refused_for_a_crs_without_longitude_and_latitude_and_an_unknown_one() -> None:
    parcels = gpd.read_file("sample_tiles/parcels.geojson").head(3).to_crs("EPSG:32649")
    local = 'LOCAL_CS["site grid",LOCAL_DATUM["site",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
    with pytest.raises(InputError, match=r"which has no longitude and latitude to undo --parcels-datum gcj02 .* "
                                         r"reproject it to EPSG:4490 or EPSG:4326 and keep --parcels-datum"):
        parcels_from_frame(parcels.set_crs(local, allow_override=True), datum="gcj02")
    with pytest.raises(InputError, match=r"--parcels-datum 'gcj-02' \(parcels_datum= in Python\) is not one of "
                                         r"wgs84, gcj02, bd09"):
        read_parcels("sample_tiles/parcels.geojson", datum="gcj-02")


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_a_csv_of_wkt_without_a_crs_is_read_as_longitude_and_latitude(tmp_path: Path, datum: str) -> None:
    """A web map's export is longitude and latitude: given its datum, a CSV needs no --parcels-crs."""
    parcels = gpd.read_file("sample_tiles/parcels.geojson").head(5)
    path = tmp_path / "export.csv"
    drawn = _as_drawn_on(parcels, datum)
    pd.DataFrame({"parcel_id": drawn["parcel_id"], "borrower_id": drawn["borrower_id"],
                  "WKT": shapely.to_wkt(drawn.geometry.to_numpy(), rounding_precision=-1)}).to_csv(path, index=False)
    moved = read_parcels(path, datum=datum)
    assert moved.crs == "EPSG:4326"
    truth = read_parcels("sample_tiles/parcels.geojson").head(5)
    assert shapely.hausdorff_distance(moved.to_crs("EPSG:32649").geometry.to_numpy(),
                                      truth.to_crs("EPSG:32649").geometry.to_numpy()).max() < 0.001
    with pytest.raises(InputError, match="declares no coordinate reference system"):
        read_parcels(path)


def test_a_table_of_points_is_told_to_give_its_outlines_as_wkt(tmp_path: Path) -> None:
    """A web map app's table of longitude and latitude columns was refused as having no geometry, saying no more."""
    path = tmp_path / "points.csv"
    path.write_text("parcel_id,borrower_id,lon,lat\nP1,B1,113.99,33.01\n")
    with pytest.raises(InputError, match=r"has no geometry column: parcels must be polygons. A table needs each "
                                         r"outline as WKT text in a column named WKT \(points as longitude and "
                                         r"latitude columns are no outline\), saved as \"CSV UTF-8 \(逗号分隔\)\""):
        read_parcels(path, datum="gcj02")


def test_heights_are_kept(tmp_path: Path) -> None:
    parcels = _as_drawn_on(gpd.read_file("sample_tiles/parcels.geojson").head(3), "gcj02")
    path = tmp_path / "z.geojson"
    parcels.set_geometry(shapely.force_3d(parcels.geometry.to_numpy(), 85.0), crs=parcels.crs).to_file(path)
    moved = read_parcels(path, datum="gcj02").geometry.to_numpy()
    assert shapely.has_z(moved).all()
    assert (shapely.get_coordinates(moved, include_z=True)[:, 2] == 85.0).all()


def test_a_datum_given_for_parcels_outside_china_is_warned_of(tmp_path: Path, caplog) -> None:
    parcels = gpd.read_file("sample_tiles/parcels.geojson").head(3)
    moved = parcels.set_geometry(parcels.geometry.translate(-214.0, -12.0), crs=parcels.crs)  # to Mexico
    path = tmp_path / "mexico.geojson"
    moved.to_file(path)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        read = read_parcels(path, datum="gcj02")
    assert ("no parcel lies in the rectangle the published GCJ-02 (高德 Amap / Gaode, 腾讯 Tencent) formulas apply to "
            "(China and its neighbours: 72.004-137.8347 E, 0.8293-55.8271 N)") in caplog.text
    assert shapely.equals_exact(read.geometry.to_numpy(), read_parcels(path).geometry.to_numpy(), 0).all()


def test_a_datum_given_for_parcels_surely_outside_mainland_china_is_warned_of(tmp_path: Path, caplog) -> None:
    """Seoul, Hanoi and Punjab lie in the formulas' rectangle, where the maps show WGS 84: moved some 450 m, unsaid."""
    side = 0.001
    corners = [(127.0, 37.5, "P1"), (105.8, 21.0, "P2"), (75.8, 30.9, "P3"), (113.98, 33.01, "P4")]  # P4: Henan
    path = tmp_path / "abroad.geojson"
    outlines = [shapely.box(x, y, x + side, y + side) for x, y, _ in corners]
    gpd.GeoDataFrame({"parcel_id": [pid for *_, pid in corners], "borrower_id": "B1"}, geometry=outlines,
                     crs="EPSG:4326").to_file(path)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        read_parcels(path, datum="gcj02")
    assert ("3 parcels lie outside mainland China (in Korea, northern India, northern Viet Nam), where GCJ-02 "
            "(高德 Amap / Gaode, 腾讯 Tencent) maps show WGS 84") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        read_parcels("sample_tiles/parcels.geojson", datum="gcj02")
    assert "outside mainland China" not in caplog.text


@pytest.mark.parametrize("command", ["assess", "batch"])
def test_a_run_on_gcj02_outlines_equals_the_run_on_the_true_ones(small_season, tmp_path: Path, command: str) -> None:
    path = tmp_path / "amap.geojson"
    _as_drawn_on(gpd.read_file(small_season.parcels_path), "gcj02").to_file(path)
    runs = {}
    for name, parcels, datum in (("truth", small_season.parcels_path, []), ("as_drawn", path, []),
                                 ("moved", path, ["--parcels-datum", "gcj02"])):
        out = tmp_path / name
        done = subprocess.run([sys.executable, "-m", "farmcredit", command, str(parcels), "--imagery",
                               str(small_season.imagery_dir), "--model", "rule", "--quiet", "--out", str(out), *datum],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs[name] = (pd.read_parquet(out / "results.parquet"), json.loads((out / "run.json").read_text()))
    columns = ["parcel_id", "cultivated_area_ha", "loan_limit", "decision", "reason"]
    truth, moved = runs["truth"][0][columns], runs["moved"][0][columns]
    pd.testing.assert_frame_equal(moved, truth, check_exact=False, rtol=1e-6)
    assert runs["as_drawn"][0]["cultivated_area_ha"].notna().sum() < truth["cultivated_area_ha"].notna().sum()
    assert runs["moved"][1]["inputs"]["parcels"]["parcels_datum"] == "gcj02"
    assert runs["truth"][1]["inputs"]["parcels"]["parcels_datum"] == "wgs84"


def test_projected_outlines_with_no_crs_under_a_datum_are_refused_naming_parcels_crs(tmp_path: Path, caplog) -> None:
    """A table of Gauss-Kruger metres declares no CRS: under --parcels-datum it is taken as longitude and latitude,
    and was refused as impossible in "its" EPSG:4326, with --parcels-crs said not to apply, after a warning that no
    parcel lies in the formulas' rectangle. The refusal now says what was assumed and that --parcels-crs is the fix."""
    path = tmp_path / "projected.csv"
    outline = "POLYGON ((499129 3654097, 499229 3654097, 499229 3654197, 499129 3654097))"
    path.write_text(f'parcel_id,WKT\nP1,"{outline}"\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="farmcredit"), pytest.raises(InputError) as refused:
        read_parcels(path, datum="gcj02")
    assert ("declares no coordinate reference system, so --parcels-datum gcj02 (parcels_datum= in Python) took its "
            "coordinates as longitude and latitude (EPSG:4326)") in str(refused.value)
    assert "e.g. 499129, 3.6541e+06" in str(refused.value) and "give the CRS they are in with --parcels-crs" in str(
        refused.value)
    assert "rectangle" not in caplog.text
    assert len(read_parcels(path, datum="gcj02", crs="EPSG:4547")) == 1


@pytest.mark.parametrize(("lon", "lat"), [(108.2, 16.05), (107.6, 16.46), (109.19, 12.24), (109.22, 13.77),
                                          (108.04, 12.67), (108.0, 13.98)])
def test_central_viet_nam_lies_in_a_box_shown_in_wgs84(lon: float, lat: float) -> None:
    """Da Nang, Hue, Nha Trang, Quy Nhon, Buon Ma Thuot and Pleiku, east of 107.5 E, lay in no box, unwarned; Hainan
    and Guangxi still lie in none."""
    assert wgs84_region(np.array([lon, 110.3, 108.3]), np.array([lat, 18.3, 21.7])).tolist() == [
        "central Viet Nam", "", ""]


def test_the_fetch_command_for_parcels_off_the_imagery_names_their_datum(small_season, tmp_path: Path) -> None:
    """The fetch command a run prints for parcels off a fetched folder reads the parcels as the run did."""
    import shutil

    from farmcredit.imagery.fetch import FETCH_BANDS, FetchManifest, RemoteSource
    from farmcredit.pipeline import _refetch_command, load_inputs

    imagery = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, imagery)
    FetchManifest(source=RemoteSource("stac", "https://example.org/stac", "sentinel-2-l2a").describe(),
                  season=("2024-01-01", "2024-12-31"), max_cloud=50.0, bands=FETCH_BANDS,
                  area_bounds=(0.0, 0.0, 1.0, 1.0), scenes=()).write(imagery)
    path = tmp_path / "amap.geojson"
    _as_drawn_on(gpd.read_file(small_season.parcels_path), "gcj02").to_file(path)
    command = _refetch_command(load_inputs(path, imagery, parcels_datum="gcj02"))
    assert command is not None and f"farmcredit fetch {path} --parcels-datum gcj02 --season" in command


def test_the_python_api_s_fetch_command_for_a_later_season_names_the_datum(small_season, tmp_path: Path) -> None:
    """assess() in Python told a season after the scenes to be fetched with "farmcredit fetch PARCELS --season",
    with neither the parcel file nor its --parcels-datum: the fetch would read the outlines where the map drew them."""
    from farmcredit.errors import ImageryError
    from farmcredit.pipeline import load_inputs

    path = tmp_path / "amap.geojson"
    _as_drawn_on(gpd.read_file(small_season.parcels_path), "gcj02").to_file(path)
    with pytest.raises(ImageryError) as refused:
        load_inputs(path, small_season.imagery_dir, season="2030-03-01/2030-10-31", parcels_datum="gcj02")
    assert f"farmcredit fetch {path} --parcels-datum gcj02 --season 2030-03-01/2030-10-31" in str(refused.value)


@pytest.mark.parametrize(("command", "imagery", "said"), [
    ("assess", None, "fetch it (farmcredit fetch {path} --parcels-datum gcj02 --season 2030-03-01/2030-10-31 "),
    ("batch", "stac", "fetch it into a folder first (farmcredit fetch {path} --parcels-datum gcj02 --season "
                      "2030-03-01/2030-10-31 --out DIR)"),
])
def test_the_fetch_commands_printed_before_a_run_name_the_datum(small_season, tmp_path: Path, command: str,
                                                                imagery: str | None, said: str) -> None:
    """A season after the scenes, and batch given a remote source, print a fetch command: it reads the parcels as
    the run does, or it would fetch the windows where the web map drew them."""
    from click.testing import CliRunner

    from farmcredit.cli import cli

    path = tmp_path / "amap.geojson"
    _as_drawn_on(gpd.read_file(small_season.parcels_path), "gcj02").to_file(path)
    done = CliRunner().invoke(cli, [command, str(path), "--imagery", imagery or str(small_season.imagery_dir),
                                    "--parcels-datum", "gcj02", "--season", "2030-03-01/2030-10-31", "--model", "rule",
                                    "--out", str(tmp_path / "out")])
    assert done.exit_code != 0
    # The refusal is the exception (``cli`` is invoked without ``main``'s error printing); what the output holds besides
    # (the rule's warning) depends on which earlier test set up the farmcredit logger.
    assert said.format(path=path) in " ".join(f"{done.output} {done.exception}".split())
