"""Agronomy v1: phenology, crop templates, health vs peers, yield, observation counts."""

import dataclasses
from datetime import date, timedelta

import numpy as np
import pytest

from farmcredit.agronomy import ParcelMeasurements, derive_signals
from farmcredit.agronomy.signals import template_shifts
from farmcredit.config import Config, load_config
from farmcredit.credit.limit import assign_limits, warn_perennial_crops
from farmcredit.credit.risk import load_risk_model

CONFIG = load_config()
DATES = tuple(date(2024, 3, 1) + timedelta(days=15 * k) for k in range(16))
DOY = np.array([d.timetuple().tm_yday for d in DATES], dtype=float)


def _template(crop: str, shift: float = 0.0) -> np.ndarray:
    points = np.array(CONFIG.crops[crop].ndvi_template)
    return np.interp(DOY - shift, points[:, 0], points[:, 1])


def _measure(ndvi: np.ndarray, clear: np.ndarray | None = None, ndmi: np.ndarray | None = None,
             fraction: np.ndarray | None = None, evi: np.ndarray | None = None) -> ParcelMeasurements:
    n = ndvi.shape[0]
    fraction = np.ones(n) if fraction is None else fraction
    return ParcelMeasurements(
        dates=DATES, polygon_area_ha=np.full(n, 0.5), inside_share=np.ones(n),
        clear_share=np.ones_like(ndvi) if clear is None else clear, ndvi_mean=ndvi,
        ndvi_std=np.full_like(ndvi, 0.05), crop_ndvi_mean=ndvi, crop_ndvi_std=np.full_like(ndvi, 0.05),
        ndmi_mean=np.full_like(ndvi, -0.2) if ndmi is None else ndmi,
        evi_mean=np.full_like(ndvi, np.nan) if evi is None else evi,  # no blue band: the flood check reads NDVI
        cultivated_fraction=fraction, cultivated_fraction_low=fraction * 0.95,
        cultivated_fraction_high=np.minimum(fraction * 1.05, 1.0), product=np.zeros_like(ndvi),
        read_error=np.zeros(n, dtype=bool),
    )


def _signals(m: ParcelMeasurements, declared=None):
    n = len(m.polygon_area_ha)
    declared = np.array([None] * n, dtype=object) if declared is None else np.array(declared, dtype=object)
    return derive_signals(m, declared, np.ones(n, dtype=bool), CONFIG)


def test_each_crop_template_is_recognised_even_when_shifted() -> None:
    crops = ["wheat", "maize", "soybean", "rice"]
    ndvi = np.stack([_template(c, shift=10) for c in crops])
    ndmi = np.full_like(ndvi, -0.2)
    flood = (DOY >= 140) & (DOY <= 175)
    ndmi[3, flood] = ndvi[3, flood]  # paddy: LSWI >= NDVI at transplanting
    signals, _ = _signals(_measure(ndvi, ndmi=ndmi))
    assert list(signals["crop"]) == crops
    assert (signals["crop_confidence"] > 1 / len(crops)).all()


def test_a_paddy_is_told_by_water_against_evi_where_ndvi_has_risen_past_it() -> None:
    """Seedlings in water: LSWI + 0.05 under NDVI but above EVI (Xiao et al. 2005 allow either; EVI stays lower over
    sparse canopies). Without EVI (no blue band) the check reads NDVI."""
    ndvi = np.stack([_template("rice")] * 2)
    flood = (DOY >= 140) & (DOY <= 175)
    ndmi = np.where(flood, ndvi - 0.1, -0.2)  # 0.05 short of NDVI
    evi = np.where(flood, ndvi - 0.2, ndvi * 0.7)
    evi[1] = np.nan
    signals, _ = _signals(_measure(ndvi, ndmi=ndmi, evi=evi))
    assert signals["crop"].tolist() == ["rice", "maize"]


def test_a_date_whose_cropland_or_swir_was_not_seen_is_no_evidence_against_a_paddy() -> None:
    """NDMI (cropland pixels) missing on the window's dates, or everywhere (no B11): no date says "not flooded", so
    rice is not penalised, as it was."""
    ndvi = np.stack([_template("rice")] * 2)
    window = (DOY >= CONFIG.agronomy.flood_window_doy[0]) & (DOY <= CONFIG.agronomy.flood_window_doy[1])
    ndmi = np.where(window, np.nan, -0.2)
    ndmi[1] = np.nan
    signals, _ = _signals(_measure(ndvi, ndmi=ndmi))
    assert signals["crop"].tolist() == ["rice", "rice"]


def test_peak_date_integral_and_yield_follow_the_curve() -> None:
    ndvi = _template("wheat")[None]
    signals, _ = _signals(_measure(ndvi))
    row = signals.iloc[0]
    assert row["ndvi_peak"] == pytest.approx(ndvi.max())
    assert row["ndvi_peak_date"].date() == DATES[int(np.argmax(ndvi))]
    assert row["ndvi_integral"] == pytest.approx(np.trapezoid(ndvi[0], DOY - DOY[0]))
    curve = np.array(CONFIG.crops["wheat"].yield_curve)
    assert row["yield_p50_t_ha"] == pytest.approx(np.interp(ndvi.max(), curve[:, 0], curve[:, 1]))
    assert row["yield_p10_t_ha"] < row["yield_p50_t_ha"]


def test_a_typical_season_of_any_crop_scores_its_typical_yield_and_the_same_pd() -> None:
    """relative_yield reads yield against the crop's typical season: a textbook soybean (2 t/ha) is as good
    a risk as a textbook maize (6.5 t/ha), all else equal."""
    crops = ["wheat", "maize", "soybean", "rice"]
    ndvi = np.stack([_template(c) / _template(c).max() * CONFIG.crops[c].peak_ndvi for c in crops])
    ndmi = np.full_like(ndvi, -0.2)
    flood = (DOY >= 140) & (DOY <= 175)
    ndmi[3, flood] = ndvi[3, flood]  # paddy: LSWI >= NDVI at transplanting
    signals, _ = _signals(_measure(ndvi, ndmi=ndmi))
    assert signals["crop"].tolist() == crops
    typical = [CONFIG.crops[c].typical_yield_t_ha for c in crops]
    assert signals["yield_p50_t_ha"].tolist() == pytest.approx(typical)
    assert signals["relative_yield"].tolist() == pytest.approx([1.0] * 4)
    assert max(typical) > 3 * min(typical)
    table = signals.assign(health_index=60.0, declared_area_ha=signals["cultivated_area_ha"])
    assert np.ptp(load_risk_model().probability_of_default(table)) == pytest.approx(0, abs=1e-12)
    # A poorer season of the same crop reads below 1, and so risks more.
    poorer = _signals(_measure(ndvi * 0.8, ndmi=ndmi))[0]
    assert (poorer["relative_yield"] < 0.9).all()
    assert (load_risk_model().probability_of_default(poorer.assign(health_index=60.0, declared_area_ha=0.5))
            > load_risk_model().probability_of_default(table)).all()


def test_health_is_a_percentile_among_same_crop_peers() -> None:
    scales = np.linspace(0.7, 1.0, 10)
    ndvi = np.stack([_template("wheat") * s for s in scales])
    signals, _ = _signals(_measure(ndvi))
    assert signals["health_index"].is_monotonic_increasing
    assert signals["health_index"].iloc[0] == pytest.approx(5.0)
    assert "10 wheat parcels" in signals["health_reference"].iloc[0]


