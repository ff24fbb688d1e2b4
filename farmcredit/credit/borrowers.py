"""Per-borrower totals: the sum of parcel limits under the borrower cap, and what drove it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmcredit.config import Config
from farmcredit.credit.limit import amounts, amounts_text, imagery_first, money, round_down
from farmcredit.parcels import id_key, quoted_ids
from farmcredit.reasons import DOUBTS_DECLARATION, EFFECT_RANK, REASONS, explain
from farmcredit.text import some

# The area columns summed per borrower: NaN, not 0, where no parcel declared an area or had its area measured.
_AREA_SUMS = ("declared_area_ha", "polygon_area_ha", "cultivated_area_ha", "expected_revenue")
# The borrower's own codes, of its total: no parcel carries them.
BORROWER_CODES = frozenset({"BORROWER_CAP_REACHED", "LIMIT_BELOW_MINIMUM", "DECLARED_AREA_UNDER_MINIMUM"})
_USED_COLUMNS = ("parcel_id", "borrower_id", "decision", "loan_limit", "honest_limit", "reason_all", "reason_amounts",
                 *_AREA_SUMS)
# Where each code stands in ``REASONS``: the last tie-break between a borrower's codes, which never looks at parcel ids.
_REASON_ORDER = {code: k for k, code in enumerate(REASONS)}


def aggregate_borrowers(parcels: gpd.GeoDataFrame, config: Config) -> gpd.GeoDataFrame:
    """One row per borrower; a parcel without a borrower id stands alone, its ``borrower_id`` left empty.

    The borrower's limit is the sum of its parcels' limits (declined and unassessable parcels give 0), capped at
    ``credit.borrower_cap`` and rounded down to ``credit.rounding_step`` (once, here: parcels keep their limits to the
    cent). Decision: ``refer`` if any parcel is referred, or is declined with a code that doubts the borrower's
    declarations (``DOUBTS_DECLARATION``: an area overstated, a crop mismatched, land pledged twice) while another is
    approved, else ``approve`` if any parcel is approved and the total reaches ``credit.min_loan`` (smallholders'
    parcels are small: the minimum applies to the borrower, not the parcel), else ``decline``; a borrower under the
    minimum is declined (``LIMIT_BELOW_MINIMUM``), unless its id is a variant of another borrower's
    (``BORROWER_ID_VARIANT``: referred, its own limit kept pending the review that says whether the two are one), or a
    referred parcel's limit is withheld, or its total with the
    limits of its parcels whose declarations worsened their grades taken declared honestly (``honest_limit`` for
    ``loan_limit``: all a review can add) reaches the minimum: then it is referred, offered 0 until a review adds to it
    (``DECLARED_AREA_UNDER_MINIMUM`` where only approved parcels' honest limits bring it there: their declarations,
    within AREA_OVERSTATED's allowance, alone put it under); ``limit_arithmetic`` spells it out. ``decided_by`` lists
    the parcels whose decision is the borrower's (a declined parcel that refers it by those doubts among them; the
    approved parcels with an honest limit too for ``DECLARED_AREA_UNDER_MINIMUM``). Parcels are taken in id order, so
    nothing depends on the order of the input rows. ``reason_all`` ranks the borrower's own codes (cap, minimum,
    declarations under the minimum), then those of the parcels that decided (of a declined parcel that refers the
    borrower, its doubts), then the others', each by effect with too little imagery first (as on a parcel), within an
    effect the code that took the most off the borrower's limit first (its parcels' ``reason_amounts`` summed), then the
    code more of the parcels have, then as a parcel ranks it, never by what the parcels are called (``_codes``); a code
    of another parcel graver than the borrower's decision (the decline of one parcel of an approved borrower) is given
    as ``PARCEL_DECLINED``, taking off what it took; the codes that only lowered a limit (``info``) come last, whichever
    parcels they come from, by what they took off (``_ranked``); ``reason`` and ``reason_text`` show the first
    ``credit.max_reasons``, the text naming the parcels a code comes from when not all have it. ``reason_amounts`` says
    what each of those codes took off the borrower's limit, as a parcel's does: the sum of what it took off each parcel
    (``PARCEL_DECLINED`` what the codes it stands for took), and the borrower's own codes what they took off the
    parcels' total: ``BORROWER_CAP_REACHED`` what was over the cap, ``LIMIT_BELOW_MINIMUM`` all the capped total it
    withheld, before rounding (its sentence gives that, rounded down, and the smallest loan). So the parcels' limits
    less the borrower's own codes' amounts are the limit offered, but for the rounding down to
    ``credit.rounding_step`` of a borrower lent to (under one step, in no code: ``limit_arithmetic`` shows each step).

    Borrowers come in id order, then the parcels alone in id order.
    """
    cap, minimum, step = config.credit.borrower_cap, config.credit.min_loan, config.credit.rounding_step
    unit = config.credit.currency
    parcels = parcels[[*_USED_COLUMNS, parcels.geometry.name]].sort_values("parcel_id", kind="stable")
    order, starts, ends = _borrower_order(parcels["borrower_id"])
    # Plain lists and arrays in borrower order: one borrower's parcels are the slice [start, end).
    ids = parcels["parcel_id"].to_numpy(dtype=object)[order].tolist()
    borrower_ids = parcels["borrower_id"].to_numpy(dtype=object)[order].tolist()
    alone = parcels["borrower_id"].isna().to_numpy()[order].tolist()
    decisions = parcels["decision"].to_numpy(dtype=object)[order].tolist()
    limits = parcels["loan_limit"].to_numpy(dtype=float)[order]
    honest_limits = parcels["honest_limit"].to_numpy(dtype=float)[order]
    codes = [text.split(";") for text in parcels["reason_all"].to_numpy(dtype=object)[order]]
    cuts = [amounts(text) for text in parcels["reason_amounts"].to_numpy(dtype=object)[order]]
    totals = [round(total, 2) for total in _sums(limits, starts, ends)]
    area_sums = {name: _sums(parcels[name].to_numpy(dtype=float)[order], starts, ends, min_count=1)
                 for name in _AREA_SUMS}
    # A referred parcel whose limit is withheld (a referral at 0, no honest limit) may add anything once cleared. What
    # the borrowers a reader takes for one (``id_key``) could be lent as one: at most their limits together, each
    # parcel's declared honestly where that is more, and anything where one's limit is withheld.
    held = np.isnan(honest_limits) & (limits == 0) & (np.asarray(decisions, dtype=object) == "refer")
    most, counted = (np.concatenate([[0], np.cumsum(column)]) for column in (
        np.nan_to_num(np.fmax(limits, honest_limits)), held))
    at_most, withholding = (most[ends] - most[starts]).tolist(), (counted[ends] > counted[starts]).tolist()
    spellings = _spellings(parcels["borrower_id"])
    keys = [None if alone[start] else id_key(str(borrower_ids[start])) for start in starts.tolist()]
    group_most: Counter[str] = Counter()
    group_withholding: set[str] = set()
    for key, most, withholds in zip(keys, at_most, withholding, strict=True):
        if key is not None:
            group_most[key] += most
            if withholds:
                group_withholding.add(key)
    limits = limits.tolist()
    rows = []
    for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        member_ids, member_decisions = ids[start:end], decisions[start:end]
        member_limits, member_codes, member_cuts = limits[start:end], codes[start:end], cuts[start:end]
        member_honest = honest_limits[start:end].tolist()
        # A parcel declined for its own reasons that also doubts the borrower's declarations (an area overstated)
        # refers a borrower its other parcels would approve: a person checks those parcels' declarations too.
        approved = "approve" in member_decisions
        doubted = approved and any(not DOUBTS_DECLARATION.isdisjoint(parcel) for parcel in member_codes)
        decision = "refer" if "refer" in member_decisions or doubted else "approve" if approved else "decline"
        total = totals[k]
        offered = round_down(min(total, cap), step)
        own = ["BORROWER_CAP_REACHED"] if total > cap else []
        # Declined under the minimum, no parcel's own decision is the borrower's: their total decides (all of them).
        deciding = [decides(d, parcel, decision) for d, parcel in zip(member_decisions, member_codes, strict=True)]
        # A referred parcel whose limit is withheld (too few clear images, land pledged twice, nothing measured, an
        # error) may add anything to the total once a person clears it; one lent on whose declaration worsened its
        # grade, its limit declared honestly for the one it has (so declaring more, within AREA_OVERSTATED's
        # allowance or over it, to grade E or to one that lends, never turns a decline into a referral); any other
        # referred with its limit adds nothing.
        members = list(zip(member_ids, member_limits, member_honest, member_decisions, strict=True))
        honestly = [(pid, limit, honest) for pid, limit, honest, _ in members if not np.isnan(honest)]
        withheld = withholding[k]
        # Approved parcels whose declarations, within the allowance, lowered their grades: no referral of a parcel
        # names them, so where what they add alone reaches the minimum, DECLARED_AREA_UNDER_MINIMUM does.
        approved_honestly = [d == "approve" and not np.isnan(honest) for _, _, honest, d in members]
        by_referrals = [(pid, limit, honest) for pid, limit, honest, d in members
                        if not np.isnan(honest) and d != "approve"]
        pending_by_referrals = withheld or _at_most(total, by_referrals, config) >= minimum
        pending = pending_by_referrals or _at_most(total, honestly, config) >= minimum
        # Its id a variant of another borrower's (BORROWER_ID_VARIANT): one borrower or two is for a person to say, so
        # the minimum is not applied to a part where the parts together may reach it; its own limit waits on that
        # review, as the code's text says. Where even together they fall short, the review can lend nothing.
        key = keys[k]
        doubted_id = any("BORROWER_ID_VARIANT" in parcel for parcel in member_codes)
        together = (key is not None and (key in group_withholding
                                          or round_down(min(group_most[key], cap), step) >= minimum))
        variant = decision == "refer" and doubted_id and together
        below = decision != "decline" and offered < minimum and (total > 0 or not pending) and not variant
        # What the borrower's own codes took off: the cap what was over it, the minimum what was left under it.
        taken_by_own = {"BORROWER_CAP_REACHED": round(total - cap, 2)} if total > cap else {}
        figures: dict[str, str] = {}  # what a code's sentence adds: its figures
        if doubted_id:
            figures["BORROWER_ID_VARIANT"] = _variant_figures(borrower_ids[start], spellings)
        if doubted_id and not together:
            figures["BORROWER_ID_VARIANT"] += (f" Even as one borrower with the others its limits are under the "
                                               f"smallest loan of {money(minimum)} {unit}: declined.")
        # Said where it has a limit of its own to wait (a withheld one may reach the minimum alone once reviewed).
        lent_together = variant and offered < minimum and total > 0 and not withheld
        if lent_together:
            figures["BORROWER_ID_VARIANT"] += (f" Alone its limit of {money(offered)} {unit} is under the smallest "
                                               f"loan of {money(minimum)} {unit}: it is lent only as one borrower with "
                                               "the others.")
        if below:
            # All the capped total, not its rounding down: the minimum is why none of it is lent.
            taken_by_own["LIMIT_BELOW_MINIMUM"] = round(min(total, cap), 2)
            # What a review of the declarations can lend, where that alone reaches the minimum (a limit withheld
            # beside may add anything: no figure says what).
            reviewed = _at_most(total, honestly, config) if honestly and not withheld else 0.0
            figures["LIMIT_BELOW_MINIMUM"] = _below_minimum_figures(min(total, cap), config,
                                                                    reviewed if reviewed >= minimum else None)
            offered = 0.0
            own.append("LIMIT_BELOW_MINIMUM")
        if below and not pending:
            decision = "decline"
            deciding = [False] * len(deciding)
        elif below and not pending_by_referrals:  # held open by declarations within the allowance alone
            decision = "refer"
            own.append("DECLARED_AREA_UNDER_MINIMUM")
            deciding = [decides(d, parcel, decision) or lent for d, parcel, lent in zip(
                member_decisions, member_codes, approved_honestly, strict=True)]
        ranked, taken = _ranked(own, *_split(member_codes, member_decisions, deciding, decision), member_cuts,
                                decision)
        shown = ranked[: config.credit.max_reasons]
        rows.append(
            {
                "borrower_id": None if alone[start] else borrower_ids[start],
                "n_parcels": end - start,
                "parcel_ids": ";".join(member_ids),
                **{name: sums[k] for name, sums in area_sums.items()},
                "loan_limit": offered,
                "limit_arithmetic": _arithmetic(member_ids, member_limits, total, config,
                                                decision if below else "variant" if lent_together else None, honestly),
                "decision": decision,
                # None of its parcels' own decisions is the borrower's: all of them decided, by their total.
                "decided_by": ";".join(pid for pid, d in zip(member_ids, deciding, strict=True) if d)
                or ";".join(member_ids),
                "reason": ";".join(shown),
                "reason_text": " ".join(_sentence(code, member_ids, member_decisions, member_codes)
                                        + figures.get(code, "") for code in shown),
                "reason_all": ";".join(ranked),
                "reason_amounts": amounts_text(ranked, {**{code: float(amount) for code, amount in taken.items()},
                                                        **taken_by_own}),
            }
        )
    geometries = _unions(parcels.geometry.to_numpy()[order], starts, ends)
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geometries, crs=parcels.crs)


def _spellings(borrower_ids: pd.Series) -> dict[str, list[str]]:
    """The borrower ids as written, by the id a reader takes them for (``id_key``), each list in id order."""
    written = sorted(borrower_ids.dropna().unique(), key=str)
    spellings: dict[str, list[str]] = {}
    for name in written:
        spellings.setdefault(id_key(str(name)), []).append(name)
    return spellings


def _variant_figures(borrower_id: str, spellings: dict[str, list[str]]) -> str:
    """The figures of a borrower's ``BORROWER_ID_VARIANT``: its id and the others of its group, as the file writes
    them (``quoted_ids``, so that blanks, case and Unicode form show).

    >>> _variant_figures("b0026", {"b0026": ["B0026", "b0026"]})
    " Its id 'b0026' beside the file's 'B0026'."
    """
    group = spellings.get(id_key(str(borrower_id)), [])
    if len(group) < 2:
        return ""
    quoted = dict(zip(group, quoted_ids(group), strict=True))
    others = " and ".join(quoted[name] for name in group if name != borrower_id)
    return f" Its id {quoted[borrower_id]} beside the file's {others}."


def decides(parcel_decision: str, parcel_codes: Iterable[str], decision: str) -> bool:
    """Whether a parcel of a borrower given ``decision`` is among those that decided it (``decided_by``): one of that
    decision, or for a referral one whose codes doubt the borrower's declarations, even if the parcel is declined."""
    return parcel_decision == decision or (decision == "refer" and not DOUBTS_DECLARATION.isdisjoint(parcel_codes))


