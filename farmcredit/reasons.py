"""Reason codes: every per-parcel problem or limit adjustment, with a sentence a loan officer can read.

A code's ``effect`` says what it does to the case: ``error`` (the parcel could not be assessed),
``decline``, ``refer`` (a person must review), or ``info`` (it lowered or explains the limit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Effect = Literal["error", "decline", "refer", "info"]


@dataclass(frozen=True)
class Reason:
    """One reason code and what it means."""

    code: str
    effect: Effect
    sentence: str


_REASONS = (
    Reason("MISSING_PARCEL_ID", "error",
           "The parcel has no parcel id, so it was not assessed (nothing measured, no limit): 'row-' and its row's "
           "number in the file (row-5) stand in for the id in the outputs; give it its parcel id and run it again."),
    Reason("DUPLICATE_PARCEL_ID", "error", "Another parcel in the file has the same parcel id."),
    Reason("EMPTY_GEOMETRY", "error",
           "The parcel has no outline, or one that encloses no area (its vertices lie on one line, as a snap can "
           "collapse them) or that could not be read (WKT cut short or mistyped): redraw it."),
    Reason("NOT_A_POLYGON", "error", "The parcel geometry is not a polygon."),
    Reason("IMPOSSIBLE_COORDINATES", "error",
           "The parcel's coordinates are off the globe in the file's coordinate system, or not numbers (NaN, "
           "infinite); check the file's CRS and the parcel's vertices."),
    Reason("PARCEL_TOO_LARGE", "error",
           "The parcel's outline spans kilometres on the ground, more than any field: a vertex is likely mistyped or "
           "misplaced, so it was not measured; check its vertices on the map, which draws it as given."),
    Reason("PARCEL_TOO_SMALL", "error",
           "The parcel's outline encloses less than a square metre on the ground, smaller than any field: likely a "
           "stray click in the map, or coordinates in other units than the file's coordinate system, so it was not "
           "measured nor lent on; check its outline on the map, which draws it as given."),
    Reason("TOO_MANY_VERTICES", "error",
           "The parcel's outline has more vertices than any drawn or walked field needs (tens of thousands): it is "
           "likely generated or corrupted, so it was not measured; simplify the outline."),
    Reason("OUTSIDE_IMAGERY", "error", "The parcel lies outside the imagery for this season."),
    Reason("MEASUREMENT_FAILED", "error", "The imagery over the parcel could not be measured in this run; rerun it."),
    Reason("NO_CLEAR_OBSERVATIONS", "refer",
           "No image of the parcel this season is free of cloud and snow (snow is normal in winter over a winter "
           "crop, which is judged from its spring green-up)."),
    Reason("GEOMETRY_REPAIRED", "refer",
           "The drawn boundary crossed itself or its parts overlapped, and was repaired (overlaps taken once); check "
           "the outline."),
    Reason("PARTS_APART", "refer",
           "The parcel's outline is of parts further apart than one field's (parcels.max_part_gap_m, 100 m by "
           "default): fields of their own pledged as one, a weak one's health and yield averaged into the others'; "
           "draw each field as its own parcel."),
    Reason("BORROWER_ID_VARIANT", "refer",
           "The borrower id differs from another borrower's in this file only in case, width, Unicode form, blanks, "
           "invisible characters, look-alike letters (Cyrillic В for B), digits of another script or a number's "
           "leading zeros: one borrower or two? Its parcels are referred, as a doubted parcel under one "
           "would leave the other approved (a borrower is declined only where even as one they lend under the "
           "minimum loan); a person checks, and the file writes each borrower's id one way."),
    Reason("PARTLY_OUTSIDE_IMAGERY", "refer",
           "Part of the parcel lies outside the imagery: that part may be fallow or all crop, so the cultivated "
           "area's interval spans both."),
    Reason("MOSTLY_OUTSIDE_IMAGERY", "refer",
           "Too little of the parcel lies on the imagery (under half, by default: agronomy.min_share_on_imagery): "
           "the part unseen, fallow or all crop, could turn any decision, so none is made on the part seen; a person "
           "decides, and no limit is offered until then."),
    Reason("FEW_CLEAR_OBSERVATIONS", "refer",
           "Too few clear images this season to judge the crop (clouds, snow, or a season of few dates; a winter "
           "crop under snow is judged from its spring green-up)."),
    Reason("SEASON_MISSES_CROP", "refer",
           "No crop shows on the parcel, but no image free of cloud and snow reads it bare while its declared crop "
           "(any crop, where none is declared) is green (none falls then, or the ones that do read a crop): it may be "
           "sown after the season's images or harvested before them, or seen only as it greened."),
    Reason("PEAK_NOT_OBSERVED", "refer",
           "No cloud-free image falls in the weeks its crop is greenest, so its peak was not seen: health and yield "
           "are not rated from the paler weeks before or after (they would read low); a person checks the crop."),
    Reason("PERENNIAL_NOT_MEASURED", "refer",
           "The declared crop never drops to bare land in its configured season (its ndvi_template: tea, orchards, "
           "cane standing all year), and the cropland models find a crop by its rise from bare land: neither its area "
           "nor its crop can be measured from the imagery, which does not contradict it, so no limit is priced; a "
           "person checks the field."),
    Reason("AREA_OVERSTATED", "refer", "The declared area is well above the cultivated area seen from space."),
    Reason("INVALID_DECLARED_AREA", "refer",
           "The declared area (declared_area_ha, or declared_area_mu in 亩) is not a positive number (nor 0, read as "
           "none declared), so it could not be checked against the area seen from space: a person checks the "
           "declaration."),
    Reason("CROP_MISMATCH", "refer",
           "The crop seen from space differs from the declared crop, or land declared fallow is cropped."),
    Reason("UNCONFIRMED_DECLARED_CROP", "refer",
           "The declared crop is a name the configuration does not know, and the imagery shows a crop it prices: a "
           "person checks whether the name is that crop (then add it to the crop's aliases) or one not financed."),
    Reason("UNDETERMINED_DECLARED_CROP", "refer",
           "The declared crop is not one the configuration prices, and the imagery cannot tell which crop it is (its "
           "call is unsure): no limit is priced on a guess; a person checks what grows there."),
    Reason("CROP_NOT_RECOGNISED", "refer",
           "The season's greenness fits none of the configured crops' calendars (a crop the configuration lacks, or "
           "haze or cloud left in its images): a person checks what grows there."),
    Reason("IMAGERY_READ_ERROR", "info", "An image date could not be read for this parcel and was skipped."),
    Reason("MISSING_BORROWER_ID", "info",
           "The parcel has no borrower id; it is lent as a borrower of its own (its own cap and minimum loan): give it "
           "its borrower's id to lend it with that borrower's other parcels."),
    Reason("DECLARED_AREA_ZERO", "info",
           "The declared area is 0, as a Shapefile (which cannot leave a number blank) and many exports write an area "
           "not declared: it is read as none declared, so no area is checked against the imagery."),
    Reason("AREA_UNDERSTATED", "info", "The declared area is well below the cultivated area seen from space."),
    Reason("UNKNOWN_REGION", "info", "The parcel's region has no prices of its own in the configuration; the "
           "national prices and costs apply."),
    Reason("UNKNOWN_DECLARED_CROP", "info", "The declared crop is not one the configuration prices."),
    Reason("FEW_PEERS", "info", "Too few similar parcels in this run to judge health against peers; the risk grade "
           "takes its health as average."),
    Reason("NO_LIMIT", "refer", "No loan limit could be worked out (its arithmetic says what is missing): a person "
           "decides."),
    Reason("DECLARED_AREA_RISK", "refer",
           "The declared area, above what the imagery shows, alone put the risk over the cut; review the "
           "declaration."),
    Reason("DECLARED_AREA_UNDER_MINIMUM", "refer",
           "Declared areas above what the imagery shows lowered the risk grade of the borrower's parcels, and that "
           "alone put its limit under the smallest loan offered; review the declarations."),
    Reason("AREA_UNCERTAIN", "refer",
           "The cultivated area's interval reaches from not cultivated to fully cultivated: the imagery does not know "
           "the area, and the parcel would be declined on its estimate but not at the interval's top (the limit's "
           "arithmetic gives both); it is referred: a person reviews the field."),
    Reason("REGION_UNLIKE_NEIGHBOURS", "refer",
           "The parcel names a region other than the one over half of the other borrowers' parcels near it name "
           "(credit.region_check_m, 1,000 m by default), or none, and its region's prices (the national ones where it "
           "names none the config prices) lend it more than theirs would: a review confirms its region before it is "
           "lent on at them."),
    Reason("PARCEL_OVERLAP", "refer", "The parcel overlaps another pledged parcel: the same land counted twice."),
    Reason("NOT_CULTIVATED", "decline", "Little or none of the parcel is cultivated this season."),
    Reason("HIGH_RISK", "decline", "The estimated chance of default is above what the product accepts."),
    Reason("ZERO_LIMIT", "decline", "The harvest this parcel supports leaves nothing to lend once its costs are met."),
    Reason("LIMIT_BELOW_MINIMUM", "decline", "The borrower's supported limit is below the smallest loan offered."),
    Reason("LOW_HEALTH_VS_PEERS", "info",
           "The crop is less healthy than most parcels of the same crop assessed in this run: its peak greenness "
           "ranks under credit.low_health_index (25 of 100 by default) among them (among all the run's cropland "
           "parcels where its crop has too few)."),
    Reason("PARTLY_CULTIVATED", "info",
           "Only part of the parcel is cultivated (even the top of the cultivated area's interval is under 90% of "
           "the outline); a limit, where one is given, uses that part. An outline redrawn around the cultivated field "
           "alone is measured on that field, its idle land no longer counted against its risk grade."),
    Reason("COST_CEILING", "info", "The limit is held to the production cost of the cultivated area."),
    Reason("RISK_GRADE", "info", "The risk grade lowers the limit below what the harvest would repay."),
    Reason("CAP_REACHED", "info", "The limit is held to the product's per-parcel cap."),
    Reason("BORROWER_CAP_REACHED", "info", "The borrower's total is held to the per-borrower cap."),
    Reason("PARCEL_DECLINED", "info", "Declined for the reasons given in the parcel results, so nothing is added to "
           "the borrower's limit."),
)

REASONS: dict[str, Reason] = {reason.code: reason for reason in _REASONS}
EFFECT_RANK: dict[Effect, int] = {"error": 0, "decline": 1, "refer": 2, "info": 3}
# Referrals that doubt what the borrower declared (a parcel's area, its crop, land of its own), not what the imagery
# could judge: the doubt falls on the borrower's other declarations too, so it refers the borrower even where the
# parcel is declined for other reasons.
DOUBTS_DECLARATION = frozenset({"AREA_OVERSTATED", "CROP_MISMATCH", "UNCONFIRMED_DECLARED_CROP", "PARCEL_OVERLAP"})
# The codes of a risk grade that lowered a parcel's limit or declined it: they name the scorecard features that raised
# its PD most (``RiskModel.scores``).
RISK_FACTOR_CODES = frozenset({"RISK_GRADE", "HIGH_RISK"})


def sentence(code: str, factors: Sequence[str] = (), figures: Mapping[str, str] | None = None) -> str:
    """The loan-officer sentence of ``code``; a grade's (``RISK_FACTOR_CODES``) naming the parcel's principal risk
    ``factors`` (in words, largest first) where it has any; followed by its ``figures`` (by code) where given."""
    if factors and code in RISK_FACTOR_CODES:
        return f"{REASONS[code].sentence} Its risk was raised most by: {'; '.join(factors)}."
    return f"{REASONS[code].sentence} {figures[code]}" if figures and code in figures else REASONS[code].sentence


def explain(codes: list[str], factors: Sequence[str] = (), figures: Mapping[str, str] | None = None) -> str:
    """Return the loan-officer sentences for ``codes``, in order, as one string, a grade's naming ``factors``, each
    followed by its ``figures`` (by code) where given."""
    return " ".join(sentence(code, factors, figures) for code in codes)