def test_health_ranks_a_crop_among_its_own_or_against_its_own_template_peak() -> None:
    """A soybean read as maize with too little confidence is priced as the declared soybean, so it is rated among
    soybeans; a crop with too few peers is compared with other crops relative to each crop's template peak (a
    textbook soybean peaks at 0.75, a textbook maize at 0.85: equally healthy)."""
    maize = [_template("maize") * s for s in np.linspace(0.96, 1.04, 20)]
    soybean = [_template("soybean") * s for s in (0.98, 1.0, 1.02, 1.0)]
    signals, _ = _signals(_measure(np.stack(maize + soybean)), declared=["maize"] * 20 + ["soybean"] * 4)
    four = signals.iloc[20:]
    assert (four["priced_crop"] == "soybean").all() and four["health_reference"].str.contains("template peak").all()
    assert 30 < four["health_index"].iloc[1] < 70  # mid-pack, as its textbook curve is (was 8 against raw maize)
    unsure = (_template("maize") + _template("soybean")) / 2  # the call between the two is unsure
    ndvi = np.stack([_template("soybean") * s for s in np.linspace(0.9, 1.1, 6)] + [unsure * 0.9])
    signals, _ = _signals(_measure(ndvi), declared=["soybean"] * 7)
    last = signals.iloc[-1]
    assert last["crop"] == "maize" and last["crop_confidence"] < CONFIG.agronomy.crop_min_confidence
    assert last["priced_crop"] == "soybean" and "7 soybean parcels" in last["health_reference"]


def test_cloudy_seasons_are_counted_and_flagged() -> None:
    ndvi = np.stack([_template("wheat")] * 3)
    clear = np.ones_like(ndvi)
    clear[1, 3:] = 0.2
    clear[2, :] = 0.0
    signals, reasons = _signals(_measure(ndvi, clear=clear))
    assert list(signals["clear_observations"]) == [16, 3, 0]
    assert reasons[1][0] == "FEW_CLEAR_OBSERVATIONS" and reasons[2] == ["NO_CLEAR_OBSERVATIONS"]
    assert np.isnan(signals["ndvi_peak"].iloc[2]) and signals["crop"].iloc[2] == "unknown"


def test_a_parcel_with_no_clear_date_is_not_also_told_its_peak_was_missed() -> None:
    """Every date clouded: NO_CLEAR_OBSERVATIONS alone; PEAK_NOT_OBSERVED beside it advised a season covering the peak
    of a season that spanned it."""
    ndvi = np.stack([_template("wheat")] * 2)
    clear = np.zeros_like(ndvi)
    clear[1, 2:] = 1.0
    clear[1, 2:10] = 0.0  # wheat's weeks clouded, later dates clear: its peak was missed
    _, reasons = _signals(_measure(ndvi, clear=clear), declared=["wheat", "wheat"])
    assert reasons[0] == ["NO_CLEAR_OBSERVATIONS"]
    assert "PEAK_NOT_OBSERVED" in reasons[1]


def test_a_parcel_with_no_clear_date_is_not_called_fallow_nor_stated_bare() -> None:
    """A wheat field clouded on every date but 6% of one (sample_tiles/ P00076, March) was read bare on those cells:
    fallow at 1.0 and 0-0.02 of its area, though nothing about it was seen clear. It is unknown, as a parcel no cell
    of which was seen, with no confidence, and its interval reaches the whole polygon; with a clear date, bare land is
    still fallow, surely."""
    ndvi = np.full((2, 16), 0.15)
    clear = np.ones_like(ndvi)
    clear[0] = 0.06
    signals, reasons = _signals(_measure(ndvi, clear=clear, fraction=np.zeros(2)), declared=["wheat", "wheat"])
    assert reasons[0] == ["NO_CLEAR_OBSERVATIONS"]
    assert signals["crop"].tolist() == ["unknown", "fallow"]
    assert np.isnan(signals["crop_confidence"].iloc[0]) and signals["crop_confidence"].iloc[1] == 1.0
    np.testing.assert_allclose(signals["cultivated_area_low_ha"], [0.0, 0.0])
    np.testing.assert_allclose(signals["cultivated_area_high_ha"], [0.5, 0.0])


def test_uncultivated_parcels_are_fallow_and_unsure_crops_use_the_declared_one() -> None:
    ndvi = np.stack([np.full(16, 0.15), (_template("maize") + _template("soybean")) / 2])
    signals, _ = _signals(_measure(ndvi, fraction=np.array([0.05, 1.0])), declared=[None, "soybean"])
    assert signals["crop"].iloc[0] == "fallow"
    assert signals["crop_confidence"].iloc[1] < CONFIG.agronomy.crop_min_confidence  # half maize, half soybean
    assert signals["priced_crop"].iloc[1] == "soybean"


def test_a_declared_crop_read_bare_in_its_green_weeks_is_a_mismatch_unless_surely_called_it() -> None:
    """A soybean season declared wheat, clouded from July to September: bare (0.19-0.21) through wheat's green weeks,
    yet the unsure call among templates on its few dates left wheat over declared_crop_min_probability, so it was
    priced as wheat and rated against wheat peers. A wheat crop weak but growing (0.6 of its template) is not
    contradicted; one failed in its green weeks, no longer called wheat, is, referred with its declaration in doubt,
    never approved."""
    summer = (DOY >= 182) & (DOY <= 273)
    clear = np.where(summer, 0.0, 1.0)[None, :].repeat(4, axis=0)
    bare = np.clip(_template("soybean"), 0.19, None)
    failed = np.clip(0.2 + 0.15 * (_template("wheat") - 0.2), None, 0.3)  # wheat that barely came up: 0.2-0.3
    ndvi = np.stack([bare, _template("wheat") * 0.6 + 0.08, failed, _template("wheat")])
    declared = ["wheat"] * 4
    signals, reasons = _signals(_measure(ndvi, clear=clear), declared=declared)
    assert signals["declared_crop_probability"].iloc[0] > CONFIG.agronomy.declared_crop_min_probability
    assert signals["priced_crop"].iloc[0] != "wheat"
    decided = _limits(signals, reasons, np.array(declared, dtype=object), CONFIG)
    for k in (0, 2):
        assert "CROP_MISMATCH" in decided["reason_all"].iloc[k].split(";")
        assert decided["decision"].iloc[k] != "approve"
    assert "CROP_MISMATCH" not in decided["reason_all"].iloc[1] + decided["reason_all"].iloc[3]
    assert signals["declared_crop_contradicted"].tolist() == [True, False, True, False]


def test_a_wheat_surely_called_wheat_is_not_contradicted_by_hazy_dates_in_its_green_weeks() -> None:
    """Haze the cloud mask missed read a healthy wheat 0.30 on its clear dates in wheat's green weeks (one of them
    clouded out on the second parcel); the season called it wheat at 0.9999, yet it was referred CROP_MISMATCH, its
    reason saying the crop seen differs from the declared one."""
    hazy = _template("wheat")
    in_green_weeks = (DOY >= 105) & (DOY <= 126)
    hazy[in_green_weeks] = 0.30
    clear = np.ones((2, len(DOY)))
    clear[1, np.flatnonzero(in_green_weeks)[0]] = 0.0
    declared = ["wheat"] * 2
    signals, reasons = _signals(_measure(np.stack([hazy, hazy]), clear=clear), declared=declared)
    assert (signals["crop"] == "wheat").all()
    assert (signals["crop_confidence"] >= CONFIG.agronomy.crop_min_confidence).all()
    assert not signals["declared_crop_contradicted"].any()
    decided = _limits(signals, reasons, np.array(declared, dtype=object), CONFIG)
    assert not decided["reason_all"].str.contains("CROP_MISMATCH").any()


