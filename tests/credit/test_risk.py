"""The risk scorecard: fitting, monotonic signs, calibration, saving, and bad histories."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import farmcredit.credit.risk
from farmcredit.credit import MonotonicScorecard, find_overlaps, load_risk_model
from farmcredit.credit.history import fit_risk_model, read_history, write_risk_model
from farmcredit.credit.portfolio import synthetic_history
from farmcredit.credit.risk import FEATURE_DIRECTIONS, RiskModel, risk_features
from farmcredit.errors import InputError


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_history(loans_per_season=600, seed=5)


def test_loans_that_differ_only_by_loan_id_are_two_loans(history, tmp_path: Path) -> None:
    twice = pd.concat([history, history.iloc[[4]]], ignore_index=True)
    twice.assign(loan_id=range(len(twice))).to_csv(tmp_path / "history.csv", index=False)
    assert len(read_history(tmp_path / "history.csv", as_of=date(2026, 1, 1))) == len(history) + 1
    # Loans with no loan_id are told apart by their other columns, not taken for one loan of a blank id.
    blanks = history.assign(loan_id=[None if i in (5, 7, 9) else f"L{i}" for i in range(len(history))])
    blanks.to_csv(tmp_path / "blanks.csv", index=False)
    assert len(read_history(tmp_path / "blanks.csv", as_of=date(2026, 1, 1))) == len(history)
    pd.concat([blanks, blanks.iloc[[7]]]).to_csv(tmp_path / "repeated.csv", index=False)
    with pytest.raises(InputError, match="rows 9 and 3602 are identical"):
        read_history(tmp_path / "repeated.csv", as_of=date(2026, 1, 1))
    spaced = history.assign(loan_id=[f"L{i}" if i != 7 else "L3 " for i in range(len(history))])
    spaced.to_csv(tmp_path / "spaced.csv", index=False)
    with pytest.raises(InputError, match="rows 5 and 9 are the same loan_id"):  # "L3 " is L3
        read_history(tmp_path / "spaced.csv", as_of=date(2026, 1, 1))


def test_fit_recovers_signal_out_of_time_and_keeps_every_sign(history) -> None:
    model = MonotonicScorecard().fit(risk_features(history), history["defaulted"], seasons=history["season"])
    assert model.metrics_["out_of_time_auc"] > 0.65
    for name, coef in zip(model.features_, model.coef_):
        assert coef * FEATURE_DIRECTIONS[name] >= 0, name
    pd_ = model.predict_proba(risk_features(history))[:, 1]
    assert ((pd_ >= 0) & (pd_ <= 1)).all()
    # Calibrated: the mean predicted PD is close to the observed default rate.
    assert abs(pd_.mean() - history["defaulted"].mean()) < 0.02


def test_no_pd_is_certain_however_few_loans_a_step_holds() -> None:
    """A calibration step whose loans all repaid (or all defaulted) says its Jeffreys estimate, not 0 (or 1): a small
    history's raw isotonic steps gave a third of its parcels PD 0."""
    small = synthetic_history(loans_per_season=60, seed=2)
    model = MonotonicScorecard().fit(risk_features(small), small["defaulted"], seasons=small["season"])
    pd_ = model.predict_proba(risk_features(small))[:, 1]
    rate = small["defaulted"].mean()
    assert 0 < model.calibration_y_.min() < rate < model.calibration_y_.max() < 1
    assert (pd_ > 0).all() and (pd_ < 1).all() and (np.diff(model.calibration_x_) > 0).all()
    assert (np.diff(model.calibration_y_) >= 0).all()
    assert abs(pd_.mean() - rate) < 0.03


def test_a_risky_segment_keeps_its_rate_where_defaults_are_rare() -> None:
    """The calibration's prior is weak: one shrinking each step towards a 2% base rate halved the PD of a segment
    defaulting half the time."""
    rng = np.random.default_rng(0)
    seasons = []
    for season in (2021, 2022, 2023):
        table = pd.DataFrame({name: rng.normal(size=1540) for name in FEATURE_DIRECTIONS})
        table.loc[1500:, "health_index"] -= 4  # a poor-health segment of 40 loans a season
        table["defaulted"] = np.r_[rng.random(1500) < 0.01, rng.random(40) < 0.5].astype(int)
        seasons.append(table.assign(season=season))
    history = pd.concat(seasons, ignore_index=True)
    model = MonotonicScorecard().fit(history[list(FEATURE_DIRECTIONS)], history["defaulted"], seasons=history["season"])
    segment = np.tile(np.arange(1540) >= 1500, 3)
    observed = history.loc[segment, "defaulted"].mean()
    predicted = model.predict_proba(history[list(FEATURE_DIRECTIONS)])[:, 1][segment].mean()
    # Halved, it would be about 0.25 off; the steps of 120 loans leave it about 0.01-0.12 off by seed.
    assert history["defaulted"].mean() < 0.03 and abs(predicted - observed) < 0.15


