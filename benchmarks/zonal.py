"""Benchmark exact per-parcel zonal statistics: farmcredit vs exactextract vs rasterstats.

Writes (once, cached under --out) a Sentinel-2-tile-sized float32 COG and N non-overlapping
parcels, then times every method single-threaded, each run in a fresh process so no GDAL
block cache carries over from another method's run (the operating system's page cache does: every
method reads the file warm, from memory, so the times are of decoding and computing, not of the
disk), and prints a Markdown table plus the largest per-parcel difference from exactextract.

    python benchmarks/zonal.py --parcels 1000 10000 100000 --out /tmp/zonal-bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SINGLE_THREAD = {
    "GDAL_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
os.environ.update(SINGLE_THREAD)

import numpy as np  # noqa: E402  (thread limits must be set before numpy loads)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assess_memory import missing_tools  # noqa: E402
from peak_memory import peak_rss_mib  # noqa: E402

PIXEL = 10.0
ORIGIN = (399_960.0, 4_500_000.0)  # upper-left corner of a UTM 50N Sentinel-2 tile
CRS = "EPSG:32650"
STATS = [
    "count",
    "mean",
    "stdev",
    "min",
    "max",
    "quantile(q=0.1)",
    "quantile(q=0.5)",
    "quantile(q=0.9)",
]
METHODS = ("farmcredit", "exactextract", "rasterstats")


def write_raster(path: Path, size: int, seed: int = 0) -> None:
    """Write a smooth-ish NDVI-like float32 COG (512 px tiles, DEFLATE, float predictor) with
    NaN cloud patches."""
    import rasterio
    from rasterio.transform import from_origin
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.05, 0.85, (size // 64 + 2, size // 64 + 2)).astype(np.float32)
    field = ndimage.zoom(coarse, 64, order=1, output=np.float32)[:size, :size]
    field += rng.normal(0, 0.04, (size, size)).astype(np.float32)
    clouds = ndimage.zoom(rng.random((size // 256 + 2,) * 2, dtype=np.float32), 256, order=1)
    field[clouds[:size, :size] > 0.93] = np.nan
    profile = dict(
        driver="COG",
        height=size,
        width=size,
        count=1,
        dtype="float32",
        crs=CRS,
        transform=from_origin(*ORIGIN, PIXEL, PIXEL),
        nodata=np.nan,
        blocksize=512,
        compress="DEFLATE",
        predictor="FLOATING_POINT",
        overviews="NONE",
    )
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(field, 1)
    tmp.rename(path)


def write_parcels(path: Path, n: int, size: int, seed: int = 1) -> None:
    """Write n non-overlapping rotated rectangles / irregular quadrilaterals of 0.1-2 ha over
    the whole tile, in random order: one per cell of a jittered grid."""
    import geopandas
    import shapely

    rng = np.random.default_rng(seed)
    per_side = int(np.ceil(np.sqrt(n)))
    spacing = size * PIXEL / per_side
    slot = rng.permutation(per_side * per_side)[:n]
    area = rng.uniform(1_000, 20_000, n)  # m2
    aspect = rng.uniform(1, 2.5, n)
    half = np.c_[np.sqrt(area * aspect), np.sqrt(area / aspect)] / 2
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])[None] * half[:, None, :]
    irregular = rng.random(n) < 0.5
    corners += (irregular[:, None, None] * rng.uniform(-0.15, 0.15, (n, 4, 2))) * half[:, None]
    turn = rng.uniform(0, np.pi, n)
    cos, sin = np.cos(turn)[:, None], np.sin(turn)[:, None]
    x = corners[..., 0] * cos - corners[..., 1] * sin
    y = corners[..., 0] * sin + corners[..., 1] * cos
    reach = np.hypot(x, y).max(axis=1)
    free = np.maximum(spacing / 2 - reach, 0)[:, None]
    centre = (np.c_[slot % per_side, slot // per_side] + 0.5) * spacing
    centre += rng.uniform(-1, 1, (n, 2)) * free / np.sqrt(2)
    xy = np.stack([x + centre[:, :1] + ORIGIN[0], ORIGIN[1] - (y + centre[:, 1:])], axis=-1)
    polygons = shapely.polygons(xy)
    frame = geopandas.GeoDataFrame({"parcel_id": np.arange(n)}, geometry=polygons, crs=CRS)
    frame.to_file(path, driver="GPKG", dataset_options={"VERSION": "1.2"})


def run_farmcredit(raster: Path, geometries: np.ndarray, size: int) -> tuple[dict, dict]:
    """Group parcels by the ``size`` px window holding their upper-left corner, read each
    group's bounding window once, then coverage + stats."""
    import rasterio
    import shapely
    from rasterio.windows import Window

    from farmcredit.zonal import coverage_fractions, zonal_stats

    timing = {"read": 0.0, "coverage": 0.0, "stats": 0.0}
    start = time.perf_counter()
    n = len(geometries)
    out = {
        name: np.full(n, np.nan)
        for name in ("count", "mean", "std", "min", "max", "p10", "p50", "p90")
    }
    with rasterio.open(raster) as src:
        t = src.transform
        xmin, ymin, xmax, ymax = shapely.bounds(geometries).T
        col0 = np.clip(np.floor((xmin - t.c) / t.a), 0, src.width).astype(np.int64)
        col1 = np.clip(np.ceil((xmax - t.c) / t.a), 0, src.width).astype(np.int64)
        row0 = np.clip(np.floor((ymax - t.f) / t.e), 0, src.height).astype(np.int64)
        row1 = np.clip(np.ceil((ymin - t.f) / t.e), 0, src.height).astype(np.int64)
        window_id = (row0 // size) * (src.width // size + 1) + col0 // size
        order = np.argsort(window_id, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(window_id[order]) != 0, True])
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            members = order[lo:hi]
            r0, c0 = row0[members].min(), col0[members].min()
            window = Window(c0, r0, col1[members].max() - c0, row1[members].max() - r0)
            tick = time.perf_counter()
            values = src.read(1, window=window)
            tock = time.perf_counter()
            coverage = coverage_fractions(
                geometries[members], src.window_transform(window), values.shape
            )
            tack = time.perf_counter()
            stats = zonal_stats(coverage, values, cell_area=abs(t.a * t.e))
            for name, array in out.items():
                array[members] = stats[name]
            timing["read"] += tock - tick
            timing["coverage"] += tack - tock
            timing["stats"] += time.perf_counter() - tack
    timing["total"] = time.perf_counter() - start
    return out, timing


