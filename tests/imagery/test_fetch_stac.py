"""`fetch_imagery` from a STAC API: pystac-client and GDAL's /vsicurl/ against a loopback server.

The real Earth Search item and COGs of ../shared/data/s2/earthsearch-29RKH-2020 are served with
their hrefs rewritten to 127.0.0.1 where the test checks what the real item holds; elsewhere its
synthetic stand-in (`synthetic_29rkh`, tests/imagery/conftest.py), and small synthetic tiles cover
offsets, paging and mosaics.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import requests
import shapely
import shapely.geometry
from rasterio.windows import Window, from_bounds
from servers import DATED_FIELD, Fault, Response, StacServer, dated_items, earthsearch_item, tile_dns, tile_item

from farmcredit.errors import ImageryError, InputError
from farmcredit.imagery import open_imagery, read_window, stac
from farmcredit.imagery.fetch import (
    HttpSettings,
    LocalScene,
    RemoteSource,
    SceneGrid,
    SceneWriter,
    fetch_imagery,
    public_url,
    read_manifest,
    scene_id_problem,
)
from farmcredit.imagery.stac import Unavailable

FAST = HttpSettings(timeout_s=1, attempts=2, retry_delay_s=0.05)
FEBRUARY_2020 = (date(2020, 2, 1), date(2020, 2, 29))
ITEM_ID = "S2A_29RKH_20200219_0_L2A"
# Three ~500 m fields in the tile's north-west corner (one 512 x 512 block of the 100 m COGs).
FIELDS = gpd.GeoSeries(
    [shapely.box(-11.800, 25.150, -11.795, 25.155), shapely.box(-11.790, 25.152, -11.786, 25.157),
     shapely.box(-11.805, 25.140, -11.800, 25.144)],
    crs="EPSG:4326",
)
FAR_FIELD = gpd.GeoSeries([shapely.box(-11.300, 24.500, -11.295, 24.505)], crs="EPSG:4326")


@pytest.fixture(scope="module")
def earthsearch(shared_data: Path) -> tuple[dict, dict[str, Path]]:
    """The real item and its COGs (skipped without ../shared/data)."""
    return earthsearch_item(shared_data / "s2" / "earthsearch-29RKH-2020")


def _fetch(server: StacServer, area: gpd.GeoSeries, out: Path, season=FEBRUARY_2020, **options):
    return fetch_imagery(area, season, RemoteSource("stac", server.url), out, http=FAST, **options)


def test_fetch_reads_only_the_fields_windows_by_http_range_requests(earthsearch, tmp_path: Path) -> None:
    item, files = earthsearch
    with StacServer([item], files) as server:
        manifest = _fetch(server, FIELDS, tmp_path / "s2")
        cog_requests = server.requests_to(server.files_path)
        item_url = f"{server.url}/collections/sentinel-2-l2a/items/{ITEM_ID}"

    (scene,) = manifest.scenes
    assert (scene.scene_id, scene.acquired[:10], scene.tile, scene.windows) == (ITEM_ID, "2020-02-19", "29RKH", 1)
    assert scene.cloud_cover == pytest.approx(4.051854) and not scene.cached and scene.bytes_on_disk > 0
    assert json.loads((tmp_path / "s2" / "manifest.json").read_text())["totals"]["scenes_downloaded"] == 1
    # Never a whole file: every GET is a range request, and B04 costs a fraction of its size.
    assert all("Range" in r.headers for r in cog_requests if r.method == "GET")
    served_b04 = sum(r.bytes_sent for r in cog_requests if r.path.endswith("/B04.tif"))
    assert 0 < served_b04 < 0.4 * files["B04.tif"].stat().st_size

    folder = tmp_path / "s2" / ITEM_ID
    local_item = json.loads((folder / f"{ITEM_ID}.json").read_text())
    assert local_item["assets"]["red"]["href"] == "./B04.tif"
    assert local_item["assets"]["red"]["raster:bands"][0] | {} == {
        "nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": 0.0}
    assert local_item["links"] == [{"rel": "derived_from", "href": item_url, "type": "application/geo+json"}]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{b}.tif" for b in ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "SCL")]
        + [f"{ITEM_ID}.json"])
    for band in ("B04", "B11", "SCL"):  # 10 m, 20 m and the classes: the same pixels as the COG
        with rasterio.open(folder / f"{band}.tif") as fetched, rasterio.open(files[f"{band}.tif"]) as original:
            assert fetched.descriptions == (band,) and fetched.crs == original.crs
            window = from_bounds(*fetched.bounds, transform=original.transform).round_offsets().round_lengths()
            np.testing.assert_array_equal(fetched.read(1), original.read(1, window=window))

    imagery = open_imagery(tmp_path / "s2")
    assert [s.scene_id for s in imagery.scenes] == [ITEM_ID] and imagery.scenes[0].dn_offset == 0.0
    assert imagery.has_scl and {"B02", "B04", "B08", "B11"} <= set(imagery.bands)


def test_a_rerun_downloads_nothing_and_a_new_field_only_its_own_window(synthetic_29rkh, tmp_path: Path) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server:
        _fetch(server, FIELDS, tmp_path / "s2")
        before = len(server.requests_to(server.files_path))
        again = _fetch(server, FIELDS, tmp_path / "s2")
        assert len(server.requests_to(server.files_path)) == before  # not even a HEAD
        assert again.scenes[0].cached and again.scenes[0].bytes_downloaded == 0

        grown = _fetch(server, gpd.GeoSeries(list(FIELDS) + list(FAR_FIELD), crs="EPSG:4326"), tmp_path / "s2")
        served_b04 = sum(r.bytes_sent for r in server.requests_to(server.files_path + "B04.tif")[before:])

    assert grown.scenes[0].windows == 2 and not grown.scenes[0].cached
    assert served_b04 < 0.4 * files["B04.tif"].stat().st_size  # the far window's block, not the first again
    with rasterio.open(tmp_path / "s2" / ITEM_ID / "B04.tif") as fetched, rasterio.open(files["B04.tif"]) as original:
        for field in (FIELDS.to_crs(fetched.crs).iloc[0], FAR_FIELD.to_crs(fetched.crs).iloc[0]):
            window = from_bounds(*field.bounds, transform=fetched.transform).round_offsets().round_lengths()
            expected = from_bounds(*field.bounds, transform=original.transform).round_offsets().round_lengths()
            np.testing.assert_array_equal(fetched.read(1, window=window), original.read(1, window=expected))
            assert fetched.read(1, window=window).min() > 0  # data, not the sparse no-data between windows


@pytest.mark.parametrize(
    ("baseline", "offset_applied", "raster_offset", "expected_dn_offset"),
    [
        ("05.10", False, -0.1, -1000.0),  # Earth Search: offset not applied, said in raster:bands
        # Earth Search: offset already applied to the COGs, its raster:bands still saying -0.1 (the flag wins)
        ("05.10", True, -0.1, 0.0),
        ("05.10", None, None, -1000.0),  # a catalogue saying nothing: the baseline decides
        ("02.14", None, None, 0.0),  # before baseline 04.00 there is no offset
    ],
    ids=["not-applied", "applied", "baseline-only", "old-baseline"],
)
def test_the_processing_baseline_offset_is_kept_right(
    tmp_path: Path, baseline: str, offset_applied: bool | None, raster_offset: float | None,
    expected_dn_offset: float,
) -> None:
    item, files = tile_item(tmp_path / "cogs", "S2B_50SKA_20240315_0_L2A", crs="EPSG:32650",
                            origin=(500_000.0, 4_000_000.0), acquired="2024-03-15T03:20:11Z", baseline=baseline,
                            offset_applied=offset_applied, raster_offset=raster_offset)
    field = gpd.GeoSeries([shapely.box(500_020, 3_999_900, 500_100, 3_999_960)], crs="EPSG:32650")
    with StacServer([item], files) as server:
        _fetch(server, field, tmp_path / "s2", season=(date(2024, 3, 1), date(2024, 3, 31)))

    imagery = open_imagery(tmp_path / "s2")
    assert imagery.scenes[0].dn_offset == expected_dn_offset
    cube = read_window(imagery, Window(0, 0, imagery.shape[1], imagery.shape[0]), bands=("B04",))
    col, row = ~imagery.transform @ (500_025.0, 3_999_955.0)  # a pixel of the field: tile row 4, column 2
    expected = (tile_dns("B04", 12)[4, 2] + expected_dn_offset) * 1e-4
    assert cube.reflectance[0, 0, int(row), int(col)] == pytest.approx(expected)


def test_search_pages_filters_clouds_and_drops_reprocessed_duplicates(tmp_path: Path) -> None:
    tiles = [("S2A_50SKA_20240305_0_L2A", "2024-03-05T03:20:00Z", 10.0, "05.10"),
             ("S2B_50SKA_20240310_0_L2A", "2024-03-10T03:20:00Z", 80.0, "05.10"),  # too cloudy
             ("S2A_50SKA_20240315_0_L2A", "2024-03-15T03:20:00Z", 5.0, "05.10"),
             ("S2A_50SKA_20240315_1_L2A", "2024-03-15T03:20:00Z", 5.0, "05.11"),  # reprocessed: wins
             ("S2B_50SKA_20240320_0_L2A", "2024-03-20T03:20:00Z", 30.0, "05.10"),
             ("S2A_50SKA_20240325_0_L2A", "2024-03-25T03:20:00Z", 10.0, "05.10"),
             ("S2A_50SKA_20240325_1_L2A", "2024-03-25T03:20:00Z", 60.0, "05.11")]  # wins, and is too cloudy
    items, files = [], {}
    for item_id, acquired, cloud, baseline in tiles:
        item, item_files = tile_item(tmp_path / "cogs", item_id, crs="EPSG:32650", origin=(500_000.0, 4_000_000.0),
                                     acquired=acquired, cloud=cloud, baseline=baseline)
        item["properties"]["s2:sequence"] = item_id.split("_")[3]
        items.append(item)
        files |= item_files
    field = gpd.GeoSeries([shapely.box(500_020, 3_999_900, 500_100, 3_999_960)], crs="EPSG:32650")
    with StacServer(items, files, page_size=2) as server:
        manifest = _fetch(server, field, tmp_path / "s2", season=(date(2024, 3, 1), date(2024, 3, 31)), max_cloud=40)
        searches = server.requests_to("/search", "POST")

    assert len(searches) == 4  # seven items, two per page: clouds are judged after duplicates, here
    assert [s.scene_id for s in manifest.scenes] == [
        "S2A_50SKA_20240305_0_L2A", "S2A_50SKA_20240315_1_L2A", "S2B_50SKA_20240320_0_L2A"]
    # The 25th's older processing, under the limit, is not used in place of the newer one over it.
    assert manifest.skipped == (
        ("S2A_50SKA_20240315_0_L2A", "superseded by S2A_50SKA_20240315_1_L2A (same tile and time)"),
        ("S2A_50SKA_20240325_0_L2A", "superseded by S2A_50SKA_20240325_1_L2A (same tile and time)"),
        ("S2B_50SKA_20240310_0_L2A", "cloud cover 80.0% above 40%"),
        ("S2A_50SKA_20240325_1_L2A", "cloud cover 60.0% above 40%"))
    assert "query" not in json.loads(searches[0].body)


def test_two_tiles_of_one_date_read_as_one_mosaic(tmp_path: Path) -> None:
    # Tile B overlaps tile A by 60 m; field 0 lies in the overlap, field 1 only in B.
    a, a_files = tile_item(tmp_path / "cogs", "S2A_50SKA_20240315_0_L2A", crs="EPSG:32650",
                           origin=(500_000.0, 4_000_000.0), acquired="2024-03-15T03:20:11Z", cloud=10.0)
    b, b_files = tile_item(tmp_path / "cogs", "S2A_50SLA_20240315_0_L2A", crs="EPSG:32650",
                           origin=(500_060.0, 4_000_000.0), acquired="2024-03-15T03:20:15Z", cloud=20.0, shift=500)
    fields = gpd.GeoSeries([shapely.box(500_070, 3_999_930, 500_110, 3_999_970),
                            shapely.box(500_130, 3_999_930, 500_170, 3_999_970)], crs="EPSG:32650")
    with StacServer([a, b], a_files | b_files) as server:
        manifest = _fetch(server, fields, tmp_path / "s2", season=(date(2024, 3, 1), date(2024, 3, 31)))

    assert [(s.scene_id, s.windows) for s in manifest.scenes] == [
        ("S2A_50SKA_20240315_0_L2A", 1), ("S2A_50SLA_20240315_0_L2A", 1)]
    # Field 0 is fetched from both tiles, field 1 from B, each with the CNN's context (here all of each 120 m tile:
    # the context clipped to it).
    with rasterio.open(tmp_path / "s2" / "S2A_50SKA_20240315_0_L2A" / "B04.tif") as tile_a:
        assert tuple(tile_a.bounds) == (500_000, 3_999_880, 500_120, 4_000_000)
    with rasterio.open(tmp_path / "s2" / "S2A_50SLA_20240315_0_L2A" / "B04.tif") as tile_b:
        assert tuple(tile_b.bounds) == (500_060, 3_999_880, 500_180, 4_000_000)
    imagery = open_imagery(tmp_path / "s2")
    (scene,) = imagery.scenes  # one date, one time step: no field is counted twice
    assert [part.scene_id for part in scene.parts] == ["S2A_50SKA_20240315_0_L2A", "S2A_50SLA_20240315_0_L2A"]


def test_a_field_two_tiles_of_a_date_hold_is_fetched_from_both_and_reads_clear_where_either_is(
        tmp_path: Path) -> None:
    """The less cloudy tile sees the field under a cloud, the other clear: fetched from the less cloudy alone, the
    field had no clear pixel on the date where the tiles read locally give it every one."""
    tiles = []
    for item_id, west, cloud, scl, shift in (("S2A_50SKA_20240315_0_L2A", 500_000.0, 5.0, 9, 0),
                                             ("S2A_50SKB_20240315_0_L2A", 501_000.0, 20.0, 4, 500)):
        tiles.append(tile_item(tmp_path / "cogs", item_id, crs="EPSG:32650", origin=(west, 4_000_000.0),
                               acquired="2024-03-15T03:20:00Z", size_px=300, cloud=cloud, scl=scl, shift=shift))
    field = gpd.GeoSeries([shapely.box(502_000, 3_999_000, 502_100, 3_999_100)], crs="EPSG:32650")  # in both
    with StacServer([item for item, _ in tiles], tiles[0][1] | tiles[1][1]) as server:
        manifest = _fetch(server, field, tmp_path / "s2", season=MARCH_2024)

    assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240315_0_L2A", "S2A_50SKB_20240315_0_L2A"]
    red, clear = _red_at(tmp_path / "s2", 502_055.0, 3_999_045.0)  # tile B's row 95, column 105
    assert clear and red == pytest.approx((tile_dns("B04", 300)[95, 105] + 500) * 1e-4 - 0.1)


def test_two_granules_of_one_tile_and_time_holding_its_halves_are_both_fetched(tmp_path: Path) -> None:
    """A date split between two datastrips (sequences 0 and 1, one baseline, each footprint half the tile) was taken
    for a reprocessing: sequence 1 alone was fetched, and the field in the other half lost the date."""
    items, files = [], {}
    for sequence, half in (("0", shapely.box(500_000, 3_998_000, 504_000, 4_000_000)),
                           ("1", shapely.box(500_000, 3_996_000, 504_000, 3_998_000))):
        item, item_files = tile_item(tmp_path / "cogs", f"S2A_50SKA_20240315_{sequence}_L2A", crs="EPSG:32650",
                                     origin=(500_000.0, 4_000_000.0), acquired="2024-03-15T03:20:00Z", size_px=400)
        footprint = gpd.GeoSeries([half], crs="EPSG:32650").to_crs("EPSG:4326").iloc[0]
        item["geometry"], item["bbox"] = shapely.geometry.mapping(footprint), list(footprint.bounds)
        item["properties"] |= {"s2:sequence": sequence, "s2:datastrip_id": f"S2A_OPER_MSI_L2A_DS_{sequence}"}
        items.append(item)
        files |= item_files
    with StacServer(items, files) as server:
        manifest = _fetch(server, pd.concat([MARCH_FIELD, MARCH_FAR_FIELD]), tmp_path / "s2", season=MARCH_2024)

    assert [(s.scene_id, s.windows) for s in manifest.scenes] == [
        ("S2A_50SKA_20240315_0_L2A", 1), ("S2A_50SKA_20240315_1_L2A", 1)] and not manifest.skipped
    for x, y in ((500_055.0, 3_999_935.0), (503_045.0, 3_997_035.0)):  # a pixel of each field
        red, clear = _red_at(tmp_path / "s2", x, y)
        assert clear and red == pytest.approx(tile_dns("B04", 400)[int((4e6 - y) // 10), int((x - 5e5) // 10)]
                                              * 1e-4 - 0.1)


def _red_at(folder: Path, x: float, y: float, season: tuple[date, date] | None = None) -> tuple[float, bool]:
    """The red reflectance of the folder's one date (in ``season``) at (x, y), EPSG:32650 metres, and whether it is
    clear there."""
    imagery = open_imagery(folder, season)
    col, row = ~imagery.transform @ (x, y)
    cube = read_window(imagery, Window(int(col), int(row), 1, 1), bands=("B04",))
    assert len(cube.dates) == 1
    return float(cube.reflectance[0, 0, 0, 0]), bool(cube.clear[0, 0, 0])


def test_an_empty_search_is_a_clear_error(synthetic_29rkh, tmp_path: Path) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server, pytest.raises(ImageryError, match="no sentinel-2-l2a scene") as error:
        _fetch(server, FIELDS, tmp_path / "s2", season=(date(2021, 1, 1), date(2021, 1, 31)))
    assert server.url in str(error.value)
    assert not (tmp_path / "s2").exists()  # the folder it made for nothing is gone
    with StacServer([item], files) as server, pytest.raises(ImageryError, match="no sentinel-2-l2a scene"):
        _fetch(server, FIELDS, tmp_path / "out" / "imagery", season=(date(2021, 1, 1), date(2021, 1, 31)))
    assert not (tmp_path / "out").exists()  # nor its parents it made (assess's --out, fetching into OUT/imagery)
    (tmp_path / "kept").mkdir()
    with StacServer([item], files) as server, pytest.raises(ImageryError, match="no sentinel-2-l2a scene"):
        _fetch(server, FIELDS, tmp_path / "kept", season=(date(2021, 1, 1), date(2021, 1, 31)))
    assert (tmp_path / "kept").is_dir()  # a folder the user made stays


def test_a_level_1c_collection_is_refused_before_any_request_and_its_items_in_any_collection(
        synthetic_29rkh, tmp_path: Path) -> None:
    """Earth Search's sentinel-2-l1c items look as L2A ones (band assets named alike) and were fetched and read as
    surface reflectance; the collection is refused up front, an L1C item of another collection as it is read."""
    item, files = synthetic_29rkh
    with StacServer([item], files, collection="sentinel-2-l1c") as server:
        with pytest.raises(ImageryError, match="STAC collection sentinel-2-l1c is Level-1C .* needs Level-2A .*e.g. "
                                               "the sentinel-2-l2a collection"):
            fetch_imagery(FIELDS, FEBRUARY_2020, RemoteSource("stac", server.url, "sentinel-2-l1c"), tmp_path / "s2",
                          http=FAST)
        assert not server.requests_to("/") and not (tmp_path / "s2").exists()
    level_1c = item | {"properties": item["properties"] | {"s2:product_type": "S2MSI1C"}}
    with StacServer([level_1c], files, collection="sentinel-2") as server, pytest.raises(
            ImageryError, match=f"STAC item {ITEM_ID} is Level-1C .* needs Level-2A"):
        fetch_imagery(FIELDS, FEBRUARY_2020, RemoteSource("stac", server.url, "sentinel-2"), tmp_path / "s2",
                      http=FAST)
    assert not (tmp_path / "s2").exists()


@pytest.mark.parametrize(
    ("where", "faults", "message"),
    [
        ("/search", [Fault(status=503)] * 2, r"STAC search failed .*503"),
        ("/search", [Fault(hang=True)] * 2, r"STAC search failed .*[Tt]imed? ?out"),
        ("B04.tif", [Fault(status=500)] * 2, r"B04\.tif: cannot open band B04 .*500"),
        ("B04.tif", [Fault(hang=True)] * 2, r"B04\.tif: cannot open band B04 .*timed out"),
        ("B05.tif", [Fault(truncate=True)] * 50, r"B05\.tif: .*band B05.*; its bytes do not arrive whole"),
    ],
    ids=["search-503", "search-hangs", "cog-500", "cog-hangs", "cog-truncated"],
)
def test_remote_failures_past_the_retries_are_clear_errors(
    synthetic_29rkh, tmp_path: Path, where: str, faults: list[Fault], message: str
) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server:
        path = where if where.startswith("/") else server.files_path + where
        server.fail(path, *faults)
        with pytest.raises(ImageryError, match=message) as error:
            _fetch(server, FIELDS, tmp_path / "s2")
        tries = server.requests_to(path)
    if faults[0].hang:  # two tries, each given up at the client's timeout (not ended by the server stopping)
        assert len(tries) == FAST.attempts and all(r.abandoned for r in tries)
    assert server.url.removeprefix("http://") in str(error.value)
    assert not any((tmp_path / "s2").glob("*/*.json"))  # no half scene left for assess to read
    assert not any((tmp_path / "s2").glob(".partial-*"))


def test_a_fetch_that_fails_puts_the_earlier_manifest_back_unless_it_changed_a_scene_folder(
        synthetic_29rkh, tmp_path: Path) -> None:
    from farmcredit.imagery.fetch import _marked_unfinished

    item, files = synthetic_29rkh
    folder = tmp_path / "s2"
    with StacServer([item], files) as server:
        _fetch(server, FIELDS, folder)
        earlier = (folder / "manifest.json").read_bytes()
        with pytest.raises(InputError, match="B99"):
            _fetch(server, FAR_FIELD, folder, bands=("B99",))
        server.fail("/search", *[Fault(status=503)] * 2)
        with pytest.raises(ImageryError, match="503"):
            _fetch(server, FAR_FIELD, folder)
        assert (folder / "manifest.json").read_bytes() == earlier  # nothing written: put back as it was
        (folder / f".partial-{ITEM_ID}").mkdir()  # left by a killed fetch, removed by the next one's scene writer
        server.fail(server.files_path, *[Fault(status=503)] * 100)
        with pytest.raises(ImageryError, match="reading band"):
            _fetch(server, FAR_FIELD, folder)
        assert (folder / "manifest.json").read_bytes() == earlier and not (folder / f".partial-{ITEM_ID}").exists()
        server.faults.clear()

        def interrupted(what: str, done: int, total: int) -> None:
            if what == "done":  # the scene replaced with the far field's window added
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            _fetch(server, FAR_FIELD, folder, progress=interrupted)
        marked = read_manifest(folder)
        assert marked["unfinished_fetch"]["note"].startswith("a later fetch") and marked["scenes"][0]["windows"] == 1
        (folder / "manifest.json").write_text('{"source": "stac ht')  # a write killed midway, by an older farmcredit
        (folder / ".manifest.json.0123.tmp").write_text("{")  # left by a fetch killed while writing its manifest
        # read while marked, asserted outside: read_manifest's own ImageryError (the marker not written) must not
        # pass for the fetch's failure
        with pytest.raises(ImageryError, match="the search failed"), _marked_unfinished(folder):
            while_fetching = read_manifest(folder)
            raise ImageryError("the search failed")
        assert while_fetching["unreadable_manifest"].startswith("Unterminated string")
        assert (folder / "manifest.json").read_text() == '{"source": "stac ht'  # put back as it was
        assert _fetch(server, FAR_FIELD, folder).scenes[0].windows == 2
    assert "unfinished_fetch" not in read_manifest(folder) and not list(folder.glob(".manifest.json*"))
    assert read_manifest(folder)["totals"]["scenes_downloaded"] == 0  # the interrupted fetch had written it


def _three_dates(tmp_path: Path) -> tuple[list[dict], dict[str, Path]]:
    return dated_items(tmp_path / "cogs", ("2024-03-05", "2024-03-15", "2024-03-25"))


MARCH_2024 = (date(2024, 3, 1), date(2024, 3, 31))
MARCH_FIELD = gpd.GeoSeries([DATED_FIELD], crs="EPSG:32650")
# 3 km from MARCH_FIELD: in a 4 km tile (tile_item's size_px=400) the two get a window each.
MARCH_FAR_FIELD = gpd.GeoSeries([shapely.box(503_000, 3_997_000, 503_080, 3_997_060)], crs="EPSG:32650")


def _four_dates(tmp_path: Path) -> tuple[list[dict], dict[str, Path]]:
    return dated_items(tmp_path / "cogs", ("2024-03-05", "2024-03-10", "2024-03-15", "2024-03-25"))


class _EndlessSearch(StacServer):
    """A search whose every page links a next one: from item ``looped_to`` (the same page again and again) or, without
    it, a new page each time (a new ``next``, counting on past the end, read round from the first item); after
    ``SERVER_PAGES`` pages the server stops linking one (without the bounds on the client's side, the search ended only
    there)."""

    SERVER_PAGES = 20

    def __init__(self, *args: Any, looped_to: int | None = None, **options: Any) -> None:
        super().__init__(*args, **options)
        self.looped_to = looped_to

    def _search(self, request: dict[str, Any]) -> Response:
        searches = len(self.requests_to("/search", "POST"))
        response = super()._search({**request, "next": str(int(request.get("next") or 0) % len(self._items))})
        if searches >= self.SERVER_PAGES:
            return response
        page = json.loads(response.body)
        following = searches * self.page_size if self.looped_to is None else self.looped_to
        page["links"] = [{"rel": "next", "href": f"{self.url}/search", "method": "POST",
                          "body": {**request, "next": str(following)}, "merge": False}]
        return dataclasses.replace(response, body=json.dumps(page).encode())


def test_a_search_past_the_item_bound_stops_the_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server always linking a next page held the fetch for ever, its memory growing (RESPONSE_MAX_BYTES bounds a
    page, --timeout a request)."""
    monkeypatch.setattr("farmcredit.imagery.stac.MAX_SEARCH_ITEMS", 5)
    with _EndlessSearch(*_four_dates(tmp_path), page_size=2) as server:
        with pytest.raises(ImageryError, match=r"the STAC search returned over 5 items: narrow --season or the area"):
            _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        assert len(server.requests_to("/search", "POST")) == 3  # 6 items: past 5, no page more
        assert not server.requests_to(server.files_path)


