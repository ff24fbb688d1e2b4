"""Scoring against the simulator's truth: the paired comparison of two models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farmcredit.evaluation import compare_area, coverage_text, paired_hits, score_against_truth


def _results(estimate: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"parcel_id": [str(i) for i in range(len(estimate))], "status": "ok", "polygon_area_ha": 1.0,
                         "cultivated_area_ha": estimate})


def test_compare_area_pairs_parcels_and_counts_who_alone_is_right() -> None:
    truth = pd.DataFrame({"parcel_id": [str(i) for i in range(11)], "polygon_area_ha": [1.0] * 10 + [0.05],
                          "true_cultivated_area_ha": [1.0] * 10 + [0.05], "broken_geometry": False})
    first = _results(np.array([1.0] * 8 + [1.5] * 2 + [9.0]))  # parcel 10 is under 0.1 ha: not scored
    second = _results(np.array([1.05] * 5 + [0.5] * 5 + [9.0]))
    scores = compare_area(first, second, truth)
    assert scores["parcels"] == 10
    assert (scores["first"], scores["second"]) == (0.8, 0.5)
    assert (scores["only_first"], scores["only_second"]) == (3, 0)
    assert scores["mcnemar_p"] == pytest.approx(0.25)  # 3 of 3 discordant parcels one way: 2 x 0.5^3
    assert compare_area(first, first, truth)["mcnemar_p"] == 1.0


def test_paired_hits_takes_any_truthy_arrays_and_no_items() -> None:
    counts = paired_hits(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))  # ints: ~1 would be -2 without bool
    assert (counts["only_first"], counts["only_second"], counts["mcnemar_p"]) == (1, 1, 1.0)
    empty = paired_hits(np.array([], dtype=bool), np.array([], dtype=bool))
    assert np.isnan(empty["first"]) and empty["mcnemar_p"] == 1.0


def test_parcels_in_error_or_missing_count_as_misses_not_as_left_out() -> None:
    """A run that failed on some parcels must not score better than one that measured them (a batch exiting 3)."""
    n = 10
    truth = pd.DataFrame({"parcel_id": [str(i) for i in range(n)], "polygon_area_ha": 1.0, "true_cultivated_area_ha":
                          1.0, "broken_geometry": False, "over_declared": False, "true_crop": "maize"})
    results = _results(np.array([1.0] * 8 + [1.5] * 2)).assign(
        cultivated_area_low_ha=0.9, cultivated_area_high_ha=1.1, crop="maize", reason_all="")
    whole = score_against_truth(results, truth)
    assert (whole.parcels_scored, whole.parcels_unassessed, whole.area_within_10pct) == (10, 0, 0.8)
    failed = results.copy()
    failed.loc[[0, 1], ["status", "cultivated_area_ha", "cultivated_area_low_ha", "cultivated_area_high_ha", "crop"]] \
        = ["error", np.nan, np.nan, np.nan, None]
    partial = score_against_truth(failed.drop(index=2), truth)  # two in error, one with no row at all
    assert (partial.parcels_scored, partial.parcels_unassessed) == (10, 3)
    assert partial.area_within_10pct == 0.5 and partial.interval_coverage == 0.7 and partial.crop_accuracy == 0.7
    assert partial.area_median_abs_error == 0.0  # of the parcels measured
    assert "| of which not assessed (error or no result: misses below) | 3 |" in partial.table()
    assert "| truth inside the low-high interval | 70.0% of 10 (95% range 39.7-89.2%) |" in partial.table()


def test_coverage_is_given_with_the_range_its_parcels_know_it_to() -> None:
    """78% of 198 parcels is within reach of an 80% interval; 77% of 2,000 is not (Wilson, 95%)."""
    assert coverage_text(0.8, 200) == "80.0% of 200 (95% range 73.9-85.0%)"
    assert coverage_text(154 / 198, 198) == "77.8% of 198 (95% range 71.5-83.0%)"
    assert coverage_text(0.77, 2000).endswith("(95% range 75.1-78.8%)")
    assert coverage_text(1.0, 5) == "100.0% of 5 (95% range 56.6-100.0%)"
    assert coverage_text(float("nan"), 0) == "no parcel"


def test_the_table_says_in_words_that_no_parcel_was_big_enough_to_score() -> None:
    """Parcels all under 0.1 ha printed nan% for the share within 10%, the median error and the crop; it says so as
    `farmcredit evaluate` does."""
    truth = pd.DataFrame({"parcel_id": ["0", "1"], "polygon_area_ha": 0.05, "true_cultivated_area_ha": 0.05,
                          "broken_geometry": False, "over_declared": False, "true_crop": "maize"})
    results = _results(np.array([0.05, 0.05])).assign(
        polygon_area_ha=0.05, cultivated_area_low_ha=0.04, cultivated_area_high_ha=0.06, crop="maize", reason_all="")
    table = score_against_truth(results, truth).table()
    assert "nan" not in table
    for measure in ("cultivated area within 10% of truth", "median relative area error",
                    "crop correct (cultivated parcels)"):
        assert f"| {measure} | no parcel of 0.1 ha or more to score |" in table
    assert "| truth inside the interval, parcels under 0.1 ha (measured) | 100.0% of 2 " in table


@pytest.mark.parametrize(("true_area", "estimate", "median", "crop"), [
    (0.0, 0.0, "no cultivated parcel to score", "no cultivated parcel to score"),
    (0.5, np.nan, "no parcel measured", "0.0%"),
])
def test_the_table_and_evaluate_say_in_words_why_there_is_no_median_error_or_crop_score(
        true_area, estimate, median, crop) -> None:
    """Parcels scored, but none truly cultivated (fallow land), or none of those measured (all in error), printed
    nan% for the median area error (and the crop's, where none is cultivated): each says why, in the table and in
    `farmcredit evaluate`'s report."""
    from farmcredit.evaluation import area_report
    from farmcredit.segmentation.metrics import format_report

    truth = pd.DataFrame({"parcel_id": ["0", "1"], "polygon_area_ha": 0.5, "true_cultivated_area_ha": true_area,
                          "broken_geometry": False, "over_declared": False, "true_crop": "maize" if true_area else
                          "fallow"})
    results = _results(np.array([estimate, estimate])).assign(
        polygon_area_ha=0.5, cultivated_area_low_ha=0.0, cultivated_area_high_ha=0.02, reason_all="",
        crop="fallow" if np.isfinite(estimate) else None)
    table = score_against_truth(results, truth).table()
    assert "nan" not in table
    assert f"| median relative area error | {median} |" in table
    assert f"| crop correct (cultivated parcels) | {crop} |" in table
    pixels = {"confusion": [[1, 0], [0, 1]], **dict.fromkeys(
        ("n", "accuracy", "f1", "iou", "precision", "recall", "balanced_accuracy", "majority_accuracy"), 1)}
    report = format_report({"kind": "scene", "pixels": pixels, "area": area_report(results, truth)})
    assert "nan" not in report and f"median relative error {median}," in report
