"""Per-borrower totals: the sum of parcel limits under the borrower cap, and what drove it."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from farmcredit.config import Config
from farmcredit.reasons import EFFECT_RANK, REASONS, explain


def aggregate_borrowers(parcels: gpd.GeoDataFrame, config: Config) -> gpd.GeoDataFrame:
    """One row per borrower (parcels without a borrower id stand alone).

    The borrower's limit is the sum of its parcels' limits (declined and unassessable parcels
    give 0), capped at ``credit.borrower_cap``. Decision: ``refer`` if any parcel is referred,
    else ``approve`` if any parcel is approved and the total reaches ``credit.min_loan``
    (smallholders' parcels are small: the minimum applies to the borrower, not the parcel),
    else ``decline``. ``decided_by`` lists the parcels whose decision is the borrower's.
    """
    cap, minimum = config.credit.borrower_cap, config.credit.min_loan
    key = parcels["borrower_id"].where(parcels["borrower_id"].notna(), parcels["parcel_id"])
    rows = []
    geometries = []
    for borrower, group in parcels.groupby(key, sort=True):
        decisions = set(group["decision"])
        decision = "refer" if "refer" in decisions else "approve" if "approve" in decisions else "decline"
        total = float(group["loan_limit"].sum())
        codes = [c for text in group["reason"] for c in text.split(";") if c]
        if total > cap:
            codes.append("BORROWER_CAP_REACHED")
        if decision == "approve" and total < minimum:
            decision, total = "decline", 0.0
            codes.append("LIMIT_BELOW_MINIMUM")
        ranked = sorted(dict.fromkeys(codes), key=lambda c: EFFECT_RANK[REASONS[c].effect])
        rows.append(
            {
                "borrower_id": borrower,
                "n_parcels": len(group),
                "parcel_ids": ";".join(group["parcel_id"]),
                "declared_area_ha": float(np.nansum(group["declared_area_ha"])),
                "polygon_area_ha": float(np.nansum(group["polygon_area_ha"])),
                "cultivated_area_ha": float(np.nansum(group["cultivated_area_ha"])),
                "expected_revenue": float(np.nansum(group["expected_revenue"])),
                "loan_limit": min(total, cap),
                "decision": decision,
                "decided_by": ";".join(group.loc[group["decision"] == decision, "parcel_id"]) or "all",
                "reason": ";".join(ranked),
                "reason_text": explain(ranked),
            }
        )
        geometries.append(group.geometry.union_all() if group.geometry.notna().any() else None)
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geometries, crs=parcels.crs)
