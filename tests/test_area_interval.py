"""The cultivated-area interval: edge-cell share, the calibrated margin, and its split-conformal fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from farmcredit.errors import InputError
from farmcredit.evaluation import mixed_margin_for
from farmcredit.pipeline import cultivated_fractions, mixed_cell_share
from farmcredit.zonal import coverage_fractions

GRID = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 100.0)  # 10 x 10 cells of 10 m, north-up


def test_mixed_cell_share_is_the_area_in_cells_a_parcel_only_partly_covers() -> None:
    aligned = shapely.box(20, 20, 60, 60)  # 4 x 4 whole cells
    shifted = shapely.box(25, 20, 65, 60)  # the same square half a cell east: 2 of 5 columns cut
    coverage = coverage_fractions([aligned, shifted], GRID, (10, 10))
    np.testing.assert_allclose(mixed_cell_share(coverage), [0.0, 0.25])


def test_the_margin_widens_the_interval_by_the_edge_share_within_0_and_1() -> None:
    shifted = shapely.box(25, 20, 65, 60)
    coverage = coverage_fractions([shifted], GRID, (10, 10))
    probability = np.zeros((10, 10), dtype=np.float32)
    probability[:, :5] = 0.9  # the parcel's western part, including its cut column, is cropland
    estimate, low, high = cultivated_fractions(coverage, probability, (0.25, 0.75))
    _, wide_low, wide_high = cultivated_fractions(coverage, probability, (0.25, 0.75), mixed_margin=0.4)
    assert wide_low[0] == pytest.approx(min(low[0], estimate[0] - 0.4 * 0.25))
    assert wide_high[0] == pytest.approx(max(high[0], estimate[0] + 0.4 * 0.25))
    _, zero_low, full_high = cultivated_fractions(coverage, probability, (0.25, 0.75), mixed_margin=100.0)
    assert zero_low[0] == 0.0 and full_high[0] == 1.0


def test_the_fitted_margin_is_the_conformal_quantile_of_what_each_parcel_needs() -> None:
    n = 9
    truth = pd.DataFrame({"parcel_id": [str(i) for i in range(n)], "polygon_area_ha": 1.0,
                          "true_cultivated_area_ha": 0.5, "broken_geometry": False})
    # Parcel i misses the truth by i/100 ha with no interval; its edge share is 0.5, so it needs 2i/100.
    estimate = 0.5 + np.arange(n) / 100
    results = pd.DataFrame({"parcel_id": truth["parcel_id"], "status": "ok", "polygon_area_ha": 1.0,
                            "cultivated_area_ha": estimate, "cultivated_area_low_ha": estimate,
                            "cultivated_area_high_ha": estimate})
    mixed = np.full(n, 0.5)
    # The ceil((n + 1) level)-th smallest need: the 8th of 9 for 80%, the 5th for 50%.
    assert mixed_margin_for(results, truth, mixed, level=0.8) == (pytest.approx(0.14), n)
    assert mixed_margin_for(results, truth, mixed, level=0.5) == (pytest.approx(0.08), n)
    # The conformal quantile needs n >= level / (1 - level): 9 parcels hold 90% (rank 9), not 95% (rank 10).
    assert mixed_margin_for(results, truth, mixed, level=0.9) == (pytest.approx(0.16), n)
    with pytest.raises(InputError, match=r"--level 0.95 .* needs at least 19 scored parcels .* and 9 were scored"):
        mixed_margin_for(results, truth, mixed, level=0.95)
    # A missed parcel on the pixel grid (no edge cells): no margin reaches it; one of nine fits 80%, three do not.
    on_grid = mixed.copy()
    on_grid[-1] = 1e-12
    assert mixed_margin_for(results, truth, on_grid, level=0.8) == (pytest.approx(0.14), n)
    on_grid[-3:] = 0.0
    with pytest.raises(InputError, match="no margin puts the truth inside the interval for 80% of the 9 scored "
                                         "parcels: 3 lie outside theirs and have no edge cells"):
        mixed_margin_for(results, truth, on_grid, level=0.8)
    # Truth that names none of the assessed parcels says why, not an IndexError.
    renamed = truth.assign(parcel_id="X" + truth["parcel_id"])
    with pytest.raises(InputError, match="no parcel of the truth could be scored: 9 not among the assessed parcels"):
        mixed_margin_for(results, renamed, mixed)
    small = truth.assign(polygon_area_ha=0.05)
    with pytest.raises(InputError, match="could be scored: 9 under 0.1 ha"):
        mixed_margin_for(results, small, mixed)
