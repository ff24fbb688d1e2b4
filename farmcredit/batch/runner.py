"""``farmcredit batch``: measure a portfolio's partitions on a Dask cluster, then finish it as ``assess`` does.

Workers run the expensive per-window stages (read imagery, cropland model, zonal statistics)
and write one GeoParquet file per partition into ``OUT/partitions`` (atomically). With GPU
workers in the cluster the CNN runs on them while CPU workers read and measure (see
``placement``). The driver
then runs the portfolio-wide stages (health among peers, overlaps, limits, borrower totals)
once over every parcel with ``finish_assessment``, so the results equal ``assess``'s row for
row. A rerun skips every partition whose file is complete, so killing the driver or a worker
at any point loses at most the partitions in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
from pyproj import CRS

from farmcredit import __version__
from farmcredit.batch.partitions import (
    MANIFEST,
    Partition,
    fill_stats,
    is_complete,
    measuring_code,
    measuring_key,
    part_file_name,
    plan_partitions,
    read_manifest,
    stats_frame,
    write_manifest,
    write_temporary,
)
from farmcredit.batch.placement import (
    GPU_RESOURCE,
    cluster_has_gpu,
    cpu_workers,
    every_worker,
    inference_used,
    local_gpu_count,
    on_this_worker,
    portable,
    uses_gpu,
    visible_device,
)
from farmcredit.config import Config, load_config
from farmcredit.credit import RiskModel
from farmcredit.errors import InputError
from farmcredit.imagery import Imagery
from farmcredit.locking import held_lock, writable_folder
from farmcredit.margins import model_margins
from farmcredit.outputs.tables import output_folder
from farmcredit.pipeline import (
    PORTFOLIO_STAGES,
    Assessment,
    AssessmentInputs,
    StageCallback,
    assemble_measurements,
    cropland_model,
    empty_stats,
    failure_table,
    finish_assessment,
    load_inputs,
    measure_windows,
    model_read_context,
    output_extent,
    warn_of_findings,
    warn_of_model,
)
from farmcredit.segmentation import CroplandModel
from farmcredit.text import some

if TYPE_CHECKING:
    from distributed import Client, Future, SpecCluster

logger = logging.getLogger(__name__)

# Test-only hooks, read on the workers: seconds each partition waits before it starts (so a test
# can kill a run part-way), and a marker file whose absence makes the first task to see it
# create it and SIGKILL its own worker process.
TEST_DELAY_ENV = "FARMCREDIT_BATCH_TEST_DELAY_S"
TEST_KILL_WORKER_ENV = "FARMCREDIT_BATCH_TEST_KILL_WORKER"
# A partition folder's lock file (``exclusive``).
LOCK_NAME = ".lock"
# Below this a worker cannot hold one window of imagery and a partition ("1.5" reads as 1 byte to Dask, and the
# run then stalls; 256 MiB and 384 MiB workers were killed over and over on sample_tiles with the rule): the CLI
# refuses a --memory-limit under it, and `auto` warns when it shares the machine's memory that thin.
MIN_WORKER_MEMORY = 1 << 30
# How often the driver looks for finished partitions and for workers, and how long partitions may wait on a local
# cluster left with no worker (its nannies restart a dead one within seconds) before they fail with NO_WORKER_ERROR.
WORKER_CHECK_S = 5.0
# Seconds between rewrites of the manifest while partitions end.
MANIFEST_EVERY_S = 5.0
POLL_S = 0.1
NO_WORKER_TIMEOUT_S = 120.0
NO_WORKER_ERROR = ("NoWorker: the cluster was left without a worker (each died, or none could load the task: "
                   "check that the workers run this farmcredit and see the imagery)")

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
    partition: Partition, parcel_ids: np.ndarray, geoms: np.ndarray, imagery: Imagery, config: Config,
    model: CroplandModel, gpu_cluster: bool, path: Path,
) -> dict[str, list]:
    """Measure one partition's parcels (``parcel_ids``, ``geoms``: theirs, in ``partition.rows`` order)
    and write its file under a temporary name beside ``path``.

    Runs on a Dask worker; ``gpu_cluster`` sends the CNN's inference to GPU workers (``on_this_worker``).
    Returns, for the manifest, the files that failed to decode in its windows (``read_failures``: [scene id, file,
    message, parcels that lost a clear observation to it] each, whether or not another product of the date supplied
    their pixels, as ``measure_windows`` names them) and where and in what precision the model ran (``inference``:
    ``inference_used``); for the driver to check, the worker (``worker``: its address) and the code it measured with
    (``code``: ``measuring_code``); and
    the temporary file (``file``), which the driver renames to ``path``: a task left running by a driver killed or
    interrupted (a remote worker finishes it) cannot put a file among a later run's partitions.
    """
    _test_hooks()
    _check_sees(imagery, path.parent)
    used = on_this_worker(model, gpu_cluster)
    stats = measure_windows(geoms, imagery, config, used, list(partition.windows))
    written = write_temporary(stats_frame(partition.rows, parcel_ids, geoms, imagery.crs, stats), path)
    return {"read_failures": stats["read_failures"].tolist(), "inference": inference_used(used), "file": written.name,
            "worker": _worker_address(), "code": measuring_code()}


def _check_sees(imagery: Imagery, folder: Path) -> None:
    """Check that this worker sees the imagery's source (a folder or file; not a fetched source's description) and the
    partitions ``folder``: on one that does not, every read failed and the run referred every parcel, exit 0.

    Raises:
        FileNotFoundError: either is not there, naming this worker and the path.
    """
    unseen = [str(path) for path in (Path(imagery.source), folder) if path.is_absolute() and not path.exists()]
    if unseen:
        raise FileNotFoundError(f"worker {_worker_address()} does not see {' nor '.join(unseen)}: every worker must "
                                "see the imagery and --out at the same absolute paths as the driver (a shared file "
                                "system)")


def _worker_address() -> str:
    """The address of the Dask worker running this (its host and port), or this host's name outside a worker."""
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # called outside a worker: a test, a profile
        return socket.gethostname()