def _borrower_order(borrower_ids: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions putting parcels (in id order) in borrower order; where each borrower's parcels start and end.

    Borrowers come by id, each with its parcels in the order given; then each parcel without a borrower id alone,
    in the order given, apart from every borrower (a borrower "3" is not parcel "3") and from a parcel of its id.
    """
    alone = borrower_ids.isna().to_numpy()
    borrower = np.empty(len(alone), dtype=np.intp)
    borrower[~alone], known = pd.factorize(borrower_ids.to_numpy(dtype=object)[~alone], sort=True)
    borrower[alone] = len(known) + np.arange(alone.sum())
    order = np.argsort(borrower, kind="stable")
    bounds = np.flatnonzero(np.diff(borrower[order], prepend=-1, append=-1))
    return order, bounds[:-1], bounds[1:]


def _sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray, min_count: int = 0) -> list[float]:
    """Each borrower's sum of its slice of ``values``, NaN skipped; NaN where fewer than ``min_count`` are numbers.

    The figures are added exactly as they print, then taken to the nearest float, so a sum is the same in any order
    and one figure is itself: added one by one in floating point, declared areas of 0.07 and 0.08 ha came to
    0.15000000000000002 ha, the last digits changing with the parcels' order (a total of limits off by its last bit
    could round to another cent).
    """
    present = ~np.isnan(values)
    exact = [Decimal(repr(value)) if known else Decimal(0) for value, known in zip(values.tolist(), present.tolist())]
    counted = np.concatenate([[0], np.cumsum(present)])
    return [float(sum(exact[start:end], Decimal(0))) if counted[end] - counted[start] >= min_count else float("nan")
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]


def _unions(geometries: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each borrower's parcel outlines merged (None where it has none), one GEOS call for all borrowers of a size."""
    sizes = ends - starts
    unions = np.empty(len(sizes), dtype=object)
    for size in np.unique(sizes):
        of_size = np.flatnonzero(sizes == size)
        unions[of_size] = shapely.union_all(geometries[starts[of_size, None] + np.arange(size)], axis=1)
    outlined = np.concatenate([[0], np.cumsum(~shapely.is_missing(geometries))])
    unions[outlined[ends] == outlined[starts]] = None
    return unions


