"""Probability of default: a monotonic logistic scorecard, calibrated out of time.

The scorecard is a logistic regression on standardised agronomic features whose coefficient
signs are fixed in advance (PD never rises with health, relative yield,
cultivated share or area; never falls with over-declaration, the declared area over the high end of the measured
interval, or patchiness), fitted with bounds, then
calibrated with isotonic regression on out-of-time predictions (each season predicted by a
model fitted on earlier seasons), each step's rate taken as its Jeffreys estimate (a step whose loans
all repaid is not PD 0). Isotonic maps are non-decreasing, so the calibrated PD keeps
every sign. The fitted model is plain numbers, saved as JSON (never pickled).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from farmcredit.errors import InputError
from farmcredit.hashing import canonical_hash

# Feature name -> sign of its effect on the PD (-1: PD never rises as the feature rises).
FEATURE_DIRECTIONS: dict[str, int] = {
    "health_index": -1,
    # Yield against the crop's typical season, not t/ha: 2 t/ha is a fair soybean and a poor maize.
    "relative_yield": -1,
    "cultivated_fraction": -1,
    "log_cultivated_area_ha": -1,
    "declared_over_high": 1,
    "ndvi_uniformity": 1,
}
# A parcel's principal risk factors (``RiskModel.principal_factors``): at most this many, each raising its log-odds of
# default by at least this much above the scorecard's center (0.1: its odds by a tenth), so that a feature near the
# average (health 50 of 100 at 0.005 points) is never named as what raised the risk.
MAX_FACTORS = 3
MIN_FACTOR_POINTS = 0.1
# A row's principal risk factors: (feature, value as scored, log-odds points) each.
Factors = list[tuple[str, float, float]]
# Columns of a results table the features are derived from.
SOURCE_COLUMNS = (
    "health_index", "relative_yield", "cultivated_fraction", "cultivated_area_ha", "cultivated_area_high_ha",
    "declared_area_ha", "ndvi_uniformity",
)
MAX_DECLARED_RATIO = 5.0
# The out-of-time AUC's interval: resamples of the out-of-time loans, seeded so one history gives one card.
AUC_BOOTSTRAP_RESAMPLES = 1000
AUC_BOOTSTRAP_SEED = 0


def risk_features(table: pd.DataFrame, declared_slack_ha: float = 0.0) -> pd.DataFrame:
    """Derive the scorecard's features from results-table columns (NaN where unknown); ``declared_slack_ha`` is what
    a declaration may exceed the cultivated interval's top by and read as honest (a scorecard's own: the one it was
    fitted with, ``RiskModel.declared_slack_ha``)."""
    area = pd.to_numeric(table["cultivated_area_ha"], errors="coerce")
    most = pd.to_numeric(table["cultivated_area_high_ha"], errors="coerce")
    declared = pd.to_numeric(table["declared_area_ha"], errors="coerce")
    # Over-declaration is what the imagery rules out, as AREA_OVERSTATED judges it: area beyond the high end of the
    # cultivated interval. Against the point estimate, a parcel declared at its 0.129 ha outline, measured at
    # 0.008-0.119 ha, read as five times over and was declined, and approved when declared blank. A declaration within
    # or under the interval is 1.0, as a blank one: declaring less (AREA_UNDERSTATED's matter) buys no lower PD. So is
    # one over it by no more than the slack (a plot whose top is 0.1742 ha declared 0.18 ha, rounded to the hundredth,
    # lost a grade where AREA_OVERSTATED, allowing the slack, did not flag it); beyond it only the excess counts.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip((declared - declared_slack_ha) / most, 1.0, MAX_DECLARED_RATIO)
    features = pd.DataFrame(
        {
            "health_index": table["health_index"],
            "relative_yield": table["relative_yield"],
            "cultivated_fraction": table["cultivated_fraction"],
            "log_cultivated_area_ha": np.log1p(area.clip(lower=0)),
            # No declaration is neither honest nor inflated: as one within the interval.
            "declared_over_high": ratio.where(declared.notna(), 1.0),
            "ndvi_uniformity": table["ndvi_uniformity"],
        },
        index=table.index,
    )
    return features.apply(pd.to_numeric, errors="coerce").astype(float)


class MonotonicScorecard(ClassifierMixin, BaseEstimator):
    """Logistic scorecard with fixed coefficient signs and out-of-time isotonic calibration.

    Args:
        l2: ridge penalty on the standardised coefficients.
        directions: feature -> +1 / -1, the allowed sign of each coefficient.
        declared_slack_ha: the slack ``risk_features`` built its ``declared_over_high`` with, saved with the model so
            it scores with the same (the features come built: it is not applied here).

    Example:
        >>> model = MonotonicScorecard(declared_slack_ha=0.01).fit(X, defaulted, seasons=season)  # doctest: +SKIP
        >>> pd_ = model.predict_proba(risk_features(results, 0.01))[:, 1]  # doctest: +SKIP
    """

    def __init__(self, l2: float = 1.0, directions: dict[str, int] | None = None,
                 declared_slack_ha: float = 0.0) -> None:
        self.l2 = l2
        self.directions = directions
        self.declared_slack_ha = declared_slack_ha

    def fit(self, X: pd.DataFrame, y: Sequence[int], seasons: Sequence | None = None) -> MonotonicScorecard:
        """Fit coefficients on all rows and the calibration on out-of-time predictions.

        Args:
            X: features (columns of ``directions``).
            y: 1 for a loan that defaulted, else 0.
            seasons: the season of each row; at least two distinct seasons.
        """
        directions = self.directions or FEATURE_DIRECTIONS
        self.features_ = list(directions)
        values = X[self.features_].to_numpy(dtype=float)
        target = np.asarray(y, dtype=float)
        self.classes_ = np.array([0, 1])
        self.fill_ = np.nanmedian(values, axis=0)
        filled = np.where(np.isnan(values), self.fill_, values)
        self.center_ = filled.mean(axis=0)
        self.scale_ = np.where(filled.std(axis=0) > 0, filled.std(axis=0), 1.0)
        signs = np.array([directions[f] for f in self.features_])
        standard = (filled - self.center_) / self.scale_
        self.coef_, self.intercept_ = _fit_logistic(standard, target, signs, self.l2)

        order = np.asarray(seasons) if seasons is not None else np.zeros(len(target))
        periods = np.unique(order)
        if periods.size < 2:
            raise InputError("out-of-time calibration needs loans from at least two seasons")
        predicted = predicted_seasons(order, target)
        if not predicted.size:
            raise InputError("out-of-time calibration needs a season after seasons holding defaulted and repaid loans")
        scores, outcomes = [], []
        for period in predicted:
            past, now = order < period, order == period
            coef, intercept = _fit_logistic(standard[past], target[past], signs, self.l2)
            scores.append(standard[now] @ coef + intercept)
            outcomes.append(target[now])
        oot_score, oot_outcome = np.concatenate(scores), np.concatenate(outcomes)
        self.calibration_x_, self.calibration_y_, steps = _jeffreys_isotonic(oot_score, oot_outcome)
        oot_pd = np.interp(oot_score, self.calibration_x_, self.calibration_y_)
        both = len(set(oot_outcome)) > 1
        self.metrics_ = {
            "out_of_time_rows": int(oot_outcome.size),
            "out_of_time_defaults": int(oot_outcome.sum()),
            "out_of_time_auc": float(roc_auc_score(oot_outcome, oot_score)) if both else None,
            "out_of_time_auc_ci95": bootstrap_auc_interval(oot_outcome, oot_score) if both else None,
            "calibration_steps": steps,
            "out_of_time_brier": float(brier_score_loss(oot_outcome, oot_pd)),
            "default_rate": float(target.mean()),
            "rows": int(target.size),
            "seasons": [str(p) for p in periods],
            "per_season": {str(p): {"loans": int((order == p).sum()), "defaults": int(target[order == p].sum())}
                           for p in periods},
            "out_of_time_seasons": [str(p) for p in predicted],
        }
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The uncalibrated linear score (log-odds scale) of each row."""
        values = X[self.features_].to_numpy(dtype=float)
        filled = np.where(np.isnan(values), self.fill_, values)
        return ((filled - self.center_) / self.scale_) @ self.coef_ + self.intercept_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): column 1 is the probability of default."""
        pd_ = np.interp(self.decision_function(X), self.calibration_x_, self.calibration_y_)
        return np.column_stack([1.0 - pd_, pd_])

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each feature's share of the linear score (log-odds points): what raised the PD."""
        values = X[self.features_].to_numpy(dtype=float)
        filled = np.where(np.isnan(values), self.fill_, values)
        return pd.DataFrame((filled - self.center_) / self.scale_ * self.coef_, columns=self.features_, index=X.index)

    def to_dict(self, card: dict) -> dict:
        """The fitted model and its card as plain JSON-ready numbers and text."""
        model = {
            "features": self.features_,
            "directions": [FEATURE_DIRECTIONS.get(f, 0) if not self.directions else self.directions[f]
                           for f in self.features_],
            "fill": self.fill_.tolist(), "center": self.center_.tolist(), "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(), "intercept": float(self.intercept_),
            "calibration_x": self.calibration_x_.tolist(), "calibration_y": self.calibration_y_.tolist(),
            "l2": self.l2, "declared_slack_ha": self.declared_slack_ha,
        }
        return {"card": dict(card, metrics=self.metrics_), "model": model}

    @classmethod
    def from_dict(cls, data: dict) -> MonotonicScorecard:
        """Rebuild a fitted scorecard from ``to_dict`` output."""
        model = data["model"]
        _check_model(model)
        # Scorecards saved before the slack was a part of declared_over_high were fitted without one.
        scorecard = cls(l2=model["l2"], directions=dict(zip(model["features"], model["directions"])),
                        declared_slack_ha=model.get("declared_slack_ha", 0.0))
        scorecard.features_ = list(model["features"])
        for name in ("fill", "center", "scale", "coef", "calibration_x", "calibration_y"):
            setattr(scorecard, f"{name}_", np.asarray(model[name], dtype=float))
        scorecard.intercept_ = float(model["intercept"])
        scorecard.classes_ = np.array([0, 1])
        scorecard.metrics_ = data["card"].get("metrics", {})
        return scorecard