def test_a_search_of_pages_far_smaller_than_asked_stops_at_the_page_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server linking a next page of one item each time made up to MAX_SEARCH_ITEMS (20,000) requests."""
    monkeypatch.setattr("farmcredit.imagery.stac.MAX_SEARCH_PAGES", 5)
    with _EndlessSearch(*_four_dates(tmp_path), page_size=1) as server:
        with pytest.raises(ImageryError, match=r"the STAC search ran past 5 pages \(5 items, the server giving at most "
                                               r"1 a page of the 100 asked for\): narrow --season or the area"):
            _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        assert len(server.requests_to("/search", "POST")) == 5
        assert not server.requests_to(server.files_path)
    assert not (tmp_path / "s2").exists()


def test_a_server_paging_at_the_limit_asked_meets_the_item_bound_before_the_page_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert stac.MAX_SEARCH_PAGES > stac.MAX_SEARCH_ITEMS // stac.SEARCH_PAGE_ITEMS + 1
    monkeypatch.setattr("farmcredit.imagery.stac.SEARCH_PAGE_ITEMS", 2)
    monkeypatch.setattr("farmcredit.imagery.stac.MAX_SEARCH_PAGES", 2)
    items, files = _four_dates(tmp_path)
    with StacServer(items, files) as server:
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        assert [json.loads(r.body)["limit"] for r in server.requests_to("/search", "POST")] == [2, 2]
    assert [s.scene_id for s in manifest.scenes] == [item["id"] for item in items]


class _TenAPage(StacServer):
    """A search of ``count`` small items over MARCH_FIELD, 10 a page whatever is asked (the STAC API's default
    ``limit``, where some servers cap it), its last page linking a next one, empty."""

    def __init__(self, count: int) -> None:
        super().__init__([], {})
        self.count = count

    def _search(self, request: dict[str, Any]) -> Response:
        start = int(request.get("next") or 0)
        footprint = MARCH_FIELD.to_crs("EPSG:4326").iloc[0]
        page = [{"type": "Feature", "stac_version": "1.0.0", "id": f"S2A_50SKA_{k:08d}_0_L2A", "bbox": footprint.bounds,
                 "geometry": shapely.geometry.mapping(footprint), "properties": {"datetime": "2024-03-05T03:20:00Z"},
                 "links": [], "assets": {}} for k in range(start, min(start + 10, self.count))]
        links = [] if start >= self.count else [{"rel": "next", "href": f"{self.url}/search", "method": "POST",
                                                 "body": {**request, "next": str(start + 10)}, "merge": False}]
        document = {"type": "FeatureCollection", "features": page, "links": links}
        return Response(200, json.dumps(document).encode(), "application/geo+json")


@pytest.mark.slow
@pytest.mark.parametrize("past", [False, True], ids=["at-the-item-bound", "past-it"])
def test_a_server_paging_at_10_items_is_read_up_to_the_item_bound(past: bool) -> None:
    """A page bound of 1,000 stopped a server giving 10 a page (the STAC API's default) at 10,000 items, half the
    item bound, and told only of the 100 a page asked for."""
    count = stac.MAX_SEARCH_ITEMS + past
    with _TenAPage(count) as server:
        source, area = RemoteSource("stac", server.url), MARCH_FIELD.to_crs("EPSG:4326")
        if past:
            with pytest.raises(ImageryError, match=rf"returned over {stac.MAX_SEARCH_ITEMS:,} items: narrow"):
                stac.search_items(source, area, MARCH_2024, FAST)
        else:
            assert len(stac.search_items(source, area, MARCH_2024, FAST)) == count
        # Pages read, each once (a page the loaded machine served past FAST's 1 s is asked again: a retry, not a page)
        pages = [json.loads(r.body).get("next") for r in server.requests_to("/search", "POST")]
        assert len(set(pages)) == count // 10 + 1  # the last: empty, or of one item


def test_a_search_whose_next_page_is_one_it_read_stops_paging_there(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    items, files = _four_dates(tmp_path)
    with _EndlessSearch(items, files, page_size=2, looped_to=2) as server, caplog.at_level(logging.WARNING):
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        assert len(server.requests_to("/search", "POST")) == 2  # the second page links itself
    assert [s.scene_id for s in manifest.scenes] == [item["id"] for item in items]
    assert "the STAC search's next page is one it already read" in caplog.text


def test_a_first_fetch_interrupted_part_way_leaves_its_folder_marked_unfinished(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two of three dates written, then Ctrl-C: the folder says the season may be partial (assess warns of an
    unfinished fetch, and its audit record holds the manifest)."""
    from farmcredit.pipeline import run_assessment

    def interrupted(what: str, done: int, total: int) -> None:
        if done == 2 and what != "done":
            raise KeyboardInterrupt

    with StacServer(*_three_dates(tmp_path)) as server, pytest.raises(KeyboardInterrupt):
        _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024, progress=interrupted)
    assert len(open_imagery(tmp_path / "s2", MARCH_2024).scenes) == 2
    assert "only some of the season" in read_manifest(tmp_path / "s2")["unfinished_fetch"]["note"]
    with caplog.at_level(logging.WARNING):
        record = run_assessment(gpd.GeoDataFrame({"parcel_id": ["F1"]}, geometry=MARCH_FIELD), tmp_path / "s2",
                                season=MARCH_2024, model="rule").record
    assert "did not finish" in caplog.text and "run it again" in caplog.text
    assert "only some of the season" in record["inputs"]["imagery"]["fetch"]["unfinished_fetch"]["note"]