def _at_most(total: float, honestly: list[tuple[str, float, float]], config: Config) -> float:
    """The most a review of the parcels whose declarations worsened their grades can lend the borrower: its
    parcels' ``total`` with each of those limits replaced by the one declared honestly (``honestly``: id, limit and
    limit declared honestly each), capped, rounded down."""
    added = sum((Decimal(repr(honest)) - Decimal(repr(limit)) for _, limit, honest in honestly), Decimal(repr(total)))
    return round_down(min(float(added), config.credit.borrower_cap), config.credit.rounding_step)


def _arithmetic(ids: list[str], limits: list[float], total: float, config: Config, below: str | None,
                honestly: list[tuple[str, float, float]]) -> str:
    """The borrower's limit as a loan officer follows it: its parcels' limits, the cap, the rounding, the minimum loan,
    each result in ``credit.currency`` and the arguments of a ``min`` apart by "; " (a comma groups thousands).

    ``total`` is the parcels' limits summed to the cent; ``below`` is the decision of a borrower whose total falls under
    the minimum loan, "variant" for a referred borrower whose id is a variant of another's (BORROWER_ID_VARIANT: the
    minimum waits on that review), else None; where the limit is under the minimum, the parcels lent on whose
    declarations worsened their grades (``honestly``: id, limit and limit declared honestly each) show what a review can
    lend, each limit taken off and the honest one added (a limit of 0 left out), also where all of them are 0 and the
    borrower, referred, is offered 0 with no minimum to name.
    """
    credit, unit = config.credit, config.credit.currency
    parts = " + ".join(f"{money(limit)} ({pid})" for pid, limit in zip(ids, limits, strict=True))
    capped = min(total, credit.borrower_cap)
    shown_total, shown_capped, cap = money(total), money(capped), f"cap {money(credit.borrower_cap)}"
    steps = [f"parcel limits = {parts} = {shown_total} {unit}",
             f"capped = min({shown_total}; {cap}) = {shown_capped} {unit}",
             f"rounded = round down {shown_capped} to a multiple of {money(credit.rounding_step)} = "
             f"{money(round_down(capped, credit.rounding_step))} {unit}"]
    if honestly and round_down(capped, credit.rounding_step) < credit.min_loan:  # what a review can bring it to
        added = " ".join((f"- {money(limit)} ({pid}) " if limit else "") + f"+ {money(honest)} ({pid})"
                         for pid, limit, honest in honestly)
        steps.append(f"declared honestly = round down min({shown_total} {added}; {cap}) to a multiple of "
                     f"{money(credit.rounding_step)} = {money(_at_most(total, honestly, config))} {unit}")
    minimum = f"under the minimum loan of {money(credit.min_loan)} {unit}"
    if below == "decline":
        steps.append(f"{minimum}: declined = 0 {unit}")
    elif below == "refer":
        steps.append(f"{minimum}: 0 unless a review adds to it")
    elif below == "variant" and round_down(capped, credit.rounding_step) < credit.min_loan:
        steps.append(f"{minimum}: pending a review of its id "
                     "(BORROWER_ID_VARIANT), lent only as one borrower with the other")
    return "; ".join(steps)


