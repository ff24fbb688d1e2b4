"""Seasonal course of each land cover: endmember cover fractions by day of year.

Crop calendars follow typical Huai-river / North China Plain figures (as configs/default.yaml states):
winter wheat green in March, peaking mid April-early May, harvested early June; summer maize and soybean sown
mid-late June, peaking in August, harvested late September; single-season rice flooded for
transplanting in late May-June (LSWI + 0.05 >= NDVI), peaking in August, harvested early October.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from farmcredit.simulate.landscape import COVERS, LandObject
from farmcredit.simulate.spectra import ENDMEMBERS

CHANNEL: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(ENDMEMBERS)})


@dataclass(frozen=True)
class CropCalendar:
    """Timing (day of year) and amplitude of one crop's green cover.

    Attributes:
        peak_cover: Green cover at the peak for a fully healthy field, 0-1.
        base_cover: Green cover before green-up (overwintered wheat, transplanted seedlings).
        base_from: Day the base cover appears (sowing or transplanting).
        green_up: Day of half green-up.
        green_up_days: Logistic width of the green-up, days.
        senescence: Day of half senescence (green turns to dry residue).
        senescence_days: Logistic width of senescence, days.
        harvest: Harvest day.
        residue: Dry stubble cover left at harvest, decaying after.
        broadleaf: True for broadleaf canopies (soybean), False for cereals.
        flood: (flooding, draining) days of a paddy, or None.
    """

    peak_cover: float
    base_cover: float
    base_from: float
    green_up: float
    green_up_days: float
    senescence: float
    senescence_days: float
    harvest: float
    residue: float
    broadleaf: bool = False
    flood: tuple[float, float] | None = None


CALENDARS: Mapping[str, CropCalendar] = MappingProxyType(
    {
        "wheat": CropCalendar(0.95, 0.30, -400.0, 82.0, 7.0, 150.0, 5.0, 158.0, 0.35),
        "maize": CropCalendar(0.97, 0.0, 166.0, 198.0, 7.0, 258.0, 6.0, 272.0, 0.40),
        "rice": CropCalendar(0.95, 0.08, 158.0, 195.0, 9.0, 262.0, 6.0, 283.0, 0.35, flood=(150.0, 240.0)),
        "soybean": CropCalendar(0.85, 0.0, 170.0, 203.0, 7.0, 252.0, 5.0, 268.0, 0.25, broadleaf=True),
    }
)


def peak_day(crop: str) -> float:
    """Day of year of a crop's maximum green cover (unshifted calendar)."""
    days = np.arange(1.0, 366.0)
    fractions = _crop(CALENDARS[crop], days, np.ones_like(days))
    green = fractions[:, CHANNEL["gv_grass"]] + fractions[:, CHANNEL["gv_broadleaf"]]
    return float(days[np.argmax(green)])


def cover_fractions(objects: Sequence[LandObject], day_of_year: float) -> np.ndarray:
    """Endmember cover fractions of every object on one day.

    Args:
        objects: Land-cover objects.
        day_of_year: Day of the year (1 = 1 January), fractional allowed.

    Returns:
        float32 (len(objects), len(ENDMEMBERS)); rows sum to 1 (soil not yet scaled by brightness).
    """
    table = np.zeros((len(objects), len(ENDMEMBERS)), np.float32)
    covers = np.array([o.cover for o in objects])
    vigour = np.array([o.vigour for o in objects])
    days = day_of_year - np.array([o.shift_days for o in objects])
    for cover in COVERS:
        chosen = covers == cover
        if not chosen.any():
            continue
        if cover == "crop":
            crops = np.array([o.crop for o in objects])
            for crop, calendar in CALENDARS.items():
                rows = chosen & (crops == crop)
                table[rows] = _crop(calendar, days[rows], vigour[rows])
        else:
            table[chosen] = _OTHER[cover](days[chosen], vigour[chosen])
    return table


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))


def _bump(days: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((days - centre) / width) ** 2)