def predicted_seasons(seasons: Sequence, defaulted: Sequence[int]) -> np.ndarray:
    """The seasons the calibration predicts out of time, in the order of their names: those after seasons holding both
    defaulted and repaid loans. The others train the scorecard alone: a fit on loans of one outcome ranks nothing, and
    a first season without a default, predicting the second, took a history's out-of-time AUC from 0.71 to 0.65 and
    graded none of a sample's parcels A."""
    counts = pd.crosstab(np.asarray(seasons), np.asarray(defaulted, dtype=int)).reindex(columns=[0, 1], fill_value=0)
    before = counts.cumsum().shift(fill_value=0)
    return counts.index[(before > 0).all(axis=1).to_numpy()].to_numpy()


def _check_model(model: dict) -> None:
    """Refuse a saved scorecard that would score garbage or break monotonicity (a hand edit, a truncated file).

    Raises:
        ValueError: naming the field.
    """
    features = model["features"]
    if "yield_p10_t_ha" in features:
        raise ValueError("it reads yield_p10_t_ha, which relative_yield replaced (t/ha judged soybeans against "
                         "maize): refit it with `farmcredit credit fit` on a history with relative_yield")
    if "declared_ratio" in features:
        raise ValueError("it reads declared_ratio, the declared area over the cultivated estimate, which "
                         "declared_over_high replaced (over the interval's high end: an honest declaration over a wide "
                         "interval scored worse than none): refit it with `farmcredit credit fit` on a history with "
                         "cultivated_area_high_ha")
    if "clear_observations" in features:
        raise ValueError("it reads clear_observations, the season's clear images, so a cloudy season declined a farmer "
                         "HIGH_RISK (too few clear images refer the parcel instead): refit it with `farmcredit credit "
                         "fit`")
    unknown = [name for name in features if name not in FEATURE_DIRECTIONS]
    if unknown or len(set(features)) != len(features) or not features:
        raise ValueError(f"features must be distinct names among {', '.join(FEATURE_DIRECTIONS)}; got {features}")
    if [FEATURE_DIRECTIONS[name] for name in features] != list(model["directions"]):
        raise ValueError("directions differ from the scorecard's fixed signs")
    arrays = {name: np.asarray(model[name], dtype=float) for name in ("fill", "center", "scale", "coef")}
    for name, values in arrays.items():
        if values.shape != (len(features),) or not np.isfinite(values).all():
            raise ValueError(f"{name} must be {len(features)} finite numbers, one per feature")
    if (arrays["scale"] <= 0).any() or (arrays["coef"] * np.asarray(model["directions"]) < 0).any():
        raise ValueError("scale must be positive and each coef of its feature's sign")
    x, y = (np.asarray(model[name], dtype=float) for name in ("calibration_x", "calibration_y"))
    if (x.ndim != 1 or x.shape != y.shape or not x.size or not np.isfinite(x).all() or not np.isfinite(y).all()
            or (np.diff(x) <= 0).any() or (np.diff(y) < 0).any() or y.min() < 0 or y.max() > 1):
        raise ValueError("calibration_x must rise and calibration_y, as long, never fall within 0-1")
    if not np.isfinite(float(model["intercept"])) or not 0 <= float(model["l2"]) < np.inf:
        raise ValueError("intercept and l2 must be finite numbers, l2 not negative")
    slack = model.get("declared_slack_ha", 0.0)
    if isinstance(slack, bool) or not isinstance(slack, int | float) or not 0 <= slack < np.inf:
        raise ValueError(f"declared_slack_ha must be a finite number of hectares, 0 or more (got {slack!r})")


