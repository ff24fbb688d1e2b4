"""`fetch_imagery` from Sentinel Hub: the real `sentinelhub` client against a loopback look-alike.

The look-alike has an OAuth token endpoint, the Catalog search and the Process API; its Process
answers are GeoTIFFs cut from the COGs of `synthetic_29rkh` (tests/imagery/conftest.py), a stand-in
for the Earth Search scene of ../shared/data/s2/earthsearch-29RKH-2020.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import shapely.geometry
from sentinelhub import SHConfig
from servers import HANG_LIMIT_S, Fault, SentinelHubServer

from farmcredit.errors import ImageryError, InputError
from farmcredit.imagery import open_imagery
from farmcredit.imagery.fetch import HttpSettings, RemoteSource, fetch_imagery, utm_crs
from farmcredit.imagery.sentinelhub_source import CDSE_BASE_URL, CDSE_TOKEN_URL, sentinelhub_config

CLIENT_ID, SECRET = "farmcredit-test-client", "s3cret-Value-never-shown"
FAST = HttpSettings(timeout_s=1, attempts=3, retry_delay_s=0.05)
FEBRUARY_2020 = (date(2020, 2, 1), date(2020, 2, 29))
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "SCL")
# Two fields whose windows, with the CNN's context around them, lie in one 2048 px request cell.
FIELDS = gpd.GeoSeries(
    [shapely.box(-11.800, 25.130, -11.795, 25.135), shapely.box(-11.790, 25.132, -11.786, 25.137)], crs="EPSG:4326"
)


@pytest.fixture(autouse=True)
def plain_http_oauth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """oauthlib refuses a plain-http token URL unless told otherwise: tests only, never the product."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # sentinelhub writes its config there


def _features(item: dict, *dates_and_clouds: tuple[str, float]) -> list[dict]:
    return [
        {"type": "Feature", "id": f"S2A_MSIL2A_{when[:10].replace('-', '')}_T29RKH", "geometry": item["geometry"],
         "properties": {"datetime": when, "eo:cloud_cover": cloud}}
        for when, cloud in dates_and_clouds
    ]


def _rasters(files: dict[str, Path]) -> dict[str, Path]:
    """The scene's band files by band, as the Process API cuts its answers from them."""
    return {band: files[f"{band}.tif"] for band in BANDS}


def _server(scene: tuple[dict, dict[str, Path]], *dates_and_clouds: tuple[str, float]) -> SentinelHubServer:
    item, files = scene
    clouds = dates_and_clouds or (("2020-02-19T11:34:25Z", 4.05),)
    return SentinelHubServer(CLIENT_ID, SECRET, _features(item, *clouds), _rasters(files))


def _config(server: SentinelHubServer, secret: str = SECRET) -> SHConfig:
    return SHConfig(use_defaults=True, sh_client_id=CLIENT_ID, sh_client_secret=secret, sh_base_url=server.url,
                    sh_token_url=server.token_url)


def _fetch(server: SentinelHubServer, out: Path, area: gpd.GeoSeries = FIELDS, http: HttpSettings = FAST,
           secret: str = SECRET, **options):
    return fetch_imagery(area, FEBRUARY_2020, RemoteSource("sentinelhub"), out, http=http,
                         sentinelhub_config=_config(server, secret), **options)


