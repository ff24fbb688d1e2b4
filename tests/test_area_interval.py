"""The cultivated-area interval: edge-cell share, the calibrated margin, and its split-conformal fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from affine import Affine

from farmcredit.config import load_config
from farmcredit.errors import InputError
from farmcredit.evaluation import mixed_margin_for
from farmcredit.margins import AreaMargins, model_margins
from farmcredit.pipeline import cultivated_fractions, mixed_cell_share, run_assessment, widened
from farmcredit.segmentation import PhenologyRule
from farmcredit.zonal import coverage_fractions

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
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
    edge = mixed_cell_share(coverage)
    wide_low, wide_high = widened(estimate, low, high, 0.4 * edge)
    assert wide_low[0] == pytest.approx(min(low[0], estimate[0] - 0.4 * 0.25))
    assert wide_high[0] == pytest.approx(max(high[0], estimate[0] + 0.4 * 0.25))
    zero_low, full_high = widened(estimate, low, high, 100.0 * edge)
    assert zero_low[0] == 0.0 and full_high[0] == 1.0


def test_cells_never_seen_clear_widen_the_interval_top_as_cells_off_the_imagery_do() -> None:
    """A parcel clouded on every date but a few cells was read on those alone: bare there, its interval stopped at
    0.02 of a field all wheat. Its cells without a probability (never clear) may all be crop."""
    square = shapely.box(20, 20, 60, 60)  # 4 x 4 whole cells
    coverage = coverage_fractions([square, square], GRID, (10, 10))
    probability = np.zeros((10, 10), dtype=np.float32)
    probability[4:8, 2:3] = np.nan  # one of the parcel's 4 columns never clear
    estimate, low, high = cultivated_fractions(coverage, probability, (0.25, 0.75))
    np.testing.assert_allclose([estimate[0], low[0], high[0]], [0.0, 0.0, 0.25])
    seen_all = cultivated_fractions(coverage, np.zeros((10, 10), dtype=np.float32), (0.25, 0.75))
    np.testing.assert_allclose([part[0] for part in seen_all], [0.0, 0.0, 0.0])


def _missed(n: int, area_ha: float | np.ndarray = 1.0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Truth and results of n parcels, parcel i missing its true area by i/100 of its area with no interval, and
    an edge share of 0.5: it needs a margin of 2i/100."""
    area = np.broadcast_to(np.asarray(area_ha, dtype=float), (n,))
    truth = pd.DataFrame({"parcel_id": [str(i) for i in range(n)], "polygon_area_ha": area,
                          "true_cultivated_area_ha": 0.5 * area, "broken_geometry": False})
    estimate = (0.5 + np.arange(n) / 100) * area
    results = pd.DataFrame({"parcel_id": truth["parcel_id"], "status": "ok", "polygon_area_ha": area,
                            "cultivated_area_ha": estimate, "cultivated_area_low_ha": estimate,
                            "cultivated_area_high_ha": estimate})
    return results, truth, np.full(n, 0.5)


def test_the_fitted_margin_is_the_conformal_quantile_of_what_each_parcel_needs() -> None:
    n = 9
    results, truth, mixed = _missed(n)

    def pooled(edge: np.ndarray, level: float) -> tuple[tuple[float, ...], tuple[int, ...]]:
        margins, counts = mixed_margin_for(results, truth, edge, level=level, bands_ha=())
        return margins.margins, counts

    # The ceil((n + 1) level)-th smallest need: the 8th of 9 for 80%, the 5th for 50%.
    assert pooled(mixed, 0.8) == (pytest.approx((0.14,)), (n,))
    assert pooled(mixed, 0.5) == (pytest.approx((0.08,)), (n,))
    # The conformal quantile needs n >= level / (1 - level): 9 parcels hold 90% (rank 9), not 95% (rank 10).
    assert pooled(mixed, 0.9) == (pytest.approx((0.16,)), (n,))
    with pytest.raises(InputError, match=r"--level 0.95 .* needs at least 19 scored parcels .* and 9 were scored"):
        pooled(mixed, 0.95)
    # A missed parcel on the pixel grid (no edge cells): no margin reaches it; one of nine fits 80%, three do not.
    on_grid = mixed.copy()
    on_grid[-1] = 1e-12
    assert pooled(on_grid, 0.8) == (pytest.approx((0.14,)), (n,))
    on_grid[-3:] = 0.0
    with pytest.raises(InputError, match="no margin puts the truth inside the interval for 80% of the 9 scored "
                                         "parcels of every size: 3 lie outside theirs and have no edge cells"):
        pooled(on_grid, 0.8)
    # Truth that names none of the assessed parcels says why, not an IndexError.
    renamed = truth.assign(parcel_id="X" + truth["parcel_id"])
    with pytest.raises(InputError, match="no parcel of the truth could be scored: 9 not among the assessed parcels"):
        mixed_margin_for(results, renamed, mixed)
    broken = truth.assign(broken_geometry=True)
    with pytest.raises(InputError, match="could be scored: 9 broken outlines"):
        mixed_margin_for(results, broken, mixed)