def test_a_declared_crop_the_season_rules_out_is_priced_as_seen_however_unsure_the_call() -> None:
    """Maize and soybean seasons look alike, so the call between them stays unsure; a maize season declared as wheat
    still rules wheat out. A paddy whose flooding was missed keeps its declared rice."""
    ndvi = np.stack([_template("maize"), _template("maize"), _template("rice")])
    signals, _ = _signals(_measure(ndvi), declared=["wheat", "maize", "rice"])
    assert (signals["crop_confidence"][:2] < CONFIG.agronomy.crop_min_confidence).all()
    floor = CONFIG.agronomy.declared_crop_min_probability
    assert signals["declared_crop_probability"].iloc[0] < floor < signals["declared_crop_probability"].iloc[2]
    assert list(signals["priced_crop"]) == [signals["crop"].iloc[0], "maize", "rice"]
    checked = assign_limits(signals.assign(parcel_id=["P1", "P2", "P3"], borrower_id="B1", declared_area_ha=0.5,
                                           declared_crop=["wheat", "maize", "rice"],
                                           reasons=[[], [], []]), CONFIG, load_risk_model())
    assert ["CROP_MISMATCH" in codes.split(";") for codes in checked["reason_all"]] == [True, False, False]


@pytest.mark.parametrize("days", [0, 2, 12, 15, 60])
def test_templates_slide_both_ways_alike_and_always_sit_still_too(days: int) -> None:
    shifts = template_shifts(days)
    assert 0 in shifts and shifts == sorted(-s for s in shifts) and max(shifts) == days
    assert all(b - a <= 5 for a, b in zip(shifts, shifts[1:]))


@pytest.mark.parametrize("days", [2, 12])
def test_a_parcel_on_its_template_is_called_as_without_a_slide(days: int) -> None:
    ndvi = np.stack([_template("maize"), _template("wheat"), _template("soybean")])
    config = CONFIG.model_copy(update={"agronomy": CONFIG.agronomy.model_copy(update={"template_shift_days": days})})
    signals = derive_signals(_measure(ndvi), np.array([None] * 3, dtype=object), np.ones(3, dtype=bool), config)[0]
    assert list(signals["crop"]) == ["maize", "wheat", "soybean"]


def test_bare_land_the_season_never_saw_at_its_crops_green_time_is_referred_not_declined() -> None:
    """Clear images only from March to May: a bare parcel declared maize may be sown in June; one declared wheat, or
    nothing (wheat would be green then), is not cultivated."""
    ndvi = np.full((4, 16), 0.15)
    clear = np.ones_like(ndvi)
    clear[:, 6:] = 0.0  # nothing clear after May
    fraction = np.array([0.05, 0.05, 0.05, 1.0])
    signals, reasons = _signals(_measure(ndvi, clear=clear, fraction=fraction),
                                declared=["玉米", "wheat", None, "maize"])
    assert ["SEASON_MISSES_CROP" in codes for codes in reasons] == [True, False, False, False]
    rows = signals.assign(parcel_id=["P1", "P2", "P3", "P4"], borrower_id="B1", declared_area_ha=0.5,
                          declared_crop=["玉米", "wheat", None, "maize"], reasons=reasons)
    decided = assign_limits(rows, CONFIG, load_risk_model())
    assert list(decided["decision"][:3]) == ["refer", "decline", "decline"]
    assert decided["reason"].iloc[0].split(";")[0] == "SEASON_MISSES_CROP"
    assert not {"NOT_CULTIVATED", "AREA_OVERSTATED"} & set(decided["reason_all"].iloc[0].split(";"))
    assert decided["loan_limit"].iloc[0] == 0.0 and "NOT_CULTIVATED" in decided["reason_all"].iloc[1]
    assert decided["limit_arithmetic"].iloc[0].endswith("(refer: SEASON_MISSES_CROP)")


def test_bare_land_the_season_never_saw_green_states_no_area_nor_a_sure_fallow_call() -> None:
    """Seen bare only before its crop would green, a parcel may be cropped all over once sown: its interval runs from
    the low end measured to the whole polygon (the part off the imagery, as anywhere, may be crop too), and its fallow
    call has no confidence. A simulated maize parcel of 0.585 ha so seen gave [0.045, 0.149] ha and a sure fallow.
    Land seen bare in wheat's green weeks keeps its narrow interval and its confidence."""
    ndvi = np.full((3, 16), 0.15)
    clear = np.ones_like(ndvi)
    clear[:, 6:] = 0.0  # nothing clear after May
    m = dataclasses.replace(_measure(ndvi, clear=clear, fraction=np.full(3, 0.05)),
                            inside_share=np.array([1.0, 0.75, 1.0]))
    signals, reasons = _signals(m, declared=["maize", "玉米", "wheat"])
    assert ["SEASON_MISSES_CROP" in codes for codes in reasons] == [True, True, False]
    np.testing.assert_allclose(signals["cultivated_area_low_ha"], [0.02375, 0.02375 * 0.75, 0.02375])
    np.testing.assert_allclose(signals["cultivated_area_high_ha"], [0.5, 0.5, 0.02625])
    assert signals["crop"].tolist() == ["fallow"] * 3
    assert signals["crop_confidence"].isna().tolist() == [True, True, False]
    decided = _limits(signals, reasons, np.array(["maize", "玉米", "wheat"], dtype=object), CONFIG)
    assert decided["decision"].tolist() == ["refer", "refer", "decline"]
    assert decided["loan_limit"].tolist()[:2] == [0.0, 0.0]


@pytest.mark.parametrize("fallow", ["fallow", "休耕", "撂荒"])
def test_bare_land_declared_fallow_is_not_cultivated_whatever_the_season_saw(fallow) -> None:
    """Seen bare only in March and from late September, in no crop's green weeks, land declared fallow is declined
    NOT_CULTIVATED, not referred as if a crop might be sown after the season's images (none is to come); nor is its
    declared area overstated. Declared unknown, it is read as declaring nothing, referred as a blank declaration."""
    ndvi = np.full((3, 16), 0.15)
    clear = np.zeros_like(ndvi)
    clear[:, [0, 1, 2, 14, 15]] = 1.0  # days 61-91 and 271-286
    declared = [fallow, "unknown", None]
    signals, reasons = _signals(_measure(ndvi, clear=clear, fraction=np.full(3, 0.05)), declared=declared)
    assert ["SEASON_MISSES_CROP" in codes for codes in reasons] == [False, True, True]
    rows = signals.assign(parcel_id=["P1", "P2", "P3"], borrower_id=["B1", "B2", "B3"], declared_area_ha=0.5,
                          declared_crop=declared, reasons=reasons)
    decided = assign_limits(rows, CONFIG, load_risk_model())
    assert list(decided["decision"]) == ["decline", "refer", "refer"]
    assert decided["reason_all"].iloc[0].split(";")[0] == "NOT_CULTIVATED"
    assert not {"AREA_OVERSTATED", "UNKNOWN_DECLARED_CROP"} & set(decided["reason_all"].iloc[0].split(";"))
    assert decided["reason_all"].iloc[1] == decided["reason_all"].iloc[2]