def run_batch(
    parcels: str | Path | gpd.GeoDataFrame,
    imagery: str | Path | Imagery,
    out: str | Path,
    *,
    model: str | Path | CroplandModel | None = None,
    season: str | Sequence[date | str] | None = None,
    config: str | Path | Config | Mapping[str, Any] | None = None,
    parcels_crs: str | int | CRS | None = None,
    parcels_datum: str = "wgs84",
    parcels_layer: str | None = None,
    risk_model: str | Path | RiskModel | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str = "auto",
    processes: bool = True,
    parcels_per_partition: int = 5000,
    retries: int = 2,
    gpu_workers: int = 0,
    device: str = "auto",
    progress: BatchProgress | None = None,
    stage: StageCallback | None = None,
) -> BatchResult:
    """Measure every partition not yet done on a Dask cluster, then finish the run over all parcels.

    Args:
        parcels, imagery, season, config, parcels_crs, parcels_datum, parcels_layer, risk_model: as for
            ``run_assessment``.
        out: output folder; partition files and ``_manifest.json`` go to ``out/partitions``.
        model: the cropland model (sent to the workers), or its name or weights file as for ``run_assessment``.
        scheduler: address of an existing Dask scheduler (``tcp://HOST:PORT``), whose workers are not sized here
            (``workers``, ``gpu_workers`` and ``memory_limit`` with it are refused); None starts a
            local cluster of ``workers`` processes (default: one per core), one thread each.
            Its workers with the ``GPU`` resource run the CNN for the others.
        workers: local CPU workers.
        memory_limit: per local worker ("auto": the machine's memory shared among them).
        processes: local workers as processes (False: threads of this process, for tests).
        parcels_per_partition: about how many parcels one task measures (whole windows).
        retries: further attempts of a partition that raised before it is recorded failed.
        gpu_workers: extra local workers with the ``GPU`` resource, one per CUDA device (each
            sees only its own); they run the CNN's inference for the CPU workers.
        device: ``auto`` runs the CNN on the cluster's GPU workers when it has any, ``cuda``
            requires them, and their CUDA (a partition a GPU worker ran on its CPU fails, retried elsewhere), ``cpu``
            keeps it on CPUs everywhere.
        progress: called with (parcels done, parcels total) as partitions finish.
        stage: called with ``pipeline.PORTFOLIO_STAGES`` once measuring is over, as the driver reads the partitions
            back and finishes the run.

    Returns:
        The assessment and the partitions' fate; write it with ``write_outputs``.
    """
    started = time.perf_counter()
    # An input among the files write_outputs puts in ``out`` would be overwritten by them: refused before any work.
    out = output_folder(out, create=False, inputs={"parcels": parcels, "config": config, "risk_model": risk_model})
    if scheduler and (workers or gpu_workers or memory_limit != "auto"):
        raise InputError("workers=, gpu_workers= and memory_limit= size a local cluster, and scheduler= names one "
                         "already running: start its workers yourself (dask worker ... --memory-limit 4GiB "
                         "[--resources GPU=1])")
    config = load_config(config)
    # The driver never runs the model: each worker puts it on its own device.
    model = cropland_model(model, config, "cpu")
    warn_of_model(model)
    if device == "cuda" and uses_gpu(model) and not scheduler:
        if not (devices := local_gpu_count(model)):
            raise InputError("--device cuda (device= in Python): torch sees no CUDA device here, so no local worker "
                             "can run the CNN on a GPU; use --device auto or cpu, or --scheduler (scheduler=) with "
                             "workers that offer the GPU")
        if not 0 < gpu_workers <= devices:
            raise InputError(f"--device cuda (device= in Python): {gpu_workers} local GPU worker(s) asked for, and "
                             f"torch sees {devices} CUDA device(s) here; ask for 1 to {devices} (--gpu-workers, "
                             "gpu_workers= in Python)")
    if isinstance(imagery, str | Path):
        imagery = Path(imagery).absolute()  # workers may run in another folder
    inputs = load_inputs(parcels, imagery, season=season, config=config, parcels_crs=parcels_crs,
                         parcels_datum=parcels_datum, parcels_layer=parcels_layer, risk_model=risk_model)
    folder = partitions_folder(out)
    with exclusive(folder):  # two runs into one folder would remove each other's part files
        manifest_path = folder / MANIFEST
        plan = plan_partitions(inputs, measuring_key(model), parcels_per_partition)
        # Finished and whole, with every read done: a partition with a parcel on pixels a read failure left without
        # data is measured again (``is_complete``: the failure may have passed), as is, for a model reading context
        # around its windows (the CNN), one where a failure left pixels of the context without data (flagging no
        # parcel: the window was measured without it); a failure that left nothing the model read without data (a
        # twin product of the date supplied its pixels, or, for a per-pixel model, they are under no parcel)
        # changed nothing measured, as assess judges it. So is one whose file will not read back whole, or whose
        # manifest entry does not say how its model ran (a driver killed between the two) or, with --device cpu,
        # says another precision, or with --device cuda, another device.
        previous = read_manifest(manifest_path)
        asked = inference_used(portable(model)) if device == "cpu" else None
        on_gpu = device == "cuda" and uses_gpu(model)
        reads_context = model_read_context(model)[0] > 0
        todo = [p for p in plan if not is_complete(folder / p.file_name, len(p.rows), reads_context)
                or not _measured_as(previous.get(p.partition_id), asked, on_gpu)]
        total = sum(len(p.rows) for p in plan)
        done = total - sum(len(p.rows) for p in todo)

        def on_done(parcels_done: int) -> None:
            nonlocal done
            done += parcels_done
            if progress is not None:
                progress(done, total)

        failed: dict[str, str] = {}
        client, cluster = _connect(scheduler, workers, gpu_workers, memory_limit, processes) if todo else (None, None)
        try:
            gpu_cluster = client is not None and device != "cpu" and uses_gpu(model) and cluster_has_gpu(
                every_worker(client))
            if client is not None and scheduler:
                check_workers(client)
            if client is not None and on_gpu and not gpu_cluster:
                raise InputError(f"--device cuda (device= in Python): no worker of the cluster offers the "
                                 f"{GPU_RESOURCE} resource (start them with "
                                 f"`dask worker --resources {GPU_RESOURCE}=1`)")
            # Only now, with the arguments found usable, is anything of an earlier run removed.
            entries = _start_manifest(folder, plan, {p.partition_id for p in todo}, previous, parcels_per_partition)
            if progress is not None:
                progress(done, total)
            if client is not None:
                failed = _measure_on_cluster(client, todo, inputs, portable(model), gpu_cluster, folder, entries,
                                             manifest_path, retries, on_done, give_up_without_workers=not scheduler,
                                             on_gpu=on_gpu)
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
                # Its workers are gone: a partition file one was writing (interrupted, say) is no result. A
                # --scheduler cluster's workers may still be writing theirs.
                for unfinished in folder.glob(".part-*.tmp"):
                    unfinished.unlink(missing_ok=True)
        timings = {"measure": time.perf_counter() - started}
        if stage is not None:
            stage(PORTFOLIO_STAGES)

        stats = empty_stats(len(inputs.geoms), len(inputs.imagery.scenes))
        failed_rows = np.zeros(len(inputs.geoms), dtype=bool)
        for p in plan:
            if p.partition_id in failed:
                failed_rows[p.rows] = True
            else:
                fill_stats(stats, folder / p.file_name, p.rows)
        stats["read_failures"] = failure_table(f for entry in entries.values() if entry["status"] == "done"
                                               for f in entry["read_failures"])
        measurements, outside = assemble_measurements(inputs.geoms, inputs.imagery, stats, model_margins(model))
        assessment = finish_assessment(inputs, model, measurements, outside, timings, started, failed=failed_rows,
                                       extent=output_extent(inputs.geoms, inputs.imagery),
                                       inference=_inference_summary(entries.values()))
        warn_of_findings(assessment)
        return BatchResult(assessment, len(plan), len(plan) - len(todo), failed)


