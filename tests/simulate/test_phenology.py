"""Crop calendars and spectra: the index signatures downstream code relies on."""

from __future__ import annotations

import numpy as np
from shapely.geometry import Polygon

from farmcredit.simulate.landscape import LandObject
from farmcredit.simulate.phenology import cover_fractions, peak_day
from farmcredit.simulate.spectra import ENDMEMBER_SPECTRA, ENDMEMBERS, band_index, mix


def _indices(objects: list[LandObject], day: float) -> tuple[np.ndarray, np.ndarray]:
    """(NDVI, LSWI) of each object on a day, from its pure, untextured mixture."""
    fractions = cover_fractions(objects, day)
    red, nir, nir08, swir16 = mix(fractions.T[:, :, None], [band_index(b) for b in ("B04", "B08", "B8A", "B11")])[
        :, :, 0
    ]
    return (nir - red) / (nir + red), (nir08 - swir16) / (nir08 + swir16)


def test_fractions_sum_to_one_every_day() -> None:
    objects = [LandObject(Polygon(), "crop", crop, 0.8) for crop in ("wheat", "maize", "rice", "soybean")]
    objects += [
        LandObject(Polygon(), cover) for cover in ("fallow", "forest", "grass", "water", "village", "road", "track")
    ]
    for day in range(60, 310, 7):
        assert np.allclose(cover_fractions(objects, day).sum(axis=1), 1.0, atol=1e-5)


def test_crop_peaks_follow_the_north_china_plain_calendar() -> None:
    assert 100 <= peak_day("wheat") <= 126  # mid April - early May
    for crop in ("maize", "rice", "soybean"):
        assert 214 <= peak_day(crop) <= 244  # August


def test_wheat_is_green_in_march_and_bare_after_june_harvest() -> None:
    wheat, maize = LandObject(Polygon(), "crop", "wheat", 1.0), LandObject(Polygon(), "crop", "maize", 1.0)
    march, _ = _indices([wheat, maize], 85)
    july, _ = _indices([wheat, maize], 190)
    assert march[0] > 0.5 and march[1] < 0.25
    assert july[0] < 0.3


def test_flooded_rice_has_lswi_above_ndvi_at_transplanting() -> None:
    rice = LandObject(Polygon(), "crop", "rice", 0.9)
    flooded = []
    for day in range(145, 185):
        ndvi, lswi = _indices([rice], day)
        flooded.append(lswi[0] + 0.05 >= ndvi[0])
    assert sum(flooded) >= 15
    peak_ndvi, _ = _indices([rice], peak_day("rice"))
    assert peak_ndvi[0] > 0.75


def test_endmember_ndvi_is_realistic() -> None:
    red, nir = ENDMEMBER_SPECTRA[:, band_index("B04")], ENDMEMBER_SPECTRA[:, band_index("B08")]
    ndvi = dict(zip(ENDMEMBERS, (nir - red) / (nir + red)))
    assert 0.8 < ndvi["gv_grass"] < 0.92 and 0.8 < ndvi["gv_broadleaf"] < 0.92
    assert 0.1 < ndvi["soil"] < 0.2
    assert ndvi["water"] < -0.3


def test_healthier_fields_peak_greener() -> None:
    fields = [LandObject(Polygon(), "crop", "maize", health) for health in (0.6, 0.8, 1.0)]
    ndvi, _ = _indices(fields, peak_day("maize"))
    assert ndvi[0] < ndvi[1] < ndvi[2]
    assert ndvi[2] > 0.8