def _eventually(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within HANG_LIMIT_S, asked every 0.05 s (what a server thread records comes late)."""
    deadline = time.monotonic() + HANG_LIMIT_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_fetch_asks_catalog_then_process_per_date_and_writes_uint16_bands(synthetic_29rkh, tmp_path: Path) -> None:
    item, files = synthetic_29rkh
    dates = (("2020-02-14T11:34:25Z", 10.0), ("2020-02-19T11:34:25Z", 4.05), ("2020-02-24T11:34:25Z", 70.0))
    between_the_fields = _features(item, ("2020-02-09T11:34:25Z", 1.0))[0] | {
        "geometry": shapely.geometry.mapping(shapely.box(-11.794, 25.1305, -11.791, 25.1315))}
    with _server(synthetic_29rkh, *dates) as server:
        server.features.append(between_the_fields)
        manifest = _fetch(server, tmp_path / "s2")
        (token,) = server.requests_to("/oauth/token")
        (search,) = server.requests_to("/api/v1/catalog")
        process = server.requests_to("/api/v1/process")

    form = urllib.parse.parse_qs(token.body.decode())
    assert form["grant_type"] == ["client_credentials"] and form["client_id"] == [CLIENT_ID]
    query = json.loads(search.body)
    assert query["collections"] == ["sentinel-2-l2a"] and query["filter"] == "eo:cloud_cover <= 50"
    # One request per window (one window: the fields are close) per date under the cloud limit.
    assert [s.scene_id for s in manifest.scenes] == ["SH_S2L2A_20200214", "SH_S2L2A_20200219"]
    assert manifest.skipped == ((between_the_fields["id"], "its footprint misses every parcel"),)
    assert manifest.source == f"sentinelhub {server.url} (sentinel-2-l2a)"  # the endpoint, no credentials
    assert len(process) == 2 and all(r.headers["Authorization"] == "Bearer token-0" for r in process)
    body = json.loads(process[1].body)
    data = body["input"]["data"][0]
    assert data["type"] == "sentinel-2-l2a" and data["processing"] == {"upsampling": "NEAREST", "harmonizeValues": True}
    assert data["dataFilter"]["timeRange"]["from"].startswith("2020-02-19T00:00:00")
    assert data["dataFilter"]["mosaickingOrder"] == "leastCC"
    assert data["dataFilter"]["maxCloudCoverage"] == 50  # that date's tiles over the limit are not mosaicked in
    assert body["input"]["bounds"]["properties"]["crs"].endswith("/32629")
    assert body["output"]["responses"][0]["format"]["type"] == "image/tiff"
    assert all(f'"{band}"' in body["evalscript"] for band in BANDS) and "UINT16" in body["evalscript"]
    assert manifest.scenes[1].bytes_downloaded == process[1].bytes_sent > 0

    scene_folder = tmp_path / "s2" / "SH_S2L2A_20200219"
    with rasterio.open(scene_folder / "B04.tif") as fetched, rasterio.open(files["B04.tif"]) as original:
        assert fetched.dtypes == ("uint16",) and fetched.descriptions == ("B04",) and fetched.res == (10.0, 10.0)
        values = fetched.read(1)
        rows, cols = np.nonzero(values)
        xs, ys = rasterio.transform.xy(fetched.transform, rows, cols)
        expected = original.read(1)[tuple(np.array(rasterio.transform.rowcol(original.transform, xs, ys)))]
        np.testing.assert_array_equal(values[rows, cols], expected)  # the 100 m source, nearest neighbour
    with rasterio.open(scene_folder / "SCL.tif") as scl:
        assert scl.dtypes == ("uint8",)
    item = json.loads((scene_folder / "SH_S2L2A_20200219.json").read_text())
    assert item["properties"]["earthsearch:boa_offset_applied"] is True  # harmonised by Sentinel Hub
    imagery = open_imagery(tmp_path / "s2")
    assert [s.dn_offset for s in imagery.scenes] == [0.0, 0.0] and imagery.crs.to_epsg() == 32629


def test_a_large_area_is_split_into_requests_within_the_size_limit(synthetic_29rkh, tmp_path: Path) -> None:
    strip = gpd.GeoSeries([shapely.box(-11.90, 25.10, -11.66, 25.105)], crs="EPSG:4326")  # ~24 km x 0.5 km
    with _server(synthetic_29rkh) as server:
        manifest = _fetch(server, tmp_path / "s2", area=strip, bands=("B04", "SCL"))
        process = [json.loads(r.body) for r in server.requests_to("/api/v1/process")]

    sizes = [(p["output"]["width"], p["output"]["height"]) for p in process]
    assert len(process) == manifest.scenes[0].windows >= 2
    assert all(0 < width <= 2048 and 0 < height <= 2048 for width, height in sizes)
    boxes = [shapely.box(*p["input"]["bounds"]["bbox"]) for p in process]
    assert shapely.union_all(boxes).contains(strip.to_crs(32629).iloc[0].buffer(-1))


def test_a_rerun_downloads_nothing(synthetic_29rkh, tmp_path: Path) -> None:
    with _server(synthetic_29rkh) as server:
        _fetch(server, tmp_path / "s2")
        again = _fetch(server, tmp_path / "s2")
        assert len(server.requests_to("/api/v1/process")) == 1
    assert again.scenes[0].cached and again.to_json()["totals"]["scenes_downloaded"] == 0


def test_bad_credentials_are_one_clear_error_without_the_secret(
    synthetic_29rkh, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with _server(synthetic_29rkh) as server, pytest.raises(InputError, match="refused the credentials") as error:
        _fetch(server, tmp_path / "s2", secret="wrong-" + SECRET)
    message = str(error.value)
    assert server.token_url in message and CLIENT_ID in message and "SH_CLIENT_SECRET" in message
    assert SECRET not in message and SECRET not in caplog.text
    assert not server.requests_to("/api/v1/process")


def test_a_secret_is_kept_out_of_debug_logs_url_encoded_too(
    synthetic_29rkh, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr+t/Val=ue&x y"  # every character the token request's form body encodes
    caplog.set_level(logging.DEBUG)
    with _server(synthetic_29rkh) as server:
        server.client_secret = secret
        manifest = _fetch(server, tmp_path / "s2", secret=secret)
    assert len(manifest.scenes) == 1
    assert "client_secret=***" in caplog.text  # requests-oauthlib logged the body, blanked
    for form in (secret, urllib.parse.quote_plus(secret), urllib.parse.quote(secret),
                 urllib.parse.quote(secret, safe="")):
        assert form not in caplog.text


def test_missing_credentials_say_how_to_set_them(tmp_path: Path) -> None:
    config = SHConfig(use_defaults=True)
    with pytest.raises(InputError, match="no Sentinel Hub credentials for https://sh.dataspace.copernicus.eu.*SH_CLIENT_ID"):
        sentinelhub_config(RemoteSource("sentinelhub"), FAST, config)


def test_copernicus_data_space_is_the_default_and_any_deployment_can_be_configured() -> None:
    defaults = SHConfig(use_defaults=True, sh_client_id="a", sh_client_secret="b")
    config = sentinelhub_config(RemoteSource("sentinelhub"), FAST, defaults)
    assert (config.sh_base_url, config.sh_token_url) == (CDSE_BASE_URL, CDSE_TOKEN_URL)
    assert (config.max_download_attempts, config.max_retries, config.download_timeout_seconds) == (3, 3, 1)
    own = SHConfig(use_defaults=True, sh_client_id="a", sh_client_secret="b", sh_base_url="https://sh.example.org",
                   sh_token_url="https://auth.example.org/token")
    config = sentinelhub_config(RemoteSource("sentinelhub"), FAST, own)
    assert (config.sh_base_url, config.sh_token_url) == ("https://sh.example.org", "https://auth.example.org/token")


def test_429_is_waited_out_as_the_server_asks(synthetic_29rkh, tmp_path: Path) -> None:
    with _server(synthetic_29rkh) as server:
        server.fail("/api/v1/process", Fault(status=429, retry_after="400"))  # sentinelhub reads milliseconds
        manifest = _fetch(server, tmp_path / "s2")
        refused, retried = server.requests_to("/api/v1/process")
    assert (refused.status, retried.status) == (429, 200) and manifest.scenes[0].windows == 1
    assert retried.received - refused.received >= 0.4  # the server's 400 ms, as it saw the two requests come


@pytest.mark.parametrize(
    ("where", "faults", "message"),
    [
        ("/api/v1/process", [Fault(status=500)] * 3, r"process API at http://127\.0\.0\.1:\d+: .*500"),
        ("/api/v1/process", [Fault(status=429, retry_after="10")] * 3, "Maximum number of download attempts"),
        ("/api/v1/process", [Fault(truncate=True)] * 3, "IncompleteRead"),
        ("/api/v1/process", [Fault(hang=True)] * 3, "Read timed out"),
        ("/api/v1/catalog", [Fault(status=503)] * 3, "catalog at .*search failed.*503"),
        ("/oauth/token", [Fault(status=502)] * 3, "token endpoint .*502"),
        ("/oauth/token", [Fault(hang=True)] * 3, "token endpoint .*Read timed out"),
    ],
    ids=["500s", "429s", "truncated", "hangs", "catalog-503", "token-502", "token-hangs"],
)
def test_failures_past_the_retry_budget_are_clear_errors(
    synthetic_29rkh, tmp_path: Path, where: str, faults: list[Fault], message: str
) -> None:
    with _server(synthetic_29rkh) as server:
        server.fail(where, *faults)
        with pytest.raises(ImageryError, match=message):
            _fetch(server, tmp_path / "s2")
        tries = server.requests_to(where)
    assert len(tries) == FAST.attempts  # the budget, no more
    if faults[0].hang:  # each try given up at the client's timeout (not ended by the server stopping)
        assert all(r.abandoned for r in tries)
    assert not any((tmp_path / "s2").glob("*/*.json")) and not any((tmp_path / "s2").glob(".partial-*"))


@pytest.mark.parametrize("where", ["/api/v1/process", "/api/v1/catalog", "/oauth/token"])
def test_an_answer_sent_a_byte_at_a_time_fails_within_the_timeout_each_try(
    synthetic_29rkh, tmp_path: Path, where: str
) -> None:
    """sentinelhub hands --timeout to requests, which bounds each wait on the socket: a server sending a byte every
    0.2 s held each try until it stopped sending (a real one, for ever)."""
    with _server(synthetic_29rkh) as server:
        server.fail(where, *[Fault(drip_s=0.2)] * FAST.attempts)
        started = time.monotonic()
        with pytest.raises(ImageryError, match=r"Sentinel Hub (process API at|catalog at|token endpoint) http://"
                                               r"127\.0\.0\.1:\d+\S*: .*the answer is arriving too slowly: \d+ bytes "
                                               r"of [\d,]+ in \d+ s, \d+ in the last \d+ s, under the [\d,]+ "
                                               r"required there at 64 KiB per --timeout \(on a slow link, raise "
                                               r"--timeout, now 1 s\)"):
            _fetch(server, tmp_path / "s2")
        took = time.monotonic() - started
        tries = server.requests_to(where)
        # the server learns the client left at its next byte or two: wait for that before stopping it
        abandoned = _eventually(lambda: all(r.abandoned for r in tries))
    assert len(tries) == FAST.attempts  # each try timed out, and retried within the budget
    assert abandoned  # each try given up by the client, not ended by the server stopping its drip
    assert took < HANG_LIMIT_S  # about 1 s a try; the server drips for HANG_LIMIT_S at most
    assert not any((tmp_path / "s2").glob("*/*.json")) and not any((tmp_path / "s2").glob(".partial-*"))


def test_a_process_answer_arriving_steadily_but_slower_than_the_timeout_is_fetched(
    synthetic_29rkh, tmp_path: Path
) -> None:
    """A Process answer of a full cell (some 90 MB) takes minutes on a slow link: required whole within --timeout of
    its headers, it failed every try, though it kept arriving (here 64 KiB every 0.15 s, some 1 MB, at a 1 s
    timeout)."""
    with _server(synthetic_29rkh) as server:
        server.fail("/api/v1/process", Fault(drip_s=0.15, drip_bytes=2**16))
        started = time.monotonic()
        manifest = _fetch(server, tmp_path / "s2")
        took = time.monotonic() - started
        (answer,) = server.requests_to("/api/v1/process")  # one try: no timeout, no retry
    assert took > 2 * FAST.timeout_s  # the answer took longer than the timeout
    assert not answer.abandoned and manifest.scenes[0].windows == 1


def test_a_busy_token_endpoint_is_not_mistaken_for_refused_credentials(synthetic_29rkh, tmp_path: Path) -> None:
    """A 429 or 5xx with an error body reaches oauthlib as an OAuth error: it is the endpoint's state, not the
    credentials'."""
    with _server(synthetic_29rkh) as server:
        server.fail("/oauth/token", *[Fault(status=429)] * 3)
        with pytest.raises(ImageryError, match=r"token endpoint .* answered 429 \(try later\)"):
            _fetch(server, tmp_path / "s2")


def test_a_truncated_body_once_is_retried(synthetic_29rkh, tmp_path: Path) -> None:
    with _server(synthetic_29rkh) as server:
        server.fail("/api/v1/process", Fault(truncate=True))
        manifest = _fetch(server, tmp_path / "s2")
        attempts = server.requests_to("/api/v1/process")
    assert len(attempts) == 2 and attempts[0].bytes_sent < attempts[1].bytes_sent
    assert manifest.scenes[0].bytes_downloaded == attempts[1].bytes_sent


def test_an_empty_catalog_search_is_a_clear_error(synthetic_29rkh, tmp_path: Path) -> None:
    with _server(synthetic_29rkh, ("2019-06-01T11:34:25Z", 3.0)) as server:
        with pytest.raises(ImageryError, match=r"no Sentinel-2 L2A scene over .* 2020-02-01/2020-02-29"):
            _fetch(server, tmp_path / "s2")
        assert not server.requests_to("/api/v1/process")


@pytest.mark.parametrize(("max_cloud", "sent"), [(29, 29), (12.5, 13), (100, 100)])
def test_process_requests_keep_every_tile_the_catalogue_accepted(synthetic_29rkh, tmp_path: Path, max_cloud: float,
                                                                 sent: int) -> None:
    """The API takes whole percent, and sentinelhub sends int(maxcc x 100): 29 / 100 x 100 is 28.99..., which
    left out a tile at 28.69% that the catalogue had chosen."""
    with _server(synthetic_29rkh, ("2020-02-19T11:34:25Z", 4.05)) as server:
        _fetch(server, tmp_path / "s2", max_cloud=max_cloud)
        (process,) = server.requests_to("/api/v1/process")
    assert json.loads(process.body)["input"]["data"][0]["dataFilter"]["maxCloudCoverage"] == sent


def _pixels(path: Path, area: gpd.GeoSeries) -> list[np.ndarray]:
    """The band file's values over each geometry's bounds (in the file's CRS; 0 outside the file)."""
    with rasterio.open(path) as dataset:
        windows = [rasterio.windows.from_bounds(*geometry.bounds, transform=dataset.transform)
                   for geometry in area.to_crs(dataset.crs)]
        return [dataset.read(1, window=window.round_offsets().round_lengths(), boundless=True, fill_value=0)
                for window in windows]


def test_a_second_fetch_mostly_in_another_utm_zone_keeps_the_dates_grid_and_both_fields_pixels(
    synthetic_29rkh, tmp_path: Path
) -> None:
    """The second parcel set lies mostly in zone 28: the date's folder, held in zone 29, stays there (its windows
    read in 32628 moved the first field's pixels ~600 km, and assess found it outside the imagery)."""
    item, _ = synthetic_29rkh
    # 100 m position-coded pixels in zone 29 reaching 2 km past the zone's western edge (12 W).
    source = tmp_path / "B04.tif"
    values = np.arange(1, 400 * 100 + 1, dtype=np.uint16).reshape(100, 400)
    with rasterio.open(source, "w", driver="GTiff", width=400, height=100, count=1, dtype="uint16", crs="EPSG:32629",
                       transform=rasterio.transform.from_origin(185_000, 2_788_000, 100, 100)) as dataset:
        dataset.write(values, 1)
    first = FIELDS[:1]
    second = gpd.GeoSeries([shapely.box(-12.02, 25.13, -12.015, 25.135), shapely.box(-12.03, 25.14, -12.025, 25.145),
                            shapely.box(-11.990, 25.130, -11.985, 25.135)], crs="EPSG:4326")
    assert [epsg for epsg in (32628, 32629) for g in second if utm_crs(*g.centroid.coords[0]).to_epsg() == epsg] == [
        32628, 32628, 32629]
    feature = _features(item, ("2020-02-19T11:34:25Z", 4.0))[0] | {
        "geometry": shapely.geometry.mapping(shapely.box(-13, 24, -10, 26))}
    scene = tmp_path / "s2" / "SH_S2L2A_20200219"
    with SentinelHubServer(CLIENT_ID, SECRET, [feature], {"B04": source, "SCL": source}) as server:
        _fetch(server, tmp_path / "s2", area=first, bands=("B04", "SCL"))
        (before,) = _pixels(scene / "B04.tif", first)
        _fetch(server, tmp_path / "s2", area=second, bands=("B04", "SCL"))
        crs = json.loads(server.requests_to("/api/v1/process")[-1].body)["input"]["bounds"]["properties"]["crs"]

    assert crs.endswith("/32629")
    assert json.loads((scene / "SH_S2L2A_20200219.json").read_text())["properties"]["farmcredit:grid"]["crs"] == (
        "EPSG:32629")
    (after,) = _pixels(scene / "B04.tif", first)
    assert before.min() > 0
    np.testing.assert_array_equal(after, before)
    with rasterio.open(scene / "B04.tif") as fetched:
        assert fetched.crs == "EPSG:32629"
        for geometry in second.to_crs(fetched.crs):
            window = rasterio.windows.from_bounds(*geometry.bounds, transform=fetched.transform)
            window = window.round_offsets().round_lengths()
            rows, cols = np.indices((int(window.height), int(window.width)))
            xs, ys = rasterio.transform.xy(fetched.window_transform(window), rows.ravel(), cols.ravel())
            expected = values[rasterio.transform.rowcol(rasterio.transform.from_origin(185_000, 2_788_000, 100, 100),
                                                        xs, ys)]
            np.testing.assert_array_equal(fetched.read(1, window=window).ravel(), expected)


def test_a_rerun_under_another_cloud_limit_or_with_a_new_tile_fetches_the_date_again(
    synthetic_29rkh, tmp_path: Path
) -> None:
    """The Process API mosaics every tile of the date under the limit: a mosaic built under 20% lacks the 40% tile
    that 50% lets in (the rerun reused it, and its manifest named the 40% tile's cloud cover)."""
    item, files = synthetic_29rkh
    west, east = _features(item, ("2020-02-19T11:34:25Z", 10.0), ("2020-02-19T11:34:27Z", 40.0))
    west |= {"id": "S2A_T29RKH_WEST", "geometry": shapely.geometry.mapping(shapely.box(-12, 25, -11.5, 25.5))}
    east |= {"id": "S2A_T29RLH_EAST", "geometry": shapely.geometry.mapping(shapely.box(-11.5, 25, -11, 25.5))}
    fields = gpd.GeoSeries([FIELDS[0], shapely.box(-11.300, 25.130, -11.295, 25.135)], crs="EPSG:4326")
    local_item = tmp_path / "s2" / "SH_S2L2A_20200219" / "SH_S2L2A_20200219.json"
    with SentinelHubServer(CLIENT_ID, SECRET, [west, east], _rasters(files)) as server:
        _fetch(server, tmp_path / "s2", area=fields, max_cloud=20, bands=("B04", "SCL"))
        looser = _fetch(server, tmp_path / "s2", area=fields, max_cloud=50, bands=("B04", "SCL"))
        limits = [json.loads(r.body)["input"]["data"][0]["dataFilter"]["maxCloudCoverage"]
                  for r in server.requests_to("/api/v1/process")]
        properties = json.loads(local_item.read_text())["properties"]
        again = _fetch(server, tmp_path / "s2", area=fields, max_cloud=50, bands=("B04", "SCL"))
        assert len(server.requests_to("/api/v1/process")) == 4  # the same limit and tiles: nothing downloaded
        server.features.append(west | {"id": "S2B_T29RKH_LATE", "properties": {**west["properties"],
                                                                                 "eo:cloud_cover": 5.0}})
        published = _fetch(server, tmp_path / "s2", area=fields, max_cloud=50, bands=("B04", "SCL"))
        assert len(server.requests_to("/api/v1/process")) == 6  # a tile published since over its windows

    assert limits == [20, 20, 50, 50]
    (scene,) = looser.scenes
    assert not scene.cached and scene.cloud_cover == 40.0
    assert properties["farmcredit:catalog_ids"] == ["S2A_T29RKH_WEST", "S2A_T29RLH_EAST"]
    assert properties["farmcredit:max_cloud"] == 50 and properties["eo:cloud_cover"] == 40.0
    assert again.scenes[0].cached and again.scenes[0].cloud_cover == 40.0
    assert not published.scenes[0].cached
    assert "S2B_T29RKH_LATE" in json.loads(local_item.read_text())["properties"]["farmcredit:catalog_ids"]


def test_a_tile_over_the_windows_but_no_parcel_is_recorded_so_a_rerun_downloads_nothing(
    synthetic_29rkh, tmp_path: Path
) -> None:
    """A tile passing between the parcels, through the context around them, is in the mosaic: recorded only by the
    tiles touching a parcel, it read as new on every rerun, which fetched (and paid for) the date again."""
    item, files = synthetic_29rkh
    main, between = _features(item, ("2020-02-19T11:34:25Z", 10.0), ("2020-02-19T11:34:27Z", 12.0))
    between |= {"id": "S2B_BETWEEN", "geometry": shapely.geometry.mapping(shapely.box(-11.7945, 24, -11.7905, 26))}
    assert not FIELDS.intersects(shapely.geometry.shape(between["geometry"])).any()
    with SentinelHubServer(CLIENT_ID, SECRET, [main, between], _rasters(files)) as server:
        first = _fetch(server, tmp_path / "s2", bands=("B04", "SCL"))
        requests = len(server.requests_to("/api/v1/process"))
        again = _fetch(server, tmp_path / "s2", bands=("B04", "SCL"))
        assert len(server.requests_to("/api/v1/process")) == requests
    assert not first.scenes[0].cached and again.scenes[0].cached
    local_item = tmp_path / "s2" / "SH_S2L2A_20200219" / "SH_S2L2A_20200219.json"
    assert "S2B_BETWEEN" in json.loads(local_item.read_text())["properties"]["farmcredit:catalog_ids"]