@pytest.mark.parametrize("fault", [Fault(status=503), Fault(hang=True)], ids=["503", "hangs"])
def test_a_server_failing_past_the_retries_stops_the_fetch_marked_unfinished(tmp_path: Path, fault: Fault) -> None:
    """An outage is not the item's fault: leaving its scenes out, the fetch exited 0 with holes in the season."""
    with StacServer(*_three_dates(tmp_path)) as server:
        server.fail(f"{server.files_path}S2A_50SKA_20240315", *[fault] * 50)
        with pytest.raises(Unavailable, match=r"S2A_50SKA_20240315_0_L2A_B0\d\.tif: cannot open band"):
            _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
    assert [s.scene_id for s in open_imagery(tmp_path / "s2", MARCH_2024).scenes] == ["S2A_50SKA_20240305_0_L2A"]
    assert "only some of the season" in read_manifest(tmp_path / "s2")["unfinished_fetch"]["note"]


def test_a_read_failing_past_the_retries_after_the_file_opened_is_an_outage(synthetic_29rkh, tmp_path: Path) -> None:
    """GDAL's exception says only that a block did not read, as of a corrupt file; the HTTP errors it retried are in
    its log: a 503 mid-read left the scene out as broken and went on."""
    item, files = synthetic_29rkh
    with StacServer([item], files) as server:
        server.fail(server.files_path + "B04.tif", *([Fault()] * 2 + [Fault(status=503)] * 50))
        with pytest.raises(Unavailable, match=r"B04\.tif: reading band B04 failed .*HTTP error code: 503"):
            _fetch(server, FIELDS, tmp_path / "s2")


