"""From per-date parcel statistics to agronomic signals: the transparent v1 rules."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from farmcredit.agronomy.measurements import ParcelMeasurements
from farmcredit.config import FALLOW, MIN_CROP_DATES, UNKNOWN, Config, CropConfig

# z of the 10th percentile of a normal distribution: p10 = p50 * (1 - Z10 * cv).
Z10 = 1.2815515655446004
# Spread of the template misfit (NDVI RMSE) that maps distances to crop confidences.
TEMPLATE_SIGMA = 0.05
# A paddy at transplanting: LSWI (= NDMI here) + 0.05 >= EVI, or NDVI (Xiao et al. 2005).
FLOOD_MARGIN = 0.05
FLOOD_PENALTY = 0.1
# A parcel's NDVI curve may be a scaled copy of the template within these gains (weak crops).
MIN_GAIN, MAX_GAIN = 0.5, 1.5
# A clear date sees a crop's peak where its template reads at least this share of its peak NDVI, so the peak read
# is at most a tenth low (about 12% of maize's yield): wheat from day 102 to 136, maize 211-244, rice 212-244, soybean
# 214-249. Within agronomy.template_shift_days (15) of the template's peak instead, wheat seen on 5 May with its peak
# fitted to 19 April (the template still at 0.81 of 0.85) had none: 142 of sample_tiles/' 198 wheat parcels.
NEAR_PEAK = 0.9
# A slide of a crop's template that fits a parcel within this much of its best fit (NDVI RMSE) fits it about as well:
# a date sees the peak at a slide only where it is near the peak at every slide fitting that well. A few dates leave
# the slide loose: sample_tiles/' wheat P00293 on 4 dates (1 March, 20 May, 23 August, 27 October) fitted +15 days at
# 0.010 and on schedule at 0.026, so 20 May (day 141, after its peak: 0.91 of 5 May's NDVI on wheat clear on both)
# counted as near it and the field was approved on that reading; on 9 dates on schedule fitted best (0.027, +5 0.034).
# A wheat sown 10 days late and seen on its rise and fall fits +10 exactly, on schedule at 0.055 and +5 at 0.033.
SHIFT_TOLERANCE = 0.025
# A clear date sees a crop's green weeks where its template is at least this share of the way from its lowest NDVI to
# its peak (wheat 0.69, maize 0.68, rice 0.68, soybean 0.61), so bare land there says the crop is not: a weak crop at
# 0.7 of its template still reads 0.43-0.48, over what the cropland rule takes for a crop (peak_mid 0.42). At halfway
# (0.47-0.53; weak, 0.33-0.37) rice whose only clear date near its season was 27 September (day 271), read 0.38, was
# called fallow and declined NOT_CULTIVATED: 55 of 344 cultivated parcels of a season clouded over its summer peak
# (rule); 53 are referred now, the other 2 maize declared as wheat and seen bare in wheat's weeks.
GREEN_SHARE = 0.75
# A crop's own season, in which its peak is read: the days its template (on schedule or at its fitted slide) is at
# least this share of the way from its lowest NDVI to its peak, round its near-peak days (``season_days``: maize from
# late June to late September, from 10 June at its earliest fit), so green-up and senescence before harvest bound a
# peak a hazy date at the top would set, while a crop before it on the same land (winter wheat before summer maize,
# in spring) is left out.
SEASON_SHARE = 0.25
# Clear readings under MIN_GAIN of the template of a declared crop that never drops to bare (tea) on days its
# template says it stands (over cropland_rule.minimum_max at every slide) that contradict it: two, so one hazy date
# the cloud mask missed does not. A maize field declared as tea (a template never under 0.65) reads about 0.2 from
# March to June, bare where tea stands, though green like tea in summer, the only weeks the green-days check looked
# at: it was priced as tea.
MIN_BARE_READINGS = 2


def derive_signals(
    measurements: ParcelMeasurements, declared_crop: np.ndarray, assessable: np.ndarray, config: Config
) -> tuple[pd.DataFrame, list[list[str]]]:
    """Compute observations, phenology, crop, cultivated area, health and yield per parcel.

    Args:
        measurements: the zonal stage's output.
        declared_crop: declared crop names (object array; None where unknown).
        assessable: False for parcels already in error (they get NaN signals).
        config: the run configuration.

    Returns:
        A frame of signals in parcel order and, per parcel, the reason codes they raise.
    """
    agro = config.agronomy
    m = measurements
    n = len(m.polygon_area_ha)
    observed = m.clear(config.imagery.min_clear_share) & assessable[:, None]
    clear_observations = observed.sum(axis=1)

    # The crop's NDVI and its spread over the cropland pixels: a bare part of the outline, left out of the cultivated
    # area, would otherwise price the parcel again as an uneven crop (sample_tiles P00142, wheat on half its outline:
    # 0.27 over the outline, 0.09 over its cropland pixels).
    crop_ndvi, crop_ndvi_std = (np.where(observed, values, np.nan) for values in m.cropland_ndvi())

    cultivated_fraction = np.where(assessable, m.cultivated_fraction, np.nan)
    # Flooding (Xiao et al. 2005): LSWI + 0.05 >= EVI, or NDVI where EVI is not measured (no blue band). EVI stays
    # lower than NDVI over sparse rice seedlings in water, so it keeps the signature for weeks longer.
    greenness = np.where(observed & np.isfinite(m.evi_mean), m.evi_mean, crop_ndvi)
    doy = _days_of_year(m.dates)
    probabilities, shift, shift_range = _crop_probabilities(crop_ndvi, np.where(observed, m.ndmi_mean, np.nan),
                                                            greenness, doy, config)
    crop, confidence = _best_crop(probabilities, list(config.crops))
    declared_probability = _declared_probability(probabilities, declared_crop, config)
    # A declared crop that never drops to bare (``never_bare``: tea, orchards) is not measured by the cropland models,
    # which find a crop by its rise from bare land: uncontradicted by its readings, its land's fallow call is no
    # finding, and the parcel is referred (PERENNIAL_NOT_MEASURED); contradicted, it is judged as any other.
    perennial = np.array([said in config.crops and never_bare(config.crops[said], config)
                          for said in map(config.crop_named, declared_crop)], dtype=bool) & (clear_observations > 0)
    # Bare, or under another crop, on every clear date its declared crop would be green, or bare on dates it would
    # stand (judged on the season's call, before any fallow call: ``_declared_crop_contradicted``). Such a crop is
    # read over the whole parcel: the cells the models call cropland in a tea garden are its bare paths and edges
    # (read 0.2-0.3 where the garden read 0.61-0.65, they declined it CROP_MISMATCH).
    contradicted = _declared_crop_contradicted(np.where(perennial[:, None] & observed, m.ndvi_mean, crop_ndvi), doy,
                                               declared_crop, crop, confidence, config)
    unmeasured = perennial & ~contradicted
    # Not without a clear date: the few cells clear on a clouded one called a wheat field bare at 1.0 (sample_tiles/
    # P00076, 6% clear on 16 March); it is unknown, as a parcel no cell of which was seen.
    fallow = (cultivated_fraction < agro.min_cultivated_fraction) & (clear_observations > 0) & ~unmeasured
    crop = np.where(fallow, FALLOW, crop)
    confidence = np.where(fallow, 1.0 - cultivated_fraction / max(agro.min_cultivated_fraction, 1e-9), confidence)
    judged = np.isfinite(probabilities).all(axis=1)
    unrecognised = (crop == UNKNOWN) & judged  # judged, but no template fits
    # Where none fits, the declared crop is not ruled out more than any other: haze left in a short season misfits
    # every template; CROP_NOT_RECOGNISED refers the parcel instead.
    declared_probability = np.where(fallow | unrecognised, np.nan, declared_probability)
    # Judged alike where the declared crop is (fallow land declared a crop that never drops to bare too).
    contradicted &= np.isfinite(declared_probability) | perennial
    # A fallow call stands on a clear reading that shows the land bare while its crop would be green
    # (``_season_misses_crop``): a wheat whose green weeks were clouded, seen once on their last day (20 May) at 0.43,
    # was declined NOT_CULTIVATED as surely fallow (sample_tiles/ P00543 on four clear dates).
    unjudged = fallow & _season_misses_crop(np.where(observed, m.ndvi_mean, np.nan), doy, declared_crop, config)
    # Nor is it sure on too few clear dates (referred FEW_CLEAR_OBSERVATIONS): a wheat of 0.37 ha seen on three was
    # stated fallow at 0.93 and 0-0.08 ha (sample_tiles/ P00541).
    unsure = unjudged | (fallow & (clear_observations < agro.min_clear_observations))

    priced_crop = _priced_crop(crop, confidence, declared_crop, declared_probability, contradicted, config)
    # The peak that values a crop is read in its own season (``SEASON_SHARE``), and seen only near its peak: a season
    # whose clear dates all miss those days (a monsoon clouds July to September) has its highest clear NDVI from
    # green-up or senescence, and a summer crop after winter wheat its highest from the wheat; rated on it, the parcel
    # would be mispriced and skew its peers.
    # A parcel priced but not called (crop unknown: no template fits, referred CROP_NOT_RECOGNISED, or too few clear
    # dates to call) reads the season's highest: a hazy date in its declared crop's weeks is no evidence against it.
    priced = np.isin(priced_crop, list(config.crops))
    called = priced & (crop != UNKNOWN)
    near, season, peak_days = _near_peak(doy, min(m.dates).year, priced_crop, shift, shift_range, config)
    # Read in the crop's own season: green-up and senescence bound it where one hazy date at its top is all the
    # near-peak days saw (that alone declined parcels approved on their season).
    own = season | ~called[:, None]
    peak, peak_date, uniformity = _peak(np.where(own, crop_ndvi, np.nan), crop_ndvi_std, m.dates)
    integral = _integral(crop_ndvi, m.dates)
    # Seen near its peak: a clear date in those days, or a reading at NEAR_PEAK of its template's peak in its own
    # season (anywhere, for an unknown crop priced by the declaration). Fallow prices no crop (judged or not: one image
    # after harvest read a wheat field's yield as 0.18 of typical), and a parcel in error (outside the imagery, no
    # outline) was never looked at.
    template_peak = {name: spec.peak_ndvi for name, spec in config.crops.items()}
    priced_peak = np.array([template_peak.get(c, np.inf) for c in priced_crop])
    near_peak_reading = own & (crop_ndvi >= NEAR_PEAK * priced_peak[:, None])
    peak_unseen = priced & assessable & ~(observed & (near | near_peak_reading)).any(axis=1)
    # No peak shown, no health rated, no yield read where it was not seen (nor one guessed from the template).
    peak, uniformity = np.where(peak_unseen, np.nan, peak), np.where(peak_unseen, np.nan, uniformity)
    peak_date = np.where(peak_unseen, np.datetime64("NaT"), peak_date)
    # Rated among parcels of the crop that values them (the declared one where the call is unsure), against each
    # crop's own template peak when peers of other crops fill in.
    rated = np.isfinite(peak) & ~np.isin(crop, (FALLOW, UNKNOWN))
    health, reference = _peer_health(peak, priced_crop, rated, template_peak, agro.min_peers)
    for i in np.flatnonzero(peak_unseen):
        reference[i] = (f"not rated: no clear image near its crop's peak, {peak_days[i]}" if clear_observations[i]
                        else "not rated: no clear image of the season over the parcel")
    reference[~assessable] = "not rated: not measured"
    p50 = np.array([_yield_p50(config.crops.get(c), v) for c, v in zip(priced_crop, peak)])
    p10 = p50 * (1.0 - Z10 * agro.yield_cv)
    # Yield against the crop's typical season: comparable across crops (a soybean's 2 t/ha is a maize's 6.5).
    typical_yield = {name: spec.typical_yield_t_ha for name, spec in config.crops.items()}
    typical = np.array([typical_yield.get(c, np.nan) for c in priced_crop])

    area = m.polygon_area_ha
    # The interval is measured where the parcel lies on the imagery; the rest, unseen, may be anything from
    # fallow to all crop, so it widens the interval (the estimate extends the seen share to the whole parcel).
    seen = np.clip(np.nan_to_num(m.inside_share, nan=1.0), 0.0, 1.0)
    low, high = m.cultivated_fraction_low * seen, m.cultivated_fraction_high * seen + (1.0 - seen)
    # Bare where the season never saw its crop green: the crop may be sown after the season's images, so the land seen
    # may all be cropped too (the interval's top was under the truth of 428 such cropped parcels of a simulated season,
    # rule), and the fallow call rests on nothing that tells how sure it is.
    # Nor where no date was clear: the cells a clouded date saw do not tell the parcel's crop (wheat in early March,
    # sample_tiles/ P00076 was read bare on the 6% of it clear on 16 March and stated 0-0.02 of its 0.41 ha).
    # Nor on too few clear dates to call it.
    high = np.where((unsure | (clear_observations == 0)) & np.isfinite(high), 1.0, high)
    confidence = np.where(unsure, np.nan, confidence)
    signals = pd.DataFrame(
        {
            "polygon_area_ha": area,
            "clear_observations": clear_observations.astype(int),
            "cultivated_fraction": cultivated_fraction,
            "cultivated_area_ha": cultivated_fraction * area,
            "cultivated_area_low_ha": np.where(assessable, low, np.nan) * area,
            "cultivated_area_high_ha": np.where(assessable, high, np.nan) * area,
            "crop": crop,
            "crop_confidence": confidence,
            "declared_crop_probability": declared_probability,
            "declared_crop_contradicted": contradicted,
            "priced_crop": priced_crop,
            "ndvi_peak": peak,
            "ndvi_peak_date": peak_date,
            "ndvi_integral": integral,
            "ndvi_uniformity": uniformity,
            "health_index": health,
            "health_reference": reference,
            "yield_p10_t_ha": p10,
            "yield_p50_t_ha": p50,
            "relative_yield": p50 / typical,
        }
    )
    reasons: list[list[str]] = [[] for _ in range(n)]
    for i in range(n):
        if not assessable[i]:
            continue
        if clear_observations[i] == 0:
            reasons[i].append("NO_CLEAR_OBSERVATIONS")
        elif clear_observations[i] < agro.min_clear_observations:
            reasons[i].append("FEW_CLEAR_OBSERVATIONS")
        if m.read_error[i]:
            reasons[i].append("IMAGERY_READ_ERROR")
        if unjudged[i]:
            reasons[i].append("SEASON_MISSES_CROP")
        if unmeasured[i]:
            reasons[i].append("PERENNIAL_NOT_MEASURED")
        if unrecognised[i]:
            reasons[i].append("CROP_NOT_RECOGNISED")
        if peak_unseen[i] and clear_observations[i]:  # with no clear date, NO_CLEAR_OBSERVATIONS says it all
            reasons[i].append("PEAK_NOT_OBSERVED")
        elif np.isnan(health[i]) and np.isfinite(peak[i]) and crop[i] not in (FALLOW, UNKNOWN):
            reasons[i].append("FEW_PEERS")
    return signals, reasons


def _days_of_year(dates: tuple) -> np.ndarray:
    """Each date's day of the year (1-366)."""
    return np.array([d.timetuple().tm_yday for d in dates], dtype=int)


