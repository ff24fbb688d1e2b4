"""Binary scores: an unbalanced set must not flatter a model that always gives the commoner answer."""

from __future__ import annotations

import numpy as np
import pytest

from farmcredit.segmentation.metrics import binary_metrics


def test_always_non_crop_scores_the_majority_accuracy_and_half_balanced() -> None:
    truth = np.array([True] * 3 + [False] * 7)
    scores = binary_metrics(np.zeros(10, dtype=bool), truth)
    assert scores["accuracy"] == scores["majority_accuracy"] == 0.7
    assert scores["balanced_accuracy"] == 0.5
    assert scores["confusion"] == [[7, 0], [3, 0]] and scores["f1"] == 0.0


def test_balanced_accuracy_is_the_mean_of_both_recalls() -> None:
    truth = np.array([True, True, False, False, False, False])
    predicted = np.array([True, False, True, False, False, False])
    scores = binary_metrics(predicted, truth)
    assert scores["balanced_accuracy"] == pytest.approx((1 / 2 + 3 / 4) / 2, abs=1e-4)
    assert scores["recall"] == 0.5 and scores["precision"] == 0.5


def test_balanced_accuracy_of_a_perfect_answer_on_one_class_is_one() -> None:
    assert binary_metrics(np.ones(4, dtype=bool), np.ones(4, dtype=bool))["balanced_accuracy"] == 1.0


def test_crop_types_are_scored_on_truly_typed_pixels_called_crop() -> None:
    from farmcredit.segmentation.card import CLASSES
    from farmcredit.segmentation.metrics import crop_type_scores

    truth = np.array([1, 1, 2, 2, 0, -1, 3])
    called = np.array([1, 2, 2, 0, 1, 1, 3])  # the 0 (called non-crop) and the untyped pixels do not count
    scores = crop_type_scores(called, truth, CLASSES)
    assert scores == {"n": 4, "accuracy": 0.75, "accuracy_per_class": {"wheat": 0.5, "maize": 1.0, "rice": 1.0}}
    assert crop_type_scores(np.zeros(3, int), np.ones(3, int), CLASSES) == {}


def test_evaluate_and_train_refuse_what_they_cannot_score_or_learn(small_season, tmp_path) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli
    from farmcredit.errors import InputError

    nothing = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "m.safetensors")])
    assert nothing.exit_code == 2 and "nothing to train on" in nothing.output
    unlabelled = CliRunner().invoke(cli, ["evaluate", "cnn", str(small_season.imagery_dir), "--device", "cpu"])
    assert isinstance(unlabelled.exception, InputError) and "not a labelled scene" in str(unlabelled.exception)


def test_evaluate_reports_crop_type_accuracy_on_a_simulated_scene(small_season) -> None:
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path, format_report

    report = evaluate_path(load_cropland_model("cnn", device="cpu"), small_season.root)
    types = report["crop_types"]
    assert types["n"] > 100 and 0 < types["accuracy"] <= 1
    assert set(types["accuracy_per_class"]) <= {"wheat", "maize", "rice", "soybean"}
    assert "crop type, on" in format_report(report)


def test_a_scene_without_a_truth_parcel_of_a_tenth_of_a_hectare_says_so_not_nan(small_season, tmp_path) -> None:
    """It printed 'within 10% of truth nan%, ... truth inside the low-high interval nan% of 0'."""
    import shutil

    import pandas as pd

    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path, format_report

    small = tmp_path / "small_parcels"
    shutil.copytree(small_season.root, small)
    truth = pd.read_csv(small / "truth.csv", dtype={"parcel_id": str})
    truth.assign(polygon_area_ha=0.05).to_csv(small / "truth.csv", index=False)
    text = format_report(evaluate_path(load_cropland_model("rule"), small))
    assert "\ncultivated area: no parcel of 0.1 ha or more to score\n  truth inside the interval, parcels " in text
    assert "nan" not in text and " of 0\n" not in text  # only the sizes that have parcels