def test_bare_land_seen_only_before_a_late_sown_crop_would_green_is_referred() -> None:
    """Bare until day 181 (30 June): maize sown on schedule reads 0.39 then, under halfway to its peak, so sown a little
    late it may be to come; the green weeks were widened by the templates' slide, and such parcels were declined
    NOT_CULTIVATED. Seen bare on day 226 (maize 0.77 even sown 15 days late; on day 211 so sown, 0.58, it is not yet
    three quarters of the way up) or seen only after its harvest, they are judged as before."""
    ndvi = np.full((3, len(DATES)), 0.15)
    clear = np.zeros_like(ndvi)
    clear[0, DOY <= 181] = 1.0
    clear[1, DOY <= 226] = 1.0
    clear[2, DOY >= 271] = 1.0  # after maize's on-schedule harvest: it may have been and gone
    declared = ["maize"] * 3
    signals, reasons = _signals(_measure(ndvi, clear=clear, fraction=np.full(3, 0.05)), declared=declared)
    assert ["SEASON_MISSES_CROP" in codes for codes in reasons] == [True, False, True]
    decided = _limits(signals, reasons, np.array(declared, dtype=object), CONFIG)
    assert decided["decision"].tolist() == ["refer", "decline", "refer"]


def test_a_crop_seen_only_at_the_edge_of_its_green_weeks_is_referred_not_declined() -> None:
    """A rice season clouded from July to mid September (a monsoon over its peak), clear again on 27 September
    (day 271): the template reads 0.52 there, just over halfway from its low (0.15) to its peak (0.85), and a weak or
    early rice 0.38, which the cropland rule takes for bare land. That date counted as seen green, so the parcel was
    declined NOT_CULTIVATED for clouds over its crop; now it is referred. Seen bare on 28 August (day 241), when rice
    is well up however sown (0.71-0.84), the land is declined as before."""
    ndvi = np.full((2, len(DATES)), 0.15)
    ndvi[0, DOY == 271] = 0.38
    clear = np.where((DOY <= 181) | (DOY >= 271), 1.0, 0.0)[None, :].repeat(2, axis=0)
    clear[1, DOY == 241] = 1.0
    declared = np.array(["rice"] * 2, dtype=object)
    signals, reasons = _signals(_measure(ndvi, clear=clear, fraction=np.full(2, 0.05)), declared=declared)
    assert ["SEASON_MISSES_CROP" in codes for codes in reasons] == [True, False]
    decided = _limits(signals, reasons, declared, CONFIG)
    assert decided["decision"].tolist() == ["refer", "decline"]
    assert decided["reason"].iloc[0] == "SEASON_MISSES_CROP" and "NOT_CULTIVATED" in decided["reason"].iloc[1]


def test_land_not_seen_bare_in_its_crops_green_weeks_is_referred_not_declined() -> None:
    """A weak wheat whose green weeks were clouded but for their last day (136 here; sample_tiles/ P00543 read 0.43 on
    20 May, day 141, the wheat template 0.69 there), called fallow by the cropland model, was declined
    NOT_CULTIVATED on that reading: bare land reads 0.22-0.28 there, the weakest wheat a call takes (MIN_GAIN of the
    template) 0.39. Read at 0.43 it is referred SEASON_MISSES_CROP, with no fallow confidence and its interval to the
    polygon; read bare, it is declined as before. The whole parcel's reading counts, not that of the few cells called
    cropland (0.5 on fallow land beside a hedge)."""
    clear = np.where(np.isin(DOY, [136, 166, 226, 286]), 1.0, 0.0)[None, :].repeat(3, axis=0)
    ndvi = np.full((3, len(DATES)), 0.22)
    ndvi[0, DOY == 136] = 0.43
    crop_ndvi = ndvi.copy()
    crop_ndvi[2, DOY == 136] = 0.5
    m = dataclasses.replace(_measure(ndvi, clear=clear, fraction=np.full(3, 0.05)), crop_ndvi_mean=crop_ndvi)
    declared = np.array(["wheat"] * 3, dtype=object)
    signals, reasons = _signals(m, declared=declared)
    assert ["SEASON_MISSES_CROP" in codes for codes in reasons] == [True, False, False]
    assert signals["crop_confidence"].isna().tolist() == [True, False, False]
    np.testing.assert_allclose(signals["cultivated_area_high_ha"], [0.5, 0.02625, 0.02625])
    decided = _limits(signals, reasons, declared, CONFIG)
    assert decided["decision"].tolist() == ["refer", "decline", "decline"]
    assert "NOT_CULTIVATED" not in decided["reason_all"].iloc[0] and "NOT_CULTIVATED" in decided["reason"].iloc[1]


def test_a_fallow_call_on_too_few_clear_dates_is_not_sure_nor_its_area_stated() -> None:
    """Seen bare on three clear dates (one in wheat's green weeks), a parcel is referred FEW_CLEAR_OBSERVATIONS; its
    fallow call was still stated at 0.75 with an interval of 0-0.03 ha (sample_tiles/ P00541, a wheat of 0.37 ha:
    0.93, 0-0.08 ha). As where the season missed its crop, it has no confidence and its interval reaches the polygon;
    on four, it is sure."""
    clear = np.where(np.isin(DOY, [136, 166, 226, 286]), 1.0, 0.0)[None, :].repeat(2, axis=0)
    clear[0, DOY == 286] = 0.0
    signals, reasons = _signals(_measure(np.full((2, len(DATES)), 0.15), clear=clear, fraction=np.full(2, 0.05)),
                                declared=["wheat", "wheat"])
    assert reasons == [["FEW_CLEAR_OBSERVATIONS"], []]
    assert signals["crop"].tolist() == ["fallow", "fallow"]
    assert signals["crop_confidence"].isna().tolist() == [True, False]
    np.testing.assert_allclose(signals["cultivated_area_high_ha"], [0.5, 0.02625])


def test_a_season_clouded_over_its_crops_peak_is_referred_and_rated_against_no_one() -> None:
    """Maize seasons, the greenest clouded from 29 July to 28 August (maize is at 0.9 of its peak from day 211 to 244):
    its highest clear date, 12 September, reads 0.66 of a 0.89 peak. It was rated the least healthy and priced at
    that, and approved; now its peak is not observed: referred, no health and no yield, and the others are ranked
    among themselves. A copy clouded only on 13 August, its peak seen on 28 August, is rated."""
    gains = np.linspace(0.8, 1.05, 8)
    ndvi = np.stack([_template("maize") * g for g in gains] + [_template("maize") * gains[-1]])
    clear = np.ones_like(ndvi)
    clear[7, (DOY >= 211) & (DOY <= 244)] = 0.0
    clear[8, DOY == 226] = 0.0
    declared = np.array(["maize"] * 9, dtype=object)
    signals, reasons = _signals(_measure(ndvi, clear=clear), declared=declared)
    assert reasons[7] == ["PEAK_NOT_OBSERVED"] and not any(reasons[:7] + reasons[8:])
    row = signals.iloc[7]
    assert np.isnan(row["health_index"]) and np.isnan(row["yield_p50_t_ha"]) and np.isnan(row["relative_yield"])
    assert row["health_reference"] == ("not rated: no clear image near its crop's peak, from 29 July to 31 August "
                                       "(days 211-244 of the year)")
    assert signals["health_index"].iloc[0] == pytest.approx(100 * 0.5 / 8)  # the weakest of the 8 rated
    assert signals["health_index"].iloc[8] > signals["health_index"].iloc[6]
    decided = _limits(signals, reasons, declared, CONFIG)
    assert decided["decision"].iloc[7] == "refer" and decided["loan_limit"].iloc[7] == 0.0
    assert decided["reason"].iloc[7].split(";")[0] == "PEAK_NOT_OBSERVED"
    assert decided["limit_arithmetic"].iloc[7].endswith("(refer: PEAK_NOT_OBSERVED)")