def _measured_as(entry: dict | None, asked: list[dict] | None, on_gpu: bool) -> bool:
    """True when a manifest entry says how its partition's model ran (``inference_used``), and, when ``asked``
    says how this run's will, that it ran so; ``on_gpu``, that it ran on CUDA devices only."""
    known = (entry or {}).get("inference")
    if known is None or (asked is not None and known != asked):
        return False
    return not on_gpu or all(str(kind["device"]).startswith("cuda") for kind in known)


def _inference_summary(entries: Iterable[dict]) -> list[dict]:
    """The kinds of inference (device, precision) the measured partitions ran, each with how many partitions did (one
    whose windows ran on two kinds counts under both); warned of when their precisions differ (the CNN's bf16 and
    float32 classes differ on a few pixels in 1,000)."""
    counts = Counter(json.dumps(kind, sort_keys=True) for entry in entries if entry["status"] == "done"
                     for kind in entry["inference"])
    summary = [{**json.loads(kind), "partitions": n} for kind, n in sorted(counts.items())]
    precisions = sorted({kind["precision"] for kind in summary})
    if len(precisions) > 1:
        logger.warning("the partitions of this run were measured in %s (%s): their cropland classes can differ on a "
                       "few pixels in 1,000; to measure every partition in one precision, rerun into a new --out, or "
                       "with --device cpu, which measures again those not measured on a CPU", " and ".join(precisions),
                       "; ".join(f"{k['partitions']} on {k['device']} in {k['precision']}" for k in summary))
    return summary


