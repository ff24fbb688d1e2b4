"""Peak memory and time of `farmcredit assess` on many parcels over a full-size tile.

Writes (once, cached) a synthetic 10980 x 10980 season in the Earth Search folder layout
(B02/B04/B08 at 10 m, B05/B8A/B11 and SCL at 20 m, tiled DEFLATE GeoTIFFs; fields whose NDVI
rises and falls over the dates) and N rotated-rectangle parcels of 0.1-2 ha, then runs the CLI
in a child process and reports its own peak resident memory (VmHWM, ``peak_memory.py``) and wall time.

Usage: python benchmarks/assess_memory.py --parcels 100000 [--dates 4] [--model rule|cnn] [--cache benchmarks/.cache]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_memory import run_reporting_peak  # noqa: E402

SIZE = 10980
ORIGIN = (199980.0, 3700020.0)
CRS = "EPSG:32650"
STRIP = 1098
FIELD_M = 60  # fields are 60 m cells of the pattern
TILES = ("50RKV", "50RLV", "50RMV", "50RNV", "50RPV")  # neighbours west to east


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
    reads every scene of its folder.
    """
    imagery = root / f"imagery-{tiles}x{dates}"
    phases = np.linspace(0.1, 1.0, dates) if dates > 1 else np.array([1.0])
    for (k, phase), tile in itertools.product(enumerate(phases), range(tiles)):
        scene = imagery / f"S2B_{TILES[tile]}_2024{4 + 2 * k:02d}15_0_L2A"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--dates", type=int, default=4)
    parser.add_argument("--model", default="rule", help="assess's --model (rule: the README's figure; cnn: the "
                        "default model, ~10 min of CPU inference per tile)")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.cache/fulltile"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    imagery = write_season(args.cache, args.dates)
    parcels = write_parcels(args.cache, args.parcels)
    print(f"inputs ready in {time.perf_counter() - tick:.0f} s: {imagery}, {parcels}")
    out = args.cache / "results"
    command = ["farmcredit", "assess", str(parcels), "--imagery", str(imagery), "--out", str(out),
               "--model", args.model, "--quiet"]
    tick = time.perf_counter()
    peak_gib = run_reporting_peak(command) / 1024
    seconds = time.perf_counter() - tick
    print(f"| parcels | dates | wall s | parcels/s | peak RSS GiB |\n|---|---|---|---|---|\n"
          f"| {args.parcels} | {args.dates} | {seconds:.0f} | {args.parcels / seconds:,.0f} | {peak_gib:.2f} |")


if __name__ == "__main__":
    main()
