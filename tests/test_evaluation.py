"""Scoring against the simulator's truth: the paired comparison of two models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farmcredit.evaluation import compare_area, paired_hits


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
