"""Loan limits: arithmetic, grades, caps, decisions, ranked reasons, monotonicity, borrowers."""

import itertools
import json
import logging
import re
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

import farmcredit.credit.risk
from farmcredit.audit import borrower_decision_records, decision_records
from farmcredit.config import Config, load_config
from farmcredit.credit import Overlaps, aggregate_borrowers, assign_limits, find_overlaps, load_risk_model
from farmcredit.credit.limit import LIMIT_STEPS, amounts, money, round_down
from farmcredit.credit.risk import RiskModel, risk_features
from farmcredit.reasons import DOUBTS_DECLARATION, EFFECT_RANK, REASONS, explain

CONFIG = load_config()
RISK = load_risk_model()


def _parcel(**overrides) -> dict:
    row = {
        "parcel_id": "P1", "borrower_id": "B1", "declared_crop": "wheat", "declared_area_ha": 0.5,
        "polygon_area_ha": 0.5, "clear_observations": 10, "cultivated_fraction": 1.0,
        "cultivated_area_ha": 0.5, "cultivated_area_low_ha": 0.48, "cultivated_area_high_ha": 0.5,
        "crop": "wheat", "crop_confidence": 0.9, "declared_crop_probability": 0.9, "declared_crop_contradicted": False,
        "priced_crop": "wheat", "ndvi_peak": 0.85, "ndvi_uniformity": 0.05, "health_index": 80.0,
        "yield_p10_t_ha": 4.0, "yield_p50_t_ha": 5.8, "relative_yield": 1.0, "reasons": [],
    }
    row.update(overrides)
    return row


_FALLOW = {"cultivated_fraction": 0.0, "cultivated_area_ha": 0.0, "cultivated_area_low_ha": 0.0,
           "cultivated_area_high_ha": 0.0, "crop": "fallow", "priced_crop": "fallow", "ndvi_peak": 0.2,
           "health_index": np.nan, "declared_area_ha": np.nan}


def _assess(*rows: dict, overlaps=None) -> pd.DataFrame:
    return assign_limits(pd.DataFrame(list(rows)), CONFIG, RISK, overlaps)


def test_limit_follows_the_documented_arithmetic() -> None:
    out = _assess(_parcel()).iloc[0]
    credit, wheat = CONFIG.credit, CONFIG.crops["wheat"]
    revenue = 0.5 * 4.0 * 1000 * wheat.price * credit.price_haircut
    capacity = credit.advance_rate * (revenue - 0.5 * wheat.other_cost_per_ha)
    ceiling = wheat.cost_per_ha * 0.5 * credit.cost_ceiling_factor
    band = next(b for b in credit.grades if out["probability_of_default"] <= b.max_pd)
    expected = min(capacity, ceiling) * band.multiplier
    assert out["risk_grade"] == band.grade and out["loan_limit"] == pytest.approx(expected, abs=0.01)
    assert out["decision"] == "approve" and out["status"] == "ok"
    assert out["limit_arithmetic"].endswith(f"loan_limit = {money(out['loan_limit'])} CNY")


def test_each_step_ends_in_its_unit_a_min_parts_its_figures_by_semicolons_and_decisions_jsonl_splits_by_step() -> None:
    """The parcel arithmetic wrote "base = min(1,072.58, 4,881.60) = 1,072.58", the comma both grouping thousands and
    parting the figures, no currency, where a borrower's writes "min(1,104.99; cap 200,000) = 1,104.99 CNY"; it is
    written alike now, and decisions.jsonl splits it where each step begins, never inside a min."""
    parcels = _assess(_parcel(cultivated_area_ha=5.0))
    frame = gpd.GeoDataFrame(parcels.assign(ndvi_peak_date=pd.NaT, ndvi_integral=np.nan, health_reference=""),
                             geometry=[box(0, 0, 1, 1)], crs="EPSG:32650")
    [record] = decision_records(frame, _RECORD, Overlaps.between(1, []), np.zeros((1, 0)), np.zeros((1, 0), bool), [])
    steps = record["limit_arithmetic"]
    assert "; ".join(steps) == parcels["limit_arithmetic"].iloc[0]
    assert [step.split(" = ")[0] for step in steps] == list(LIMIT_STEPS)
    figure = r"\d{1,3}(?:,\d{3})*(?:\.\d+)?"
    assert re.fullmatch(rf"base = min\({figure}; {figure}\) = {figure} CNY", steps[3]), steps[3]
    assert re.fullmatch(rf"capped = min\({figure}; parcel cap 100,000\) = {figure} CNY", steps[5]), steps[5]
    assert steps[0].endswith(" CNY/ha") and all(step.endswith(" CNY") for step in steps[1:])
    assert "," in steps[3]  # a figure over a thousand: its comma groups it


def _lending_on(lend_on_area: str) -> Config:
    return CONFIG.model_copy(update={"credit": CONFIG.credit.model_copy(update={"lend_on_area": lend_on_area})})


def test_lending_on_the_low_end_works_every_amount_from_it_and_says_so() -> None:
    """0.48 ha at the low end of a 0.5 ha parcel's interval: margin 4 t/ha x 1000 x 2.36 x 0.9 - 1,800 = 6,696 CNY/ha;
    capacity 0.8 x 0.48 x 6,696 = 2,571.264, 2,571.26 to the cent (on the estimate 2,678.40); ceiling 18,000 x 0.48 =
    8,640; grade A. The median revenue stays the estimate's."""
    estimate, low = (assign_limits(pd.DataFrame([_parcel()]), _lending_on(on), RISK).iloc[0]
                     for on in ("estimate", "low"))
    assert estimate["loan_limit"] == 2678.40 and low["loan_limit"] == 2571.26 and low["risk_grade"] == "A"
    assert low["limit_arithmetic"].count("0.4800 ha (low end of the cultivated area's interval)") == 2
    assert "cost_ceiling = 18,000 CNY/ha x 0.4800 ha (low end of the cultivated area's interval) x 1.0 = 8,640" in \
        low["limit_arithmetic"]
    assert "interval" not in estimate["limit_arithmetic"]
    assert low["expected_revenue"] == estimate["expected_revenue"] == pytest.approx(0.5 * 5.8 * 1000 * 2.36)


def test_lending_on_the_low_end_a_parcel_without_one_is_not_lent_on_at_the_estimate() -> None:
    row = _parcel(cultivated_area_low_ha=np.nan)
    out = assign_limits(pd.DataFrame([row]), _lending_on("low"), RISK).iloc[0]
    assert out["loan_limit"] == 0 and out["decision"] == "refer" and out["reason_all"] == "NO_LIMIT"
    assert out["limit_arithmetic"] == "no limit: no low end of the cultivated area's interval to lend on"
    assert _assess(row).iloc[0]["loan_limit"] == 2678.40  # on the estimate it has no need of one
    # A low end of 0 ha (or under half a square metre) on cultivated land is doubt, not a harvest that leaves nothing
    # to lend: referred with no limit, not declined ZERO_LIMIT.
    for nothing in (0.0, 0.00004):
        out = assign_limits(pd.DataFrame([_parcel(cultivated_area_low_ha=nothing)]), _lending_on("low"), RISK).iloc[0]
        assert out["loan_limit"] == 0 and out["decision"] == "refer" and out["reason_all"] == "NO_LIMIT"
        assert out["limit_arithmetic"] == "no limit: the low end of the cultivated area's interval is 0 ha"


def _shown(text: str) -> dict[str, tuple[list[Decimal], Decimal]]:
    """Each step of an arithmetic line: the figures of its formula and its result, as printed."""
    number = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
    steps = {}
    for part in re.split(r"; (?![\d-]|cap |parcel cap )", text):  # min(a; b), min(total; cap 200,000): one step
        if " = " not in part:  # a borrower's referral under the minimum loan: "0 unless a review adds to it"
            continue
        name, rest = part.split(" = ", 1)
        formula, _, result = rest.rpartition(" = ")
        formula = re.sub(r" \([^)]*\)", "", formula)  # names in brackets: (wheat), (P3), (grade A, PD <= 0.03)
        steps[name] = ([Decimal(n.replace(",", "")) for n in number.findall(formula)],
                       Decimal(number.findall(result)[0].replace(",", "")))
    return steps


@settings(max_examples=150, deadline=None)
@example(area=6e-5, yield_p10=4.0, health=50.0, crop="wheat", price=None, step=1, lend_on="low")  # a low end of 0 ha
@given(area=st.floats(0.0, 80.0), yield_p10=st.floats(0.0, 12.0), health=st.floats(0.0, 100.0),
       crop=st.sampled_from(sorted(CONFIG.crops)), price=st.sampled_from([None, 2.345, 3.1]),
       step=st.sampled_from([100, 1, 0.01]), lend_on=st.sampled_from(["estimate", "low"]))