def test_each_parcel_size_gets_the_margin_its_own_parcels_need() -> None:
    # 100 parcels under 0.1 ha needing 0-0.495, 100 of 0.1-0.2 ha needing half that, 2 of a ha (too few to fit alone).
    misses = np.concatenate([np.arange(100), np.arange(100) / 2, [4, 40]]) / 400
    area = np.repeat([0.05, 0.15, 1.0], [100, 100, 2])
    truth = pd.DataFrame({"parcel_id": [str(i) for i in range(202)], "polygon_area_ha": area,
                          "true_cultivated_area_ha": 0.5 * area, "broken_geometry": False})
    estimate = (0.5 + misses) * area  # each needs twice its miss: its edge share is 0.5
    results = pd.DataFrame({"parcel_id": truth["parcel_id"], "status": "ok", "polygon_area_ha": area,
                            "cultivated_area_ha": estimate, "cultivated_area_low_ha": estimate,
                            "cultivated_area_high_ha": estimate})
    margins, counts = mixed_margin_for(results, truth, np.full(202, 0.5), level=0.8, bands_ha=(0.1, 0.2))
    assert counts == (100, 100, 2)  # parcels under 0.1 ha are fitted too: their intervals are the narrowest
    # Each band's 81st need of 100; the two ha parcels take the widest of those and of all 202 pooled (the 163rd, 0.3).
    assert margins.margins == pytest.approx((0.4, 0.2, 0.4)) and margins.bands_ha == (0.1, 0.2)
    np.testing.assert_allclose(margins.at(np.array([0.01, 0.1, 0.19, 0.2, 7.0])), [0.4, 0.2, 0.2, 0.4, 0.4])
    pooled, _ = mixed_margin_for(results, truth, np.full(202, 0.5), level=0.8, bands_ha=())
    assert pooled.margins == pytest.approx((0.3,))  # one margin: too wide for 0.1-0.2 ha, too narrow under 0.1 ha
    # A size band none of whose margins reaches its parcels is named.
    on_grid = np.where(area == 0.15, 0.0, 0.5)
    with pytest.raises(InputError, match="for 80% of the 100 scored parcels of 0.1-0.2 ha: 99 lie outside"):
        mixed_margin_for(results, truth, on_grid, level=0.8, bands_ha=(0.1, 0.2))


def test_margins_by_size_are_read_from_a_number_or_one_per_band_and_refused_when_unusable() -> None:
    assert AreaMargins.read(0.06).at(np.array([0.01, 50.0])).tolist() == [0.06, 0.06]  # a card or config of before
    assert AreaMargins.read([0.1, 0.05], [0.2]).written() == {"mixed_margin": [0.1, 0.05], "area_bands_ha": [0.2]}
    assert AreaMargins.read(0.06).written() == {"mixed_margin": 0.06}
    assert AreaMargins((0.1,), (0.1234, 0.05)).rounded().margins == (0.124, 0.05)  # never narrower than fitted
    assert AreaMargins.read([0.1, 0.1, 0.1], [0.1, 0.2]).labels() == ["under 0.1 ha", "0.1-0.2 ha", "0.2 ha and over"]
    assert AreaMargins.read([0.05], [0.1]) == AreaMargins((), (0.05,))  # one margin: every size
    for margin, bands, message in [([0.1, 0.1, 0.1], [0.2], "one margin per parcel-size band, 2 for area_bands_ha"),
                                   ([0.1, 0.05], [], "lists 2 margins, one per parcel-size band: give area_bands_ha"),
                                   ([0.1, -0.1], [0.2], "0 or more"), (float("nan"), [], "finite"),
                                   ([0.1, 0.1, 0.1], [0.2, 0.1], "must rise"), ([0.1, 0.1], [0.0], "above 0")]:
        with pytest.raises(ValueError, match=message):
            AreaMargins.read(margin, bands)


def test_an_assessment_widens_each_parcel_by_the_margin_of_its_size(small_season, tmp_path: Path) -> None:
    def run(margin: float | list[float], bands: list[float]) -> pd.DataFrame:
        config = yaml.safe_load(DEFAULT_CONFIG.read_text())
        config["cropland_rule"].update(mixed_margin=margin, area_bands_ha=bands)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return run_assessment(small_season.parcels_path, small_season.imagery_dir, config=path, model="rule").parcels

    plain, widened = run(0.0, []), run([1.0, 0.0], [0.2])
    width = {name: (frame["cultivated_area_high_ha"] - frame["cultivated_area_low_ha"]).to_numpy()
             for name, frame in (("plain", plain), ("widened", widened))}
    # Sized as polygon_area_ha is (in the parcel's own UTM zone), whatever the imagery's CRS.
    small = plain["polygon_area_ha"].to_numpy() < 0.2
    assert small.sum() > 5 and (~small).sum() > 5
    np.testing.assert_array_equal(width["widened"][~small], width["plain"][~small])
    assert (width["widened"][small] >= width["plain"][small] - 1e-12).all()
    assert (width["widened"][small] > width["plain"][small] + 1e-4).mean() > 0.5


def test_a_model_with_one_mixed_margin_keeps_it_for_every_size() -> None:
    """A user's model written before margins by size (a ``mixed_margin`` attribute) is widened as it was."""
    class OneMargin:
        mixed_margin = 0.5

    assert model_margins(OneMargin()) == AreaMargins((), (0.5,))
    assert model_margins(object()) == AreaMargins()  # no margin at all
    rule = PhenologyRule(load_config().cropland_rule)
    assert model_margins(rule) == rule.area_margins and len(rule.area_margins.margins) == 4