def run_exactextract(raster: Path, geometries: np.ndarray, crs_wkt: str) -> tuple[dict, dict]:
    """exactextract's fastest Python path: raster-sequential over a WKB feature source."""
    import shapely
    from exactextract import exact_extract
    from exactextract._exactextract import Feature
    from exactextract.feature import FeatureSource

    class WKBFeature(Feature):
        def __init__(self, fid: int, wkb: bytes) -> None:
            Feature.__init__(self)
            self.fid, self.wkb = fid, wkb

        def geometry(self) -> bytes:
            return self.wkb

        def set_geometry_format(self) -> str:
            return "wkb"

        def get(self, name: str) -> int:
            return self.fid

        def fields(self) -> list[str]:
            return ["fid"]

    class WKBFeatureSource(FeatureSource):
        def __init__(self, wkbs: np.ndarray) -> None:
            super().__init__()
            self.wkbs = wkbs

        def count(self) -> int:
            return len(self.wkbs)

        def __iter__(self):
            for fid, wkb in enumerate(self.wkbs):
                yield WKBFeature(fid, wkb)

        def srs_wkt(self) -> str:
            return crs_wkt

    start = time.perf_counter()
    source = WKBFeatureSource(shapely.to_wkb(geometries))
    frame = exact_extract(
        str(raster),
        source,
        STATS,
        include_cols=["fid"],
        strategy="raster-sequential",
        output="pandas",
    )
    elapsed = time.perf_counter() - start
    frame = frame.set_index("fid").reindex(np.arange(len(geometries)))
    names = dict(
        count="count",
        mean="mean",
        std="stdev",
        min="min",
        max="max",
        p10="quantile_10",
        p50="quantile_50",
        p90="quantile_90",
    )
    out = {ours: frame[theirs].to_numpy(dtype=float) for ours, theirs in names.items()}
    return out, {"total": elapsed}


def run_rasterstats(raster: Path, geometries: np.ndarray) -> tuple[dict, dict]:
    """rasterstats with its defaults (cell-centre rasterisation, count/min/max/mean)."""
    from rasterstats import zonal_stats

    start = time.perf_counter()
    zonal_stats(list(geometries), str(raster))
    return {}, {"total": time.perf_counter() - start}


def worker(method: str, raster: Path, vector: Path, sample: int, result: Path, window: int) -> None:
    """Run one method once in this process; print its timings as JSON."""
    import pyogrio

    frame = pyogrio.read_dataframe(vector)
    geometries = frame.geometry.to_numpy()
    if sample < len(geometries):
        geometries = geometries[np.random.default_rng(2).choice(len(geometries), sample, False)]
    if method == "farmcredit":
        out, timing = run_farmcredit(raster, geometries, window)
    elif method == "exactextract":
        out, timing = run_exactextract(raster, geometries, frame.crs.to_wkt())
    else:
        out, timing = run_rasterstats(raster, geometries)
    if out:
        np.savez(result, **out)
    timing["max_rss_mb"] = peak_rss_mib()  # this method's own: the child's ru_maxrss starts at the driver's
    timing["parcels_run"] = len(geometries)
    print(json.dumps(timing))


