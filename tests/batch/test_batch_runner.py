"""`farmcredit batch`: equal to `assess` row for row, resumable after SIGKILLs, failures recorded."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner

from farmcredit.config import load_config
from farmcredit.pipeline import run_assessment

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_tiles"


@pytest.fixture(scope="module")
def small_windows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default config with 64 px windows: the 512 px sample becomes about 25 partitions of 20+ parcels."""
    path = tmp_path_factory.mktemp("config") / "small_windows.yaml"
    path.write_text((REPO / "configs" / "default.yaml").read_text().replace("chunk_px: 512", "chunk_px: 64"))
    assert load_config(path).imagery.chunk_px == 64
    return path


@pytest.fixture(scope="module")
def assessed(small_windows: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """`assess`'s results on the sample, through Parquet as `write_outputs` writes them."""
    path = tmp_path_factory.mktemp("assess") / "results.parquet"
    result = run_assessment(SAMPLE / "parcels.geojson", SAMPLE / "imagery", config=small_windows)
    result.parcels.to_parquet(path, index=False)
    return gpd.read_parquet(path)


def _batch_command(out: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "farmcredit", "batch", str(SAMPLE / "parcels.geojson"), "--imagery",
            str(SAMPLE / "imagery"), "--out", str(out), "--config", str(config), "--workers", "2",
            "--partition-parcels", "20", "--quiet"]


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


def test_batch_in_process_equals_assess_and_reuses_partitions(small_windows: Path, assessed: pd.DataFrame,
                                                              tmp_path: Path) -> None:
    from farmcredit.batch import run_batch
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model(None, load_config(small_windows).cropland_rule)
    run = functools.partial(run_batch, SAMPLE / "parcels.geojson", SAMPLE / "imagery", tmp_path, model=model,
                            config=small_windows, workers=2, processes=False, parcels_per_partition=20)
    first = run()
    first.assessment.parcels.to_parquet(tmp_path / "batch.parquet", index=False)
    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "batch.parquet"), assessed)
    assert first.partitions > 10 and first.reused == 0 and not first.failed
    again = run()
    assert again.reused == again.partitions == first.partitions
    pd.testing.assert_frame_equal(again.assessment.parcels, first.assessment.parcels)


def test_batch_survives_sigkill_of_the_driver_and_of_a_worker(small_windows: Path, assessed: pd.DataFrame,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    partitions = out / "partitions"
    # Slow each partition down so the driver is surely killed part-way through.
    process = subprocess.Popen(_batch_command(out, small_windows), start_new_session=True,
                               env={**os.environ, "FARMCREDIT_BATCH_TEST_DELAY_S": "0.5"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(list(partitions.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        _kill_group(process)
    written = len(list(partitions.glob("part-*.parquet")))
    manifest = json.loads((partitions / "manifest.json").read_text())
    assert 3 <= written < len(manifest["partitions"]), "the kill should land part-way through"
    assert not (out / "results.parquet").exists()

    # The rerun also loses one worker to SIGKILL mid-task; Dask reruns its task elsewhere.
    marker = tmp_path / "worker-killed"
    done = _run_batch(out, small_windows, {"FARMCREDIT_BATCH_TEST_KILL_WORKER": str(marker)})
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    results = gpd.read_parquet(out / "results.parquet")
    assert not results["parcel_id"].duplicated().any()
    pd.testing.assert_frame_equal(results, assessed)
    manifest = json.loads((partitions / "manifest.json").read_text())
    assert manifest["summary"] == {"done": len(manifest["partitions"]), "failed": 0, "pending": 0}
    assert not list(partitions.glob("*.tmp"))


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
    manifest = json.loads((out / "partitions" / "manifest.json").read_text())
    failed = [p for p in manifest["partitions"] if p["status"] == "failed"]
    assert 1 <= len(failed) < len(manifest["partitions"]) and manifest["summary"]["failed"] == len(failed)
    assert all(p["attempts"] == 3 and p["error"] == "RuntimeError: simulated corrupt window" for p in failed)
    assert f"{len(failed)} partitions failed" in result.output
    assert f"{len(failed)} x RuntimeError: simulated corrupt window" in result.output
    results = gpd.read_parquet(out / "results.parquet")
    lost = results["reason_all"].str.contains("MEASUREMENT_FAILED")
    assert lost.sum() == sum(p["parcels"] for p in failed) and len(results) == 752
    assert (results.loc[lost, "status"] == "error").all() and (results.loc[~lost, "status"] == "ok").any()