def _within_days(doy: np.ndarray, start: np.ndarray | int, end: np.ndarray | int) -> np.ndarray:
    """Whether days of the year lie from ``start`` to ``end`` (inclusive; arrays broadcast); a window whose start is
    after its end wraps the new year (335-20: December to mid January)."""
    return np.where(start <= end, (doy >= start) & (doy <= end), (doy >= start) | (doy <= end))


def template_at(template: np.ndarray, days: np.ndarray) -> np.ndarray:
    """A template's NDVI (rows of day of the year, NDVI) on ``days``, which a slide may take before day 1 or past 366.

    A template with a point on day 1 or 366 goes round the calendar: periodic, so a slide across the new year reads
    the other end of the year (held at its ends, a southern season from October to June fitted another slide than
    the same season within one year). One within the year, a crop of one season such as the packaged ones, holds its
    end values before its first point and after its last, slid days included (read round, a slide past 1 January
    read wheat's dormant winter as its stubble, and a wheat sown late fitted the wrong slide).
    """
    return np.interp(_template_days(template, days), template[:, 0], template[:, 1],
                     period=366 if _periodic(template) else None)


def _periodic(template: np.ndarray) -> bool:
    """Whether a template (rows of day of the year, NDVI) goes round the calendar: it has a point on day 1 or 366."""
    return bool(template[0, 0] <= 1 or template[-1, 0] >= 366)


