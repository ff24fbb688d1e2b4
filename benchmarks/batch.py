"""Throughput and memory per worker of `farmcredit batch` on a synthetic portfolio over several tiles.

Writes (once, cached) full-size 10980 x 10980 tiles side by side with `assess_memory.py`'s
generators, and N parcels spread over them, then for each worker count starts a local Dask
cluster (one thread per worker), runs `run_batch` against it as `--scheduler` would, and reports
parcels/s (whole run, and the measuring phase alone), the scaling ratio against one worker and
the peak resident memory of each worker and of the driver during that run (the inputs are written
in a child process, and the driver's peak is reset before each run).

With ``--model cnn --gpu-workers N`` the cluster also gets N GPU workers (one per CUDA device),
which run the CNN for the CPU workers, as ``farmcredit batch`` does.

In the same run, for each worker count, each comparison tool (``--compare``: exactextract, rasterstats) does the
per-parcel statistics of the same parcels and scenes as a script without farmcredit would (``assess_memory.by_hand``:
per scene, NDVI of the whole tile masked by SCL, then each parcel's NDVI mean, std and clear cells), one scene a task
over a pool of as many processes, and the table gives farmcredit's parcels/s over the tool's. farmcredit does more in
its time: six bands and every index, the cropland model, cultivated area with its interval, the credit stages on the
driver, every partition written; the script measures NDVI alone and writes nothing.

Usage: python benchmarks/batch.py --parcels 1000000 --tiles 4 [--dates 4] [--workers 1 2]
                                  [--model rule|cnn] [--gpu-workers N] [--compare exactextract rasterstats]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from distributed import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assess_memory import COMPARISONS, by_hand, date_count, missing_tools, write_parcels, write_season  # noqa: E402
from peak_memory import peak_rss_mib, reset_peak  # noqa: E402

from farmcredit.batch import run_batch  # noqa: E402
from farmcredit.batch.runner import local_cluster  # noqa: E402
from farmcredit.config import load_config  # noqa: E402
from farmcredit.segmentation import load_cropland_model  # noqa: E402


def _peak_rss_gib() -> float:
    """This process's peak resident memory, GiB (``peak_memory.peak_rss_mib``)."""
    return peak_rss_mib() / 1024


def run(parcels: Path, imagery: Path, out: Path, workers: int, partition_parcels: int, model_name: str,
        gpu_workers: int) -> dict[str, float]:
    """One uninterrupted batch run on a fresh local cluster of ``workers`` (+ ``gpu_workers``) workers, timed from
    before the cluster starts, as ``assess_memory.by_hand`` times the script from before its process pool starts."""
    reset_peak()  # the driver's peak of this run alone, not of an earlier run's
    shutil.rmtree(out, ignore_errors=True)
    config = load_config()
    model = load_cropland_model(model_name, config.cropland_rule, "cpu")
    ticks: list[float] = []
    started = time.perf_counter()
    with local_cluster(workers, gpu_workers) as cluster, Client(cluster) as client:
        result = run_batch(parcels, imagery, out, model=model, config=config, scheduler=cluster.scheduler_address,
                           parcels_per_partition=partition_parcels,
                           progress=lambda done, total: ticks.append(time.perf_counter()))
        seconds = time.perf_counter() - started
        worker_peaks = client.run(_peak_rss_gib).values()
    n = len(result.assessment.parcels)
    return {"parcels": n, "workers": workers, "seconds": seconds, "rate": n / seconds,
            "measure_rate": n / (ticks[-1] - ticks[0]), "worker_gib": max(worker_peaks), "driver_gib": _peak_rss_gib(),
            "partitions": result.partitions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--tiles", type=int, default=4)
    # 4: the fewest clear dates the default config assesses (agronomy.min_clear_observations); fewer only times reading.
    parser.add_argument("--dates", type=date_count, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partition-parcels", type=int, default=5000)
    parser.add_argument("--model", default="rule", help="cropland model: rule or cnn")
    parser.add_argument("--gpu-workers", type=int, default=0, help="extra workers with the GPU resource")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.cache/batch"))
    parser.add_argument("--compare", nargs="*", default=list(COMPARISONS), choices=COMPARISONS,
                        help="tools to run the per-parcel NDVI statistics with, beside batch (none: batch alone)")
    args = parser.parse_args()
    if problem := missing_tools(args.compare):
        raise SystemExit(problem)
    args.cache.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    # In a child process, so that writing them adds nothing to the driver's peak.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        imagery = child.submit(write_season, args.cache, args.dates, args.tiles).result()
        parcels = child.submit(write_parcels, args.cache, args.parcels, tiles=args.tiles).result()
    print(f"inputs ready in {time.perf_counter() - tick:.0f} s: {imagery}, {parcels}", flush=True)
    rows, theirs = [], []
    for workers in args.workers:  # each tool right after batch on as many workers: a busy spell hits both
        rows.append(run(parcels, imagery, args.cache / "results", workers, args.partition_parcels, args.model,
                        args.gpu_workers))
        theirs.append({tool: by_hand(tool, parcels, imagery, workers) for tool in args.compare})
    print(f"\n{args.tiles} tiles x {args.dates} dates, {rows[0]['partitions']} partitions, model {args.model}, "
          f"{args.gpu_workers} GPU workers\n"
          "| parcels | workers | wall s | parcels/s | measuring parcels/s | scaling | peak GiB/worker | driver GiB |\n"
          "|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['parcels']:,} | {row['workers']} | {row['seconds']:.0f} | {row['rate']:,.0f} | "
              f"{row['measure_rate']:,.0f} | {row['rate'] / rows[0]['rate']:.2f}x | {row['worker_gib']:.2f} | "
              f"{row['driver_gib']:.2f} |")
    if not args.compare:
        return
    print("\nThe per-parcel NDVI statistics alone by hand, the same parcels and scenes, a pool of as many processes\n"
          "| tool | parcels | workers | wall s | parcels/s | farmcredit batch's parcels/s / this | peak GiB/worker |\n"
          "|---|---|---|---|---|---|---|")
    for row, by_tool in zip(rows, theirs):
        for tool, their in by_tool.items():
            print(f"| {tool} | {their['parcels']:,} | {row['workers']} | {their['seconds']:.0f} | "
                  f"{their['rate']:,.0f} | {row['rate'] / their['rate']:.2f}x | {their['peak_gib']:.2f} |")
    print("\nBoth wall times start before their worker processes do: farmcredit's holds starting the local Dask "
          "cluster, the script's starting its process pool (and letting its idle processes go; the cluster's close "
          "is not timed). farmcredit batch's also holds the cropland model, six bands and every index, cultivated "
          "area, the credit stages and writing the partitions; the by-hand script reads B04, B08 and SCL whole, "
          "measures NDVI alone (exactextract: exact coverage; rasterstats: cell centres) and writes nothing.")


if __name__ == "__main__":
    main()
