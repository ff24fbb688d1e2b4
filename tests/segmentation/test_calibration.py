"""`farmcredit calibrate`: Platt scaling and the area interval's margin fitted on a labelled scene, into the card."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from farmcredit.errors import InputError
from farmcredit.evaluation import score_against_truth
from farmcredit.pipeline import run_assessment
from farmcredit.segmentation.calibration import calibrate
from farmcredit.segmentation.card import DEFAULT_WEIGHTS, card_path, file_sha256, read_card, uncalibrated
from farmcredit.segmentation.cnn import CnnCroplandModel
from farmcredit.segmentation.data import load_labelled_scene


def _uncalibrated_copy(folder: Path, **training) -> Path:
    """The shipped weights with the card `farmcredit train` leaves: no Platt scaling, no area margin."""
    weights = folder / "trained.safetensors"
    shutil.copyfile(DEFAULT_WEIGHTS, weights)
    card = read_card(DEFAULT_WEIGHTS)
    card_path(weights).write_text(replace(card, name="trained", calibration=uncalibrated(), metrics={},
                                          training={**card.training, **training}).to_json())
    return weights


def test_calibrating_fits_platt_and_a_margin_whose_interval_holds_the_level_of_the_scenes_parcels(
        small_season, tmp_path: Path) -> None:
    weights = _uncalibrated_copy(tmp_path)
    card = calibrate(weights, small_season.root, device="cpu")
    assert read_card(weights) == card  # the card beside the weights rewritten, the weights untouched
    assert card.weights_sha256 == file_sha256(weights) == file_sha256(DEFAULT_WEIGHTS)
    assert card.calibration != uncalibrated() and card.calibration["mixed_margin"] > 0
    record = card.metrics["calibration"]
    assert record["parcels"] == len(pd.read_csv(small_season.truth_path)) and record["level"] == 0.8
    assert record["replaced"] == uncalibrated() and record["pixels"] > 0

    def gap(table: list[dict]) -> float:  # pixel-weighted distance between predicted and observed, per bin
        return sum(row["n"] * abs(row["predicted"] - row["observed"]) for row in table) / record["pixels"]

    assert gap(record["reliability_after"]) < gap(record["reliability_before"])
    results = run_assessment(small_season.parcels_path, small_season.imagery_dir,
                             model=CnnCroplandModel.from_file(weights, device="cpu")).parcels
    truth = pd.read_csv(small_season.truth_path, dtype={"parcel_id": str})
    assert score_against_truth(results, truth).interval_coverage >= 0.8


def test_a_copy_is_written_where_asked_and_the_shipped_weights_are_not_rewritten(small_season, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(small_season.root, scene, ignore=shutil.ignore_patterns("truth.csv"))
    with pytest.raises(InputError, match="shipped weights are not rewritten in place"):
        calibrate(DEFAULT_WEIGHTS, scene, device="cpu")
    out = tmp_path / "out" / "calibrated.safetensors"
    with pytest.warns(UserWarning, match="no area-interval margin was fitted"):
        card = calibrate(DEFAULT_WEIGHTS, scene, out, device="cpu")
    assert "mixed_margin" not in card.calibration and read_card(out) == card  # no truth: Platt alone
    assert file_sha256(out) == file_sha256(DEFAULT_WEIGHTS)
    assert read_card(DEFAULT_WEIGHTS).calibration["mixed_margin"] > 0  # the original card as it was


def test_a_scene_the_weights_trained_on_is_refused(small_season, tmp_path: Path) -> None:
    trained_on = load_labelled_scene(small_season.root).imagery_sha256()
    weights = _uncalibrated_copy(tmp_path, scene_imagery_sha256=[trained_on])
    before = card_path(weights).read_bytes()
    with pytest.raises(InputError, match="the model trained on this scene's imagery"):
        calibrate(weights, small_season.root, device="cpu")
    assert card_path(weights).read_bytes() == before


def test_a_truth_file_without_the_true_area_is_refused_by_name(small_season, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(small_season.root, scene)
    truth = pd.read_csv(scene / "truth.csv").drop(columns="true_cultivated_area_ha")
    truth.to_csv(scene / "truth.csv", index=False)
    with pytest.raises(InputError, match="truth.csv: no column true_cultivated_area_ha"):
        calibrate(_uncalibrated_copy(tmp_path), scene, device="cpu")


def test_the_command_writes_the_card_prints_the_reliability_and_assess_no_longer_warns(small_season,
                                                                                      tmp_path: Path) -> None:
    weights = _uncalibrated_copy(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "farmcredit", *args], capture_output=True, text=True, check=False)

    done = run("calibrate", str(weights), str(small_season.root), "--device", "cpu", "--level", "0.9")
    assert done.returncode == 0, done.stderr
    card = json.loads(card_path(weights).read_text())
    assert f"area margin {card['calibration']['mixed_margin']}" in " ".join(done.stderr.split())
    assert "predicted" in done.stdout and "0.9-1.0" in done.stdout
    assert card["metrics"]["calibration"]["level"] == 0.9
    assessed = run("assess", str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir),
                   "--model", str(weights), "--out", str(tmp_path / "out"), "--quiet")
    assert assessed.returncode == 0, assessed.stderr
    assert "no calibrated area interval" not in assessed.stderr
    refused = run("calibrate", str(weights), str(small_season.root), "--level", "1")
    assert refused.returncode == 2 and "--level" in refused.stderr
    assert np.isfinite(card["calibration"]["a"])
