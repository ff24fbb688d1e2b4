"""Per-parcel loan limit: repayment capacity vs a cost ceiling, health-scaled, capped, rounded.

limit = floor_to_step(min(parcel_cap,
            min(advance_rate * area * yield_p10 * price * haircut, cost_per_ha * area * factor)
            * health_factor))

Every input enters with a non-negative sign, so the limit never falls when cultivated area,
yield or health rise; decisions only add reasons, they never lower a limit.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from farmcredit.agronomy.signals import FALLOW, UNKNOWN
from farmcredit.config import Config
from farmcredit.reasons import EFFECT_RANK, REASONS, explain

KG_PER_TONNE = 1000.0


def assign_limits(parcels: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Add the credit columns to a frame of per-parcel signals.

    Expects the columns of ``derive_signals`` plus ``declared_crop``, ``declared_area_ha`` and
    ``reasons`` (list of codes per parcel). Returns a copy with ``expected_revenue``,
    ``loan_limit``, ``limit_arithmetic``, ``risk_grade``, ``decision``, ``status``, ``reason``
    (codes ranked by effect, ``;``-separated) and ``reason_text``.
    """
    credit = config.credit
    out = parcels.copy()
    rows = []
    for row in out.itertuples(index=False):
        codes = list(row.reasons) + _data_checks(row, config)
        limit, steps, limit_codes = _limit(row, config)
        codes += limit_codes
        codes = _rank(codes)
        effects = {REASONS[c].effect for c in codes}
        if "error" in effects:
            decision, status = "refer", "error"
        elif "decline" in effects:
            decision, status = "decline", "flagged"
        elif "refer" in effects:
            decision, status = "refer", "flagged"
        else:
            decision, status = "approve", "ok"
        if decision == "decline" or status == "error":
            limit = 0.0
        crop = config.crops.get(row.priced_crop)
        revenue = (
            row.cultivated_area_ha * row.yield_p50_t_ha * KG_PER_TONNE * crop.price if crop else float("nan")
        )
        rows.append(
            {
                "expected_revenue": revenue,
                "loan_limit": limit,
                "limit_arithmetic": steps,
                "risk_grade": _risk_grade(row, decision, status),
                "decision": decision,
                "status": status,
                "reason": ";".join(codes),
                "reason_text": explain(codes),
            }
        )
    credit_columns = pd.DataFrame(rows, index=out.index)
    out[credit_columns.columns] = credit_columns
    out.attrs["currency"] = credit.currency
    return out


def _data_checks(row: object, config: Config) -> list[str]:
    """Declared area and crop against what the imagery shows."""
    codes = []
    low, high = config.credit.declared_area_band
    declared = row.declared_area_ha
    if np.isfinite(declared) and np.isfinite(row.cultivated_area_ha):
        if declared > high * max(row.cultivated_area_high_ha, 0.0):
            codes.append("AREA_OVERSTATED")
        elif declared < low * row.cultivated_area_low_ha:
            codes.append("AREA_UNDERSTATED")
    said = row.declared_crop
    seen = row.crop
    if (
        isinstance(said, str)
        and seen not in (FALLOW, UNKNOWN)
        and row.crop_confidence >= config.agronomy.crop_min_confidence
        and said != seen
    ):
        codes.append("CROP_MISMATCH")
    if row.crop == FALLOW:
        codes.append("NOT_CULTIVATED")
    elif row.cultivated_fraction < 0.9:
        codes.append("PARTLY_CULTIVATED")
    return codes


def _limit(row: object, config: Config) -> tuple[float, str, list[str]]:
    """The limit (currency units), its arithmetic as text, and the codes that lowered it."""
    credit = config.credit
    crop = config.crops.get(row.priced_crop)
    area = row.cultivated_area_ha
    if crop is None or not (np.isfinite(area) and np.isfinite(row.yield_p10_t_ha)):
        return 0.0, "no limit: no cultivated area, crop or yield could be measured", []
    codes = []
    revenue_p10 = area * row.yield_p10_t_ha * KG_PER_TONNE * crop.price * credit.price_haircut
    capacity = credit.advance_rate * revenue_p10
    ceiling = crop.cost_per_ha * area * credit.cost_ceiling_factor
    base = min(capacity, ceiling)
    if ceiling < capacity:
        codes.append("COST_CEILING")
    health = row.health_index if np.isfinite(row.health_index) else 0.0
    health_factor = credit.health_floor_factor + (1 - credit.health_floor_factor) * min(health / 50.0, 1.0)
    if health < credit.low_health_index:
        codes.append("LOW_HEALTH_VS_PEERS")
    scaled = base * health_factor
    capped = min(scaled, credit.parcel_cap)
    if scaled > credit.parcel_cap:
        codes.append("CAP_REACHED")
    limit = math.floor(capped / credit.rounding_step) * credit.rounding_step
    steps = (
        f"revenue_p10 = {area:.4f} ha x {row.yield_p10_t_ha:.3f} t/ha x {KG_PER_TONNE:.0f} kg/t x "
        f"{crop.price} {credit.currency}/kg ({row.priced_crop}) x haircut {credit.price_haircut} = {revenue_p10:.0f}; "
        f"capacity = advance {credit.advance_rate} x {revenue_p10:.0f} = {capacity:.0f}; "
        f"cost ceiling = {crop.cost_per_ha} {credit.currency}/ha x {area:.4f} ha"
        f" x {credit.cost_ceiling_factor} = {ceiling:.0f}; "
        f"base = min = {base:.0f}; health factor {health_factor:.3f} (health {health:.1f}) -> {scaled:.0f}; "
        f"cap {credit.parcel_cap:.0f} -> {capped:.0f}; rounded down to {credit.rounding_step:.0f} -> {limit:.0f}"
    )
    return float(limit), steps, codes


def _rank(codes: list[str]) -> list[str]:
    """Unique codes ordered by effect (error, decline, refer, info), first occurrence kept."""
    unique = list(dict.fromkeys(codes))
    return sorted(unique, key=lambda code: EFFECT_RANK[REASONS[code].effect])


def _risk_grade(row: object, decision: str, status: str) -> str:
    """A-E: E for declined or unassessable; otherwise by health and observation depth."""
    if decision == "decline" or status == "error":
        return "E"
    health = row.health_index if np.isfinite(row.health_index) else 0.0
    if decision == "refer":
        return "D"
    if health >= 60:
        return "A"
    if health >= 40:
        return "B"
    return "C"
