"""Calibrate the cultivated-area interval (``mixed_margin``) of the rule and a CNN (default: the shipped one).

Split-conformal per parcel-size band, on the held-out calibration scene (seed 201, which no model
trained on): each model assesses it with no margin, and each band's margin is the smallest that
puts the true cultivated area inside the interval for 80% of its parcels (``evaluation.mixed_margin_for``). The CNN's
margin is written into its card (the weights are untouched) with its and the rule's scores on
the test scenes (seeds 301, 302); the rule's is printed for ``configs/default.yaml``. For weights
from ``farmcredit train``, ``farmcredit calibrate`` fits the margin and the Platt scaling alone.

Usage: python scripts/calibrate_area_interval.py [--weights MODEL.safetensors] [--work DIR] [--level 0.8]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_default_model import (  # noqa: E402
    CALIBRATION_SEED,
    REPO,
    TEST_SEEDS,
    area_scores,
    fit_margin,
    scene,
)

from farmcredit.config import load_config  # noqa: E402
from farmcredit.segmentation import DEFAULT_WEIGHTS  # noqa: E402
from farmcredit.segmentation.calibration import area_margin  # noqa: E402
from farmcredit.segmentation.card import write_card  # noqa: E402
from farmcredit.segmentation.cnn import CnnCroplandModel  # noqa: E402
from farmcredit.segmentation.rule import PhenologyRule  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "results" / "train-default")
    parser.add_argument("--level", type=float, default=0.8)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="the CNN whose card gets the margin")
    args = parser.parse_args()
    calibration_scene = scene(args.work, CALIBRATION_SEED)
    tests = [scene(args.work, s) for s in TEST_SEEDS]

    rule_config = load_config().cropland_rule
    unwidened = rule_config.model_copy(update={"mixed_margin": 0.0, "area_bands_ha": ()})
    rule_margins = area_margin(PhenologyRule(unwidened), calibration_scene, args.level)[0].rounded()
    rule = PhenologyRule(rule_config.model_copy(update={"mixed_margin": rule_margins.margins,
                                                        "area_bands_ha": rule_margins.bands_ha}))

    cnn = CnnCroplandModel.from_file(args.weights, device="cpu")
    card = replace(cnn.card, calibration=fit_margin(cnn.net, cnn.card, calibration_scene, args.level))
    calibrated = CnnCroplandModel(cnn.net, card, device="cpu")
    metrics = {**card.metrics, "simulated_test_area_cnn": area_scores(calibrated, tests),
               "simulated_test_area_rule": area_scores(rule, tests),
               "area_interval": {"level": args.level, "calibration_scene_seed": CALIBRATION_SEED,
                                 "area_bands_ha": card.calibration["area_bands_ha"],
                                 "cnn_mixed_margin": card.calibration["mixed_margin"],
                                 "rule_mixed_margin": list(rule_margins.margins)}}
    write_card(replace(card, metrics=metrics), args.weights)
    print(json.dumps({k: metrics[k] for k in ("simulated_test_area_cnn", "simulated_test_area_rule", "area_interval")},
                     indent=1))
    print(f"rule: set cropland_rule.mixed_margin: {list(rule_margins.margins)} and area_bands_ha: "
          f"{list(rule_margins.bands_ha)} in configs/default.yaml")


if __name__ == "__main__":
    main()