def _template_days(template: np.ndarray, days: np.ndarray) -> np.ndarray:
    """``days`` (a slide may take them before day 1 or past 366) as days of the year ``template`` is read on: round
    the calendar for a periodic one, as given for another (read at its ends beyond them)."""
    return (days - 1) % 366 + 1 if _periodic(template) else days


def near_peak_runs(crop: CropConfig) -> tuple[tuple[int, int], ...]:
    """Each run of days of the year on which the crop's template reads at least ``NEAR_PEAK`` of its peak, as its
    first and last day, in the order they start; the first is after the last where a run wraps the new year (a
    southern summer crop); ((1, 366),) where every day does. A template of two peaks (double rice) has two runs."""
    template = np.array(crop.ndvi_template, dtype=float)
    values = template_at(template, np.arange(1, 367))
    near = values >= NEAR_PEAK * values.max()
    if near.all():
        return ((1, 366),)
    runs = []
    for first in np.flatnonzero(near & ~np.roll(near, 1)):  # a near day after one that is not: a run starts
        last = int(first)
        while near[(last + 1) % 366]:
            last = (last + 1) % 366
        runs.append((int(first) + 1, last + 1))
    return tuple(runs)


def peak_days(crop: CropConfig, shift_days: int) -> np.ndarray:
    """By day of the year (index 1-366; 0 unused): whether a clear image that day can see the crop's peak, as
    PEAK_NOT_OBSERVED judges it: in its near-peak days (``near_peak_runs``) on schedule or moved by any shift its
    template is fitted at (``template_shifts(shift_days)``)."""
    days = np.arange(1, 367)
    seen = np.any([_within_days(days, *_moved(run, by))
                   for run in near_peak_runs(crop) for by in template_shifts(shift_days)], axis=0)
    return np.concatenate([[False], seen])