def test_a_declaration_the_imagery_cannot_rule_out_scores_as_none() -> None:
    """declared_over_high is the declared area over the high end of the cultivated interval, as AREA_OVERSTATED reads
    it, never under 1: against the estimate (0.052 ha), an honest 0.11 ha read as twice over, and a real parcel declared
    at its 0.129 ha outline five times over, declined where left blank it was approved."""
    declared = [np.nan, 0.11, 0.119, 0.005, 0.129, 0.3, 2.0]
    table = pd.DataFrame({"health_index": 50.0, "relative_yield": 1.0, "cultivated_fraction": 0.4,
                          "cultivated_area_ha": 0.052, "cultivated_area_low_ha": 0.008,
                          "cultivated_area_high_ha": 0.119, "ndvi_uniformity": 0.1, "declared_area_ha": declared})
    ratio = risk_features(table)["declared_over_high"].to_numpy()
    assert ratio[:4].tolist() == [1.0] * 4  # blank, within the interval, at its top, under it: all alike
    # Above the interval it still rises, to its cap.
    np.testing.assert_allclose(ratio[4:], [0.129 / 0.119, 0.3 / 0.119, 5.0])
    # With a slack (a scorecard's, fitted with it), only what exceeds it counts: 0.129 ha is 0.01 ha over, as honest.
    np.testing.assert_allclose(risk_features(table, 0.01)["declared_over_high"], [1.0] * 5 + [0.29 / 0.119, 5.0])


def test_pd_never_rises_with_health_yield_or_area_nor_moves_with_the_weather(history) -> None:
    model = load_risk_model()
    base = history.head(300).copy()
    before = model.probability_of_default(base)
    # A cloudy season is no risk of the farmer's: too few clear images refer a parcel, they never raise its PD.
    np.testing.assert_array_equal(model.probability_of_default(base.assign(clear_observations=4)), before)
    for column, step in (("health_index", 10.0), ("relative_yield", 0.1), ("cultivated_area_ha", 0.3)):
        better = base.copy()
        better[column] = better[column] + step
        assert (model.probability_of_default(better) <= before + 1e-12).all(), column


def test_a_scorecard_scores_declarations_with_the_slack_it_was_fitted_with(history) -> None:
    """A refit scorecard read declarations with no slack but was scored with the config's 0.01 ha: the same loan had
    one declared_over_high when fitted and another when scored (662 of 3,600 loans of a history written to 0.01 ha
    graded otherwise than the fit saw). The model keeps the slack it was fitted with (the packaged config's unless
    given), in what its hash covers, and scores with it."""
    rounded = history.assign(declared_area_ha=(history["cultivated_area_high_ha"] + 0.005).round(2))
    for slack, fitted in ((0.01, fit_risk_model(rounded, source="rounded")),
                          (0.0, fit_risk_model(rounded, source="rounded", declared_slack_ha=0.0))):
        model = RiskModel(fitted, "rounded")
        assert model.declared_slack_ha == fitted["model"]["declared_slack_ha"] == slack
        np.testing.assert_array_equal(model.probability_of_default(rounded),
                                      model.scorecard.predict_proba(risk_features(rounded, slack))[:, 1])
    assert RiskModel(fitted, "").model_hash != RiskModel(fit_risk_model(rounded, source="r"), "").model_hash
    with pytest.raises(InputError, match="slack"):
        fit_risk_model(rounded, source="rounded", declared_slack_ha=float("nan"))


def test_saved_model_is_json_and_predicts_the_same(history, tmp_path: Path) -> None:
    fitted = fit_risk_model(history, source="test history")
    path = write_risk_model(fitted, tmp_path / "model.json")
    reloaded = load_risk_model(path)
    again = RiskModel(json.loads(path.read_text()), str(path))
    np.testing.assert_array_equal(reloaded.probability_of_default(history), again.probability_of_default(history))
    assert reloaded.model_hash == again.model_hash and reloaded.card["training_data"] == "test history"
    data = json.loads(path.read_text())
    noted = RiskModel({**data, "card": {**data["card"], "note": "typo fixed"}}, str(path))
    assert noted.model_hash == reloaded.model_hash  # the card does not score
    data["model"]["coef"][0] += 0.01
    assert RiskModel(data, str(path)).model_hash != reloaded.model_hash


