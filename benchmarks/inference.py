"""Cropland CNN inference speed, projected to a full 10980 x 10980 tile, and GPU agreement with the CPU.

In one run:
- CPU float32: the whole ``predict`` path (checking and preparing input, network, scoring) on a
  synthetic season (``--px`` square, ``--dates``, 10 bands) with the shipped chip settings: Mpx/s,
  projected s per tile, and the share spent preparing input.
- With CUDA: network compute alone (prepared chips already on the GPU, ``--batch-size`` chips of
  ``--chip-px`` per call, after warm-up, synchronised), the figure behind "GPU compute per tile";
  the whole ``predict`` path on the GPU (preparation, transfer, compute, scoring); and the share
  of pixels whose class differs between CPU float32 and GPU bf16 on real imagery: FTW Austria
  (``--austria``, by default from ../shared/data beside the repository; skipped when absent) and
  sample_tiles/imagery. ``scripts/gpu_check.sh`` runs it on the GPU machine.
- Without CUDA too: the same share between CPU float32 and CPU bf16 autocast on that imagery,
  the class changes bf16 rounding alone makes (what the GPU comparison is expected to come near;
  CPU and GPU kernels round and accumulate differently, so it is no GPU measurement).

The CPU numbers are printed first; a GPU failure is reported after them (exit status 1).

Usage: python benchmarks/inference.py [--px 2048] [--dates 4] [--chip-px 1024] [--batch-size 8] [--austria TIF]
"""

from __future__ import annotations

import argparse
import math
import time
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window

from farmcredit.imagery import open_imagery, read_window
from farmcredit.segmentation.card import DEFAULT_WEIGHTS, MODEL_BANDS
from farmcredit.segmentation.cnn import CnnCroplandModel, chip_grid

TILE_PX = 10980
REPO = Path(__file__).resolve().parents[1]
AUSTRIA = REPO.parent / "shared" / "data" / "s2" / "ftw-austria-2021" / "inference-img.tif"
Season = tuple[np.ndarray, np.ndarray, tuple[str, ...]]


