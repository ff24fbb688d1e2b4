"""A parcel's region against its neighbours' (REGION_UNLIKE_NEIGHBOURS): a region picks a parcel's prices, and only
its neighbours say where it lies."""

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from test_limit import _parcel

from farmcredit.config import Config, load_config
from farmcredit.credit import assign_limits, load_risk_model
from farmcredit.pipeline import assess

CONFIG = load_config()
RISK = load_risk_model()
# Wheat as priced in the two prefectures the fraud review used: 2.3 CNY/kg in zhumadian, 3.2 in xinyang.
PRICED = Config.model_validate({**CONFIG.model_dump(), "regions": {
    "zhumadian": {"crops": {"wheat": {"price": 2.3}}}, "xinyang": {"crops": {"wheat": {"price": 3.2}}}}})


def _field(x: float, y: float) -> shapely.Polygon:
    """A 50 m x 100 m field (0.5 ha) with its south-west corner ``x``, ``y`` metres into UTM zone 50N's Henan."""
    return shapely.box(770_000 + x, 3_650_000 + y, 770_050 + x, 3_650_100 + y)


def _assess(regions: list[str | None], corners: list[tuple[float, float]], borrowers: list[str],
            config: Config = PRICED) -> pd.DataFrame:
    rows = [_parcel(parcel_id=f"P{k}", borrower_id=borrower, region=region)
            for k, (region, borrower) in enumerate(zip(regions, borrowers, strict=True))]
    return assign_limits(pd.DataFrame(rows), config, RISK, None, np.array([_field(*xy) for xy in corners]))


# Eight neighbours' fields in a row 100 m apart, each its own borrower's, and the borrower checked's two beside them.
ROW = [(100.0 * k, 0.0) for k in range(8)]
CHECKED = [(0.0, 200.0), (100.0, 200.0)]


def test_a_parcel_relabelled_a_dearer_region_among_its_neighbours_is_referred_naming_both(
        caplog: pytest.LogCaptureFixture) -> None:
    """The fraud review relabelled one borrower's parcels xinyang among all-zhumadian neighbours: its wheat priced at
    3.2 CNY/kg, not 2.3, its limit rose 57% (B0150: 2,100 to 3,300) and nothing flagged it. Its two parcels vouch not
    for each other: each is referred, the text naming both regions and both limits, and the run warns once."""
    with caplog.at_level(logging.WARNING, logger="farmcredit.credit.limit"):
        out = _assess(["zhumadian"] * 8 + ["xinyang"] * 2, ROW + CHECKED, [f"B{k}" for k in range(8)] + ["B0150"] * 2)
    honest = _assess(["zhumadian"] * 10, ROW + CHECKED, [f"B{k}" for k in range(8)] + ["B0150"] * 2)
    relabelled = out.iloc[8:]
    assert (relabelled["decision"] == "refer").all()
    assert relabelled["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").all()
    # Referred, not withheld: a review confirming xinyang lends what its prices give.
    assert (relabelled["loan_limit"] > honest["loan_limit"].iloc[8:]).all()
    text = relabelled["reason_text"].iloc[0]
    assert ("It names region 'xinyang', where 8 of the 8 other borrowers' parcels naming a region within 1000 m name "
            "'zhumadian'") in text
    assert f"in 'zhumadian' {honest['limit_arithmetic'].iloc[8].rsplit(' = ', 1)[1]}" in text
    assert not out.iloc[:8]["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").any()
    assert caplog.text.count("REGION_UNLIKE_NEIGHBOURS") == 1
    assert "2 parcel(s) name a region other than" in caplog.text and "P8 (xinyang among zhumadian)" in caplog.text


@pytest.mark.parametrize("region", [None, float("nan"), "", "nanyang"])
def test_a_parcel_naming_no_priced_region_among_cheaper_neighbours_is_referred(region: object) -> None:
    """A region left blank, or one the config does not price, is priced at the national prices: where its neighbours'
    region is priced below them, it lent more than they would and went unchecked (a diff review: a borrower's
    regions blanked among zhumadian parcels turned its decline into a 1,100 CNY approval)."""
    cheap = Config.model_validate({**CONFIG.model_dump(),
                                   "regions": {"zhumadian": {"crops": {"wheat": {"price": 1.6}}}}})
    out = _assess(["zhumadian"] * 8 + [region] * 2, ROW + CHECKED, [f"B{k}" for k in range(8)] + ["B0150"] * 2, cheap)
    relabelled = out.iloc[8:]
    assert relabelled["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").all()
    said = ("names region 'nanyang', which the config does not price: the national prices" if region == "nanyang"
            else "names no region, so the national prices")
    assert f"It {said}, where 8 of the 8 other borrowers' parcels" in relabelled["reason_text"].iloc[0]
    assert not out.iloc[:8]["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").any()