@pytest.mark.parametrize("fault", [Fault(drip_s=0.2), Fault(truncate=True)], ids=["drips", "cut-short"])
def test_a_band_file_whose_bytes_do_not_arrive_whole_is_an_outage_and_read_again_within_the_retries(
        tmp_path: Path, fault: Fault) -> None:
    """GDAL decodes a body cut short or timed out as it came, telling nothing of the transfer: the scene was left out as
    corrupt after one request, the fetch exiting 0 with a hole in the season and --retries unused."""
    target = "S2A_50SKA_20240315_0_L2A_B05.tif"
    with StacServer(*_three_dates(tmp_path)) as server:
        server.fail(server.files_path + target, *[fault] * 50)
        with pytest.raises(Unavailable, match=rf"{target}: .*band B05 .*; its bytes do not arrive whole") as error:
            _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        assert "See previous exception" not in str(error.value)
        assert len(server.requests_to(server.files_path + target, "GET")) > FAST.attempts  # each try, then a probe
        assert "only some of the season" in read_manifest(tmp_path / "s2")["unfinished_fetch"]["note"]

        server.faults.clear()
        server.fail(server.files_path + target, fault, fault)  # the first try's requests (its HEAD, its GET)
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
    assert len(manifest.scenes) == 3 and not manifest.skipped  # the retry read it
    assert "unfinished_fetch" not in read_manifest(tmp_path / "s2")