def test_a_fitted_models_card_pins_the_source_that_fitted_it_as_a_cnns_card_does(history) -> None:
    """The card said the bare package version ("0.1.0"), which every edit of the fitting code shares."""
    from farmcredit.version import code_version

    found = code_version()
    card = fit_risk_model(history, source="test history")["card"]
    assert card["code_version"].startswith(f"{found['farmcredit']}+src.{found['source_sha256'][:12]}")


def test_a_model_named_by_a_relative_path_is_recorded_by_its_absolute_one(history, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``--risk-model ./rm.json`` was recorded in run.json as "rm.json": which file, from which folder, unsaid."""
    write_risk_model(fit_risk_model(history, source="test history"), tmp_path / "rm.json")
    monkeypatch.chdir(tmp_path)
    model = load_risk_model("./rm.json")
    assert model.source == str(tmp_path / "rm.json") and model.describe()["source"] == model.source


def test_default_model_says_it_is_synthetic() -> None:
    model = load_risk_model()
    assert "SYNTHETIC" in model.card["note"] and "synthetic" in model.card["training_data"]
    assert model.card["metrics"]["out_of_time_auc"] > 0.65


def test_a_season_after_seasons_of_one_outcome_trains_the_scorecard_but_is_not_predicted(history, tmp_path) -> None:
    """A first season whose loans all repaid cannot predict the second (a fit on one outcome ranks nothing): the second
    season only trains, as if the two were one season, and the card says which seasons were predicted."""
    first = history["season"].min()
    repaid_first = history.assign(defaulted=history["defaulted"].where(history["season"] != first, 0))
    repaid_first.to_csv(tmp_path / "history.csv", index=False)
    model = fit_risk_model(read_history(tmp_path / "history.csv", as_of=date(2026, 1, 1)), source="first repaid")
    metrics = model["card"]["metrics"]
    assert metrics["out_of_time_seasons"] == [str(season) for season in range(first + 2, first + 6)]
    merged = fit_risk_model(repaid_first.assign(season=repaid_first["season"].clip(lower=first + 1)), source="merged")
    for name in ("fill", "center", "scale", "coef", "intercept", "calibration_x", "calibration_y"):
        assert model["model"][name] == pytest.approx(merged["model"][name], rel=1e-9, abs=1e-12), name
    # 0.66 and 5.5% when the first season predicted the second.
    assert metrics["out_of_time_auc"] > 0.7 and min(model["model"]["calibration_y"]) < 0.03


def test_the_same_loans_in_another_row_order_give_the_same_model(history) -> None:
    """Sums of floats depend on their order: a shuffled history's coefficients differed by 1e-16, and so its hash."""
    shuffled = history.sample(frac=1.0, random_state=3).reset_index(drop=True)
    model, again = (fit_risk_model(loans, source="history") for loans in (history, shuffled))
    assert json.dumps(model, sort_keys=True) == json.dumps(again, sort_keys=True)


@pytest.mark.parametrize("mutate", [lambda t: t.assign(declared_area_ha=np.nan),
                                    lambda t: t.drop(columns=["declared_area_ha"])], ids=["blank", "left out"])
def test_a_history_without_declared_areas_fits_with_that_feature_weighing_nothing(history, tmp_path, mutate) -> None:
    """A lender that never records declared areas, blank on every row or without the column (as parcels files may
    be), can fit: a blank declaration scores as an honest one, so declared_over_high is 1 on every loan, ranks none,
    keeps a coefficient of 0, and the card says so; the other features are fitted as before."""
    path = tmp_path / "history.csv"
    mutate(history).to_csv(path, index=False)
    fitted = fit_risk_model(read_history(path, as_of=date(2026, 1, 1)), source="no declarations", l2=0.0)
    model, features = fitted["model"], fitted["card"]["features"]
    assert model["coef"][model["features"].index("declared_over_high")] == 0.0
    assert features["declared_over_high"]["note"] == "1 on every loan: it ranks none and weighs nothing"
    assert "note" not in features["health_index"] and features["health_index"]["coefficient_per_sd"] < 0
    scored = RiskModel(fitted, str(path)).probability_of_default(history)
    assert np.isfinite(scored).all() and fitted["card"]["metrics"]["out_of_time_auc"] > 0.6


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.drop(columns=["health_index"]), "lacks column"),
        # A history from before the interval: told how to keep judging declarations against the estimate.
        (lambda t: t.drop(columns=["cultivated_area_high_ha"]),
         r"lacks column\(s\): cultivated_area_high_ha \(cultivated_area_high_ha: the high end of the cultivated "
         r"area's interval, .* may repeat cultivated_area_ha"),
        (lambda t: t.assign(cultivated_area_high_ha=t["cultivated_area_high_ha"].where(t.index != 6, 0.01)),
         r"cultivated_area_high_ha is under cultivated_area_ha on row 8 \(0.01 < 0.\d+; 1 row\(s\)\)"),
        (lambda t: t.assign(relative_yield=t["relative_yield"].astype(object).where(t.index != 7, "lots")),
         "'lots' \\(row 9\\)"),
        (lambda t: t.assign(cultivated_area_ha=t["cultivated_area_ha"].where(t.index != 3, np.inf)),
         "cultivated_area_ha has a value that is not a finite number 'inf' \\(row 5\\)"),
        (lambda t: t.assign(ndvi_uniformity=np.nan), "ndvi_uniformity has no value on any row"),
        (lambda t: t.assign(cultivated_area_high_ha=np.nan), "cultivated_area_high_ha has no value on any row"),
        (lambda t: t.assign(outcome_date=t["outcome_date"].astype(object).where(t.index != 0, "March")),
         "'outcome_date' must be a date"),
        (lambda t: t.assign(outcome_date=t["outcome_date"].astype(object).where(t.index != 4, "05/01/2020")),
         "'outcome_date' must be a date on every row, written YYYY-MM-DD \\(row 6: '05/01/2020'; 1 row"),
        # month or day first: ambiguous, so ISO 8601 only
        (lambda t: t.assign(season=t["season"].astype(object).where(t.index != 0, None)),
         "'season' must be given on every row \\(row 2 has none\\)"),
        (lambda t: pd.concat([t, t.iloc[[4]]]), "rows 6 and 3602 are identical \\(1 repeated loan"),
        (lambda t: t.assign(loan_id=[f"L{i % 1100}" for i in range(len(t))]),
         "rows 2 and 1102 are the same loan_id \\(2500 repeated loan"),
        (lambda t: t.assign(defaulted=0), "at least 20 defaulted"),
        (lambda t: t.head(50), "at least 200"),
        (lambda t: t.assign(outcome_date="2031-01-01"), "after 2026-01-01"),
        # Every default in the first season: the out-of-time calibration would learn PD 0 for everyone.
        (lambda t: t.assign(defaulted=t["defaulted"].where(t["season"] == t["season"].min(), 0) | (
            (t["season"] == t["season"].min()) & (t.index % 10 == 0)).astype(int)),
         r"per season: 2019 \d+/600, 2020 0/600, .*; season\(s\) 2020, 2021, 2022, 2023, 2024 are so predicted and "
         r"hold 0 defaulted and 3000 repaid loans, and the out-of-time calibration needs at least 10 of each"),
        # Defaults in the last season alone: no season follows seasons of both outcomes.
        (lambda t: t.assign(defaulted=t["defaulted"].where(t["season"] == t["season"].max(), 0)),
         r"2024 \d+/600\); no season is so predicted, and the out-of-time calibration needs at least 10 of each"),
        # Names that sort against time: 'autumn' seasons would predict the spring before them.
        (lambda t: t.assign(season=t["season"].map(lambda y: f"{'spring' if y % 2 else 'autumn'} {y}")),
         "season 'spring 2019' sorts after 'autumn 2024' but its outcomes begin earlier"),
    ],
)
def test_bad_histories_are_refused_with_a_reason(history, tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "history.csv"
    mutate(history).to_csv(path, index=False)
    with pytest.raises(InputError, match=message):
        read_history(path, as_of=date(2026, 1, 1))


def test_a_history_saved_by_excel_on_chinese_windows_is_refused_saying_how_to_save_it(history, tmp_path) -> None:
    path = tmp_path / "history.csv"
    history.assign(borrower="张三").to_csv(path, index=False, encoding="gbk")
    with pytest.raises(InputError, match=f'history file {path} is not UTF-8 text .*; save it in Excel as "CSV UTF-8 '
                                         r'\(逗号分隔\)\(\*\.csv\)"'):
        read_history(path)


def test_seasons_numbered_sort_as_numbers(history, tmp_path: Path) -> None:
    """Seasons 2, 4 ... 12 in time order: as text, 12 would come before 2 and be refused as sorting against time."""
    path = tmp_path / "history.csv"
    history.assign(season=(history["season"] - history["season"].min()) * 2 + 2).to_csv(path, index=False)
    model = fit_risk_model(read_history(path, as_of=date(2026, 1, 1)), source="numbered")
    assert model["card"]["metrics"]["seasons"] == ["2", "4", "6", "8", "10", "12"]


def test_outcome_dates_with_a_time_zone_are_read_and_the_fit_date_is_never_in_the_future(history, tmp_path) -> None:
    path = tmp_path / "history.csv"
    stamps = pd.to_datetime(history["outcome_date"])
    mixed = stamps.dt.strftime("%Y-%m-%dT00:00:00Z").where(history.index % 2 == 0, stamps.dt.strftime("%Y-%m-%d"))
    history.assign(outcome_date=mixed).to_csv(path, index=False)  # with and without a time zone, mixed
    assert len(read_history(path, as_of=date(2026, 1, 1))) == len(history)
    with pytest.raises(InputError, match="is after today"):
        read_history(path, as_of=date(2999, 1, 1))


def test_outcomes_are_refused_by_the_day_written_in_them_not_its_utc_moment(history, tmp_path) -> None:
    """An outcome at 14:23 of the fit date is not after it (the cutoff was midnight at its start), and one written
    with an offset keeps its local day: 07:00 on 1 January in Beijing is after 31 December, 23:00 on 31 December in
    New York is not (in UTC, the other way round)."""
    path = tmp_path / "history.csv"
    last = pd.to_datetime(history["outcome_date"]).max().date()

    def read_with(outcome: str) -> int:
        history.assign(outcome_date=history["outcome_date"].where(history.index != 0, outcome)).to_csv(path,
                                                                                                        index=False)
        return len(read_history(path, as_of=last))

    assert read_with(f"{last} 14:23:05") == len(history)
    assert read_with(f"{last}T23:00:00-05:00") == len(history)
    with pytest.raises(InputError, match=f"1 outcome\\(s\\) dated after {last} "):
        read_with(f"{last + timedelta(days=1)}T07:00:00+08:00")


def test_a_model_goes_to_a_file_its_folder_made_never_to_a_folder(history, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="l2 must be a finite number"):
        fit_risk_model(history, source="synthetic", l2=float("inf"))  # its JSON would not be JSON
    model = fit_risk_model(history, source="synthetic")
    assert write_risk_model(model, tmp_path / "new" / "model.json").is_file()
    with pytest.raises(InputError, match="is a folder"):
        write_risk_model(model, tmp_path / "new")
    with pytest.raises(InputError, match="cannot write the model to .*: .*model.json is a file, not a folder"):
        write_risk_model(model, tmp_path / "new" / "model.json" / "model.json")  # under a file


@pytest.mark.parametrize("text", ['{"weights": [1, 2]}', "[" * 200_000 + "]" * 200_000])
def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path, text: str) -> None:
    """Nested past what Python parses (200,000 arrays deep) was a RecursionError traceback."""
    path = tmp_path / "model.json"
    path.write_text(text)
    with pytest.raises(InputError, match="not a farmcredit risk model"):
        load_risk_model(path)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("coef", None, "coef must be 6 finite numbers"),  # a null: every PD NaN, every parcel approved without a limit
    ("coef", [-1.0, -1.0, -1.0], "coef must be 6 finite numbers"),  # a matmul error after the whole run
    ("features", ["rainfall", "relative_yield"], "features must be distinct names"),
    ("features", ["yield_p10_t_ha", "health_index"], "relative_yield replaced"),
    ("features", ["declared_ratio", "health_index"], "declared_over_high replaced"),
    ("features", ["clear_observations", "health_index"], "a cloudy season declined a farmer"),
    ("directions", [1, -1, -1, -1, 1, 1], "fixed signs"),
    ("scale", [0.0] * 6, "scale must be positive"),
    ("calibration_x", [], "calibration_x must rise"),
    ("calibration_y", "reversed", "never fall"),
    ("intercept", float("nan"), "intercept and l2"),
    # A string or null crashed after the whole run; a negative slack graded every parcel E in silence.
    ("declared_slack_ha", "0.01", "declared_slack_ha must be a finite number"),
    ("declared_slack_ha", None, "declared_slack_ha must be a finite number"),
    ("declared_slack_ha", -5, "declared_slack_ha must be a finite number"),
])
def test_a_saved_scorecard_that_would_score_garbage_is_refused_at_load(tmp_path: Path, field: str, value,
                                                                       message: str) -> None:
    data = json.loads(Path(load_risk_model().source).read_text())
    data["model"][field] = data["model"][field][::-1] if value == "reversed" else value
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=f"not a farmcredit risk model.*{message}"):
        load_risk_model(path)


