"""Score an assessment against simulated ground truth (``truth.csv`` from ``farmcredit simulate``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from farmcredit.errors import InputError
from farmcredit.margins import AREA_BANDS_HA, AreaMargins, band_labels, size_band
from farmcredit.segmentation.card import AREA_INTERVAL_LEVEL

AREA_TOLERANCE = 0.10
MIN_PARCEL_HA = 0.1
# What a score of the cultivated area says where no parcel is big enough to score (the table, `farmcredit evaluate`).
NO_PARCEL_TO_SCORE = f"no parcel of {MIN_PARCEL_HA:g} ha or more to score"
# What the scores of truly cultivated parcels (the median area error, the crop's) say where none is scored, or where
# none of those scored was measured.
NO_CULTIVATED_PARCEL = "no cultivated parcel to score"
NO_PARCEL_MEASURED = "no parcel measured"
# A parcel with less of its area than this in edge cells lies on the pixel grid: no margin widens its interval.
NO_EDGE_SHARE = 1e-6
# The parcels a size band needs for a margin fitted on its own: with fewer, its conformal quantile is a coin toss
# (on a 96 px scene, 16-19 parcels a band fitted 0.03, 0.77, 0 and 0 at 80%; bands of 37-51 parcels of five 200 px
# scenes held 67-89% of another scene's parcels of their size). At 100, a band's coverage varies by about 0.04.
MIN_BAND_PARCELS = 100


@dataclass(frozen=True)
class TruthScore:
    """How close an assessment is to the truth.

    Attributes:
        parcels_scored: parcels of at least 0.1 ha with a usable (valid) geometry.
        parcels_unassessed: of them, those the results give no measure of (in error, or missing): each a miss
            below, never left out, so a run that failed on its hard parcels does not score better.
        parcels_cultivated: of them, those truly cultivated (the median area error's and the crop's parcels).
        area_within_10pct: share of them whose cultivated area is within 10% of the truth
            (for truly uncultivated parcels: within 10% of the polygon area of zero).
        area_median_abs_error: median |estimate - truth| / truth (truth > 0) of those assessed.
        interval_coverage: share of scored parcels whose truth lies in the low-high interval.
        overdeclared: parcels over-declared in the truth.
        overdeclared_flagged: of them, flagged AREA_OVERSTATED.
        honest_flagged: share of honest parcels wrongly flagged AREA_OVERSTATED.
        crop_accuracy: share of cultivated scored parcels whose crop is right.
        interval_coverage_by_area: per parcel-size band (``AREA_BANDS_HA``; under 0.1 ha too), the parcels
            with a valid outline that the results measured and the share whose truth lies in their interval.
    """

    parcels_scored: int
    parcels_unassessed: int
    parcels_cultivated: int
    area_within_10pct: float
    area_median_abs_error: float
    interval_coverage: float
    overdeclared: int
    overdeclared_flagged: int
    honest_flagged: float
    crop_accuracy: float
    interval_coverage_by_area: dict[str, tuple[int, float]]

    def table(self) -> str:
        """A Markdown table of the scores."""
        rows = [
            ("parcels scored (>= 0.1 ha, valid geometry)", f"{self.parcels_scored}"),
            ("of which not assessed (error or no result: misses below)", f"{self.parcels_unassessed}"),
            ("cultivated area within 10% of truth", self._scored_text(self.area_within_10pct, ".1%")),
            ("median relative area error", self._scored_text(self.area_median_abs_error, ".2%")),
            ("truth inside the low-high interval", coverage_text(self.interval_coverage, self.parcels_scored)),
            ("over-declared parcels flagged AREA_OVERSTATED", f"{self.overdeclared_flagged}/{self.overdeclared}"),
            ("honest parcels wrongly flagged AREA_OVERSTATED", f"{self.honest_flagged:.1%}"),
            ("crop correct (cultivated parcels)", self._scored_text(self.crop_accuracy, ".1%")),
            *((f"truth inside the interval, parcels {label} (measured)", coverage_text(share, n))
              for label, (n, share) in self.interval_coverage_by_area.items()),
        ]
        return "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)

    def _scored_text(self, value: float, spec: str) -> str:
        """A figure of the scored parcels formatted by ``spec``, or why there is none (``scored_text``)."""
        return scored_text(value, spec, self.parcels_scored, self.parcels_cultivated)


def scored_text(value: float, spec: str, parcels_scored: int, parcels_cultivated: int) -> str:
    """A score formatted by ``spec``, or, where it is not a number, why: no parcel scored, none of them truly
    cultivated (a median area error or crop score has none to read), or none of those measured.

    >>> scored_text(0.0052, ".2%", 636, 590), scored_text(float("nan"), ".2%", 2, 0)
    ('0.52%', 'no cultivated parcel to score')
    """
    if math.isfinite(value):
        return format(value, spec)
    return (NO_PARCEL_TO_SCORE if not parcels_scored else NO_CULTIVATED_PARCEL if not parcels_cultivated
            else NO_PARCEL_MEASURED)


def score_against_truth(results: pd.DataFrame, truth: pd.DataFrame) -> TruthScore:
    """Compare per-parcel results with the simulator's truth table, joined on ``parcel_id``."""
    joined = _join(results, truth)
    broken = _broken(joined)
    scored = joined[_scored(joined)]
    flagged = joined["reason_all"].fillna("").str.contains("AREA_OVERSTATED", regex=False)
    over = joined["over_declared"].astype(str).str.lower() == "true"
    crop_rows = scored[scored["true_cultivated_area_ha"] > 0]
    return TruthScore(
        **area_report(results, truth),
        overdeclared=int(over.sum()),
        overdeclared_flagged=int((over & flagged).sum()),
        honest_flagged=float((~over & flagged & ~broken).sum() / max((~over & ~broken).sum(), 1)),
        crop_accuracy=float(np.mean(crop_rows["crop"] == crop_rows["true_crop"])) if len(crop_rows) else float("nan"),
    )


