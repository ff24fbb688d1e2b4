"""Binary scores: an unbalanced set must not flatter a model that always gives the commoner answer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from farmcredit.segmentation.metrics import binary_metrics  # noqa: E402


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