def test_a_coefficient_against_its_features_sign_is_refused(tmp_path: Path) -> None:
    data = json.loads(Path(load_risk_model().source).read_text())
    data["model"]["coef"][0] = abs(data["model"]["coef"][0]) + 0.5  # PD would rise with health
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="each coef of its feature's sign"):
        load_risk_model(path)


def test_overlaps_above_the_share_are_found_whoever_pledged_them() -> None:
    geoms = np.array([
        shapely.box(0, 0, 100, 100),
        shapely.box(50, 0, 150, 100),   # half of it on parcel 0
        shapely.box(0, 0, 100, 100),    # the same land as parcel 0, pledged again
        shapely.box(140, 0, 300, 100),  # 10% of parcel 1, which is pledged again: over the 5% counted
        None,
        shapely.box(1000, 0, 1100, 100),
        shapely.box(1090, 0, 1200, 100),  # 10% of parcel 5, and of nothing else: under the 20% share
    ], dtype=object)
    partners = find_overlaps(geoms, min_share=0.2)
    assert partners.rows(0) == [1, 2] and partners.rows(1) == [0, 2, 3] and partners.rows(2) == [0, 1]
    assert partners.rows(3) == [1] and partners.rows(4) == [] and partners.rows(5) == partners.rows(6) == []
    assert partners.counts().tolist() == [2, 3, 2, 1, 0, 0, 0]