def area_report(results: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Cultivated area against the truth (``parcel_id``, ``polygon_area_ha``, ``true_cultivated_area_ha``,
    ``broken_geometry``), as ``TruthScore``'s fields of the same names: parcels scored, unassessed and truly
    cultivated, the share within 10%, the median relative error, the interval's coverage, and its coverage per parcel
    size."""
    joined = _join(results, truth)
    scored = joined[_scored(joined)]
    true_area = scored["true_cultivated_area_ha"].to_numpy()
    estimate = scored["cultivated_area_ha"].to_numpy()
    assessed = (true_area > 0) & np.isfinite(estimate)
    relative = np.abs(estimate[assessed] - true_area[assessed]) / true_area[assessed]
    return {
        "parcels_scored": len(scored),
        "parcels_unassessed": int((~_assessed(scored)).sum()),
        "parcels_cultivated": int((true_area > 0).sum()),
        "area_within_10pct": float(np.mean(_within_tolerance(scored))) if len(scored) else float("nan"),
        "area_median_abs_error": float(np.median(relative)) if relative.size else float("nan"),
        "interval_coverage": float(np.mean(_distance_outside(scored) <= 0)) if len(scored) else float("nan"),
        "interval_coverage_by_area": _coverage_by_area(joined[_measured(joined)]),
    }


def _coverage_by_area(measured: pd.DataFrame) -> dict[str, tuple[int, float]]:
    """Per parcel-size band (``AREA_BANDS_HA``), its measured parcels and the share whose truth lies in their
    interval."""
    band = size_band(measured["polygon_area_ha"].to_numpy())
    inside = _distance_outside(measured) <= 0
    return {label: (int((band == i).sum()), float(inside[band == i].mean()) if (band == i).any() else float("nan"))
            for i, label in enumerate(band_labels(AREA_BANDS_HA))}


def coverage_text(share: float, n: int, confidence: float = 0.95) -> str:
    """A share of ``n`` parcels with the Wilson range it is known to (``confidence``): on a few hundred parcels an
    80% interval's coverage is known to about +-4 points, so 77% of 198 does not miss 80%.

    >>> coverage_text(0.8, 200)
    '80.0% of 200 (95% range 73.9-85.0%)'
    >>> coverage_text(float("nan"), 0)
    'no parcel'
    """
    if not n:
        return "no parcel"
    if not math.isfinite(share):
        return f"{share:.1%} of {n}"
    from scipy.stats import binomtest

    low, high = binomtest(round(share * n), n).proportion_ci(confidence, method="wilson")
    return f"{share:.1%} of {n} ({confidence:.0%} range {100 * low:.1f}-{high:.1%})"


def compare_area(first: pd.DataFrame, second: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Two assessments of the same parcels, paired: who gets the cultivated area within 10% more often.

    Returns the parcels scored and ``paired_hits`` of the two (within 10% is a hit).
    """

    def hits(results: pd.DataFrame) -> pd.Series:
        joined = _join(results, truth)
        scored = joined[_scored(joined)]
        return pd.Series(_within_tolerance(scored), index=scored["parcel_id"].to_numpy())

    a, b = hits(first).align(hits(second), join="inner")
    return {"parcels": len(a), **paired_hits(a.to_numpy(), b.to_numpy())}


def paired_hits(first: np.ndarray, second: np.ndarray) -> dict:
    """Two methods' hits (bool) on the same items: each one's hit rate (``first``, ``second``), the items
    only one of them gets right (``only_first``, ``only_second``) and the exact two-sided McNemar p-value
    of that split (how often a split at least this uneven arises if neither is better)."""
    from scipy.stats import binomtest

    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    only_a, only_b = int((first & ~second).sum()), int((second & ~first).sum())
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    rates = [round(float(hits.mean()), 4) if hits.size else float("nan") for hits in (first, second)]
    return {"first": rates[0], "second": rates[1],
            "only_first": only_a, "only_second": only_b, "mcnemar_p": float(f"{p_value:.3g}")}


def mixed_margin_for(results: pd.DataFrame, truth: pd.DataFrame, mixed: np.ndarray,
                     level: float = AREA_INTERVAL_LEVEL,
                     bands_ha: tuple[float, ...] = AREA_BANDS_HA) -> tuple[AreaMargins, tuple[int, ...]]:
    """The interval margins by parcel size (over ``bands_ha``) that put the truth inside the interval for ``level`` of
    each size band's parcels, and how many parcels each band scored.

    Split-conformal per size band (Mondrian): ``results`` is an assessment made with no margin and
    ``mixed`` each of its rows' ``mixed_cell_share``; each parcel with a valid outline that the
    results measured, of any size, needs the margin that stretches its interval to its true area (0
    if already inside; none can where it has no edge cells), and a band's margin is the conformal
    ``level`` quantile of its parcels' needs. A band with too few parcels to fit alone (``fits_alone``)
    takes the widest of the other bands' margins and the one of all parcels pooled. Fit on a scene the
    model was not trained on, and check on another.

    Raises:
        InputError: no parcel of the truth could be scored (with the reasons), fewer scored parcels in all than the
            conformal quantile at ``level`` needs, or a quantile no margin reaches.
    """
    joined = _join(results.assign(mixed_cell_share=mixed), truth)
    scored = joined[_measured(joined)]
    if scored.empty:
        raise InputError(f"no parcel of the truth could be scored: {_unscored_reasons(joined)}")
    n, least = len(scored), conformal_minimum(level)
    if n < least:
        raise InputError(f"--level {level:g} (level= in Python) needs at least {least} scored parcels for its "
                         f"conformal quantile, and {n} were scored; lower it or add parcels")
    area, edge = scored["polygon_area_ha"].to_numpy(), scored["mixed_cell_share"].to_numpy()
    edge = np.where(edge > NO_EDGE_SHARE, edge, 0.0)  # a grid-aligned parcel: no margin widens its interval
    with np.errstate(invalid="ignore", divide="ignore"):
        needed = np.where(_distance_outside(scored) <= 0, 0.0,
                          np.abs(scored["cultivated_area_ha"].to_numpy() - scored["true_cultivated_area_ha"].to_numpy())
                          / (edge * area))
    needed = np.where(np.isnan(needed), np.inf, needed)
    band = size_band(area, bands_ha)
    counts = tuple(int(c) for c in np.bincount(band, minlength=len(bands_ha) + 1))
    fitted = [_conformal(needed[band == i], level) if fits_alone(count, level) else None
              for i, count in enumerate(counts)]
    labels = band_labels(bands_ha)
    for i, margin in enumerate(fitted):
        if margin is not None and not math.isfinite(margin):
            raise _unreachable(needed[band == i], level, f"of {labels[i]}")
    widest = max([_conformal(needed, level), *(m for m in fitted if m is not None)])
    if None in fitted and not math.isfinite(widest):
        raise _unreachable(needed, level, "of every size")
    return AreaMargins(tuple(bands_ha), tuple(widest if margin is None else margin for margin in fitted)), counts


def conformal_minimum(level: float) -> int:
    """The fewest parcels whose split-conformal ``level`` quantile is one of theirs: n with ceil((n + 1) level) <= n."""
    return math.ceil(round(level / (1 - level), 9))


def fits_alone(parcels: int, level: float) -> bool:
    """Whether a size band of this many parcels gets a margin of its own (``mixed_margin_for``)."""
    return parcels >= max(MIN_BAND_PARCELS, conformal_minimum(level))


def _unreachable(needed: np.ndarray, level: float, which: str) -> InputError:
    """Why no margin reaches ``level`` of parcels (``which``: 'of under 0.1 ha', 'of every size') with these needs."""
    return InputError(f"no margin puts the truth inside the interval for {level:.0%} of the {len(needed)} scored "
                      f"parcels {which}: {int(np.isinf(needed).sum())} lie outside theirs and have no edge cells (a "
                      "parcel on the pixel grid) for a margin to widen; check their truth")


def _conformal(needed: np.ndarray, level: float) -> float:
    """The split-conformal ``level`` quantile of the parcels' needs: the ceil((n + 1) level)-th smallest."""
    return float(np.sort(needed)[int(np.ceil((len(needed) + 1) * level)) - 1])


def _unscored_reasons(joined: pd.DataFrame) -> str:
    """Why a truth's parcels were not measured, counted."""
    no_result = joined["status"].isna()
    broken = _broken(joined)
    reasons = ((int(no_result.sum()), "not among the assessed parcels (ids that do not match parcels.geojson?)"),
               (int((~no_result & broken).sum()), "broken outlines"),
               (int((~no_result & ~broken).sum()), "not measured (status error)"))
    return "; ".join(f"{count} {why}" for count, why in reasons if count) or "the truth holds no parcel"


def _join(results: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Every parcel of the truth, with its result where there is one."""
    return truth.merge(pd.DataFrame(results.drop(columns="geometry", errors="ignore")), on="parcel_id",
                       how="left", suffixes=("_truth", ""))


def _scored(joined: pd.DataFrame) -> pd.Series:
    """Parcels of at least 0.1 ha with a valid geometry, whether or not the results measured them."""
    return (joined["polygon_area_ha_truth"] >= MIN_PARCEL_HA) & ~_broken(joined)


def _measured(joined: pd.DataFrame) -> pd.Series:
    """Parcels of any size with a valid geometry that the results measured (each has an interval)."""
    return ~_broken(joined) & _assessed(joined)


def _broken(joined: pd.DataFrame) -> pd.Series:
    """Parcels the truth marks as having a broken outline."""
    return joined["broken_geometry"].astype(str).str.lower() == "true"


def _assessed(joined: pd.DataFrame) -> pd.Series:
    """Rows with a result that measured the parcel."""
    return joined["status"].notna() & (joined["status"] != "error") & joined["cultivated_area_ha"].notna()


def _within_tolerance(scored: pd.DataFrame) -> np.ndarray:
    """Estimate within 10% of the true cultivated area (of the polygon area where truly uncultivated)."""
    true_area = scored["true_cultivated_area_ha"].to_numpy()
    reference = np.where(true_area > 0, true_area, scored["polygon_area_ha_truth"].to_numpy())
    return np.abs(scored["cultivated_area_ha"].to_numpy() - true_area) <= AREA_TOLERANCE * reference


def _distance_outside(scored: pd.DataFrame) -> np.ndarray:
    """How far (ha) the true cultivated area lies outside the low-high interval; <= 0 inside."""
    true_area = scored["true_cultivated_area_ha"].to_numpy()
    low, high = scored["cultivated_area_low_ha"].to_numpy(), scored["cultivated_area_high_ha"].to_numpy()
    # Truth areas come from the simulator's own projection of the polygons: allow for rounding.
    slack = 1e-4 * scored["polygon_area_ha_truth"].to_numpy()
    return np.fmax(low - true_area, true_area - high) - slack