def _below_minimum_figures(supported: float, config: Config, reviewed: float | None = None) -> str:
    """The figures of a borrower's ``LIMIT_BELOW_MINIMUM``: what its parcels support (capped), that rounded down, and
    the smallest loan, in ``credit.currency``, as its ``reason_text`` adds them; for a referred borrower whose declared
    areas a review may clear, the most that review can lend (``reviewed``, ``_at_most``, where it reaches the minimum
    loan)."""
    credit, unit = config.credit, config.credit.currency
    review = f" A review of the declared areas can lend up to {money(reviewed)} {unit}." if reviewed is not None else ""
    return (f" Supported {money(supported)} {unit} (rounded down to a multiple of {money(credit.rounding_step)}: "
            f"{money(round_down(supported, credit.rounding_step))} {unit}); the smallest loan is "
            f"{money(credit.min_loan)} {unit}." + review)


def _codes(codes: list[list[str]], taken: Counter[str]) -> list[str]:
    """Every parcel's codes (``reason_all`` split), each once, ranked whatever the parcels are called: by effect, then
    the code that took the most off the borrower's limit (``taken``: what each took off these parcels, ``_taken_off``),
    then the code more of the parcels have, then the one a parcel ranks higher among its codes of that effect
    (costliest first: a borrower of one parcel ranks as it does), then in the order of ``REASONS``."""
    having = Counter(code for parcel in codes for code in parcel if code)
    place: dict[str, int] = {}
    for parcel in codes:
        of_effect: Counter[str] = Counter()
        for code in filter(None, parcel):
            effect = REASONS[code].effect
            place[code] = min(place.get(code, of_effect[effect]), of_effect[effect])
            of_effect[effect] += 1
    return sorted(having, key=lambda code: (EFFECT_RANK[REASONS[code].effect], -taken[code], -having[code],
                                            place[code], _REASON_ORDER[code]))


