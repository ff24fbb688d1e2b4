"""Loan limits: arithmetic, caps, decisions, monotonicity and borrower totals."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from farmcredit.config import load_config
from farmcredit.credit import aggregate_borrowers, assign_limits

CONFIG = load_config()


def _parcel(**overrides) -> dict:
    row = {
        "parcel_id": "P1", "borrower_id": "B1", "declared_crop": "wheat", "declared_area_ha": 0.5,
        "polygon_area_ha": 0.5, "clear_observations": 10, "cultivated_fraction": 1.0,
        "cultivated_area_ha": 0.5, "cultivated_area_low_ha": 0.48, "cultivated_area_high_ha": 0.5,
        "crop": "wheat", "crop_confidence": 0.9, "priced_crop": "wheat", "ndvi_peak": 0.85,
        "health_index": 55.0, "yield_p10_t_ha": 4.0, "yield_p50_t_ha": 5.8, "reasons": [],
    }
    row.update(overrides)
    return row


def _assess(*rows: dict) -> pd.DataFrame:
    return assign_limits(pd.DataFrame(list(rows)), CONFIG)


def test_limit_is_the_smaller_of_capacity_and_cost_ceiling_rounded_down() -> None:
    out = _assess(_parcel()).iloc[0]
    credit, wheat = CONFIG.credit, CONFIG.crops["wheat"]
    capacity = credit.advance_rate * 0.5 * 4.0 * 1000 * wheat.price * credit.price_haircut
    ceiling = wheat.cost_per_ha * 0.5 * credit.cost_ceiling_factor
    expected = np.floor(min(capacity, ceiling) / credit.rounding_step) * credit.rounding_step
    assert out["loan_limit"] == expected
    assert out["decision"] == "approve" and out["status"] == "ok"
    assert f"{expected:.0f}" in out["limit_arithmetic"]


def test_overstated_area_refers_and_fallow_declines() -> None:
    over = _assess(_parcel(declared_area_ha=1.5)).iloc[0]
    assert over["decision"] == "refer" and over["reason"].startswith("AREA_OVERSTATED")
    fallow = _assess(_parcel(crop="fallow", cultivated_fraction=0.05, cultivated_area_ha=0.025)).iloc[0]
    assert fallow["decision"] == "decline" and fallow["loan_limit"] == 0
    assert "NOT_CULTIVATED" in fallow["reason"]


def test_error_rows_get_no_limit_and_are_referred() -> None:
    out = _assess(_parcel(reasons=["OUTSIDE_IMAGERY"], cultivated_area_ha=np.nan)).iloc[0]
    assert out["status"] == "error" and out["decision"] == "refer" and out["loan_limit"] == 0


def test_reasons_are_ranked_by_effect() -> None:
    out = _assess(_parcel(declared_area_ha=2.0, health_index=5.0, reasons=["FEW_CLEAR_OBSERVATIONS"])).iloc[0]
    codes = out["reason"].split(";")
    assert codes.index("AREA_OVERSTATED") < codes.index("LOW_HEALTH_VS_PEERS")
    assert "FEW_CLEAR_OBSERVATIONS" in codes


@settings(max_examples=150, deadline=None)
@given(
    area=st.floats(0.0, 20.0),
    extra_area=st.floats(0.0, 5.0),
    yield_p10=st.floats(0.0, 10.0),
    extra_yield=st.floats(0.0, 3.0),
    health=st.floats(0.0, 100.0),
    extra_health=st.floats(0.0, 50.0),
    crop=st.sampled_from(sorted(CONFIG.crops)),
)
def test_limit_never_falls_when_area_yield_or_health_rise(
    area, extra_area, yield_p10, extra_yield, health, extra_health, crop
) -> None:
    def limit(a: float, y: float, h: float) -> float:
        row = _parcel(cultivated_area_ha=a, cultivated_area_low_ha=a, cultivated_area_high_ha=a,
                      declared_area_ha=np.nan, yield_p10_t_ha=y, health_index=h, crop=crop, priced_crop=crop,
                      declared_crop=crop)
        return _assess(row).iloc[0]["loan_limit"]

    base = limit(area, yield_p10, health)
    assert limit(area + extra_area, yield_p10, health) >= base
    assert limit(area, yield_p10 + extra_yield, health) >= base
    assert limit(area, yield_p10, min(health + extra_health, 100.0)) >= base
    assert base <= CONFIG.credit.parcel_cap


def test_borrower_total_is_capped_and_names_deciding_parcels() -> None:
    rows = [_parcel(parcel_id=f"P{i}", cultivated_area_ha=30.0, cultivated_area_low_ha=30.0,
                    cultivated_area_high_ha=30.0, declared_area_ha=30.0) for i in range(4)]
    rows.append(_parcel(parcel_id="P9", declared_area_ha=5.0))
    parcels = _assess(*rows)
    frame = gpd.GeoDataFrame(parcels, geometry=[box(i, 0, i + 1, 1) for i in range(5)], crs="EPSG:32650")
    borrower = aggregate_borrowers(frame, CONFIG).iloc[0]
    assert borrower["loan_limit"] == pytest.approx(CONFIG.credit.borrower_cap)
    assert borrower["decision"] == "refer" and borrower["decided_by"] == "P9"
    assert "BORROWER_CAP_REACHED" in borrower["reason"]
