"""Cropland CNN inference speed, projected to a full 10980 x 10980 tile, and GPU agreement with the CPU.

In one run:
- CPU float32: the whole ``predict`` path (checking and preparing input, network, scoring) on a
  synthetic season (``--px`` square, ``--dates``, 10 bands of random reflectance made to read as land,
  ``as_land``) with the shipped chip settings: Mpx/s, projected s per tile, and the share spent
  preparing input; network compute alone on one chip beside an FTW-style U-Net (EfficientNet-B5
  encoder, 8 bands: ``ftw_unet.py``), as a ratio.
- Reading: farmcredit's ``read_window`` over all of sample_tiles/imagery (Cloud-Optimized
  GeoTIFFs, the model's 10 bands and SCL), projected to a tile of ``--dates`` dates: what the
  whole path is measured against (the goal is a path bound by reading, not by the model).
- With CUDA: network compute alone (prepared chips already on the GPU, ``--batch-size`` chips of
  ``--chip-px`` per call, after warm-up, synchronised), the figure behind "GPU compute per tile",
  and with the weights in channels_last instead (the layout not shipped), beside the FTW-style
  U-Net in float32 and in bf16 with channels_last on the same chips;
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
import copy
import math
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import rasterio
import torch
from ftw_unet import FtwStyleUNet
from rasterio.windows import Window

from farmcredit.imagery import open_imagery, read_window
from farmcredit.segmentation.card import DEFAULT_WEIGHTS, MODEL_BANDS
from farmcredit.segmentation.cnn import CnnCroplandModel, batch_plan
from farmcredit.simulate.spectra import as_land

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


def per_call(run: Callable[[], object], repeats: int = 10) -> float:
    """Mean seconds of ``run`` after three warm-up calls."""
    for _ in range(3):
        run()
    return seconds(lambda: [run() for _ in range(repeats)]) / repeats


def prepared_chips(model: CnnCroplandModel, season: Season, chip_px: int, count: int) -> tuple[torch.Tensor, ...]:
    """One prepared chip of ``chip_px`` from the season's corner, repeated ``count`` times, on the model's device."""
    [chip] = model.chip_batches(*(a[..., :chip_px, :chip_px] for a in season[:2]), season[2])
    return model.network_inputs(*(np.repeat(array, count, axis=0) for array in (chip.reflectance, chip.clear)),
                                chip.available)


def ftw_style(device: str, chip_px: int, count: int, bf16: bool) -> Callable[[], object]:
    """One no-grad call of the FTW-style U-Net on ``count`` random 8-band chips (channels_last when bf16)."""
    layout = torch.channels_last if bf16 else torch.contiguous_format
    net = FtwStyleUNet().eval().to(device, memory_format=layout)
    x = torch.rand(count, 8, chip_px, chip_px, device=device).contiguous(memory_format=layout)

    def run() -> torch.Tensor:
        with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            return net(x)
    return run


def compare_cpu_compute(model: CnnCroplandModel, season: Season) -> str:
    """Network compute alone on one chip of the shipped size, ours against the FTW-style U-Net, on the CPU."""
    chip_px = model.chip_px
    chip = prepared_chips(model, season, chip_px, 1)
    ours = per_call(lambda: model.logits(*chip), repeats=3)
    ftw = per_call(ftw_style("cpu", chip_px, 1, bf16=False), repeats=3)
    return (f"compute alone on one {chip_px} px chip: {chip_px**2 / ours / 1e6:.2f} Mpx/s, the FTW-style U-Net "
            f"(EfficientNet-B5, 8 bands) {chip_px**2 / ftw / 1e6:.2f} Mpx/s: ours takes {ours / ftw:.2f}x its time")


def enlarged_imagery(folder: Path, dates: int, factor: int) -> Path:
    """The first ``dates`` scenes of sample_tiles/imagery, each band repeated ``factor`` x ``factor`` times.

    The same files, compression and blocks as the sample (10 and 20 m bands, SCL), on a larger
    extent, so that reading is measured on windows of a realistic size.
    """
    for scene in sorted(p for p in (REPO / "sample_tiles" / "imagery").iterdir() if p.is_dir())[:dates]:
        (folder / scene.name).mkdir(parents=True)
        for source in scene.iterdir():
            if source.suffix != ".tif":
                (folder / scene.name / source.name).write_bytes(source.read_bytes())
                continue
            with rasterio.open(source) as band:
                data, profile = np.tile(band.read(1), (factor, factor)), band.profile
            profile.update(width=data.shape[1], height=data.shape[0])
            with rasterio.open(folder / scene.name / source.name, "w", **profile) as out:
                out.write(data, 1)
    return folder


def read_rate(dates: int) -> tuple[float, str]:
    """Projected s to read a tile of ``dates`` dates (the model's 10 bands and SCL), and a line."""
    with tempfile.TemporaryDirectory() as folder:
        imagery = open_imagery(enlarged_imagery(Path(folder), min(dates, 4), factor=6))
        window = Window(0, 0, imagery.shape[1], imagery.shape[0])
        cubes = []
        per_read = seconds(lambda: cubes.append(read_window(imagery, window, MODEL_BANDS)))
    [cube] = cubes
    per_date_px = cube.clear.size / per_read
    tile = TILE_PX**2 * dates / per_date_px
    _, rows, cols = cube.clear.shape
    return tile, (f"reading (sample_tiles' files, deflate COGs, enlarged to {len(cube.dates)} dates of {rows} x {cols} "
                  f"px, 10 bands + SCL): {per_date_px / 1e6:.2f} Mpx-dates/s, projected {tile:.1f} s per {TILE_PX} "
                  f"px tile of {dates} dates")


def prepare_all(model: CnnCroplandModel, season: Season) -> None:
    """Check, fill, move and normalise every chip of a season, as ``predict`` does, without running the network."""
    for batch in model.chip_batches(*season):
        model.network_inputs(batch.reflectance, batch.clear, batch.available)


def predict_path(model: CnnCroplandModel, season: Season) -> tuple[float, str]:
    """Projected s per tile of ``predict``, and a line with its Mpx/s and the share spent preparing input."""
    crop = tuple(a[..., :256, :256] for a in season[:2])
    model.predict(*crop, season[2])  # warm-up
    total, prepare = seconds(lambda: model.predict(*season)), seconds(lambda: prepare_all(model, season))
    rate = season[1][0].size / total
    return TILE_PX**2 / rate, (f"{rate / 1e6:.2f} Mpx/s, projected {TILE_PX**2 / rate:.2f} s per {TILE_PX} px tile; "
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
               cpu_classes: dict[str, np.ndarray], read_s: float) -> None:
    """Print GPU compute alone beside the FTW-style U-Net, the whole predict path and class agreement with the CPU."""
    gpu = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cuda", chip_px=args.chip_px,
                                     batch_size=args.batch_size)
    print(f"GPU {torch.cuda.get_device_name()}, bf16, chips {args.chip_px} px, "
          f"{args.batch_size} per batch:")
    batch = prepared_chips(gpu, season, args.chip_px, args.batch_size)
    ours, line = tile_compute(gpu, batch, args)
    print(f"  compute alone: {TILE_PX**2 / ours / 1e6:.1f} Mpx/s, projected {ours:.3f} s per tile ({line})", flush=True)
    channels_last = copy.deepcopy(gpu)
    channels_last.net.to(memory_format=torch.channels_last)
    other, _ = tile_compute(channels_last, batch, args)
    print(f"  compute alone with channels_last weights: {other:.3f} s per tile ({other / ours:.2f}x)", flush=True)
    # The FTW-style net's chips do not overlap (its tile is cut into whole chips; edge chips as full).
    ftw_batches = math.ceil(math.ceil(TILE_PX / args.chip_px) ** 2 / args.batch_size)
    for name, bf16 in (("float32", False), ("bf16 + channels_last", True)):
        ftw = per_call(ftw_style("cuda", args.chip_px, args.batch_size, bf16)) * ftw_batches
        print(f"  FTW-style U-Net (EfficientNet-B5, 8 bands), {name}: {ftw:.3f} s per tile ({ftw_batches} batches); "
              f"ours (bf16) takes {ours / ftw:.2f}x its time", flush=True)
    path_s, line = predict_path(gpu, season)
    print(f"  whole predict path: {line}; reading that tile (above) takes {read_s / path_s:.1f}x as long")
    for name, real_season in real.items():
        print(f"  {name}: {disagreement(gpu.predict(*real_season).crop_class, cpu_classes[name])}")