def test_a_parcel_cut_from_slices_of_others_land_overlaps_each_of_them_but_not_a_neighbour_off_by_a_sliver() -> None:
    """A parcel made of 15% slices of 12 others' fields (8% of it each, under the 20% share one pair at a time) was
    approved, no code on anyone: together they cover all of it, so it overlaps each. A neighbour drawn 1 m over it,
    or a field with 4% slivers of four neighbours adding up to over the share, overlaps nothing."""
    victims = [shapely.box(200 * k, 0, 200 * k + 100, 100) for k in range(12)]
    sliced = shapely.union_all([shapely.box(200 * k + 85, 0, 200 * k + 100, 100) for k in range(12)])
    beside = shapely.box(2400, 0, 2500, 100)  # touches the last victim's slice, drawn 1 m over it
    field = shapely.box(0, 1000, 100, 1100)
    slivers = [shapely.affinity.translate(field, dx, dy) for dx, dy in ((96, 0), (-96, 0), (0, 96), (0, -96))]
    geoms = np.array([*victims, sliced, shapely.affinity.translate(beside, -1, 0), field, *slivers], dtype=object)
    partners = find_overlaps(geoms, min_share=0.2)
    assert partners.rows(12) == list(range(12)) and all(partners.rows(k) == [12] for k in range(12))
    assert partners.counts().tolist() == [1] * 12 + [12] + [0] * 6
    ids = [f"V{k:02d}" for k in range(12)] + ["SLICED", "BESIDE", "FIELD", "N", "S", "E", "W"]
    assert partners.listed_ids(ids)[12] == ids[:12] and partners.listed_ids(ids)[0] == ["SLICED"]
    assert find_overlaps(geoms[14:], min_share=0.1).counts().tolist() == [0] * 5  # 16% of slivers, each under 5%