def test_every_step_follows_to_the_cent_from_the_figures_shown(
    area, yield_p10, health, crop, price, step, lend_on,
) -> None:
    """A loan officer recomputing each step by hand from the printed figures reaches the printed result, and the
    limit; a borrower's total, capped and rounded, likewise (lending on the estimate or on the low end)."""
    crops = {name: spec.model_copy(update={"price": price}) if price and name == crop else spec
             for name, spec in CONFIG.crops.items()}
    config = CONFIG.model_copy(update={"crops": crops, "credit": CONFIG.credit.model_copy(update={
        "rounding_step": step, "lend_on_area": lend_on})})
    rows = [_parcel(parcel_id=f"P{i}", cultivated_area_ha=area / (i + 1), cultivated_area_low_ha=area / (i + 2),
                    cultivated_area_high_ha=area / (i + 1), declared_area_ha=np.nan, yield_p10_t_ha=yield_p10,
                    relative_yield=yield_p10 / 4, health_index=health, crop=crop, priced_crop=crop,
                    declared_crop=crop) for i in range(3)]
    parcels = assign_limits(pd.DataFrame(rows), config, RISK)
    floor = partial(Decimal.quantize, exp=Decimal("0.01"), rounding=ROUND_FLOOR)
    for text, limit in zip(parcels["limit_arithmetic"], parcels["loan_limit"], strict=True):
        if text.startswith("no limit: "):  # a low end of 0 ha (a speck of land): nothing to lend on, no steps
            assert lend_on == "low" and limit == 0
            continue
        step_of = _shown(text)
        printed = text.split("margin_p10 = ")[1].split("; ")[0].rpartition(" = ")[2]
        assert f"x {printed})" in text.split("repayment_capacity = ")[1]  # the margin printed alike both times
        (y, kg_per_t, kg_price, haircut, other), margin = step_of["margin_p10"]
        assert y * kg_per_t * kg_price * haircut - other == margin  # exact, as printed
        (advance, zero, a, shown_margin), capacity = step_of["repayment_capacity"]
        assert shown_margin == margin and floor(advance * max(a * margin, zero)) == capacity
        (cost, a, factor), ceiling = step_of["cost_ceiling"]
        assert floor(cost * a * factor) == ceiling
        assert step_of["base"][1] == min(capacity, ceiling)
        (base, multiplier), graded = step_of["graded"]
        assert base == step_of["base"][1] and floor(base * multiplier) == graded
        (_, cap), capped = step_of["capped"]
        assert capped == min(graded, cap)
        offered = step_of["loan_limit"][1]
        assert offered == Decimal(repr(float(limit))) and offered in (capped, 0)
    borrower = aggregate_borrowers(gpd.GeoDataFrame(parcels, geometry=[box(i, 0, i + 1, 1) for i in range(3)],
                                                    crs="EPSG:32650"), config).iloc[0]
    step_of = _shown(borrower["limit_arithmetic"])
    limits, total = step_of["parcel limits"]
    assert sum(limits) == total == sum(Decimal(repr(float(v))) for v in parcels["loan_limit"])
    (_, cap), capped = step_of["capped"]
    (shown, multiple), rounded = step_of["rounded"]
    assert capped == min(total, cap) == shown and rounded == (capped // multiple) * multiple
    assert Decimal(repr(float(borrower["loan_limit"]))) in (rounded, 0)


@pytest.mark.parametrize("crop", sorted(CONFIG.crops))
def test_a_thin_margin_never_lowers_the_limit_as_area_rises(crop: str) -> None:
    """Where revenue barely covers other costs, a square metre more must not cost a cent (revenue and costs rounded
    to the cent apart did: 1.13 at 0.5051 ha, 1.12 at 0.5052 ha)."""
    spec = CONFIG.crops[crop]
    y10 = float(Decimal((spec.other_cost_per_ha + 30) / (1000 * spec.price * CONFIG.credit.price_haircut)).quantize(
        Decimal("0.001"), rounding="ROUND_CEILING"))
    areas = 0.5 + np.arange(300) / 10_000
    rows = [_parcel(parcel_id=f"P{i:03d}", cultivated_area_ha=a, cultivated_area_low_ha=a, cultivated_area_high_ha=a,
                    declared_area_ha=np.nan, yield_p10_t_ha=y10, crop=crop, priced_crop=crop, declared_crop=crop)
            for i, a in enumerate(areas)]
    limits = _assess(*rows)["loan_limit"].to_numpy()
    assert 0 < limits[0] < 100 and (np.diff(limits) >= 0).all()


def test_rounding_down_is_exact_at_any_size() -> None:
    assert round_down(1072.5, 0.1) == 1072.5  # 1072.5 / 0.1 floors to 10724 in floating point
    assert round_down(99999.96, 100000) == 0 and round_down(213.29, 0.1) == 213.2  # never up, no float noise
    assert round_down(36_419_779.16, 0.01) == 36_419_779.16 and round_down(36_419_779.16, 0.05) == 36_419_779.15
    assert round_down(1e15 + 0.5, 1) == 1e15


def test_regional_prices_override_the_crop_defaults() -> None:
    config = Config.model_validate({**CONFIG.model_dump(), "regions": {"henan": {"crops": {"wheat": {"price": 4.0}}}}})
    base = assign_limits(pd.DataFrame([_parcel()]), config, RISK).iloc[0]["loan_limit"]
    richer = assign_limits(pd.DataFrame([_parcel(region="henan")]), config, RISK).iloc[0]
    assert richer["loan_limit"] > base and "UNKNOWN_REGION" not in richer["reason_all"]
    # Regions match exactly: a parcel of 'Henan' gets the national prices, and is told so.
    other = assign_limits(pd.DataFrame([_parcel(region="Henan")]), config, RISK).iloc[0]
    assert other["loan_limit"] == base and "UNKNOWN_REGION" in other["reason_all"]
    # So do parcels that name no region, told alike.
    for blank in ("", None, float("nan")):
        unnamed = assign_limits(pd.DataFrame([_parcel(region=blank)]), config, RISK).iloc[0]
        assert unnamed["loan_limit"] == base and "UNKNOWN_REGION" in unnamed["reason_all"]
    assert "UNKNOWN_REGION" not in assign_limits(pd.DataFrame([_parcel(region="")]), CONFIG, RISK).iloc[0]["reason_all"]



def test_a_region_typed_in_either_unicode_form_of_its_letters_is_priced_as_the_config_names_it() -> None:
    """Bengali ড় is one character on some keyboards, ড and a nukta on others, and reads the same: 61 Bogura parcels were
    priced nationally (32, not 40 BDT/kg) and told their region differed "only in case, width or blanks"."""
    one, two = "বগু\u09dcা", "বগু\u09a1\u09bcা"  # the same name as a reader sees it
    assert one != two
    for configured, named in ((one, two), (two, one)):
        config = Config.model_validate({**CONFIG.model_dump(),
                                        "regions": {configured: {"crops": {"wheat": {"price": 4.0}}}}})
        base = assign_limits(pd.DataFrame([_parcel()]), config, RISK).iloc[0]["loan_limit"]
        priced = assign_limits(pd.DataFrame([_parcel(region=named)]), config, RISK).iloc[0]
        assert priced["loan_limit"] > base and "UNKNOWN_REGION" not in priced["reason_all"]
        assert priced["region"] == named  # the parcel's region as it wrote it
    with pytest.raises(ValueError, match="and the same name typed otherwise are both given"):
        Config.model_validate({**CONFIG.model_dump(), "regions": {one: {}, two: {}}})


def test_a_config_whose_regions_no_parcel_names_is_warned_of_naming_both(caplog: pytest.LogCaptureFixture) -> None:
    """Config 驻马店市, parcels 河南省驻马店市: every parcel got the national prices, told by an info code alone."""
    regions = {"驻马店市": {"crops": {"小麦": {"price": 2.4}}}}
    config = Config.model_validate({**CONFIG.model_dump(), "regions": regions})
    parcels = pd.DataFrame([_parcel(parcel_id=f"P{i}", region=region)
                            for i, region in enumerate(["河南省驻马店市", "河南省驻马店市", "河南省信阳市", None])])
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assign_limits(parcels, config, RISK)
    assert caplog.text.count("no parcel's region is one the config prices") == 1
    assert ("(its regions: '驻马店市'; the parcels': '河南省驻马店市', '河南省信阳市'), matched exactly: every parcel "
            "gets the national prices (UNKNOWN_REGION)") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assign_limits(parcels.drop(columns="region"), config, RISK)
        assert "but no parcel names one" in caplog.text
        caplog.clear()
        assign_limits(parcels.assign(region="驻马店市"), config, RISK)  # one parcel priced is enough
        assign_limits(parcels, CONFIG, RISK)  # no regions configured: national prices, as meant
    assert caplog.text == ""


def test_parcels_whose_region_the_config_does_not_price_are_counted_and_near_misses_named(
        caplog: pytest.LogCaptureFixture) -> None:
    """Config Zhumadian, parcels ' Zhumadian', 'ＺＨＵＭＡＤＩＡＮ', 'zhumadian': one parcel written as the config does
    silenced the warning, and the others got the national prices told only by UNKNOWN_REGION."""
    regional = {"Zhumadian": {"crops": {"wheat": {"price": 4.0}}}}
    config = Config.model_validate({**CONFIG.model_dump(), "regions": regional})
    regions = ["Zhumadian", " Zhumadian", "ＺＨＵＭＡＤＩＡＮ", "zhumadian", "zhumadian", "Xinyang", None]
    parcels = pd.DataFrame([_parcel(parcel_id=f"P{i}", region=region) for i, region in enumerate(regions)])
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assign_limits(parcels, config, RISK)
    assert ("5 of the 6 parcels naming a region name one the config does not price (its regions: 'Zhumadian'; the "
            "parcels': ' Zhumadian', 'ＺＨＵＭＡＤＩＡＮ', 'zhumadian' and 1 more), matched exactly: they get the "
            "national prices (UNKNOWN_REGION); ' Zhumadian' for 'Zhumadian', 'ＺＨＵＭＡＤＩＡＮ' for 'Zhumadian', "
            "'zhumadian' for 'Zhumadian' differ only in case, width or blanks") in caplog.text


def test_overstated_area_refers_and_fallow_declines() -> None:
    # Twice the top of the interval (grade C); at three times, grade E, it is referred too (below).
    over = _assess(_parcel(declared_area_ha=1.0)).iloc[0]
    assert over["decision"] == "refer" and over["reason"].startswith("AREA_OVERSTATED")
    fallow = _assess(_parcel(crop="fallow", cultivated_fraction=0.05, cultivated_area_ha=0.025)).iloc[0]
    assert fallow["decision"] == "decline" and fallow["loan_limit"] == 0
    assert "NOT_CULTIVATED" in fallow["reason"]


def test_a_tiny_plots_declaration_rounded_to_the_hundredth_ha_is_not_flagged_but_a_larger_slip_is() -> None:
    """A 0.0151 ha plot, fully cropped, declared 0.02 ha (rounded to 0.01 ha) is 1.32 times its area, 49 m² over,
    under a pixel: it was flagged AREA_OVERSTATED, referring its borrower. Outside the interval now takes its 1.2 times
    and credit.declared_area_slack_ha (0.01 ha) alike, above it and below it (AREA_UNDERSTATED)."""
    tiny = {"polygon_area_ha": 0.0151, "cultivated_area_ha": 0.0151, "cultivated_area_low_ha": 0.0136,
            "cultivated_area_high_ha": 0.0151}
    declared = [0.02, 0.0252, 0.01, 0.0035]
    codes = [set(out.reason_all.split(";")) for out in _assess(*(
        _parcel(parcel_id=f"P{k}", borrower_id=f"B{k}", declared_area_ha=area, **tiny)
        for k, area in enumerate(declared))).itertuples()]
    flags = [code & {"AREA_OVERSTATED", "AREA_UNDERSTATED"} for code in codes]
    assert flags == [set(), {"AREA_OVERSTATED"}, set(), {"AREA_UNDERSTATED"}]
    # Without the slack, the share alone: the rounded declaration is flagged, as it was.
    strict = CONFIG.model_copy(update={"credit": CONFIG.credit.model_copy(update={"declared_area_slack_ha": 0.0})})
    out = assign_limits(pd.DataFrame([_parcel(declared_area_ha=0.02, **tiny)]), strict, RISK).iloc[0]
    assert (out.decision, out.reason_all.split(";")[0]) == ("refer", "AREA_OVERSTATED")
    # On a parcel of 0.05 ha or more the share is the wider: 1.21 times its top is flagged still.
    assert "AREA_OVERSTATED" in _assess(_parcel(declared_area_ha=0.5 * 1.21)).iloc[0].reason_all


def test_a_declaration_over_the_interval_by_no_more_than_the_slack_is_graded_as_honest() -> None:
    """A plot whose interval's top is 0.1742 ha declared 0.18 ha, rounded to the hundredth: not flagged (the slack,
    credit.declared_area_slack_ha 0.01 ha), yet its declared_over_high (1.033) raised its PD and its grade
    (sample_tiles/' P00320, A to B). The scorecard now counts only what exceeds the slack it was fitted with (the
    shipped one 0.01 ha): graded as declared honestly; 0.01 ha beyond the slack still counts. A scorecard saved
    before it kept a slack was fitted without one, and scores so."""
    plot = {"polygon_area_ha": 0.18, "cultivated_area_ha": 0.17, "cultivated_area_low_ha": 0.16,
            "cultivated_area_high_ha": 0.1742, "health_index": 40.0, "relative_yield": 0.8}
    rounded, honest, beyond = _assess(*(_parcel(parcel_id=f"P{k}", borrower_id=f"B{k}", declared_area_ha=area, **plot)
                                        for k, area in enumerate((0.18, 0.17, 0.1942)))).itertuples()
    assert RISK.declared_slack_ha == CONFIG.credit.declared_area_slack_ha == 0.01
    assert rounded.probability_of_default == honest.probability_of_default < beyond.probability_of_default
    assert (rounded.loan_limit, np.isnan(rounded.honest_limit)) == (honest.loan_limit, True)
    saved = json.loads((Path(farmcredit.credit.risk.__file__).with_name("default_risk_model.json")).read_text())
    del saved["model"]["declared_slack_ha"]
    older = RiskModel(saved, "saved before the slack")
    unforgiven = assign_limits(pd.DataFrame([_parcel(declared_area_ha=0.18, **plot)]), CONFIG, older).iloc[0]
    assert older.declared_slack_ha == 0.0 and older.model_hash != RISK.model_hash
    assert unforgiven.probability_of_default > rounded.probability_of_default


def test_an_overstated_area_is_referred_not_declined_on_the_pd_it_raised() -> None:
    """Declared at three times what the imagery shows, a parcel the scorecard grades E (PD 0.28) for the declaration
    alone (declared honestly, PD 0.02) goes to a person, as the product promises, not declined HIGH_RISK: its PD, grade
    and limit stay as scored (grade E lends nothing until the declaration is cleared, so neither is its borrower
    declined), and the arithmetic says what an honest declaration gets, which is the parcel's declared so."""
    over, honest = _assess(_parcel(declared_area_ha=1.5), _parcel(parcel_id="P2", borrower_id="B2")).itertuples()
    scored = RISK.probability_of_default(pd.DataFrame([_parcel(declared_area_ha=np.nan)]))[0]  # none: as honest
    assert (over.decision, over.risk_grade, over.loan_limit) == ("refer", "E", 0.0)
    assert over.probability_of_default > 0.2 > scored == pytest.approx(honest.probability_of_default)
    assert over.reason_all.split(";") == ["AREA_OVERSTATED"]
    assert over.limit_arithmetic.endswith(
        f"loan_limit = 0 CNY (refer: AREA_OVERSTATED, not HIGH_RISK: declared honestly (declared_over_high 1): PD "
        f"{scored:.4f}, grade {honest.risk_grade}, limit {money(honest.loan_limit)} CNY)")
    assert _borrowers(_assess(_parcel(declared_area_ha=1.5)))["decision"].iloc[0] == "refer"


def test_the_risk_features_are_built_once_for_the_pd_as_scored_and_as_declared_honestly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The PD declared honestly differs from the scored one in ``declared_over_high`` alone: assign_limits built the
    scorecard's features from the table twice, once for each; now once, the PDs as before."""
    import farmcredit.credit.risk

    built = []
    risk_features = farmcredit.credit.risk.risk_features
    monkeypatch.setattr(farmcredit.credit.risk, "risk_features",
                        lambda table, slack: built.append(len(table)) or risk_features(table, slack))
    over = _assess(_parcel(declared_area_ha=1.5), _parcel(parcel_id="P2", borrower_id="B2")).iloc[0]
    assert built == [2]
    honestly = RISK.probability_of_default(pd.DataFrame([_parcel(declared_area_ha=np.nan)]))[0]
    assert over.probability_of_default > 0.2 and f"PD {honestly:.4f}, grade " in over.limit_arithmetic


@pytest.mark.parametrize(("worse", "decline"), [
    ({"health_index": 5.0, "relative_yield": 0.6, "ndvi_uniformity": 0.2}, "HIGH_RISK"),
    ({"yield_p10_t_ha": 0.5}, "ZERO_LIMIT"),
    (_FALLOW, "NOT_CULTIVATED"),
])
def test_an_overstated_area_is_declined_where_an_honest_declaration_would_be(worse, decline) -> None:
    """Graded E on an overstated area, a parcel whose PD is over the cut declared honestly too, whose harvest leaves
    nothing to lend at its honest grade, or that is not cultivated, is declined so; the arithmetic says what its PD
    is declared honestly."""
    parcel = _parcel(**{**worse, "declared_area_ha": 1.5})
    out = _assess(parcel).iloc[0]
    scored = RISK.probability_of_default(pd.DataFrame([{**parcel, "declared_area_ha": np.nan}]))[0]
    assert (out.decision, out.risk_grade, out.loan_limit) == ("decline", "E", 0.0)
    assert out.reason.split(";")[0] == decline and "AREA_OVERSTATED" in out.reason_all.split(";")
    assert ("HIGH_RISK" in out.reason_all.split(";")) == (scored > 0.2)  # fallow land is a risk declared honestly too
    assert f"(decline: {decline}, " in out.limit_arithmetic and f"PD {scored:.4f}, grade " in out.limit_arithmetic


# A weak wheat field of 0.179 ha measured at 0.0402 ha cultivated, its interval 0-0.176 ha (the May imagery of
# sample_tiles' P00355, truly all wheat): graded E on the estimate, D at the interval's top.
_UNSURE = {"polygon_area_ha": 0.179, "cultivated_fraction": 0.225, "cultivated_area_ha": 0.0402,
           "cultivated_area_low_ha": 0.0, "cultivated_area_high_ha": 0.176, "health_index": 10.0,
           "relative_yield": 0.7, "declared_area_ha": np.nan}


@pytest.mark.parametrize("lend_on_area", ["estimate", "low"])
def test_a_decline_the_top_of_the_area_interval_would_not_stand_by_is_referred(lend_on_area) -> None:
    """A parcel declined on a cultivated area its interval does not know, reaching from not cultivated (under 20% of
    the outline) to fully (90%) (HIGH_RISK on 0.0402 ha of 0-0.176 ha, not cultivated at 7% of an outline its interval
    may fill) is referred AREA_UNCERTAIN, its arithmetic naming the interval and what the top gets, whatever area it
    is lent on; with an interval whose low end is cultivated (22%: the estimate is the model's to judge, though the
    top would grade D) or whose top is not, the decline stands."""
    fallow = {**_FALLOW, "polygon_area_ha": 0.096, "cultivated_fraction": 0.07, "cultivated_area_ha": 0.0067}
    wide, narrow, bare, bare_narrow = assign_limits(pd.DataFrame([
        _parcel(**_UNSURE), _parcel(**{**_UNSURE, "cultivated_area_low_ha": 0.04}),
        _parcel(**{**fallow, "cultivated_area_high_ha": 0.096}),
        _parcel(**{**fallow, "cultivated_area_high_ha": 0.015})]), _lending_on(lend_on_area), RISK).itertuples()
    assert (wide.decision, wide.risk_grade, wide.loan_limit) == ("refer", "E", 0.0)
    assert wide.reason_all.split(";")[0] == "AREA_UNCERTAIN" and "HIGH_RISK" not in wide.reason_all
    # What grade E took off the estimate's limit, as HIGH_RISK's was (the low end, 0 ha, has none).
    assert amounts(wide.reason_amounts).keys() == ({"AREA_UNCERTAIN"} if lend_on_area == "estimate" else set())
    assert re.search(r"\(refer: AREA_UNCERTAIN, cultivated 0\.0402 ha, between 0 and 0\.176 ha of 0\.179: too "
                     r"uncertain to decline \(HIGH_RISK on the estimate; at the top PD 0\.\d{4}, grade [A-D], limit "
                     r"[\d,.]+ CNY\); review\)$", wide.limit_arithmetic), wide.limit_arithmetic
    assert (narrow.decision, narrow.reason_all.split(";")[0]) == ("decline", "HIGH_RISK")
    assert (bare.decision, bare.reason_all) == ("refer", "AREA_UNCERTAIN")
    assert "between 0 and 0.096 ha of 0.096: too uncertain to decline (NOT_CULTIVATED" in bare.limit_arithmetic
    assert "at the top cultivated at 100% of the outline" in bare.limit_arithmetic
    assert (bare_narrow.decision, bare_narrow.reason_all.split(";")[0]) == ("decline", "NOT_CULTIVATED")
    # Its sentence, on a referred row, said "the parcel, declined on its estimate, would not be at the interval's top",
    # as if declined: it says it would be declined, and is referred.
    assert ("would be declined on its estimate but not at the interval's top (the limit's arithmetic gives both); it "
            "is referred: a person reviews the field.") in wide.reason_text


# A weak crop the scorecard grades D declared honestly, E declared at 1.2 times the interval's top (1.18 times beyond
# the slack), the most AREA_OVERSTATED allows.
_WEAK = {"health_index": 0.0, "relative_yield": 0.5, "ndvi_uniformity": 0.05}
_DECISION_RANK = {"approve": 0, "refer": 1, "decline": 2}


def test_a_declaration_under_the_overstated_cut_that_alone_grades_e_is_referred_not_declined() -> None:
    """Declared at 1.2 times the top of its interval (not AREA_OVERSTATED), a parcel whose declaration alone puts its
    PD over the cut is referred DECLARED_AREA_RISK, as one declared further over is referred AREA_OVERSTATED: declined
    HIGH_RISK, declaring less fared worse than declaring more."""
    under, over, honest = _assess(_parcel(**_WEAK, declared_area_ha=0.6),
                                  _parcel(**_WEAK, parcel_id="P2", declared_area_ha=0.5 * 1.3),
                                  _parcel(**_WEAK, parcel_id="P3")).itertuples()
    assert (honest.decision, honest.risk_grade) == ("approve", "D") and honest.loan_limit > 0
    assert (under.decision, under.risk_grade, under.loan_limit) == ("refer", "E", 0.0)
    assert under.reason_all.split(";")[0] == "DECLARED_AREA_RISK" and "AREA_OVERSTATED" not in under.reason_all
    assert (over.decision, over.reason_all.split(";")[0]) == ("refer", "AREA_OVERSTATED")
    assert under.limit_arithmetic.endswith(
        f"loan_limit = 0 CNY (refer: DECLARED_AREA_RISK, not HIGH_RISK: declared honestly (declared_over_high 1): PD "
        f"{honest.probability_of_default:.4f}, grade D, limit {money(honest.loan_limit)} CNY)")


def test_the_honest_limit_of_a_parcel_pledged_twice_too_is_said_to_wait_for_the_overlap_to_be_cleared() -> None:
    """Referred on an overstated area that graded it E and pledged twice too, the limit an honest declaration gets is
    still withheld until a person has seen whose the land is: the arithmetic says so, not a limit it would get now."""
    out = _assess(_parcel(declared_area_ha=1.5), _parcel(parcel_id="P2", borrower_id="B2"),
                  overlaps=Overlaps.between(2, [(0, 1)])).iloc[0]
    assert (out.decision, out.risk_grade, out.loan_limit) == ("refer", "E", 0.0)
    assert re.search(r", limit [\d,.]+ CNY once PARCEL_OVERLAP is cleared\)$",
                     out.limit_arithmetic), out.limit_arithmetic


@settings(max_examples=60, deadline=None)
@given(health=st.floats(0.0, 100.0), relative_yield=st.floats(0.3, 1.3), uniformity=st.floats(0.0, 0.4),
       fraction=st.floats(0.5, 1.0), yield_p10=st.floats(0.0, 8.0))
@example(health=0.0, relative_yield=0.5, uniformity=0.05, fraction=1.0, yield_p10=4.0)
def test_declaring_less_never_gives_a_harsher_decision(health, relative_yield, uniformity, fraction, yield_p10) -> None:
    """On a grid of declared areas for one parcel, from under its interval to five times its top, each decision is no
    harsher than the next larger declaration's."""
    declared = 0.5 * np.array([0.5, 0.9, 1.0, 1.05, 1.1, 1.15, 1.19, 1.2, 1.21, 1.3, 1.6, 2.0, 3.0, 5.0])
    rows = [_parcel(parcel_id=f"P{k}", borrower_id=f"B{k}", health_index=health, relative_yield=relative_yield,
                    ndvi_uniformity=uniformity, cultivated_fraction=fraction, yield_p10_t_ha=yield_p10,
                    declared_area_ha=area) for k, area in enumerate(declared)]
    harshness = _assess(*rows)["decision"].map(_DECISION_RANK).to_numpy()
    assert (np.diff(harshness) >= 0).all(), harshness


@settings(max_examples=60, deadline=None)
@given(health=st.floats(0.0, 100.0), relative_yield=st.floats(0.3, 1.3), uniformity=st.floats(0.0, 0.4),
       yield_p10=st.floats(0.0, 8.0), other_area=st.floats(0.0, 0.2))
@example(health=0.0, relative_yield=1.0, uniformity=0.0, yield_p10=3.0, other_area=0.005)
@example(health=0.0, relative_yield=0.7, uniformity=0.0, yield_p10=3.0, other_area=0.005)
def test_declaring_less_never_gives_the_borrower_a_harsher_decision_or_a_lower_limit(
        health, relative_yield, uniformity, yield_p10, other_area) -> None:
    """One parcel of a two-parcel borrower declared on a grid of areas from half its interval's top to five times it,
    within AREA_OVERSTATED's allowance (1.2 times) and over it, the other parcel fixed: each borrower decision is no
    harsher, and each limit offered no lower, than the next larger declaration's, the minimum loan (1,000) in play.
    Declared 1.3 times over, a parcel graded D by that (C declared honestly) was referred with its grade-D limit,
    914.40, which counted in the total: its borrower was declined under the minimum; declared twice over, graded E, its
    honest limit (1,371.60) was pending and its borrower referred. Then declared 1.05 times over, within the
    allowance, graded D, approved at 914.40, its borrower was declined under the minimum where one declared 1.21 times
    over was referred."""
    declared = 0.5 * np.array([0.5, 1.0, 1.05, 1.1, 1.15, 1.19, 1.2, 1.21, 1.25, 1.3, 1.6, 2.0, 3.0, 5.0])
    signals = {"health_index": health, "relative_yield": relative_yield, "ndvi_uniformity": uniformity,
               "yield_p10_t_ha": yield_p10}
    other = {"cultivated_area_ha": other_area, "cultivated_area_low_ha": 0.9 * other_area,
             "cultivated_area_high_ha": other_area, "polygon_area_ha": other_area, "declared_area_ha": other_area}
    rows = [row for k, area in enumerate(declared) for row in (
        _parcel(parcel_id=f"P{k:02d}a", borrower_id=f"B{k:02d}", declared_area_ha=area, **signals),
        _parcel(parcel_id=f"P{k:02d}b", borrower_id=f"B{k:02d}", **signals, **other))]
    borrowers = _borrowers(_assess(*rows))
    harshness = borrowers["decision"].map(_DECISION_RANK).to_numpy()
    assert (np.diff(harshness) >= 0).all(), borrowers[["decision", "loan_limit", "reason_all"]]
    assert (np.diff(borrowers["loan_limit"].to_numpy()) <= 0).all(), borrowers[["decision", "loan_limit"]]


def test_an_honest_declaration_over_a_wide_interval_fares_no_worse_than_none() -> None:
    """A small, partly cultivated parcel whose cultivated area the imagery knows only to 0.008-0.119 ha: declared
    within it, or at its whole 0.1295 ha outline (AREA_OVERSTATED allows 1.2 x the interval's top), it is approved as
    when declared blank. Its declaration was read against the estimate (0.052 ha): declared, PD 0.37-0.40, declined
    HIGH_RISK; blank, PD 0.10, approved."""
    wide = {"polygon_area_ha": 0.1295, "cultivated_fraction": 0.4, "cultivated_area_ha": 0.052,
            "cultivated_area_low_ha": 0.008, "cultivated_area_high_ha": 0.119, "health_index": 50.0,
            "relative_yield": 0.9}
    blank, *honest = _assess(*(_parcel(parcel_id=f"P{k}", borrower_id=f"B{k}", declared_area_ha=declared, **wide)
                               for k, declared in enumerate([np.nan, 0.05, 0.11, 0.1295]))).itertuples()
    assert blank.decision == "approve"
    for parcel in honest:
        assert (parcel.decision, parcel.loan_limit) == (blank.decision, blank.loan_limit), parcel.declared_area_ha
        assert parcel.probability_of_default >= blank.probability_of_default
    assert [p.probability_of_default for p in honest[:2]] == [blank.probability_of_default] * 2


@pytest.mark.parametrize("name", ["cotton", "winter wheat"])
def test_a_crop_name_the_config_does_not_know_over_a_season_confidently_of_one_it_prices_is_referred(name) -> None:
    """Cotton, or winter wheat where the aliases lack it, declared where the imagery says wheat, surely: a person
    tells a crop not financed from a name to add to the aliases (cotton was approved as wheat, no word said; then
    both read as CROP_MISMATCH, calling an honest declaration false). Where no crop is recognised, nothing contradicts
    it (nor is anything priced)."""
    said = {"declared_crop": name, "declared_crop_probability": np.nan}
    sure = _assess(_parcel(**said)).iloc[0]
    assert sure["decision"] == "refer" and sure["reason"].startswith("UNCONFIRMED_DECLARED_CROP")
    assert "CROP_MISMATCH" not in sure["reason_all"] and sure["loan_limit"] > 0
    unknown = _assess(_parcel(**said, crop="unknown", crop_confidence=np.nan, priced_crop="unknown")).iloc[0]
    assert unknown["reason_all"].split(";") == ["NO_LIMIT", "UNKNOWN_DECLARED_CROP"]


@pytest.mark.parametrize("name", ["棉花", "cotton"])
def test_a_crop_name_the_config_does_not_price_over_an_unsure_call_is_referred_its_limit_withheld(name) -> None:
    """Cotton declared where the imagery says maize at 0.51 (a summer crop's call stays near 0.5): nothing confirms
    the call, so no limit is priced on it and a person checks what grows there. It was approved and priced as maize
    (364.46 CNY, the info code UNKNOWN_DECLARED_CROP alone), while the same declaration over a confident call was
    referred: the weaker evidence fared better. Its borrower stays referred, the limit pending."""
    unsure = {"declared_crop": name, "declared_crop_probability": np.nan, "crop": "maize", "crop_confidence": 0.51,
              "priced_crop": "maize"}
    parcels = _assess(_parcel(**unsure), _parcel(parcel_id="P2"))
    out = parcels.iloc[0]
    assert out["decision"] == "refer" and out["loan_limit"] == 0
    assert out["reason"].split(";")[0] == "UNDETERMINED_DECLARED_CROP" and "NO_LIMIT" not in out["reason_all"]
    assert out["limit_arithmetic"] == (f"no limit: the declaration ({name}) names no crop the configuration prices, "
                                       "and the imagery's call (maize, confidence 0.51) is unsure")
    assert "cannot tell which crop it is" in out["reason_text"]
    borrower = _borrowers(parcels).iloc[0]
    assert borrower["decision"] == "refer" and "UNDETERMINED_DECLARED_CROP" in borrower["reason_all"]
    assert borrower["loan_limit"] == round_down(parcels["loan_limit"].iloc[1], CONFIG.credit.rounding_step)


def test_an_unpriced_crop_over_an_unsure_call_graded_to_lend_nothing_is_referred_not_declined() -> None:
    """Tea declared where the imagery says maize at 0.48, a maize grade E on the call (poor health, yield and
    uniformity): it was declined HIGH_RISK on that grade, though nothing confirms the call and its own code says a
    person checks what grows there. It is referred with no limit, and no grade is read from the unsure call."""
    worse = {"health_index": 5.0, "relative_yield": 0.6, "ndvi_uniformity": 0.2}
    assert RISK.probability_of_default(pd.DataFrame([_parcel(**worse)]))[0] > 0.2  # grade E, were it maize
    out = _assess(_parcel(**worse, declared_crop="tea", declared_crop_probability=np.nan, crop="maize",
                          crop_confidence=0.48, priced_crop="maize")).iloc[0]
    assert (out["decision"], out["loan_limit"], out["risk_grade"]) == ("refer", 0.0, None)
    assert out["reason_all"].split(";")[0] == "UNDETERMINED_DECLARED_CROP" and "HIGH_RISK" not in out["reason_all"]
    assert np.isnan(out["probability_of_default"])


def test_error_rows_get_no_limit_and_are_referred() -> None:
    out = _assess(_parcel(reasons=["OUTSIDE_IMAGERY"], cultivated_area_ha=np.nan, health_index=np.nan,
                          yield_p10_t_ha=np.nan)).iloc[0]
    assert out["status"] == "error" and out["decision"] == "refer" and out["loan_limit"] == 0


def test_at_most_four_reasons_ranked_by_effect_then_cost() -> None:
    out = _assess(_parcel(declared_area_ha=2.0, health_index=5.0, cultivated_fraction=0.6, ndvi_uniformity=0.3,
                          reasons=["PEAK_NOT_OBSERVED", "GEOMETRY_REPAIRED"]), _parcel(parcel_id="P2"),
                  overlaps=Overlaps.between(2, [(0, 1)])).iloc[0]
    shown, everything = out["reason"].split(";"), out["reason_all"].split(";")
    assert len(shown) == CONFIG.credit.max_reasons < len(everything)
    assert shown == everything[: len(shown)]
    # No image near its peak refers it: that leads, then the rest by effect; no risk is graded (HIGH_RISK).
    assert out["decision"] == "refer" and everything[0] == "PEAK_NOT_OBSERVED" and "HIGH_RISK" not in everything
    assert np.isnan(out["probability_of_default"]) and pd.isna(out["risk_grade"])
    ranks = [EFFECT_RANK[REASONS[code].effect] for code in everything[1:]]
    assert ranks == sorted(ranks) and "PARCEL_OVERLAP" in everything
    assert out["reason_text"] == explain(shown, figures={"PARCEL_OVERLAP": "It overlaps P2."})


def test_overlapping_parcels_are_referred_and_named_their_limits_withheld() -> None:
    out = _assess(_parcel(parcel_id="A"), _parcel(parcel_id="B", borrower_id="B2"),
                  overlaps=Overlaps.between(2, [(0, 1)]))
    assert (out["decision"] == "refer").all() and out["reason"].str.contains("PARCEL_OVERLAP").all()
    assert list(out["overlaps_parcels"]) == ["B", "A"]
    # The reason's sentence names whose: the queue's reviewer read "overlaps another pledged parcel" and no id.
    assert out.loc[0, "reason_text"].startswith(
        "The parcel overlaps another pledged parcel: the same land counted twice. It overlaps B.")
    # Lent on once a person has seen whose land it is: with their limits, one borrower pledging it twice got it twice.
    twice = _assess(_parcel(parcel_id="A"), _parcel(parcel_id="A2"), _parcel(parcel_id="C"),
                    overlaps=Overlaps.between(3, [(0, 1)]))
    assert list(twice["loan_limit"][:2]) == [0, 0] and twice.loc[2, "loan_limit"] > 0
    assert twice.loc[0, "limit_arithmetic"].endswith("loan_limit = 0 CNY (refer: PARCEL_OVERLAP)")
    borrower = aggregate_borrowers(gpd.GeoDataFrame(twice.assign(geometry=None)), CONFIG).iloc[0]
    assert borrower["decision"] == "refer"
    assert borrower["loan_limit"] == round_down(twice.loc[2, "loan_limit"], CONFIG.credit.rounding_step)
    # Partners in id order, whatever order the rows (and so the spatial index) gave them in.
    rows = [_parcel(parcel_id=name, borrower_id=name) for name in ("C", "A", "B")]
    assert _assess(*rows, overlaps=Overlaps.between(3, [(0, 2), (0, 1)])).loc[0, "overlaps_parcels"] == "A;B"


def test_copies_of_one_outline_are_each_referred_as_every_pair_of_them_would_be_their_partners_capped() -> None:
    """300 parcels of one outline (a village boundary pasted where outlines were missing): each is PARCEL_OVERLAP,
    decided as if each pair were listed, its table cell naming 20 partners and counting the rest."""
    rows = [_parcel(parcel_id=f"P{k:03d}", borrower_id=f"B{k % 7}") for k in range(300)]
    copies = _assess(*rows, overlaps=find_overlaps(np.array([shapely.box(0, 0, 100, 100)] * 300), 0.2))
    every_pair = _assess(*rows, overlaps=Overlaps.between(300, itertools.combinations(range(300), 2)))
    columns = ["decision", "status", "loan_limit", "reason_all", "limit_arithmetic"]
    pd.testing.assert_frame_equal(copies[columns], every_pair[columns])
    assert (copies["decision"] == "refer").all() and copies["reason_all"].str.contains("PARCEL_OVERLAP").all()
    assert (copies["loan_limit"] == 0).all()
    assert copies.loc[0, "overlaps_parcels"] == ";".join(f"P{k:03d}" for k in range(1, 21)) + "; and 279 more"
    assert copies.loc[299, "overlaps_parcels"] == ";".join(f"P{k:03d}" for k in range(20)) + "; and 279 more"
    assert copies["overlaps_parcels"].str.len().max() < 200


@settings(max_examples=200, deadline=None)
@given(
    area=st.floats(0.0, 50.0), extra_area=st.floats(0.0, 10.0),
    yield_p10=st.floats(0.0, 10.0), extra_yield=st.floats(0.0, 5.0),
    health=st.floats(0.0, 100.0), extra_health=st.floats(0.0, 100.0),
    fraction=st.floats(0.0, 1.0), uniformity=st.floats(0.0, 0.5),
    declared=st.one_of(st.just(float("nan")), st.floats(0.0, 60.0)),
    crop=st.sampled_from(sorted(CONFIG.crops)), spread=st.floats(0.0, 0.9),
    lend_on=st.sampled_from(["estimate", "low"]),
)
def test_limit_never_falls_when_area_yield_or_health_rise(
    area, extra_area, yield_p10, extra_yield, health, extra_health, fraction, uniformity, declared, crop, spread,
    lend_on,
) -> None:
    """All else equal, whether lent on the cultivated area's estimate or on the low end of its interval (the interval
    rising with the estimate, or its low end alone)."""
    config = _lending_on(lend_on)

    def limit(a: float, y: float, h: float, low: float | None = None) -> float:
        row = _parcel(cultivated_area_ha=a, cultivated_area_low_ha=a * (1 - spread) if low is None else low,
                      cultivated_area_high_ha=a * (1 + spread), yield_p10_t_ha=y,
                      relative_yield=y / 4.0, health_index=h, cultivated_fraction=fraction,
                      ndvi_uniformity=uniformity, declared_area_ha=declared, crop=crop, priced_crop=crop,
                      declared_crop=crop)
        return assign_limits(pd.DataFrame([row]), config, RISK).iloc[0]["loan_limit"]

    base = limit(area, yield_p10, health)
    assert limit(area + extra_area, yield_p10, health) >= base
    assert limit(area, yield_p10, health, low=area * (1 - spread) + extra_area * spread) >= base
    assert limit(area, yield_p10 + extra_yield, health) >= base
    assert limit(area, yield_p10, min(health + extra_health, 100.0)) >= base
    assert 0 <= base <= CONFIG.credit.parcel_cap


def test_same_inputs_give_the_same_decisions() -> None:
    rows = [_parcel(parcel_id=f"P{i}", health_index=float(i * 9), declared_area_ha=0.5 + i / 10) for i in range(10)]
    pd.testing.assert_frame_equal(_assess(*rows), _assess(*rows))


def test_borrower_total_is_capped_and_names_deciding_parcels() -> None:
    rows = [_parcel(parcel_id=f"P{i}", cultivated_area_ha=60.0, cultivated_area_low_ha=60.0,
                    cultivated_area_high_ha=60.0, declared_area_ha=60.0, polygon_area_ha=60.0) for i in range(4)]
    rows.append(_parcel(parcel_id="P9", declared_area_ha=0.8))
    parcels = _assess(*rows)
    frame = gpd.GeoDataFrame(parcels, geometry=[box(i, 0, i + 1, 1) for i in range(5)], crs="EPSG:32650")
    borrower = aggregate_borrowers(frame, CONFIG).iloc[0]
    assert borrower["loan_limit"] == pytest.approx(CONFIG.credit.borrower_cap)
    assert borrower["decision"] == "refer" and borrower["decided_by"] == "P9"
    assert borrower["reason"].startswith("BORROWER_CAP_REACHED")
    total, cap = money(round(parcels["loan_limit"].sum(), 2)), money(CONFIG.credit.borrower_cap)
    assert borrower["limit_arithmetic"].endswith(f"= {total} CNY; capped = min({total}; cap {cap}) = {cap} CNY; "
                                                 f"rounded = round down {cap} to a multiple of 100 = {cap} CNY")
    # What the cap took is what was over it.
    over = round(parcels["loan_limit"].sum() - CONFIG.credit.borrower_cap, 2)
    assert float(amounts(borrower["reason_amounts"])["BORROWER_CAP_REACHED"]) == pytest.approx(over)


def test_parcel_cap_caps_a_parcel_not_a_field_cut_into_strips_which_borrower_cap_binds() -> None:
    """As README says: a 1.5 ha field under a 2,000 parcel cap lends 2,000; cut into six touching 0.25 ha strips,
    each under the cap, it lends their sum, so only borrower_cap (here 5,000) bounds what a borrower gets."""
    config = CONFIG.model_copy(update={"credit": CONFIG.credit.model_copy(update={"parcel_cap": 2000,
                                                                                  "borrower_cap": 5000})})

    def borrower(area: float, n: int) -> pd.Series:
        rows = [_parcel(parcel_id=f"P{k}", declared_area_ha=area, polygon_area_ha=area, cultivated_area_ha=area,
                        cultivated_area_low_ha=area, cultivated_area_high_ha=area) for k in range(n)]
        parcels = assign_limits(pd.DataFrame(rows), config, RISK)
        frame = gpd.GeoDataFrame(parcels, geometry=[box(k, 0, k + 1, 1) for k in range(n)], crs="EPSG:32650")
        return aggregate_borrowers(frame, config).iloc[0]

    whole, strips = borrower(1.5, 1), borrower(0.25, 6)
    assert whole["loan_limit"] == 2000 and whole["reason"] == "CAP_REACHED"
    assert strips["loan_limit"] == 5000 and strips["reason"].startswith("BORROWER_CAP_REACHED")


def test_borrowers_below_the_minimum_loan_are_declined() -> None:
    """Declined by their total, not by the parcel declined beside it (which gave 0): no parcel decided alone."""
    parcels = _assess(_parcel(cultivated_area_ha=0.02, cultivated_area_low_ha=0.02, cultivated_area_high_ha=0.02,
                              declared_area_ha=0.02),
                      _parcel(parcel_id="P2", cultivated_fraction=0.0, cultivated_area_ha=0.0, crop="fallow",
                              priced_crop="fallow", declared_area_ha=np.nan))
    assert list(parcels["decision"]) == ["approve", "decline"]
    borrower = _borrowers(parcels).iloc[0]
    assert borrower["decision"] == "decline" and borrower["loan_limit"] == 0 and borrower["decided_by"] == "P1;P2"
    assert borrower["reason"].startswith("LIMIT_BELOW_MINIMUM")
    minimum = CONFIG.credit.min_loan
    assert borrower["limit_arithmetic"].endswith(f"under the minimum loan of {minimum:,.0f} CNY: declined = 0 CNY")
    # What the minimum took is all it withheld, the parcels' total before rounding down (the part rounding would take
    # was attributed to nothing): the parcels' limits less the borrower's own codes' amounts are what it is offered.
    withheld = round(float(parcels["loan_limit"].sum()), 2)
    assert withheld % 100 and amounts(borrower["reason_amounts"])["LIMIT_BELOW_MINIMUM"] == Decimal(repr(withheld))
    supported = (f"Supported {money(withheld)} CNY (rounded down to a multiple of 100: "
                 f"{money(round_down(withheld, 100))} CNY)")
    assert f"smallest loan offered. {supported}; the smallest loan is 1,000 CNY." in borrower["reason_text"]


def test_a_parcel_called_all_is_not_read_as_every_parcel_deciding() -> None:
    """decided_by was "all" where every parcel decided by their total: a parcel of that id, approved beside a
    declined one, had borrower_decisions.jsonl say the declined parcel decided the approval."""
    parcels = _assess(_parcel(parcel_id="all"), _parcel(parcel_id="P2", **_FALLOW))
    assert parcels["decision"].tolist() == ["approve", "decline"]
    borrowers = _borrowers(parcels)
    assert (borrowers["decision"].iloc[0], borrowers["decided_by"].iloc[0]) == ("approve", "all")
    audited = next(borrower_decision_records(borrowers, parcels, _RECORD))
    assert audited["decided_by"] == ["all"]


def test_a_declined_borrowers_doubt_that_took_nothing_comes_after_what_lowered_its_limit() -> None:
    """A crop mismatch on a parcel still lent on took nothing off the limit: declaring the crop seen lends no more
    (B0087 of sample_tiles, rule), so the grade that took the limit down ranks before it, not after."""
    parcels = _assess(_parcel(cultivated_area_ha=0.06, cultivated_area_low_ha=0.06, cultivated_area_high_ha=0.06,
                              declared_area_ha=0.06, polygon_area_ha=0.06, health_index=20.0, relative_yield=0.7,
                              crop="maize", crop_confidence=0.8, declared_crop_probability=0.1,
                              declared_crop_contradicted=True))
    assert parcels["reason_all"].iloc[0].startswith("CROP_MISMATCH;RISK_GRADE")  # the parcel is referred by it
    borrower = _borrowers(parcels).iloc[0]
    assert borrower["decision"] == "decline"
    assert borrower["reason_all"].split(";")[:3] == ["LIMIT_BELOW_MINIMUM", "RISK_GRADE", "CROP_MISMATCH"]
    assert "CROP_MISMATCH" not in borrower["reason_amounts"]


def test_a_referred_borrower_under_the_minimum_loan_is_offered_nothing_yet() -> None:
    """Its lent parcel alone is under the minimum; the referred one (its limit withheld) may add to it."""
    parcels = _assess(_parcel(cultivated_area_ha=0.02, cultivated_area_low_ha=0.02, cultivated_area_high_ha=0.02,
                              declared_area_ha=0.02),
                      _parcel(parcel_id="P2", clear_observations=1, reasons=["FEW_CLEAR_OBSERVATIONS"]))
    assert list(parcels["decision"]) == ["approve", "refer"] and 0 < parcels["loan_limit"].iloc[0] < 1000
    borrower = _borrowers(parcels).iloc[0]
    assert (borrower["decision"], borrower["loan_limit"], borrower["decided_by"]) == ("refer", 0.0, "P2")
    # Why it waits first (a farmer is not told only that the farm is too small), then the minimum.
    assert borrower["reason_all"].split(";")[:2] == ["FEW_CLEAR_OBSERVATIONS", "LIMIT_BELOW_MINIMUM"]
    assert borrower["limit_arithmetic"].endswith(
        f"under the minimum loan of {CONFIG.credit.min_loan:,.0f} CNY: 0 unless a review adds to it")
    # Referred with nothing lent yet: no minimum to speak of.
    alone = _borrowers(parcels.iloc[[1]]).iloc[0]
    assert alone["loan_limit"] == 0 and "LIMIT_BELOW_MINIMUM" not in alone["reason_all"]
    assert "minimum" not in alone["limit_arithmetic"]
    # Referred with its limit (its outline repaired): clearing it adds nothing, so the total under the minimum
    # declines, as an approved one does.
    kept = _assess(_parcel(cultivated_area_ha=0.02, cultivated_area_low_ha=0.02, cultivated_area_high_ha=0.02,
                           declared_area_ha=0.02, reasons=["GEOMETRY_REPAIRED"]))
    assert kept["decision"].iloc[0] == "refer" and 0 < kept["loan_limit"].iloc[0] < 1000
    declined = _borrowers(kept).iloc[0]
    assert (declined["decision"], declined["loan_limit"], declined["decided_by"]) == ("decline", 0.0, "P1")
    assert declined["reason"].startswith("LIMIT_BELOW_MINIMUM")
    assert declined["limit_arithmetic"].endswith(": declined = 0 CNY")


def test_a_borrower_split_off_by_an_id_variant_under_the_minimum_is_referred_not_declined() -> None:
    """b0026 beside B0026 (one borrower or two?): BORROWER_ID_VARIANT says both are referred, but b0026's one parcel,
    700 under the minimum of 1,000, was declined LIMIT_BELOW_MINIMUM. Now it is referred, its own limit kept pending."""
    variant = ["BORROWER_ID_VARIANT"]
    parcels = _assess(_parcel(borrower_id="B0026", reasons=variant),
                      _parcel(parcel_id="P2", borrower_id="b0026", reasons=variant, cultivated_area_ha=0.02,
                              cultivated_area_low_ha=0.02, cultivated_area_high_ha=0.02, declared_area_ha=0.02,
                              polygon_area_ha=0.02))
    assert parcels["decision"].tolist() == ["refer", "refer"] and 0 < parcels["loan_limit"].iloc[1] < 1000
    small = _borrowers(parcels).set_index("borrower_id").loc["b0026"]
    assert (small["decision"], small["loan_limit"]) == ("refer", round_down(parcels["loan_limit"].iloc[1], 100))
    assert small["reason_all"] == "BORROWER_ID_VARIANT"
    assert ("under the smallest loan of 1,000 CNY: it is lent only as one borrower with the other"
            in small["reason_text"])
    assert small["limit_arithmetic"].endswith("lent only as one borrower with the other")
    # Without the variant, the same parcel alone is declined under the minimum.
    alone = _borrowers(_assess(_parcel(parcel_id="P2", borrower_id="b0026", reasons=["GEOMETRY_REPAIRED"],
                                       cultivated_area_ha=0.02, cultivated_area_low_ha=0.02,
                                       cultivated_area_high_ha=0.02, declared_area_ha=0.02,
                                       polygon_area_ha=0.02))).iloc[0]
    assert alone["decision"] == "decline" and alone["reason"].startswith("LIMIT_BELOW_MINIMUM")
    # Under the minimum even together (a diff review: X1 and x1, 200 pending each, 470.94 in all), no review can lend:
    # each part is declined so, nothing pending.
    small = {"cultivated_area_ha": 0.02, "cultivated_area_low_ha": 0.02, "cultivated_area_high_ha": 0.02,
             "polygon_area_ha": 0.02, "declared_area_ha": 0.02, "reasons": variant}
    both = _borrowers(_assess(_parcel(borrower_id="X1", **small), _parcel(parcel_id="P2", borrower_id="x1", **small)))
    assert both["decision"].tolist() == ["decline", "decline"] and both["loan_limit"].sum() == 0
    assert all(reason.startswith("LIMIT_BELOW_MINIMUM") for reason in both["reason"])
    assert not any("lent only as one borrower" in text for text in both["reason_text"])
    assert all("Even as one borrower with the others its limits are under the smallest loan of 1,000 CNY: declined."
               in text and "beside the file's" in text for text in both["reason_text"])
    # A partner whose limit is withheld (too few clear images) may bring them to it once reviewed: referred.
    waiting = _borrowers(_assess(_parcel(borrower_id="X1", **small),
                                 _parcel(parcel_id="P2", borrower_id="x1", clear_observations=1,
                                         reasons=[*variant, "FEW_CLEAR_OBSERVATIONS"])))
    assert waiting["decision"].tolist() == ["refer", "refer"] and waiting["loan_limit"].iloc[0] > 0
    # Ids a Python caller gives as numbers are grouped as their text.
    numbers = _borrowers(_assess(_parcel(borrower_id=7), _parcel(parcel_id="P2", borrower_id=8)))
    assert numbers["borrower_id"].tolist() == [7, 8]


def test_an_id_variants_sentence_names_its_own_groups_ids_not_the_samples() -> None:
    """BORROWER_ID_VARIANT's sentence said "(B0026 and b0026)", the sample's ids, in every run: B0090 and b0090's
    reasons named B0026, there an unrelated borrower. The sentence is now generic; a borrower's names its group."""
    variant = ["BORROWER_ID_VARIANT"]
    parcels = _assess(_parcel(borrower_id="B0090", reasons=variant),
                      _parcel(parcel_id="P2", borrower_id="b0090", reasons=variant),
                      _parcel(parcel_id="P3", borrower_id="B0026"))
    assert "B0026" not in explain(["BORROWER_ID_VARIANT"])
    assert all("B0026" not in text for text in parcels["reason_text"])
    borrowers = _borrowers(parcels).set_index("borrower_id")
    assert borrowers.loc[["B0090", "b0090"], "decision"].tolist() == ["refer", "refer"]
    assert "B0026" not in "".join(borrowers.loc[["B0090", "b0090"], "reason_text"])
    assert "Its id 'B0090' beside the file's 'b0090'." in borrowers.loc["B0090", "reason_text"]
    assert "Its id 'b0090' beside the file's 'B0090'." in borrowers.loc["b0090", "reason_text"]


def test_a_borrower_under_the_minimum_even_with_its_declarations_taken_as_honest_is_declined() -> None:
    """Declared at three times its measured area, a parcel graded E by that alone is referred at 0 (AREA_OVERSTATED);
    all a review can lend is its limit declared honestly (on the area measured: ``honest_limit``). That counted as a
    limit withheld, so a borrower declined under the minimum loan when declaring honestly was referred when declaring
    more (53 of the sample's one-parcel borrowers so, at three times). Now it is declined LIMIT_BELOW_MINIMUM, the
    declaration still given; one whose honest limits reach the minimum, or with a limit withheld beside, is referred."""
    small = {"cultivated_area_ha": 0.1, "cultivated_area_low_ha": 0.096, "cultivated_area_high_ha": 0.1,
             "polygon_area_ha": 0.1}
    honest, over = _assess(_parcel(**small, declared_area_ha=0.1),
                           _parcel(parcel_id="P2", **small, declared_area_ha=0.3)).itertuples()
    assert (honest.decision, np.isnan(honest.honest_limit)) == ("approve", True)
    assert (over.decision, over.loan_limit, over.honest_limit) == ("refer", 0.0, honest.loan_limit)
    assert over.limit_arithmetic.endswith(f"limit {money(honest.loan_limit)} CNY)") and honest.loan_limit < 1000
    borrowers = [_borrowers(_assess(_parcel(**small, declared_area_ha=area))) for area in (0.1, 0.3)]
    declined = [borrower.iloc[0] for borrower in borrowers]
    assert [(b.decision, b.loan_limit) for b in declined] == [("decline", 0.0), ("decline", 0.0)]
    assert declined[1].reason_all.split(";") == ["LIMIT_BELOW_MINIMUM", "AREA_OVERSTATED"]
    shown = money(round_down(honest.loan_limit, 100))
    assert declined[1].limit_arithmetic == (
        f"parcel limits = 0 (P1) = 0 CNY; capped = min(0; cap 200,000) = 0 CNY; rounded = round down 0 to a multiple "
        f"of 100 = 0 CNY; declared honestly = round down min(0 + {money(honest.loan_limit)} (P1); cap 200,000) to a "
        f"multiple of 100 = {shown} CNY; under the minimum loan of 1,000 CNY: declined = 0 CNY")
    # The overstated area took the parcel's limit off, the minimum nothing more (the parcels' total was 0).
    assert declined[1].reason_amounts == f"AREA_OVERSTATED={over.reason_amounts.split('=')[1]}"
    parcels = _assess(_parcel(**small, declared_area_ha=0.3))
    record = next(borrower_decision_records(borrowers[1], parcels, _RECORD))
    assert record["limit_arithmetic"][-2:] == [
        f"declared honestly = round down min(0 + {money(honest.loan_limit)} (P1); cap 200,000) to a multiple of 100 = "
        f"{shown} CNY", "under the minimum loan of 1,000 CNY: declined = 0 CNY"]
    assert [(r["code"], r["taken_off"]) for r in record["reasons"]] == [
        ("LIMIT_BELOW_MINIMUM", 0.0), ("AREA_OVERSTATED", float(amounts(over.reason_amounts)["AREA_OVERSTATED"]))]
    # Beside a lent parcel, the honest limit reaching the minimum: referred, offered 0 until the review adds it.
    lent = _parcel(parcel_id="P2", **small, declared_area_ha=0.1)
    reaching = _borrowers(_assess(_parcel(**small, declared_area_ha=0.3), lent)).iloc[0]
    assert (reaching.decision, reaching.loan_limit) == ("refer", 0.0)
    assert reaching.limit_arithmetic.endswith(
        f"= {money(round_down(2 * honest.loan_limit, 100))} CNY; under the minimum loan of 1,000 CNY: 0 unless a "
        "review adds to it")
    # Its reasons lead with why it waits, and say what the review can lend.
    assert reaching.reason_all.split(";")[:2] == ["AREA_OVERSTATED", "LIMIT_BELOW_MINIMUM"]
    assert reaching.reason_text.endswith(
        f"the smallest loan is 1,000 CNY. A review of the declared areas can lend up to "
        f"{money(round_down(2 * honest.loan_limit, 100))} CNY.")
    # A limit withheld beside it (too few clear images) may add anything: referred, as before.
    unseen = _parcel(parcel_id="P2", clear_observations=1, reasons=["FEW_CLEAR_OBSERVATIONS"])
    assert _borrowers(_assess(_parcel(**small, declared_area_ha=0.3), unseen))["decision"].iloc[0] == "refer"


def test_a_parcel_referred_at_a_grade_its_declaration_lowered_counts_its_honest_limit_for_its_borrower() -> None:
    """Declared 1.3 times its interval's top, a parcel graded D by that (C declared honestly) is referred
    AREA_OVERSTATED with its grade-D limit; its ``honest_limit`` is its grade-C limit, and its borrower, under the
    minimum loan, is referred where the review can reach it and declined where it cannot, the arithmetic taking the
    limit off and adding the honest one, each step following from the figures it prints."""
    weak = {"health_index": 0.0, "relative_yield": 1.0, "ndvi_uniformity": 0.0, "declared_area_ha": 0.65}
    for yield_p10, decision, at_most in ((3.0, "refer", 1300), (2.0, "decline", 700)):
        parcels = _assess(_parcel(**weak, yield_p10_t_ha=yield_p10))
        honest = _assess(_parcel(**{**weak, "declared_area_ha": 0.5}, yield_p10_t_ha=yield_p10)).iloc[0]
        over = parcels.iloc[0]
        assert (over.decision, over.risk_grade, honest.risk_grade) == ("refer", "D", "C")
        assert 0 < over.loan_limit < over.honest_limit == honest.loan_limit
        borrowers = _borrowers(parcels)
        borrower = borrowers.iloc[0]
        assert (borrower.decision, borrower.loan_limit) == (decision, 0.0)
        step = (f"declared honestly = round down min({money(over.loan_limit)} - {money(over.loan_limit)} (P1) + "
                f"{money(honest.loan_limit)} (P1); cap 200,000) to a multiple of 100 = {money(at_most)} CNY")
        assert step in re.split(r"; (?!cap )", borrower.limit_arithmetic)
        assert at_most == (Decimal(repr(float(over.honest_limit))) // 100) * 100
        record = next(borrower_decision_records(borrowers, parcels, _RECORD))
        assert record["limit_arithmetic"][3] == step
        # The minimum took all the parcels' total, so that nothing of it is left to no code.
        taken = amounts(borrower.reason_amounts)["LIMIT_BELOW_MINIMUM"]
        assert taken == Decimal(repr(float(over.loan_limit)))


def test_a_borrower_a_declaration_within_the_allowance_alone_puts_under_the_minimum_is_referred() -> None:
    """Declared 1.06 times its interval's top (under AREA_OVERSTATED's 1.2, over the slack), a parcel graded D by that
    (C declared honestly) is approved at its grade-D limit with its grade-C one as ``honest_limit``; its borrower,
    under the minimum loan only at grade D, is referred at 0 (``DECLARED_AREA_UNDER_MINIMUM``, decided by that
    parcel), not declined; one the honest limit cannot bring to the minimum is declined, as before."""
    weak = {"health_index": 0.0, "relative_yield": 0.8, "ndvi_uniformity": 0.0, "yield_p10_t_ha": 3.0}
    tiny = {"parcel_id": "P2", "cultivated_area_ha": 0.005, "cultivated_area_low_ha": 0.0045,
            "cultivated_area_high_ha": 0.005, "polygon_area_ha": 0.005, "declared_area_ha": 0.005}
    parcels = _assess(_parcel(**weak, declared_area_ha=0.53), _parcel(**weak, **tiny))
    over, honest = parcels.iloc[0], _assess(_parcel(**weak)).iloc[0]
    assert (over.decision, over.risk_grade, honest.risk_grade) == ("approve", "D", "C")
    assert "AREA_OVERSTATED" not in over.reason_all and over.honest_limit == honest.loan_limit > over.loan_limit
    assert np.isnan(parcels.iloc[1].honest_limit) and np.isnan(honest.honest_limit)
    borrower = _borrowers(parcels).iloc[0]
    assert (borrower.decision, borrower.loan_limit, borrower.decided_by) == ("refer", 0.0, "P1")
    assert borrower.reason_all.split(";")[:2] == ["DECLARED_AREA_UNDER_MINIMUM", "LIMIT_BELOW_MINIMUM"]
    total = Decimal(repr(float(over.loan_limit))) + Decimal(repr(float(parcels.iloc[1].loan_limit)))
    assert borrower.limit_arithmetic.endswith(
        f"declared honestly = round down min({money(float(total))} - {money(over.loan_limit)} (P1) + "
        f"{money(honest.loan_limit)} (P1); cap 200,000) to a multiple of 100 = 1,300 CNY; under the minimum loan of "
        "1,000 CNY: 0 unless a review adds to it")
    record = next(borrower_decision_records(_borrowers(parcels), parcels, _RECORD))
    assert record["reasons"][0]["code"] == "DECLARED_AREA_UNDER_MINIMUM"
    # Referred by another parcel whose limit counts (a crop mismatch), the borrower is held open only by the approved
    # parcel's declaration: the code and the parcel are named still (they named only the mismatch).
    mismatch = _parcel(**weak, **{**tiny, "parcel_id": "P3"}, declared_crop="maize")
    mixed = _assess(_parcel(**weak, declared_area_ha=0.53), _parcel(**weak, **tiny), mismatch)
    assert mixed.set_index("parcel_id").loc["P3", "decision"] == "refer"
    held = _borrowers(mixed).iloc[0]
    assert (held.decision, held.decided_by) == ("refer", "P1;P3")
    assert "DECLARED_AREA_UNDER_MINIMUM" in held.reason_all.split(";")[:2]
    # Where even the honest limit misses the minimum, declined as before.
    poor = _assess(_parcel(**{**weak, "yield_p10_t_ha": 2.0}, declared_area_ha=0.53))
    assert (poor.iloc[0].decision, poor.iloc[0].honest_limit < 1000) == ("approve", True)
    assert _borrowers(poor).iloc[0].decision == "decline"


def test_the_arithmetic_ends_at_the_limit_offered_whatever_the_decision() -> None:
    """A parcel with no limit is referred (NO_LIMIT), never approved at 0; a limit withheld says by what."""
    unmeasured = _assess(_parcel(cultivated_area_ha=np.nan, cultivated_area_low_ha=np.nan,
                                 cultivated_area_high_ha=np.nan, cultivated_fraction=np.nan)).iloc[0]
    assert (unmeasured["decision"], unmeasured["status"], unmeasured["loan_limit"]) == ("refer", "flagged", 0.0)
    assert unmeasured["reason"] == "NO_LIMIT"
    assert unmeasured["limit_arithmetic"] == "no limit: no cultivated area could be measured"
    few = _assess(_parcel(clear_observations=1, reasons=["FEW_CLEAR_OBSERVATIONS"])).iloc[0]
    # No risk graded on one image: a PD read from it declined a farmer for the weather.
    assert few["loan_limit"] == 0 and few["limit_arithmetic"] == (
        "no limit: too little clear imagery to grade its risk (refer: FEW_CLEAR_OBSERVATIONS)")
    repaired = _assess(_parcel(reasons=["GEOMETRY_REPAIRED", "FEW_CLEAR_OBSERVATIONS"])).iloc[0]
    assert repaired["limit_arithmetic"].endswith("(refer: FEW_CLEAR_OBSERVATIONS)")  # not the refer that keeps it
    assert repaired["reason"].startswith("FEW_CLEAR_OBSERVATIONS;")  # what withheld it leads, as it says
    declined = _assess(_parcel(declared_area_ha=1.5, health_index=np.nan, crop="fallow", cultivated_fraction=0.0,
                               cultivated_area_ha=0.0)).iloc[0]
    assert declined["decision"] == "decline" and declined["loan_limit"] == 0
    lent = _assess(_parcel()).iloc[0]
    assert lent["loan_limit"] > 0 and lent["limit_arithmetic"].endswith(f"loan_limit = {money(lent['loan_limit'])} CNY")
    # Too little imagery to work a limit out at all: the arithmetic says what referred it.
    unseen = _assess(_parcel(crop="fallow", priced_crop="fallow", cultivated_fraction=0.0, cultivated_area_ha=0.0,
                             declared_area_ha=1.0, clear_observations=1, reasons=["FEW_CLEAR_OBSERVATIONS"])).iloc[0]
    assert (unseen["decision"], unseen["reason"].split(";")[0]) == ("refer", "FEW_CLEAR_OBSERVATIONS")
    assert "NOT_CULTIVATED" not in unseen["reason_all"]  # stated on one image, it was often false
    # A fallow call on too few clear dates is no finding: the arithmetic does not state one.
    assert unseen["limit_arithmetic"] == ("no limit: too little clear imagery to tell what grows here (refer: "
                                          "FEW_CLEAR_OBSERVATIONS)")


def test_a_season_that_missed_the_crops_green_weeks_says_so_in_the_arithmetic_not_that_no_crop_grows() -> None:
    """Land seen bare on dates that miss its crop's green weeks (SEASON_MISSES_CROP: it may be sown after them) said
    "no limit: no priced crop grows here (fallow)", what its own reason doubts; the arithmetic now says no crop was
    seen on dates that miss the declared crop's green weeks (any crop's, where none is declared)."""
    season_missed = {**_FALLOW, "reasons": ["SEASON_MISSES_CROP"]}
    rice, undeclared = _assess(_parcel(**season_missed, declared_crop="Rice"),
                               _parcel(**season_missed, parcel_id="P2", declared_crop=None)).itertuples()
    assert (rice.decision, rice.reason_all.split(";")[0]) == ("refer", "SEASON_MISSES_CROP")
    assert rice.limit_arithmetic == ("no limit: no crop seen, but no clear date reads the land bare in the declared "
                                     "crop's (rice) green weeks (refer: SEASON_MISSES_CROP)")
    assert undeclared.limit_arithmetic == ("no limit: no crop seen, but no clear date reads the land bare in any "
                                           "crop's green weeks (refer: SEASON_MISSES_CROP)")


def test_a_rounding_step_in_cents_gives_whole_cents_and_shows_them() -> None:
    credit = {**CONFIG.credit.model_dump(), "rounding_step": 0.1}
    config = Config.model_validate({**CONFIG.model_dump(), "credit": credit})
    rows = [_parcel(parcel_id=f"P{i}", borrower_id=f"B{i}", cultivated_area_ha=0.5 + i / 997) for i in range(40)]
    parcels = assign_limits(pd.DataFrame(rows), config, RISK)
    assert (parcels["loan_limit"] == parcels["loan_limit"].round(2)).all()  # whole cents, no float noise
    frame = gpd.GeoDataFrame(parcels, geometry=[box(i, 0, i + 1, 1) for i in range(40)], crs="EPSG:32650")
    borrowers = aggregate_borrowers(frame, config)
    tenths = borrowers["loan_limit"] * 10
    assert (np.abs(tenths - np.round(tenths)) < 1e-6).all() and (borrowers["loan_limit"] % 1 != 0).any()
    assert (borrowers["loan_limit"] <= borrowers["parcel_ids"].map(parcels.set_index("parcel_id")["loan_limit"])).all()
    assert all(text.endswith(f"to a multiple of 0.10 = {money(limit)} CNY")
               for text, limit in zip(borrowers["limit_arithmetic"], borrowers["loan_limit"], strict=True))
    with pytest.raises(ValueError, match="rounding_step"):
        Config.model_validate({**CONFIG.model_dump(), "credit": {**credit, "rounding_step": 1e-310}})


def test_a_borrower_of_many_small_plots_is_lent_as_on_one_plot() -> None:
    """16 plots of 0.02 ha and one of 0.32 ha, alike otherwise: the total is rounded once, not once a plot."""
    plots = [_parcel(parcel_id=f"P{i:02d}", cultivated_area_ha=0.02, cultivated_area_low_ha=0.02,
                     cultivated_area_high_ha=0.02, declared_area_ha=0.02) for i in range(16)]
    whole = _parcel(cultivated_area_ha=0.32, cultivated_area_low_ha=0.32, cultivated_area_high_ha=0.32,
                    declared_area_ha=0.32)
    split, one = _borrowers(_assess(*plots)).iloc[0], _borrowers(_assess(whole)).iloc[0]
    assert split["decision"] == one["decision"] == "approve"
    assert one["loan_limit"] >= 1000 and abs(split["loan_limit"] - one["loan_limit"]) <= CONFIG.credit.rounding_step


def _borrowers(parcels: pd.DataFrame) -> pd.DataFrame:
    frame = gpd.GeoDataFrame(parcels, geometry=[box(i, 0, i + 1, 1) for i in range(len(parcels))], crs="EPSG:32650")
    return aggregate_borrowers(frame, CONFIG)


def test_a_parcel_without_a_borrower_stands_alone_even_beside_a_borrower_of_its_id() -> None:
    """Parcel "3" of no borrower is not lent against with borrower "3"'s parcels."""
    parcels = _assess(_parcel(parcel_id="3", borrower_id=None, reasons=["MISSING_BORROWER_ID"]),
                      _parcel(parcel_id="7", borrower_id="3"), _parcel(parcel_id="8", borrower_id="3"))
    borrowers = _borrowers(parcels).set_index("parcel_ids")
    assert list(borrowers.index) == ["7;8", "3"]
    assert borrowers.loc["7;8", "borrower_id"] == "3" and pd.isna(borrowers.loc["3", "borrower_id"])
    assert borrowers.loc["7;8", "loan_limit"] == round_down(parcels["loan_limit"].iloc[1:].sum(), 100)
    twins = _borrowers(_assess(*[_parcel(parcel_id="3", borrower_id=None, reasons=["DUPLICATE_PARCEL_ID"])] * 2))
    assert len(twins) == 2 and twins["borrower_id"].isna().all()  # a duplicate id alone is still its own borrower


def test_a_borrower_none_of_whose_parcels_declared_or_was_measured_has_none_not_zero() -> None:
    undeclared = _borrowers(_assess(_parcel(declared_area_ha=np.nan), _parcel(parcel_id="P2", declared_area_ha=np.nan)))
    assert np.isnan(undeclared.loc[0, "declared_area_ha"]) and undeclared.loc[0, "cultivated_area_ha"] == 1.0
    unseen = {"cultivated_area_ha": np.nan, "cultivated_area_low_ha": np.nan, "cultivated_area_high_ha": np.nan,
              "cultivated_fraction": np.nan}
    unmeasured = _borrowers(_assess(_parcel(**unseen), _parcel(parcel_id="P2", **unseen))).iloc[0]
    assert np.isnan(unmeasured["cultivated_area_ha"]) and np.isnan(unmeasured["expected_revenue"])


def test_a_borrowers_areas_sum_as_declared_whatever_its_parcels_are_called() -> None:
    """Declared 0.1 + 0.2 + 0.3 ha is 0.6 ha, not the 0.6000000000000001 of adding binary fractions one by one, and
    the measured areas sum alike in any order of the parcels' ids."""
    rng = np.random.default_rng(17)
    parcels = _assess(*[_parcel(parcel_id=f"P{i}", declared_area_ha=area, cultivated_area_ha=measured,
                                polygon_area_ha=measured)
                        for i, (area, measured) in enumerate(zip([0.1, 0.2, 0.3], rng.random(3), strict=True))])
    borrower, renamed = _borrowers(parcels), _borrowers(parcels.assign(parcel_id=["Q3", "Q2", "Q1"]))
    measured = ["polygon_area_ha", "cultivated_area_ha", "expected_revenue"]
    pd.testing.assert_frame_equal(renamed[measured], borrower[measured], check_exact=True)
    assert borrower["declared_area_ha"][0] == renamed["declared_area_ha"][0] == 0.6


def test_borrower_reasons_lead_with_what_decided_and_do_not_depend_on_row_order() -> None:
    declined = _parcel(parcel_id="P1", cultivated_fraction=0.0, cultivated_area_ha=0.0, cultivated_area_low_ha=0.0,
                       cultivated_area_high_ha=0.0, crop="fallow", priced_crop="fallow", ndvi_peak=0.2,
                       health_index=np.nan, declared_area_ha=np.nan)
    referred = _parcel(parcel_id="P2", declared_area_ha=1.0)
    approved = [_parcel(parcel_id=f"P{i}", reasons=["UNKNOWN_REGION"] if i == 3 else []) for i in range(3, 8)]
    parcels = _assess(declined, referred, *approved)
    assert list(parcels["decision"][:2]) == ["decline", "refer"]
    assert parcels["limit_arithmetic"].iloc[0] == "no limit: no priced crop grows here (fallow)"
    borrower = _borrowers(parcels).iloc[0]
    assert borrower["decision"] == "refer" and borrower["decided_by"] == "P2"
    ranked = borrower["reason_all"].split(";")
    assert ranked[0] == "AREA_OVERSTATED"  # the referred parcel's first
    # The declined parcel's decline is its own, not the borrower's: the borrower is told it adds nothing.
    assert "NOT_CULTIVATED" not in ranked and ranked.index("PARCEL_DECLINED") > 0
    assert f"Parcel P1: {REASONS['PARCEL_DECLINED'].sentence}" in borrower["reason_text"]
    # Read after one parcel's id or several: no "its" or "the parcel's" to clash with "Parcels P1, P2".
    assert REASONS["PARCEL_DECLINED"].sentence.startswith("Declined for the reasons given in the parcel results")
    assert "where one is given" in REASONS["PARTLY_CULTIVATED"].sentence  # also on parcels given no limit
    assert borrower["reason"] == ";".join(ranked[: CONFIG.credit.max_reasons]) and len(ranked) > 1
    assert borrower["reason_text"].startswith(f"Parcel P2: {REASONS['AREA_OVERSTATED'].sentence}")
    shuffled = _borrowers(parcels.iloc[::-1].reset_index(drop=True)).iloc[0]
    pd.testing.assert_series_equal(shuffled.drop("geometry"), borrower.drop("geometry"))
    # Approved beside a declined parcel: no decline or refer code of that parcel becomes the borrower's.
    approved_borrower = _borrowers(parcels.drop(index=1).reset_index(drop=True)).iloc[0]
    assert approved_borrower["decision"] == "approve"
    codes = approved_borrower["reason_all"].split(";")
    assert "PARCEL_DECLINED" in codes and {REASONS[code].effect for code in codes} == {"info"}


def test_borrower_reasons_do_not_depend_on_what_its_parcels_are_called() -> None:
    """Within an effect, of codes that took as much off the limit (here nothing), the code more of the borrower's
    parcels have leads, then the one a parcel ranks higher, then the order of REASONS: renamed so that they sort the
    other way round, the parcels give the same reasons, each still naming its own parcels."""
    codes = {"P1": "AREA_OVERSTATED;RISK_GRADE", "P2": "CROP_MISMATCH;PARTLY_CULTIVATED",
             "P3": "PARCEL_OVERLAP;LOW_HEALTH_VS_PEERS;PARTLY_CULTIVATED", "P4": ""}
    parcels = gpd.GeoDataFrame({"parcel_id": list(codes), "borrower_id": "B1", "reason_all": list(codes.values()),
                                "reason_amounts": "", "decision": ["refer", "refer", "refer", "approve"],
                                "loan_limit": [500.0, 600.0, 0.0, 800.0], "honest_limit": np.nan,
                                "declared_area_ha": 0.5, "polygon_area_ha": 0.5, "cultivated_area_ha": 0.5,
                                "expected_revenue": 1000.0},
                               geometry=[box(i, 0, i + 1, 1) for i in range(4)], crs="EPSG:32650")
    renamed = parcels.assign(parcel_id=["Q4", "Q3", "Q2", "Q1"])
    borrower, other = (aggregate_borrowers(frame, CONFIG) for frame in (parcels, renamed))
    pd.testing.assert_frame_equal(other[["reason", "reason_all"]], borrower[["reason", "reason_all"]])
    assert borrower["reason_all"][0].split(";") == ["AREA_OVERSTATED", "CROP_MISMATCH", "PARCEL_OVERLAP",
                                                    "PARTLY_CULTIVATED", "LOW_HEALTH_VS_PEERS", "RISK_GRADE"]
    sources = [{reason["code"]: reason["parcel_ids"] for reason in next(borrower_decision_records(*frames, _RECORD))
                ["reasons"]} for frames in ((borrower, parcels), (other, renamed))]
    assert sources[0]["PARTLY_CULTIVATED"] == ["P2", "P3"] and sources[1]["PARTLY_CULTIVATED"] == ["Q2", "Q3"]
    # A borrower of one parcel ranks its codes as the parcel does, not in the order of REASONS.
    alone = aggregate_borrowers(parcels.iloc[[3]].assign(reason_all="RISK_GRADE;LOW_HEALTH_VS_PEERS",
                                                         loan_limit=1500.0), CONFIG)
    assert alone["reason_all"].iloc[0] == "RISK_GRADE;LOW_HEALTH_VS_PEERS"


# The provenance of a run, as little as a decision record copies.
_RECORD = {"code": {}, "config": {"hash": "", "values": CONFIG.model_dump(mode="json")},
           "models": {"cropland": {}, "risk": RISK.describe()}, "inputs": {"parcels": {}, "imagery": {"scenes": []}},
           "season_dates": []}


@pytest.mark.parametrize("fallow", ["fallow", " Fallow ", "休耕", "撂荒"])
def test_land_declared_fallow_is_a_declaration_of_no_crop(fallow) -> None:
    """Declared fallow and seen so, a parcel is declined NOT_CULTIVATED and nothing more: its declared area is the
    parcel's, not an area said to be cultivated, and the word no unpriced crop name. It was flagged AREA_OVERSTATED
    and UNKNOWN_DECLARED_CROP, and the doubt referred its borrower's approved loan. A crop seen there is one the
    borrower says is not: CROP_MISMATCH, a person looks; priced as seen where the call is confident, with no limit
    where it is unsure (an unsure maize call declared fallow was approved as maize)."""
    said = {"declared_crop": fallow, "declared_crop_probability": np.nan}
    parcels = _assess(_parcel(), _parcel(parcel_id="P2", **{**_FALLOW, **said, "declared_area_ha": 0.5}))
    assert parcels["decision"].tolist() == ["approve", "decline"]
    codes = parcels["reason_all"].iloc[1].split(";")
    assert codes[0] == "NOT_CULTIVATED" and not {"AREA_OVERSTATED", "UNKNOWN_DECLARED_CROP"} & set(codes)
    assert _borrowers(parcels)["decision"].iloc[0] == "approve"
    sure, unsure = _assess(_parcel(**said), _parcel(**said, crop="maize", crop_confidence=0.51,
                                                    priced_crop="maize")).to_dict("records")
    assert sure["decision"] == "refer" and sure["reason"].startswith("CROP_MISMATCH") and sure["loan_limit"] > 0
    assert unsure["decision"] == "refer" and unsure["reason"].startswith("CROP_MISMATCH") and unsure["loan_limit"] == 0
    assert unsure["limit_arithmetic"].startswith(f"no limit: the declaration ({fallow}) names no crop")
    for parcel in (sure, unsure):
        assert "UNKNOWN_DECLARED_CROP" not in parcel["reason_all"]


@pytest.mark.parametrize("unknown", ["unknown", "UNKNOWN", "未知", "不详"])
def test_a_crop_declared_unknown_reads_as_none_declared(unknown) -> None:
    """Declared unknown, a parcel fares as one declaring nothing: it was referred UNCONFIRMED_DECLARED_CROP where the
    imagery saw a crop surely (and would now be UNDETERMINED_DECLARED_CROP over an unsure call)."""
    seasons = ({}, {"crop": "maize", "crop_confidence": 0.51, "priced_crop": "maize"}, _FALLOW)
    columns = ["decision", "loan_limit", "reason_all", "limit_arithmetic"]
    for season in seasons:
        blank, said = (_assess(_parcel(**season, declared_crop=crop, declared_crop_probability=np.nan))[columns]
                       for crop in (None, unknown))
        pd.testing.assert_frame_equal(said, blank)


@pytest.mark.parametrize(("doubt", "declared", "overlaps"), [
    ("AREA_OVERSTATED", {"declared_area_ha": 1.0}, None),
    ("CROP_MISMATCH", {"declared_crop": "maize", "declared_crop_probability": 1e-6}, None),
    # Bare where maize would be green: a mismatch whatever its template probability.
    ("CROP_MISMATCH", {"declared_crop": "maize", "declared_crop_contradicted": True}, None),
    ("PARCEL_OVERLAP", {}, Overlaps.between(3, [(1, 2)])),
])
def test_a_parcel_doubting_the_borrowers_declarations_refers_it_even_when_declined(doubt, declared, overlaps) -> None:
    """Beside an approved parcel, one whose declared area, crop or land is in doubt refers the borrower, and keeps
    doing so when it is also not cultivated: a parcel made worse never turns its borrower from refer to approve, nor
    drops the doubt from the borrower's reasons. A borrower with nothing approved stays declined."""
    assert {REASONS[code].effect for code in DOUBTS_DECLARATION} == {"refer"}
    neighbour = [_parcel(parcel_id="P3", borrower_id="B2")] if overlaps else []  # another borrower's pledge
    for worse, decision in (({}, "refer"), (_FALLOW, "decline")):
        parcels = _assess(_parcel(), _parcel(parcel_id="P2", **{**worse, **declared}), *neighbour, overlaps=overlaps)
        assert parcels["decision"].tolist()[:2] == ["approve", decision]
        assert doubt in parcels.loc[1, "reason_all"].split(";")
        borrowers = _borrowers(parcels)
        borrower = borrowers.iloc[0]
        assert borrower["decision"] == "refer" and borrower["decided_by"] == "P2"
        audited = next(borrower_decision_records(borrowers, parcels, _RECORD))
        assert (audited["decision"], audited["decided_by"]) == ("refer", ["P2"])  # borrower_decisions.jsonl agrees
        assert borrower["loan_limit"] == round_down(parcels["loan_limit"].iloc[:2].sum(), CONFIG.credit.rounding_step)
        ranked = borrower["reason_all"].split(";")
        assert ranked[0] == doubt and borrower["reason_text"].startswith(f"Parcel P2: {REASONS[doubt].sentence}")
        # The parcel's decline stays its own: the borrower is told it adds nothing.
        assert "NOT_CULTIVATED" not in ranked and ("PARCEL_DECLINED" in ranked) == (decision == "decline")
    alone = _borrowers(parcels.iloc[[1]].reset_index(drop=True)).iloc[0]
    assert alone["decision"] == "decline" and {"NOT_CULTIVATED", doubt} <= set(alone["reason_all"].split(";"))


def test_a_borrower_referred_for_too_little_imagery_leads_with_it_as_its_parcel_does() -> None:
    """A parcel that looks bare on too few clear images is referred with the imagery as its reason, and so is its
    borrower: no finding of those images stated (one image of a maize field at its peak called it not cultivated),
    never a decline sentence."""
    parcels = _assess(_parcel(), _parcel(parcel_id="P2", clear_observations=2, reasons=["FEW_CLEAR_OBSERVATIONS"],
                                         **_FALLOW))
    referred = parcels.iloc[1]
    assert referred["decision"] == "refer" and referred["reason_all"].startswith("FEW_CLEAR_OBSERVATIONS")
    assert "decline" not in {REASONS[code].effect for code in referred["reason_all"].split(";")}
    assert not {"NOT_CULTIVATED", "AREA_OVERSTATED", "LOW_HEALTH_VS_PEERS"} & set(referred["reason_all"].split(";"))
    borrower = _borrowers(parcels).iloc[0]
    assert (borrower["decision"], borrower["decided_by"]) == ("refer", "P2")
    assert borrower["reason_all"] == referred["reason_all"]  # the approved parcel adds no code
    assert borrower["reason_text"].startswith(f"Parcel P2: {REASONS['FEW_CLEAR_OBSERVATIONS'].sentence}")


def test_a_parcel_mostly_off_the_imagery_is_referred_with_no_limit_not_judged_on_the_sliver_seen() -> None:
    """The sliver on the imagery of a parcel 3% on it looked bare (it was approved on the whole imagery): the part
    off it could turn any decision, so the parcel is referred with no limit or grade, and declines no borrower."""
    parcels = _assess(_parcel(), _parcel(parcel_id="P2", reasons=["MOSTLY_OUTSIDE_IMAGERY"],
                                         **{**_FALLOW, "declared_area_ha": 0.5}))
    sliver = parcels.iloc[1]
    assert (sliver["decision"], sliver["loan_limit"]) == ("refer", 0.0) and pd.isna(sliver["risk_grade"])
    assert sliver["reason_all"] == "MOSTLY_OUTSIDE_IMAGERY"  # no NOT_CULTIVATED, AREA_OVERSTATED of the sliver
    assert sliver["limit_arithmetic"].endswith("(refer: MOSTLY_OUTSIDE_IMAGERY)")
    cropped = _assess(_parcel(reasons=["MOSTLY_OUTSIDE_IMAGERY"])).iloc[0]  # nor lent on a sliver that is crop
    assert (cropped["decision"], cropped["loan_limit"]) == ("refer", 0.0)
    assert cropped["limit_arithmetic"] == ("no limit: too little of it on the imagery to grade its risk "
                                           "(refer: MOSTLY_OUTSIDE_IMAGERY)")
    borrower = _borrowers(parcels).iloc[0]
    assert (borrower["decision"], borrower["decided_by"]) == ("refer", "P2")


def test_each_borrower_reason_in_borrower_decisions_names_the_parcels_it_comes_from() -> None:
    """borrower_decisions.jsonl names the parcels each reason comes from, those ``reason_text`` names where not every
    parcel has it: one parcel's imagery, another's decline, none for the borrower's own minimum loan; a parcel alone
    is the source of its every code."""
    small = {"cultivated_area_ha": 0.05, "cultivated_area_low_ha": 0.05, "cultivated_area_high_ha": 0.05,
             "declared_area_ha": 0.05}
    parcels = _assess(_parcel(), _parcel(parcel_id="P2", clear_observations=2, reasons=["FEW_CLEAR_OBSERVATIONS"]),
                      _parcel(parcel_id="P3", **_FALLOW), _parcel(parcel_id="P4", borrower_id=None, **small),
                      _parcel(parcel_id="P5", borrower_id="B2", **small), _parcel(parcel_id="P6", borrower_id="B2"))
    borrowers = _borrowers(parcels)
    records = list(borrower_decision_records(borrowers, parcels, _RECORD))
    sources = [{reason["code"]: reason["parcel_ids"] for reason in record["reasons"]} for record in records]
    assert [record["borrower_id"] for record in records][:2] == ["B1", "B2"] and pd.isna(records[2]["borrower_id"])
    assert sources[0]["FEW_CLEAR_OBSERVATIONS"] == ["P2"] and sources[0]["PARCEL_DECLINED"] == ["P3"]
    assert borrowers["reason_text"][0].startswith(f"Parcel P2: {REASONS['FEW_CLEAR_OBSERVATIONS'].sentence}")
    assert sources[2] == {"LIMIT_BELOW_MINIMUM": []} | {code: ["P4"] for code in parcels["reason_all"][3].split(";")
                                                        if code}
    for record, borrower in zip(records, borrowers.itertuples(), strict=True):
        assert [reason["code"] for reason in record["reasons"]] == [c for c in borrower.reason_all.split(";") if c]
        named = [f"Parcel {ids[0]}: " if len(ids) == 1 and record["parcel_ids"] != ids else ""
                 for ids in (reason["parcel_ids"] for reason in record["reasons"])]
        sentences = [f"{name}{reason['sentence']}" for name, reason in zip(named, record["reasons"], strict=True)]
        # The text adds its figures to the minimum loan's sentence.
        figures = (r" Supported [\d,.]+ CNY \(rounded down to a multiple of 100: [\d,.]+ CNY\); the smallest loan is "
                   r"1,000 CNY\.")
        assert re.sub(figures, "", borrower.reason_text) == " ".join(sentences[: CONFIG.credit.max_reasons])


def test_each_parcel_reason_in_decisions_jsonl_says_what_it_took_off_the_limit() -> None:
    """decisions.jsonl gives each of a parcel's reasons what it took off the limit, as its ``reason_amounts`` does, 0
    where it took nothing: a grade, a withheld limit (land pledged twice), a decline by grade E, and grade E's cut on
    a referral the declaration holds (AREA_OVERSTATED, DECLARED_AREA_RISK), not the grade's, an info code."""
    overlaps = Overlaps.between(6, [(2, 3)])
    parcels = _assess(_parcel(), _parcel(parcel_id="P2", health_index=30.0),
                      _parcel(parcel_id="P3", declared_area_ha=1.0),
                      _parcel(parcel_id="P4", health_index=5.0, relative_yield=0.6, ndvi_uniformity=0.2),
                      _parcel(parcel_id="P5", declared_area_ha=1.5),
                      _parcel(parcel_id="P6", **_WEAK, declared_area_ha=0.6),
                      overlaps=overlaps)
    frame = gpd.GeoDataFrame(parcels.assign(ndvi_peak_date=pd.NaT, ndvi_integral=np.nan, health_reference=""),
                             geometry=[box(i, 0, i + 1, 1) for i in range(6)], crs="EPSG:32650")
    records = list(decision_records(frame, _RECORD, overlaps, np.zeros((6, 0)), np.zeros((6, 0), dtype=bool), []))
    for record, row in zip(records, parcels.itertuples(), strict=True):
        cut = amounts(row.reason_amounts)
        assert [(reason["code"], reason["taken_off"]) for reason in record["reasons"]] == [
            (code, float(cut.get(code, 0))) for code in row.reason_all.split(";") if code]
    taken = [{reason["code"]: reason["taken_off"] for reason in record["reasons"]} for record in records]
    assert taken[0] == {} and taken[1] == {"RISK_GRADE": 267.84}
    assert taken[2]["PARCEL_OVERLAP"] > 0 and taken[2]["AREA_OVERSTATED"] == 0 and taken[3]["HIGH_RISK"] == 2678.4
    assert parcels["decision"].tolist()[4:] == ["refer", "refer"] and parcels["risk_grade"].tolist()[4:] == ["E", "E"]
    assert taken[4]["AREA_OVERSTATED"] == taken[5]["DECLARED_AREA_RISK"] == 2678.4
    assert not {"RISK_GRADE"} & (taken[3].keys() | taken[4].keys() | taken[5].keys())  # grade E's cut went elsewhere
    # What a review of the declaration can lend, cited by the borrower's arithmetic, is in the parcel's record too.
    assert [record["honest_limit"] for record in records] == [
        None if np.isnan(limit) else limit for limit in parcels["honest_limit"]]
    assert records[4]["honest_limit"] is not None and records[4]["honest_limit"] > 0


def test_grade_e_gives_no_risk_grade_reason_where_the_decline_or_the_declaration_took_its_cut() -> None:
    """Grade E's cut is HIGH_RISK's, or the declaration's that alone graded it so: RISK_GRADE stayed listed, taking 0,
    on 60 of 61 grade-E parcels of ``sample_tiles/``, and pushed a reason that was one out of the four shown (P00211's
    LOW_HEALTH_VS_PEERS). A grade that lends something still lowers the limit as RISK_GRADE."""
    weak = {"health_index": 5.0, "relative_yield": 0.6, "ndvi_uniformity": 0.2}
    partly = {"cultivated_fraction": 0.8, "cultivated_area_high_ha": 0.44}
    declined, referred, graded = _assess(_parcel(**weak, **partly, declared_area_ha=1.5),
                                         _parcel(parcel_id="P2", health_index=10.0, **partly, declared_area_ha=1.5),
                                         _parcel(parcel_id="P3", health_index=30.0)).itertuples()
    assert (declined.decision, declined.risk_grade, referred.decision, referred.risk_grade) == \
        ("decline", "E", "refer", "E")
    assert declined.reason.split(";") == ["HIGH_RISK", "AREA_OVERSTATED", "PARTLY_CULTIVATED", "LOW_HEALTH_VS_PEERS"]
    assert referred.reason_all.split(";") == ["AREA_OVERSTATED", "PARTLY_CULTIVATED", "LOW_HEALTH_VS_PEERS"]
    assert declined.reason_amounts.startswith("HIGH_RISK=") and referred.reason_amounts.startswith("AREA_OVERSTATED=")
    assert graded.risk_grade != "E" and graded.reason_all == "RISK_GRADE" and graded.reason_amounts.startswith(
        "RISK_GRADE=")


def test_each_borrower_is_outlined_by_its_own_parcels_whatever_the_sizes_of_the_others() -> None:
    """Borrowers of 1, 2 and 3 parcels, one without any outline, one missing one, and a parcel alone: each borrower's
    outline is the union of its parcels' (none when none has one), borrowers in id order, the parcel alone last."""
    owners = {"P1": "B3", "P2": "B1", "P3": "B3", "P4": None, "P5": "B2", "P6": "B3", "P7": "B1", "P8": "B4",
              "P9": "B5", "P10": "B5"}
    parcels = _assess(*[_parcel(parcel_id=pid, borrower_id=owner) for pid, owner in owners.items()])
    outlines = {pid: box(i, 0, i + 1, 1 + i % 3) for i, pid in enumerate(owners)}
    outlines["P8"] = outlines["P9"] = None
    borrowers = aggregate_borrowers(gpd.GeoDataFrame(parcels, geometry=[outlines[pid] for pid in owners],
                                                     crs="EPSG:32650"), CONFIG)
    assert list(borrowers["borrower_id"].fillna("-")) == ["B1", "B2", "B3", "B4", "B5", "-"]
    for row in borrowers.itertuples():
        own = [outlines[pid] for pid in row.parcel_ids.split(";") if outlines[pid] is not None]
        assert (row.geometry is None) if not own else row.geometry.equals(shapely.union_all(own))
    assert borrowers.geometry.isna().tolist() == [False, False, False, True, False, False]


def _hand_made(codes: dict[str, tuple[str, str, str]]) -> gpd.GeoDataFrame:
    """One borrower's parcels by id: (decision, reason_all, reason_amounts) each."""
    decisions, reasons, amounts = zip(*codes.values(), strict=True)
    return gpd.GeoDataFrame({"parcel_id": list(codes), "borrower_id": "B1", "decision": list(decisions),
                             "reason_all": list(reasons), "reason_amounts": list(amounts),
                             "loan_limit": [0.0 if d == "decline" else 5000.0 for d in decisions],
                             "honest_limit": np.nan, "declared_area_ha": 0.5, "polygon_area_ha": 0.5,
                             "cultivated_area_ha": 0.5, "expected_revenue": 1000.0},
                            geometry=[box(i, 0, i + 1, 1) for i in range(len(codes))], crs="EPSG:32650")


def test_borrower_reasons_of_an_effect_lead_with_what_took_the_most_off_its_limit() -> None:
    """An analyst reads the first reason as the main one: within an effect, the code that took the most off the
    borrower's limit (summed over its parcels) leads, not the one more parcels have; a declined parcel's decline
    (PARCEL_DECLINED) took what its codes took; on a tie the code more parcels have leads, then REASONS' order."""
    approved = _hand_made({
        "P1": ("approve", "RISK_GRADE", "RISK_GRADE=3000.00"),
        "P2": ("decline", "HIGH_RISK;RISK_GRADE", "HIGH_RISK=200.00"),
        "P3": ("approve", "COST_CEILING;LOW_HEALTH_VS_PEERS", "COST_CEILING=50.00"),
        "P4": ("approve", "COST_CEILING;LOW_HEALTH_VS_PEERS;PARTLY_CULTIVATED", "COST_CEILING=50.00"),
    })
    borrower = aggregate_borrowers(approved, CONFIG).iloc[0]
    assert borrower["decision"] == "approve"
    assert borrower["reason_all"].split(";") == ["RISK_GRADE", "PARCEL_DECLINED", "COST_CEILING",
                                                 "LOW_HEALTH_VS_PEERS", "PARTLY_CULTIVATED"]
    # Declined: the decline that took a priced parcel's limit leads those of parcels that had none to take.
    declined = _hand_made({
        "P1": ("decline", "NOT_CULTIVATED", ""),
        "P2": ("decline", "NOT_CULTIVATED", ""),
        "P3": ("decline", "HIGH_RISK;RISK_GRADE;LOW_HEALTH_VS_PEERS", "HIGH_RISK=2678.40"),
    })
    assert aggregate_borrowers(declined, CONFIG)["reason_all"].iloc[0] == \
        "HIGH_RISK;NOT_CULTIVATED;RISK_GRADE;LOW_HEALTH_VS_PEERS"
    # Through assign_limits: one parcel's grade took more than two others' cost ceilings together.
    big = {"cultivated_area_ha": 2.0, "cultivated_area_low_ha": 1.9, "cultivated_area_high_ha": 2.0,
           "declared_area_ha": 2.0, "polygon_area_ha": 2.0}
    parcels = _assess(_parcel(parcel_id="P1", health_index=30.0, **big),
                      *(_parcel(parcel_id=pid, yield_p10_t_ha=12.0) for pid in ("P2", "P3")))
    assert parcels["reason_amounts"].tolist() == ["RISK_GRADE=1071.36", "COST_CEILING=475.20", "COST_CEILING=475.20"]
    assert _borrowers(parcels)["reason_all"].iloc[0] == "RISK_GRADE;COST_CEILING"


def test_a_borrowers_reasons_say_what_each_took_off_its_limit_as_its_parcels_do() -> None:
    """borrower_decisions.jsonl had no amounts: a loan officer could not see what took how much off a borrower's limit.
    Each reason's ``taken_off`` is the sum of what it took off the parcels (PARCEL_DECLINED: what the declined parcels'
    codes took), as the borrower's ``reason_amounts`` gives it; together they are what the parcels' records give, each
    parcel's amount counted once, also where a deciding parcel has a code that PARCEL_DECLINED stands for on another."""
    approved = _hand_made({
        "P1": ("approve", "RISK_GRADE", "RISK_GRADE=3000.25"),
        "P2": ("decline", "HIGH_RISK;RISK_GRADE", "HIGH_RISK=200.10"),
        "P3": ("approve", "COST_CEILING;LOW_HEALTH_VS_PEERS", "COST_CEILING=50.05"),
        "P4": ("approve", "COST_CEILING;LOW_HEALTH_VS_PEERS;PARTLY_CULTIVATED", "COST_CEILING=50.20"),
    })
    referred = _hand_made({
        "P1": ("refer", "PEAK_NOT_OBSERVED;HIGH_RISK", "HIGH_RISK=400.00"),
        "P2": ("decline", "HIGH_RISK;RISK_GRADE", "HIGH_RISK=300.00"),
    })
    for parcels, amounts_taken in ((approved, "RISK_GRADE=3000.25;PARCEL_DECLINED=200.10;COST_CEILING=100.25"),
                                   (referred, "HIGH_RISK=400.00;PARCEL_DECLINED=300.00")):
        borrowers = aggregate_borrowers(parcels, CONFIG)
        assert borrowers["reason_amounts"].iloc[0] == amounts_taken
        reasons = next(borrower_decision_records(borrowers, parcels, _RECORD))["reasons"]
        taken = {reason["code"]: reason["taken_off"] for reason in reasons}
        assert list(taken) == borrowers["reason_all"].iloc[0].split(";")
        assert {code: amount for code, amount in taken.items() if amount} == \
            {code: float(amount) for code, amount in amounts(amounts_taken).items()}
        parcels_taken = sum((sum(amounts(text).values(), Decimal(0)) for text in parcels["reason_amounts"]), Decimal(0))
        assert sum(Decimal(repr(amount)) for amount in taken.values()) == parcels_taken


def test_what_each_code_took_off_a_parcels_limit_adds_up_to_its_arithmetic() -> None:
    """``reason_amounts`` holds what each code took off, as the arithmetic shows it: the repayment capacity less those
    amounts is the limit offered. A decline by grade E is HIGH_RISK's, not a lower grade's; a limit withheld is the
    code's that withheld it, which then leads its effect (land pledged twice before an overstated area)."""
    rows = [_parcel(), _parcel(parcel_id="P2", health_index=30.0), _parcel(parcel_id="P3", yield_p10_t_ha=12.0),
            _parcel(parcel_id="P4", health_index=5.0, relative_yield=0.6, ndvi_uniformity=0.2),
            _parcel(parcel_id="P5", declared_area_ha=1.0), _parcel(parcel_id="P6", declared_area_ha=1.0),
            _parcel(parcel_id="P7", borrower_id="B2")]
    parcels = _assess(*rows, overlaps=Overlaps.between(7, [(5, 6)]))
    for row in parcels.itertuples():
        capacity = Decimal(re.search(r"repayment_capacity = [^;]* = ([\d,.]+)", row.limit_arithmetic)[1]
                           .replace(",", ""))
        taken = amounts(row.reason_amounts)
        assert capacity - sum(taken.values(), Decimal(0)) == Decimal(repr(row.loan_limit)), row.parcel_id
        assert list(taken) == [code for code in row.reason_all.split(";") if code in taken]  # in the reasons' order
    high_risk, overstated, pledged = (parcels.iloc[k] for k in (3, 4, 5))
    assert high_risk["decision"] == "decline" and high_risk["reason_amounts"] == "HIGH_RISK=2678.40"
    assert overstated["decision"] == "refer" and overstated["reason_amounts"].startswith("RISK_GRADE=")
    assert pledged["reason_all"].startswith("PARCEL_OVERLAP;AREA_OVERSTATED")
    assert pledged["loan_limit"] == 0 and pledged["reason_amounts"].startswith("PARCEL_OVERLAP=")


def test_a_borrower_referred_at_0_for_its_declarations_shows_what_a_review_can_lend() -> None:
    """Its every parcel referred at 0 for its declaration, the total 0 left the borrower referred with no minimum to
    name, so its arithmetic had no 'declared honestly' step: what a review can lend showed only beside a lent parcel."""
    small = {"cultivated_area_ha": 0.3, "cultivated_area_low_ha": 0.29, "cultivated_area_high_ha": 0.3,
             "polygon_area_ha": 0.3}
    parcels = _assess(_parcel(**small, declared_area_ha=0.9))
    over = parcels.iloc[0]
    assert (over.decision, over.loan_limit) == ("refer", 0.0) and over.honest_limit >= 1000
    borrower = _borrowers(parcels).iloc[0]
    assert (borrower.decision, borrower.loan_limit) == ("refer", 0.0)
    assert "LIMIT_BELOW_MINIMUM" not in borrower.reason_all
    assert borrower.limit_arithmetic.endswith(
        f"declared honestly = round down min(0 + {money(over.honest_limit)} (P1); cap 200,000) to a multiple of 100 = "
        f"{money(round_down(over.honest_limit, 100))} CNY")


def test_declared_crops_the_config_does_not_know_are_warned_of_once_with_counts_and_fixes(
        caplog: pytest.LogCaptureFixture) -> None:
    """253 parcels declaring 'mahindi', which a config lacked as maize's alias, were told only by per-parcel codes, and
    lending fell by five sixths: the run names each unknown name (as matched: folded) with its count, the names the
    config knows, close ones, and the fix; blank, missing, fallow and unknown declarations are no unknown names."""
    declared = ["mahindi", "Mahindi", "ｍａｈｉｎｄｉ ", "wheet", "Wheat", "小麦", "休耕", "未知",
                "", " ", None, np.nan]
    parcels = pd.DataFrame([_parcel(parcel_id=f"P{i}", declared_crop=name) for i, name in enumerate(declared)])
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assign_limits(parcels, CONFIG, RISK)
    assert caplog.text.count("declare a crop the config neither prices nor aliases") == 1
    assert "4 parcel(s) declare a crop the config neither prices nor aliases: 'mahindi' (3 parcel(s)); 'wheet' (1 " \
           "parcel(s); close to 'wheat')" in caplog.text
    assert "The config knows wheat (冬小麦, 小麦), maize (corn, 夏玉米, 玉米)" in caplog.text
    assert "add each name to the aliases of the crop it means (crops.<crop>.aliases in --config)" in caplog.text
    # Every key a crop of one's own needs: other_cost_per_ha, which it must give, was left out, and so it got 0.
    assert "give it a crop of its own (ndvi_template, yield_curve, price, cost_per_ha, other_cost_per_ha; flooded " \
           "and aliases if need be)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assign_limits(parcels.iloc[4:], CONFIG, RISK)
    assert "neither prices nor aliases" not in caplog.text


@pytest.mark.parametrize(("declared", "close"), [
    ("cotton", ""), ("beans", ""), ("早稻", ""), ("晚稻", ""), ("春小麦", ""), ("稻子", ""), ("小麥", ""),
    ("whaet", "'wheat'"), ("soyabean", "'soybean'"), ("soy bean", "'soybean'"), ("maiz", "'maize'"),
    ("rices", "'rice'"), ("冬小麥", "'冬小麦' (wheat)"),
])
def test_the_unknown_crop_warning_offers_only_near_spellings(declared: str, close: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """'cotton' was offered 'corn' (maize), 'beans' soybean and 早稻 (early rice, a season the packaged templates do
    not model) 稻, by a warning telling to alias each name to the crop it means: a cotton lender would price cotton as
    maize. Only a name one letter off (one character on a Chinese name of three or more) is offered, and none for an
    unmodelled season."""
    parcels = pd.DataFrame([_parcel(parcel_id="P1", declared_crop=declared)])
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assign_limits(parcels, CONFIG, RISK)
    named = f"{declared!r} (1 parcel(s)" + (f"; close to {close})" if close else "")
    assert named in caplog.text and ("close to" in caplog.text) == bool(close)
    assert ("a season the packaged crops' templates do not model: a crop of its own, not an alias" in caplog.text) == (
        declared in ("早稻", "晚稻", "春小麦"))


def test_a_declared_crop_with_outer_blanks_is_its_crop_and_no_unknown_name(caplog: pytest.LogCaptureFixture) -> None:
    """'Rice ' is rice (matched without its outer blanks): not warned of as an unknown name, nor offered one."""
    parcels = pd.DataFrame([_parcel(parcel_id="P1", declared_crop="Rice ")])
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assign_limits(parcels, CONFIG, RISK)
    assert "neither prices nor aliases" not in caplog.text


def test_a_grade_names_the_features_that_raised_its_pd_most_with_the_parcels_own_figures() -> None:
    """A grade that lowered a limit (RISK_GRADE) or declined it (HIGH_RISK) names the scorecard features that raised
    the PD most, in words with the parcel's figures, in its reason text and in decisions.jsonl (feature, value,
    points): the reasons behind 282 of the sample's 416 parcels lowered by their grade were named by no code. A
    grade-A parcel names none; the same inputs give the same text."""
    rows = (_parcel(), _parcel(parcel_id="P2", relative_yield=0.6),
            _parcel(parcel_id="P3", health_index=5.0, relative_yield=0.6, ndvi_uniformity=0.3))
    parcels = _assess(*rows)
    best, low_yield, declined = parcels.itertuples()
    assert (best.risk_grade, best.reason_all, best.risk_factors) == ("A", "", "[]")
    assert low_yield.risk_grade != "A" and low_yield.reason_all == "RISK_GRADE"
    assert low_yield.reason_text == (f"{REASONS['RISK_GRADE'].sentence} Its risk was raised most by: yield expected "
                                     "at 0.60 of a typical wheat season.")
    assert [factor["feature"] for factor in json.loads(declined.risk_factors)] == [
        "health_index", "ndvi_uniformity", "relative_yield"]
    assert declined.reason.startswith("HIGH_RISK") and "health 5 of 100" in declined.reason_text
    frame = gpd.GeoDataFrame(parcels.assign(ndvi_peak_date=pd.NaT, ndvi_integral=np.nan, health_reference=""),
                             geometry=[box(i, 0, i + 1, 1) for i in range(3)], crs="EPSG:32650")
    records = list(decision_records(frame, _RECORD, Overlaps.between(3, []), np.zeros((3, 0)),
                                    np.zeros((3, 0), dtype=bool), []))
    [graded] = records[1]["reasons"]
    assert [(f["feature"], f["value"]) for f in graded["factors"]] == [("relative_yield", 0.6)]
    assert graded["factors"][0]["points"] > 0 and graded["sentence"] == low_yield.reason_text
    assert "factors" not in records[2]["reasons"][1]  # LOW_HEALTH_VS_PEERS names none
    assert _assess(*rows)[["reason_text", "risk_factors"]].equals(parcels[["reason_text", "risk_factors"]])


def test_a_decline_that_stands_declared_honestly_names_what_raised_that_pd_and_small_factors_are_not_named() -> None:
    """A parcel declined HIGH_RISK "declared honestly too" rests on the PD with its declaration taken as honest: its
    over-declaration is not named as what raised the risk (P00211 of sample_tiles led with it, so an officer would
    correct the area for nothing); a feature barely off the average (under ``MIN_FACTOR_POINTS``) is never named;
    an area declared in mu is named in mu."""
    from farmcredit.credit.risk import MIN_FACTOR_POINTS

    weak = {"health_index": 0.0, "relative_yield": 0.3, "ndvi_uniformity": 0.3}
    over = _assess(_parcel(**weak, declared_area_ha=1.5)).iloc[0]
    assert over.decision == "decline" and "declared honestly too" in over.limit_arithmetic
    named = [factor["feature"] for factor in json.loads(over.risk_factors)]
    assert named and "declared_over_high" not in named
    assert "declared" not in over.reason_text.split("raised most by: ")[1].split(". ")[0]
    # Graded lower on its declaration alone (lent on): the declaration is what raised it, and is named, in mu.
    lowered = _assess(_parcel(declared_area_ha=0.65, declared_area_mu=9.75, health_index=40.0)).iloc[0]
    factors = json.loads(lowered.risk_factors)
    assert all(factor["points"] >= MIN_FACTOR_POINTS for factor in factors)
    assert factors[0]["feature"] == "declared_over_high"
    assert "raised most by: 9.75 mu (0.65 ha) declared, above the top of the interval measured" in lowered.reason_text
    near_average = RISK.principal_factors(risk_features(pd.DataFrame([_parcel(health_index=49.0)]),
                                                         RISK.declared_slack_ha))[0]
    assert "health_index" not in [feature for feature, _, _ in near_average]


def test_a_referred_borrowers_review_figure_is_given_only_where_the_review_alone_reaches_the_minimum() -> None:
    """B0042 of sample_tiles read "a review ... can lend up to 900" under a minimum of 1,000, while a parcel withheld
    for clouds, which may add anything, was what kept it open: no figure there, nor under the minimum."""
    small = {"cultivated_area_ha": 0.1, "cultivated_area_low_ha": 0.096, "cultivated_area_high_ha": 0.1,
             "polygon_area_ha": 0.1}
    unseen = _parcel(parcel_id="P2", clear_observations=1, reasons=["FEW_CLEAR_OBSERVATIONS"])
    held = _borrowers(_assess(_parcel(**small, declared_area_ha=0.3), unseen)).iloc[0]
    assert held.decision == "refer" and "A review of the declared areas" not in held.reason_text
    alone = _borrowers(_assess(_parcel(**small, declared_area_ha=0.3))).iloc[0]
    assert alone.decision == "decline" and "A review of the declared areas" not in alone.reason_text


def test_a_declined_parcel_ranks_the_codes_that_took_money_before_those_that_took_nothing() -> None:
    """In a declined parcel a referral that took nothing (CROP_MISMATCH: correcting the crop changes nothing) no
    longer outranks a code that took part of the limit (COST_CEILING); the decline still leads."""
    out = _assess(_parcel(relative_yield=0.6, yield_p10_t_ha=12.0, crop="maize", health_index=5.0,
                          ndvi_uniformity=0.3)).iloc[0]
    assert out.decision == "decline"
    assert out.reason_all.split(";") == ["HIGH_RISK", "COST_CEILING", "CROP_MISMATCH", "LOW_HEALTH_VS_PEERS"]
    assert list(amounts(out.reason_amounts)) == ["HIGH_RISK", "COST_CEILING"]


def test_low_health_says_it_is_against_the_same_crop_in_the_run_not_parcels_nearby() -> None:
    sentence = REASONS["LOW_HEALTH_VS_PEERS"].sentence
    assert "same crop assessed in this run" in sentence and "nearby" not in sentence


@pytest.mark.parametrize("top, partly", [(0.44, True), (0.45, False), (0.4998, False)])
def test_partly_cultivated_is_said_only_where_even_the_top_of_the_area_interval_is_under_fully_cultivated(
        top: float, partly: bool) -> None:
    """PARTLY_CULTIVATED was given on the estimate (under 90% of the outline): 18 of the 70 parcels of
    ``sample_tiles/`` told "Only part of the parcel is cultivated" were fully cultivated, their intervals' tops 90-100%
    of the outline (P00604: 0.052815 of 0.052816 ha), two of them declined HIGH_RISK with that sentence. It is given
    only where even the top is under 90%; an info code, it changes neither the decision nor the limit (on the
    estimate), and the risk factor the share scored says it is an estimate where the field may be fully cultivated."""
    row = _parcel(cultivated_fraction=0.5, cultivated_area_ha=0.25, cultivated_area_low_ha=0.2,
                  cultivated_area_high_ha=top, declared_area_ha=np.nan, relative_yield=0.8)
    out, full = _assess(row, {**row, "parcel_id": "P2", "cultivated_area_high_ha": 0.5}).itertuples()
    assert ("PARTLY_CULTIVATED" in out.reason_all.split(";")) is partly
    assert (out.decision, out.loan_limit, out.risk_grade) == (full.decision, full.loan_limit, full.risk_grade)
    assert (out.decision, out.loan_limit) == ("approve", 1004.40)  # 0.25 ha, the estimate, at grade C
    [share] = [factor["words"] for factor in json.loads(out.risk_factors) if factor["feature"] == "cultivated_fraction"]
    assert share == ("50% of the outline cultivated" if partly else
                     f"an estimated 50% of the outline cultivated (up to {top / 0.5:.0%} by its interval)")
    assert share in out.reason_text


def test_partly_cultivated_tells_the_farmer_what_to_do() -> None:
    """An adverse-action reason says what the borrower can do: an outline drawn to the cultivated field."""
    sentence = REASONS["PARTLY_CULTIVATED"].sentence
    assert "under 90% of the outline" in sentence and "outline redrawn around the cultivated field" in sentence