def test_a_crop_seen_once_after_its_peak_gets_no_yield() -> None:
    """A wheat field seen clear once, after harvest (13 August): too few dates to fit a crop, so its peak went
    unchecked and its yield was read off that one image, 0.18 of typical where the whole season read 0.74."""
    august = DOY == 226
    clear = np.where(august, 1.0, 0.0)[None, :]
    signals, reasons = _signals(_measure(_template("wheat")[None, :], clear=clear), declared=["wheat"])
    assert reasons[0] == ["FEW_CLEAR_OBSERVATIONS", "PEAK_NOT_OBSERVED"]
    assert np.isnan(signals["yield_p50_t_ha"].iloc[0]) and np.isnan(signals["relative_yield"].iloc[0])


def test_a_summer_crop_after_winter_wheat_is_valued_on_its_own_peak_not_the_wheats() -> None:
    """A maize season with spring greenness before it (wheat, or weeds, at 0.66 on 1 May) is called maize; its yield
    and health read the spring's 0.66 as the maize's peak (the season's highest clear NDVI). It is valued on the
    highest of its own season (``season_days``: maize 26 June to 28 September). A wheat-then-maize season no template
    fits (crop unknown: referred CROP_NOT_RECOGNISED, priced as declared for the person who looks) keeps the season's
    highest, as a hazy date in the declared crop's weeks is no evidence against it; a single crop's peak is its
    season's highest."""
    maize = 0.75 * _template("maize")
    flushed = np.where(DOY == 121, 0.66, maize)
    double = np.fmax(_template("wheat"), 0.9 * _template("maize"))
    ndvi = np.stack([flushed, double, _template("maize"), _template("wheat")])
    signals, reasons = _signals(_measure(ndvi), declared=["maize", "maize", "maize", "wheat"])
    assert signals["crop"].tolist() == ["maize", "unknown", "maize", "wheat"]
    row = signals.iloc[0]
    assert maize.max() < 0.66 and row["ndvi_peak"] == pytest.approx(maize.max())
    assert row["ndvi_peak_date"].date() == DATES[int(np.argmax(maize))]
    curve = np.array(CONFIG.crops["maize"].yield_curve)
    assert row["yield_p50_t_ha"] == pytest.approx(np.interp(maize.max(), curve[:, 0], curve[:, 1]))
    assert "CROP_NOT_RECOGNISED" in reasons[1] and signals["ndvi_peak"].iloc[1] == pytest.approx(double.max())
    assert signals["ndvi_peak"].iloc[2:].tolist() == pytest.approx([ndvi[2].max(), ndvi[3].max()])


def test_a_templates_dip_below_its_off_season_does_not_make_the_whole_year_its_season() -> None:
    """A rice template whose flooding dip reads -0.05 (flooded paddy) put its season's threshold under its off-season
    NDVI, so every day was in season and a rice after a weak wheat was valued on the wheat's April (a review): the
    season is the stretch round its near-peak days, which the dip ends."""
    raw = CONFIG.model_dump()
    raw["crops"]["rice"]["ndvi_template"] = [[60, 0.18], [140, 0.20], [160, -0.05], [180, 0.35], [200, 0.70],
                                             [227, 0.85], [258, 0.70], [283, 0.35], [304, 0.22]]
    config = Config.model_validate(raw)
    wheat = 0.2 + 0.5 * (_template("wheat") - 0.2)
    rice = 0.15 + 0.5 * (np.interp(DOY, *np.array(raw["crops"]["rice"]["ndvi_template"]).T) - 0.15)
    ndvi = np.where(DOY < 150, wheat, np.maximum(rice, 0.0))[None]
    ndmi = np.where((DOY >= 160) & (DOY <= 185), ndvi + 0.1, -0.2)
    signals, _ = derive_signals(_measure(ndvi, ndmi=ndmi), np.array(["rice"], dtype=object), np.ones(1, dtype=bool),
                                config)
    assert signals["crop"].iloc[0] == "rice" and wheat.max() > rice.max(), signals["crop"].iloc[0]
    assert signals["ndvi_peak"].iloc[0] == pytest.approx(rice.max())
    assert signals["ndvi_peak_date"].iloc[0].month == 8


def test_one_hazy_date_at_a_crops_peak_does_not_set_its_peak_where_its_season_reads_greener() -> None:
    """Read in its near-peak days alone, a maize whose only clear date there was hazy (0.45 on 13 August, its
    neighbours clouded) took that as its peak, though its own season read 0.58 and 0.62 either side: its yield fell
    from 4.42 to 2.70 t/ha and parcels approved on their season were declined (a review: about 10 on the sample with
    one hazy date). Its own season bounds it from below now, as the season's highest did."""
    maize = _template("maize")
    ndvi = maize.copy()
    ndvi[DOY == 196], ndvi[DOY == 226], ndvi[DOY == 256] = 0.58, 0.45, 0.62
    clear = np.where(np.isin(DOY, [211, 241]), 0.0, 1.0)
    signals, reasons = _signals(_measure(ndvi[None], clear=clear[None]), declared=["maize"])
    assert signals["crop"].iloc[0] == "maize" and "PEAK_NOT_OBSERVED" not in reasons[0]
    assert signals["ndvi_peak"].iloc[0] == pytest.approx(0.62)


def test_a_crop_seen_failing_at_its_peak_is_judged_not_taken_as_unseen() -> None:
    """A drought maize whose green-up stalled, clear and bare on days 237 and 242 (its template is near its peak on
    days 211-244): its low readings pulled the best-fitting slide away from them, and the moved window alone made
    the peak unseen, so a crop that failed in plain view was referred, its limit withheld, not declined."""
    doy = np.array([150, 160, 170, 180, 190, 237, 242, 255, 270, 290])
    dates = tuple(date(2024, 1, 1) + timedelta(days=int(d) - 1) for d in doy)
    points = np.array(CONFIG.crops["maize"].ndvi_template)
    healthy = [np.interp(doy, points[:, 0], points[:, 1]) * g for g in (0.8, 0.9, 1.0, 1.05, 0.95, 0.85)]
    failed = [0.18, 0.19, 0.22, 0.27, 0.30, 0.21, 0.20, 0.19, 0.19, 0.19]
    ndvi = np.stack([*healthy, failed])
    m = dataclasses.replace(_measure(ndvi), dates=dates, ndvi_std=np.full_like(ndvi, 0.05))
    declared = np.array(["maize"] * 7, dtype=object)
    signals, reasons = derive_signals(m, declared, np.ones(7, dtype=bool), CONFIG)
    assert "PEAK_NOT_OBSERVED" not in reasons[6]
    assert signals["health_index"].iloc[6] == signals["health_index"].min()
    assert _limits(signals, reasons, declared, CONFIG)["decision"].iloc[6] == "decline"