def partitions_folder(out: Path) -> Path:
    """``out``'s ``partitions`` folder, each made if missing and checked writable (``out`` first: a read-only
    ``out`` is named as itself); absolute, as workers may run in another folder.

    Raises:
        InputError: Either cannot be made or written in.
    """
    return writable_folder(writable_folder(out.absolute()) / "partitions")


def exclusive(folder: Path) -> AbstractContextManager[None]:
    """Hold ``folder``'s lock file (``.lock``) while the body runs; within a body that holds it already (the CLI
    holds it over ``run_batch`` and ``write_outputs``), nothing more.

    Raises:
        InputError: Another run holds it.
    """
    return held_lock(folder / LOCK_NAME, f"{folder.parent}: another farmcredit batch is writing there; wait for it or "
                     "use another --out")


def _start_manifest(folder: Path, plan: list[Partition], todo: set[str],
                    previous: Mapping[str, dict], parcels_per_partition: int) -> dict[str, dict]:
    """Remove what no partition of ``plan`` is (warning of finished partitions of an earlier run among it), and write
    the manifest: those in ``todo`` pending, the rest done (keeping what the ``previous`` manifest's entries say of
    how they were measured and of the read failures that cost them nothing, which run.json names as assess does),
    each with the ``parcels_per_partition`` it was cut at."""
    current = {p.file_name for p in plan}
    _warn_discarded(folder, [entry for entry in previous.values() if entry.get("status") == "done"
                             and part_file_name(entry["id"]) not in current
                             and (folder / part_file_name(entry["id"])).is_file()],
                    parcels_per_partition, len(plan) - len(todo))
    for stale in [*folder.glob("*.tmp"), *folder.glob("part-*.parquet"), folder / "manifest.json"]:
        # Left by a writer killed mid-write (never a result: results appear only by rename), by a run
        # on other inputs, or by an older farmcredit: none is reused, and the folder stays one dataset.
        if stale.name not in current:
            stale.unlink(missing_ok=True)
    entries = {}
    for p in plan:
        earlier = previous.get(p.partition_id, {})
        measured = {} if p.partition_id in todo else earlier
        entries[p.partition_id] = {"id": p.partition_id, "parcels": len(p.rows),
                                   "status": "pending" if p.partition_id in todo else "done",
                                   "attempts": earlier.get("attempts", 0), "error": None,
                                   "read_failures": measured.get("read_failures", []),
                                   "inference": measured.get("inference"), "partition_parcels": parcels_per_partition}
    write_manifest(folder / MANIFEST, entries)
    return entries