def test_a_parcel_at_a_border_among_a_mix_of_regions_is_not_referred() -> None:
    """Half its neighbours zhumadian, half xinyang: no one other region is over half of them, so a parcel at the
    prefectures' border naming the dearer one is lent on as named."""
    out = _assess(["zhumadian"] * 4 + ["xinyang"] * 4 + ["xinyang"], ROW + CHECKED[:1], [f"B{k}" for k in range(9)])
    assert not out["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").any()


def test_a_parcel_relabelled_a_cheaper_region_is_not_referred() -> None:
    """Zhumadian among xinyang neighbours lends it less than theirs would: nothing a review could take back."""
    out = _assess(["xinyang"] * 8 + ["zhumadian"], ROW + CHECKED[:1], [f"B{k}" for k in range(9)])
    assert not out["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").any()
    assert (out["decision"] == "approve").all()


def test_too_few_or_too_far_neighbours_or_no_regions_priced_check_nothing() -> None:
    """Two neighbours say too little; neighbours beyond credit.region_check_m none; a config pricing no regions gives
    every parcel the national prices, whatever its region column says."""
    borrowers = [f"B{k}" for k in range(9)]
    few = _assess(["zhumadian"] * 2 + ["xinyang"], ROW[:2] + CHECKED[:1], borrowers[:3])
    near = PRICED.model_copy(update={"credit": PRICED.credit.model_copy(update={"region_check_m": 150.0})})
    far = _assess(["zhumadian"] * 8 + ["xinyang"], ROW + [(700.0, 500.0)], borrowers, near)
    national = _assess(["zhumadian"] * 8 + ["xinyang"], ROW + CHECKED[:1], borrowers, CONFIG)
    for out in (few, far, national):
        assert not out["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").any()
    # Within the distance it is checked: one of those 150 m off is there.
    close = _assess(["zhumadian"] * 8 + ["xinyang"], ROW + [(300.0, 100.0)], borrowers, near)
    assert close["reason_all"].iloc[-1].startswith("REGION_UNLIKE_NEIGHBOURS")


def test_an_assessment_refers_a_parcel_its_borrower_relabelled_a_dearer_region(small_season, tmp_path) -> None:
    """End to end: the run hands the parcels' outlines (the imagery's CRS, in metres) to the check, so the one
    approved wheat parcel named xinyang among a season of zhumadian ones is referred, the rest as they were."""
    parcels = gpd.read_file(small_season.parcels_path).assign(region="zhumadian")
    honest_path, relabelled_path = tmp_path / "honest.gpkg", tmp_path / "relabelled.gpkg"
    parcels.to_file(honest_path)
    honest = assess(honest_path, small_season.imagery_dir, config=PRICED, model="rule")
    lent = honest.index[(honest["decision"] == "approve") & (honest["priced_crop"] == "wheat")][0]
    parcels.loc[parcels["parcel_id"] == honest.loc[lent, "parcel_id"], "region"] = "xinyang"
    parcels.to_file(relabelled_path)
    relabelled = assess(relabelled_path, small_season.imagery_dir, config=PRICED, model="rule")
    assert relabelled.loc[lent, "decision"] == "refer"
    assert relabelled.loc[lent, "reason"].split(";")[0] == "REGION_UNLIKE_NEIGHBOURS"
    assert relabelled.drop(index=lent)["decision"].tolist() == honest.drop(index=lent)["decision"].tolist()


def test_parcels_naming_no_region_among_others_naming_none_are_not_referred_for_a_few_that_do() -> None:
    """A file naming the region of some parcels only: a parcel naming none was weighed against its neighbours naming
    one, so three zhumadian parcels among hundreds naming none referred every one of those (a diff review: 483 of
    752 on sample_tiles with a region on a tenth of them). It is weighed against all its neighbours."""
    cheap = Config.model_validate({**CONFIG.model_dump(),
                                   "regions": {"zhumadian": {"crops": {"wheat": {"price": 1.6}}}}})
    out = _assess([None] * 5 + ["zhumadian"] * 3 + [None] * 2, ROW + CHECKED, [f"B{k}" for k in range(8)] + ["B9"] * 2,
                  cheap)
    assert not out["reason_all"].str.contains("REGION_UNLIKE_NEIGHBOURS").any()


def test_a_neighbours_region_the_config_does_not_price_is_said_to_be_priced_nationally() -> None:
    """Among parcels naming a region the config does not price, a dearer region's parcel is referred, and the text
    named the neighbours' region's limit as if it had prices of its own: it says they are the national ones."""
    out = _assess(["nanyang"] * 8 + ["xinyang"] * 2, ROW + CHECKED, [f"B{k}" for k in range(8)] + ["B0150"] * 2)
    text = out["reason_text"].iloc[8]
    assert "REGION_UNLIKE_NEIGHBOURS" in out["reason_all"].iloc[8]
    assert "in 'nanyang' (which the config does not price: the national prices) " in text