def seconds(run: Callable[[], object]) -> float:
    """Wall seconds of one call, with CUDA synchronised before and after."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    run()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def prepare_all(model: CnnCroplandModel, season: Season) -> None:
    """Check and prepare every chip of a season, as ``predict`` does, without running the network."""
    for _ in model.chip_batches(*season):
        pass


def predict_path(model: CnnCroplandModel, season: Season) -> str:
    """Mpx/s and projected s per tile of ``predict``, and the share of it spent preparing input."""
    crop = tuple(a[..., :256, :256] for a in season[:2])
    model.predict(*crop, season[2])  # warm-up
    total, prepare = seconds(lambda: model.predict(*season)), seconds(lambda: prepare_all(model, season))
    rate = season[1][0].size / total
    return (f"{rate / 1e6:.2f} Mpx/s, projected {TILE_PX**2 / rate:.1f} s per {TILE_PX} px tile; "
            f"preparing input {prepare / total:.0%} of it")


def real_seasons(austria: Path) -> dict[str, Season]:
    """FTW Austria (two dates of red, green, blue, NIR) when present, and sample_tiles, read by farmcredit."""
    found = {}
    if austria.exists():
        days = (date(2021, 6, 17), date(2021, 9, 25))
        layout = [(day, band) for day in days for band in ("B04", "B03", "B02", "B08")]
        found["austria"] = open_imagery(austria, band_layout=layout)
    else:
        print(f"FTW Austria: {austria} not found, left out of the GPU comparison")
    found["sample_tiles"] = open_imagery(REPO / "sample_tiles" / "imagery")
    cubes = {name: read_window(imagery, Window(0, 0, imagery.shape[1], imagery.shape[0]), MODEL_BANDS)
             for name, imagery in found.items()}
    return {name: (cube.reflectance, cube.clear, cube.bands) for name, cube in cubes.items()}


def gpu_report(args: argparse.Namespace, season: Season, real: dict[str, Season],
               cpu_classes: dict[str, np.ndarray]) -> None:
    """Print GPU compute alone, the whole predict path and class agreement with the CPU."""
    gpu = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cuda", chip_px=args.chip_px,
                                     batch_size=args.batch_size)
    print(f"GPU {torch.cuda.get_device_name()}, bf16 + channels_last, chips {args.chip_px} px, "
          f"{args.batch_size} per batch:")
    [chip] = gpu.chip_batches(*(a[..., : args.chip_px, : args.chip_px] for a in season[:2]), season[2])
    batch = (torch.from_numpy(chip.network_input).repeat(args.batch_size, 1, 1, 1, 1).cuda(),
             torch.from_numpy(chip.clear).repeat(args.batch_size, 1, 1, 1).cuda(),
             torch.from_numpy(chip.flags).repeat(args.batch_size, 1).cuda())
    for _ in range(3):
        gpu.logits(*batch)
    repeats = 10
    per_batch = seconds(lambda: [gpu.logits(*batch) for _ in range(repeats)]) / repeats
    batches = math.ceil(len(chip_grid(TILE_PX, TILE_PX, args.chip_px)) / args.batch_size)
    print(f"  compute alone: {TILE_PX**2 / (per_batch * batches) / 1e6:.1f} Mpx/s, projected "
          f"{per_batch * batches:.3f} s per tile ({batches} batches of {per_batch * 1e3:.1f} ms; edge chips as full)")
    print(f"  whole predict path: {predict_path(gpu, season)}")
    for name, real_season in real.items():
        print(f"  {name}: {disagreement(gpu.predict(*real_season).crop_class, cpu_classes[name])}")


def disagreement(classes: np.ndarray, reference: np.ndarray) -> str:
    """The share of pixels seen in ``reference`` (CPU float32) whose class, and whose crop vs non-crop call, differs."""
    seen = reference >= 0
    differs = np.mean(classes[seen] != reference[seen])
    flips = np.mean((classes[seen] > 0) != (reference[seen] > 0))
    return f"class differs from CPU float32 on {differs:.3%} of pixels (crop vs non-crop on {flips:.3%})"


def bf16_rounding(model: CnnCroplandModel, real: dict[str, Season], cpu_classes: dict[str, np.ndarray]) -> None:
    """Print the class changes of bf16 rounding alone: the CPU model under CPU bf16 autocast against float32."""
    for name, real_season in real.items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            classes = model.predict(*real_season).crop_class
        print(f"  {name}, CPU bf16 autocast: {disagreement(classes, cpu_classes[name])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--px", type=int, default=2048, help="side of the synthetic season, pixels")
    parser.add_argument("--dates", type=int, default=4)
    parser.add_argument("--chip-px", type=int, default=1024, help="GPU chip side")
    parser.add_argument("--batch-size", type=int, default=8, help="GPU chips per call")
    parser.add_argument("--austria", type=Path, default=AUSTRIA, help="the FTW Austria GeoTIFF (8 bands)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    reflectance = rng.random((args.dates, len(MODEL_BANDS), args.px, args.px), dtype=np.float32) * 0.4
    red, nir = MODEL_BANDS.index("B04"), MODEL_BANDS.index("B08")
    reflectance[:, nir] = np.maximum(reflectance[:, nir], reflectance[:, red])  # as on land; else refused as swapped
    season = (reflectance, rng.random((args.dates, args.px, args.px)) > 0.2, MODEL_BANDS)
    cpu = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu")
    print(f"CPU float32, {torch.get_num_threads()} threads, chips {cpu.chip_px} px, {cpu.batch_size} per batch, "
          f"{args.px} x {args.px} px, {args.dates} dates, 10 bands: {predict_path(cpu, season)}", flush=True)
    real = real_seasons(args.austria)
    cpu_classes = {name: cpu.predict(*real_season).crop_class for name, real_season in real.items()}
    print("real imagery read: " + ", ".join(f"{name} {r.shape[0]} dates x {r.shape[1]} bands x {r.shape[2]} x "
                                            f"{r.shape[3]} px" for name, (r, _, _) in real.items()), flush=True)
    print("bf16 rounding alone, on the CPU (an estimate of the GPU's disagreement, not a GPU measurement):")
    bf16_rounding(cpu, real, cpu_classes)
    if not torch.cuda.is_available():
        print("GPU: torch sees no CUDA device here, not measured")
        return
    try:
        gpu_report(args, season, real, cpu_classes)
    except Exception:
        traceback.print_exc()
        raise SystemExit("GPU run failed (the CPU numbers above stand)") from None


if __name__ == "__main__":
    main()