def tile_compute(model: CnnCroplandModel, batch: tuple[torch.Tensor, ...],
                 args: argparse.Namespace) -> tuple[float, str]:
    """Projected s of network compute per tile, and how: each chip of the tile's ``batch_plan`` at the per-chip time of
    a full batch (edge chips as full), inside the raster or at its edge as it is."""
    plan = batch_plan(TILE_PX, TILE_PX, args.chip_px, args.batch_size)
    sides = (True, False)
    chips = {interior: sum(len(members) for members, inside in plan if inside == interior) for interior in sides}
    per_batch = {interior: per_call(lambda interior=interior: model.logits(*batch, interior)) for interior in sides}
    total = sum(chips[interior] * per_batch[interior] / args.batch_size for interior in sides)
    return total, (f"{chips[True]} chips inside the tile at {per_batch[True] * 1e3:.1f} ms a batch, {chips[False]} at "
                   f"its edge at {per_batch[False] * 1e3:.1f} ms")


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
    as_land(*(reflectance[:, MODEL_BANDS.index(b)] for b in ("B02", "B03", "B04", "B08", "B11")))  # else refused
    season = (reflectance, rng.random((args.dates, args.px, args.px)) > 0.2, MODEL_BANDS)
    cpu = CnnCroplandModel.from_file(DEFAULT_WEIGHTS, device="cpu")
    cpu_s, line = predict_path(cpu, season)
    print(f"CPU float32, {torch.get_num_threads()} threads, chips {cpu.chip_px} px, {cpu.batch_size} per batch, "
          f"{args.px} x {args.px} px, {args.dates} dates, 10 bands: {line}", flush=True)
    print(f"  {compare_cpu_compute(cpu, season)}", flush=True)
    read_s, line = read_rate(args.dates)
    print(f"{line}; the CPU path takes {cpu_s / read_s:.1f}x as long", flush=True)
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
        gpu_report(args, season, real, cpu_classes, read_s)
    except Exception:
        traceback.print_exc()
        raise SystemExit("GPU run failed (the CPU numbers above stand)") from None


if __name__ == "__main__":
    main()