def test_strips_of_neighbours_drawn_a_few_metres_over_a_field_are_slivers_not_slices() -> None:
    """Outlines drawn 3 m apart (a phone GPS's error): four neighbours each 3 m over a 40 m field, 7.5% of it each
    and 30% together, referred the field and all four; strips narrower than ``sliver_m`` are not counted, and land
    taken in slices 15 m wide still is."""
    field = shapely.box(0, 0, 40, 40)
    strips = [shapely.affinity.translate(field, dx, dy) for dx, dy in ((37, 0), (-37, 0), (0, 37), (0, -37))]
    geoms = np.array([field, *strips], dtype=object)
    assert find_overlaps(geoms, min_share=0.2).counts().tolist() == [4, 1, 1, 1, 1]
    assert find_overlaps(geoms, min_share=0.2, sliver_m=5).counts().tolist() == [0] * 5
    victims = [shapely.box(200 * k, 0, 200 * k + 100, 100) for k in range(12)]
    sliced = shapely.union_all([shapely.box(200 * k + 85, 0, 200 * k + 100, 100) for k in range(12)])
    slices = find_overlaps(np.array([*victims, sliced], dtype=object), min_share=0.2, sliver_m=5)
    assert slices.counts().tolist() == [1] * 12 + [12]


def test_copies_of_one_outline_overlap_each_other_and_its_neighbours_listed_up_to_a_cap() -> None:
    """A village boundary pasted over 300 parcels: each overlaps the other 299 and the field inside it, its record
    lists the first 20 ids (in id order) and counts them all, the copies held as one outline (no pair of them
    intersected)."""
    village = shapely.box(0, 0, 1000, 1000)
    geoms = np.array([village] * 150 + [shapely.reverse(village)] * 150  # as a Shapefile turns the rings
                     + [shapely.box(100, 100, 200, 200), shapely.box(2000, 0, 2100, 100)], dtype=object)
    ids = [f"V{k:03d}" for k in range(300)] + ["FIELD", "AWAY"]
    partners = find_overlaps(geoms, min_share=0.2)
    assert len(np.unique(partners.outline)) == 3 and partners.pairs.tolist() == [[0, 1]]
    assert partners.counts().tolist() == [300] * 300 + [300, 0]
    listed = partners.listed_ids(ids)
    assert listed[0] == ["FIELD", *ids[1:20]] and listed[5] == ["FIELD", *ids[:5], *ids[6:20]]
    assert listed[300] == ids[:20] and listed[301] == []
    assert partners.rows(300) == list(range(300)) and partners.rows(7) == [*range(7), *range(8, 301)]


