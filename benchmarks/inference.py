"""Cropland CNN inference speed: Mpx/s and projected seconds for a full 10980 x 10980 tile.

Runs a few 1024 x 1024 chips (4 dates, 10 bands) and extrapolates to the tile (said in the
output). On CUDA (when available) it also runs bf16 + channels_last and reports the share of
pixels whose class differs from the CPU float32 run.

Usage: python benchmarks/inference.py [--chips N] [--dates T]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from farmcredit.segmentation.card import DEFAULT_WEIGHTS, MODEL_BANDS
from farmcredit.segmentation.cnn import CnnCroplandModel

TILE_PX = 10980


def bench(model: CnnCroplandModel, reflectance: np.ndarray, clear: np.ndarray, chips: int) -> tuple[float, np.ndarray]:
    """Seconds per chip (after one warm-up) and the last class map."""
    prediction = model.predict(reflectance, clear, MODEL_BANDS)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(chips):
        prediction = model.predict(reflectance, clear, MODEL_BANDS)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / chips, prediction.crop_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=3)
    parser.add_argument("--dates", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    reflectance = (rng.random((args.dates, len(MODEL_BANDS), 1024, 1024), dtype=np.float32) * 0.4)
    clear = rng.random((args.dates, 1024, 1024)) > 0.2
    tiles = TILE_PX * TILE_PX / 1024**2
    cpu = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu", chip_px=1024)
    seconds, cpu_classes = bench(cpu, reflectance, clear, args.chips)
    print(f"CPU float32, {torch.get_num_threads()} threads: {1024**2 / seconds / 1e6:.2f} Mpx/s, "
          f"{seconds:.2f} s per 1024 px chip, projected {seconds * tiles:.0f} s per {TILE_PX} px tile "
          f"(extrapolated from {args.chips} chips, {args.dates} dates, compute only)")
    if not torch.cuda.is_available():
        print("GPU: not available here, not measured")
        return
    gpu = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cuda", chip_px=1024, batch_size=8)
    seconds, gpu_classes = bench(gpu, reflectance, clear, max(args.chips, 10))
    print(f"GPU bf16 channels_last: {1024**2 / seconds / 1e6:.1f} Mpx/s, projected {seconds * tiles:.2f} s per tile; "
          f"class map differs from CPU on {np.mean(gpu_classes != cpu_classes):.2e} of pixels")


if __name__ == "__main__":
    main()