def test_a_southern_summer_crop_whose_peak_spans_the_new_year_is_seen_there() -> None:
    """Maize's template moved 140 days peaks on 11 January: the near-peak days ran 'from 1 to 366' and folded to a
    single day, so every parcel was referred PEAK_NOT_OBSERVED."""
    from farmcredit.agronomy.signals import near_peak_runs

    points = np.array(CONFIG.crops["maize"].ndvi_template)
    days = np.arange(1, 367)
    moved = np.interp((days - 1 - 140) % 366 + 1, points[:, 0], points[:, 1])
    template = [(float(d), float(v)) for d, v in zip(days[::5], moved[::5])]
    maize = CONFIG.crops["maize"].model_copy(update={"ndvi_template": template})
    south = CONFIG.model_copy(update={"crops": {"maize": maize}})
    ((first, last),) = near_peak_runs(maize)
    assert first > 300 and last < 30  # a window across the new year
    dates = tuple(date(2023, 9, 1) + timedelta(days=10 * k) for k in range(24))
    doy = np.array([d.timetuple().tm_yday for d in dates])
    ndvi = np.stack([np.interp(doy, *np.array(template).T) * g for g in np.linspace(0.85, 1.05, 6)])
    m = dataclasses.replace(_measure(ndvi), dates=dates, ndvi_std=np.full_like(ndvi, 0.05))
    signals, reasons = derive_signals(m, np.array(["maize"] * 6, dtype=object), np.ones(6, dtype=bool), south)
    assert not any("PEAK_NOT_OBSERVED" in codes for codes in reasons)
    assert signals["health_index"].notna().all()
    # One clouded over those days: its health_reference read "from day 351 to 18 of the year" where the warning says
    # "17 December to 18 January (days 351-18 of the year)"; it gives the dates as the warning does.
    clear = np.ones_like(ndvi)
    clear[0, (doy >= first) | (doy <= last)] = 0.0
    m = dataclasses.replace(m, clear_share=clear)
    signals, reasons = derive_signals(m, np.array(["maize"] * 6, dtype=object), np.ones(6, dtype=bool), south)
    assert reasons[0] == ["PEAK_NOT_OBSERVED"] and (first, last) == (351, 18)
    assert signals["health_reference"].iloc[0] == ("not rated: no clear image near its crop's peak, from 17 December "
                                                   "to 18 January (days 351-18 of the year)")


def _rotated(crop_points: list, days: int) -> list[tuple[float, float]]:
    """A template sampled daily, moved ``days`` later in the year, across the new year as the calendar goes."""
    points = np.array(crop_points)
    every = np.arange(1, 367)
    return [(float(d), float(v)) for d, v in zip(every, np.interp((every - 1 - days) % 366 + 1, *points.T))]


def test_a_season_across_the_new_year_is_judged_as_the_same_season_within_one() -> None:
    """Every crop's calendar and the season moved 227 days (October to June): the same signals and reasons. The
    slid templates were held at their ends at the new year, not wrapped, so another slide fitted and, on
    sample_tiles so moved, 7 decisions and 137 health indices changed."""
    def moved(days: int):
        crops = {name: spec.model_copy(update={"ndvi_template": _rotated(spec.ndvi_template, days)})
                 for name, spec in CONFIG.crops.items()}
        start, end = CONFIG.agronomy.flood_window_doy
        window = ((start - 1 + days) % 366 + 1, (end - 1 + days) % 366 + 1)
        agronomy = CONFIG.agronomy.model_validate(CONFIG.agronomy.model_dump() | {"flood_window_doy": window})
        return CONFIG.model_copy(update={"crops": crops, "agronomy": agronomy})

    doy = np.arange(60, 310, 8)
    points = {name: np.array(spec.ndvi_template) for name, spec in CONFIG.crops.items()}
    ndvi = np.stack([np.interp(doy - slide, *points[name].T) * gain for name in points
                     for slide, gain in ((-12, 0.9), (0, 1.0), (9, 0.95), (14, 1.05))])
    n = len(ndvi)
    results = []
    for days, first in ((0, date(2024, 1, 1)), (227, date(2024, 8, 15))):  # 2024 is a leap year: day 1 + 227
        dates = tuple(first + timedelta(days=int(d) - 1) for d in doy)
        m = dataclasses.replace(_measure(ndvi), dates=dates)
        results.append(derive_signals(m, np.array([None] * n, dtype=object), np.ones(n, dtype=bool), moved(days)))
    (same, same_reasons), (across, across_reasons) = results
    assert across["crop"].tolist() == same["crop"].tolist() and across_reasons == same_reasons
    np.testing.assert_allclose(across["crop_confidence"], same["crop_confidence"], atol=1e-9)
    np.testing.assert_allclose(across["health_index"], same["health_index"], atol=1e-9)


def test_a_late_sown_wheat_seen_in_january_fits_its_late_slide() -> None:
    """The packaged templates cover March to October: slid past 1 January they hold their ends, as the crop's own
    winter is. Read round the calendar, a slide read wheat's dormant January as its October stubble, and a wheat
    sown 10 days late fitted a 5-day slide and was referred PEAK_NOT_OBSERVED."""
    doy = np.array([8, 30, 60, 80, 95, 101, 144, 170])  # no clear date from day 102 to 143
    dates = tuple(date(2024, 1, 1) + timedelta(days=int(d) - 1) for d in doy)
    wheat = np.array(CONFIG.crops["wheat"].ndvi_template)
    ndvi = np.stack([0.75 * np.interp(doy - 10, *wheat.T) + 0.08] * 5)
    m = dataclasses.replace(_measure(ndvi), dates=dates)
    signals, reasons = derive_signals(m, np.array(["wheat"] * 5, dtype=object), np.ones(5, dtype=bool), CONFIG)
    assert not any("PEAK_NOT_OBSERVED" in codes for codes in reasons)


def test_a_date_near_the_peak_only_at_a_slide_few_dates_leave_loose_does_not_see_it() -> None:
    """sample_tiles/' wheat P00293 kept to 4 of its dates (1 March, 20 May, 23 August, 27 October) fitted its
    template 15 days late (NDVI misfit 0.010; on schedule 0.026), which moved its near-peak days to 117-151: 20 May
    (day 141), after its peak, counted as near it, and the field was approved on that reading, where on its 9 clear
    dates it fits on schedule and is referred PEAK_NOT_OBSERVED. Fewer dates no longer clear PEAK_NOT_OBSERVED: the
    peak is seen at a slide only where every slide fitting about as well sees it. Seen on 5 May too, it is rated."""
    doy = np.array([61, 126, 141, 236, 301])
    dates = tuple(date(2024, 1, 1) + timedelta(days=int(d) - 1) for d in doy)
    ndvi = np.array([[0.397, np.nan, 0.659, 0.253, 0.221], [0.397, 0.72, 0.659, 0.253, 0.221]])
    m = dataclasses.replace(_measure(ndvi, clear=np.isfinite(ndvi).astype(float)), dates=dates)
    signals, reasons = derive_signals(m, np.array(["wheat"] * 2, dtype=object), np.ones(2, dtype=bool), CONFIG)
    assert signals["crop"].tolist() == ["wheat", "wheat"]
    assert reasons[0] == ["PEAK_NOT_OBSERVED"] and np.isnan(signals["ndvi_peak"].iloc[0])
    assert signals["health_reference"].iloc[0] == ("not rated: no clear image near its crop's peak, from 11 April to "
                                                   "15 May (days 102-136 of the year)")
    assert "PEAK_NOT_OBSERVED" not in reasons[1] and signals["ndvi_peak"].iloc[1] == pytest.approx(0.72)


def test_dates_after_a_crops_season_do_not_change_whether_its_peak_was_seen() -> None:
    """sample_tiles/ P00366, wheat clear on 1 and 16 March, 20 May and 19 June: approved in a season to June, referred
    PEAK_NOT_OBSERVED in one to October, its five dates after harvest (0.22-0.27) shrinking the misfit's differences
    between slides so that slides missing 20 May fitted too. Only the crop's own season tells which slides fit."""
    dates = (date(2024, 3, 1), date(2024, 3, 16), date(2024, 5, 20), date(2024, 6, 19), date(2024, 7, 9),
             date(2024, 8, 8), date(2024, 8, 23), date(2024, 9, 7), date(2024, 10, 27))
    ndvi = np.array([[0.39, 0.417, 0.698, 0.219, 0.222, 0.265, 0.266, 0.263, 0.222]])
    verdicts = []
    for kept in (4, 9):
        m = dataclasses.replace(_measure(ndvi[:, :kept]), dates=dates[:kept])
        signals, reasons = _signals(m, declared=["wheat"])
        verdicts.append(("PEAK_NOT_OBSERVED" in reasons[0], signals["ndvi_peak_date"].iloc[0]))
    assert verdicts[0] == verdicts[1] == (False, np.datetime64("2024-05-20"))