def _jeffreys_isotonic(score: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The calibration curve (score thresholds, PDs) of out-of-time ``score``s and their 0/1 ``outcome``s, and the
    loans and defaults of each of its isotonic steps, lowest first.

    An isotonic fit's steps, each step's default rate taken as its Jeffreys estimate, (defaults + 1/2) / (loans + 1)
    (the prior the ECB's PD back-testing uses), then made non-decreasing again (weighted by loans + 1). A raw step
    whose loans all repaid says PD 0 (153 loans in the shipped fit's lowest), all defaulted PD 1: no count of loans
    can show that. The prior is weak, so a risky tail keeps its rate (one shrunk towards the base rate by 1/rate
    pseudo-loans halved a 51% segment's PD where defaults were rare).
    """
    steps = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(score, outcome).predict(score)
    levels, step, loans = np.unique(steps, return_inverse=True, return_counts=True)
    defaults = np.bincount(step, weights=outcome, minlength=levels.size)
    shrunk = IsotonicRegression(increasing=True).fit_transform(
        np.arange(levels.size), (defaults + 0.5) / (loans + 1.0), sample_weight=loans + 1.0)
    low = np.array([score[step == k].min() for k in range(levels.size)])
    high = np.array([score[step == k].max() for k in range(levels.size)])
    x, first = np.unique(np.column_stack([low, high]).ravel(), return_index=True)  # a one-score step: one point
    counts = [{"loans": int(n), "defaults": int(d)} for n, d in zip(loans, defaults)]
    return x, np.repeat(shrunk, 2)[first], counts


def bootstrap_auc_interval(outcome: np.ndarray, score: np.ndarray, resamples: int = AUC_BOOTSTRAP_RESAMPLES,
                           seed: int = AUC_BOOTSTRAP_SEED) -> list[float]:
    """The 95% percentile-bootstrap interval [low, high] of the AUC of ``score`` against 0/1 ``outcome``: loans drawn
    with replacement ``resamples`` times by a generator seeded with ``seed`` (a draw of one outcome is skipped).

    >>> bootstrap_auc_interval(np.array([0, 0, 1, 1] * 25), np.arange(100.0))[0] > 0.5
    True
    """
    rng, aucs = np.random.default_rng(seed), []
    per_chunk = max(1, 2_000_000 // outcome.size)  # resamples of some 2 million loans in all at a time
    for start in range(0, resamples, per_chunk):
        draws = rng.integers(0, outcome.size, size=(min(per_chunk, resamples - start), outcome.size))
        y, ranks = outcome[draws], rankdata(score[draws], axis=1)  # ties share their mean rank, as the AUC counts them
        positives = y.sum(axis=1)
        negatives = outcome.size - positives
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs.append(((ranks * y).sum(axis=1) - positives * (positives + 1) / 2) / (positives * negatives))
    low, high = np.nanpercentile(np.concatenate(aucs), [2.5, 97.5])
    return [float(low), float(high)]


def chance_warning(metrics: dict) -> str | None:
    """What to tell the lender when a fitted card's out-of-time AUC interval (``out_of_time_auc_ci95``) reaches 0.5:
    its ranking is not told from chance, and its grades from noise; None when the interval is above 0.5 (or absent)."""
    interval = metrics.get("out_of_time_auc_ci95")
    if not interval or interval[0] > 0.5:
        return None
    return (f"the scorecard ranks loans no better than chance on the seasons it predicted out of time (AUC "
            f"{metrics['out_of_time_auc']:.2f}, 95% CI {interval[0]:.2f}-{interval[1]:.2f}): its grades would be "
            "noise; check the history's defaulted column or gather more seasons")


def _fit_logistic(x: np.ndarray, y: np.ndarray, signs: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Ridge logistic regression with each coefficient held to the sign in ``signs``."""
    n, k = x.shape

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:k], theta[k]
        z = x @ w + b
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        value = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * (w @ w) / n
        residual = (p - y) / n
        return value, np.append(x.T @ residual + l2 * w / n, residual.sum())

    bounds = [(None, 0.0) if s < 0 else (0.0, None) for s in signs] + [(None, None)]
    start = np.zeros(k + 1)
    start[k] = np.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:k], float(result.x[k])


class RiskModel:
    """A saved scorecard with its card and hash, as used by the credit stage."""

    def __init__(self, data: dict, source: str) -> None:
        self.card = data["card"]
        self.scorecard = MonotonicScorecard.from_dict(data)
        self.source = source
        self.model_hash = canonical_hash(data["model"])  # what scores: a card's note or metrics leave it be

    def describe(self) -> dict:
        """What the audit record says about this model."""
        return {"source": self.source, "hash": self.model_hash, "training_data": self.card.get("training_data"),
                "note": self.card.get("note"), "metrics": self.card.get("metrics"),
                "declared_slack_ha": self.declared_slack_ha}

    @property
    def declared_slack_ha(self) -> float:
        """What a declaration may exceed the cultivated interval's top by and read as honest in ``declared_over_high``:
        the slack the scorecard was fitted with, so it scores loans as it learnt from them."""
        return self.scorecard.declared_slack_ha

    def probability_of_default(self, table: pd.DataFrame) -> np.ndarray:
        """PD per row of a results table (NaN where no agronomic signal could be measured)."""
        return self._scored(risk_features(table, self.declared_slack_ha))

    def scores(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[Factors], list[Factors]]:
        """Per row of a results table: the PD as ``probability_of_default`` gives it; the PD with each declaration
        taken as honest (``declared_over_high`` 1, as one within the measured interval: what the imagery shows alone);
        and the principal risk factors of each (``principal_factors``). All from one build of the features.

        >>> model.scores(results)[2][0]  # doctest: +SKIP
        [('relative_yield', 0.72, 0.41), ('log_cultivated_area_ha', 0.19, 0.3)]
        """
        features = risk_features(table, self.declared_slack_ha)
        honestly = features.assign(declared_over_high=1.0)
        return (self._scored(features), self._scored(honestly), self.principal_factors(features),
                self.principal_factors(honestly))

    def principal_factors(self, features: pd.DataFrame) -> list[Factors]:
        """Per row of ``risk_features``, the (at most ``MAX_FACTORS``) features that raised its PD most above the
        scorecard's center (the average loan of its history), each by ``MIN_FACTOR_POINTS`` or more: (feature, value
        as scored, log-odds points), the most points first, a tie in the scorecard's feature order, a feature the
        row lacks (scored at the history's median) never one."""
        contributions = self.scorecard.contributions(features)
        names = list(contributions.columns)
        points, values = contributions.to_numpy(), features[names].to_numpy(dtype=float)
        # Ranked for all rows at once (a row a time took 1.2 s a 100,000 parcels, twice a run): the most points first.
        eligible = (points >= MIN_FACTOR_POINTS) & np.isfinite(values)
        top = np.argsort(-np.where(eligible, points, -np.inf), axis=1, kind="stable")[:, :MAX_FACTORS]
        rows = np.arange(len(points))[:, None]
        columns = [array.tolist() for array in (top, values[rows, top], points[rows, top], eligible[rows, top])]
        return [[(names[k], value, point) for k, value, point, keep in zip(*row, strict=True) if keep]
                for row in zip(*columns, strict=True)]

    def _scored(self, features: pd.DataFrame) -> np.ndarray:
        """PD per row of ``risk_features``, NaN where neither health nor yield is known."""
        pd_ = self.scorecard.predict_proba(features)[:, 1]
        return np.where(features[["health_index", "relative_yield"]].isna().all(axis=1), np.nan, pd_)


def load_risk_model(path: str | Path | None = None) -> RiskModel:
    """Load a scorecard JSON (``farmcredit credit fit`` output); ``None`` loads the shipped default.

    Raises:
        InputError: the file is missing, not JSON (or nested past what Python parses), or not a farmcredit scorecard.
    """
    if path is None:
        path = Path(__file__).with_name("default_risk_model.json")
    try:
        data = json.loads(Path(path).read_text())
        if data["card"]["kind"] != "farmcredit-monotonic-scorecard":
            raise KeyError("kind")
        return RiskModel(data, os.path.abspath(path))  # the audit record names it as it does the parcels
    except OSError as exc:
        raise InputError(f"cannot read risk model {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: JSON nested past Python's stack
        raise InputError(f"{path} is not a farmcredit risk model ({exc})") from exc