def season_days(crop: CropConfig) -> np.ndarray:
    """By day of the year (index 1-366; 0 unused): whether the day is in the crop's own season, the unbroken stretch
    of days round each of its near-peak runs on which its template is at least ``SEASON_SHARE`` of the way from its
    lowest NDVI to its peak (round the new year only for a template that goes round it, as ``template_at`` reads it):
    a dip at flooding or between two seasons ends the stretch, so no other crop's weeks join it."""
    template = np.array(crop.ndvi_template, dtype=float)
    values = template_at(template, np.arange(1, 367))
    low = template[:, 1].min()
    above = values >= low + SEASON_SHARE * (crop.peak_ndvi - low)
    near = values >= NEAR_PEAK * values.max()
    periodic = _periodic(template)
    # Label the stretches of days above: a new one starts after a day below (after day 366 only round the year).
    starts = above & ~np.roll(above, 1)
    if not periodic:
        starts[0] = above[0]
    label = np.cumsum(starts)
    if periodic and above[0] and above[-1] and not above.all():
        label[label == label[-1]] = 0  # the stretch round the new year is one (its first part is labelled 0)
    kept = np.isin(label, np.unique(label[near & above])) & above
    return np.concatenate([[False], kept])


def _near_peak(doy: np.ndarray, year: int, priced_crop: np.ndarray, shift: np.ndarray, shift_range: np.ndarray,
               config: Config) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per parcel (rows) and date (columns, ``doy`` their days of the year): whether the date falls in its priced
    crop's near-peak days (``near_peak_runs``) on schedule or moved by every shift from the earliest to the latest
    its template fits the parcel about as well as at its best (``shift_range``, ``SHIFT_TOLERANCE``), and whether in
    its own season (``SEASON_SHARE``, on schedule or at the best ``shift``); and per parcel the near-peak days as
    text, dates of ``year`` (``days_of_year_text``, as the PEAK_NOT_OBSERVED warning gives them). A date near the
    peak only at a slide its dates leave loose (a few dates, none on the fall) leaves the peak unseen: less evidence
    must not clear PEAK_NOT_OBSERVED. A failing crop seen low at peak time is judged (a low reading there pulls the
    best shift away from it: that alone was taken as the peak unseen). All False, '', where no configured crop prices
    the parcel.
    """
    near = np.zeros((len(priced_crop), len(doy)), dtype=bool)
    season = np.zeros_like(near)
    where = np.full(len(priced_crop), "", dtype=object)
    for k, (name, spec) in enumerate(config.crops.items()):
        on_schedule = near_peak_runs(spec)
        own = season_days(spec)
        template = np.array(spec.ndvi_template, dtype=float)
        fits = np.column_stack([shift[:, k], shift_range[:, k]])  # best, earliest, latest
        for by, earliest, latest in np.unique(fits[priced_crop == name], axis=0):  # a few, each for many parcels
            rows = (priced_crop == name) & (fits == (by, earliest, latest)).all(axis=1)
            fitted = () if earliest <= 0 <= latest else tuple(
                run for run in (_at_every_slide(run, int(earliest), int(latest)) for run in on_schedule) if run)
            near[rows] = np.any([_within_days(doy, *run) for run in (*on_schedule, *fitted)], axis=0)
            # Slid as template_at slides the template: round the year, or held at its ends.
            slid = (np.clip(_template_days(template, doy - slide), 1, 366).astype(int) for slide in (0, int(by)))
            season[rows] = np.any([own[days] for days in slid], axis=0)
            where[rows] = f"from {days_of_year_text(on_schedule, year)}" + (
                f" (or {days_of_year_text(fitted, year)} at every timing its season fits)" if fitted else "")
    return near, season | near, where.tolist()


def days_of_year_text(runs: tuple[tuple[int, int], ...], year: int) -> str:
    """Runs of days of the year (first, last) as dates of ``year``, ' or ' between runs: ``((353, 19),)`` as
    '18 December to 19 January (days 353-19 of the year)' in 2024."""
    return " or ".join(f"{_day_text(first, year)} to {_day_text(last, year)} (days {first}-{last} of the year)"
                       for first, last in runs)


def _day_text(day: int, year: int) -> str:
    """Day ``day`` of the year ``year`` as '14 July'."""
    when = date(year, 1, 1) + timedelta(days=day - 1)
    return f"{when.day} {when:%B}"


def _at_every_slide(days: tuple[int, int], earliest: int, latest: int) -> tuple[int, int] | None:
    """The days of the year of ``days`` (first, last) moved by every slide from ``earliest`` to ``latest``: moved by
    ``latest`` from its first, by ``earliest`` to its last; None where no day is."""
    if days != (1, 366) and latest - earliest > (days[1] - days[0]) % 366:
        return None
    return _moved(days, latest)[0], _moved(days, earliest)[1]


def _moved(days: tuple[int, int], by: int) -> tuple[int, int]:
    """Days of the year ``days`` (first, last) moved by ``by`` days, across the new year as it falls."""
    if days == (1, 366):
        return days
    first, last = ((d - 1 + by) % 366 + 1 for d in days)
    return first, last


def _season_misses_crop(ndvi: np.ndarray, doy: np.ndarray, declared: np.ndarray, config: Config) -> np.ndarray:
    """Whether no clear reading of each parcel (``ndvi``: the whole parcel's, NaN where not clear) in the green part
    of its declared crop's season (``green_days``; any crop's, where it declares none the config knows) shows the
    land bare: under ``MIN_GAIN`` of the crop's template that day, as low as the weakest copy of it a crop call takes.
    A parcel not so seen may still be sown later, or be a weak crop clouded over its green weeks: a wheat at 0.6 of a
    healthy crop read 0.33 on day 141 (wheat's template 0.69 there), bare land 0.22-0.28, weedy fallow in maize's
    weeks 0.37-0.41 (its template 0.82-0.85). Read over the whole parcel: the few cells the models call cropland on
    fallow land are its greenest (a hedge, a neighbour's edge), read 0.4-0.7 where the parcel read 0.25. Never for
    one declared fallow: no crop is to come."""
    shift_days = config.agronomy.template_shift_days
    seen_bare = {}
    for name, spec in config.crops.items():
        weakest = MIN_GAIN * template_at(np.array(spec.ndvi_template, dtype=float), doy)
        with np.errstate(invalid="ignore"):
            seen_bare[name] = (green_days(spec, shift_days)[doy][None, :] & (ndvi < weakest)).any(axis=1)
    misses = np.zeros(len(declared), dtype=bool)
    for i, name in enumerate(declared):
        said = config.crop_named(name)
        if said == FALLOW:
            continue
        crops = [said] if said in seen_bare else list(seen_bare)
        misses[i] = not any(seen_bare[crop][i] for crop in crops)
    return misses


def never_bare(crop: CropConfig, config: Config) -> bool:
    """Whether the crop's template never drops to bare land: its lowest NDVI is over ``cropland_rule.minimum_max``
    (tea, orchards, cane standing all year). The cropland models (the rule and the CNN alike) take for cropland land
    that rises from bare, so they cannot measure such a crop: its parcels are referred, not measured."""
    return min(ndvi for _, ndvi in crop.ndvi_template) > config.cropland_rule.minimum_max


def standing_ndvi(crop: CropConfig, config: Config) -> np.ndarray:
    """By day of the year (index 1-366; 0 unused): the crop's template NDVI at its lowest over every slide it is
    fitted at (``template_shifts``) where that is over ``cropland_rule.minimum_max`` (the crop stands there, however
    its season shifts), NaN on other days and, for a template within the year, outside its points (a held end is no
    reading of the crop)."""
    template = np.array(crop.ndvi_template, dtype=float)
    days = np.arange(1, 367)
    lowest = np.min([np.where((template[0, 0] <= days - shift) & (days - shift <= template[-1, 0])
                              | _periodic(template), template_at(template, days - shift), np.nan)
                     for shift in template_shifts(config.agronomy.template_shift_days)], axis=0)
    return np.concatenate([[np.nan], np.where(lowest > config.cropland_rule.minimum_max, lowest, np.nan)])


def green_ndvi(crop: CropConfig) -> float:
    """The NDVI at which the crop is green: ``GREEN_SHARE`` of the way from its template's lowest NDVI to its peak."""
    low = min(ndvi for _, ndvi in crop.ndvi_template)
    return low + GREEN_SHARE * (crop.peak_ndvi - low)


def green_days(crop: CropConfig, shift_days: int) -> np.ndarray:
    """By day of the year (index 1-366; 0 unused): whether the crop's template is at least ``GREEN_SHARE`` of the way
    from its lowest NDVI to its peak on that day whether sown on schedule or up to ``shift_days`` late (the days a
    clear image of bare land says the crop is not there: sown later, it may still be to come)."""
    days = np.arange(1, 367)
    green = template_at(np.array(crop.ndvi_template, dtype=float), days) >= green_ndvi(crop)
    # Late sowing only (the check is for crops sown after the season's images): a crop sown early is judged where it
    # is green on schedule. Narrowed for early sowing too, 9 bare parcels of sample_tiles/ declared wheat and seen on
    # 20 May but not in April were referred, no longer declined and flagged over-declared.
    narrowed = np.ones_like(green)
    for shift in range(shift_days + 1):
        narrowed &= np.roll(green, shift)  # the calendar wraps: a winter crop greens across the new year
    return np.concatenate([[False], narrowed])


def _peak(ndvi: np.ndarray, ndvi_std: np.ndarray, dates: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The highest NDVI of each row (NaN where none), its date and the spread on that date."""
    n = ndvi.shape[0]
    has_any = np.isfinite(ndvi).any(axis=1)
    filled = np.where(np.isfinite(ndvi), ndvi, -np.inf)
    peak_index = np.argmax(filled, axis=1) if ndvi.shape[1] else np.zeros(n, dtype=int)
    rows = np.arange(n)
    peak = np.where(has_any, filled[rows, peak_index] if ndvi.shape[1] else np.nan, np.nan)
    date_values = np.array([np.datetime64(d, "D") for d in dates], dtype="datetime64[D]")
    peak_date = np.where(has_any, date_values[peak_index] if len(dates) else np.datetime64("NaT"), np.datetime64("NaT"))
    uniformity = np.where(has_any, ndvi_std[rows, peak_index] if ndvi.shape[1] else np.nan, np.nan)
    return peak, peak_date.astype("datetime64[ns]"), uniformity


def _integral(ndvi: np.ndarray, dates: tuple) -> np.ndarray:
    """The seasonal integral (NDVI x days) over each row's clear dates; NaN with fewer than two."""
    date_values = np.array([np.datetime64(d, "D") for d in dates], dtype="datetime64[D]")
    days = (date_values - date_values[0]).astype(float) if len(dates) else np.zeros(0)
    integral = np.full(ndvi.shape[0], np.nan)
    for i in np.flatnonzero(np.isfinite(ndvi).sum(axis=1) >= 2):
        seen = np.isfinite(ndvi[i])
        integral[i] = np.trapezoid(ndvi[i, seen], days[seen])
    return integral


def _crop_probabilities(
    ndvi: np.ndarray, ndmi: np.ndarray, greenness: np.ndarray, doy: np.ndarray, config: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each configured crop's probability per parcel (rows; columns in ``config.crops`` order): a softmax over the
    template misfits (shape misfit at the best shift) with a paddy-flooding check, NDMI (LSWI) + 0.05 at or above
    ``greenness`` (EVI, else NDVI) on a clear date (``doy``: its day of the year) of the transplanting window. NaN rows
    for parcels with fewer than ``MIN_CROP_DATES`` clear dates; rows of 0 where even the best template misfits by more
    than ``agronomy.crop_max_misfit`` (the softmax only says which template fits best, not whether any fits: a rice
    season would be wheat, certainly, to a config of wheat alone). Also returns, alike, the shift (days) at which each
    template fits best (the smallest of equal fits) and, in a last axis of two, the earliest and latest shift at which
    it fits within ``SHIFT_TOLERANCE`` of its best fit over the clear dates of the crop's own season alone (the best
    shift itself is fitted on every date, so that range need not hold it).
    """
    agro = config.agronomy
    n = ndvi.shape[0]
    seen = np.isfinite(ndvi)
    in_window = _within_days(doy, *agro.flood_window_doy)
    # Flooding is judged only on clear dates of the transplanting window that measured both sides (a cropland
    # clouded while the rest of the parcel is clear, or no SWIR band, is no evidence either way).
    judged = seen & in_window & np.isfinite(ndmi) & np.isfinite(greenness)
    evidence = np.any(judged, axis=1)
    flooded = np.any(judged & (np.nan_to_num(ndmi) + FLOOD_MARGIN >= np.nan_to_num(greenness)), axis=1)
    names = list(config.crops)
    distance = np.full((n, len(names)), np.inf)
    best_shift = np.zeros((n, len(names)), dtype=int)
    shift_range = np.zeros((n, len(names), 2), dtype=int)
    shifts = np.array(sorted(template_shifts(agro.template_shift_days), key=abs))  # a larger one must fit better
    for k, name in enumerate(names):
        template = np.array(config.crops[name].ndvi_template, dtype=float)
        slid = [template_at(template, doy - shift) for shift in shifts]
        misfits = np.stack([_shape_misfit(ndvi, seen, values) for values in slid], axis=1)
        best = np.argmin(misfits, axis=1)  # the first of equal fits: the smallest shift
        distance[:, k] = misfits[np.arange(n), best]
        best_shift[:, k] = shifts[best]
        # Which slides fit about as well is told by the crop's own season alone (its ``season_days`` at any slide):
        # dates after harvest shrank the misfit's differences, so a wheat seen on the same wheat-season dates had its
        # peak seen in a season to June and not in one to October (sample_tiles/ P00366).
        own = season_days(config.crops[name])
        in_season = np.any([own[np.clip(_template_days(template, doy - shift), 1, 366).astype(int)]
                            for shift in shifts], axis=0)
        own_misfits = np.stack([_shape_misfit(ndvi, seen & in_season, values) for values in slid], axis=1)
        fitting = np.where(own_misfits <= own_misfits.min(axis=1, keepdims=True) + SHIFT_TOLERANCE, shifts[None, :],
                           np.nan)
        shift_range[:, k] = np.column_stack([np.nanmin(fitting, axis=1), np.nanmax(fitting, axis=1)])
        distance[:, k] += FLOOD_PENALTY * (evidence & (flooded != config.crops[name].flooded))
    logits = -0.5 * (distance / TEMPLATE_SIGMA) ** 2
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    probabilities = weights / weights.sum(axis=1, keepdims=True)
    probabilities[distance.min(axis=1) > agro.crop_max_misfit] = 0.0
    return np.where((seen.sum(axis=1) >= MIN_CROP_DATES)[:, None], probabilities, np.nan), best_shift, shift_range


def template_shifts(days: int) -> list[int]:
    """The shifts (days) a crop template is tried at: 0, every 5 days out to ``days`` and ``days`` itself, both
    ways."""
    ahead = sorted({*range(0, days + 1, 5), days})
    return sorted({-shift for shift in ahead} | set(ahead))


def _best_crop(probabilities: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The likeliest crop per parcel (``unknown`` where no crop was judged or none fits) and its probability."""
    judged = np.isfinite(probabilities).all(axis=1) & (np.nan_to_num(probabilities).sum(axis=1) > 0)
    best = np.argmax(np.nan_to_num(probabilities, nan=-1.0), axis=1)
    crop = np.where(judged, np.array(names, dtype=object)[best], UNKNOWN)
    return crop, np.where(judged, probabilities[np.arange(len(best)), best], np.nan)


def _declared_probability(probabilities: np.ndarray, declared: np.ndarray, config: Config) -> np.ndarray:
    """The probability of the crop each parcel declares (NaN where it declares none the config knows)."""
    column = {name: k for k, name in enumerate(config.crops)}
    out = np.full(len(declared), np.nan)
    for i, name in enumerate(declared):
        k = column.get(config.crop_named(name))
        if k is not None:
            out[i] = probabilities[i, k]
    return out


def _shape_misfit(ndvi: np.ndarray, seen: np.ndarray, template: np.ndarray) -> np.ndarray:
    """RMSE of each parcel's NDVI to ``gain * template + offset`` fitted by least squares.

    Comparing shapes, not levels, keeps a weak or patchy crop (low peak) recognisable; the gain
    is held to [MIN_GAIN, MAX_GAIN] so a flat fallow curve cannot match a crop by flattening it.
    """
    count = np.maximum(seen.sum(axis=1), 1)
    x = np.where(seen, template[None, :], 0.0)
    y = np.where(seen, ndvi, 0.0)
    x_mean, y_mean = x.sum(axis=1) / count, y.sum(axis=1) / count
    xc = np.where(seen, x - x_mean[:, None], 0.0)
    yc = np.where(seen, y - y_mean[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.clip((xc * yc).sum(axis=1) / (xc**2).sum(axis=1), MIN_GAIN, MAX_GAIN)
    gain = np.nan_to_num(gain, nan=1.0)
    residual = np.where(seen, yc - gain[:, None] * xc, 0.0)
    return np.sqrt((residual**2).sum(axis=1) / count)


def _priced_crop(crop: np.ndarray, confidence: np.ndarray, declared: np.ndarray, declared_probability: np.ndarray,
                 contradicted: np.ndarray, config: Config) -> np.ndarray:
    """The crop whose curve and price value the parcel: observed if confident, else declared, unless the imagery
    rules the declared crop out (``declared_crop_ruled_out``; ``contradicted``: ``_declared_crop_contradicted``)."""
    agro = config.agronomy
    out = crop.copy()
    for i, (seen, conf, declared_name) in enumerate(zip(crop, confidence, declared)):
        if seen == FALLOW or declared_crop_ruled_out(declared_probability[i], contradicted[i], config):
            continue
        said = config.crop_named(declared_name)
        unsure = seen == UNKNOWN or not conf >= agro.crop_min_confidence
        if unsure and isinstance(said, str) and said in config.crops:
            out[i] = said
    return out


def declared_crop_ruled_out(probability: float, contradicted: bool, config: Config) -> bool:
    """Whether the imagery rules out the declared crop: its template probability under
    ``agronomy.declared_crop_min_probability`` (a maize season declared as wheat), however unsure the call among
    the crops that do fit, or readings that contradict it (``contradicted``: ``_declared_crop_contradicted``),
    whatever that probability unless the season is surely called the declared crop."""
    return bool(contradicted or probability < config.agronomy.declared_crop_min_probability)


def _declared_crop_contradicted(ndvi: np.ndarray, doy: np.ndarray, declared: np.ndarray, crop: np.ndarray,
                                confidence: np.ndarray, config: Config) -> np.ndarray:
    """Whether each parcel's clear readings (``ndvi``, NaN where not clear; ``doy``: each date's day of the year) on
    the days its declared crop is green however its season shifts (``green_days``, sown up to
    ``template_shift_days`` late or early: wheat days 105-126, maize 219-236, rice 214-244, soybean 222-239) are at
    least one and all under ``MIN_GAIN`` of that crop's ``green_ndvi`` (wheat 0.34, soybean 0.30), as low as the
    weakest copy of its template a crop call takes: the land is bare, or under another crop, where the declared one
    would be green. A template probability on a few dates does not weigh that: a soybean parcel declared wheat,
    clouded from July to September and read 0.19-0.21 in wheat's weeks, kept 0.024 for wheat, was priced as wheat and
    declined as less healthy than its wheat peers. A crop of the declared kind that failed that far is contradicted
    too (on sample_tiles/ one wheat, planted at 0.62 of a healthy crop, read 0.34): a referral with the declaration in
    doubt, for a person who sees the field, unless its season is still surely called that crop (then priced and
    rated low among its peers). False where the declaration names no crop the config prices, and where
    the season called (``crop``) is the declared crop at ``confidence`` of at least ``agronomy.crop_min_confidence``:
    the whole season outweighs one or two low dates (haze the cloud mask missed read a wheat called wheat at 0.99995
    as 0.30 in its green weeks). A crop that never drops to bare (``never_bare``: tea) is contradicted too by
    ``MIN_BARE_READINGS`` clear readings under ``MIN_GAIN`` of its template on days it says the crop stands
    (``standing_ndvi``), as a maize field declared tea reads bare from March to June, however surely it is called so
    (an annual crop's failure there is judged by its green weeks alone: a drought maize read 0.20 after its peak is
    declined, not referred)."""
    shift_days = config.agronomy.template_shift_days
    contradicted = np.zeros(len(declared), dtype=bool)
    bare = np.zeros_like(contradicted)
    said = np.array([config.crop_named(name) for name in declared], dtype=object)
    for name, spec in config.crops.items():
        late = green_days(spec, shift_days)
        # Green when sown late by up to shift_days (``green_days``) and when sown early by as much.
        surely = late & np.concatenate([[False], np.roll(late[1:], -shift_days)])
        rows = said == name
        green = ndvi[np.ix_(rows, surely[doy])]
        contradicted[rows] = np.isfinite(green).any(axis=1) & ~(green >= MIN_GAIN * green_ndvi(spec)).any(axis=1)
        if never_bare(spec, config):
            with np.errstate(invalid="ignore"):
                bare[rows] = ((ndvi[rows] < MIN_GAIN * standing_ndvi(spec, config)[doy]).sum(axis=1)
                              >= MIN_BARE_READINGS)
    surely = (crop == said) & (confidence >= config.agronomy.crop_min_confidence)
    # The call fits the template's shape, not its level: flat bare land fits a crop that never drops to bare (tea at
    # 0.79 over 0.18 all season), so such a call does not outweigh readings bare where that crop stands.
    return bare | (contradicted & ~surely)


def _peer_health(peak: np.ndarray, crop: np.ndarray, rated: np.ndarray, template_peak: dict[str, float],
                 min_peers: int) -> tuple[np.ndarray, np.ndarray]:
    """Health index 0-100 of the ``rated`` parcels: the peak-NDVI percentile among those of the same ``crop``.

    With fewer than ``min_peers`` of its crop a parcel is ranked among all rated parcels, each peak taken relative to
    its own crop's template peak (a soybean at 0.75 is as green as a maize at 0.85); with fewer than ``min_peers`` of
    those, health is NaN (and says so): no peer, no comparison.
    """
    n = len(peak)
    health = np.full(n, np.nan)
    reference = np.full(n, "", dtype=object)
    if rated.sum() < min_peers:
        reference[rated] = f"not rated: {rated.sum()} cropland parcels in this run (fewer than {min_peers})"
        return health, reference
    relative = np.array([p / template_peak[c] if r else np.nan for p, c, r in zip(peak, crop, rated, strict=True)])
    for name in np.unique(crop[rated]):
        members = rated & (crop == name)
        if members.sum() >= min_peers:
            peers, label = members, f"peak NDVI percentile among {members.sum()} {name} parcels in this run"
        else:
            peers = rated
            label = (f"percentile of peak NDVI over its crop's template peak among {rated.sum()} cropland parcels "
                     f"(fewer than {min_peers} {name})")
        health[members] = _percentile_rank(relative[members], relative[peers])
        reference[members] = label
    return health, reference


def _percentile_rank(values: np.ndarray, population: np.ndarray) -> np.ndarray:
    ordered = np.sort(population)
    below = np.searchsorted(ordered, values, side="left")
    at_or_below = np.searchsorted(ordered, values, side="right")
    return 100.0 * (below + 0.5 * (at_or_below - below)) / len(ordered)


def _yield_p50(crop: CropConfig | None, ndvi_peak: float) -> float:
    """Median yield (t/ha) from the crop's peak-NDVI curve; NaN without crop or peak."""
    if crop is None or not np.isfinite(ndvi_peak):
        return float("nan")
    return crop.median_yield(ndvi_peak)