def _warn_discarded(folder: Path, discarded: list[dict], parcels_per_partition: int, reused: int) -> None:
    """Warn, before they are removed, of an earlier run's finished partitions (their manifest ``entries``) that this
    run's plan has not: its ``--partition-parcels`` (as the manifest says) groups the parcels otherwise, or its inputs
    differ."""
    if not discarded:
        return
    earlier = sorted({entry["partition_parcels"] for entry in discarded if "partition_parcels" in entry})
    said = (f"{folder}: {len(discarded)} finished partition(s) of an earlier run are not among this run's and are "
            f"removed ({reused} reused)")
    if earlier and earlier != [parcels_per_partition]:
        logger.warning("%s: they were cut at --partition-parcels %s, this run at %d, which groups the parcels "
                       "otherwise (a rerun reuses a run's partitions only with its --partition-parcels)",
                       said, " and ".join(map(str, earlier)), parcels_per_partition)
    else:
        logger.warning("%s: this run's parcels, imagery, model or measuring settings differ from that run's%s", said,
                       "" if earlier else ", or its --partition-parcels groups the parcels otherwise (a rerun reuses "
                       "a run's partitions only with its --partition-parcels)")


def _connect(
    scheduler: str | None, workers: int | None, gpu_workers: int, memory_limit: str, processes: bool
) -> tuple[Client, SpecCluster | None]:
    """A client of the scheduler at ``scheduler``, or of a new ``local_cluster`` (returned too, to close it)."""
    from distributed import Client

    if scheduler:
        client = _scheduler_client(scheduler)
        _warn_thin_workers(every_worker(client))
        return client, None
    cluster = local_cluster(workers or os.cpu_count() or 1, gpu_workers, memory_limit, processes)
    return Client(cluster), cluster


def check_workers(client: Client) -> None:
    """Check, before any partition is submitted, that each worker of ``client``'s cluster runs farmcredit with this
    driver's measuring code (``measuring_code``): a worker without farmcredit cannot load a partition (a cluster of
    only such workers waited for ever), and one with other code has each partition it measures refused
    (``_refusal``), so every partition failed one by one. A worker that does not answer within ``_answer_deadline``
    (stalled, swapping, cut off, closing) is warned of and left to the per-partition check, as are workers that join
    later: it held the check until the scheduler dropped it (``worker-ttl``, 5 minutes), and was then refused as one
    without farmcredit.

    Raises:
        InputError: naming each worker that answered it cannot measure, and why.
    """
    code = measuring_code()
    unfit, silent = [], []
    for address, answer in sorted(_worker_answers(client, _answer_deadline()).items()):
        if isinstance(answer, OSError):  # no answer: the comm failed (CommClosedError too) or the deadline passed
            silent.append(f"{address} ({type(answer).__name__}: {answer})")
        elif isinstance(answer, BaseException):  # farmcredit, or this function in it, did not import there
            unfit.append(f"{address} cannot run this farmcredit ({answer})")
        elif "error" in answer:  # it imported, but cannot hash its measuring code
            unfit.append(f"{address} cannot run this farmcredit ({answer['error']})")
        elif answer["code"] != code:
            unfit.append(f"{address} runs farmcredit {answer['version']} with other measuring code "
                         f"({answer['code'][:16]})")
    if silent:
        logger.warning("--scheduler: %d worker(s) of the cluster did not answer the check of their farmcredit: %s; "
                       "each partition they take is checked there", len(silent), "; ".join(silent))
    if unfit:
        raise InputError(f"--scheduler: {len(unfit)} worker(s) of the cluster cannot measure this run's partitions: "
                         f"{'; '.join(unfit)}; install farmcredit {__version__} (measuring code {code[:16]}), as on "
                         "this machine, on every worker and restart them")


def _worker_answers(client: Client, deadline: float) -> dict[str, dict[str, str] | BaseException]:
    """Each worker's ``_worker_farmcredit``, asked of all at once and of each apart (one broadcast waits for its
    slowest worker): its answer, the exception loading it raised there (farmcredit did not import), or the comm
    error of a worker that could not be asked (a ``TimeoutError`` where it did not answer within ``deadline``
    seconds)."""

    async def ask(address: str) -> dict[str, dict[str, str] | BaseException]:
        try:
            return await asyncio.wait_for(client.run(_worker_farmcredit, workers=[address], on_error="return",
                                                     asynchronous=True), deadline)
        except asyncio.TimeoutError:
            return {address: TimeoutError(f"no answer in {deadline:g} s")}

    addresses = list(every_worker(client).get("workers", {}))

    async def ask_all() -> list[dict[str, dict[str, str] | BaseException]]:
        return await asyncio.gather(*(ask(address) for address in addresses))

    return {address: answer for answers in client.sync(ask_all) for address, answer in answers.items()}


def _answer_deadline() -> float:
    """Seconds a worker or scheduler is given to answer: twice Dask's connect timeout
    (``distributed.comm.timeouts.connect``, 30 s by default)."""
    import dask
    from dask.utils import parse_timedelta

    return 2 * parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")


