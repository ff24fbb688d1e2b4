"""Configuration: crop calendars, yield curves, prices, costs and credit policy as validated data.

The default lives in ``farmcredit/default_config.yaml``; users pass their own with ``--config FILE``.
Everything is validated once at load time and hashed into the audit record.
"""

from __future__ import annotations

import codecs
import copy
import logging
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from farmcredit.errors import ConfigError
from farmcredit.hashing import canonical_hash
from farmcredit.margins import AREA_BANDS_HA, AreaMargins
from farmcredit.text import composed, folded, some

logger = logging.getLogger(__name__)

# Numbers written as numbers: lax pydantic reads `price: true` as 1.0 and `max_reasons: "4"` as 4. A strict float
# still takes an integer (`price: 3`), and the tuples around these still take YAML's lists.
Number = Annotated[float, Strict()]
Count = Annotated[int, Strict()]
Fraction = Annotated[Number, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[Number, Field(ge=0.0)]


class _Frozen(BaseModel):
    # No infinity or NaN anywhere: a cap of .inf is no cap, and run.json could not hold it as JSON.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# Sentinel-2 scene classification (SCL) values: 0 no data ... 11 snow.
SclClass = Annotated[Count, Field(ge=0, le=11)]
DayOfYear = Annotated[Count, Field(ge=1, le=366)]
# Crop names the signals give parcels themselves: a configured crop may not take them.
FALLOW, UNKNOWN = "fallow", "unknown"
RESERVED_CROP_NAMES = (FALLOW, UNKNOWN)
# Declared crops that name no crop (compared folded, as crop names are): land left without one this season, read as
# FALLOW (a declaration of no crop), or a crop not known, read as no declaration (as a blank one). A configured crop or
# alias may not take them either.
DECLARED_FALLOW = ("fallow", "休耕", "撂荒")
DECLARED_UNKNOWN = ("unknown", "未知", "不详")
# Seasons the packaged crops' templates do not model (spring wheat, spring maize, early and late rice), which the
# packaged config says not to alias: the warning of unknown declared crops offers no crop close to them.
UNMODELLED_SEASONS = ("春小麦", "春玉米", "早稻", "晚稻")
# A typical harvest selling for more than this many times the crop's whole cost per ha, or less than its inverse, is a
# unit slip (a price per tonne, a yield in kg/mu or t/mu, a cost per mu), not a crop: field crops sell for about 0.5-3
# times their costs, and a mu (1/15 ha) moves the ratio 15-fold. A price per 斤 (0.5 kg) halves it, within the band:
# the messages of a config in CNY and the packaged config say so, and a price far below the packaged one is warned of
# (PER_JIN_BELOW).
MAX_REVENUE_TO_COST = 5.0
# A config's price under this share of the packaged price of its crop (the lowest of any packaged region) is likely one
# per 斤, half the price per kg: warned of, not refused, as a region may be honestly low. A price per 斤 is 0.5 times
# the price per kg; of the packaged prices' own spread (AGRONOMY.md: soybean 4.5-5 CNY/kg against 4.5, rice 2.54-2.62
# against 2.58) it is at most 0.56 times the packaged price. 0.65 warns of a price per 斤 of up to 1.3 times the
# packaged price per kg, and of no honest price down to 0.65 times it: wheat's and rice's packaged prices are the state
# minimum purchase prices, which floor them, and market maize and soybean would have to fall by over a third.
PER_JIN_BELOW = 0.65
# Clear dates a crop call needs: a template's gain and offset are fitted to the curve, so two dates fit any crop.
MIN_CROP_DATES = 3
# credit's amounts of money, in credit.currency: a config in another currency leaving them at the packaged (CNY)
# values lends on yuan figures read as its own currency.
CREDIT_MONEY_KEYS = ("parcel_cap", "borrower_cap", "min_loan", "rounding_step")
# ISO 4217's active codes of currencies (2025; ANG and BGN through their changeovers to XCG and EUR), the regional
# ones (XAF, XOF, XCD, XCG, XPF) included: credit.currency is one.
ISO_4217 = frozenset("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
    CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD
    LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
    PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP
    TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())
# ISO 4217's codes of what no loan is made in: precious metals (XAU gold, XAG, XPT, XPD), accounting units (XDR, XSU,
# XUA, XBA-XBD), testing and no currency (XTS, XXX), and funds (units of account or investment: BOV, CHE, CHW, CLF,
# COU, MXV, USN, UYI, UYW).
ISO_4217_NOT_LENT = frozenset("""
    XAU XAG XPT XPD XDR XSU XUA XBA XBB XBC XBD XTS XXX BOV CHE CHW CLF COU MXV USN UYI UYW
""".split())
# Local spellings of a currency (written without dots and blanks, upper case) -> its ISO 4217 code. Not a bare $ or
# peso, which many countries' currencies are.
LOCAL_CURRENCY_NAMES = {"KSH": "KES", "KSHS": "KES", "RMB": "CNY", "YUAN": "CNY", "GHC": "GHS", "GH¢": "GHS",
                        "TSH": "TZS", "TSHS": "TZS", "USH": "UGX", "USHS": "UGX",
                        "R$": "BRL", "REAL": "BRL", "REAIS": "BRL",
                        "GS": "PYG", "₲": "PYG", "GUARANI": "PYG", "GUARANÍ": "PYG", "GUARANIES": "PYG",
                        "GUARANÍES": "PYG", "AR$": "ARS", "PESOARGENTINO": "ARS", "PESOSARGENTINOS": "ARS"}
# The longest paddy-flooding window across the new year: transplanting takes weeks, so one of over half a year is
# more likely a start and end swapped.
MAX_WRAPPED_WINDOW_DAYS = 183


class ImageryConfig(_Frozen):
    """How imagery is masked and read."""

    clear_scl_classes: Annotated[tuple[SclClass, ...], Field(min_length=1)] = (4, 5, 6)
    min_clear_share: Fraction = 0.8
    chunk_px: Annotated[Count, Field(ge=64, le=4096)] = 512

    @field_validator("clear_scl_classes")
    @classmethod
    def _classes_as_set(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _as_set(value)


class CroplandRuleConfig(_Frozen):
    """Parameters of the phenology rule that gives a per-pixel cropland probability."""

    peak_mid: Number = 0.42
    amplitude_mid: Number = 0.22
    minimum_max: Number = 0.40
    scale: Annotated[Number, Field(gt=0.0)] = 0.04
    min_clear_dates: Annotated[Count, Field(ge=2)] = 3
    interval_thresholds: tuple[Fraction, Fraction] = (0.25, 0.75)
    # One margin for every parcel size, or one per size band of area_bands_ha (``farmcredit.margins``).
    mixed_margin: tuple[Number, ...] = (0.084, 0.084, 0.062, 0.057)
    area_bands_ha: tuple[Number, ...] = AREA_BANDS_HA

    @field_validator("mixed_margin", mode="before")
    @classmethod
    def _one_margin(cls, value: object) -> object:
        return value if isinstance(value, (list, tuple)) else (value,)  # one number: one margin for every size

    @field_validator("interval_thresholds")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < 0.5 < value[1]:
            raise ValueError("interval_thresholds must be [low, high] with low < 0.5 < high (0.5 cuts the estimate)")
        return value

    @model_validator(mode="after")
    def _margins_fit_bands(self) -> CroplandRuleConfig:
        if "area_bands_ha" in self.model_fields_set and "mixed_margin" not in self.model_fields_set:
            raise ValueError("area_bands_ha needs its own mixed_margin, one per band (the default margins were fitted "
                             "for the default bands; fit them with the script in a checkout of farmcredit's "
                             "repository: scripts/calibrate_area_interval.py)")
        self.area_margins  # noqa: B018 (raises what makes them unusable)
        return self

    @property
    def area_margins(self) -> AreaMargins:
        """The cultivated-area interval's margin by parcel size."""
        return AreaMargins.read(self.mixed_margin, self.area_bands_ha)


class ParcelsConfig(_Frozen):
    """Checks of the parcels' outlines beyond those of any field (``farmcredit.parcels``)."""

    # Parts of one parcel further apart than this (m) are fields of their own pledged as one: PARTS_APART, refer.
    max_part_gap_m: Annotated[Number, Field(gt=0.0)] = 100.0


class AgronomyConfig(_Frozen):
    """Thresholds for observations, peers, crop confidence and yield uncertainty."""

    # A parcel assessed on fewer clear dates than a crop call needs would be priced with no crop seen and no reason.
    min_clear_observations: Annotated[Count, Field(ge=MIN_CROP_DATES)] = 4
    # Under half on the imagery, more of a parcel is unseen than seen: what is unseen alone could flip its decision.
    min_share_on_imagery: Fraction = 0.5
    min_peers: Annotated[Count, Field(ge=1)] = 5
    crop_min_confidence: Fraction = 0.7
    declared_crop_min_probability: Fraction = 0.001
    crop_max_misfit: Annotated[Number, Field(gt=0.0)] = 0.15
    min_cultivated_fraction: Fraction = 0.2
    template_shift_days: Annotated[Count, Field(ge=0, le=60)] = 15
    yield_cv: Annotated[Number, Field(ge=0.0, lt=0.78)] = 0.25
    flood_window_doy: tuple[DayOfYear, DayOfYear] = (135, 185)

    @field_validator("flood_window_doy")
    @classmethod
    def _window(cls, value: tuple[int, int]) -> tuple[int, int]:
        # A start after the end wraps the new year (a southern paddy transplanted in December: [335, 20]).
        start, end = value
        if start > end and 366 - start + end > MAX_WRAPPED_WINDOW_DAYS:
            raise ValueError(f"flood_window_doy [{start}, {end}] wraps the new year (its start is after its end), "
                             f"so it spans {366 - start + end} days; transplanting takes weeks: give [{end}, {start}] "
                             f"if the two are swapped, or a window of at most {MAX_WRAPPED_WINDOW_DAYS} days")
        return value


class CropConfig(_Frozen):
    """One crop: its typical NDVI season, yield curve, price (CNY/kg) and costs (CNY/ha).

    ``aliases`` are other names a parcel's ``declared_crop`` may give it (``小麦`` for wheat), matched, as the name
    is, ignoring case and full-width forms. ``cost_per_ha`` is the whole production cost (the scale-of-finance ceiling);
    ``other_cost_per_ha`` the part the farmer pays from the harvest besides the loan (hired harvest
    machinery, irrigation fees, transport; and rent, on rented land), subtracted from the revenue to
    give the repayment capacity.
    """

    ndvi_template: tuple[tuple[Number, Number], ...]
    aliases: tuple[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)], ...] = ()
    flooded: StrictBool = False
    yield_curve: tuple[tuple[Number, NonNegative], ...]
    price: Annotated[Number, Field(gt=0.0)]
    cost_per_ha: NonNegative
    other_cost_per_ha: NonNegative = 0.0

    @field_validator("ndvi_template", "yield_curve")
    @classmethod
    def _increasing_x(cls, points: tuple[tuple[float, float], ...],
                      info: ValidationInfo) -> tuple[tuple[float, float], ...]:
        xs = [x for x, _ in points]
        falls = sum(b < a for a, b in zip(xs, xs[1:]))
        if info.field_name == "ndvi_template" and falls == 1:  # written in season order, across the new year
            raise ValueError("needs days of the year in increasing order; a season across the new year: sort by day "
                             "and add points on day 1 and 366 (its NDVI on 1 January) so the template goes round the "
                             "calendar")
        if len(xs) < 2 or any(b <= a for a, b in zip(xs, xs[1:])):
            x = "day of the year" if info.field_name == "ndvi_template" else "peak NDVI"
            k = next((k for k in range(1, len(xs)) if xs[k] <= xs[k - 1]), 0)
            where = f": point {k + 1}'s, {xs[k]:g}, is not above point {k}'s, {xs[k - 1]:g}" if k else ""
            raise ValueError(f"needs at least two points, their {x} (the first number of each) strictly "
                             f"increasing{where}")
        return points

    @field_validator("aliases")
    @classmethod
    def _aliases_as_set(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _as_set(value)

    @field_validator("ndvi_template")
    @classmethod
    def _ndvi_season(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if outside := _point_outside(points, lambda day, ndvi: 1 <= day <= 366 and -1 <= ndvi <= 1):
            raise ValueError(f"needs (day of the year 1-366, NDVI -1..1) points: {outside}")
        if max(ndvi for _, ndvi in points) <= 0:  # health compares peaks relative to the template's
            raise ValueError("needs a peak NDVI above 0: a crop's season greens")
        return points

    @field_validator("yield_curve")
    @classmethod
    def _non_decreasing_yield(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        # NDVI x 100 would price every season on the first point.
        if outside := _point_outside(points, lambda ndvi, _: -1 <= ndvi <= 1):
            raise ValueError(f"needs (peak NDVI -1..1, yield t/ha) points: {outside}; give NDVI as a fraction (0.85, "
                             "not 85)")
        # A yield curve that falls with NDVI would make the limit fall as the crop improves.
        ys = [y for _, y in points]
        if any(b < a for a, b in zip(ys, ys[1:])):
            raise ValueError("yield must not decrease as peak NDVI rises")
        return points

    @model_validator(mode="after")
    def _typical_yield(self) -> CropConfig:
        if not self.typical_yield_t_ha > 0:  # the risk model divides by it (relative_yield)
            raise ValueError(f"yield_curve must give a yield above 0 at the template's peak NDVI {self.peak_ndvi}")
        return self

    def unit_slip(self, currency: str) -> str:
        """Why the price, yield curve and cost look like other units than ``currency`` per kg, t/ha and ``currency``
        per ha ('' when they do not); in CNY, naming the mu (1/15 ha) and 斤 (0.5 kg) Chinese farms and markets count
        by, else the bag, quintal and acre."""
        revenue = self.typical_yield_t_ha * 1000.0 * self.price
        ratio = revenue / self.cost_per_ha if self.cost_per_ha > 0 else 1.0
        if 1 / MAX_REVENUE_TO_COST <= ratio <= MAX_REVENUE_TO_COST:
            return ""
        if currency == "CNY":
            per_kg = f"{currency} per kg (1 斤 = 0.5 kg: double a price per 斤)"
            likely = (f"price in {per_kg}, not per tonne, yield_curve in t/ha (not kg/mu or 斤/mu) and cost_per_ha per "
                      "ha (not per mu: a mu is 1/15 ha)" if ratio > 1 else
                      f"yield_curve in t/ha (not t/mu: a mu is 1/15 ha), price in {per_kg} and cost_per_ha per ha")
        else:
            likely = (f"price in {currency} per kg, not per bag (50/90 kg), quintal (100 kg) or tonne, yield_curve in "
                      "t/ha (not kg/ha, bags/ha or quintals/ha) and cost_per_ha per ha, not per acre (1 acre = 0.4047 "
                      "ha)" if ratio > 1 else
                      f"yield_curve in t/ha (not t/acre: 1 acre = 0.4047 ha), price in {currency} per kg and "
                      "cost_per_ha per ha")
        shown = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2g}"
        return (f"a typical harvest sells for {shown} times cost_per_ha ({self.typical_yield_t_ha:g} t/ha x 1000 kg/t "
                f"x {self.price:g} {currency} per kg = {revenue:,.0f} {currency} per ha against "
                f"{self.cost_per_ha:,.0f} {currency}; field crops sell for 1/{MAX_REVENUE_TO_COST:g} to "
                f"{MAX_REVENUE_TO_COST:g} times their costs): give {likely}")

    @property
    def peak_ndvi(self) -> float:
        """The peak NDVI of the crop's typical season (its template's highest point)."""
        return max(ndvi for _, ndvi in self.ndvi_template)

    @property
    def typical_yield_t_ha(self) -> float:
        """Median yield of a typical season: the yield curve at the template's peak NDVI."""
        return self.median_yield(self.peak_ndvi)

    def median_yield(self, peak_ndvi: float) -> float:
        """Median yield (t/ha) the yield curve gives a season peaking at ``peak_ndvi`` (flat beyond its ends)."""
        curve = np.array(self.yield_curve, dtype=float)
        return float(np.interp(peak_ndvi, curve[:, 0], curve[:, 1]))


class GradeBand(_Frozen):
    """A risk grade: probabilities of default up to ``max_pd`` get it; it scales the limit."""

    grade: str
    max_pd: Fraction
    multiplier: Fraction


class CropOverride(_Frozen):
    """Regional values of a crop's price and costs; unset keys keep the crop's defaults."""

    price: Annotated[Number, Field(gt=0.0)] | None = None
    cost_per_ha: NonNegative | None = None
    other_cost_per_ha: NonNegative | None = None


class RegionConfig(_Frozen):
    """Overrides for parcels whose ``region`` column names this region."""

    crops: dict[str, CropOverride] = {}


class CreditConfig(_Frozen):
    """Loan-limit policy: rates, ceilings, caps and decision thresholds (money in `currency`)."""

    currency: str = "CNY"  # ISO 4217, upper case: runs are compared by it
    price_haircut: Fraction = 0.9
    advance_rate: Fraction = 0.8
    cost_ceiling_factor: NonNegative = 1.0
    parcel_cap: NonNegative = 100_000
    borrower_cap: NonNegative = 200_000
    rounding_step: Annotated[Number, Field(ge=0.01, multiple_of=0.01)] = 100  # whole cents
    min_loan: NonNegative = 1000
    declared_area_band: tuple[NonNegative, NonNegative] = (0.8, 1.2)
    # What a declaration may differ from the imagery's interval on any parcel (ha): one 10 m pixel, and the 0.01 ha a
    # declaration is written to (0.15 mu to 0.1 mu), which on a plot under 0.05 ha is over declared_area_band's share.
    declared_area_slack_ha: NonNegative = 0.01
    low_health_index: Annotated[Number, Field(ge=0.0, le=100.0)] = 25
    overlap_share: Annotated[Number, Field(gt=0.0, le=1.0)] = 0.2
    # A piece two parcels share narrower than this on average (m) is outlines drawn apart, not land pledged twice: it
    # does not add to a parcel's cumulative overlap (half a 10 m pixel, about a phone GPS's error).
    overlap_sliver_m: NonNegative = 5.0
    # A parcel naming a region (or none: the national prices) unlike most other borrowers' parcels within this
    # distance (m, centroid to centroid) is referred REGION_UNLIKE_NEIGHBOURS where its region's prices lend it more;
    # 0 checks none.
    region_check_m: NonNegative = 1000.0
    max_reasons: Annotated[Count, Field(ge=1, le=10)] = 4
    # The area the limit is worked from: the cultivated area's estimate, or the low end of its interval (prudent).
    lend_on_area: Literal["estimate", "low"] = "estimate"
    grades: tuple[GradeBand, ...] = (
        GradeBand(grade="A", max_pd=0.03, multiplier=1.0),
        GradeBand(grade="B", max_pd=0.06, multiplier=0.9),
        GradeBand(grade="C", max_pd=0.10, multiplier=0.75),
        GradeBand(grade="D", max_pd=0.20, multiplier=0.5),
        GradeBand(grade="E", max_pd=1.0, multiplier=0.0),
    )

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        code = value.strip().upper()
        meant = LOCAL_CURRENCY_NAMES.get(re.sub(r"[\s.]", "", code))
        if meant:  # GHC is also the old cedi's code, replaced in 2007
            raise ValueError(f"{value!r} is a local name of {meant}: give its ISO 4217 code, {meant}")
        if code in ISO_4217_NOT_LENT:
            raise ValueError(f"{value!r} is an ISO 4217 code of a precious metal, fund, accounting or testing unit, "
                             "not a currency to lend in: give the code of the currency lent in, e.g. CNY, KES, GHS, "
                             "NGN, USD")
        if code not in ISO_4217:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code: give its three letters, e.g. CNY, KES, "
                             "GHS, NGN, USD")
        return code

    @model_validator(mode="after")
    def _consistent(self) -> CreditConfig:
        low, high = self.declared_area_band
        if not low < 1.0 < high:
            raise ValueError("declared_area_band must be [low, high] with low < 1 < high")
        if self.parcel_cap > self.borrower_cap:
            raise ValueError("parcel_cap must not exceed borrower_cap")
        # A borrower's total is capped, then rounded down: the largest limit any borrower can be offered.
        cap, step, minimum = (Decimal(repr(value)).normalize()
                              for value in (self.borrower_cap, self.rounding_step, self.min_loan))
        most = (cap // step * step).normalize()
        if not most:
            raise ValueError(f"rounding_step {step:,f} exceeds borrower_cap {cap:,f}: every limit would round down "
                             "to 0")
        if minimum > most:
            raise ValueError(f"min_loan {minimum:,f} is above borrower_cap {cap:,f} rounded down to a multiple of "
                             f"rounding_step {step:,f} ({most:,f}), the most any borrower can be offered: every "
                             "borrower would be declined LIMIT_BELOW_MINIMUM")
        if self.min_loan < self.rounding_step:
            raise ValueError("min_loan must be at least rounding_step (a borrower whose total rounds down to 0 would "
                             "be approved at 0)")
        names = [band.grade for band in self.grades]
        if len(set(names)) != len(names):
            raise ValueError(f"grades: each grade needs its own name, got {names}")
        bounds = [band.max_pd for band in self.grades]
        factors = [band.multiplier for band in self.grades]
        # Worse grades must never lend more: that is what keeps the limit monotonic.
        if not bounds or bounds != sorted(bounds) or bounds[-1] < 1.0 or factors != sorted(factors, reverse=True):
            raise ValueError("grades: max_pd must rise to 1.0 and multiplier must not rise from grade to grade")
        return self


class Config(_Frozen):
    """The whole run configuration."""

    imagery: ImageryConfig = ImageryConfig()
    parcels: ParcelsConfig = ParcelsConfig()
    cropland_rule: CroplandRuleConfig = CroplandRuleConfig()
    agronomy: AgronomyConfig = AgronomyConfig()
    crops: Annotated[dict[str, CropConfig], Field(min_length=1)]
    credit: CreditConfig = CreditConfig()
    regions: dict[str, RegionConfig] = {}

    @field_validator("regions")
    @classmethod
    def _regions_in_one_form(cls, regions: dict[str, RegionConfig]) -> dict[str, RegionConfig]:
        """Region names in one Unicode form (``composed``), as parcels' are matched: a keyboard's ড় or ড + nukta."""
        same = [name for name in regions if composed(name) != name and composed(name) in regions]
        if same:
            raise ValueError(f"regions: {', '.join(map(repr, same))} and the same name typed otherwise are both given; "
                             "keep one")
        return {composed(name): region for name, region in regions.items()}

    @model_validator(mode="after")
    def _regions_name_known_crops(self) -> Config:
        reserved = sorted(name for name in self.crops if folded(name) in (*DECLARED_FALLOW, *DECLARED_UNKNOWN))
        if reserved:
            raise ValueError(f"crops: {', '.join(reserved)} names what a parcel is when no crop fits; name the crop "
                             "otherwise")
        named: dict[str, str] = {}
        for crop, spec in self.crops.items():
            for name in (crop, *spec.aliases):
                key = folded(name)
                if key in (*DECLARED_FALLOW, *DECLARED_UNKNOWN) or named.setdefault(key, crop) != crop:
                    raise ValueError(f"crops.{crop}.aliases: {name!r} also names "
                                     f"{named.get(key, 'what a parcel is when no crop fits')}; a name may mean one "
                                     "crop (a crop copied with <<: keeps the aliases of the one it copies)")
        for region, overrides in self.regions.items():
            unknown = sorted(name for name in overrides.crops if self.crop_named(name) not in self.crops)
            if unknown:
                raise ValueError(f"regions.{region}.crops: unknown crop(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(self.crops)}")
            meant: dict[object, str] = {}
            for name in overrides.crops:
                other = meant.setdefault(self.crop_named(name), name)
                if other != name:
                    raise ValueError(f"regions.{region}.crops: {other!r} and {name!r} name the same crop; give its "
                                     "overrides once")
        return self

    @model_validator(mode="after")
    def _own_crops_give_other_costs(self) -> Config:
        # Left out, other costs are 0: cotton added with the keys the unknown-crop warning named was lent on its whole
        # revenue, 23% more than at the 10% of cost_per_ha the packaged crops take, and nothing said so. A packaged
        # crop (by its name or an alias) keeps the default, as configs written before this check do.
        packaged = _packaged_crops()
        names = _crop_names(tuple((crop, tuple(spec.get("aliases", ()))) for crop, spec in packaged.items()))
        missing = [(crop, spec) for crop, spec in self.crops.items() if "other_cost_per_ha" not in spec.model_fields_set
                   and not any(folded(name) in names for name in (crop, *spec.aliases))]
        if not missing:
            return self
        shares = [round(spec["other_cost_per_ha"] / spec["cost_per_ha"], 2) for spec in packaged.values()]
        low, high = min(shares), max(shares)
        raise ValueError("; ".join(
            f"crops.{crop}: other_cost_per_ha missing, which a crop the packaged config does not define must give: "
            f"the cash its harvest pays besides the loan ({self.credit.currency} per ha: hired harvest machinery, "
            f"irrigation fees, transport, and rent on rented land); the packaged crops take "
            f"{low:.0%}{'' if low == high else f'-{high:.0%}'} of their cost_per_ha ({low * spec.cost_per_ha:,.0f}"
            f"{'' if low == high else f'-{high * spec.cost_per_ha:,.0f}'} here); give 0 if there truly is none"
            for crop, spec in missing))

    @model_validator(mode="after")
    def _prices_yields_and_costs_in_their_units(self) -> Config:
        # Checked here, not on each crop, as the message names the currency (credit.currency) prices are in.
        specs = [(f"crops.{crop}", spec) for crop, spec in self.crops.items()] + [
            (f"regions.{region}.crops.{name}", self.crop(self.crop_named(name), region))
            for region, overrides in self.regions.items() for name in overrides.crops]
        slips = [f"{key}: {slip}" for key, spec in specs if (slip := spec.unit_slip(self.credit.currency))]
        if slips:
            raise ValueError("; ".join(slips))
        return self

    def crop_named(self, declared: object) -> str | None:
        """The crop a declared name means (its name or an alias, ignoring case, width and outer spaces): ``fallow``
        for a word of ``DECLARED_FALLOW`` (休耕), None for one of ``DECLARED_UNKNOWN`` (未知, as if none were
        declared, or no text: a missing value, NA included, which ``==`` cannot compare); what was declared, unchanged,
        when it names no crop the config knows."""
        if not isinstance(declared, str):
            return None
        key = folded(declared)
        if key in DECLARED_FALLOW:
            return FALLOW
        if key in DECLARED_UNKNOWN:
            return None
        return self.crop_name_keys.get(key, declared)

    @property
    def crop_name_keys(self) -> dict[str, str]:
        """Each crop's name and aliases, ``folded`` as ``crop_named`` matches them, -> the crop."""
        return _crop_names(tuple((crop, spec.aliases) for crop, spec in self.crops.items()))

    def crop(self, name: str, region: str | None = None) -> CropConfig | None:
        """The crop's settings with the region's overrides (named by the crop's name or an alias) applied; None for an
        unknown crop."""
        base = self.crops.get(name)
        overrides = self.regions[region].crops if base and region in self.regions else {}
        override = next((spec for key, spec in overrides.items() if self.crop_named(key) == name), None)
        if override is None:
            return base
        return base.model_copy(update=override.model_dump(exclude_none=True))

    def prices_per_jin(self, packaged: Config) -> str:
        """Which of the prices (of crops and regions) look like prices per 斤 (0.5 kg) rather than per kg: under
        ``PER_JIN_BELOW`` times the lowest price ``packaged`` gives the same crop (by its name or an alias) in any
        region ('' when none do, or when the prices are in another currency than ``packaged``'s)."""
        if self.credit.currency != packaged.credit.currency:  # priced in another currency: no price to hold them to
            return ""
        low = []
        for crop, spec in self.crops.items():
            known = next((name for name in map(packaged.crop_named, (crop, *spec.aliases)) if name in packaged.crops),
                         None)
            if known is None:
                continue
            floor = min(packaged.crop(known, region).price for region in (None, *packaged.regions))
            given = [(f"crops.{crop}.price", spec.price)] + [
                (f"regions.{region}.crops.{name}.price", override.price)
                for region, overrides in self.regions.items() for name, override in overrides.crops.items()
                if override.price is not None and self.crop_named(name) == crop]
            low += [f"{key} {price:g} (packaged {known}: {floor:g})" for key, price in given
                    if price < PER_JIN_BELOW * floor]
        if not low:
            return ""
        return (f"price(s) under {PER_JIN_BELOW:g} times the packaged price of their crop: {some(low, 5)}; prices are "
                "CNY per kg; a price per 斤 (500 g) is half of it: double it (a price this low that is right for its "
                "region may stay)")

    def money_left_packaged(self, packaged: Config) -> tuple[str, ...]:
        """credit's money keys (``CREDIT_MONEY_KEYS``) at ``packaged``'s values in a config in another currency than
        ``packaged``'s (none in its currency), given or left out; but a ``rounding_step`` the file gives at its
        packaged figure beside another amount of money of its own.

        A step of 100 is a step in many currencies, and a file that sets a figure of its own in its currency has been
        written for it (a ``rounding_step: 100`` beside caps in KES is meant); caps and a minimum loan at the yuan
        figures are not (a copied config with only borrower_cap edited for IDR kept a parcel cap of 100,000 IDR,
        about 6 USD), nor a rounding_step where every amount is the packaged one."""
        if self.credit.currency == packaged.credit.currency:
            return ()
        given = self.credit.model_fields_set
        packaged_values = [key for key in CREDIT_MONEY_KEYS
                           if getattr(self.credit, key) == getattr(packaged.credit, key)]
        own = any(key in given and key not in packaged_values for key in CREDIT_MONEY_KEYS)
        meant = own and "rounding_step" in given
        return tuple(key for key in packaged_values if key != "rounding_step" or not meant)

    def config_hash(self) -> str:
        """Return a short SHA-256 of the settings as they are used: the same settings, however written, the same hash.

        A region's crop named by an alias is the crop (``小麦:`` is ``wheat:``), and aliases count as parcels' names
        are matched, folded (``Milho`` is ``milho``), as a set, without the crop's own name.
        """
        values = self.model_dump(mode="json")
        for crop, spec in values["crops"].items():
            spec["aliases"] = sorted({folded(alias) for alias in spec["aliases"]} - {folded(crop)})
        for region in values["regions"].values():
            region["crops"] = {self.crop_named(name): override for name, override in region["crops"].items()}
        return canonical_hash(values)


def _point_outside(points: tuple[tuple[float, float], ...], within: Callable[[float, float], bool]) -> str:
    """The first of ``points`` (numbered from 1) not ``within`` the ranges, in words ('' when all are)."""
    k, point = next(((k, point) for k, point in enumerate(points, 1) if not within(*point)), (0, None))
    return f"point {k}, [{point[0]:g}, {point[1]:g}], is outside them" if point else ""


def _as_set(values: tuple) -> tuple:
    """A list whose order means nothing, sorted and without repeats: the same settings, the same config hash."""
    return tuple(sorted(set(values)))


@lru_cache(maxsize=1)
def _packaged_crops() -> dict[str, dict]:
    """The packaged config's crops as written: name -> its keys."""
    return yaml.safe_load(packaged_config_text())["crops"]


@lru_cache(maxsize=16)
def _crop_names(crops: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, str]:
    """Name key (``folded``: Ｗｈｅａｔ is wheat, but 小麥 is not 小麦, a second script) -> crop, of (crop, aliases)
    pairs (cached by value: a config copied with other crops gets its own)."""
    return {folded(name): crop for crop, aliases in crops for name in (crop, *aliases)}


_TEXT, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, reading every key as the text written (a config's keys are names: YAML 1.1 read region
    ``ON`` as true, ``0101`` as 65, ``410100`` as a number, and the error named keys never written), and refusing a
    key given twice in one mapping (the second would silently replace the first, a whole ``credit:`` section say)."""

    def construct_document(self, node: yaml.Node) -> object:
        # Every mapping's keys as text before any is built: a merge (<<: *x) may build an anchored mapping first.
        stack, seen = [node], set()
        while stack:
            item = stack.pop()
            if id(item) in seen or isinstance(item, yaml.ScalarNode):
                continue
            seen.add(id(item))
            pairs = item.value if isinstance(item, yaml.MappingNode) else [(None, value) for value in item.value]
            for key, value in pairs:
                if isinstance(key, yaml.ScalarNode) and key.tag not in (_TEXT, _MERGE):
                    key.tag = _TEXT
                stack.append(value)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        # Merge keys (<<: *anchor) are YAML's way to reuse a mapping, not a key given twice.
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value if key.tag != _MERGE]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"key(s) {', '.join(repeated)} given twice",
                                                    node.start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads 1e5 (no dot, no exponent sign) as text, which the numeric fields refuse: read it as the number meant.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """PyYAML's error about ``text`` in one line: where (line:column, from 1) and what, without its echo of the
    line."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow: placed by its offset
        line, column = text.count("\n", 0, exc.position) + 1, exc.position - text.rfind("\n", 0, exc.position)
        return f"line {line}:{column}: character #x{exc.character:04x}: {exc.reason}"
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return " ".join(str(exc).split())
    context = f" ({exc.context})" if getattr(exc, "context", None) else ""
    return f"line {mark.line + 1}:{mark.column + 1}: {exc.problem}{context}"


def packaged_config_text() -> str:
    """The packaged default configuration as YAML text, with the sources of its values in comments: a start for a
    region's own ``--config`` file (``farmcredit config --out region.yaml``)."""
    return resources.files("farmcredit").joinpath("default_config.yaml").read_text(encoding="utf-8")


def load_config(path: str | Path | Mapping | Config | None = None) -> Config:
    """Load and validate a YAML configuration; ``None`` loads the packaged default, a mapping (``config=`` in Python,
    as a file's YAML reads) is taken as a file's would be, and a ``Config`` is checked as one (``model_copy`` checks
    nothing), without the warnings its loading gave. Sections a file leaves out take the packaged values; a
    ``crops`` section it gives replaces the packaged crops whole. Warns (the ``farmcredit``
    logger) of a file's prices that look like prices per 斤 (``Config.prices_per_jin``), and of credit's amounts of
    money left at the packaged values in another currency (``Config.money_left_packaged``).

    Raises:
        ConfigError: the file is missing, not YAML, or a key is invalid (the key is named), or it sets another
            ``credit.currency`` than the packaged one but keeps the packaged crops, priced in the packaged currency,
            or gives crops of its own but no ``credit.currency`` (not taken as the packaged one: its prices may be in
            any currency).
    """
    if isinstance(path, Config):
        return _validated(path.model_dump(), "config= (a Config)")
    packaged = packaged_config_text()
    if isinstance(path, Mapping):
        text, source = None, "config= (a mapping)"
    elif not isinstance(path, str | Path | None):
        raise ConfigError(f"config= is a YAML file's path, a mapping of its sections or a Config, not "
                          f"{type(path).__name__}")
    elif path is None:
        text, source = packaged, "default configuration"
    else:
        try:
            text = _config_text(Path(path).read_bytes(), path)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it "
                              "as UTF-8") from exc
        source = str(path)
    try:
        raw = copy.deepcopy(dict(path)) if text is None else yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {_yaml_problem(exc, text)}") from exc
    except RecursionError as exc:  # PyYAML's composer recurses once per level of nesting
        raise ConfigError(f"{source} is not valid YAML: nested too deeply") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping of sections (imagery, crops, credit, ...)")
    packaged_crops = "crops" not in raw
    if not packaged_crops and path is not None:
        _refuse_own_crops_without_currency(raw, source)
    if packaged_crops:  # the other sections' defaults are the packaged values; the crops have none
        raw = {**raw, "crops": yaml.safe_load(packaged)["crops"]}
    config = _validated(raw, source)
    if path is None:
        return config
    default = load_config()
    currency, default_currency = config.credit.currency, default.credit.currency
    if packaged_crops and currency != default_currency:
        raise ConfigError(f"invalid config {source}: credit.currency is {currency} but the crops' prices and costs "
                          f"are the packaged {default_currency} ones: give a crops section in {currency} "
                          "(farmcredit config --out mine.yaml writes one to edit)")
    slips = config.prices_per_jin(default)
    if slips:
        logger.warning("%s: %s", source, slips)
    left = config.money_left_packaged(default)
    if left:
        one = len(left) == 1
        logger.warning("%s: credit.currency is %s but %s %s the packaged %s in %s (%s): give %s in %s (a "
                       "rounding_step given at its packaged value is taken as meant where the file gives another "
                       "amount of money in %s)", source, currency, ", ".join(f"credit.{key}" for key in left),
                       "is" if one else "are", "value" if one else "values", default_currency,
                       ", ".join(f"{getattr(default.credit, key):,g}" for key in left), "it" if one else "them",
                       currency, currency)
    return config


def _refuse_own_crops_without_currency(raw: dict, source: str) -> None:
    """Refuse a file's (or mapping's) own ``crops`` section given without ``credit.currency``.

    Its prices and costs may be in any currency, and left out the currency is the packaged one (CNY): a Zambian file
    priced in kwacha lent its kwacha figures as yuan, under yuan caps and minimum, in silence.

    Raises:
        ConfigError: naming ``source`` and the line to add.
    """
    credit = raw.get("credit") or {}
    if not isinstance(credit, Mapping) or "currency" in credit:  # a credit that is no mapping is refused as invalid
        return
    default = CreditConfig.model_fields["currency"].default
    raise ConfigError(f"invalid config {source}: it gives a crops section of its own but no credit.currency, which "
                      f"would lend in {default} whatever currency its prices and costs are in: add "
                      f"`currency: {default}` under `credit:` (a `credit:` section of its own where the file has none) "
                      "where they are in yuan (as `farmcredit config --out FILE` writes it), or the ISO 4217 code of "
                      "theirs (e.g. ZMW, KES, INR)")


def _validated(values: dict, source: str) -> Config:
    """``values`` as a ``Config``, checked.

    Raises:
        ConfigError: naming ``source`` and each key refused, with why.
    """
    try:
        return Config.model_validate(values)
    except ValidationError as exc:
        # A check of the whole config (regions naming crops) has no key of its own: its message names the keys. A
        # check's own message is given without pydantic's "Value error, " before it.
        messages = [err["msg"].removeprefix("Value error, ") for err in exc.errors()]
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {msg}" if err["loc"] else msg
                             for err, msg in zip(exc.errors(), messages))
        raise ConfigError(f"invalid config {source}: {problems}") from exc


def _config_text(data: bytes, path: str | Path) -> str:
    """A config file's text: UTF-8, its byte-order mark (Notepad's) taken off.

    Raises:
        ConfigError: it is UTF-16 (PowerShell 5's ``>`` writes it, after reading the UTF-8 it was given in the
            console's code page: 小麦 came out as 灏忛害, and every parcel declaring it an unknown crop).
        UnicodeDecodeError: it is not UTF-8.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"config file {path} is UTF-16 text (as PowerShell 5's > writes it, garbling what is not "
                          "ASCII on the way); write it with `farmcredit config --out FILE`, or save it as UTF-8")
    return data.decode("utf-8-sig")
