"""Peak memory and time of `farmcredit assess` on many parcels over a full-size tile, beside a script without it.

Writes (once, cached) a synthetic 10980 x 10980 season in the Earth Search folder layout
(B02/B04/B08 at 10 m, B05/B8A/B11 and SCL at 20 m, tiled DEFLATE GeoTIFFs; fields whose NDVI
rises and falls over the dates) and N rotated-rectangle parcels of 0.1-2 ha, then runs the CLI
in a child process and reports its own peak resident memory (VmHWM, ``peak_memory.py``) and wall time.

In the same run, each comparison tool (``--compare``: exactextract, rasterstats) does the per-parcel part of the job
the way a short script without farmcredit would (``by_hand``), in a child process of its own, on the same parcels and
scenes: per scene, NDVI from the whole B04 and B08 bands, NaN where SCL (read at 10 m) is not clear, then each
parcel's NDVI mean, standard deviation and clear cells. The table gives both peaks and their ratio. That script does
less than `assess`: no other band or index, no cropland model, no credit stages, no outputs written.

Usage: python benchmarks/assess_memory.py --parcels 100000 [--dates 4] [--model rule|cnn] [--cache benchmarks/.cache]
                                          [--compare exactextract rasterstats]
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peak_memory import peak_rss_mib, run_reporting_peak  # noqa: E402

SIZE = 10980
ORIGIN = (199980.0, 3700020.0)
CRS = "EPSG:32650"
STRIP = 1098
FIELD_M = 60  # fields are 60 m cells of the pattern
TILES = ("50RKV", "50RLV", "50RMV", "50RNV", "50RPV")  # neighbours west to east
COMPARISONS = ("exactextract", "rasterstats")
CLEAR_SCL = (4, 5, 6)  # the default config's imagery.clear_scl_classes
# The season's dates: two months (61 days) apart from 15 April, as the figures measured on 2-4 dates were; more dates
# share the 183 days to 15 October, the fourth's.
SEASON_START = date(2024, 4, 15)
SEASON_DAYS = 183
DATE_STEP_DAYS = 61


def season_dates(dates: int) -> list[date]:
    """The acquisition dates of a synthetic season of ``dates`` dates (1 to ``SEASON_DAYS`` + 1), in order.

    >>> [f"{day:%d %b}" for day in season_dates(4)]
    ['15 Apr', '15 Jun', '15 Aug', '15 Oct']
    """
    if not 1 <= dates <= SEASON_DAYS + 1:
        raise ValueError(f"{dates} dates: a synthetic season has 1 to {SEASON_DAYS + 1} dates, one a day at most")
    step = min(DATE_STEP_DAYS, SEASON_DAYS / max(dates - 1, 1))
    return [SEASON_START + timedelta(days=round(k * step)) for k in range(dates)]


def date_count(text: str) -> int:
    """``--dates``: a number of dates ``season_dates`` spreads over the season."""
    try:
        season_dates(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--dates {text}: {exc}") from exc
    return int(text)


def _pattern(rows: slice, cols: slice, scale: int, phase: float) -> tuple[np.ndarray, np.ndarray]:
    """Red and NIR reflectance of a field mosaic at `phase` (0 bare .. 1 full canopy)."""
    r = np.arange(rows.start, rows.stop)[:, None] * scale // FIELD_M
    c = np.arange(cols.start, cols.stop)[None, :] * scale // FIELD_M
    field = (r * 7919 + c * 104729) % 97 / 96.0
    cover = np.clip(phase * (0.4 + field) - 0.1 * (field < 0.2), 0, 1)
    red = 0.20 - 0.16 * cover
    nir = 0.25 + 0.15 * cover
    return red, nir


def write_season(root: Path, dates: int, tiles: int = 1) -> Path:
    """Write the synthetic season under root/imagery-<tiles>x<dates> (scenes already there are kept).

    With ``tiles`` > 1, that many tiles of the same UTM zone lie side by side west to east, one
    scene folder per tile and date (as Earth Search serves them). A season of other dates or tiles
    goes to its own folder: a date's reflectance depends on how many dates there are, and a run
    reads every scene of its folder (scenes of dates this season has not, a cache of an older date scheme's, are
    removed).
    """
    imagery = root / f"imagery-{tiles}x{dates}"
    phases = np.linspace(0.1, 1.0, dates) if dates > 1 else np.array([1.0])
    seasons = list(itertools.product(zip(season_dates(dates), phases, strict=True), range(tiles)))
    names = {f"S2B_{TILES[tile]}_{day:%Y%m%d}_0_L2A" for (day, _), tile in seasons}
    for stale in (p for p in imagery.glob("S2B_*_L2A") if p.name not in names):
        shutil.rmtree(stale)
    for (day, phase), tile in seasons:
        scene = imagery / f"S2B_{TILES[tile]}_{day:%Y%m%d}_0_L2A"
        origin_x = ORIGIN[0] + tile * SIZE * 10
        if (scene / "SCL.tif").exists():
            continue
        scene.mkdir(parents=True, exist_ok=True)
        for band, res in (("B02", 10), ("B04", 10), ("B08", 10), ("B05", 20), ("B8A", 20), ("B11", 20), ("SCL", 20)):
            size = SIZE * 10 // res
            profile = {
                "driver": "GTiff", "width": size, "height": size, "count": 1, "crs": CRS,
                "dtype": "uint8" if band == "SCL" else "uint16", "nodata": 0, "tiled": True,
                "blockxsize": 512, "blockysize": 512, "compress": "deflate",
                "transform": Affine(res, 0, origin_x, 0, -res, ORIGIN[1]),
            }
            with rasterio.open(scene / f"{band}.tif", "w", **profile) as dst:
                for top in range(0, size, STRIP):
                    rows, cols = slice(top, min(top + STRIP, size)), slice(0, size)
                    if band == "SCL":
                        data = np.full((rows.stop - rows.start, size), 4, dtype=np.uint8)
                    else:
                        red, nir = _pattern(rows, cols, res, phase)
                        value = {"B04": red, "B08": nir, "B8A": nir, "B02": red * 0.6, "B05": (red + nir) / 2,
                                 "B11": 0.3 - 0.1 * (nir - 0.25) / 0.15}[band]
                        data = np.clip(value * 10000, 1, 65535).astype(np.uint16)
                    dst.write(data, 1, window=Window(0, top, size, rows.stop - rows.start))
    return imagery


def write_parcels(root: Path, n: int, seed: int = 0, tiles: int = 1) -> Path:
    """N non-overlapping rotated rectangles of 0.1-2 ha spread over the tiles (GeoParquet)."""
    path = root / (f"parcels_{n}.parquet" if tiles == 1 else f"parcels_{n}_{tiles}tiles.parquet")
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    cols, rows = int(np.ceil(np.sqrt(n * tiles))), int(np.ceil(np.sqrt(n / tiles)))
    pitch = min((tiles * SIZE * 10 - 400) / cols, (SIZE * 10 - 400) / rows)
    slots = rng.permutation(cols * rows)[:n]
    cx = ORIGIN[0] + 200 + (slots % cols + 0.5) * pitch
    cy = ORIGIN[1] - 200 - (slots // cols + 0.5) * pitch
    area = rng.uniform(1000, min(20000, 0.45 * pitch**2), n)
    aspect = rng.uniform(1, 3, n)
    w, h = np.sqrt(area * aspect), np.sqrt(area / aspect)
    angle = rng.uniform(0, np.pi, n)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    x = corners[:, 0] * w[:, None]
    y = corners[:, 1] * h[:, None]
    xr = cx[:, None] + x * np.cos(angle)[:, None] - y * np.sin(angle)[:, None]
    yr = cy[:, None] + x * np.sin(angle)[:, None] + y * np.cos(angle)[:, None]
    polygons = shapely.polygons(np.stack([xr, yr], axis=-1))
    frame = gpd.GeoDataFrame(
        {"parcel_id": [f"P{i:07d}" for i in range(n)], "borrower_id": [f"B{i // 3:07d}" for i in range(n)],
         "declared_crop": "maize", "declared_area_ha": area / 1e4},
        geometry=polygons, crs=CRS,
    )
    frame.to_parquet(path)
    return path


def missing_tools(tools: list[str], option: str = "--compare") -> str:
    """What keeps any of the comparison ``tools`` from importing, and how to install them or leave them out (the
    script's ``option`` naming its tools); '' when all import."""
    missing = {}
    for tool in tools:
        try:
            importlib.import_module(tool)
        except ImportError as error:
            missing[tool] = error
    if not missing:
        return ""
    rest = " ".join(tool for tool in tools if tool not in missing)
    return (f"{', '.join(f'{tool} ({error})' for tool, error in missing.items())} not importable: install the "
            f"comparison tools with pip install -e \".[test]\" (or leave them out: {option} {rest})")


def scene_ndvi(scene: Path) -> tuple[np.ndarray, Affine, rasterio.crs.CRS]:
    """One scene's NDVI (float32, the whole 10 m grid; NaN where SCL is not clear), its transform and CRS."""
    with rasterio.open(scene / "B04.tif") as red_file, rasterio.open(scene / "B08.tif") as nir_file, \
            rasterio.open(scene / "SCL.tif") as scl_file:
        red, nir = red_file.read(1), nir_file.read(1)
        scl = scl_file.read(1, out_shape=red.shape, resampling=Resampling.nearest)
        transform, crs = red_file.transform, red_file.crs
    ndvi = np.subtract(nir, red, dtype=np.float32)
    ndvi /= np.add(nir, red, dtype=np.float32)
    clear = np.zeros(scl.shape, dtype=bool)
    for scl_class in CLEAR_SCL:  # np.isin would take ~1 GiB more: it indexes by 8-byte integers
        clear |= scl == scl_class
    ndvi[~clear] = np.nan
    return ndvi, transform, crs


def scene_stats(tool: str, scene: Path, wkb: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """NDVI mean, standard deviation and clear cells of each parcel (``wkb``) on one scene by ``tool``, and this
    process's peak resident memory so far, MiB."""
    ndvi, transform, crs = scene_ndvi(scene)
    geoms = shapely.from_wkb(wkb)
    if tool == "exactextract":
        from exactextract import exact_extract
        from exactextract.raster import NumPyRasterSource

        left, top = transform @ (0, 0)
        right, bottom = transform @ (ndvi.shape[1], ndvi.shape[0])
        raster = NumPyRasterSource(ndvi, left, bottom, right, top, nodata=np.nan, srs_wkt=crs.to_wkt())
        frame = exact_extract(raster, gpd.GeoDataFrame(geometry=geoms, crs=crs), ["mean", "stdev", "count"],
                              output="pandas")
        stats = {"mean": frame["mean"], "std": frame["stdev"], "count": frame["count"]}
    else:
        from rasterstats import zonal_stats

        rows = zonal_stats(geoms, ndvi, affine=transform, nodata=np.nan, stats=["mean", "std", "count"])
        stats = {name: [row[name] for row in rows] for name in ("mean", "std", "count")}
    return {name: np.asarray(values, dtype=float) for name, values in stats.items()}, peak_rss_mib()


def _scenes(imagery: Path) -> Iterator[tuple[Path, shapely.Polygon]]:
    """Every scene folder of ``imagery`` with its footprint (the B04 grid's bounds)."""
    for scene in sorted(path.parent for path in imagery.glob("*/SCL.tif")):
        with rasterio.open(scene / "B04.tif") as band:
            yield scene, shapely.box(*band.bounds)


def by_hand(tool: str, parcels: Path, imagery: Path, workers: int = 0) -> dict[str, float]:
    """The per-parcel statistics of a season done with ``tool`` as a script without farmcredit would: every scene
    (``scene_stats``) on the parcels that touch it, one after another in this process (``workers`` 0) or spread over
    ``workers`` processes, gathered into one (parcels, dates) table of NDVI means.

    Returns:
        ``parcels``, ``seconds`` (reading the parcels to the gathered table), ``rate`` (parcels/s) and ``peak_gib``:
        this process's peak, or with workers the largest worker's, GiB.
    """
    started = time.perf_counter()
    geoms = gpd.read_parquet(parcels, columns=["geometry"]).geometry.to_numpy()
    scenes = list(_scenes(imagery))
    dates = sorted({scene.name.split("_")[2] for scene, _ in scenes})
    on = [np.flatnonzero(shapely.intersects(geoms, footprint)) for _, footprint in scenes]
    jobs = ([tool] * len(scenes), [scene for scene, _ in scenes], [shapely.to_wkb(geoms[rows]) for rows in on])
    mean = np.full((len(geoms), len(dates)), np.nan)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers else nullcontext() as pool:
        results = (pool.map if pool else map)(scene_stats, *jobs)
        peaks = []
        for (scene, _), rows, (stats, peak) in zip(scenes, on, results):
            column = dates.index(scene.name.split("_")[2])
            # A parcel across a tile edge keeps the last tile's part (a script would merge the parts; few cross).
            mean[rows, column] = stats["mean"]
            peaks.append(peak)
    seconds = time.perf_counter() - started
    return {"parcels": len(geoms), "seconds": seconds, "rate": len(geoms) / seconds,
            "peak_gib": (max(peaks) if workers else peak_rss_mib()) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--dates", type=date_count, default=4)
    parser.add_argument("--model", default="rule", help="assess's --model (rule: the README's figure; cnn: the "
                        "default model, ~10 min of CPU inference per tile)")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.cache/fulltile"))
    parser.add_argument("--compare", nargs="*", default=list(COMPARISONS), choices=COMPARISONS,
                        help="tools to run the per-parcel NDVI statistics with, beside assess (none: assess alone)")
    parser.add_argument("--by-hand", nargs=3, metavar=("TOOL", "PARCELS", "IMAGERY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.by_hand:  # the child process run_reporting_peak measures
        tool, parcels, imagery = args.by_hand
        by_hand(tool, Path(parcels), Path(imagery))
        return
    if problem := missing_tools(args.compare):
        raise SystemExit(problem)
    args.cache.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    imagery = write_season(args.cache, args.dates).resolve()
    parcels = write_parcels(args.cache, args.parcels).resolve()
    print(f"inputs ready in {time.perf_counter() - tick:.0f} s: {imagery}, {parcels}")
    out = args.cache / "results"
    command = ["farmcredit", "assess", str(parcels), "--imagery", str(imagery), "--out", str(out),
               "--model", args.model, "--quiet"]
    runs = {f"farmcredit assess --model {args.model}": (command, None)}
    runs.update({f"{tool}, NDVI by hand": (["assess_memory", "--by-hand", tool, str(parcels), str(imagery)], HERE)
                 for tool in args.compare})
    measured = {}
    for name, (module_args, cwd) in runs.items():
        tick = time.perf_counter()
        peak_gib = run_reporting_peak(module_args, cwd) / 1024
        measured[name] = (time.perf_counter() - tick, peak_gib)
    ours = measured[next(iter(runs))][1]
    print("\n| run | parcels | dates | wall s | parcels/s | peak RSS GiB | farmcredit's peak / this |\n"
          "|---|---|---|---|---|---|---|")
    for name, (seconds, peak_gib) in measured.items():
        print(f"| {name} | {args.parcels:,} | {args.dates} | {seconds:.0f} | {args.parcels / seconds:,.0f} | "
              f"{peak_gib:.2f} | {ours / peak_gib:.2f}x |")
    print("\nEach a child process of its own, its own peak (VmHWM). farmcredit assess: 6 bands + SCL read window by "
          "window, the cropland model, every index and statistic, the credit stages, every output written. By hand: "
          "per scene, NDVI of the whole tile from B04 and B08 masked by SCL, then each parcel's NDVI mean, std and "
          "clear cells (exactextract: exact coverage from a NumPy raster source; rasterstats: cell centres), "
          "nothing else, nothing written.")


if __name__ == "__main__":
    main()