def _worker_farmcredit() -> dict[str, str]:
    """Run on each worker by ``check_workers``: its farmcredit's version and measuring code, or the ``error`` that
    kept it from hashing that code (a part missing, as in an install without sources, or unreadable)."""
    try:
        return {"version": __version__, "code": measuring_code()}
    except Exception as error:
        # Returned, not raised: the driver takes an OSError reaching it for the comm's (a worker that did not
        # answer), while this one (FileNotFoundError, PermissionError) says the worker's farmcredit is unfit.
        return {"error": f"{type(error).__name__}: {error}"}


def _warn_thin_workers(scheduler_info: Mapping) -> None:
    """Warn of the workers of a ``--scheduler`` cluster (``every_worker``) whose memory limit is under
    ``MIN_WORKER_MEMORY`` (0: none): such workers churned for minutes, then every partition failed KilledWorker."""
    thin = [f"{address} ({worker['memory_limit'] / 2**20:.0f} MiB)"
            for address, worker in scheduler_info.get("workers", {}).items()
            if 0 < (worker.get("memory_limit") or 0) < MIN_WORKER_MEMORY]
    if thin:
        logger.warning("%d worker(s) of the cluster have a memory limit under %d GiB, where workers were killed over "
                       "and over: %s; start them with `dask worker --memory-limit 4GiB` or more", len(thin),
                       MIN_WORKER_MEMORY >> 30, some(thin))


def _scheduler_client(address: str) -> Client:
    """A client of the Dask scheduler at ``address``, connected within twice Dask's connect timeout.

    Dask bounds the connection, not the handshake after it: at a port where something else listens (the scheduler's
    own dashboard, any HTTP server) it waited for ever, and at one that speaks first (an SSH server) it read the
    banner as a message's length and asked for exabytes.

    Raises:
        InputError: no scheduler answered in time, or what answered is not one (refused, unreachable, no port,
            another scheme, not Dask's protocol).
    """
    from distributed import Client

    deadline = _answer_deadline()
    outcome: dict[str, Client | BaseException] = {}

    def connect() -> None:
        try:
            outcome["client"] = Client(address)
        except BaseException as exc:  # what ends the attempt is told below, in the caller's thread
            outcome["error"] = exc

    # A daemon thread: one left waiting on a silent port does not hold the process open.
    attempt = threading.Thread(target=connect, name="farmcredit-scheduler-connect", daemon=True)
    attempt.start()
    attempt.join(deadline)
    if isinstance(client := outcome.get("client"), Client):
        return client
    error = outcome.get("error")
    if error is not None and not isinstance(error, Exception):
        raise error
    why = f"{type(error).__name__}: {error}" if error is not None else f"no answer in its protocol in {deadline:g} s"
    raise InputError(f"--scheduler {address}: no Dask scheduler answered ({why}); give the scheduler's own address "
                     "(tcp://HOST:8786 by default, not its dashboard's)") from error


def local_cluster(
    workers: int, gpu_workers: int = 0, memory_limit: str = "auto", processes: bool = True
) -> SpecCluster:
    """A Dask cluster on this machine: ``workers`` one-thread CPU workers and ``gpu_workers`` GPU workers.

    GPU workers offer the ``GPU`` resource, see only their own CUDA device (``CUDA_VISIBLE_DEVICES``)
    and have two threads: the second keeps inference flowing while the first measures a partition.
    ``memory_limit`` is per worker ("auto": the machine's memory shared among them).
    """
    from distributed import Nanny, Scheduler, SpecCluster, Worker
    from distributed.system import MEMORY_LIMIT

    limit = worker_memory(workers + gpu_workers, memory_limit, MEMORY_LIMIT)
    # Loopback only, as LocalCluster: a scheduler runs pickled code for whoever reaches it. A task's failure is the
    # manifest's and the summary's to tell (each attempt's traceback from the worker, even with --quiet, was noise).
    options = {"nthreads": 1, "memory_limit": limit, "host": "127.0.0.1", "silence_logs": logging.CRITICAL}
    specs = {f"cpu-{i}": {"cls": Nanny if processes else Worker, "options": options} for i in range(workers)}
    for i in range(gpu_workers):
        gpu = {**options, "nthreads": 2, "resources": {GPU_RESOURCE: 1}}
        specs[f"gpu-{i}"] = ({"cls": Nanny, "options": {**gpu, "env": {"CUDA_VISIBLE_DEVICES": visible_device(i)}}}
                             if processes else {"cls": Worker, "options": gpu})
    # Its HTTP server (health, metrics) on a free port: on Dask's default, 8787, a second cluster on the machine
    # warned that the port was taken, even with --quiet.
    scheduler = {"host": "127.0.0.1", "dashboard": False, "dashboard_address": "127.0.0.1:0"}

    def start() -> SpecCluster:
        return SpecCluster(workers=specs, silence_logs=logging.ERROR,
                           scheduler={"cls": Scheduler, "options": scheduler})

    return _started_holding_interrupts(start) if processes else start()


