"""How much a cropland CNN's calls on real L1C EuroSAT patches move when their atmosphere moves.

Takes a share ``k`` of the darkest-pixel offset (per band, the 1st percentile of the EuroSAT train
split: about the path radiance L1C carries over L2A) off every patch (negative ``k`` adds it) and
prints, per ``k``: the share of all 200 patches whose crop call flips (no labels used) and the
held-out split's accuracy and crop F1.

Usage: python scripts/atmosphere_sensitivity.py [WEIGHTS ...]   (default: the shipped model)
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from farmcredit.segmentation import DEFAULT_WEIGHTS
from farmcredit.segmentation.cnn import CnnCroplandModel
from farmcredit.segmentation.data import load_eurosat, split_eurosat
from farmcredit.segmentation.metrics import binary_metrics, patch_probability

EUROSAT = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels" / "eurosat"
SHARES = (-0.5, 0.0, 0.5, 1.0)


def main(weights: list[Path]) -> None:
    patches = load_eurosat(EUROSAT)
    train, test = split_eurosat(patches, 0.5, 0)
    bands = np.moveaxis(patches.reflectance[train], 2, -1).reshape(-1, patches.reflectance.shape[2])
    dark = np.nanpercentile(bands, 1, axis=0).astype(np.float32)[None, None, :, None, None]
    print("darkest-pixel offset:", [round(float(v), 3) for v in dark.ravel()])
    for path in weights:
        model = CnnCroplandModel.from_file(path, device="cpu")
        calls = {k: patch_probability(model, replace(patches, reflectance=patches.reflectance - k * dark)) >= 0.5
                 for k in SHARES}
        for k, called in calls.items():
            scores = binary_metrics(called[test], patches.is_crop[test])
            print(f"{model.name}  offset x {k:+.1f}: calls flipped {np.mean(called != calls[0.0]):.3f}, "
                  f"held-out accuracy {scores['accuracy']:.2f}, crop F1 {scores['f1']:.2f}")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or [DEFAULT_WEIGHTS])