def test_parcels_without_a_usable_outline_overlap_nothing() -> None:
    partners = find_overlaps(np.array([None, None], dtype=object), min_share=0.2)
    assert partners.counts().tolist() == [0, 0] and partners.listed_ids(["A", "B"]) == [[], []]


def test_a_fit_on_random_defaults_says_its_ranking_is_no_better_than_chance(history) -> None:
    """A history whose defaults are random fitted silently: "out-of-time AUC 0.532" alone, and PDs graded by parcel
    size. The card gives the out-of-time AUC's seeded bootstrap interval and defaults, and a warning where it reaches
    0.5; a history with signal gets none."""
    from farmcredit.credit.risk import chance_warning

    shuffled = history.assign(defaulted=np.random.default_rng(1).permutation(history["defaulted"].to_numpy()))
    noise, signal = (fit_risk_model(loans, source="history")["card"]["metrics"] for loans in (shuffled, history))
    low, high = noise["out_of_time_auc_ci95"]
    assert low <= 0.5 < high and low < noise["out_of_time_auc"] < high
    assert noise == fit_risk_model(shuffled.iloc[::-1], source="history")["card"]["metrics"]  # seeded: one card
    predicted = shuffled["season"].astype(str).isin(noise["out_of_time_seasons"])
    assert noise["out_of_time_defaults"] == shuffled["defaulted"][predicted].sum()
    steps = noise["calibration_steps"]
    assert sum(s["loans"] for s in steps) == noise["out_of_time_rows"]
    assert sum(s["defaults"] for s in steps) == noise["out_of_time_defaults"]
    assert chance_warning(noise) == (
        f"the scorecard ranks loans no better than chance on the seasons it predicted out of time (AUC "
        f"{noise['out_of_time_auc']:.2f}, 95% CI {low:.2f}-{high:.2f}): its grades would be noise; check the "
        "history's defaulted column or gather more seasons")
    assert signal["out_of_time_auc_ci95"][0] > 0.65 and chance_warning(signal) is None