def test_a_crop_of_two_peaks_is_seen_at_either() -> None:
    """Double rice peaks in June and in early September: seen at its second peak only, it was referred
    PEAK_NOT_OBSERVED, its near-peak days taken as the first peak's alone."""
    from farmcredit.agronomy.signals import near_peak_runs

    every = np.arange(1, 367)
    double = np.maximum(0.15 + 0.7 * np.exp(-(((every - 160) / 25.0) ** 2)),
                        0.15 + 0.7 * np.exp(-(((every - 245) / 25.0) ** 2)))
    rice = CONFIG.crops["rice"].model_copy(update={"ndvi_template": [(float(d), float(v)) for d, v in
                                                                     zip(every[::4], double[::4])]})
    assert len(near_peak_runs(rice)) == 2
    config = CONFIG.model_copy(update={"crops": {**CONFIG.crops, "rice": rice}})
    doy = np.arange(200, 300, 6)  # from July: the first peak is over
    dates = tuple(date(2024, 1, 1) + timedelta(days=int(d) - 1) for d in doy)
    ndvi = np.stack([np.interp(doy, every, double) * g for g in (0.9, 1.0, 0.95, 1.02, 0.97, 0.93)])
    m = dataclasses.replace(_measure(ndvi), dates=dates)
    signals, reasons = derive_signals(m, np.array(["rice"] * 6, dtype=object), np.ones(6, dtype=bool), config)
    assert not any("PEAK_NOT_OBSERVED" in codes for codes in reasons)
    assert signals["health_index"].notna().all()


def test_a_paddy_flooding_window_may_wrap_the_new_year() -> None:
    """A paddy transplanted in December (flood_window_doy [335, 20]): flooded on 11 December it is rice, not flooded
    maize; the window was refused, start after end, and read as empty."""
    dates = tuple(date(2024, 3, 1) + timedelta(days=15 * k) for k in range(24))
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    points = np.array(CONFIG.crops["rice"].ndvi_template)
    ndvi = np.tile(np.interp(doy, points[:, 0], points[:, 1]), (2, 1))
    ndmi = np.full_like(ndvi, -0.2)
    december = np.flatnonzero(doy == 346)
    ndmi[0, december] = ndvi[0, december]
    m = dataclasses.replace(_measure(ndvi, ndmi=ndmi), dates=dates, ndvi_std=np.full_like(ndvi, 0.05))
    agronomy = CONFIG.agronomy.model_validate(CONFIG.agronomy.model_dump() | {"flood_window_doy": (335, 20)})
    config = CONFIG.model_copy(update={"agronomy": agronomy})
    signals, _ = derive_signals(m, np.array([None, None], dtype=object), np.ones(2, dtype=bool), config)
    assert signals["crop"].tolist() == ["rice", "maize"]


def test_a_parcel_without_enough_peers_gets_no_health_rating() -> None:
    signals, reasons = _signals(_measure(_template("wheat")[None]))
    assert np.isnan(signals["health_index"].iloc[0]) and reasons[0] == ["FEW_PEERS"]
    assert signals["health_reference"].iloc[0].startswith("not rated")
    # On too few clear dates it gets no grade either (FEW_CLEAR_OBSERVATIONS): FEW_PEERS' "the risk grade takes its
    # health as average" would be false, so the credit stage leaves it out, as of any parcel it grades not.
    ndvi = _template("wheat")[None]
    clear = np.zeros_like(ndvi)
    clear[0, int(np.argmax(ndvi[0])) + np.array([-3, 0, 3])] = 1
    signals, reasons = _signals(_measure(ndvi, clear=clear))
    assert signals["crop"].iloc[0] == "wheat" and reasons[0] == ["FEW_CLEAR_OBSERVATIONS", "FEW_PEERS"]
    decided = _limits(signals, reasons, np.array(["wheat"], dtype=object), CONFIG)
    assert np.isnan(decided["probability_of_default"].iloc[0])
    assert decided["reason_all"].iloc[0].split(";") == ["FEW_CLEAR_OBSERVATIONS"]


def test_a_parcel_never_measured_is_not_said_to_have_missed_its_crops_peak() -> None:
    """A parcel in error (outside the imagery, no outline) was told 'no clear image near its crop's peak, from day
    211 to 244', though the imagery was never read over it and PEAK_NOT_OBSERVED is not among its reasons."""
    ndvi = np.stack([_template("maize") * g for g in np.linspace(0.8, 1.05, 6)] + [np.full(len(DATES), np.nan)])
    fraction = np.append(np.ones(6), np.nan)
    measured = np.append(np.ones(6, dtype=bool), False)
    signals, reasons = derive_signals(_measure(ndvi, clear=np.where(measured[:, None], 1.0, 0.0), fraction=fraction),
                                      np.array(["maize"] * 7, dtype=object), measured, CONFIG)
    assert reasons[6] == [] and signals["health_reference"].iloc[6] == "not rated: not measured"
    assert signals["health_reference"].iloc[:6].eq("peak NDVI percentile among 6 maize parcels in this run").all()


def test_the_part_of_a_parcel_off_the_imagery_widens_its_area_interval() -> None:
    m = _measure(np.tile(_template("maize"), (2, 1)), fraction=np.array([0.6, 0.6]))
    m = dataclasses.replace(m, inside_share=np.array([1.0, 0.75]))
    signals, _ = _signals(m)
    np.testing.assert_allclose(signals["cultivated_area_ha"], [0.3, 0.3])  # the seen share stands for the parcel
    np.testing.assert_allclose(signals["cultivated_area_low_ha"], [0.285, 0.285 * 0.75])
    np.testing.assert_allclose(signals["cultivated_area_high_ha"], [0.315, 0.315 * 0.75 + 0.125])


def test_a_season_no_configured_template_fits_is_unknown_not_the_best_of_bad_fits() -> None:
    """To a config of wheat alone, a rice, maize or soybean season used to be wheat with confidence 1.0 (a softmax
    over one template) and was approved. It fits no template now: crop unknown and referred, CROP_NOT_RECOGNISED
    (declared wheat, its limit priced as wheat for the person who looks; a declared rice the config does not price
    with no limit); the wheat season stays wheat."""
    wheat_only = CONFIG.model_copy(update={"crops": {"wheat": CONFIG.crops["wheat"]}})
    ndvi = np.stack([_template("rice"), _template("maize"), _template("soybean"), _template("rice"),
                     _template("wheat", shift=10)])
    declared = np.array(["wheat", "wheat", "wheat", "rice", "wheat"], dtype=object)
    signals, reasons = derive_signals(_measure(ndvi), declared, np.ones(5, dtype=bool), wheat_only)
    assert signals["crop"].tolist() == ["unknown"] * 4 + ["wheat"]
    assert signals["declared_crop_probability"][:4].isna().all()  # none fits: the declared crop no less than others
    assert ["CROP_NOT_RECOGNISED" in codes for codes in reasons] == [True] * 4 + [False]
    checked = _limits(signals, reasons, declared, wheat_only)
    assert checked["decision"].tolist()[:4] == ["refer"] * 4 and checked["loan_limit"][3] == 0
    assert [codes.split(";")[0] for codes in checked["reason_all"][:4]] == ["CROP_NOT_RECOGNISED"] * 4
    assert "UNKNOWN_DECLARED_CROP" in checked["reason_all"][3]  # rice: unpriced, no limit
    assert not checked["reason_all"].str.contains("CROP_MISMATCH").any()
    assert checked["decision"].iloc[4] == "approve"


