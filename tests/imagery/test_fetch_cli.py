"""`farmcredit fetch` and `assess --imagery <remote>`: exit codes, messages, the manifest in run.json."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from conftest import vrt_of
from rasterio.windows import from_bounds
from servers import DATED_FIELD, Fault, SentinelHubServer, StacServer, dated_items

from farmcredit.imagery import open_imagery, read_window

SEASON = "2020-02-01/2020-02-29"
SECRET = "cli-s3cret-never-printed"


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farmcredit", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "300", **(env or {})}, cwd=cwd)  # messages on one line


@pytest.fixture
def parcels(tmp_path: Path) -> Path:
    path = tmp_path / "fields.geojson"
    gpd.GeoDataFrame(
        {"parcel_id": ["F1", "F2"], "borrower_id": ["B1", "B1"]},
        geometry=[shapely.box(-11.800, 25.150, -11.795, 25.155), shapely.box(-11.790, 25.152, -11.786, 25.157)],
        crs="EPSG:4326",
    ).to_file(path)
    return path


def test_fetch_writes_an_imagery_folder_and_says_what_it_fetched(
    synthetic_29rkh, parcels: Path, tmp_path: Path
) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server:
        done = _run("fetch", str(parcels), "--season", SEASON, "--stac-url", server.url, "--out", str(tmp_path / "s2"),
                    "--timeout", "5", "--retries", "1")
    assert done.returncode == 0, done.stderr
    assert "1 scenes 2020-02-19..2020-02-19" in done.stderr and "cloud cover 4-4%" in done.stderr
    manifest = json.loads((tmp_path / "s2" / "manifest.json").read_text())
    assert manifest["scenes"][0]["scene_id"] == "S2A_29RKH_20200219_0_L2A" and manifest["season"] == SEASON.split("/")


def test_fetch_refuses_a_stac_asset_that_is_a_gdal_vrt(synthetic_29rkh, parcels: Path, tmp_path: Path) -> None:
    """A band asset that is a VRT naming a local raster would copy that file into the download: opened only as a
    GeoTIFF, it is not, exit 2."""
    item, files = synthetic_29rkh
    item = json.loads(json.dumps(item))
    item["assets"]["red"]["href"] = "file:B04.vrt"
    vrt = tmp_path / "B04.vrt"
    vrt.write_text(vrt_of(files["B04.tif"]))
    with StacServer([item], {**files, "B04.vrt": vrt}) as server:
        done = _run("fetch", str(parcels), "--season", SEASON, "--stac-url", server.url, "--out", str(tmp_path / "s2"),
                    "--timeout", "5", "--retries", "1")
    assert done.returncode == 2, done.stderr
    assert "B04.vrt: cannot open band B04" in done.stderr and not list((tmp_path / "s2").rglob("B04.tif"))


def test_assess_fetches_a_stac_source_into_out_and_records_the_fetch(tmp_path: Path) -> None:
    """On 10 m tiles (assess refuses the 100 m stand-in of 29RKH: the models read 10 m pixels). The parcels' warnings
    are told once, by the run's own read (its config's currency offers a declared unit): the read for the area to fetch
    over told them too, without it."""
    items, files = dated_items(tmp_path / "cogs", ("2020-02-19",), clouds=(4.051854,))
    parcels = tmp_path / "fields.geojson"
    gpd.GeoDataFrame({"parcel_id": ["F1"], "borrower_id": ["B1"], "cultura": ["soja"]}, geometry=[DATED_FIELD],
                     crs="EPSG:32650").to_file(parcels)
    out = tmp_path / "results"
    with StacServer(items, files) as server:
        done = _run("assess", str(parcels), "--imagery", f"{server.url}/?collection=sentinel-2-l2a", "--season", SEASON,
                    "--out", str(out), "--model", "rule")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("named like a declared crop") == 1
    assert (out / "imagery" / "S2A_50SKA_20200219_0_L2A" / "B04.tif").exists()
    record = json.loads((out / "run.json").read_text())
    fetched = record["inputs"]["imagery"]["fetch"]
    assert fetched["scenes"][0]["cloud_cover"] == pytest.approx(4.051854) and fetched["totals"]["bytes_on_disk"] > 0
    assert [s["scene_id"] for s in record["inputs"]["imagery"]["scenes"]] == ["S2A_50SKA_20200219_0_L2A"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fetch", "--season", SEASON, "--out", "s2"], "give either PARCELS or --bbox"),
        (["fetch", "--bbox", "1,2,3", "--season", SEASON, "--out", "s2"], "is not W,S,E,N"),
        (["fetch", "--bbox", "", "--season", SEASON, "--out", "s2"], "--bbox '' is not W,S,E,N"),
        (["fetch", "--bbox", "1,2,3,4", "--season", "2020-02-30/2020-03-01", "--out", "s2"], "START/END"),
        (["assess", "{parcels}", "--imagery", "stac", "--out", "r", "--model", "rule"], "needs --season"),
        (["fetch", "--bbox", "1,2,3,4", "--season", SEASON, "--out", "{parcels}"],
         "fields.geojson is a file, not a folder"),
        (["fetch", "--bbox", "1,2,3,4", "--season", SEASON, "--out", "s2", "--collection", "sentinel-2-l1c"],
         "STAC collection sentinel-2-l1c is Level-1C (top-of-atmosphere reflectance); farmcredit needs Level-2A"),
    ],
    ids=["no-area", "bad-bbox", "empty-bbox", "bad-season", "remote-without-season", "out-a-file", "l1c-collection"],
)
def test_unusable_arguments_exit_2_with_a_message(parcels: Path, args: list[str], message: str,
                                                   tmp_path: Path) -> None:
    done = _run(*[arg.format(parcels=parcels) for arg in args], cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not {path.name for path in tmp_path.iterdir()} - {parcels.name}  # refused before writing anything


def _fields(path: Path, *boxes: tuple[float, float, float, float]) -> Path:
    gpd.GeoDataFrame({"parcel_id": [f"F{i}" for i in range(len(boxes))], "borrower_id": "B"},
                     geometry=[shapely.box(*box) for box in boxes], crs="EPSG:4326").to_file(path)
    return path


def test_fetches_into_one_folder_keep_each_others_imagery_and_a_damaged_scene_is_fetched_again(
    synthetic_29rkh, tmp_path: Path
) -> None:
    """Two batches of parcels fetched into one folder (no window of the second among the first's): both read clear on
    their date (assess refuses the 100 m stand-in of 29RKH: the models read 10 m pixels); a scene folder missing a
    band file (deleted, or a fetch killed while replacing it) is not taken as complete."""
    item, files = synthetic_29rkh
    first = _fields(tmp_path / "first.geojson", (-11.800, 25.150, -11.795, 25.155))
    second = _fields(tmp_path / "second.geojson", (-11.300, 24.500, -11.295, 24.505))
    folder, scene = tmp_path / "s2", "S2A_29RKH_20200219_0_L2A"

    def fetch(parcels: Path, *extra: str) -> dict:
        done = _run("fetch", str(parcels), "--season", SEASON, "--stac-url", server.url, "--out", str(folder),
                    "--timeout", "5", "--retries", "1", *extra)
        assert done.returncode == 0, done.stderr
        return json.loads((folder / "manifest.json").read_text())

    with StacServer([item], files) as server:
        fetch(first)
        assert fetch(second)["scenes"][0]["windows"] == 2
        assert fetch(first)["totals"]["scenes_downloaded"] == 0  # the first batch's window is still there
        bands = {path.stem for path in (folder / scene).glob("*.tif")}
        (folder / scene).rename(folder / f".partial-old-{scene}")  # as a fetch killed between its two renames
        assert fetch(first, "--bands", "B04,SCL")["totals"]["scenes_downloaded"] == 0  # put back, bands and all
        assert {path.stem for path in (folder / scene).glob("*.tif")} == bands
        assert not (folder / f".partial-old-{scene}").exists()
        (folder / scene / "B04.tif").unlink()
        assert fetch(first)["totals"]["scenes_downloaded"] == 1
        # Fewer bands asked, one of them new (B01): the folder keeps every band it holds, adds B01, and
        # the manifest names the bands written and the scene folders of earlier fetches.
        before = {path.stem for path in (folder / scene).glob("*.tif")}
        shutil.copytree(folder / scene, folder / "EARLIER")
        (folder / "EARLIER" / f"{scene}.json").rename(folder / "EARLIER" / "EARLIER.json")
        manifest = fetch(_fields(tmp_path / "third.geojson", (-11.60, 24.90, -11.595, 24.905)), "--bands", "B01,B04")
    held = {path.stem for path in (folder / scene).glob("*.tif")}
    assert before < held == {*before, "B01"} and set(manifest["bands"]) == held
    assert manifest["scenes"][0]["windows"] == 3
    assert manifest["earlier_scenes"] == ["EARLIER"]
    shutil.rmtree(folder / "EARLIER")
    imagery = open_imagery(folder)
    for parcels in (first, second):
        outline = gpd.read_file(parcels).to_crs(imagery.crs).total_bounds
        cube = read_window(imagery, from_bounds(*outline, transform=imagery.transform).round_offsets().round_lengths(),
                           ("B04", "B08"))
        assert cube.dates == (date(2020, 2, 19),) and cube.clear.all()


def test_an_empty_search_exits_2_naming_the_api(synthetic_29rkh, parcels: Path, tmp_path: Path) -> None:
    item, files = synthetic_29rkh
    with StacServer([item], files) as server:
        done = _run("fetch", str(parcels), "--season", "2021-01-01/2021-01-31", "--stac-url", server.url,
                    "--out", str(tmp_path / "s2"))
    assert done.returncode == 2 and f"{server.url}: no sentinel-2-l2a scene" in done.stderr


@pytest.mark.parametrize("secret", [SECRET, "wrong-" + SECRET], ids=["good", "wrong"])
def test_sentinelhub_endpoints_from_the_config_profile_credentials_from_the_environment(
    synthetic_29rkh, parcels: Path, tmp_path: Path, secret: str
) -> None:
    item, files = synthetic_29rkh
    feature = {"type": "Feature", "id": "S2A_MSIL2A_20200219T112111_T29RKH", "geometry": item["geometry"],
               "properties": {"datetime": item["properties"]["datetime"], "eo:cloud_cover": 4.05}}
    bands = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "SCL")
    with SentinelHubServer("cli-client", SECRET, [feature], {b: files[f"{b}.tif"] for b in bands}) as server:
        config = tmp_path / "config" / "sentinelhub" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'[default-profile]\nsh_base_url = "{server.url}"\nsh_token_url = "{server.token_url}"\n')
        env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "SH_CLIENT_ID": "cli-client", "SH_CLIENT_SECRET": secret,
               # oauthlib refuses a plain-http token URL otherwise; only ever set in tests.
               "OAUTHLIB_INSECURE_TRANSPORT": "1"}
        done = _run("fetch", str(parcels), "--season", SEASON, "--source", "sentinelhub", "--out",
                    str(tmp_path / "s2"), "--timeout", "5", "--retries", "1", env=env)
    if secret == SECRET:
        assert done.returncode == 0, done.stderr
        assert "1 downloaded" in done.stderr and (tmp_path / "s2" / "SH_S2L2A_20200219" / "B04.tif").exists()
    else:
        assert done.returncode == 2 and "refused the credentials of OAuth client 'cli-client'" in done.stderr
        assert "Traceback" not in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_two_years_fetched_into_one_folder_are_assessed_a_season_at_a_time(tmp_path: Path) -> None:
    """fetch takes a --season of two years; assess refuses the folder without a --season of one (the crop calendars
    are days of the year: the second year's dates would count as more dates of the first's season)."""
    items, files = dated_items(tmp_path / "cogs", ("2023-03-15", "2024-03-15"))
    parcels = tmp_path / "fields.geojson"
    gpd.GeoDataFrame({"parcel_id": ["F1"], "borrower_id": ["B1"]}, geometry=[DATED_FIELD],
                     crs="EPSG:32650").to_file(parcels)
    with StacServer(items, files) as server:
        done = _run("fetch", str(parcels), "--stac-url", server.url, "--season", "2023-01-01/2024-12-31", "--out",
                    str(tmp_path / "s2"), "--timeout", "5", "--retries", "1")
    assert done.returncode == 0, done.stderr
    assert "2 scenes 2023-03-15..2024-03-15" in done.stderr
    assess = ("assess", str(parcels), "--imagery", str(tmp_path / "s2"), "--model", "rule", "--out")
    done = _run(*assess, str(tmp_path / "both"))
    assert done.returncode == 2 and "holds dates from 2023-03-15 to 2024-03-15, more than one season" in done.stderr
    done = _run(*assess, str(tmp_path / "2024"), "--season", "2024-01-01/2024-12-31")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "2024" / "run.json").read_text())
    assert [scene["scene_id"] for scene in record["inputs"]["imagery"]["scenes"]] == ["S2A_50SKA_20240315_0_L2A"]


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_during_a_stalled_cog_read_stops_the_fetch(tmp_path: Path, stop: int, code: int) -> None:
    """GDAL logs a read's timeout through rasterio's callback, where Python code first runs after a Ctrl-C: the
    KeyboardInterrupt raised there was printed as "Exception ignored" and dropped, and the fetch carried on (as
    SIGTERM's would be, now that the CLI handles it)."""
    items, files = dated_items(tmp_path / "cogs", ("2024-03-05", "2024-03-15"))
    parcels = tmp_path / "fields.geojson"
    gpd.GeoDataFrame({"parcel_id": ["F1"]}, geometry=[DATED_FIELD], crs="EPSG:32650").to_file(parcels)
    with StacServer(items, files) as server:
        stalled = f"{server.files_path}S2A_50SKA_20240315_0_L2A_B08.tif"
        server.fail(stalled, *[Fault(hang=True)] * 10)
        fetch = subprocess.Popen(
            [sys.executable, "-m", "farmcredit", "fetch", str(parcels), "--stac-url", server.url, "--season",
             "2024-03-01/2024-03-31", "--out", str(tmp_path / "s2"), "--timeout", "5", "--retries", "0"],
            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "300"})
        while not server.requests_to(stalled) and fetch.poll() is None:
            time.sleep(0.05)
        fetch.send_signal(stop)
        stderr = fetch.communicate(timeout=120)[1]
    assert fetch.returncode == code, stderr
    assert "Exception ignored" not in stderr and "Traceback" not in stderr
    assert not (tmp_path / "s2" / "S2A_50SKA_20240315_0_L2A").exists()
    assert "unfinished_fetch" in json.loads((tmp_path / "s2" / "manifest.json").read_text())


def test_gdal_reads_defer_a_signals_handler_to_run_once_between_calls_and_leave_an_ignored_one_ignored() -> None:
    """A program's own SIGTERM handler (a graceful-shutdown flag) was run twice, and once as a KeyboardInterrupt;
    an ignored Ctrl-C (a background job of a script) ended in a TypeError."""
    from farmcredit.errors import Terminated, terminate
    from farmcredit.imagery._gdal import interrupt_between_gdal_calls

    class Shutdown(Exception):
        pass

    calls: list[int] = []

    def stop(signum: int, _: object) -> None:
        calls.append(signum)
        if len(calls) > 1:
            raise Shutdown

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGTERM, stop)
        with interrupt_between_gdal_calls() as interrupt:
            os.kill(os.getpid(), signal.SIGTERM)
            assert calls == []  # not run inside a read, where what it raises is dropped
            interrupt.check()
        assert calls == [signal.SIGTERM]  # once, at the check, and not again on leaving
        with pytest.raises(Shutdown), interrupt_between_gdal_calls():
            os.kill(os.getpid(), signal.SIGTERM)  # raised on leaving, as it would be between reads
        for handler, raised in ((terminate, Terminated), (signal.default_int_handler, KeyboardInterrupt)):
            signum = signal.SIGTERM if handler is terminate else signal.SIGINT
            signal.signal(signum, handler)
            with pytest.raises(raised), interrupt_between_gdal_calls() as interrupt:
                os.kill(os.getpid(), signum)
                interrupt.check()
            assert signal.getsignal(signum) is handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with interrupt_between_gdal_calls() as interrupt:
            os.kill(os.getpid(), signal.SIGINT)
            interrupt.check()  # ignored, as it was
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # "die on Ctrl-C": left to the system, not made Python's
        with interrupt_between_gdal_calls():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