def test_assess_with_a_scorecard_no_better_than_chance_warns_and_the_shipped_one_does_not(
        history, small_season, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`credit fit` warned once; `assess --risk-model` with that card decided loans on its noise in silence."""
    import logging

    from farmcredit import assess

    shuffled = history.assign(defaulted=np.random.default_rng(1).permutation(history["defaulted"].to_numpy()))
    noise = write_risk_model(fit_risk_model(shuffled, source="history"), tmp_path / "noise.json")
    parcels = small_season.parcels_path
    for risk_model, warned in ((noise, True), (None, False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assess(parcels, small_season.imagery_dir, model="rule", risk_model=risk_model)
        said = f"risk model {noise.resolve()}: the scorecard ranks loans no better than chance"
        assert (said in caplog.text) is warned and ("no better than chance" in caplog.text) is warned, caplog.text


def test_a_fitted_card_ties_the_model_to_the_loans_it_was_fitted_on(history, tmp_path: Path) -> None:
    """The card named its history by a path and a count alone: it gives the SHA-256 of the columns fitted (any row
    order, CSV or Parquet alike), the date outcomes were checked against, loans and defaults per season, and each
    feature's share of blank values filled."""
    blanks = history.assign(health_index=history["health_index"].where(history.index % 10 != 3),
                            declared_area_ha=history["declared_area_ha"].where(history.index % 4 != 0))
    blanks.to_csv(tmp_path / "loans.csv", index=False)
    blanks.sample(frac=1.0, random_state=2).to_parquet(tmp_path / "loans.parquet")
    cards = [fit_risk_model(read_history(tmp_path / name, as_of=date(2026, 1, 1)), source=name,
                            as_of=date(2026, 1, 1))["card"] for name in ("loans.csv", "loans.parquet")]
    sha = cards[0]["training_data_sha256"]
    assert len(sha) == 64 and cards[1]["training_data_sha256"] == sha and cards[0]["as_of"] == "2026-01-01"
    flipped = blanks.assign(defaulted=blanks["defaulted"].where(blanks.index != 5, 1 - blanks["defaulted"]))
    assert fit_risk_model(flipped, source="flipped")["card"]["training_data_sha256"] != sha
    assert fit_risk_model(blanks, source="no date")["card"]["as_of"] is None
    per_season = cards[0]["metrics"]["per_season"]
    assert per_season == {str(season): {"loans": 600, "defaults": int(loans["defaulted"].sum())}
                          for season, loans in history.groupby("season")}
    features = cards[0]["features"]
    assert features["health_index"]["missing_share"] == 0.1 and features["declared_over_high"]["missing_share"] == 0.25
    assert features["relative_yield"]["missing_share"] == 0.0


@pytest.mark.parametrize(("separator", "decimal", "said"),
                         [(";", ",", "';' (a European Excel export?) with decimal commas:"),
                          (";", ".", "';' (a European Excel export?):"),
                          ("\t", ".", "tabs (a European Excel export?):")])
def test_a_history_not_separated_by_commas_is_refused_saying_how_to_save_it(history, tmp_path, separator, decimal,
                                                                            said) -> None:
    """A European Excel export (semicolons, decimal commas) was told it lacked every column but declared_area_ha."""
    path = tmp_path / "history.csv"
    history.to_csv(path, index=False, sep=separator, decimal=decimal, encoding="utf-8-sig")
    with pytest.raises(InputError, match=f"history file {path} is separated by {re.escape(said)}.* save it as CSV with "
                                         "commas and decimal points$"):
        read_history(path)


def test_a_number_with_a_decimal_comma_is_refused_as_one(history, tmp_path) -> None:
    path = tmp_path / "history.csv"
    history.assign(health_index=history["health_index"].astype(object).where(history.index != 2, "27,05")).to_csv(
        path, index=False)
    with pytest.raises(InputError, match=r"'27,05' \(row 4\) \(a decimal comma: save the file with decimal points\)"):
        read_history(path)


def test_the_principal_risk_factors_are_the_features_that_raised_the_pd_most_ties_in_feature_order() -> None:
    """At most three features with positive points (raising the PD above the scorecard's center), the most first, a
    tie in the scorecard's order; a feature the parcel lacks (scored at the median) is not its own, so never one."""
    data = json.loads(Path(farmcredit.credit.risk.__file__).with_name("default_risk_model.json").read_text())
    features = data["model"]["features"]
    # Centred so that a declaration within the interval (1.0) raises nothing.
    data["model"].update(center=[float(name == "declared_over_high") for name in features],
                         scale=[1.0] * len(features), fill=[0.0] * len(features),
                         coef=[float(FEATURE_DIRECTIONS[name]) for name in features])
    model = RiskModel(data, "even")
    table = pd.DataFrame({
        "health_index": [-2.0, np.nan], "relative_yield": [-2.0, -1.0], "cultivated_fraction": [-3.0, 0.5],
        "cultivated_area_ha": [0.0, 0.0], "cultivated_area_high_ha": [1.0, 1.0], "declared_area_ha": [np.nan] * 2,
        "ndvi_uniformity": [1.0, -1.0]})
    first, second = model.scores(table)[2]
    assert first == [("cultivated_fraction", -3.0, 3.0), ("health_index", -2.0, 2.0), ("relative_yield", -2.0, 2.0)]
    assert second == [("relative_yield", -1.0, 1.0)]