def test_pixels_without_an_observation_are_left_out_and_counted_not_scored_as_non_crop(tmp_path) -> None:
    from farmcredit.errors import InputError
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.data import DEA_BANDS
    from farmcredit.segmentation.metrics import evaluate_path, format_report

    columns = ["Class"] + [f"{name}_S{season}" for season in (1, 2) for name in DEA_BANDS]
    vegetation = [0.04, 0.07, 0.05, 0.4, 0.25, 0.12, 0.1, 0.3, 0.38]  # one season, DEA_BANDS order
    table = np.array([[1, *vegetation, *vegetation]] * 6, dtype=float)
    table[:2, 1:] = np.nan  # two crop pixels with no band at all
    (tmp_path / "region").mkdir()
    np.savetxt(tmp_path / "region" / "training_data.txt", table, header=" ".join(columns))
    model = load_cropland_model("cnn", device="cpu")
    report = evaluate_path(model, tmp_path / "region")
    assert report["overall"]["n"] == 4 and report["unscored"] == 2
    assert sum(row["n"] for row in report["reliability"]) == 4
    assert "unscored: 2 pixel(s) without a usable observation" in format_report(report)
    table[2:, 1:] = np.nan
    np.savetxt(tmp_path / "region" / "training_data.txt", table, header=" ".join(columns))
    with pytest.raises(InputError, match="no dea pixel has a usable observation"):
        evaluate_path(model, tmp_path / "region")


def test_labelled_pixels_never_seen_clear_are_counted_as_unscored(small_season) -> None:
    from dataclasses import replace

    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.data import load_labelled_scene
    from farmcredit.segmentation.metrics import evaluate_scene, format_report

    scene = load_labelled_scene(small_season.root)
    clouded = scene.clear.copy()
    clouded[:, :5] = False  # the top five rows never clear
    report = evaluate_scene(load_cropland_model("rule"), replace(scene, clear=clouded))
    assert report["unscored"] == int(np.isfinite(scene.crop_cover[:5]).sum()) > 0
    assert f"unscored: {report['unscored']} pixel(s)" in format_report(report)
    assert "unscored" not in evaluate_scene(load_cropland_model("rule"), scene)


def test_the_rule_says_its_unscored_pixels_have_too_few_clear_dates_and_the_cnn_that_they_have_none(
        small_season) -> None:
    from dataclasses import replace

    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.data import load_labelled_scene
    from farmcredit.segmentation.metrics import evaluate_scene, format_report

    scene = load_labelled_scene(small_season.root)
    clear = np.ones_like(scene.clear)
    clear[2:, 10:20, 10:20] = False  # two clear dates: the CNN scores them, the rule (3 needed) cannot
    report = format_report(evaluate_scene(load_cropland_model("rule"), replace(scene, clear=clear)))
    assert "unscored: 100 pixel(s) with fewer than 3 clear dates (what the phenology rule needs)" in report
    clear[:, 30:40, 30:40] = False  # never clear: the CNN cannot score them either
    report = format_report(evaluate_scene(load_cropland_model("cnn", device="cpu"), replace(scene, clear=clear)))
    assert "unscored: 100 pixel(s) without a usable observation (red and NIR on a clear date)" in report


def test_the_rule_on_a_scene_of_too_few_dates_says_it_needs_more(small_season) -> None:
    """It said no pixel had a clear date, though two dates were clear everywhere."""
    from dataclasses import replace

    from farmcredit.errors import InputError
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.data import load_labelled_scene
    from farmcredit.segmentation.metrics import evaluate_scene

    scene = load_labelled_scene(small_season.root)
    two = replace(scene, reflectance=scene.reflectance[:2], clear=np.ones_like(scene.clear[:2]))
    with pytest.raises(InputError, match=r"the phenology rule needs 3 clear dates at a pixel; this scene has at most"):
        evaluate_scene(load_cropland_model("rule"), two)