def test_one_hazy_date_of_a_short_season_is_no_evidence_against_the_declared_crop() -> None:
    """Six clear dates of wheat, one of them dimmed by haze left in: it misfits every template, so its crop is
    unknown and a person looks (CROP_NOT_RECOGNISED); the declared wheat was read as ruled out, CROP_MISMATCH,
    telling the officer the farmer mis-declared."""
    ndvi = np.full((1, len(DATES)), np.nan)
    seen = np.linspace(0, len(DATES) - 1, 8).astype(int)[1:7]
    ndvi[0, seen] = _template("wheat")[seen]
    peak = seen[np.argmax(ndvi[0, seen])]
    ndvi[0, peak] -= 0.6
    signals, reasons = _signals(_measure(ndvi), declared=["wheat"])
    assert signals["crop"][0] == "unknown" and reasons[0] == ["CROP_NOT_RECOGNISED"]
    checked = _limits(signals, reasons, np.array(["wheat"], dtype=object), CONFIG)
    assert checked["reason_all"][0].split(";")[0] == "CROP_NOT_RECOGNISED"
    assert "CROP_MISMATCH" not in checked["reason_all"][0] and checked["priced_crop"][0] == "wheat"


# Tea as a lender adds it: its template never drops to bare land (lowest 0.65, over cropland_rule.minimum_max 0.40).
TEA = CONFIG.crops["maize"].model_copy(update={
    "aliases": ("茶",), "ndvi_template": ((1, 0.65), (120, 0.70), (200, 0.80), (300, 0.75), (366, 0.65)),
    "price": 15.0, "cost_per_ha": 45000, "other_cost_per_ha": 4500})
WITH_TEA = CONFIG.model_copy(update={"crops": {**CONFIG.crops, "tea": TEA}})


def test_a_crop_that_never_drops_to_bare_is_referred_not_measured_unless_its_readings_contradict_it(caplog) -> None:
    """A tea garden reads 0.61-0.64 all season, so the cropland models (which find a crop by its rise from bare land)
    call it bare: declared tea, it was declined NOT_CULTIVATED and AREA_OVERSTATED. It is referred now,
    PERENNIAL_NOT_MEASURED, with no limit and no area finding, and the run warns that tea is referred, not measured.
    Bare land declared tea is still declined NOT_CULTIVATED, its declaration contradicted (bare where tea stands)."""
    ndvi = np.stack([np.full(len(DATES), 0.62), np.full(len(DATES), 0.18)])
    declared = ["tea", "茶"]
    m = _measure(ndvi, fraction=np.array([0.02, 0.02]))
    signals, reasons = derive_signals(m, np.array(declared, dtype=object), np.ones(2, dtype=bool), WITH_TEA)
    assert "PERENNIAL_NOT_MEASURED" in reasons[0] and signals["crop"].iloc[0] != "fallow"
    assert signals["declared_crop_contradicted"].tolist() == [False, True]
    assert signals["crop"].iloc[1] == "fallow" and "PERENNIAL_NOT_MEASURED" not in reasons[1]
    with caplog.at_level("WARNING"):
        decided = _limits(signals, reasons, np.array(declared, dtype=object), WITH_TEA)
    tea, bare = decided.iloc[0], decided.iloc[1]
    assert (tea["decision"], tea["loan_limit"]) == ("refer", 0.0)
    assert tea["reason_all"].split(";")[0] == "PERENNIAL_NOT_MEASURED"
    assert not {"NOT_CULTIVATED", "AREA_OVERSTATED"} & set(tea["reason_all"].split(";"))
    assert tea["limit_arithmetic"].startswith("no limit: the declared crop (tea) never drops to bare land")
    assert bare["decision"] == "decline" and {"NOT_CULTIVATED", "CROP_MISMATCH"} <= set(bare["reason_all"].split(";"))
    assert "tea (lowest 0.65, 2 parcel(s))" in caplog.text and "PERENNIAL_NOT_MEASURED" in caplog.text


def test_a_crop_that_never_drops_to_bare_is_warned_of_only_where_a_parcel_declares_it(caplog) -> None:
    """A config with tea warned of it on every run, "tea (lowest 0.65, 0 parcel(s))" where no parcel declared it."""
    with caplog.at_level("WARNING"):
        warn_perennial_crops(np.array(["maize", "小麦", None], dtype=object), WITH_TEA)
    assert "never drops to bare land" not in caplog.text
    with caplog.at_level("WARNING"):
        warn_perennial_crops(np.array(["maize", "茶"], dtype=object), WITH_TEA)
    assert "tea (lowest 0.65, 1 parcel(s))" in caplog.text


def test_a_maize_field_declared_a_crop_that_never_drops_to_bare_is_a_mismatch_priced_as_seen() -> None:
    """A maize season declared as tea: bare (about 0.2) from March to June, when tea's template never reads under
    0.65, but green like tea in summer, the only weeks the green-days check looked at; it was approved priced as tea
    at 15 CNY/kg. Two clear readings far under the template where it says the crop stands contradict it: CROP_MISMATCH,
    priced as the maize seen. A maize declared maize is not contradicted."""
    ndvi = np.stack([_template("maize")] * 2)
    declared = ["tea", "maize"]
    signals, reasons = derive_signals(_measure(ndvi), np.array(declared, dtype=object), np.ones(2, dtype=bool),
                                      WITH_TEA)
    assert signals["declared_crop_contradicted"].tolist() == [True, False]
    assert signals["priced_crop"].tolist() == [signals["crop"].iloc[0], "maize"] and signals["crop"].iloc[0] != "tea"
    decided = _limits(signals, reasons, np.array(declared, dtype=object), WITH_TEA)
    assert "CROP_MISMATCH" in decided["reason_all"].iloc[0].split(";")
    assert "PERENNIAL_NOT_MEASURED" not in decided["reason_all"].iloc[0]
    assert "(tea)" not in decided["limit_arithmetic"].iloc[0]


def _limits(signals, reasons, declared: np.ndarray, config):
    return assign_limits(signals.assign(parcel_id=[f"P{k}" for k in range(len(declared))], borrower_id="B1",
                                        declared_area_ha=0.5, declared_crop=declared, reasons=reasons),
                         config, load_risk_model())


def test_an_uneven_crop_is_read_over_its_cropland_not_the_bare_part_of_its_outline() -> None:
    """Wheat on half its outline, bare land the rest (sample_tiles P00142): the spread over the outline (0.27) raised
    its PD as an uneven crop, though its cultivated area already left the bare part out. Uniformity is read where its
    peak is, over the cropland pixels; over the whole parcel where none of them is clear, as its peak is."""
    wheat = _template("wheat")
    ndvi = np.stack([wheat, wheat])
    m = dataclasses.replace(_measure(ndvi), ndvi_mean=ndvi * 0.6, ndvi_std=np.full_like(ndvi, 0.27),
                            crop_ndvi_mean=np.stack([wheat, np.full_like(wheat, np.nan)]),
                            crop_ndvi_std=np.stack([np.full_like(wheat, 0.06), np.full_like(wheat, np.nan)]))
    signals, _ = _signals(m, declared=["wheat", "wheat"])
    assert signals["ndvi_uniformity"].tolist() == pytest.approx([0.06, 0.27])
    assert signals["ndvi_peak"].tolist() == pytest.approx([wheat.max(), 0.6 * wheat.max()])
