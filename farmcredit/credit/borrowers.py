"""Per-borrower totals: the sum of parcel limits under the borrower cap, and what drove it."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from farmcredit.config import Config
from farmcredit.credit.limit import money, round_down
from farmcredit.reasons import EFFECT_RANK, REASONS, explain
from farmcredit.text import some


def aggregate_borrowers(parcels: gpd.GeoDataFrame, config: Config) -> gpd.GeoDataFrame:
    """One row per borrower; a parcel without a borrower id stands alone, its ``borrower_id`` left empty.

    The borrower's limit is the sum of its parcels' limits (declined and unassessable parcels
    give 0), capped at ``credit.borrower_cap`` and rounded down to ``credit.rounding_step`` (once, here: parcels keep
    their limits to the cent). Decision: ``refer`` if any parcel is referred,
    else ``approve`` if any parcel is approved and the total reaches ``credit.min_loan``
    (smallholders' parcels are small: the minimum applies to the borrower, not the parcel),
    else ``decline``; a borrower under the minimum is declined (``LIMIT_BELOW_MINIMUM``), unless a referred
    parcel's limit is withheld: then it stays referred, offered 0 until the referral adds to it;
    ``limit_arithmetic`` spells it out. ``decided_by`` lists the parcels whose decision is the
    borrower's. Parcels are
    taken in id order, so nothing depends on the order of the input rows. ``reason_all`` ranks the
    borrower's own codes (cap, minimum), then those of the parcels that decided, then the others', each
    by effect, a code of another parcel graver than the borrower's decision (the decline of one parcel of an approved
    borrower) given as ``PARCEL_DECLINED``; ``reason`` and ``reason_text`` show the first ``credit.max_reasons``, the
    text naming the parcels a code comes from when not all have it.
    """
    cap, minimum, step = config.credit.borrower_cap, config.credit.min_loan, config.credit.rounding_step
    parcels = parcels.sort_values("parcel_id", kind="stable")
    alone = parcels["borrower_id"].isna()
    # A parcel alone keys on its place in id order, apart from every borrower id (a borrower "3" is not parcel "3")
    # and from a parcel of the same id (a duplicate).
    place = pd.Series(range(len(parcels)), index=parcels.index, dtype=object)
    key = pd.Series(list(zip(alone, parcels["borrower_id"].where(~alone, place), strict=True)), index=parcels.index)
    rows = []
    geometries = []
    for (stands_alone, borrower), group in parcels.groupby(key, sort=True):
        decisions = set(group["decision"])
        decision = "refer" if "refer" in decisions else "approve" if "approve" in decisions else "decline"
        total = round(float(group["loan_limit"].sum()), 2)
        offered = round_down(min(total, cap), step)
        own = ["BORROWER_CAP_REACHED"] if total > cap else []
        # Declined under the minimum, no parcel's own decision is the borrower's: their total decides ("all").
        deciding = group["decision"] == decision
        # A referred parcel whose limit is withheld (too few clear images, land pledged twice, nothing measured, an
        # error) may add to the total once a person clears it; one referred with its limit (an overstated area) adds
        # nothing.
        pending = ((group["decision"] == "refer") & (group["loan_limit"] == 0)).any()
        below = decision != "decline" and offered < minimum and (total > 0 or not pending)
        if below:
            offered = 0.0
            own.append("LIMIT_BELOW_MINIMUM")
        if below and not pending:
            decision = "decline"
            deciding[:] = False
        ranked = _ranked(own, group[deciding], group[~deciding], decision)
        arithmetic = _arithmetic(group, config, decision if below else None)
        shown = ranked[: config.credit.max_reasons]
        rows.append(
            {
                "borrower_id": None if stands_alone else borrower,
                "n_parcels": len(group),
                "parcel_ids": ";".join(group["parcel_id"]),
                # NaN (not 0) when no parcel declared an area or had its area measured.
                "declared_area_ha": float(group["declared_area_ha"].sum(min_count=1)),
                "polygon_area_ha": float(np.nansum(group["polygon_area_ha"])),
                "cultivated_area_ha": float(group["cultivated_area_ha"].sum(min_count=1)),
                "expected_revenue": float(group["expected_revenue"].sum(min_count=1)),
                "loan_limit": offered,
                "limit_arithmetic": arithmetic,
                "decision": decision,
                "decided_by": ";".join(group.loc[deciding, "parcel_id"]) or "all",
                "reason": ";".join(shown),
                "reason_text": " ".join(_sentence(code, group, own) for code in shown),
                "reason_all": ";".join(ranked),
            }
        )
        geometries.append(group.geometry.union_all() if group.geometry.notna().any() else None)
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geometries, crs=parcels.crs)


def _arithmetic(group: pd.DataFrame, config: Config, below: str | None) -> str:
    """The borrower's limit as a loan officer follows it: its parcels' limits, the cap, the rounding, the minimum loan.

    ``below`` is the decision of a borrower whose total falls under the minimum loan, else None.
    """
    credit = config.credit
    parts = " + ".join(f"{money(limit)} ({pid})" for pid, limit in zip(group["parcel_id"], group["loan_limit"],
                                                                        strict=True))
    total = round(float(group["loan_limit"].sum()), 2)
    capped = min(total, credit.borrower_cap)
    steps = [f"parcel limits = {parts} = {money(total)}",
             f"capped = min({money(total)}, {money(credit.borrower_cap)}) = {money(capped)}",
             f"rounded = round down {money(capped)} to a multiple of {money(credit.rounding_step)} = "
             f"{money(round_down(capped, credit.rounding_step))}"]
    if below == "decline":
        steps.append(f"under the minimum loan of {money(credit.min_loan)}: declined = 0")
    elif below == "refer":
        steps.append(f"under the minimum loan of {money(credit.min_loan)}: 0 unless the referred parcels add to it")
    return "; ".join(steps)


def _codes(group: pd.DataFrame) -> list[str]:
    """Every parcel's codes in order (``reason_all``), each once."""
    return list(dict.fromkeys(code for text in group["reason_all"] for code in text.split(";") if code))


def _ranked(own: list[str], deciding: pd.DataFrame, others: pd.DataFrame, decision: str) -> list[str]:
    """The borrower's codes, then the deciding parcels', then the other parcels', each tier by effect; the other
    parcels' codes graver than ``decision`` as ``PARCEL_DECLINED`` (an approved borrower is not declined by them)."""
    gravest = EFFECT_RANK["info" if decision == "approve" else decision]
    kept = [code for code in _codes(others) if EFFECT_RANK[REASONS[code].effect] >= gravest]
    graver = len(kept) < len(_codes(others))
    tiers = (own, _codes(deciding), ["PARCEL_DECLINED", *kept] if graver else kept)
    ordered = (code for tier in tiers for code in sorted(tier, key=lambda c: EFFECT_RANK[REASONS[c].effect]))
    return list(dict.fromkeys(ordered))


def _sentence(code: str, group: pd.DataFrame, own: list[str]) -> str:
    """The code's sentence, after the parcels it comes from when not every parcel of the borrower has it."""
    if code in own:
        return explain([code])
    if code == "PARCEL_DECLINED":
        having = list(group.loc[group["decision"] == "decline", "parcel_id"])
    else:
        having = [pid for pid, text in zip(group["parcel_id"], group["reason_all"], strict=True)
                  if code in text.split(";")]
    if len(having) == len(group):
        return explain([code])
    named = some(having)
    return f"Parcel {named}: {explain([code])}" if len(having) == 1 else f"Parcels {named}: {explain([code])}"
