"""``farmcredit batch``: measure a portfolio's partitions on a Dask cluster, then finish it as ``assess`` does.

Workers run the expensive per-window stages (read imagery, cropland model, zonal statistics)
and write one measurement file per partition into ``OUT/partitions`` (atomically). The driver
then runs the portfolio-wide stages (health among peers, overlaps, limits, borrower totals)
once over every parcel with ``finish_assessment``, so the results equal ``assess``'s row for
row. A rerun skips every partition whose file is complete, so killing the driver or a worker
at any point loses at most the partitions in flight.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from farmcredit.batch.partitions import (
    Partition,
    fill_stats,
    is_complete,
    plan_partitions,
    read_manifest,
    stats_frame,
    write_atomically,
    write_manifest,
)
from farmcredit.config import Config
from farmcredit.credit import RiskModel
from farmcredit.imagery import Imagery
from farmcredit.pipeline import (
    Assessment,
    AssessmentInputs,
    assemble_measurements,
    empty_stats,
    finish_assessment,
    load_inputs,
    measure_windows,
    output_extent,
)
from farmcredit.segmentation import CroplandModel

if TYPE_CHECKING:
    from distributed import Client, Future, LocalCluster

# Test-only hooks, read on the workers: seconds each partition waits before it starts (so a test
# can kill a run part-way), and a marker file whose absence makes the first task to see it
# create it and SIGKILL its own worker process.
TEST_DELAY_ENV = "FARMCREDIT_BATCH_TEST_DELAY_S"
TEST_KILL_WORKER_ENV = "FARMCREDIT_BATCH_TEST_KILL_WORKER"

# Called with (parcels done, parcels total), the done including partitions reused from a previous run.
BatchProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchResult:
    """A batch run: the assessment (as ``run_assessment`` returns it) and what happened to the partitions.

    Attributes:
        assessment: every parcel's results; parcels of failed partitions carry ``MEASUREMENT_FAILED``.
        partitions: partitions planned.
        reused: partitions whose complete file a previous run had written.
        failed: partition id -> reason, for partitions that failed every attempt.
    """

    assessment: Assessment
    partitions: int
    reused: int
    failed: dict[str, str]


def measure_partition(
    partition: Partition, geoms: np.ndarray, imagery: Imagery, config: Config, model: CroplandModel, path: Path
) -> int:
    """Measure one partition's parcels (``geoms``: theirs, in ``partition.rows`` order) and write its file.

    Runs on a Dask worker. Returns the number of parcels written.
    """
    _test_hooks()
    stats = measure_windows(geoms, imagery, config, model, list(partition.windows))
    write_atomically(stats_frame(partition.rows, stats), path)
    return len(partition.rows)


def run_batch(
    parcels: str | Path | gpd.GeoDataFrame,
    imagery: str | Path | Imagery,
    out: Path,
    *,
    model: CroplandModel,
    season: tuple[date, date] | None = None,
    config: str | Path | Config | None = None,
    parcels_crs: str | None = None,
    risk_model: str | Path | RiskModel | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str = "auto",
    processes: bool = True,
    parcels_per_partition: int = 5000,
    retries: int = 2,
    gpu: bool = False,
    progress: BatchProgress | None = None,
) -> BatchResult:
    """Measure every partition not yet done on a Dask cluster, then finish the run over all parcels.

    Args:
        parcels, imagery, season, config, parcels_crs, risk_model: as for ``run_assessment``.
        out: output folder; partition files and ``manifest.json`` go to ``out/partitions``.
        model: the cropland model (sent to the workers).
        scheduler: address of an existing Dask scheduler (``tcp://HOST:PORT``); None starts a
            local cluster of ``workers`` processes (default: one per core), one thread each.
        workers: local workers.
        memory_limit: per local worker ("auto": the machine's memory shared among them).
        processes: local workers as processes (False: threads of this process, for tests).
        parcels_per_partition: about how many parcels one task measures (whole windows).
        retries: further attempts of a partition that raised before it is recorded failed.
        gpu: tasks need a ``GPU`` worker resource (the CNN on CUDA); local workers get one each.
        progress: called with (parcels done, parcels total) as partitions finish.

    Returns:
        The assessment and the partitions' fate; write it with ``write_outputs``.
    """
    started = time.perf_counter()
    inputs = load_inputs(parcels, imagery, season=season, config=config, parcels_crs=parcels_crs,
                         risk_model=risk_model)
    folder = out / "partitions"
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    for stale in folder.glob("*.tmp"):
        # Left by a writer killed mid-write: never a result, since results appear only by rename.
        stale.unlink(missing_ok=True)
    plan = plan_partitions(inputs, model.name, parcels_per_partition)
    previous = read_manifest(manifest_path)
    entries = {
        p.partition_id: {"id": p.partition_id, "parcels": len(p.rows), "status": "pending",
                         "attempts": previous.get(p.partition_id, {}).get("attempts", 0), "error": None}
        for p in plan
    }
    todo = [p for p in plan if not is_complete(folder / p.file_name, len(p.rows))]
    total = sum(len(p.rows) for p in plan)
    done = total - sum(len(p.rows) for p in todo)
    todo_ids = {p.partition_id for p in todo}
    for p in plan:
        if p.partition_id not in todo_ids:
            entries[p.partition_id]["status"] = "done"
    write_manifest(manifest_path, entries)
    if progress is not None:
        progress(done, total)

    def on_done(parcels_done: int) -> None:
        nonlocal done
        done += parcels_done
        if progress is not None:
            progress(done, total)

    failed: dict[str, str] = {}
    if todo:
        client, cluster = _connect(scheduler, workers, memory_limit, processes, gpu)
        try:
            failed = _measure_on_cluster(client, todo, inputs, model, folder, entries, manifest_path, retries,
                                         {"GPU": 1} if gpu else None, on_done)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    timings = {"measure": time.perf_counter() - started}

    stats = empty_stats(len(inputs.geoms), len(inputs.imagery.scenes))
    failed_rows = np.zeros(len(inputs.geoms), dtype=bool)
    for p in plan:
        if p.partition_id in failed:
            failed_rows[p.rows] = True
        else:
            fill_stats(stats, pd.read_parquet(folder / p.file_name))
    measurements, outside = assemble_measurements(inputs.geoms, inputs.imagery, stats)
    assessment = finish_assessment(inputs, model.name, measurements, outside, timings, started, failed=failed_rows,
                                   extent=output_extent(inputs.geoms, inputs.imagery))
    return BatchResult(assessment, len(plan), len(plan) - len(todo), failed)


def _connect(
    scheduler: str | None, workers: int | None, memory_limit: str, processes: bool, gpu: bool
) -> tuple[Client, LocalCluster | None]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster (returned too, to close it)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=processes,
        memory_limit=memory_limit, dashboard_address=None, silence_logs=logging.ERROR,
        resources={"GPU": 1} if gpu else None,
    )
    return Client(cluster), cluster


def _measure_on_cluster(
    client: Client, todo: list[Partition], inputs: AssessmentInputs, model: CroplandModel, folder: Path,
    entries: dict[str, dict], manifest_path: Path, retries: int, resources: dict | None,
    on_done: Callable[[int], None],
) -> dict[str, str]:
    """Run ``measure_partition`` for each partition, resubmitting one that raised up to ``retries`` times.

    Dask itself reschedules the tasks of a worker that died. The manifest is rewritten as each
    partition ends. Returns partition id -> reason for those that failed every attempt.
    """
    from distributed import as_completed

    def submit(partition: Partition) -> Future:
        entries[partition.partition_id]["attempts"] += 1
        return client.submit(
            measure_partition, partition, inputs.geoms[partition.rows], inputs.imagery, inputs.config, model,
            folder / partition.file_name, pure=False, resources=resources,
        )

    futures = {submit(p): p for p in todo}
    tries = dict.fromkeys((p.partition_id for p in todo), 1)
    failed: dict[str, str] = {}
    queue = as_completed(list(futures))
    for future in queue:
        partition = futures.pop(future)
        entry = entries[partition.partition_id]
        try:
            future.result()
        except Exception as exc:  # any failure of one partition (corrupt input, a bug) must not stop the rest
            if tries[partition.partition_id] <= retries:
                tries[partition.partition_id] += 1
                retry = submit(partition)
                futures[retry] = partition
                queue.add(retry)
                continue
            entry["status"], entry["error"] = "failed", f"{type(exc).__name__}: {exc}"
            failed[partition.partition_id] = entry["error"]
        else:
            entry["status"], entry["error"] = "done", None
        write_manifest(manifest_path, entries)
        on_done(len(partition.rows))
    return failed


def _test_hooks() -> None:
    """Test-only: wait, or kill this worker once (see ``TEST_DELAY_ENV``, ``TEST_KILL_WORKER_ENV``)."""
    time.sleep(float(os.environ.get(TEST_DELAY_ENV, "0")))
    marker = os.environ.get(TEST_KILL_WORKER_ENV)
    if marker:
        try:
            Path(marker).touch(exist_ok=False)
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)
