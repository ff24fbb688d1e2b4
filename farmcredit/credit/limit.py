"""Per-parcel loan limit, risk grade, decision and ranked reasons.

limit = min(parcel_cap, min(repayment_capacity, cost ceiling) x m(grade))
repayment_capacity = advance_rate x area x margin   (as limit_arithmetic names it; area: the cultivated area, or
                                           with credit.lend_on_area: low the low end of its interval; a parcel
                                           without that low end gets no limit)
margin             = yield_p10 x price x haircut - other_cost_per_ha   (per hectare)
cost ceiling       = cost_per_ha x area x cost_ceiling_factor
grade              = the band of the risk model's probability of default (PD)

A declaration above the imagery's interval never declines a parcel on the PD it raised: graded to lend nothing, such
a parcel is declined only as an honest declaration would be (HIGH_RISK where its PD with the declaration taken as
honest is over the cut too, ZERO_LIMIT where that grade leaves nothing), else referred to a person, by AREA_OVERSTATED
where the area is far above the imagery's, else DECLARED_AREA_RISK; its PD, grade and limit stay as scored, its
arithmetic saying that honest PD. So declaring less never fares worse.

Nor is a parcel declined on an area its own interval does not know, one reaching from not cultivated (under
``agronomy.min_cultivated_fraction`` of the outline) to fully cultivated (``FULLY_CULTIVATED``): a decline
(``NOT_CULTIVATED``, ``HIGH_RISK``, ``ZERO_LIMIT``) stands there only where it would stand were the cultivated area at
the top of its interval (scored again there, declared honestly), else the parcel is referred, ``AREA_UNCERTAIN``, its
arithmetic naming the interval and what the top gets.

Each step works from the figures the one before shows (area to the square metre, 0.0001 ha; yield to the kilogram
per hectare; configured figures as written; amounts rounded down to the cent, the margin exact), so a loan officer
recomputing the arithmetic by hand reaches the limit to the cent. Area enters each amount once, so each rises with it
(revenue and other costs rounded apart could lose a cent where the margin is thin). Parcel limits are not rounded to
``rounding_step``: the borrower's total is (``aggregate_borrowers``), so a borrower of many small plots loses at most
one step, not one a plot.

Every term rises with cultivated area and yield, the PD never rises with area, yield or health (by the
scorecard's fixed signs), and worse grades never lend more, so the limit never falls when any of them rises.
Reasons only refer or decline; they never change it.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmcredit.agronomy.signals import FALLOW, UNKNOWN, declared_crop_ruled_out, never_bare
from farmcredit.config import UNMODELLED_SEASONS, Config, GradeBand
from farmcredit.credit.overlap import Overlaps, partners_text
from farmcredit.credit.risk import RiskModel
from farmcredit.parcels import usable_geometries
from farmcredit.reasons import EFFECT_RANK, REASONS, RISK_FACTOR_CODES, explain
from farmcredit.text import composed, folded, some

logger = logging.getLogger(__name__)

KG_PER_TONNE = 1000
CENT = Decimal("0.01")
# A parcel's status and decision, in the order counts list them.
STATUSES = ("ok", "flagged", "error")
DECISIONS = ("approve", "refer", "decline")
# Codes of too little imagery to judge: the parcel is referred, and its limit withheld, whatever else it has.
# A crop the cropland models cannot measure (PERENNIAL_NOT_MEASURED: it never drops to bare) is one of them.
# Too few clear dates to call what grows (a fallow call on them is no finding).
TOO_FEW = frozenset({"FEW_CLEAR_OBSERVATIONS", "NO_CLEAR_OBSERVATIONS"})
UNOBSERVED = frozenset({"FEW_CLEAR_OBSERVATIONS", "NO_CLEAR_OBSERVATIONS", "SEASON_MISSES_CROP", "PEAK_NOT_OBSERVED",
                        "MOSTLY_OUTSIDE_IMAGERY", "PERENNIAL_NOT_MEASURED"})
# Of those, the codes under which the imagery says nothing of how much is cultivated or how well (a season whose
# clear dates missed only the peak still measured the area): no finding on it is stated.
UNJUDGED = UNOBSERVED - {"PEAK_NOT_OBSERVED"}
# The share of its outline a parcel is cultivated at and not PARTLY_CULTIVATED.
FULLY_CULTIVATED = 0.9
# What ``credit.lend_on_area: low`` lends on, in words.
LOW_END = "low end of the cultivated area's interval"
# The steps of a parcel's limit_arithmetic, in order, each written "name = formula = result unit".
LIMIT_STEPS = ("margin_p10", "repayment_capacity", "cost_ceiling", "base", "graded", "capped", "loan_limit")
# Other borrowers' parcels naming a region within ``credit.region_check_m`` a parcel's region is checked against
# (REGION_UNLIKE_NEIGHBOURS): fewer say too little of where it lies.
REGION_MIN_NEIGHBOURS = 3
# Parcels whose neighbours are found at once: memory stays bounded however densely parcels lie.
REGION_QUERY_CHUNK = 10_000


@dataclass(frozen=True)
class LimitArithmetic:
    """The limit's steps (name, formula, value, unit) and what each lowering code cost (currency); without steps, why
    there is no limit."""

    steps: tuple[tuple[str, str, float, str], ...]
    lowered_by: dict[str, float]
    missing: str = ""

    @property
    def limit(self) -> float:
        return self.steps[-1][2] if self.steps else 0.0

    @property
    def limit_words(self) -> str:
        """The limit worked out with its currency, as the steps end (2,678.40 CNY); only where there are steps."""
        return f"{money(self.limit)} {self.steps[-1][3]}"

    def text(self, offered: float, why: str = "") -> str:
        """One line a loan officer can follow, ending at the ``offered`` limit and ``why`` when given (the decision
        that withholds the one worked out); without steps, why there is none, and ``why``. Each result is in its
        unit, the arguments of a ``min`` apart by "; " (a comma groups thousands), as a borrower's arithmetic writes
        them."""
        if not self.steps:
            return f"no limit: {self.missing} ({why})" if why else f"no limit: {self.missing}"
        steps = [f"{name} = {formula} = {money(value)} {unit}" for name, formula, value, unit in self.steps]
        ending = f"loan_limit = {money(offered)} {self.steps[-1][3]}"
        return "; ".join([*steps, f"{ending} ({why})" if why else ending])


def money(amount: float | Decimal) -> str:
    """An amount with thousands separators, its cents shown only when it has some (finer digits only when it has
    them: a configured cost of 1,200.555)."""
    exact = _exact(amount)
    if exact == exact.to_integral_value():
        return f"{exact:,.0f}"
    return f"{exact:,.2f}" if exact == exact.quantize(CENT) else f"{exact.normalize():,f}"


def _exact(value: float | Decimal) -> Decimal:
    """A figure as it prints: 2.4 is 2.4, not the binary fraction nearest it."""
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def _cents(amount: Decimal) -> Decimal:
    """An amount rounded down to the cent."""
    return amount.quantize(CENT, rounding=ROUND_FLOOR)


def assign_limits(
    parcels: pd.DataFrame, config: Config, risk_model: RiskModel, overlaps: Overlaps | None = None,
    outlines: np.ndarray | None = None,
) -> pd.DataFrame:
    """Add PD, grade, limit, decision and reasons to a frame of per-parcel signals.

    Args:
        parcels: the columns of ``derive_signals`` plus ``parcel_id``, ``declared_crop``,
            ``declared_area_ha``, ``reasons`` (codes so far) and optionally ``region``.
        config: the run configuration.
        risk_model: gives each parcel's probability of default.
        overlaps: which parcels overlap which (any borrower's: pledged twice, or counted twice in one total).
        outlines: the parcels' polygons in a projected CRS in metres (the imagery's; None where unusable), in their
            order: a parcel naming a region (or none) unlike its neighbours' (``neighbour_regions``) is referred
            REGION_UNLIKE_NEIGHBOURS where its region's prices lend it more; none checked without them.

    Returns:
        A copy with ``probability_of_default``, ``risk_grade``, ``loan_limit``, ``limit_arithmetic``,
        ``honest_limit`` (of a parcel approved, or referred with its limit not held, whose declaration worsened its
        grade: its limit at the grade declared honestly, on the area measured; NaN on every other),
        ``expected_revenue``, ``decision``,
        ``status``, ``reason`` (the top ``max_reasons`` codes, most serious and costliest first), ``reason_text``,
        ``reason_all`` and ``reason_amounts`` (what each code took off the limit: ``amounts_text``; the code that
        withheld a limit worked out, all of it).
    """
    credit = config.credit
    out = parcels.copy()
    # Too little imagery to judge (a referral): no PD is guessed from the few dates seen, so no grade either.
    unobserved_rows = out["reasons"].map(lambda codes: not UNOBSERVED.isdisjoint(codes)).to_numpy(dtype=bool)
    # FEW_PEERS says the grade takes health as average: of no parcel without a grade.
    out["reasons"] = [[code for code in codes if code != "FEW_PEERS"] if unobserved else codes
                      for codes, unobserved in zip(out["reasons"], unobserved_rows, strict=True)]
    # Each PD also with the declaration taken as honest: whether an overstated area's grade E rests on the declaration.
    scored, honestly_scored, factors, honest_factors = risk_model.scores(out)
    # Nor from an unsure call of a crop the declaration does not name (UNDETERMINED_DECLARED_CROP): a person checks
    # what grows there; graded on the call, one was declined HIGH_RISK on a maize grade at 0.48.
    ungraded = unobserved_rows | np.array([bool(_unsure_call(row, config)) for row in out.itertuples(index=False)],
                                          dtype=bool)
    probability, honest_probability = (np.where(ungraded, np.nan, pd_) for pd_ in (scored, honestly_scored))
    # And, where the cultivated area's interval reaches from not cultivated to fully, with the area at its top: whether
    # a decline rests on area the imagery cannot tell (scored for those rows alone: most have none).
    unknown_area = np.flatnonzero(_area_unknown(out, config) & ~unobserved_rows)
    at_top = _at_interval_top(out.iloc[unknown_area])
    top_rows = dict(zip(unknown_area, at_top.itertuples(index=False), strict=True))
    top_probability = dict(zip(unknown_area, risk_model.probability_of_default(at_top) if len(at_top) else [],
                               strict=True))
    partners = overlaps.listed_ids(out["parcel_id"]) if overlaps is not None else [[] for _ in range(len(out))]
    n_partners = overlaps.counts() if overlaps is not None else np.zeros(len(out), dtype=np.int64)
    # Matched exactly but for the Unicode form a keyboard typed them in (``composed``), as the config's are.
    regions = np.array([composed(region) if isinstance(region, str) else region for region in out["region"]],
                       dtype=object) if "region" in out else np.full(len(out), None)
    warn_unpriced_regions(regions, config)
    borrowers = out["borrower_id"].to_numpy() if "borrower_id" in out else np.full(len(out), None)
    unlike = (neighbour_regions(regions, borrowers, outlines, config)
              if outlines is not None and config.regions and credit.region_check_m > 0 else {})
    relabelled = []
    warn_unknown_declared_crops(out["declared_crop"].to_numpy(), config)
    warn_perennial_crops(out["declared_crop"].to_numpy(), config)
    rows = []
    for k, row in enumerate(out.itertuples(index=False)):
        crop = config.crop(row.priced_crop, regions[k])
        band = _grade(probability[k], credit.grades)
        arithmetic = _limit(row, crop, band, config, unobserved_rows[k])
        codes = list(row.reasons) + _data_checks(row, config) + list(arithmetic.lowered_by)
        if n_partners[k]:
            codes.append("PARCEL_OVERLAP")
        own_region = regions[k] if isinstance(regions[k], str) and regions[k].strip() else None
        region_gain = (unlike[k].gain(row, own_region, arithmetic, band, config, unobserved_rows[k]) if k in unlike
                       else "")
        if region_gain:
            codes.append("REGION_UNLIKE_NEIGHBOURS")
            relabelled.append(f"{row.parcel_id} ({own_region or 'no region'} among {unlike[k].region})")
        scored_codes = _risk_codes(band, arithmetic)
        honest = HonestDeclaration.of(row, crop, probability[k], honest_probability[k], config, unobserved_rows[k])
        # Graded to lend nothing on a PD its declaration raised: decided as an honest declaration would be.
        risk_codes, declaration_holds = (honest.risk_codes(codes) if scored_codes and honest is not None
                                         else (scored_codes, ""))
        codes += risk_codes
        # A decline the top of the area's interval would not stand by is a person's to review (too little imagery
        # refers it anyway).
        uncertain = _area_uncertain(codes, row, top_rows[k], crop, top_probability[k], config) if k in top_rows else ""
        if uncertain:
            codes = [code for code in codes if REASONS[code].effect != "decline"] + ["AREA_UNCERTAIN"]
        if arithmetic.missing and all(REASONS[code].effect == "info" for code in codes):
            codes.append("NO_LIMIT")  # else approved at 0; a refer, decline or error already says why there is none
        ranked = _rank(codes, arithmetic.lowered_by)
        decision, status = _decide(ranked)
        unobserved = bool(UNOBSERVED & set(ranked))
        if unobserved and decision == "decline":
            decision = "refer"  # too little imagery to judge: a person decides, the model does not guess
        ranked = imagery_first(ranked)
        # Land pledged twice is lent on once a person has seen whose it is: both pledges' limits would count it.
        held = unobserved or "PARCEL_OVERLAP" in ranked
        limit = arithmetic.limit if decision == "approve" or (decision == "refer" and not held) else 0.0
        # What withheld the limit worked out, or, with none to work out, the too little imagery that may be why.
        withheld = limit != arithmetic.limit or (arithmetic.missing and unobserved)
        withheld_code = _withheld_by(ranked, decision) if withheld else ""
        why = f"{decision}: {withheld_code}" if withheld else ""
        # The code that withheld the limit worked out took all of it off, so it leads its effect, as the costliest
        # does (land pledged twice before an overstated area it is referred for too).
        cuts = dict(arithmetic.lowered_by)
        # A grade that lends nothing took what the harvest would repay, not a lower grade: the decline, or the
        # declaration that alone graded it so (a referral), holds the limit, and RISK_GRADE, left taking nothing, is
        # no reason (it pushed those that were out of the ones shown).
        grade_holds = ("HIGH_RISK" if "HIGH_RISK" in ranked else
                       "AREA_UNCERTAIN" if uncertain and band is not None and band.multiplier == 0.0 else
                       declaration_holds)
        if grade_holds:
            cuts[grade_holds] = cuts.pop("RISK_GRADE", 0.0)
            ranked = [code for code in ranked if code != "RISK_GRADE"]
        if limit < arithmetic.limit:
            cuts[withheld_code] = arithmetic.limit - limit
        # A declined parcel names first what took its limit: a code that took nothing says nothing of why.
        ranked = imagery_first(_rank(ranked, cuts, by_amount=decision == "decline"))
        if uncertain:
            why = f"{decision}: AREA_UNCERTAIN, {uncertain}"
        elif scored_codes and honest is not None:  # graded to lend nothing: say what an honest declaration gets
            why = f"{decision}: {ranked[0]}, " + honest.text(scored_codes[0], not declaration_holds,
                                                             "PARCEL_OVERLAP" in ranked)
        # What a review finding the declaration honest can lend a parcel lent on (approved, or referred with its limit
        # not held) whose declaration worsened its grade: within AREA_OVERSTATED's allowance too, so its borrower under
        # the minimum is referred as one declared over it is (declaring more never fares better).
        pending = (decision == "approve" or (decision == "refer" and not held)) and honest is not None
        # What raised the PD of a parcel its grade lowered or declined: named, with its own figures; of the PD declared
        # honestly where that is the one its decline rests on (its declaration raised nothing it is declined for).
        graded_on = honest_factors[k] if scored_codes and honest is not None and not declaration_holds else factors[k]
        named = [{"feature": feature, "value": round(value, 4), "points": round(points, 4),
                  "words": _factor_words(feature, row)}
                 for feature, value, points in graded_on] if RISK_FACTOR_CODES & set(ranked) else []
        words = [factor["words"] for factor in named]
        overlapping = partners_text(partners[k], n_partners[k])
        rows.append(
            {
                "probability_of_default": probability[k],
                "risk_grade": band.grade if band is not None and status != "error" else None,
                "loan_limit": limit,
                "limit_arithmetic": arithmetic.text(limit, why),
                "honest_limit": honest.review_limit(band) if pending else np.nan,
                "expected_revenue": _expected_revenue(row, crop),
                "decision": decision,
                "status": status,
                "reason": ";".join(ranked[: credit.max_reasons]),
                "reason_text": explain(ranked[: credit.max_reasons], words,
                                       {"PARCEL_OVERLAP": f"It overlaps {overlapping}.",
                                        "REGION_UNLIKE_NEIGHBOURS": region_gain}),
                "reason_all": ";".join(ranked),
                "reason_amounts": amounts_text(ranked, cuts),
                "risk_factors": json.dumps(named),  # [] where none: JSON in every cell
                # Text for the tables; decisions.jsonl lists the ids, one of which may hold a ';'.
                "overlaps_parcels": overlapping,
            }
        )
    if relabelled:
        logger.warning("%d parcel(s) name a region other than the one named by over half of the other borrowers' "
                       "parcels naming a region within %g m (credit.region_check_m; %d or more of them; of all of "
                       "them, for a parcel naming none), or none, and "
                       "their region's prices (the national ones where they name none priced) lend them more: %s; "
                       "each is referred REGION_UNLIKE_NEIGHBOURS: confirm where it lies, and correct its region "
                       "column where it is wrong", len(relabelled),
                       credit.region_check_m, REGION_MIN_NEIGHBOURS, some(relabelled))
    credit_columns = pd.DataFrame(rows, index=out.index)
    out[credit_columns.columns] = credit_columns
    out.attrs["currency"] = credit.currency
    out.attrs["lend_on_area"] = credit.lend_on_area
    return out


@dataclass(frozen=True)
class NeighbourRegion:
    """The region over half of the other borrowers' parcels near a parcel name (of those naming one, where the parcel
    names one): ``count`` of their ``total``, within ``distance_m`` metres."""

    region: str
    count: int
    total: int
    distance_m: float

    def gain(self, row: object, own: str | None, arithmetic: LimitArithmetic, band: GradeBand | None,
             config: Config, unobserved: bool) -> str:
        """Why parcel ``row``, naming region ``own`` (None: none), is referred REGION_UNLIKE_NEIGHBOURS: both regions,
        and its limit (``arithmetic``, at grade ``band``) at its own region's prices (the national ones where it names
        none the config prices) against the one its neighbours' region's would give it; '' where that one is not
        lower (a region priced no higher gains the parcel nothing a review could take back: labelled wrongly, it
        costs only its borrower)."""
        theirs = _limit(row, config.crop(row.priced_crop, self.region), band, config, unobserved)
        if not arithmetic.limit > theirs.limit:
            return ""
        unit = config.credit.currency
        unpriced = "" if self.region in config.regions else " (which the config does not price: the national prices)"
        return (f"It {named_region_words(own, config)}, where {self.count} of the {self.total} other borrowers' "
                f"parcels {'' if own is None else 'naming a region '}within {self.distance_m:g} m name "
                f"{self.region!r}: so priced its limit is {arithmetic.limit_words}, in {self.region!r}{unpriced} "
                f"{money(theirs.limit)} {unit}.")


def named_region_words(region: str | None, config: Config) -> str:
    """What a parcel's ``region`` says of its prices, for a sentence on it ('names region 'xinyang''; 'names no
    region, so the national prices'; 'names region 'nanyang', which the config does not price: the national prices').
    """
    if region is None:
        return "names no region, so the national prices"
    if region not in config.regions:
        return f"names region {region!r}, which the config does not price: the national prices"
    return f"names region {region!r}"


def neighbour_regions(regions: np.ndarray, borrowers: np.ndarray, outlines: np.ndarray,
                      config: Config) -> dict[int, NeighbourRegion]:
    """Per parcel (by position; one naming no region too: it is priced nationally, maybe above its neighbours'
    region), the other region named by more than half of the other borrowers' parcels naming a region (of all of
    them, for a parcel naming none: where most name none too, a few naming one do not make it theirs) whose
    centroids lie within ``credit.region_check_m`` metres of its own, where ``REGION_MIN_NEIGHBOURS`` or more do;
    parcels whose neighbours name no one region so (a border's mix), or their own, are left out; none where the
    config prices no region the parcels name.

    Centroids go into a k-d tree (scipy's: twice as fast as shapely's STR-tree here), queried
    ``REGION_QUERY_CHUNK`` parcels at a time: time grows with the pairs of parcels within the distance, memory with
    the parcels and one chunk's pairs.

    Args:
        regions: each parcel's region (``composed``), None or blank where it names none.
        borrowers: each parcel's borrower id (NaN or None where it has none: a borrower of its own); a borrower's own
            parcels do not vouch for its region.
        outlines: the parcels' polygons in a projected CRS in metres (None where unusable).
        config: ``regions`` priced and ``credit.region_check_m``.
    """
    distance = config.credit.region_check_m
    present = np.flatnonzero(usable_geometries(np.asarray(outlines, dtype=object)))
    named = [region if isinstance(region, str) and region.strip() else None for region in regions[present]]
    codes, names = pd.factorize(pd.Series(named, dtype=object))
    region_codes = codes + 1  # 0: none named
    if present.size == 0 or not np.isin(names, list(config.regions)).any():
        return {}
    borrower_codes, _ = pd.factorize(pd.Series(borrowers[present], dtype=object))  # -1: none, never one's own
    points = shapely.get_coordinates(shapely.centroid(np.asarray(outlines, dtype=object)[present]))
    tree = cKDTree(points)
    n_regions = len(names) + 1
    found = {}
    for start in range(0, present.size, REGION_QUERY_CHUNK):
        chunk = np.arange(start, min(start + REGION_QUERY_CHUNK, present.size))
        near = tree.query_ball_point(points[chunk], r=distance, return_sorted=False)
        n_near = np.fromiter(map(len, near), dtype=np.int64, count=chunk.size)
        left = np.repeat(np.arange(chunk.size), n_near)
        right = np.concatenate(near).astype(np.int64) if n_near.sum() else np.zeros(0, dtype=np.int64)
        parcel = chunk[left]
        # A parcel naming a region is weighed against the neighbours naming one; one naming none against all (most
        # naming none too, a region named by a few is not theirs).
        others = ((right != parcel) & ((region_codes[right] > 0) | (region_codes[parcel] == 0))
                  & ((borrower_codes[right] != borrower_codes[parcel]) | (borrower_codes[parcel] < 0)))
        left, right = left[others], right[others]
        total = np.bincount(left, minlength=chunk.size)
        keys, counts = np.unique(left * n_regions + region_codes[right], return_counts=True)
        asker, region = keys // n_regions, keys % n_regions
        most = ((2 * counts > total[asker]) & (total[asker] >= REGION_MIN_NEIGHBOURS) & (region > 0)
                & (region != region_codes[chunk[asker]]))
        for k, code, count in zip(asker[most], region[most], counts[most], strict=True):
            found[int(present[chunk[k]])] = NeighbourRegion(names[code - 1], int(count), int(total[k]), distance)
    return found


def warn_unpriced_regions(regions: np.ndarray, config: Config) -> None:
    """Warn when the config prices regions but parcels name others (matched exactly, as ``_data_checks`` matches:
    河南省驻马店市 is not 驻马店市), with their count and names, and those that differ from a configured one only in
    case, width or outer blanks (``folded``); or when no parcel names a region. Those parcels get the national prices,
    told only by the info code ``UNKNOWN_REGION``."""
    if not config.regions:
        return
    configured = some(list(map(repr, config.regions)))
    named = [region for region in regions if isinstance(region, str) and region.strip()]
    if not named:
        logger.warning("the config prices regions (%s), but no parcel names one (their region column): every parcel "
                       "gets the national prices (UNKNOWN_REGION)", configured)
        return
    unpriced = [region for region in named if region not in config.regions]
    if not unpriced:
        return
    distinct = list(dict.fromkeys(unpriced))
    by_key = {folded(name): name for name in config.regions}
    near = [f"{region!r} for {by_key[key]!r}" for region in distinct if (key := folded(region)) in by_key]
    if len(unpriced) == len(named):
        who, get = "no parcel's region is one the config prices", "every parcel gets"
    else:
        who = f"{len(unpriced)} of the {len(named)} parcels naming a region name one the config does not price"
        get = "they get"
    logger.warning("%s (its regions: %s; the parcels': %s), matched exactly: %s the national prices "
                   "(UNKNOWN_REGION)%s; write the parcels' region as the config names it, or the config's as the "
                   "parcels do", who,
                   configured, some(list(map(repr, distinct))), get,
                   f"; {some(near)} differ only in case, width or blanks" if near else "")


def warn_unknown_declared_crops(declared: np.ndarray, config: Config) -> None:
    """Warn once of the declared crops the config neither prices nor aliases (matched as ``Config.crop_named``
    matches: ignoring case, width and outer blanks), each with its count of parcels, the names the config knows, any
    close to it, and the fix: an alias or a crop. None of those parcels is priced on its declaration, which their
    codes alone told (UNCONFIRMED_DECLARED_CROP, UNDETERMINED_DECLARED_CROP, UNKNOWN_DECLARED_CROP). A blank or
    missing declaration, fallow (休耕) or unknown (未知) is no unknown name."""
    unknown: Counter[str] = Counter()
    spelt: dict[str, str] = {}  # a name's folded key -> its first spelling
    for name in declared:
        said = config.crop_named(name)
        if isinstance(said, str) and said.strip() and said != FALLOW and said not in config.crops:
            unknown[spelt.setdefault(folded(said), said)] += 1
    if not unknown:
        return
    known = config.crop_name_keys
    names = []
    for name, count in unknown.most_common():
        near = [f"{key!r}" + (f" ({known[key]})" if key != folded(known[key]) else "")
                for key in known if _near_spelling(folded(name), key)][:3]
        hint = ("; a season the packaged crops' templates do not model: a crop of its own, not an alias"
                if folded(name) in UNMODELLED_SEASONS else ("; close to " + ", ".join(near)) if near else "")
        names.append(f"{name!r} ({count} parcel(s){hint})")
    crops = ", ".join(crop + (f" ({', '.join(spec.aliases)})" if spec.aliases else "")
                      for crop, spec in config.crops.items())
    logger.warning("%d parcel(s) declare a crop the config neither prices nor aliases: %s; none is priced on its "
                   "declaration: each is referred, or judged on the imagery alone "
                   "(UNCONFIRMED_DECLARED_CROP, UNDETERMINED_DECLARED_CROP, UNKNOWN_DECLARED_CROP). The config "
                   "knows %s (aliases in brackets): add each name to the aliases of the crop it means "
                   "(crops.<crop>.aliases in --config), or give it a crop of its own (ndvi_template, yield_curve, "
                   "price, cost_per_ha, other_cost_per_ha; flooded and aliases if need be)", unknown.total(),
                   "; ".join(names), crops)


def _near_spelling(name: str, known: str) -> bool:
    """Whether ``name`` is ``known`` mistyped (both ``folded``): one letter added, dropped, changed or swapped with the
    next, the longer of the two having 5 letters or more ('whaet', 'soyabean', 'maiz' for maize); in Chinese, Japanese
    or Korean, whose one character is a word (早稻, early rice, is not 稻), one character changed on a name of 3 or
    more (冬小麥). 'cotton' is not 'corn'."""
    if name == known:
        return False
    if any(unicodedata.east_asian_width(char) in "WF" for char in name + known):
        return len(name) == len(known) >= 3 and sum(a != b for a, b in zip(name, known)) == 1
    if max(len(name), len(known)) < 5:
        return False
    if len(name) == len(known):
        apart = [k for k, (a, b) in enumerate(zip(name, known)) if a != b]
        return len(apart) == 1 or (len(apart) == 2 and apart[1] == apart[0] + 1
                                   and name[apart[0]] == known[apart[1]] and name[apart[1]] == known[apart[0]])
    short, long = sorted((name, known), key=len)
    return len(long) - len(short) == 1 and any(long[:k] + long[k + 1:] == short for k in range(len(long)))


def warn_perennial_crops(declared: np.ndarray, config: Config) -> None:
    """Warn once of the configured crops whose template never drops to bare (``never_bare``), each with its lowest
    NDVI and its count of parcels declaring it: the cropland models cannot measure them, so those parcels are referred
    (PERENNIAL_NOT_MEASURED) with no limit, not measured nor lent on, unless their readings contradict the crop. Only
    crops some parcel declares: a config's tea warned every run of 0 parcels."""
    counts = Counter(config.crop_named(name) for name in declared)
    perennials = [name for name, spec in config.crops.items() if counts[name] and never_bare(spec, config)]
    if not perennials:
        return
    crops = "; ".join(f"{name} (lowest {min(v for _, v in config.crops[name].ndvi_template):g}, {counts[name]} "
                      f"parcel(s))" for name in perennials)
    logger.warning("crops whose ndvi_template never drops to bare land (lowest NDVI over cropland_rule.minimum_max, "
                   "%g): %s. The cropland models find a crop by its rise from bare land, so they cannot measure "
                   "these: their parcels are referred (PERENNIAL_NOT_MEASURED) with no limit, not measured nor lent "
                   "on, unless their readings contradict the crop (bare where it would stand: CROP_MISMATCH)",
                   config.cropland_rule.minimum_max, crops)


def _data_checks(row: object, config: Config) -> list[str]:
    """Declared area and crop against what the imagery shows."""
    codes = []
    low, high = config.credit.declared_area_band
    slack = config.credit.declared_area_slack_ha
    declared = row.declared_area_ha
    # Bare land where the season never saw the crop green, a season of too few clear images, or the sliver of a parcel
    # mostly off the imagery, says nothing of how much is cultivated nor how well: one image of a maize field at its
    # peak called it not cultivated, one after harvest a wheat field's.
    judged = UNJUDGED.isdisjoint(row.reasons)
    said, seen = config.crop_named(row.declared_crop), row.crop  # 小麦 is wheat; 休耕, fallow
    # Land declared fallow declares its whole area, not an area cultivated: seen bare, it is the most honest of
    # declarations, not an overstated one.
    if judged and said != FALLOW and np.isfinite(declared) and np.isfinite(row.cultivated_area_ha):
        # Outside the interval by its share (declared_area_band) and by the slack alike: a tiny plot's honest
        # declaration, rounded to 0.01 ha, can be over 1.2 times its area.
        most, least = max(row.cultivated_area_high_ha, 0.0), row.cultivated_area_low_ha
        if declared > max(high * most, most + slack):
            codes.append("AREA_OVERSTATED")
        elif declared < min(low * least, least - slack):
            codes.append("AREA_UNDERSTATED")
    region = getattr(row, "region", None)
    if config.regions and not (isinstance(region, str) and composed(region) in config.regions):
        codes.append("UNKNOWN_REGION")  # matched exactly ('Henan' is not 'henan'); none given is none named
    confident = seen not in (FALLOW, UNKNOWN) and row.crop_confidence >= config.agronomy.crop_min_confidence
    if said == FALLOW:
        # A crop on land declared fallow is a crop the borrower says is not there: a person looks (no limit is priced
        # on an unsure call of it: ``_limit``).
        if judged and seen != FALLOW and np.isfinite(row.cultivated_fraction):
            codes.append("CROP_MISMATCH")
    elif isinstance(said, str) and said not in config.crops:
        # A name the config does not know, over a season confidently of a crop it prices: a crop it does not finance
        # (rice, where it lends on wheat alone) or one of its own by a name the aliases lack (winter wheat). A person
        # tells which; over an unsure call, which crop grows there too (no limit is priced on the call: ``_limit``).
        codes.append("UNCONFIRMED_DECLARED_CROP" if confident else
                     "UNDETERMINED_DECLARED_CROP" if _unsure_call(row, config) else "UNKNOWN_DECLARED_CROP")
    elif isinstance(said, str) and (
        (confident and said != seen)
        or declared_crop_ruled_out(row.declared_crop_probability, row.declared_crop_contradicted, config)
    ):
        codes.append("CROP_MISMATCH")
    if seen == FALLOW and judged:
        codes.append("NOT_CULTIVATED")
    elif judged and seen != FALLOW and _partly_cultivated(row):
        codes.append("PARTLY_CULTIVATED")
    if judged and row.health_index < config.credit.low_health_index:
        codes.append("LOW_HEALTH_VS_PEERS")
    return codes


def _partly_cultivated(row: object) -> bool:
    """Whether even the top of the parcel's cultivated area's interval is under ``FULLY_CULTIVATED`` of its outline:
    only then is it said to be partly cultivated (on the estimate, 18 of the 70 parcels of ``sample_tiles/`` told so
    were fully cultivated, their intervals' tops 90-100% of the outline)."""
    return bool(row.cultivated_area_high_ha < FULLY_CULTIVATED * row.polygon_area_ha)


def _unsure_call(row: object, config: Config) -> str:
    """Why the parcel's only crop to price, an unsure call (under ``agronomy.crop_min_confidence``: a summer crop's
    stays near 0.5), is not priced: its declaration names no crop the config prices (or fallow), so nothing confirms
    the call; '' where it is confident, or the declaration names a priced crop or none."""
    said = config.crop_named(row.declared_crop)
    if (not isinstance(said, str) or said in config.crops
            or not call_unsure(row.crop, row.crop_confidence, config.agronomy.crop_min_confidence)):
        return ""
    return (f"the declaration ({row.declared_crop}) names no crop the configuration prices, and the imagery's call "
            f"({row.crop}, confidence {row.crop_confidence:.2f}) is unsure")


def call_unsure(crop: object, confidence: float, min_confidence: float) -> bool:
    """Whether the imagery's call of a crop (not fallow or unknown) is unsure: under ``min_confidence``
    (``agronomy.crop_min_confidence``), or with no confidence given."""
    return crop not in (FALLOW, UNKNOWN) and not confidence >= min_confidence


def _season_missed(row: object, config: Config) -> str:
    """Why a parcel the cropland model calls fallow on a season none of whose clear dates read it bare in its crop's
    green weeks (``SEASON_MISSES_CROP``: none fell then, or those that did read a crop) has no limit: its declared
    crop's weeks (any crop's, where it declares none the config prices), not land where no crop grows."""
    said = config.crop_named(row.declared_crop)
    crop = f"the declared crop's ({said})" if said in config.crops else "any crop's"
    return f"no crop seen, but no clear date reads the land bare in {crop} green weeks"


def _grade(probability: float, grades: tuple[GradeBand, ...]) -> GradeBand | None:
    if not np.isfinite(probability):
        return None
    return next(band for band in grades if probability <= band.max_pd)


def _limit(row: object, crop: object, band: GradeBand | None, config: Config, unobserved: bool) -> LimitArithmetic:
    """The limit step by step, and the amount each lowering code took off (none graded on too little imagery,
    ``unobserved``)."""
    credit = config.credit
    # Lending on the low end, a parcel without one is not lent on at the estimate: it has no limit.
    low = credit.lend_on_area == "low"
    area, y10 = row.cultivated_area_low_ha if low else row.cultivated_area_ha, row.yield_p10_t_ha
    unsure_call = _unsure_call(row, config)
    # A low end of 0 ha on cultivated land (most of it off the imagery, or cells all between the cuts) is doubt, not
    # a harvest too small to lend on: referred with no limit, not declined ZERO_LIMIT.
    said = config.crop_named(row.declared_crop)
    missing = (f"the declared crop ({said}) never drops to bare land, so the imagery cannot measure it"
               if "PERENNIAL_NOT_MEASURED" in row.reasons else
               "no cultivated area could be measured" if not np.isfinite(row.cultivated_area_ha) else
               f"no {LOW_END} to lend on" if not np.isfinite(area) else
               f"the {LOW_END} is 0 ha" if low and round(area, 4) <= 0 < round(row.cultivated_area_ha, 4) else
               _season_missed(row, config) if crop is None and "SEASON_MISSES_CROP" in row.reasons else
               "too little clear imagery to tell what grows here" if crop is None and TOO_FEW & set(row.reasons) else
               f"no priced crop grows here ({row.priced_crop})" if crop is None else
               "no yield could be estimated" if not np.isfinite(y10) else
               unsure_call if unsure_call else
               "too little of it on the imagery to grade its risk" if "MOSTLY_OUTSIDE_IMAGERY" in row.reasons else
               "too little clear imagery to grade its risk" if unobserved else
               "no probability of default, so no risk grade" if band is None else "")
    if missing:
        return LimitArithmetic((), {}, missing)
    unit = credit.currency
    # As printed: area to the square metre, yield to the kilogram, configured figures as written; amounts in cents.
    area, y10 = Decimal(f"{area:.4f}"), Decimal(f"{y10:.3f}")
    # The area named where it is not the estimate, so the hand recomputation starts from the right figure.
    area_text = f"{area} ha ({LOW_END})" if low else f"{area} ha"
    price, haircut, advance = _exact(crop.price), _exact(credit.price_haircut), _exact(credit.advance_rate)
    cost, other_cost = _exact(crop.cost_per_ha), _exact(crop.other_cost_per_ha)
    factor, multiplier, parcel_cap = map(_exact, (credit.cost_ceiling_factor, band.multiplier, credit.parcel_cap))
    margin = y10 * Decimal(KG_PER_TONNE) * price * haircut - other_cost
    capacity = _cents(advance * max(area * margin, Decimal(0)))
    ceiling = _cents(cost * area * factor)
    base = min(capacity, ceiling)
    graded = _cents(base * multiplier)
    capped = min(graded, parcel_cap)
    steps = tuple((name, formula, float(value), per) for name, formula, value, per in (
        ("margin_p10", f"{y10} t/ha x {KG_PER_TONNE} kg/t x {price} {unit}/kg ({row.priced_crop}) x haircut "
                       f"{haircut} - {money(other_cost)} {unit}/ha other costs", margin, f"{unit}/ha"),
        ("repayment_capacity", f"advance {advance} x max(0, {area_text} x {money(margin)} {unit}/ha)", capacity,
         unit),
        ("cost_ceiling", f"{money(cost)} {unit}/ha x {area_text} x {factor}", ceiling, unit),
        ("base", f"min({money(capacity)}; {money(ceiling)})", base, unit),
        ("graded", f"{money(base)} x {multiplier} (grade {band.grade}, PD <= {band.max_pd})", graded, unit),
        ("capped", f"min({money(graded)}; parcel cap {money(parcel_cap)})", capped, unit),
    ))
    capacity, ceiling, base, graded = float(capacity), float(ceiling), float(base), float(graded)
    lowered = {}
    if ceiling < capacity:
        lowered["COST_CEILING"] = capacity - ceiling
    if band.multiplier < 1.0 and base > 0:
        lowered["RISK_GRADE"] = base - graded
    if graded > credit.parcel_cap:
        lowered["CAP_REACHED"] = graded - credit.parcel_cap
    return LimitArithmetic(steps, lowered)


def _risk_codes(band: GradeBand | None, arithmetic: LimitArithmetic) -> list[str]:
    """HIGH_RISK where the grade lends nothing, ZERO_LIMIT where one that lends leaves nothing to lend; none
    ungraded."""
    if band is None:
        return []
    if band.multiplier == 0.0:
        return ["HIGH_RISK"]
    return ["ZERO_LIMIT"] if arithmetic.steps and arithmetic.limit == 0.0 else []


def _area_unknown(parcels: pd.DataFrame, config: Config) -> np.ndarray:
    """Per parcel, whether its cultivated area's interval reaches from not cultivated (its low end under
    ``agronomy.min_cultivated_fraction`` of the outline) to fully cultivated (its top ``FULLY_CULTIVATED`` of it or
    more): the imagery does not know the area."""
    outline = parcels["polygon_area_ha"].to_numpy(dtype=float)
    low, top = (parcels[name].to_numpy(dtype=float) for name in ("cultivated_area_low_ha", "cultivated_area_high_ha"))
    with np.errstate(invalid="ignore"):
        return (low < config.agronomy.min_cultivated_fraction * outline) & (top >= FULLY_CULTIVATED * outline)


def _at_interval_top(parcels: pd.DataFrame) -> pd.DataFrame:
    """``parcels`` with each cultivated area (its estimate, low end and share of the outline) at the top of its
    interval, declared honestly (none declared): what the imagery cannot rule out, and nothing the declaration
    adds."""
    top = parcels["cultivated_area_high_ha"]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = top / parcels["polygon_area_ha"]
    return parcels.assign(cultivated_area_ha=top, cultivated_area_low_ha=top, cultivated_fraction=fraction,
                          declared_area_ha=np.nan)


def _area_uncertain(codes: list[str], row: object, top_row: object, crop: object, top_probability: float,
                    config: Config) -> str:
    """Why parcel ``row``'s declines (among ``codes``) rest on an area its interval does not know (``_area_unknown``):
    its interval, and that none of them stands with the cultivated area at its top (``top_row``, scored there at
    ``top_probability``): a grade that lends nothing or a limit of nothing (``_risk_codes``); '' where one does, a
    decline is of another kind, or there is none.

    Only so wide an interval: one a few points either side of an estimate near the PD's cut crosses it too, and a
    decline on the imagery's estimate is the model's to make (at the top, 16 of the 101 parcels the CNN declines over
    ``sample_tiles/``' full season would not stand, 9 of them fallow land declared cropped).
    """
    declines = [code for code in codes if REASONS[code].effect == "decline"]
    top, outline = top_row.cultivated_area_high_ha, top_row.polygon_area_ha
    if not declines or not set(declines) <= {"NOT_CULTIVATED", "HIGH_RISK", "ZERO_LIMIT"}:
        return ""
    band = _grade(top_probability, config.credit.grades)
    arithmetic = _limit(top_row, crop, band, config, False)
    if {"HIGH_RISK", "ZERO_LIMIT"} & set(declines) and _risk_codes(band, arithmetic):
        return ""
    at_top = (f"PD {top_probability:.4f}, grade {band.grade}, limit {arithmetic.limit_words}" if arithmetic.steps
              else f"cultivated at {top_row.cultivated_fraction:.0%} of the outline")
    return (f"cultivated {_ha(row.cultivated_area_ha)} ha, between {_ha(row.cultivated_area_low_ha)} and {_ha(top)} "
            f"ha of {_ha(outline)}: too uncertain to decline ({', '.join(declines)} on the estimate; at the top "
            f"{at_top}); review")


def _ha(area: float) -> str:
    """An area to the square metre, as the arithmetic prints it, without trailing zeros: 0.0402, 0."""
    return f"{round(area, 4):g}"


@dataclass(frozen=True)
class HonestDeclaration:
    """A parcel's PD, grade ``band`` and limit ``arithmetic`` (on the area measured) with its declaration taken as
    honest, where the declaration (an area above the imagery's interval) raised its PD.

    A declaration is a person's to check, not a decline on the PD it raised (declaring more must never fare better
    than declaring less): a parcel it graded to lend nothing is declined only as an honest declaration would be.
    """

    probability: float
    band: GradeBand
    arithmetic: LimitArithmetic

    @classmethod
    def of(cls, row: object, crop: object, probability: float, honest_probability: float, config: Config,
           unobserved: bool) -> HonestDeclaration | None:
        """Parcel ``row``'s, graded from ``honest_probability``, its limit as ``_limit`` works it out (``crop``,
        ``config``, ``unobserved``); None where that PD is not below the one scored (``probability``): the declaration
        raised nothing, or either is NaN."""
        if not honest_probability < probability:
            return None
        band = _grade(honest_probability, config.credit.grades)
        return cls(honest_probability, band, _limit(row, crop, band, config, unobserved))

    def risk_codes(self, codes: list[str]) -> tuple[list[str], str]:
        """The risk codes of a parcel the declaration graded to lend nothing, and the code the declaration alone holds
        it by ('' where none does): an honest declaration's (HIGH_RISK, ZERO_LIMIT), else a referral, graded as scored,
        by AREA_OVERSTATED where among its ``codes``, else DECLARED_AREA_RISK."""
        if honest_codes := _risk_codes(self.band, self.arithmetic):
            return honest_codes, ""
        holds = "AREA_OVERSTATED" if "AREA_OVERSTATED" in codes else "DECLARED_AREA_RISK"
        return [holds], holds

    def text(self, scored: str, declined: bool, overlapping: bool) -> str:
        """Why a parcel the declaration graded to lend nothing (``scored``: HIGH_RISK, ZERO_LIMIT) is declined so too
        (``declined``) or is not: this PD, grade and limit, a limit land pledged twice (``overlapping``) withholds
        until that is cleared."""
        graded = f"(declared_over_high 1): PD {self.probability:.4f}, grade {self.band.grade}"
        if declined:
            return f"declared honestly too {graded}"
        if not self.arithmetic.steps:
            return f"not {scored}: declared honestly {graded}"
        held = " once PARCEL_OVERLAP is cleared" if overlapping else ""
        return f"not {scored}: declared honestly {graded}, limit {self.arithmetic.limit_words}{held}"

    def review_limit(self, scored: GradeBand) -> float:
        """What a review of the declaration of a parcel lent on (approved, or referred with its limit not held) can
        lend: the limit at this grade, on the area measured (a review confirms at most that area, never the one
        declared), where it is better than the ``scored`` one; NaN where it is not, or this grade gives no limit."""
        return self.arithmetic.limit if self.arithmetic.steps and self.band.max_pd < scored.max_pd else np.nan


def _withheld_by(ranked: list[str], decision: str) -> str:
    """The code that withheld a limit: too little imagery (whatever else refers), else for a referral land pledged
    twice, else the most serious (a decline)."""
    if decision == "refer" and "PARCEL_OVERLAP" in ranked and not UNOBSERVED & set(ranked):
        return "PARCEL_OVERLAP"
    return next((code for code in ranked if code in UNOBSERVED), ranked[0])


def round_down(amount: float, step: float) -> float:
    """The largest multiple of ``step`` (whole cents) not above ``amount``, both taken as they print (in floating
    point 1072.5 / 0.1 is 10724.999..., and a tolerance fails at tens of millions)."""
    step_exact = _exact(step)
    return float((_exact(amount) / step_exact).to_integral_value(rounding=ROUND_FLOOR) * step_exact)


def _expected_revenue(row: object, crop: object) -> float:
    """Median revenue (currency): cultivated area x yield p50 x reference price."""
    if crop is None:
        return float("nan")
    return row.cultivated_area_ha * row.yield_p50_t_ha * KG_PER_TONNE * crop.price


def imagery_first(ranked: list[str]) -> list[str]:
    """``ranked`` with its codes of too little imagery (``UNOBSERVED``) moved first, the others' order kept: what
    refers a parcel its other codes would decline, and withholds its limit, leads; unchanged when ``ranked`` holds an
    error, which leads by effect."""
    if any(REASONS[code].effect == "error" for code in ranked):
        return ranked
    return sorted(ranked, key=lambda code: code not in UNOBSERVED)


def amounts_text(ranked: list[str], cuts: dict[str, float]) -> str:
    """What each of the ``ranked`` codes took off the limit (currency, to the cent), as ``CODE=amount`` joined by
    ``;`` in their order, the codes that took nothing left out: ``RISK_GRADE=139.68;COST_CEILING=20.50``."""
    return ";".join(f"{code}={cuts[code]:.2f}" for code in ranked if round(cuts.get(code, 0.0), 2) > 0)


def amounts(text: str) -> dict[str, Decimal]:
    """``amounts_text`` read back: each code and what it took off the limit, exact to the cent.

    >>> amounts("RISK_GRADE=139.68;HIGH_RISK=1200.00")
    {'RISK_GRADE': Decimal('139.68'), 'HIGH_RISK': Decimal('1200.00')}
    """
    return {code: Decimal(amount) for code, amount in (item.split("=") for item in text.split(";") if item)}


def _rank(codes: list[str], cost: dict[str, float], by_amount: bool = False) -> list[str]:
    """Unique codes, most serious effect first; within an effect, the costliest first. ``by_amount`` (a declined
    parcel): the codes that took something off the limit (to the cent) before those that took nothing, each by effect
    then cost, so a referral that took nothing (CROP_MISMATCH, correcting which changes nothing) does not lead the
    grade that took the limit."""
    unique = list(dict.fromkeys(codes))
    return sorted(unique, key=lambda code: (by_amount and round(cost.get(code, 0.0), 2) <= 0,
                                            EFFECT_RANK[REASONS[code].effect], -cost.get(code, 0.0)))


def _factor_words(feature: str, row: object) -> str:
    """A risk factor (a scorecard feature, ``FEATURE_DIRECTIONS``) in plain words with the parcel's own figure."""
    if feature == "relative_yield":
        return f"yield expected at {row.relative_yield:.2f} of a typical {row.priced_crop} season"
    if feature == "log_cultivated_area_ha":
        return f"a small plot, {row.cultivated_area_ha:.4g} ha cultivated"
    if feature == "cultivated_fraction":
        if _partly_cultivated(row) or not np.isfinite(row.cultivated_area_high_ha):
            return f"{row.cultivated_fraction:.0%} of the outline cultivated"
        # Its interval's top does not rule out a fully cultivated field (so no PARTLY_CULTIVATED): the share scored is
        # said to be the estimate it is.
        top = row.cultivated_area_high_ha / row.polygon_area_ha
        return f"an estimated {row.cultivated_fraction:.0%} of the outline cultivated (up to {top:.0%} by its interval)"
    if feature == "health_index":
        reference = getattr(row, "health_reference", "") or f"peak NDVI percentile among the {row.priced_crop} parcels"
        return f"health {row.health_index:.0f} of 100 ({reference})"
    if feature == "declared_over_high":
        mu = getattr(row, "declared_area_mu", np.nan)
        declared = (f"{mu:g} mu ({row.declared_area_ha:.4g} ha)" if isinstance(mu, float | int) and np.isfinite(mu)
                    else f"{row.declared_area_ha:.4g} ha")
        return f"{declared} declared, above the top of the interval measured ({row.cultivated_area_high_ha:.4g} ha)"
    return (f"an uneven crop, its NDVI varying by {row.ndvi_uniformity:.2f} (standard deviation) across its cropland "
            "at its peak")


def _decide(codes: list[str]) -> tuple[str, str]:
    """(decision, status) from the most serious code."""
    effects = {REASONS[c].effect for c in codes}
    if "error" in effects:
        return "refer", "error"
    if "decline" in effects:
        return "decline", "flagged"
    if "refer" in effects:
        return "refer", "flagged"
    return "approve", "ok"