def _taken_off(codes: list[list[str]], cuts: list[dict[str, Decimal]]) -> Counter[str]:
    """What each code took off the borrower's limit, exact to the cent: the sum of what it took off each parcel of
    ``codes`` that has it (``cuts``: each parcel's ``reason_amounts`` read; a code took nothing where absent)."""
    taken: Counter[str] = Counter()
    for parcel, cut in zip(codes, cuts, strict=True):
        for code in filter(None, parcel):
            taken[code] += cut.get(code, Decimal(0))
    return taken


def _split(codes: list[list[str]], decisions: list[str], deciding: list[bool], decision: str
           ) -> tuple[list[list[str]], list[list[str]]]:
    """Each parcel's codes that decided the borrower's ``decision``, and its others: all of a deciding parcel of that
    decision, only its doubts of the borrower's declarations for a declined parcel that refers the borrower."""
    decided = [[] if not by else parcel if d == decision else [c for c in parcel if c in DOUBTS_DECLARATION]
               for parcel, d, by in zip(codes, decisions, deciding, strict=True)]
    return decided, [[c for c in parcel if c not in by] for parcel, by in zip(codes, decided, strict=True)]


def _ranked(own: list[str], deciding: list[list[str]], others: list[list[str]], cuts: list[dict[str, Decimal]],
            decision: str) -> tuple[list[str], Counter[str]]:
    """The borrower's codes, then the deciding parcels', then the other parcels' (each ranked by ``_codes``), each tier
    by effect with too little imagery first, as a parcel's are (a parcel referred by it leads with it, not with the
    decline it withheld); the other parcels' codes graver than ``decision`` as ``PARCEL_DECLINED`` (an approved
    borrower is not declined by them), which took off what they took. Last, the parcels' codes that only lowered the
    limit (``info``), whichever parcels they come from, the one that took the most off it first (``_taken_off``; on a
    tie, in the order of the tiers, ``PARCEL_DECLINED`` first among the others'). A declined borrower's codes that took
    nothing off its limit (a doubt on a parcel still lent on) come after its own and those that took something: clearing
    them would lend nothing more. A referred borrower under the minimum loan leads with why it is referred, then
    ``LIMIT_BELOW_MINIMUM``.

    Returns the codes ranked, and what each took off the borrower's limit (exact to the cent): each parcel's amount
    counted once, under the code it is given as (a code of another parcel graver than ``decision`` under
    ``PARCEL_DECLINED``, not under itself too, where a deciding parcel has it as well)."""
    gravest = EFFECT_RANK["info" if decision == "approve" else decision]
    of_deciding, of_others = _taken_off(deciding, cuts), _taken_off(others, cuts)
    others_ranked = _codes(others, of_others)
    graver = [code for code in others_ranked if EFFECT_RANK[REASONS[code].effect] < gravest]
    kept = [code for code in others_ranked if code not in graver]
    taken = of_deciding + Counter({code: amount for code, amount in of_others.items() if code not in graver})
    taken["PARCEL_DECLINED"] = sum((of_others[code] for code in graver), Decimal(0))
    tiers = (own, _codes(deciding, of_deciding), ["PARCEL_DECLINED", *kept] if graver else kept)
    ordered = list(dict.fromkeys(code for tier in tiers
                                 for code in imagery_first(sorted(tier, key=lambda c: EFFECT_RANK[REASONS[c].effect]))))
    lowered = [code for code in ordered if code not in own and REASONS[code].effect == "info"]
    ranked = [code for code in ordered if code not in lowered] + sorted(lowered, key=lambda code: -taken[code])
    if decision == "decline":  # what took part of the limit, not a doubt that took none (clearing it lends nothing)
        ranked = [*own, *sorted((code for code in ranked if code not in own), key=lambda code: not taken[code])]
    elif decision == "refer" and "LIMIT_BELOW_MINIMUM" in own:  # pending a review: why first, then the minimum
        ranked = [*(code for code in ranked if code != "LIMIT_BELOW_MINIMUM" and REASONS[code].effect != "info"),
                  "LIMIT_BELOW_MINIMUM", *(code for code in ranked if REASONS[code].effect == "info")]
    return ranked, taken