def _table(days: np.ndarray, **channels: np.ndarray | float) -> np.ndarray:
    """Fractions from named channels; soil takes whatever is left."""
    table = np.zeros((len(days), len(ENDMEMBERS)))
    for name, value in channels.items():
        table[:, CHANNEL[name]] = value
    table[:, CHANNEL["soil"]] = np.clip(1.0 - table.sum(axis=1), 0.0, 1.0)
    return table


def _crop(calendar: CropCalendar, days: np.ndarray, health: np.ndarray) -> np.ndarray:
    peak = calendar.peak_cover * health
    base = calendar.base_cover * _logistic((days - calendar.base_from) / 2.0)
    canopy = base + (peak - base) * _logistic((days - calendar.green_up) / calendar.green_up_days)
    senesced = _logistic((days - calendar.senescence) / calendar.senescence_days)
    harvested = _logistic((days - calendar.harvest) / 1.5)
    since_harvest = np.maximum(days - calendar.harvest, 0.0)
    # After harvest: stubble decays over weeks while volunteer weeds come up.
    weeds = 0.06 * _logistic((since_harvest - 25.0) / 6.0)
    green = (1 - harvested) * canopy * (1 - senesced) + harvested * weeds
    dry = (1 - harvested) * 0.85 * canopy * senesced + harvested * calendar.residue * np.exp(-since_harvest / 40.0)
    channels: dict[str, np.ndarray] = {"gv_broadleaf" if calendar.broadleaf else "gv_grass": green, "npv": dry}
    if calendar.flood is not None:
        start, drain = calendar.flood
        flooded = _logistic((days - start) / 2.0) * (1 - _logistic((days - drain) / 4.0))
        # Standing water fills the paddy wherever the canopy does not cover it.
        channels["water"] = 0.9 * flooded * np.clip(1.0 - green - dry, 0.0, 1.0)
    return _table(days, **channels)


def _fallow(days: np.ndarray, vigour: np.ndarray) -> np.ndarray:
    summer = _bump(days, 205.0, 40.0)
    return _table(days, gv_grass=vigour * (0.05 + 0.15 * summer), npv=0.15 + 0.1 * (1 - summer))


def _forest(days: np.ndarray, vigour: np.ndarray) -> np.ndarray:
    # Poplar and paulownia: bare-branched into March, full leaf from late April, colouring in October.
    leaf = 0.55 + 0.35 * _logistic((days - 105.0) / 7.0) - 0.15 * _logistic((days - 295.0) / 7.0)
    return _table(days, gv_broadleaf=leaf * (0.85 + 0.15 * vigour), npv=0.08)


def _grass(days: np.ndarray, vigour: np.ndarray) -> np.ndarray:
    return _table(days, gv_grass=vigour * (0.30 + 0.30 * _bump(days, 200.0, 55.0)), npv=0.15)


def _water(days: np.ndarray, vigour: np.ndarray) -> np.ndarray:
    # Algae and floating plants in summer; suspended silt shows as a little soil.
    algae = 0.04 * vigour * _bump(days, 210.0, 40.0)
    return _table(days, water=0.94 - algae, gv_grass=algae)


def _village(days: np.ndarray, vigour: np.ndarray) -> np.ndarray:
    trees = vigour * (0.10 + 0.12 * _logistic((days - 105.0) / 7.0))
    return _table(days, built=0.5, asphalt=0.12, gv_broadleaf=trees)


def _road(days: np.ndarray, vigour: np.ndarray) -> np.ndarray:
    return _table(days, asphalt=0.92)


def _track(days: np.ndarray, vigour: np.ndarray) -> np.ndarray:
    return _table(days, gv_grass=0.06 + 0.06 * _bump(days, 200.0, 50.0))


_OTHER: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = MappingProxyType(
    {
        "fallow": _fallow,
        "forest": _forest,
        "grass": _grass,
        "water": _water,
        "village": _village,
        "road": _road,
        "track": _track,
    }
)