def _started_holding_interrupts(start: Callable[[], SpecCluster]) -> SpecCluster:
    """``start()``'s cluster, with SIGINT held back while it starts: a Ctrl-C meanwhile closes the cluster and raises
    KeyboardInterrupt once it is up (where this is the main thread, which alone may set a handler, and the platform
    has signal masks; elsewhere ``start()`` as is).

    Ctrl-C at a terminal reaches its whole process group, and each local worker printed its tracebacks
    (CancelledError, KeyboardInterrupt) before the driver, which closes them, said "aborted". SIGINT is blocked in
    this thread meanwhile: the threads started in it (the cluster's event loop and those that spawn its worker
    processes, also the workers a Nanny restarts later) and the processes they spawn inherit the mask, so no worker
    takes a Ctrl-C. Ignoring SIGINT instead, as the workers inherited it, dropped the driver's Ctrl-C as well.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return start()
    # Started now, not by the first worker's spawn: starting it unblocks SIGINT in the thread that starts it.
    resource_tracker.ensure_running()
    interrupted: list[int] = []
    # A thread started before, which does not block SIGINT, may take the signal: it is recorded, not raised midway.
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        cluster = start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a SIGINT held meanwhile is recorded now
        signal.signal(signal.SIGINT, previous)
    if interrupted and previous is not signal.SIG_IGN:  # one ignoring Ctrl-C before (`cmd &` in a script) still does
        cluster.close()
        raise KeyboardInterrupt
    return cluster


def worker_memory(workers: int, memory_limit: str, machine: int) -> int | str:
    """Each local worker's memory limit: ``memory_limit`` as given, or for ``auto`` the ``machine``'s bytes shared,
    with a warning when that leaves a worker under ``MIN_WORKER_MEMORY``."""
    if memory_limit != "auto":
        return memory_limit
    share = machine // workers
    if share < MIN_WORKER_MEMORY:
        logger.warning("%d workers share this machine's memory at %.2f GiB each, under %d GiB, where workers were "
                       "killed over and over: start fewer (--workers)", workers, share / 2**30, MIN_WORKER_MEMORY >> 30)
    return share


def _measure_on_cluster(
    client: Client, todo: list[Partition], inputs: AssessmentInputs, model: CroplandModel, gpu_cluster: bool,
    folder: Path, entries: dict[str, dict], manifest_path: Path, retries: int, on_done: Callable[[int], None],
    give_up_without_workers: bool, on_gpu: bool = False,
) -> dict[str, str]:
    """Run ``measure_partition`` for each partition, resubmitting one that raised up to ``retries`` times (and one
    whose worker measured with other code than this driver's, or, with ``on_gpu``, ran the model off CUDA: a GPU
    worker whose CUDA is broken; ``_refusal``).

    Dask itself reschedules the tasks of a worker that died. The manifest is rewritten as partitions end, at most
    every ``MANIFEST_EVERY_S`` (each rewrite holds every partition: after each of thousands it cost minutes), also
    while none ends (a straggler), and as the last ends or the run is interrupted (Ctrl-C, the CLI's SIGTERM); a
    partition done but not yet in it is measured again by a rerun after a SIGKILL. Returns partition id -> reason
    for those that failed every attempt (``_WorkerWatch``: with ``give_up_without_workers``, also those left when the
    cluster stays without a worker).
    """
    from distributed import as_completed

    parcel_ids = inputs.table["parcel_id"].astype(str).to_numpy()
    code = measuring_code()
    # With GPU workers, partitions prefer the CPU workers so the GPU workers' threads stay free for
    # inference; loosely, so that they still run somewhere if no CPU worker is left.
    readers = cpu_workers(every_worker(client)) if gpu_cluster else []

    def submit(partition: Partition) -> Future:
        entries[partition.partition_id]["attempts"] += 1
        return client.submit(
            measure_partition, partition, parcel_ids[partition.rows], inputs.geoms[partition.rows], inputs.imagery,
            inputs.config, model, gpu_cluster, folder / partition.file_name, pure=False,
            workers=readers or None, allow_other_workers=bool(readers),
        )

    futures = {submit(p): p for p in todo}
    tries = dict.fromkeys((p.partition_id for p in todo), 1)
    failed: dict[str, str] = {}
    queue = as_completed(list(futures))
    watch = _WorkerWatch(client, give_up=give_up_without_workers)
    written, unwritten = time.monotonic(), False
    try:
        while futures:
            if not queue.has_ready():
                if watch.given_up():
                    for future, partition in futures.items():
                        future.cancel()
                        entry = entries[partition.partition_id]
                        entry["status"], entry["error"] = "failed", NO_WORKER_ERROR
                        failed[partition.partition_id] = NO_WORKER_ERROR
                        on_done(len(partition.rows))
                    break
                if unwritten and time.monotonic() - written >= MANIFEST_EVERY_S:  # a straggler holds the rest back
                    write_manifest(manifest_path, entries)
                    written, unwritten = time.monotonic(), False
                time.sleep(POLL_S)
                continue
            watch.saw_work()
            for future in queue.next_batch(block=False):
                partition = futures.pop(future)
                entry = entries[partition.partition_id]
                try:
                    result = future.result()
                    if refusal := _refusal(result, code, on_gpu):
                        (folder / result["file"]).unlink(missing_ok=True)
                        raise RuntimeError(refusal)
                    os.replace(folder / result["file"], folder / partition.file_name)
                    # One update, so an interrupt leaves the entry as it was or whole (signals land between bytecodes).
                    entry.update(read_failures=result["read_failures"], inference=result["inference"], status="done",
                                 error=None)
                except Exception as exc:  # any failure of one partition (corrupt input, a bug) must not stop the rest
                    if tries[partition.partition_id] <= retries:
                        tries[partition.partition_id] += 1
                        retry = submit(partition)
                        futures[retry] = partition
                        queue.add(retry)
                        continue
                    entry["status"], entry["error"] = "failed", _failure_reason(exc)
                    failed[partition.partition_id] = entry["error"]
                unwritten = True
                if time.monotonic() - written >= MANIFEST_EVERY_S:
                    write_manifest(manifest_path, entries)
                    written, unwritten = time.monotonic(), False
                on_done(len(partition.rows))
    except BaseException:  # also when interrupted (Ctrl-C, the CLI's SIGTERM): every file renamed so far is recorded
        with contextlib.suppress(InputError, OSError):  # the run's own error is the one to tell (a full disk's, once)
            write_manifest(manifest_path, entries)
        raise
    write_manifest(manifest_path, entries)
    return failed


def _failure_reason(exc: Exception) -> str:
    """A failed partition's reason for the manifest and summary: the exception, and for Dask's ``KilledWorker``
    (which says nothing of memory) the usual cause."""
    from distributed import KilledWorker

    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KilledWorker):
        reason += (" (workers died running it: often their --memory-limit, too low for one partition; see the "
                   "README on memory per worker)")
    return reason


def _refusal(result: dict, code: str, on_gpu: bool) -> str | None:
    """Why a partition's ``measure_partition`` result may not become its file: the worker measured with other code
    than ``code`` (this driver's ``measuring_code``, which the partition's id hashes), or, ``on_gpu``, ran the CNN off
    CUDA; None when it may."""
    if result.get("code") != code:
        return (f"worker {result.get('worker', '(unnamed: an older farmcredit)')} measures with other farmcredit code "
                f"(measuring code {str(result.get('code'))[:16]}, this run's {code[:16]}): install the same "
                "farmcredit on every worker")
    if on_gpu and not _measured_as(result, None, on_gpu):
        ran = ", ".join(sorted({str(kind["device"]) for kind in result["inference"]}))
        return f"--device cuda, but its worker ran the CNN on {ran}: it sees no CUDA device"
    return None


class _WorkerWatch:
    """Dask waits for workers without end. Looked at every ``WORKER_CHECK_S`` while partitions wait: a cluster
    without a worker for ``NO_WORKER_TIMEOUT_S`` gives up when ``give_up`` (a local cluster, whose workers died or
    cannot load the task), else says so once (a --scheduler cluster's workers may join late: adaptive, queued)."""

    def __init__(self, client: Client, give_up: bool) -> None:
        self.client, self.give_up = client, give_up
        self.checked, self.alone_since, self.said = time.monotonic(), None, False

    def saw_work(self) -> None:
        """A partition ended: the cluster has a worker."""
        self.alone_since = None

    def given_up(self) -> bool:
        """True once the cluster has been without a worker too long and this run gives up on it."""
        now = time.monotonic()
        if now - self.checked < WORKER_CHECK_S:
            return False
        self.checked = now
        if self.client.scheduler_info()["workers"]:
            self.alone_since = None
            return False
        self.alone_since = self.alone_since or now
        if now - self.alone_since < NO_WORKER_TIMEOUT_S:
            return False
        if not self.give_up and not self.said:
            self.said = True
            logger.warning("the Dask cluster has had no worker for %.0f s; partitions wait for one (start workers "
                           "that run this farmcredit and see the files)", now - self.alone_since)
        return self.give_up


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
