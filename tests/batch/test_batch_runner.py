"""`farmcredit batch`: equal to `assess` row for row, resumable after SIGKILLs, failures recorded."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import torch
from click.testing import CliRunner

from farmcredit.batch.runner import measure_partition
from farmcredit.config import load_config
from farmcredit.outputs.tables import parquet_typed
from farmcredit.pipeline import run_assessment

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_tiles"
NO_LOCAL_GPU = r"--device cuda \(device= in Python\): (torch sees no CUDA device|0 local GPU worker)"


@pytest.fixture(scope="module")
def small_windows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default config with 64 px windows: the 512 px sample becomes about 25 partitions of 20+ parcels."""
    path = tmp_path_factory.mktemp("config") / "small_windows.yaml"
    path.write_text((REPO / "configs" / "default.yaml").read_text().replace("chunk_px: 512", "chunk_px: 64"))
    assert load_config(path).imagery.chunk_px == 64
    return path


@pytest.fixture(scope="module")
def assessed(small_windows: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """`assess`'s results on the sample, through Parquet as `write_outputs` writes them.

    The batch mechanics tests use the cheap rule; the CNN through batch is tested with GPU workers below.
    """
    path = tmp_path_factory.mktemp("assess") / "results.parquet"
    result = run_assessment(SAMPLE / "parcels.geojson", SAMPLE / "imagery", config=small_windows, model="rule")
    result.parcels.to_parquet(path, index=False)
    return gpd.read_parquet(path)


def _batch_command(out: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "farmcredit", "batch", str(SAMPLE / "parcels.geojson"), "--imagery",
            str(SAMPLE / "imagery"), "--out", str(out), "--config", str(config), "--workers", "2",
            "--partition-parcels", "20", "--model", "rule", "--quiet"]


def _run_batch(out: Path, config: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI in its own process group and kill the whole group (workers too) whatever happens."""
    process = subprocess.Popen(_batch_command(out, config), env={**os.environ, **env}, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@contextlib.contextmanager
def _slowed_batch(out: Path, config: Path, stderr: int = subprocess.DEVNULL) -> Iterator[subprocess.Popen]:
    """A batch run in its own process group, each partition slowed by 0.5 s so it is surely stopped part-way
    through: given once it has written three partition files (or after 60 s), its group killed on leaving."""
    process = subprocess.Popen(_batch_command(out, config), start_new_session=True,
                               env={**os.environ, "FARMCREDIT_BATCH_TEST_DELAY_S": "0.5"},
                               stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "partitions").glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield process
    finally:
        _kill_group(process)


def test_batch_in_process_equals_assess_and_reuses_partitions(small_windows: Path, assessed: pd.DataFrame,
                                                              tmp_path: Path) -> None:
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=20)
    # Left by other inputs, an older farmcredit (plain Parquet, manifest.json) or a killed writer.
    leftovers = [tmp_path / "partitions" / name for name in
                 ("part-0123456789abcdef.parquet", "manifest.json", "part-x.parquet.1.tmp", ".part-y.parquet.2.tmp")]
    leftovers[0].parent.mkdir()
    pd.DataFrame({"row": [0]}).to_parquet(leftovers[0])
    for path in leftovers[1:]:
        path.write_text("{}")
    first = run()
    assert not any(path.exists() for path in leftovers)
    assert len(gpd.read_parquet(tmp_path / "partitions")) == len(assessed)
    first.assessment.parcels.to_parquet(tmp_path / "batch.parquet", index=False)
    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "batch.parquet"), assessed)
    assert first.partitions > 10 and first.reused == 0 and not first.failed
    again = run()
    assert again.reused == again.partitions == first.partitions
    pd.testing.assert_frame_equal(again.assessment.parcels, first.assessment.parcels)
    # The first parcel moved to the end of the file: every row shifts, yet only its partition is measured anew.
    parcels = gpd.read_file(SAMPLE / "parcels.geojson")
    parcels.iloc[list(range(1, len(parcels))) + [0]].to_file(tmp_path / "moved.geojson")
    moved = run_batch(tmp_path / "moved.geojson", SAMPLE / "imagery", tmp_path, model=model, config=small_windows,
                      workers=2, processes=False, parcels_per_partition=20)
    assert moved.reused >= moved.partitions - 1 and moved.partitions == first.partitions
    by_id = [frame.drop(columns="geometry").set_index("parcel_id").sort_index()
             for frame in (moved.assessment.parcels, first.assessment.parcels)]
    pd.testing.assert_frame_equal(*by_id)


def test_an_outline_with_a_vertex_typed_kilometres_off_is_in_no_partition_and_batch_equals_assess(
        small_windows: Path, tmp_path: Path) -> None:
    """A PARCEL_TOO_LARGE outline is drawn, never measured: it joins no partition nor widens the rasters' window, in
    batch as in assess."""
    from farmcredit.batch import run_batch

    parcels = gpd.read_file(SAMPLE / "parcels.geojson")
    zone = parcels.estimate_utm_crs()
    x, y = parcels.to_crs(zone).geometry.iloc[0].exterior.coords[0]
    stray = shapely.Polygon([(x, y), (x + 30, y), (x + 10_000, y - 10_000), (x, y - 30)])
    typo = gpd.GeoDataFrame({"parcel_id": ["TYPO"], "borrower_id": ["Z"]}, geometry=[stray], crs=zone)
    path = tmp_path / "parcels.gpkg"
    pd.concat([parcels, typo.to_crs(parcels.crs)], ignore_index=True).to_file(path)
    assessed = run_assessment(path, SAMPLE / "imagery", config=small_windows, model="rule")
    without = run_assessment(SAMPLE / "parcels.geojson", SAMPLE / "imagery", config=small_windows, model="rule")
    batch = run_batch(path, SAMPLE / "imagery", tmp_path / "out", model="rule", config=small_windows, workers=2,
                      processes=False, parcels_per_partition=20)
    pd.testing.assert_frame_equal(batch.assessment.parcels, assessed.parcels)
    assert batch.assessment.parcels["reason"].iloc[-1] == "PARCEL_TOO_LARGE"
    assert batch.assessment.parcels.geometry.iloc[-1] is not None
    assert len(gpd.read_parquet(tmp_path / "out" / "partitions")) == len(parcels)
    assert batch.assessment.grid_window == assessed.grid_window == without.grid_window


def test_partitions_say_how_they_were_measured_and_device_cpu_measures_those_in_another_precision_again(
        small_windows: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from farmcredit.audit import decision_records
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=100)
    first = run()
    path = tmp_path / "partitions" / "_manifest.json"
    manifest = json.loads(path.read_text())
    assert [entry["inference"] for entry in manifest["partitions"]] == [[{"device": "cpu", "precision": "float32"}]] * (
        first.partitions)
    # As a run on GPU workers would have left it (the rule itself never runs there), and a driver killed between a
    # partition's file and its manifest entry.
    manifest["partitions"][0]["inference"] = [{"device": "cuda", "precision": "bfloat16"}]
    manifest["partitions"][1].update(status="pending", inference=None)
    path.write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="farmcredit.batch.runner"):
        mixed = run()
    assert mixed.reused == mixed.partitions - 1 and mixed.partitions == first.partitions
    cropland = mixed.assessment.record["models"]["cropland"]
    assert cropland["inference"] == [{"device": "cpu", "precision": "float32", "partitions": first.partitions - 1},
                                     {"device": "cuda", "precision": "bfloat16", "partitions": 1}]
    assert (cropland["device"], cropland["precision"]) == ("cpu + cuda", "bfloat16 + float32")
    assert "measured in bfloat16 and float32" in caplog.text
    # A decision record names the devices and precisions, not the run's partition counts nor its area interval.
    assessment = mixed.assessment
    [decision, *_] = decision_records(assessment.parcels, assessment.record, assessment.overlaps,
                                      assessment.products, assessment.clear, assessment.imagery.scenes)
    assert decision["models"]["cropland"] == {k: v for k, v in cropland.items()
                                              if k not in ("inference", "area_interval")}
    caplog.clear()
    again = run(device="cpu")
    assert again.reused == again.partitions - 1 and "measured in" not in caplog.text
    assert again.assessment.record["models"]["cropland"]["inference"] == [
        {"device": "cpu", "precision": "float32", "partitions": again.partitions}]
    pd.testing.assert_frame_equal(again.assessment.parcels, first.assessment.parcels)


def test_batch_survives_sigkill_of_the_driver_and_of_a_worker(small_windows: Path, assessed: pd.DataFrame,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    partitions = out / "partitions"
    with _slowed_batch(out, small_windows):
        pass  # killed, the driver and its workers, once three partitions are written
    written = len(list(partitions.glob("part-*.parquet")))
    manifest = json.loads((partitions / "_manifest.json").read_text())
    assert 3 <= written < len(manifest["partitions"]), "the kill should land part-way through"
    assert not (out / "results.parquet").exists()

    # The rerun also loses one worker to SIGKILL mid-task; Dask reruns its task elsewhere.
    marker = tmp_path / "worker-killed"
    done = _run_batch(out, small_windows, {"FARMCREDIT_BATCH_TEST_KILL_WORKER": str(marker)})
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    results = gpd.read_parquet(out / "results.parquet")
    assert not results["parcel_id"].duplicated().any()
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))  # its season: the dates read, as assess's
    pd.testing.assert_frame_equal(results, parquet_typed(assessed, record))  # written as write_outputs writes it
    manifest = json.loads((partitions / "_manifest.json").read_text())
    assert manifest["summary"] == {"done": len(manifest["partitions"]), "failed": 0, "pending": 0}
    assert not list(partitions.glob(".*.tmp"))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_records_every_finished_partition_in_the_manifest_before_exiting(
        stop: signal.Signals, small_windows: Path, assessed: pd.DataFrame, tmp_path: Path) -> None:
    """Stopped as Kubernetes or `docker stop` (SIGTERM) or Ctrl-C stop it, within the 5 s between the manifest's
    rewrites: the manifest names every part file there, and a rerun reuses them all, measuring none twice."""
    out = tmp_path / "out"
    partitions = out / "partitions"
    with _slowed_batch(out, small_windows) as process:
        process.send_signal(stop)  # the driver alone, as a container's PID 1 gets it
        assert process.wait(60) == {signal.SIGTERM: 143, signal.SIGINT: 130}[stop]
    manifest = json.loads((partitions / "_manifest.json").read_text())
    done = {entry["id"] for entry in manifest["partitions"] if entry["status"] == "done"}
    files = {path.name.removeprefix("part-").removesuffix(".parquet") for path in partitions.glob("part-*.parquet")}
    assert 3 <= len(files) < len(manifest["partitions"]) and done == files

    again = _run_batch(out, small_windows, {})
    assert again.returncode == 0, again.stderr
    manifest = json.loads((partitions / "_manifest.json").read_text())
    # Each partition was submitted once by the stopped run: those done then are reused, the rest measured again.
    assert {entry["id"] for entry in manifest["partitions"] if entry["attempts"] == 1} == done
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))  # its season: the dates read, as assess's
    pd.testing.assert_frame_equal(gpd.read_parquet(out / "results.parquet"), parquet_typed(assessed, record))


def test_ctrl_c_at_a_terminal_stops_a_local_batch_without_its_workers_tracebacks(small_windows: Path,
                                                                                  tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches its whole process group: each local worker printed its CancelledError and
    KeyboardInterrupt tracebacks (66 lines) before the driver said "aborted"."""
    with _slowed_batch(tmp_path / "out", small_windows, stderr=subprocess.PIPE) as process:
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "aborted" in stderr and "Traceback" not in stderr, stderr
    assert not list((tmp_path / "out" / "partitions").glob(".*.tmp"))


_INTERRUPTED_START = """
import os, signal, sys
from distributed import Nanny
from farmcredit.batch.runner import local_cluster

start_unsafe = Nanny.start_unsafe

async def start_then_interrupt(self):
    started = await start_unsafe(self)
    os.killpg(0, signal.SIGINT)  # Ctrl-C at a terminal, as the cluster starts, its first worker process up
    return started

Nanny.start_unsafe = start_then_interrupt
try:
    local_cluster(2).close()
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_while_the_local_cluster_starts_stops_the_driver_without_its_workers_tracebacks() -> None:
    """The worker processes started with SIGINT ignored, and so, silently, did the driver while they started: a Ctrl-C
    then was dropped and the run went on."""
    process = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_START], start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        _kill_group(process)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr


def test_an_interrupted_local_batch_leaves_no_partition_file_its_workers_were_writing(small_windows: Path,
                                                                                      tmp_path: Path) -> None:
    """README says an interrupted run's temporary files are removed: .part-<id>.parquet.<uuid>.tmp files stayed."""
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    def interrupt(done: int, total: int) -> None:
        if 0 < done < total:  # as a worker writes another partition's file
            (tmp_path / "partitions" / ".part-0123456789abcdef.parquet.0a1b.tmp").write_bytes(b"half a file")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, config=small_windows,
                  model=load_cropland_model("rule"), workers=1, processes=False, parcels_per_partition=200,
                  progress=interrupt)
    assert list((tmp_path / "partitions").glob("part-*.parquet"))
    assert not list((tmp_path / "partitions").glob(".*.tmp"))


def test_a_failing_partition_is_retried_then_recorded_and_the_run_exits_3(small_windows: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import farmcredit.batch
    import farmcredit.batch.runner
    from farmcredit.cli import cli

    real_measure = farmcredit.batch.runner.measure_windows

    def measure_or_fail(geoms, imagery, config, model, windows, *args, **kwargs):
        if windows[0][0].row_off < 64 and windows[0][0].col_off < 64:  # the partition at the grid's corner
            raise RuntimeError("simulated corrupt window")
        return real_measure(geoms, imagery, config, model, windows, *args, **kwargs)

    # Threads of this process, so the patched measurement is the one the workers run.
    monkeypatch.setattr(farmcredit.batch.runner, "measure_windows", measure_or_fail)
    monkeypatch.setattr(farmcredit.batch, "run_batch", functools.partial(farmcredit.batch.run_batch, processes=False))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, _batch_command(out, small_windows)[3:])
    assert result.exit_code == 3, result.output
    manifest = json.loads((out / "partitions" / "_manifest.json").read_text())
    failed = [p for p in manifest["partitions"] if p["status"] == "failed"]
    assert 1 <= len(failed) < len(manifest["partitions"]) and manifest["summary"]["failed"] == len(failed)
    assert all(p["attempts"] == 3 and p["error"] == "RuntimeError: simulated corrupt window" for p in failed)
    assert f"{len(failed)} partitions failed" in result.output
    assert f"{len(failed)} x RuntimeError: simulated corrupt window" in result.output
    results = gpd.read_parquet(out / "results.parquet")
    lost = results["reason_all"].str.contains("MEASUREMENT_FAILED")
    assert lost.sum() == sum(p["parcels"] for p in failed) and len(results) == 752
    assert (results.loc[lost, "status"] == "error").all() and (results.loc[~lost, "status"] == "ok").any()


def _manifest_disk_fills(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """Make every rename onto ``_manifest.json`` after the first ``after`` fail as a full disk does."""
    real_replace, renames = os.replace, []

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "_manifest.json":
            renames.append(dst)
            if len(renames) > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("after", [0, 1])
def test_a_disk_that_fills_while_batch_writes_its_manifest_exits_2_saying_the_free_space(
        after: int, small_windows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    """Full from the start, or once measuring began: a traceback and exit 1, where README promises exit 2."""
    import farmcredit.batch
    from farmcredit.cli import main

    monkeypatch.setattr(farmcredit.batch, "run_batch", functools.partial(farmcredit.batch.run_batch, processes=False))
    _manifest_disk_fills(monkeypatch, after)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["farmcredit", *_batch_command(out, small_windows)[3:]])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    assert re.search(r"_manifest.json stopped: No space left on device \([0-9,.]+ MiB free", capsys.readouterr().err)
    assert not list((out / "partitions").glob(".*.tmp"))


def test_an_interrupt_whose_manifest_the_full_disk_refuses_is_still_the_interrupt(
        small_windows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest written as the run stops failed too, and its OSError took the place of the Ctrl-C."""
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    def interrupt(done: int, total: int) -> None:
        if 0 < done < total:
            raise KeyboardInterrupt

    _manifest_disk_fills(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, config=small_windows,
                  model=load_cropland_model("rule"), workers=1, processes=False, parcels_per_partition=200,
                  progress=interrupt)


def test_corrupt_imagery_masks_its_dates_in_the_partitions_it_touches_and_the_rest_is_unaffected(
        small_windows: Path, tmp_path: Path) -> None:
    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE / "imagery", imagery)
    band = sorted(imagery.glob("*/B08.tif"))[1]
    band.write_bytes(band.read_bytes()[: band.stat().st_size * 2 // 3])  # a download cut short
    expected = run_assessment(SAMPLE / "parcels.geojson", imagery, config=small_windows, model="rule")
    # As write_outputs writes it.
    parquet_typed(expected.parcels, expected.record).to_parquet(tmp_path / "assess.parquet", index=False)
    command = _batch_command(tmp_path / "out", small_windows)
    command[command.index("--imagery") + 1] = str(imagery)
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    results = gpd.read_parquet(tmp_path / "out" / "results.parquet")
    pd.testing.assert_frame_equal(results, gpd.read_parquet(tmp_path / "assess.parquet"))
    hit = results["reason_all"].str.contains("IMAGERY_READ_ERROR")
    assert 0 < hit.sum() < len(results) and (results.loc[~hit, "status"] == "ok").any()
    partitions = gpd.read_parquet(tmp_path / "out" / "partitions")  # the partitions as one GeoParquet dataset
    assert partitions["read_error"].sum() == hit.sum() and partitions.crs is not None
    # The file is named in run.json, also by a rerun (which measures again the partitions whose reads failed).
    assert " ".join(done.stderr.split()).count("1 image file(s) could not be read") == 1  # the library's, once
    assert "B08.tif" in " ".join(done.stderr.split())
    again = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0 and "B08.tif" in " ".join(again.stderr.split())
    [failure] = json.loads((tmp_path / "out" / "run.json").read_text())["read_failures"]
    assert failure["file"] == str(band) and failure["message"]


def _garbled_tile(tmp_path: Path) -> tuple[Path, Path, Callable[[], None]]:
    """A copy of the sample's imagery with one 256 px tile of a B04 (rows 256-319, columns 0-255) garbled in place,
    the file's size and time kept (only its reading fails, as on a network file system's hiccup): the imagery
    folder, the band and a function that makes it whole again."""
    import rasterio

    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE / "imagery", imagery)
    band = sorted(imagery.glob("*/B04.tif"))[3]
    whole, stat = band.read_bytes(), band.stat()
    with rasterio.open(band) as source:
        offset, size = (int(source.get_tag_item(f"BLOCK_{key}_0_1", "TIFF", bidx=1)) for key in ("OFFSET", "SIZE"))
    with band.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * size)
    os.utime(band, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    def mend() -> None:
        band.write_bytes(whole)
        os.utime(band, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    return imagery, band, mend


def test_a_partition_whose_reads_failed_is_measured_again_so_a_passing_failure_is_not_kept(
        small_windows: Path, assessed: pd.DataFrame, tmp_path: Path) -> None:
    """A block of a band unreadable during one run (a network file system's hiccup), then whole again with the
    same size and time: the next run measures those partitions again and equals assess on the whole files."""
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    imagery, band, mend = _garbled_tile(tmp_path)
    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", imagery, tmp_path / "out", model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=20)
    first = run()
    hit = first.assessment.parcels["reason_all"].str.contains("IMAGERY_READ_ERROR")
    assert 0 < hit.sum() < len(hit)
    mend()
    again = run()
    assert 0 < again.reused < again.partitions == first.partitions
    again.assessment.parcels.to_parquet(tmp_path / "again.parquet", index=False)
    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "again.parquet"), assessed)


def test_a_read_failure_a_twin_product_stood_in_for_is_named_as_by_assess_and_costs_no_rerun(
        small_windows: Path, tmp_path: Path) -> None:
    """A broken copy of a scene whose twin (another product of the date) reads: no parcel loses the date, run.json
    names the file, as assess's does, also when a rerun reuses the partitions, which it measured again for nothing."""
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE / "imagery", imagery)
    twin = imagery / "S2A_50SKB_20240520_1_L2A"
    shutil.copytree(imagery / "S2A_50SKB_20240520_0_L2A", twin)
    band = twin / "B04.tif"
    band.write_bytes(band.read_bytes()[: band.stat().st_size * 9 // 10])  # a download cut short
    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", imagery, tmp_path / "out", model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=20)
    first, again = run(), run()
    assessed = run_assessment(SAMPLE / "parcels.geojson", imagery, config=small_windows, model=model)
    assert [failure["file"] for failure in assessed.record["read_failures"]] == [str(band)]
    for result in (first, again):
        assert result.assessment.record["read_failures"] == assessed.record["read_failures"]
        assert not result.assessment.parcels["reason_all"].str.contains("IMAGERY_READ_ERROR").any()
    assert again.reused == again.partitions == first.partitions
    pd.testing.assert_frame_equal(again.assessment.parcels, first.assessment.parcels)


def test_a_part_file_that_will_not_read_back_whole_is_measured_again(small_windows: Path, assessed: pd.DataFrame,
                                                                     tmp_path: Path) -> None:
    """Its data pages damaged, its footer whole (so its row count reads right): measured again, not a traceback."""
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=20)
    first = run()
    part = sorted((tmp_path / "partitions").glob("part-*.parquet"))[0]
    data = bytearray(part.read_bytes())
    data[4:len(data) // 2] = b"\x00" * (len(data) // 2 - 4)
    part.write_bytes(bytes(data))
    again = run()
    assert again.reused == first.partitions - 1 and not again.failed
    again.assessment.parcels.to_parquet(tmp_path / "again.parquet", index=False)
    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "again.parquet"), assessed)


def test_finished_partitions_another_partition_parcels_discards_are_warned_of_before_they_go(
        small_windows: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A rerun at another --partition-parcels groups the parcels otherwise: it removed the earlier run's finished
    files without a word (24 of 25 at 1000 then 1500 on 32,000 parcels)."""
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, config=small_windows,
                            model=load_cropland_model("rule", load_config(small_windows).cropland_rule), workers=2,
                            processes=False)
    run(parcels_per_partition=20)
    earlier = {path.name for path in (tmp_path / "partitions").glob("part-*.parquet")}
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        coarser = run(parcels_per_partition=60)
    kept = {path.name for path in (tmp_path / "partitions").glob("part-*.parquet")}
    said = [record.getMessage() for record in caplog.records if "finished partition(s)" in record.getMessage()]
    assert len(said) == 1 and len(earlier - kept) > 10
    assert (f"{len(earlier - kept)} finished partition(s) of an earlier run are not among this run's and are removed "
            f"({coarser.reused} reused): they were cut at --partition-parcels 20, this run at 60") in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assert run(parcels_per_partition=60).reused == coarser.partitions  # nothing of another plan left to remove
    assert "finished partition(s)" not in caplog.text


def test_a_usage_error_found_at_the_cluster_leaves_the_finished_partitions(small_windows: Path,
                                                                           tmp_path: Path) -> None:
    from farmcredit.batch import run_batch
    from farmcredit.errors import InputError
    from farmcredit.segmentation import load_cropland_model

    rule = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, config=small_windows,
                            workers=1, processes=False, parcels_per_partition=200)
    run(model=rule)
    finished = sorted((tmp_path / "partitions").glob("part-*.parquet"))
    with pytest.raises(InputError, match=NO_LOCAL_GPU):
        run(model=load_cropland_model("cnn", device="cpu"), device="cuda")  # forgot --model rule
    assert sorted((tmp_path / "partitions").glob("part-*.parquet")) == finished


def test_an_output_folder_that_cannot_be_written_is_a_usage_error(small_windows: Path, tmp_path: Path) -> None:
    from farmcredit.batch import run_batch
    from farmcredit.errors import InputError
    from farmcredit.segmentation import load_cropland_model

    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "out"
    # Named as given, not as its partitions folder.
    with pytest.raises(InputError, match=f"folder {out} is not a folder that can be made"):
        run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", out, config=small_windows,
                  model=load_cropland_model("rule"), workers=1, processes=False)


def test_an_input_that_write_outputs_would_overwrite_is_refused_before_any_work(small_windows: Path,
                                                                               tmp_path: Path) -> None:
    """In Python, run_batch then write_outputs overwrote a parcels file named results.gpkg in ``out``."""
    from farmcredit.batch import run_batch
    from farmcredit.errors import InputError

    clash = tmp_path / "results.gpkg"
    gpd.read_file(SAMPLE / "parcels.geojson").head(5).to_file(clash)
    before = clash.read_bytes()
    with pytest.raises(InputError, match="parcels .* is results.gpkg, one of the files this run writes"):
        run_batch(clash, SAMPLE / "imagery", tmp_path, config=small_windows, model="rule", workers=1, processes=False)
    assert clash.read_bytes() == before and not (tmp_path / "partitions").exists()


def test_an_out_under_the_home_folder_written_as_tilde_gets_the_partitions(small_windows: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """run_batch(out="~/x") from Python put its partitions (and their lock) under ./~/x."""
    from farmcredit.batch import run_batch
    from farmcredit.batch.partitions import MANIFEST

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    result = run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", "~/x", config=small_windows, model="rule",
                       workers=1, processes=False, parcels_per_partition=200)
    assert result.partitions > 0 and not result.failed
    assert (tmp_path / "home" / "x" / "partitions" / MANIFEST).is_file()
    assert not (tmp_path / "~").exists()


def test_a_second_batch_into_a_folder_a_batch_is_writing_is_refused(small_windows: Path, tmp_path: Path,
                                                                     lock_held_elsewhere) -> None:
    """Another process holds the folder (as a running batch does): run_batch refuses rather than remove its files;
    once that process is gone (killed here), the folder is free."""
    from farmcredit.batch import run_batch
    from farmcredit.batch.runner import LOCK_NAME
    from farmcredit.errors import InputError
    from farmcredit.segmentation import load_cropland_model

    (tmp_path / "partitions").mkdir()
    holder = lock_held_elsewhere(tmp_path / "partitions" / LOCK_NAME)
    batch = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, config=small_windows,
                              model=load_cropland_model("rule"), workers=1, processes=False)
    with pytest.raises(InputError, match="another farmcredit batch is writing there"):
        batch()
    holder.kill()
    holder.wait()
    result = batch()
    assert result.partitions > 0 and not result.failed


def test_auto_memory_shared_too_thin_is_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from farmcredit.batch.runner import worker_memory

    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assert worker_memory(4, "auto", 16 << 30) == 4 << 30 and not caplog.text
        assert worker_memory(16, "auto", 8 << 30) == 512 << 20 and worker_memory(16, "2GiB", 8 << 30) == "2GiB"
    assert "16 workers share this machine's memory at 0.50 GiB each, under 1 GiB" in caplog.text


def test_two_local_clusters_on_one_machine_start_without_a_port_warning() -> None:
    import warnings

    from farmcredit.batch.runner import local_cluster

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clusters = [local_cluster(1, processes=False) for _ in range(2)]
        for cluster in clusters:
            cluster.close()
    assert not [w for w in caught if "already in use" in str(w.message)]


def test_every_worker_is_seen_where_dask_lists_five_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """distributed 2025.x's ``scheduler_info()`` listed 5 workers unless asked: a GPU worker listed sixth was missed."""
    from distributed import Client

    from farmcredit.batch.placement import cluster_has_gpu, cpu_workers, every_worker
    from farmcredit.batch.runner import local_cluster

    listed = Client.scheduler_info
    monkeypatch.setattr(Client, "scheduler_info", lambda self, n_workers=5, **kw: listed(self, n_workers, **kw))
    with local_cluster(6, gpu_workers=1, processes=False) as cluster, Client(cluster) as client:
        client.wait_for_workers(7, timeout=60)
        assert len(client.scheduler_info()["workers"]) == 5  # as that dask lists them
        info = every_worker(client)
        assert len(info["workers"]) == 7 and cluster_has_gpu(info) and len(cpu_workers(info)) == 6


def test_the_cli_holds_the_folder_from_measuring_to_its_last_output(small_windows: Path, tmp_path: Path) -> None:
    from farmcredit.batch.runner import exclusive
    from farmcredit.locking import writable_folder

    with exclusive(writable_folder(tmp_path / "out" / "partitions")):
        done = subprocess.run(_batch_command(tmp_path / "out", small_windows), capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 2 and "another farmcredit batch is writing there" in " ".join(done.stderr.split())
    assert not (tmp_path / "out" / "results.gpkg").exists()


def test_partitions_fail_rather_than_wait_forever_on_a_local_cluster_without_workers(
        small_windows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Its workers died or could not load the task: what is left fails, with the reason, instead of hanging."""
    from distributed import LocalCluster

    from farmcredit.batch import run_batch, runner
    from farmcredit.segmentation import load_cropland_model

    monkeypatch.setattr(runner, "WORKER_CHECK_S", 0.2)
    monkeypatch.setattr(runner, "NO_WORKER_TIMEOUT_S", 1.0)
    monkeypatch.setattr(runner, "local_cluster",
                        lambda *args: LocalCluster(n_workers=0, processes=False, dashboard_address=None))
    parcels = gpd.read_file(SAMPLE / "parcels.geojson")
    stray = parcels.iloc[[0]].assign(parcel_id="STRAY", geometry=parcels.geometry.iloc[[0]].translate(xoff=1.0))
    pd.concat([parcels, stray]).to_file(tmp_path / "parcels.gpkg")
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        result = run_batch(tmp_path / "parcels.gpkg", SAMPLE / "imagery", tmp_path / "out", config=small_windows,
                           model=load_cropland_model("rule"), parcels_per_partition=200)
    assert result.failed and set(result.failed.values()) == {runner.NO_WORKER_ERROR}
    reasons = result.assessment.parcels.set_index("parcel_id")["reason_all"]
    assert reasons.drop("STRAY").str.contains("MEASUREMENT_FAILED").all() and "OUTSIDE_IMAGERY" in reasons["STRAY"]
    # The failed parcels lie on the imagery: one stray parcel of 753 is no sign of a mislabelled CRS.
    assert "lie wholly outside the imagery" not in caplog.text


@pytest.mark.parametrize("local", [{"workers": 2}, {"gpu_workers": 1}, {"memory_limit": "4GiB"}])
def test_sizing_a_local_cluster_beside_a_scheduler_is_refused(local: dict, tmp_path: Path) -> None:
    """The CLI refuses --memory-limit with --scheduler; run_batch ignored memory_limit= (and workers=) silently."""
    from farmcredit.batch import run_batch
    from farmcredit.errors import InputError

    with pytest.raises(InputError, match="size a local cluster.*start its workers yourself"):
        run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, model="rule",
                  scheduler="tcp://127.0.0.1:1", **local)
    assert not (tmp_path / "partitions").exists()


def test_a_scheduler_cluster_without_workers_is_waited_for_and_said(
        small_windows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An adaptive or queued cluster's workers join late: the run says so once and waits for them. The worker joins
    once the run has said so (a timer had raced the run's start on a busy machine), or after 60 s, failing the test."""
    import logging
    import threading

    from distributed import LocalCluster

    from farmcredit.batch import run_batch, runner
    from farmcredit.segmentation import load_cropland_model

    class _JoinOnceSaid(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "has had no worker" in record.getMessage():
                late_worker.cancel()
                threading.Thread(target=cluster.scale, args=(1,)).start()

    monkeypatch.setattr(runner, "WORKER_CHECK_S", 0.2)
    monkeypatch.setattr(runner, "NO_WORKER_TIMEOUT_S", 0.5)
    handler = _JoinOnceSaid(logging.WARNING)
    logging.getLogger("farmcredit").addHandler(handler)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster, \
            caplog.at_level(logging.WARNING, logger="farmcredit"):
        late_worker = threading.Timer(60.0, cluster.scale, args=(1,))
        late_worker.start()
        try:
            result = run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, config=small_windows,
                               model=load_cropland_model("rule"), scheduler=cluster.scheduler_address,
                               parcels_per_partition=200)
        finally:
            late_worker.cancel()
            logging.getLogger("farmcredit").removeHandler(handler)
    assert not result.failed and result.partitions > 1
    assert caplog.text.count("the Dask cluster has had no worker") == 1


@contextlib.contextmanager
def _dask_cluster(folder: Path, workers: dict[str, list[str]]):
    """A real Dask cluster of processes: a scheduler and, by name, workers started with their extra arguments; yields
    a client of it once every worker has joined."""
    from distributed import Client

    scheduler_file = folder / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    # Port 0: any free port (the file names it), not 8786, which another cluster on the machine may hold.
    processes = [subprocess.Popen([*dask, "scheduler", *common, "--port", "0"], start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_file.exists(), "the Dask scheduler did not start within 60 s"
        for name, extra in workers.items():
            processes.append(subprocess.Popen([*dask, "worker", *common, "--name", name, *extra],
                                              start_new_session=True, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        client = Client(scheduler_file=str(scheduler_file), timeout=60)
        client.wait_for_workers(len(workers), timeout=60)
        yield client
        client.close()
    finally:
        for process in processes:
            _kill_group(process)


@pytest.fixture
def gpu_cluster(tmp_path: Path):
    """A real Dask cluster of processes: a scheduler, a CPU worker and a worker offering the GPU resource.

    On a machine without CUDA the "GPU" worker runs the CNN on its CPU; what is tested is where
    each task runs, which the resource alone decides.
    """
    with _dask_cluster(tmp_path, {"cpu": ["--nthreads", "1"], "gpu": ["--nthreads", "2", "--resources", "GPU=1"]}
                       ) as client:
        yield client


def test_gpu_workers_run_the_cnn_while_cpu_workers_read_and_measure(small_windows: Path, gpu_cluster,
                                                                     tmp_path: Path) -> None:
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model("cnn", device="cpu")
    workers = {w["name"]: address for address, w in gpu_cluster.scheduler_info()["workers"].items()}
    gpu_cluster.get_task_stream()  # starts the scheduler's record of where each task ran
    batch = run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, model=model, config=small_windows,
                      scheduler=gpu_cluster.scheduler.address, parcels_per_partition=100, device="auto")
    ran = pd.DataFrame(gpu_cluster.get_task_stream())
    ran["function"] = ran["key"].str.split("-").str[0]
    where = ran.groupby("function")["worker"].agg(set)
    assert where["infer_on_gpu"] == {workers["gpu"]}, "inference must run on the GPU worker only"
    # Partitions prefer the CPU worker; Dask's work stealing may still hand one to an idle GPU worker.
    assert workers["cpu"] in where["measure_partition"], "the CPU worker reads and measures partitions"
    cpu_partitions = (ran["function"].eq("measure_partition") & ran["worker"].eq(workers["cpu"])).sum()
    assert ran["function"].eq("infer_on_gpu").sum() >= cpu_partitions
    assessed = run_assessment(SAMPLE / "parcels.geojson", SAMPLE / "imagery", config=small_windows, model=model)
    pd.testing.assert_frame_equal(batch.assessment.parcels.drop(columns="geometry"),
                                  assessed.parcels.drop(columns="geometry"), rtol=1e-5)
    # The "GPU" worker has no CUDA here: the manifest and the audit say the model ran on a CPU in float32.
    entries = json.loads((tmp_path / "partitions" / "_manifest.json").read_text())["partitions"]
    assert all(entry["inference"] == [{"device": "cpu", "precision": "float32"}] for entry in entries)
    cropland = batch.assessment.record["models"]["cropland"]
    assert (cropland["device"], cropland["precision"], cropland["hash"]) == ("cpu", "float32", model.describe()["hash"])
    # --device cuda asks for CUDA, not for the resource: a GPU worker that ran the CNN on its CPU fails its partitions
    # (exit 3, rerun to retry), measured again and again otherwise as not measured on CUDA.
    if torch.cuda.is_available():
        return
    cuda = run_batch(SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path / "cuda", model=model,
                     config=small_windows, scheduler=gpu_cluster.scheduler.address, parcels_per_partition=100,
                     device="cuda", retries=0)
    assert len(cuda.failed) == cuda.partitions
    assert all("ran the CNN on cpu: it sees no CUDA device" in reason for reason in cuda.failed.values())
    assert not list((tmp_path / "cuda" / "partitions").glob("*.parquet"))


def test_local_gpu_workers_are_used_and_device_cuda_without_them_is_a_clear_error(
        small_windows: Path, tmp_path: Path) -> None:
    from farmcredit.batch import run_batch
    from farmcredit.batch.runner import local_cluster
    from farmcredit.errors import InputError
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model("cnn", device="cpu")
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", model=model,
                            config=small_windows, workers=1, processes=False, device="cuda")
    with pytest.raises(InputError, match=NO_LOCAL_GPU):
        run(tmp_path / "none")  # refused before a cluster is started, not pointed at `dask worker`
    measured = run(tmp_path / "cpu", device="cpu", parcels_per_partition=200)
    with pytest.raises(InputError, match=NO_LOCAL_GPU):
        run(tmp_path / "cpu", parcels_per_partition=200)  # nothing left to measure on a CPU, still no GPU
    assert run(tmp_path / "cpu", device="cpu", parcels_per_partition=200).reused == measured.partitions
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="torch sees no CUDA device here"):
            run(tmp_path / "unmade", gpu_workers=1)  # refused before anything is made
        assert not (tmp_path / "unmade").exists()
    with local_cluster(1, processes=False) as cpu_only, pytest.raises(
            InputError, match="no worker of the cluster offers the GPU resource .start them with `dask worker"):
        run(tmp_path / "cpu", scheduler=cpu_only.scheduler_address, workers=None)
    local = run(tmp_path / "local", gpu_workers=1, parcels_per_partition=200, device="auto")
    assert not local.failed and local.partitions > 1
    assert (local.assessment.parcels["model_version"] == model.name).all()


def test_a_gpu_worker_keeps_a_recalibrated_card_apart_from_the_model_it_holds() -> None:
    import copy
    from dataclasses import replace

    from farmcredit.batch.placement import _on_this_device
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.cnn import CnnCroplandModel

    shipped = load_cropland_model("cnn", device="cpu")
    recalibrated = CnnCroplandModel(copy.deepcopy(shipped.net), replace(shipped.card, calibration={"a": 2.0, "b": 0.5}),
                                    device="cpu")
    assert recalibrated.card.weights_sha256 == shipped.card.weights_sha256  # the same weights file
    assert _on_this_device(shipped) is _on_this_device(shipped)  # moved once, then reused
    assert _on_this_device(recalibrated)[0].card.calibration == {"a": 2.0, "b": 0.5}
    assert _on_this_device(shipped)[1] == ("cpu", "float32")  # no CUDA here


def test_a_model_whose_description_names_no_device_or_precision_is_recorded_as_unknown() -> None:
    from farmcredit.batch.placement import inference_used

    class Minimal:  # the CroplandModel protocol asks describe() for a name and a hash only
        name = "minimal"

        def describe(self) -> dict:
            return {"name": self.name, "hash": "0"}

    assert inference_used(Minimal()) == [{"device": "unknown", "precision": "unknown"}]


@pytest.mark.parametrize(("allowed", "expected"), [
    (None, ["0", "1", "2"]),  # every device visible
    ("2", ["2", "-1", "-1"]),  # device 2 only: the others are another job's
    ("", ["-1", "-1", "-1"]),  # none at all
    ("GPU-abc, GPU-def", ["GPU-abc", "GPU-def", "-1"]),
])
def test_local_gpu_workers_see_only_devices_this_process_may_use(monkeypatch: pytest.MonkeyPatch, allowed: str | None,
                                                                  expected: list[str]) -> None:
    from farmcredit.batch.placement import visible_device

    if allowed is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", allowed)
    assert [visible_device(i) for i in range(3)] == expected


_RELEASE = threading.Event()
_STRAGGLER: list[str] = []


def _straggling(partition, *args, **kwargs):
    """``measure_partition``, the first partition to start waiting to be released (module level: Dask pickles it)."""
    if not _STRAGGLER:
        _STRAGGLER.append(partition.partition_id)
        _RELEASE.wait(60)
    return measure_partition(partition, *args, **kwargs)


def test_partitions_done_while_a_straggler_runs_reach_the_manifest(small_windows: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest is rewritten at most every MANIFEST_EVERY_S: while one partition ran on, those done since the last
    rewrite went unrecorded, to be measured again by a rerun after a kill."""
    from farmcredit.batch import run_batch, runner
    from farmcredit.segmentation import load_cropland_model

    monkeypatch.setattr(runner, "MANIFEST_EVERY_S", 3.0)
    monkeypatch.setattr(runner, "measure_partition", _straggling)
    _RELEASE.clear()
    _STRAGGLER.clear()
    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    batch = threading.Thread(target=run_batch, args=(SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path),
                             kwargs={"model": model, "config": small_windows, "workers": 2, "processes": False,
                                     "parcels_per_partition": 20})
    batch.start()
    try:
        manifest, deadline = tmp_path / "partitions" / "_manifest.json", time.monotonic() + 60
        summary: dict = {}
        while time.monotonic() < deadline:
            summary = json.loads(manifest.read_text())["summary"] if manifest.is_file() else {}
            if summary.get("pending") == 1:
                break
            time.sleep(0.1)
        assert summary.get("pending") == 1 and summary["done"] > 10, summary
    finally:
        _RELEASE.set()
        batch.join(120)


def _cnn_run_beside_the_garbled_tile(tmp_path: Path, imagery: Path, band: Path) -> functools.partial:
    """``run_batch`` of the CNN (CPU, one in-process worker) into ``tmp_path / "out"`` over one parcel at rows 190-200
    of ``band``'s grid: the CNN's 60 px context reaches ``_garbled_tile``'s tile, the parcel's window does not."""
    import rasterio

    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    with rasterio.open(band) as source:
        left, top, crs = source.transform.c, source.transform.f, source.crs
    parcel = gpd.GeoDataFrame({"parcel_id": ["P1"], "borrower_id": ["B1"]},
                              geometry=[shapely.box(left + 1020, top - 2000, left + 1100, top - 1900)], crs=crs)
    parcel.to_file(tmp_path / "parcel.geojson")
    return functools.partial(run_batch, tmp_path / "parcel.geojson", imagery, tmp_path / "out",
                             model=load_cropland_model("cnn", device="cpu"), workers=1, processes=False)


def test_a_partition_whose_file_failed_only_in_the_cnns_context_is_named_and_measured_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No parcel loses a date to a file that fails only in the context around its window, yet the run names it (in
    its record and a warning, which only the CLI gave) and the next run measures the partition again (the failure may
    have passed), as for any failure that left pixels it read without data."""
    imagery, band, mend = _garbled_tile(tmp_path)
    run = _cnn_run_beside_the_garbled_tile(tmp_path, imagery, band)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        first = run()
    assert "IMAGERY_READ_ERROR" not in first.assessment.parcels["reason_all"].iloc[0]
    assert [failure["file"] for failure in first.assessment.record["read_failures"]] == [str(band)]
    assert f"1 image file(s) could not be read (whole or in part): {band}; no parcel lost a date to them" in caplog.text
    mend()
    again = run()
    assert again.reused == 0 and again.assessment.record["read_failures"] == []


def test_a_season_narrows_imagery_opened_already_as_assess_does(small_season, tmp_path: Path) -> None:
    """``run_batch`` reads its inputs as ``run_assessment`` does (``load_inputs``): a season of an ``Imagery`` too."""
    from farmcredit.batch import run_batch
    from farmcredit.imagery import open_imagery
    from farmcredit.segmentation import load_cropland_model

    season = (min(small_season.dates[1:]), max(small_season.dates[:-2]))
    batch = run_batch(small_season.parcels_path, open_imagery(small_season.imagery_dir), tmp_path, season=season,
                      model=load_cropland_model("rule"), workers=1, processes=False)
    expected = run_assessment(small_season.parcels_path, small_season.imagery_dir, season=season, model="rule")
    assert len(batch.assessment.imagery.scenes) == len(small_season.dates) - 3
    pd.testing.assert_frame_equal(batch.assessment.parcels, expected.parcels)


def test_results_of_a_geodataframe_carry_its_index_as_assess_does(small_season, tmp_path: Path) -> None:
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    parcels = gpd.read_file(small_season.parcels_path).sort_values("parcel_id", ascending=False)
    batch = run_batch(parcels, small_season.imagery_dir, tmp_path, model=load_cropland_model("rule"), workers=1,
                      processes=False)
    expected = run_assessment(parcels, small_season.imagery_dir, model="rule")
    assert batch.assessment.parcels.index.equals(parcels.index)
    pd.testing.assert_frame_equal(batch.assessment.parcels, expected.parcels)


def test_a_folder_named_as_text_and_a_model_by_name_are_taken_as_run_assessment_takes_them(
        small_season, tmp_path: Path) -> None:
    """``out`` as text stopped with AttributeError ('str' object has no attribute 'absolute'), ``model="rule"``
    likewise ('describe'), though the arguments are documented as ``run_assessment``'s."""
    from farmcredit.batch import run_batch

    batch = run_batch(str(small_season.parcels_path), str(small_season.imagery_dir), str(tmp_path), model="rule",
                      workers=1, processes=False)
    expected = run_assessment(small_season.parcels_path, small_season.imagery_dir, model="rule")
    assert batch.assessment.record["models"]["cropland"]["name"] == expected.record["models"]["cropland"]["name"]
    pd.testing.assert_frame_equal(batch.assessment.parcels, expected.parcels)
    assert len(list((tmp_path / "partitions").glob("part-*.parquet"))) == batch.partitions


def _measuring_other_code(*args, **kwargs) -> dict:
    """``measure_partition`` on a worker whose farmcredit differs from the driver's (an edited copy on PYTHONPATH)."""
    return {**measure_partition(*args, **kwargs), "code": "0" * 64}


def test_a_worker_measuring_with_other_code_fails_its_partitions_and_leaves_no_file(
        small_windows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its measurements went under this code's partition ids, exit 0, and every rerun reused them."""
    from farmcredit.batch import run_batch, runner
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=200, retries=1)
    with monkeypatch.context() as patched:
        patched.setattr(runner, "measure_partition", _measuring_other_code)
        refused = run()
    assert len(refused.failed) == refused.partitions > 1
    assert all("measures with other farmcredit code (measuring code 0000000000000000" in reason
               and "install the same farmcredit on every worker" in reason for reason in refused.failed.values())
    manifest = json.loads((tmp_path / "partitions" / "_manifest.json").read_text())
    assert manifest["summary"]["done"] == 0 and all(p["attempts"] == 2 for p in manifest["partitions"])
    assert not list((tmp_path / "partitions").glob("*part-*"))  # neither a result nor a temporary file
    again = run()
    assert again.reused == 0 and not again.failed


def test_a_worker_that_does_not_see_the_imagery_fails_its_partitions_naming_itself_and_the_path(
        small_windows: Path, tmp_path: Path) -> None:
    """A worker without the shared file system read nothing: every parcel was referred IMAGERY_READ_ERROR, exit 0."""
    from farmcredit.batch import run_batch
    from farmcredit.imagery import open_imagery
    from farmcredit.segmentation import load_cropland_model

    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE / "imagery", imagery)
    opened = open_imagery(imagery)
    imagery.rename(tmp_path / "elsewhere")  # as a worker on another machine sees the driver's path
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", opened, tmp_path / "out", config=small_windows,
                            model=load_cropland_model("rule"), workers=1, processes=False, parcels_per_partition=200,
                            retries=0)
    unseen = run()
    assert len(unseen.failed) == unseen.partitions > 1
    assert all(f"does not see {imagery}: every worker must see the imagery and --out at the same absolute paths"
               in reason for reason in unseen.failed.values())
    (tmp_path / "elsewhere").rename(imagery)
    seen = run()
    assert seen.reused == 0 and not seen.failed


HIDE_FARMCREDIT = """import sys


class HideFarmcredit:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "farmcredit":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, HideFarmcredit())
"""


def test_scheduler_workers_without_farmcredit_or_with_other_measuring_code_stop_the_run_naming_them(
        small_windows: Path, tmp_path: Path) -> None:
    """Checked before any partition is submitted, exit 2: a worker that cannot import farmcredit (hidden by a
    preload) and one running an edited copy of its measuring code (first on its path) are named; they made the
    partitions fail one by one, or the run wait for ever."""
    (tmp_path / "hide_farmcredit.py").write_text(HIDE_FARMCREDIT)
    edited = tmp_path / "edited"
    shutil.copytree(REPO / "farmcredit", edited / "farmcredit", ignore=shutil.ignore_patterns("__pycache__"))
    with (edited / "farmcredit" / "zonal" / "__init__.py").open("a") as zonal:
        zonal.write("# edited on this worker only\n")
    # First on its path, ahead of the folder it runs in, as PYTHONPATH would put it but for `python -m`.
    (tmp_path / "edited_first.py").write_text(f"import sys\n\nsys.path.insert(0, {str(edited)!r})\n")
    workers = {name: ["--nthreads", "1", *preload] for name, preload in (
        ("good", []), ("hidden", ["--preload", str(tmp_path / "hide_farmcredit.py")]),
        ("edited", ["--preload", str(tmp_path / "edited_first.py")]))}
    out = tmp_path / "out"
    with _dask_cluster(tmp_path, workers) as client:
        address = {worker["name"]: address for address, worker in client.scheduler_info()["workers"].items()}
        command = _batch_command(out, small_windows)
        at = command.index("--workers")
        command[at:at + 2] = ["--scheduler", client.scheduler.address]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert "2 worker(s) of the cluster cannot measure this run's partitions" in said
    assert f"{address['hidden']} cannot run this farmcredit (ModuleNotFoundError" in said
    assert "No module named 'farmcredit'" in said
    assert f"{address['edited']} runs farmcredit" in said and "with other measuring code" in said
    assert address["good"] not in said
    assert not list((out / "partitions").glob("*part-*")) and not (out / "results.parquet").exists()


def test_a_worker_that_does_not_answer_the_check_is_warned_of_and_the_check_passes_in_time(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A stalled worker (SIGSTOP, as a paused or swapping machine) held the check until the scheduler dropped it
    (worker-ttl, 5 minutes), which then refused the run as if the worker lacked farmcredit; it is now given twice the
    connect timeout, named in a warning and left to the per-partition check, the other worker being fine."""
    import dask

    from farmcredit.batch.runner import check_workers

    with _dask_cluster(tmp_path, {"good": ["--nthreads", "1"], "stalled": ["--nthreads", "1"]}) as client:
        address = {worker["name"]: address for address, worker in client.scheduler_info()["workers"].items()}
        pid = client.run(os.getpid, workers=[address["stalled"]])[address["stalled"]]
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            # 20 s to answer: ample for the good worker on a busy machine (at 4 s both were named on a slow one)
            with dask.config.set({"distributed.comm.timeouts.connect": "10s"}), caplog.at_level(logging.WARNING):
                check_workers(client)
            took = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
    assert took < 120, took  # the deadline, far from worker-ttl's 300 s
    said = " ".join(caplog.text.split())
    assert "1 worker(s) of the cluster did not answer the check of their farmcredit" in said
    assert f"{address['stalled']} (TimeoutError: no answer in 20 s)" in said and address["good"] not in said


def test_workers_of_a_scheduler_cluster_with_too_little_memory_are_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    """`dask worker --memory-limit 350MiB` workers churned for two minutes, then 12 x KilledWorker, memory unsaid."""
    from distributed import LocalCluster

    from farmcredit.batch import runner

    with LocalCluster(n_workers=2, processes=False, memory_limit="350MiB", dashboard_address=":0") as cluster, \
            caplog.at_level(logging.WARNING, logger="farmcredit"):
        client, _ = runner._connect(cluster.scheduler_address, None, 0, "auto", False)
        client.close()
    message = " ".join(caplog.text.split())
    assert "2 worker(s) of the cluster have a memory limit under 1 GiB" in message and "(350 MiB)" in message
    assert "dask worker --memory-limit 4GiB" in message and all(a in message for a in cluster.scheduler_info["workers"])


def test_a_partition_whose_workers_were_killed_names_memory_as_the_likely_cause() -> None:
    from types import SimpleNamespace

    from distributed import KilledWorker

    from farmcredit.batch.runner import _failure_reason

    killed = KilledWorker("measure_partition-0a1f", SimpleNamespace(address="tcp://127.0.0.1:1"), 3)
    assert _failure_reason(killed).startswith(f"KilledWorker: {killed}")
    assert "workers died running it: often their --memory-limit" in _failure_reason(killed)
    assert _failure_reason(RuntimeError("simulated")) == "RuntimeError: simulated"


@pytest.mark.parametrize("error", [
    FileNotFoundError("no such part of the package: /opt/farmcredit/hashing.py"),  # as installed without sources
    PermissionError(13, "Permission denied", "/opt/farmcredit/imagery/read.py"),
])
def test_a_worker_whose_farmcredit_cannot_hash_its_measuring_code_stops_the_run_naming_it(
        monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    """Its answer, an OSError, was taken for a worker that did not answer: the check passed with a warning, and every
    partition it took then failed, exit 3."""
    from distributed import Client, LocalCluster

    from farmcredit.batch import runner
    from farmcredit.errors import InputError

    driver = threading.current_thread()
    hashed = runner.measuring_code

    def measuring_code() -> str:
        """This driver's code; the worker's (in this process, on the cluster's thread) cannot be read."""
        if threading.current_thread() is not driver:
            raise error
        return hashed()

    monkeypatch.setattr(runner, "measuring_code", measuring_code)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        (address,) = client.scheduler_info()["workers"]
        with pytest.raises(InputError) as refused:
            runner.check_workers(client)
    said = str(refused.value)
    assert "1 worker(s) of the cluster cannot measure this run's partitions" in said
    assert f"{address} cannot run this farmcredit ({type(error).__name__}: {error})" in said


def test_a_band_file_short_of_its_scenes_extent_costs_no_rerun_until_it_changes(small_windows: Path,
                                                                                tmp_path: Path) -> None:
    """A B04 cropped to 300x300 beside 320x320 siblings leaves parcels past its edge without the date
    (IMAGERY_READ_ERROR), as rereading it always will: a rerun reused none of their partitions and measured them again
    for nothing; now it reuses all, and measures again once the file is another (its size or time changed)."""
    import rasterio

    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    imagery = tmp_path / "imagery"
    shutil.copytree(SAMPLE / "imagery", imagery)
    band = sorted(imagery.glob("*/B04.tif"))[3]
    with rasterio.open(band) as source:
        values, profile = source.read()[:, :300, :300], source.profile | {"width": 300, "height": 300}
    with rasterio.open(band, "w", **profile) as dataset:
        dataset.write(values)
    model = load_cropland_model("rule", load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", imagery, tmp_path / "out", model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=20)
    first, again = run(), run()
    hit = first.assessment.parcels["reason_all"].str.contains("IMAGERY_READ_ERROR")
    assert 0 < hit.sum() < len(hit)
    assert again.reused == again.partitions == first.partitions
    pd.testing.assert_frame_equal(again.assessment.parcels, first.assessment.parcels)
    os.utime(band, ns=(band.stat().st_atime_ns, band.stat().st_mtime_ns + 10**9))
    assert run().reused == 0


def test_a_failure_a_twin_product_stood_in_for_in_the_cnns_context_costs_no_rerun(tmp_path: Path) -> None:
    """A garbled tile of a twin product (another product of the date, the same pixels) in the CNN's context: the
    twin's original supplies every pixel, so nothing the CNN read is lost; the file is named, and a rerun reuses the
    partition (it measured it again on every rerun, as it does one whose context lost pixels)."""
    imagery, band, _ = _garbled_tile(tmp_path)
    twin = band.parent.with_name(band.parent.name.replace("_0_", "_1_"))
    twin.mkdir()
    for original in band.parent.iterdir():
        (twin / original.name).write_bytes(original.read_bytes())
    shutil.copy2(SAMPLE / "imagery" / band.parent.name / band.name, band)  # the original whole: the twin's broken
    run = _cnn_run_beside_the_garbled_tile(tmp_path, imagery, band)
    first, again = run(), run()
    assert "IMAGERY_READ_ERROR" not in first.assessment.parcels["reason_all"].iloc[0]
    assert [failure["file"] for failure in first.assessment.record["read_failures"]] == [str(twin / band.name)]
    assert again.reused == again.partitions == 1
    assert again.assessment.record["read_failures"] == first.assessment.record["read_failures"]