def spawn(method: str, raster: Path, vector: Path, sample: int, result: Path, window: int) -> dict:
    """Run one method in a fresh single-threaded process and return its timings."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--raster",
        str(raster),
        "--vector",
        str(vector),
        "--sample",
        str(sample),
        "--result",
        str(result),
        "--window",
        str(window),
    ]
    done = subprocess.run(command, env=os.environ | SINGLE_THREAD, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(
            f"{method} on {sample} parcels of {vector} failed (exit status {done.returncode}):\n"
            f"{done.stderr.strip()}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def differences(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """Return the largest (absolute, relative) per-parcel difference; inf if NaNs differ."""
    finite = np.isfinite(theirs)
    if not np.array_equal(np.isfinite(ours), finite):
        return float("inf"), float("inf")
    diff = np.abs(ours[finite] - theirs[finite])
    relative = diff / np.maximum(np.abs(theirs[finite]), 1e-300)
    return float(diff.max(initial=0)), float(relative.max(initial=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--size", type=int, default=10980, help="raster width = height (px)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/farmcredit-zonal-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument(
        "--rasterstats-max",
        type=int,
        default=10_000,
        help="run rasterstats on a random sample of at most this many parcels "
        "and project its time; it is run once, not --repeat times",
    )
    parser.add_argument(
        "--window", type=int, default=1024, help="farmcredit's read window (px, ~memory)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--raster", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vector", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.raster, args.vector, args.sample, args.result, args.window)
        return

    if problem := missing_tools(args.methods, "--methods"):  # farmcredit itself imports
        raise SystemExit(problem)
    args.out.mkdir(parents=True, exist_ok=True)
    raster = args.out / f"ndvi_{args.size}.tif"
    if not raster.exists():
        print(f"writing {raster} ...", file=sys.stderr)
        write_raster(raster, args.size)
    rows = []
    for n in args.parcels:
        vector = args.out / f"parcels_{args.size}_{n}.gpkg"
        if not vector.exists():
            write_parcels(vector, n, args.size)
        runs: dict[str, list[dict]] = {method: [] for method in args.methods}
        # Methods take turns within each repeat, so a slow spell of the machine hits all.
        for repeat in range(args.repeat):
            for method in args.methods:
                if method == "rasterstats" and repeat > 0:
                    continue
                sample = min(n, args.rasterstats_max) if method == "rasterstats" else n
                result = args.out / f"result_{method}_{n}.npz"
                runs[method].append(spawn(method, raster, vector, sample, result, args.window))
                print(f"{method} {n}: {json.dumps(runs[method][-1])}", file=sys.stderr)
        timings: dict[str, dict] = {}
        for method, method_runs in runs.items():
            median = {
                key: statistics.median(run[key] for run in method_runs) for key in method_runs[0]
            }
            median["seconds"] = median["total"] * n / median["parcels_run"]
            timings[method] = median
        if {"farmcredit", "exactextract"} <= set(timings):
            ours = np.load(args.out / f"result_farmcredit_{n}.npz")
            theirs = np.load(args.out / f"result_exactextract_{n}.npz")
            timings["farmcredit"]["diffs"] = {
                name: differences(ours[name], theirs[name]) for name in ours.files
            }
        rows.append((n, timings))

    print("| method | parcels | seconds | parcels/s | speed vs exactextract | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for n, timings in rows:
        reference = timings.get("exactextract", {}).get("seconds")
        for method, t in timings.items():
            ratio = f"{reference / t['seconds']:.2f}x" if reference else "-"
            note = f" (projected from {t['parcels_run']:.0f})" if t["parcels_run"] < n else ""
            print(
                f"| {method}{note} | {n} | {t['seconds']:.2f} | {n / t['seconds']:,.0f} | "
                f"{ratio} | {t['max_rss_mb']:.0f} |"
            )
    print(
        f"\nMedian of {args.repeat} fresh single-threaded processes (rasterstats: 1 run); "
        f"farmcredit reads {args.window} px windows. "
        "exactextract: strategy='raster-sequential', raster by file path (rasterio source), "
        "parcels as a WKB feature source, the same 8 statistics as farmcredit. rasterstats: "
        "zonal_stats defaults (cell-centre, count/min/max/mean)."
    )
    for n, timings in rows:
        t = timings.get("farmcredit")
        if not t:
            continue
        other = t["total"] - t["read"] - t["coverage"] - t["stats"]
        print(
            f"\nfarmcredit at {n}: read {t['read']:.2f} s, coverage {t['coverage']:.2f} s, "
            f"stats {t['stats']:.2f} s, other {other:.2f} s"
        )
        if "diffs" in t:
            # count is the valid area in cells, so its relative difference is the area's.
            print(
                "max difference vs exactextract (absolute / relative): "
                + ", ".join(f"{k} {a:.1e} / {r:.1e}" for k, (a, r) in t["diffs"].items())
            )
            agree = all(t["diffs"][k][1] <= 1e-6 for k in ("mean", "count"))
            print(f"mean and area within 1e-6 relative for every parcel: {agree}")


if __name__ == "__main__":
    main()