def _cut_in_half(path: Path) -> None:
    """A band file the server holds corrupt: its header reads, its pixels do not."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbled(path: Path) -> None:
    """A band file the server holds corrupt, of its whole length: its header reads, its tiles are noise."""
    data = path.read_bytes()
    path.write_bytes(data[:1024] + bytes(np.random.default_rng(0).integers(0, 256, len(data) - 1024, np.uint8)))


@pytest.mark.parametrize(
    ("fault", "damage", "why"),
    [(Fault(status=404), None, r"cannot open band B05 .*404"),
     (Fault(status=410), None, r"cannot open band B05 .*410"),
     (None, _cut_in_half, r"reading band B05 failed .*IReadBlock failed.*its bytes arrive whole: the file is corrupt"),
     (None, _garbled, r"reading band B05 failed .*its bytes arrive whole: the file is corrupt")],
    ids=["not-found", "gone", "corrupt", "garbled"],
)
def test_a_band_file_missing_or_unreadable_leaves_its_scene_out_and_the_rest_fetched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: Fault | None, damage, why: str
) -> None:
    """One bad band file on the server left out of every rerun's season, not the whole season aborted."""
    items, files = _three_dates(tmp_path)
    if damage is not None:
        damage(files["S2A_50SKA_20240315_0_L2A_B05.tif"])
    with StacServer(items, files) as server, caplog.at_level(logging.WARNING):
        if fault is not None:
            server.fail(f"{server.files_path}S2A_50SKA_20240315_0_L2A_B05.tif", *[fault] * 50)
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240305_0_L2A", "S2A_50SKA_20240325_0_L2A"]
        ((left_out, reason),) = manifest.skipped
        assert left_out == "S2A_50SKA_20240315_0_L2A" and re.search(why, reason)
    assert "the scene is left out" in caplog.text and re.search(why, caplog.text)
    assert read_manifest(tmp_path / "s2")["skipped"] == [[left_out, reason]]
    assert "unfinished_fetch" not in read_manifest(tmp_path / "s2")
    assert not (tmp_path / "s2" / left_out).exists()  # nothing half written: a rerun fetches it once it is there
    assert len(open_imagery(tmp_path / "s2", MARCH_2024).scenes) == 2
    with StacServer(*_three_dates(tmp_path)) as server:  # every date's B05 gone: nothing to pass for imagery
        server.fail(f"{server.files_path}S2A_50SKA_202403", *[Fault(status=404)] * 500)
        with pytest.raises(ImageryError, match="no scene fetched: 3 left out, a band missing or unreadable"):
            _fetch(server, MARCH_FIELD, tmp_path / "none", season=MARCH_2024)
    assert not (tmp_path / "none").exists()


def test_an_item_without_red_or_nir_is_left_out_and_the_folder_reads_for_assess(tmp_path: Path) -> None:
    """Fetched without B04, the scene made assess refuse the whole folder (NDVI needs red and NIR on every date)."""
    from farmcredit.pipeline import run_assessment

    items, files = _three_dates(tmp_path)
    del items[1]["assets"]["red"]
    del items[2]["assets"]["nir"]
    with StacServer(items, files) as server:
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)

    assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240305_0_L2A"]
    assert manifest.skipped == (
        ("S2A_50SKA_20240315_0_L2A", "STAC item S2A_50SKA_20240315_0_L2A has no B04 asset, which assess needs on "
                                     "every date (NDVI)"),
        ("S2A_50SKA_20240325_0_L2A", "STAC item S2A_50SKA_20240325_0_L2A has no B08 asset, which assess needs on "
                                     "every date (NDVI)"))
    assert {"B04", "B08"} <= set(manifest.bands)
    assessment = run_assessment(gpd.GeoDataFrame({"parcel_id": ["F1"]}, geometry=MARCH_FIELD), tmp_path / "s2",
                                model="rule", season=MARCH_2024)
    assert "OUTSIDE_IMAGERY" not in assessment.parcels["reason_all"].iloc[0]


def test_an_item_whose_id_is_a_path_is_left_out_and_nothing_is_written_or_removed_outside_the_folder(
    tmp_path: Path,
) -> None:
    """A server's item id named the scene folder: "../first" wrote a scene beside the imagery folder, and with the
    ".partial-.." folder that left, "../../../victim" had an unrelated folder removed (rmtree) and replaced."""
    out = tmp_path / "jobs" / "job1" / "imagery"
    victim = tmp_path / "jobs" / "job1" / "victim"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("not the fetch's")
    items, files = _three_dates(tmp_path)
    items[1]["id"], items[2]["id"] = "../first", "../../../victim"
    def outside() -> list[Path]:
        return sorted(path for path in tmp_path.rglob("*") if out not in (path, *path.parents))

    before = outside()
    with StacServer(items, files) as server:
        manifest = _fetch(server, MARCH_FIELD, out, season=MARCH_2024)

    assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240305_0_L2A"]
    assert [(item_id, "is not a plain folder name" in why) for item_id, why in manifest.skipped] == [
        ("../first", True), ("../../../victim", True)]
    assert outside() == before
    assert (victim / "keep.txt").read_text() == "not the fetch's"
    assert sorted(path.name for path in out.iterdir()) == [".fetch.lock", "S2A_50SKA_20240305_0_L2A", "manifest.json"]