def reason_parcels(code: str, ids: list[str], decisions: list[str], codes: list[list[str]]) -> list[str]:
    """The parcels a borrower's reason ``code`` comes from (of ``ids``, the borrower's parcels in id order, with their
    ``decisions`` and ``reason_all`` codes): none for its own (``BORROWER_CODES``), the declined for
    ``PARCEL_DECLINED``, else those having the code.

    >>> reason_parcels("PARCEL_DECLINED", ["P1", "P2"], ["approve", "decline"], [[""], ["NOT_CULTIVATED"]])
    ['P2']
    """
    if code in BORROWER_CODES:
        return []
    if code == "PARCEL_DECLINED":
        return [pid for pid, decision in zip(ids, decisions, strict=True) if decision == "decline"]
    return [pid for pid, parcel in zip(ids, codes, strict=True) if code in parcel]


def _sentence(code: str, ids: list[str], decisions: list[str], codes: list[list[str]]) -> str:
    """The code's sentence, after the parcels it comes from when not every parcel of the borrower has it (``ids``,
    ``decisions`` and ``codes`` are the borrower's parcels')."""
    having = reason_parcels(code, ids, decisions, codes)
    if len(having) in (0, len(ids)):
        return explain([code])
    named = some(having)
    return f"Parcel {named}: {explain([code])}" if len(having) == 1 else f"Parcels {named}: {explain([code])}"