def test_an_item_whose_id_is_a_name_the_folder_itself_uses_is_left_out(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An item "manifest.json" stopped the whole fetch, telling of a folder of a scene it did not write in the way (the
    other id as a file system ignoring case, or Windows dropping trailing dots, names the manifest)."""
    items, files = _three_dates(tmp_path)
    items[1]["id"], items[2]["id"] = "manifest.json", "Manifest.JSON."
    with StacServer(items, files) as server, caplog.at_level(logging.WARNING):
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)

    assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240305_0_L2A"]
    assert [(item_id, "in place of the imagery folder's own manifest.json" in why)
            for item_id, why in manifest.skipped] == [("manifest.json", True), ("Manifest.JSON.", True)]
    assert "STAC item 'manifest.json' is left out" in caplog.text
    assert read_manifest(tmp_path / "s2")["totals"]["scenes_downloaded"] == 1


@pytest.mark.parametrize("ids", [("NUL", "com1.json"), ("con", "Lpt9.tar.gz"), ("aux.", "PRN.json")])
def test_an_item_whose_id_is_a_windows_device_name_is_left_out(
        tmp_path: Path, ids: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """Items "NUL" and "com1.json" were fetched into folders of those names, which Windows cannot make or copy (a
    fetched folder is copied there), where other ids no folder can take were left out."""
    items, files = _three_dates(tmp_path)
    items[1]["id"], items[2]["id"] = ids
    with StacServer(items, files) as server, caplog.at_level(logging.WARNING):
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)

    assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240305_0_L2A"]
    assert [(item_id, "is a Windows device name" in why) for item_id, why in manifest.skipped] == [
        (ids[0], True), (ids[1], True)]
    assert f"STAC item {ids[0]!r} is left out" in caplog.text
    assert sorted(path.name for path in (tmp_path / "s2").iterdir()) == [
        ".fetch.lock", "S2A_50SKA_20240305_0_L2A", "manifest.json"]


@pytest.mark.parametrize("scene_id", ["CONSOLE", "NULL", "com10", "nul_1", "S2A_AUX_20240305_0_L2A"])
def test_an_id_only_starting_like_a_windows_device_name_names_a_folder(scene_id: str) -> None:
    assert scene_id_problem(scene_id) is None


@pytest.mark.parametrize("scene_id", ["..", "../x", "a/../../b", "/tmp/x", ""])
def test_a_scene_id_that_is_a_path_names_no_folder_to_read_or_write(tmp_path: Path, scene_id: str) -> None:
    """Behind the check of searched ids: the folder of a scene is always one directly in the imagery folder."""
    grid = SceneGrid(rasterio.crs.CRS.from_epsg(32650), rasterio.transform.from_origin(500_000, 4_000_000, 10, 10),
                     (12, 12), 256, {"B04": rasterio.transform.from_origin(500_000, 4_000_000, 10, 10)},
                     {"B04": "uint16"})
    with pytest.raises(ImageryError, match="is a path, not the name of a folder"):
        LocalScene.load(tmp_path, scene_id)
    with pytest.raises(ImageryError, match="is a path, not the name of a folder"):
        SceneWriter(tmp_path, scene_id, grid, ["B04"], [(500_000.0, 3_999_880.0, 500_120.0, 4_000_000.0)])
    assert list(tmp_path.iterdir()) == []


def test_a_servers_item_naming_a_local_file_is_refused_and_the_file_never_read(tmp_path: Path) -> None:
    """A server's file:// href had fetch copy this computer's rasters (another tenant's, say) into the folder."""
    items, files = _three_dates(tmp_path)
    private = files["S2A_50SKA_20240315_0_L2A_B04.tif"]
    items[1]["assets"]["red"]["href"] = private.as_uri()
    with StacServer(items, files) as server, pytest.raises(
            ImageryError, match=f"asset href '{private.as_uri()}' is not an http\\(s\\) or s3 URL"):
        _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
    assert not (tmp_path / "s2").exists()


def test_json_nested_too_deep_to_parse_in_the_folder_is_told_not_a_traceback(tmp_path: Path) -> None:
    """A manifest or scene item 200,000 arrays deep raised RecursionError: a fetch now replaces the manifest (as any
    that does not read), refuses to replace the scene folder (as one no fetch wrote), and reading it is an error."""
    deep = "[" * 200_000 + "]" * 200_000
    items, files = _three_dates(tmp_path)
    out = tmp_path / "s2"
    out.mkdir()
    (out / "manifest.json").write_text(deep)
    with pytest.raises(ImageryError, match="manifest.json: not valid JSON"):
        read_manifest(out)
    with StacServer(items[:1], files) as server:
        manifest = _fetch(server, MARCH_FIELD, out, season=MARCH_2024)
        assert [s.scene_id for s in manifest.scenes] == [items[0]["id"]]
        (out / items[0]["id"] / f"{items[0]['id']}.json").write_text(deep)
        with pytest.raises(InputError, match="a folder of scene .* that farmcredit fetch did not write"):
            _fetch(server, MARCH_FIELD, out, season=MARCH_2024)


def test_a_scene_held_on_another_grid_is_never_copied_into_a_new_one(tmp_path: Path) -> None:
    """The server's COGs of an item moved half a pixel since the folder was fetched: the held windows' numbers mean
    other pixels on the new grid, so the item is left out (named with why), the folder as it was."""
    item_id = "S2A_50SKA_20240315_0_L2A"
    for origin, out in (((500_000.0, 4_000_000.0), "first"), ((500_005.0, 4_000_000.0), "moved")):
        item, files = tile_item(tmp_path / out, item_id, crs="EPSG:32650", origin=origin, size_px=400,
                                acquired="2024-03-15T03:20:00Z")
        with StacServer([item], files) as server:
            if out == "first":
                _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
                held = (tmp_path / "s2" / item_id / "B04.tif").read_bytes()
            else:
                with pytest.raises(ImageryError, match=rf"{item_id}: an earlier fetch holds scene {item_id} on "
                                                       "another grid.*fetch into another --out"):
                    _fetch(server, pd.concat([MARCH_FIELD, MARCH_FAR_FIELD]), tmp_path / "s2", season=MARCH_2024)
    assert (tmp_path / "s2" / item_id / "B04.tif").read_bytes() == held


@pytest.mark.parametrize(("reprocessed", "why"), [(False, "which this fetch would replace"),
                                                  (True, "which S2A_50SKA_20240315_1_L2A supersedes .* mosaicked")],
                         ids=["its-scene", "reprocessed"])
def test_a_scene_folder_no_fetch_wrote_is_never_replaced(tmp_path: Path, reprocessed: bool, why: str) -> None:
    """A whole scene downloaded by hand into the folder, named by its item's id: fetch replaced it with the field's
    window and deleted it; or, the scene reprocessed since, left it beside the new processing, whose pixels it won
    in the mosaic."""
    item_id = "S2A_50SKA_20240315_0_L2A"
    scene = tmp_path / "s2" / item_id
    item, files = tile_item(scene, item_id, crs="EPSG:32650", origin=(500_000.0, 4_000_000.0), size_px=400,
                            acquired="2024-03-15T03:20:00Z", band_file_names=True)
    local = {**item, "assets": {key: {**asset, "href": asset["href"].replace("file:", "./")}
                                for key, asset in item["assets"].items()}}
    (scene / f"{item_id}.json").write_text(json.dumps(local))
    before = {path.name: path.read_bytes() for path in scene.iterdir()}
    granules = [(item, files), *([_granule(tmp_path / "cogs", "1", "05.11", size_px=400)] if reprocessed else [])]
    served = {name: path for _, granule_files in granules for name, path in granule_files.items()}
    with StacServer([granule for granule, _ in granules], served) as server, pytest.raises(
            InputError, match=rf"{re.escape(str(scene))}: a folder of scene {item_id} that farmcredit fetch did not "
                              rf"write .* {why}.* move it elsewhere, or fetch into another --out"):
        _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
    assert {path.name: path.read_bytes() for path in scene.iterdir()} == before
    assert sorted(path.name for path in (tmp_path / "s2").iterdir()) == [".fetch.lock", item_id]


@pytest.mark.parametrize(("damage", "sizes", "fields"), [
    ("cut", "recorded", "same"), ("cut", "recorded", "one-more"), ("cut", "unrecorded", "same"),
    ("overwritten", "recorded", "one-more")])
def test_a_band_file_cut_short_since_an_earlier_fetch_is_downloaded_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str, sizes: str, fields: str) -> None:
    """Copying the held windows out of a B04 cut in half stopped the next fetch with rasterio's traceback; fetched
    again for the same field, the scene was called cached and reading the folder failed. A folder of an earlier
    version records no file sizes: its band files are opened instead; damage that keeps the size shows as the
    windows are copied."""
    item_id = "S2A_50SKA_20240315_0_L2A"
    item, files = tile_item(tmp_path / "cogs", item_id, crs="EPSG:32650", origin=(500_000.0, 4_000_000.0),
                            size_px=400, acquired="2024-03-15T03:20:00Z")
    with StacServer([item], files) as server:
        _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        band = tmp_path / "s2" / item_id / "B04.tif"
        held = band.read_bytes()
        if damage == "cut":
            _cut_in_half(band)
        else:
            band.write_bytes(held[: len(held) // 2] + bytes(len(held) - len(held) // 2))
        if sizes == "unrecorded":
            local = tmp_path / "s2" / item_id / f"{item_id}.json"
            document = json.loads(local.read_text())
            for asset in document["assets"].values():
                del asset["file:size"]
            local.write_text(json.dumps(document))
        with caplog.at_level(logging.WARNING):
            manifest = _fetch(server, MARCH_FIELD if fields == "same" else pd.concat([MARCH_FIELD, MARCH_FAR_FIELD]),
                              tmp_path / "s2", season=MARCH_2024)

    assert re.search(rf"{re.escape(str(band))}: .*the scene's windows are downloaded again", caplog.text)
    assert manifest.scenes[0].windows == (1 if fields == "same" else 2) and not manifest.scenes[0].cached
    with rasterio.open(band) as fetched, rasterio.open(io.BytesIO(held)) as earlier:
        window = from_bounds(*earlier.bounds, transform=fetched.transform).round_offsets().round_lengths()
        np.testing.assert_array_equal(fetched.read(1, window=window), earlier.read(1))


def test_a_fetch_into_a_folder_another_fetch_is_writing_is_refused_before_any_request(
        synthetic_29rkh, tmp_path: Path, lock_held_elsewhere) -> None:
    """Two fetches into one folder would replace each other's scenes and manifest: the second exits at once, the
    folder as it was; a fetch killed while holding the folder holds nothing (the lock is the operating system's)."""
    from farmcredit.imagery.fetch import LOCK_NAME

    item, files = synthetic_29rkh
    folder = tmp_path / "s2"
    with StacServer([item], files) as server:
        _fetch(server, FIELDS, folder)
        earlier = (folder / "manifest.json").read_bytes()
        requests = len(server.records)
        holder = lock_held_elsewhere(folder / LOCK_NAME)
        with pytest.raises(InputError, match="another farmcredit fetch is writing there"):
            _fetch(server, FAR_FIELD, folder)
        assert len(server.records) == requests and (folder / "manifest.json").read_bytes() == earlier
        holder.kill()
        holder.wait()
        assert _fetch(server, FAR_FIELD, folder).scenes[0].windows == 2


def test_a_search_response_that_drips_in_fails_within_the_timeout(synthetic_29rkh, tmp_path: Path) -> None:
    """requests' timeout bounds each wait on the socket: a server sending a byte every 0.2 s kept a fetch with a
    1 s timeout waiting for ever. A body late past the timeout fails its request, not retried."""
    with StacServer([synthetic_29rkh[0]], synthetic_29rkh[1]) as server:
        server.fail("/search", Fault(drip_s=0.2))
        with pytest.raises(ImageryError, match=r"STAC search failed .*the answer is arriving too slowly: \d+ bytes of "
                                               r"[\d,]+ in \d+ s, \d+ in the last \d+ s, under the [\d,]+ required "
                                               r"there at 64 KiB per --timeout \(on a slow link, raise --timeout, now "
                                               r"1 s\)"):
            _fetch(server, FIELDS, tmp_path / "s2")
        assert len(server.requests_to("/search")) == 1


def test_a_body_too_slow_over_a_long_stretch_is_said_with_what_it_gained_and_what_was_required(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar grows with the stretch (64 KiB per --timeout): 80 KiB at 1.9 s and a byte at 3.8 s, at a 2 s timeout,
    is under the 124,518 bytes 3.8 s required, which the error said was "under 64 KiB in the last 4 s"."""
    clock = iter([1.9, 3.8])
    arrivals = iter([b"x" * 81_920, b"x"])
    now = [0.0]

    def read1(size: int, decode_content: bool) -> bytes:
        now[0] = next(clock)
        return next(arrivals)

    monkeypatch.setattr(stac, "time", SimpleNamespace(monotonic=lambda: now[0]))
    response = requests.Response()
    response.url, response.headers["Content-Length"] = "http://stac.test/search", "200000"
    response.raw = SimpleNamespace(read1=read1, read=read1)
    with pytest.raises(requests.exceptions.ReadTimeout) as slow:
        stac._whole_body(response, 0.0, 2.0)
    assert str(slow.value) == (
        "http://stac.test/search: the answer is arriving too slowly: 81,921 bytes of 200,000 in 4 s, 81,921 in the "
        "last 4 s, under the 124,518 required there at 64 KiB per --timeout (on a slow link, raise --timeout, now "
        "2 s)")


def test_a_search_response_arriving_steadily_but_slower_than_the_timeout_is_read(
        synthetic_29rkh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a Sentinel Hub answer (the same adapter): a body that keeps arriving is read, however long it takes (here a
    page of some 3 KB, 256 bytes every 0.2 s at a 1 s timeout, held to 512 bytes a stretch in place of 64 KiB)."""
    monkeypatch.setattr("farmcredit.imagery.stac.BODY_PROGRESS_BYTES", 512)
    with StacServer([synthetic_29rkh[0]], synthetic_29rkh[1]) as server:
        server.fail("/search", Fault(drip_s=0.2, drip_bytes=256))
        manifest = _fetch(server, FIELDS, tmp_path / "s2")
        (search,) = server.requests_to("/search")
        read_next = server.requests_to(server.files_path)[0]
    assert not search.abandoned and len(manifest.scenes) == 1
    assert read_next.received - search.received > FAST.timeout_s  # the search's answer took longer than the timeout


@pytest.mark.parametrize("fault", [Fault(hang=True), Fault(status=503, retry_after="2")], ids=["hangs", "retry after"])
def test_a_search_retried_past_the_timeout_is_read_when_the_retry_answers(fault: Fault, synthetic_29rkh,
                                                                          tmp_path: Path) -> None:
    """The time before the retry's headers (a first try timed out, a Retry-After longer than the timeout) is not the
    body's: counted in, every retried search failed."""
    with StacServer([synthetic_29rkh[0]], synthetic_29rkh[1]) as server:
        server.fail("/search", fault)
        manifest = _fetch(server, FIELDS, tmp_path / "s2")
    assert len(manifest.scenes) == 1


def test_a_search_response_over_the_size_limit_is_refused(
    synthetic_29rkh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search response of a GB took 2.5 GB of memory: one over ``RESPONSE_MAX_BYTES`` is refused."""
    monkeypatch.setattr("farmcredit.imagery.stac.RESPONSE_MAX_BYTES", 2**10)
    with StacServer([synthetic_29rkh[0]] * 3, synthetic_29rkh[1]) as server, pytest.raises(
            ImageryError, match="STAC search failed .*a response of \\d+ bytes, over the 0.000976562 MiB"):
        _fetch(server, FIELDS, tmp_path / "s2")


def test_one_503_is_retried(synthetic_29rkh, tmp_path: Path) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server:
        server.fail("/search", Fault(status=503, retry_after="0"))
        manifest = _fetch(server, FIELDS, tmp_path / "s2")
        statuses = [r.status for r in server.requests_to("/search")]
    assert statuses == [503, 200] and len(manifest.scenes) == 1


@pytest.mark.parametrize("url", ["notaurl", "earth-search.aws.element84.com/v1", "ftp://example.org/v1"])
def test_a_stac_url_that_is_no_http_url_is_an_input_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(InputError, match="is not the URL of a STAC API root"):
        fetch_imagery(FIELDS, FEBRUARY_2020, RemoteSource("stac", url), tmp_path / "s2", http=FAST)


def test_a_collection_url_given_as_the_api_root_says_what_to_give(synthetic_29rkh, tmp_path: Path) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server:
        source = RemoteSource("stac", f"{server.url}/collections/sentinel-2-l2a")
        with pytest.raises(InputError, match="is a STAC Collection, not the root of a STAC API") as error:
            fetch_imagery(FIELDS, FEBRUARY_2020, source, tmp_path / "s2", http=FAST)
    assert f"--stac-url {server.url}/ --collection sentinel-2-l2a" in str(error.value)


def test_a_token_in_the_stac_url_is_in_no_error_message_or_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with StacServer([], {}) as server:
        port = server.url.rsplit(":", 1)[1]
    # The server is gone: its port now refuses connections, and requests quotes the URL it tried.
    source = RemoteSource("stac", f"http://user:pa55word@127.0.0.1:{port}/v1?token=TOPSECRET")
    with pytest.raises(ImageryError, match="STAC search failed") as error:
        fetch_imagery(FIELDS, FEBRUARY_2020, source, tmp_path / "s2", http=FAST)
    message = str(error.value)
    assert f"127.0.0.1:{port}/v1" in message
    assert "TOPSECRET" not in message and "token=" not in message and "pa55word" not in message
    # urllib3 logs the URL it retries; pystac-client each URL and its headers (Basic user:password).
    assert "Retrying" in caplog.text and "Authorization': '***'" in caplog.text
    assert "TOPSECRET" not in caplog.text and "pa55word" not in caplog.text
    assert base64.b64encode(b"user:pa55word").decode() not in caplog.text


@pytest.mark.parametrize(
    ("url", "printed"),
    [("https://user:pw@host:8443/a/B04.tif?sig=secret", "https://host:8443/a/B04.tif"),
     ("http://[::1]:8080/v1?token=x", "http://[::1]:8080/v1"),
     ("s3://bucket/key.tif", "s3://bucket/key.tif"),
     ("/local/B04.tif", "/local/B04.tif")],
)
def test_public_urls_keep_the_host_as_written_and_drop_credentials_and_queries(url: str, printed: str) -> None:
    assert public_url(url) == printed


def test_the_cnn_measures_a_fetched_folder_as_it_measures_the_whole_scenes(tmp_path: Path) -> None:
    """fetch keeps the CNN's context (and pooling phase) around each parcel, so parcels assessed on the folder get
    what the whole scenes give them (without it P00704's cultivated fraction moved from 0.88 to 0.95)."""
    from farmcredit import assess

    sample = Path(__file__).resolve().parents[2] / "sample_tiles"
    items, files = [], {}
    for folder in sorted((sample / "imagery").iterdir()):
        item = json.loads((folder / f"{folder.name}.json").read_text())
        bands = {key: asset for key, asset in item["assets"].items() if asset["href"].endswith(".tif")}
        files |= {f"{folder.name}_{a['href'][2:]}": folder / a["href"][2:] for a in bands.values()}
        items.append(item | {"assets": {key: a | {"href": f"file:{folder.name}_{a['href'][2:]}"}
                                        for key, a in bands.items()}})
    parcels = gpd.read_file(sample / "parcels.geojson")
    parcels = parcels[parcels["parcel_id"].isin(["P00704", "P00004", "P00300", "P00555"])]
    parcels.to_file(tmp_path / "parcels.gpkg")
    season = (date(2024, 3, 1), date(2024, 5, 31))
    with StacServer(items, files) as server:
        _fetch(server, parcels.geometry, tmp_path / "s2", season=season, max_cloud=100)

    fetched = assess(tmp_path / "parcels.gpkg", tmp_path / "s2", season=season)
    whole = assess(tmp_path / "parcels.gpkg", sample / "imagery", season=season)
    np.testing.assert_allclose(fetched["cultivated_fraction"], whole["cultivated_fraction"], atol=1e-6)
    assert list(fetched["loan_limit"]) == list(whole["loan_limit"])


def _processings(folder: Path, size_px: int = 12, **options) -> tuple[list[dict], dict[str, Path]]:
    """A tile of UTM 50 on 2024-03-15 in two processings, COGs in ``folder``: sequence 0 (baseline 05.10), then 1
    (05.11, every DN 300 more, so 0.03 more reflectance); ``options`` go to `tile_item`."""
    granules = [_granule(folder, "0", "05.10", size_px=size_px, **options),
                _granule(folder, "1", "05.11", size_px=size_px, **options)]
    return [item for item, _ in granules], {name: path for _, files in granules for name, path in files.items()}


def _granule(folder: Path, sequence: str, baseline: str, **options) -> tuple[dict, dict[str, Path]]:
    """Sequence ``sequence`` of the tile of UTM 50 on 2024-03-15 (baseline 05.11: every DN 300 more, so 0.03 more
    reflectance), COGs in ``folder``; ``options`` go to `tile_item`."""
    item, files = tile_item(folder, f"S2A_50SKA_20240315_{sequence}_L2A", crs="EPSG:32650",
                            origin=(500_000.0, 4_000_000.0), acquired="2024-03-15T03:20:00Z", baseline=baseline,
                            shift=300 if baseline == "05.11" else 0, **options)
    item["properties"]["s2:sequence"] = sequence
    return item, files


NORTH, SOUTH = (0.0, 0.5), (0.5, 1.0)  # tile_item's rows: the halves of a date split between two datastrips


def _red_of(baseline: str, x: float, y: float) -> float:
    """The red reflectance `_granule` of size_px 400 holds at (x, y), EPSG:32650 metres."""
    return (tile_dns("B04", 400)[int((4e6 - y) // 10), int((x - 5e5) // 10)] + (300 if baseline == "05.11" else 0)
            ) * 1e-4 - 0.1


NEAR_PIXEL, FAR_PIXEL = (500_055.0, 3_999_935.0), (503_045.0, 3_997_035.0)  # of MARCH_FIELD, MARCH_FAR_FIELD


@pytest.mark.parametrize("before", ["split", "whole"])
def test_a_reprocessing_of_one_half_of_a_date_leaves_the_other_half_its_date(tmp_path: Path, before: str) -> None:
    """The date held by two datastrips' halves (05.10), or by one whole granule, then its north half alone
    reprocessed (05.11): that half superseded the whole date, and the far field, in the south, lost it, fetched
    afresh or again."""
    rows = {"split": [NORTH, SOUTH], "whole": [(0.0, 1.0)]}[before]
    granules = [_granule(tmp_path / "cogs", str(k), "05.10", size_px=400, rows=part) for k, part in enumerate(rows)]
    granules.append(_granule(tmp_path / "cogs", "2", "05.11", size_px=400, rows=NORTH))
    items = [item for item, _ in granules]
    files = {name: path for _, item_files in granules for name, path in item_files.items()}
    fields = pd.concat([MARCH_FIELD, MARCH_FAR_FIELD])
    with StacServer(items[:-1], files) as server:
        _fetch(server, fields, tmp_path / "s2", season=MARCH_2024)
    with StacServer(items, files) as server:
        manifests = [_fetch(server, fields, tmp_path / out, season=MARCH_2024) for out in ("s2", "fresh")]

    for manifest in manifests:
        if before == "split":  # the old north half, which the new one covers, is left out
            assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240315_1_L2A", "S2A_50SKA_20240315_2_L2A"]
            assert manifest.skipped == (
                ("S2A_50SKA_20240315_0_L2A", "superseded by S2A_50SKA_20240315_2_L2A (same tile and time)"),)
        else:  # the whole granule holds the south half, which the new one does not
            assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240315_0_L2A", "S2A_50SKA_20240315_2_L2A"]
            assert not manifest.skipped
    assert (tmp_path / "s2" / ".superseded-S2A_50SKA_20240315_0_L2A").is_dir() == (before == "split")
    for out in ("s2", "fresh"):
        assert _red_at(tmp_path / out, *FAR_PIXEL) == (pytest.approx(_red_of("05.10", *FAR_PIXEL)), True)
        if before == "split":
            assert _red_at(tmp_path / out, *NEAR_PIXEL) == (pytest.approx(_red_of("05.11", *NEAR_PIXEL)), True)


@pytest.mark.parametrize("north", ["fetched", "band-404"])
def test_a_whole_granule_reprocessed_in_two_halves_is_set_aside_once_both_hold_its_windows(
        tmp_path: Path, north: str) -> None:
    """A whole granule (05.10) fetched for two fields, then the date reprocessed (05.11) as two datastrips' halves:
    the old folder was paired with the south half alone, fetched over both fields' windows and set aside, and the
    near field lost the date when the north half's B04 was not on the server."""
    granules = [_granule(tmp_path / "cogs", "0", "05.10", size_px=400),
                _granule(tmp_path / "cogs", "1", "05.11", size_px=400, rows=NORTH),
                _granule(tmp_path / "cogs", "2", "05.11", size_px=400, rows=SOUTH)]
    items = [item for item, _ in granules]
    files = {name: path for _, item_files in granules for name, path in item_files.items()}
    fields = pd.concat([MARCH_FIELD, MARCH_FAR_FIELD])
    with StacServer(items[:1], files) as server:
        _fetch(server, fields, tmp_path / "s2", season=MARCH_2024)
    if north == "band-404":
        del files["S2A_50SKA_20240315_1_L2A_B04.tif"]
    with StacServer(items, files) as server:
        manifest = _fetch(server, fields, tmp_path / "s2", season=MARCH_2024)

    assert manifest.skipped[0] == ("S2A_50SKA_20240315_0_L2A", "superseded by S2A_50SKA_20240315_2_L2A, "
                                   "S2A_50SKA_20240315_1_L2A (same tile and time)")
    if north == "fetched":  # each half fetched over its field's window and the old one (on both), then that set aside
        assert [(s.scene_id, s.windows) for s in manifest.scenes] == [
            ("S2A_50SKA_20240315_1_L2A", 2), ("S2A_50SKA_20240315_2_L2A", 2)]
        assert (tmp_path / "s2" / ".superseded-S2A_50SKA_20240315_0_L2A").is_dir()
        near = _red_of("05.11", *NEAR_PIXEL)
    else:  # the old folder stays, read beside the south half, and the near field keeps the date
        assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240315_2_L2A"]
        assert manifest.earlier_scenes == ("S2A_50SKA_20240315_0_L2A",)
        near = _red_of("05.10", *NEAR_PIXEL)
    assert _red_at(tmp_path / "s2", *NEAR_PIXEL) == (pytest.approx(near), True)


def test_a_reprocessing_published_after_a_fetch_replaces_the_old_scene_on_the_next(tmp_path: Path) -> None:
    """The old processing's folder is set aside hidden: read beside the new one it would win the mosaic by id."""
    items, files = _processings(tmp_path / "cogs")
    with StacServer(items[:1], files) as server:
        _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
    with StacServer(items, files) as server:
        manifest = _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)

    assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240315_1_L2A"] and not manifest.earlier_scenes
    assert (tmp_path / "s2" / ".superseded-S2A_50SKA_20240315_0_L2A").is_dir()
    (scene,) = open_imagery(tmp_path / "s2").scenes
    assert scene.scene_id == "S2A_50SKA_20240315_1_L2A" and not scene.parts


def test_a_reprocessing_fetched_for_other_fields_replaces_every_window_the_old_one_held(tmp_path: Path) -> None:
    """Fetched for the far field alone, the new processing set aside the old folder and with it the near field's
    window: the near field lost the date without a word."""
    items, files = _processings(tmp_path / "cogs", size_px=400)
    with StacServer(items[:1], files) as server:
        _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
    old_red, _ = _red_at(tmp_path / "s2", 500_055.0, 3_999_935.0)
    with StacServer(items, files) as server:
        manifest = _fetch(server, MARCH_FAR_FIELD, tmp_path / "s2", season=MARCH_2024)

    assert [(s.scene_id, s.windows) for s in manifest.scenes] == [("S2A_50SKA_20240315_1_L2A", 2)]
    assert (tmp_path / "s2" / ".superseded-S2A_50SKA_20240315_0_L2A").is_dir()
    red, clear = _red_at(tmp_path / "s2", 500_055.0, 3_999_935.0)
    assert clear and red == pytest.approx(old_red + 0.03)  # the near field's pixels, of the new processing


@pytest.mark.parametrize("unfetched", ["band-404", "over-the-cloud-limit"])
def test_an_old_processing_stays_until_its_reprocessing_is_fetched(tmp_path: Path, unfetched: str) -> None:
    """The new processing's B04 not on the server, or the new processing over this fetch's cloud limit: the old
    folder was set aside all the same, and the date gone from the folder."""
    items, files = _processings(tmp_path / "cogs", size_px=400)
    with StacServer(items[:1], files) as server:
        _fetch(server, MARCH_FIELD, tmp_path / "s2", season=MARCH_2024)
        _fetch(server, MARCH_FIELD, tmp_path / "old", season=MARCH_2024)  # the date as it was, to compare with
    if unfetched == "band-404":
        del files["S2A_50SKA_20240315_1_L2A_B04.tif"]
    else:
        items[1]["properties"]["eo:cloud_cover"] = 80.0
    later, later_files = tile_item(tmp_path / "cogs", "S2A_50SKA_20240325_0_L2A", crs="EPSG:32650", size_px=400,
                                   origin=(500_000.0, 4_000_000.0), acquired="2024-03-25T03:20:00Z")
    with StacServer([*items, later], files | later_files) as server:
        manifest = _fetch(server, MARCH_FAR_FIELD, tmp_path / "s2", season=MARCH_2024)

    assert [s.scene_id for s in manifest.scenes] == ["S2A_50SKA_20240325_0_L2A"]
    assert manifest.earlier_scenes == ("S2A_50SKA_20240315_0_L2A",)
    day = (date(2024, 3, 15), date(2024, 3, 15))
    assert _red_at(tmp_path / "s2", 500_055.0, 3_999_935.0, day) == _red_at(tmp_path / "old", 500_055.0, 3_999_935.0)


def test_fetch_keeps_the_default_cnns_context_around_each_parcel() -> None:
    from farmcredit.imagery.fetch import CONTEXT_PX
    from farmcredit.segmentation import load_cropland_model

    assert CONTEXT_PX == load_cropland_model("cnn", device="cpu").read_context


def test_bands_without_a_10m_band_are_refused_before_any_request(synthetic_29rkh, tmp_path: Path) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server, pytest.raises(InputError, match="include none of the 10 m bands"):
        _fetch(server, FIELDS, tmp_path / "s2", bands=("B05", "B11", "SCL"))
    assert not server.requests_to("/search", "POST")
    assert not (tmp_path / "s2").exists()


def test_small_fetches_are_told_in_kilobytes_not_as_0_0_mb() -> None:
    from farmcredit.imagery.fetch import _megabytes

    assert [_megabytes(n) for n in (4_321, 99_999, 100_000, 12_345_678)] == ["4 kB", "100 kB", "0.1 MB", "12.3 MB"]


def test_a_server_ignoring_ranges_is_judged_on_the_bytes_up_to_the_range_not_refused_as_too_large(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain file server answers a range with the whole file: a corrupt 100 MB band was read up to the 64 MiB a STAC
    page may take, then called an outage (stopping the fetch) for being larger."""
    import functools
    import http.server
    import threading

    from farmcredit.imagery import stac

    (tmp_path / "B04.tif").write_bytes(bytes(100_000))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(stac, "RESPONSE_MAX_BYTES", 50_000)
        url = f"http://127.0.0.1:{server.server_port}/B04.tif"
        assert stac._transfer_problem(url, (0, 16_383), 5.0) is None  # its first 16 KiB arrive whole
        assert stac._transfer_problem(url, (60_000, 70_000), 5.0) is None  # past the bound: not to be judged
    finally:
        server.shutdown()
        server.server_close()
