"""spectral_indices: formulas, clear masking, absent bands, safe division."""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from farmcredit.imagery import SeasonCube, spectral_indices


def cube_of(reflectance: dict[str, list[float]], clear: list[bool] | None = None) -> SeasonCube:
    """A one-date, one-row cube with one column per listed value."""
    bands = tuple(reflectance)
    values = np.array([reflectance[band] for band in bands], dtype=np.float32)[None, :, None, :]
    width = values.shape[-1]
    return SeasonCube(
        reflectance=values,
        clear=np.array(clear if clear is not None else [True] * width)[None, None, :],
        bands=bands,
        dates=(date(2024, 6, 1),),
        scene_ids=("s",),
        source=np.zeros((1, 1, width), dtype=np.int16),
        transform=from_origin(0, 0, 10, 10),
        crs=CRS.from_epsg(32650),
        read_errors=(),
        lost=np.zeros((1, 1, width), dtype=bool),
        uncovered=np.zeros((1, 1, width), dtype=bool),
        error_lost=np.zeros((0, 1, width), dtype=bool),
        snow=np.zeros((1, 1, width), dtype=bool),
        snow_unmasked=np.zeros((1, 1, width), dtype=bool),
    )


def test_indices_follow_their_formulas() -> None:
    blue, red, red_edge, nir, narrow_nir, swir = 0.04, 0.05, 0.10, 0.40, 0.38, 0.20
    cube = cube_of(
        {"B02": [blue], "B04": [red], "B05": [red_edge], "B08": [nir], "B8A": [narrow_nir],
         "B11": [swir]}
    )

    indices = spectral_indices(cube)

    assert set(indices) == {"ndvi", "ndre", "ndmi", "evi"}
    assert indices["ndvi"][0, 0, 0] == pytest.approx((nir - red) / (nir + red), rel=1e-6)
    assert indices["ndre"][0, 0, 0] == pytest.approx(
        (narrow_nir - red_edge) / (narrow_nir + red_edge), rel=1e-6
    )
    assert indices["ndmi"][0, 0, 0] == pytest.approx(
        (narrow_nir - swir) / (narrow_nir + swir), rel=1e-6
    )
    assert indices["evi"][0, 0, 0] == pytest.approx(
        2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1), rel=1e-6
    )
    assert {values.dtype for values in indices.values()} == {np.dtype(np.float32)}
    assert {values.shape for values in indices.values()} == {(1, 1, 1)}


def test_ndmi_falls_back_to_b08_without_b8a() -> None:
    indices = spectral_indices(cube_of({"B04": [0.05], "B08": [0.40], "B11": [0.20]}))

    assert indices["ndmi"][0, 0, 0] == pytest.approx(0.2 / 0.6, rel=1e-6)
    assert np.isnan(indices["ndre"]).all() and np.isnan(indices["evi"]).all()


def test_indices_are_nan_where_not_clear() -> None:
    cube = cube_of({"B04": [0.05, 0.05], "B08": [0.4, 0.4]}, clear=[True, False])

    ndvi = spectral_indices(cube)["ndvi"]

    assert np.isfinite(ndvi[0, 0, 0]) and np.isnan(ndvi[0, 0, 1])


def test_zero_and_nan_denominators_give_nan_without_warnings() -> None:
    cube = cube_of(
        {"B02": [0.0, np.nan, 0.2], "B04": [0.0, np.nan, 0.0], "B08": [0.0, np.nan, 0.5]}
    )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        indices = spectral_indices(cube)

    assert np.isnan(indices["ndvi"][0, 0, :2]).all()
    assert indices["ndvi"][0, 0, 2] == pytest.approx(1.0)
    # EVI's denominator: 0.5 + 6 * 0 - 7.5 * 0.2 + 1 = 0.
    assert np.isnan(indices["evi"][0, 0, 2])


def test_evi_is_nan_where_its_denominator_nears_zero_not_plus_or_minus_twenty() -> None:
    """A blue steel roof (B02 0.24, B04 0.09, B08 0.24): denominator -0.02, EVI -18.75, enough to sway a parcel's
    mean. Vegetation, bare soil and water keep theirs."""
    cube = cube_of({"B02": [0.24, 0.14, 0.03, 0.10, 0.06], "B04": [0.09, 0.03, 0.04, 0.19, 0.055],
                    "B08": [0.24, 0.40, 0.45, 0.27, 0.018]})
    evi = spectral_indices(cube)["evi"][0, 0]
    # The roof; a pixel reading 1.75 (denominator 0.53), which held to 1 would read as the greenest canopy.
    assert np.isnan(evi[:2]).all() and np.isfinite(evi[2:]).all() and (np.abs(evi[2:]) <= 1).all()


def test_evi_of_a_dense_canopy_is_held_to_1_not_dropped() -> None:
    """B02 0.04, B04 0.02, B08 0.60 gives 1.02: dropped, it would pull a parcel's mean EVI down."""
    evi = spectral_indices(cube_of({"B02": [0.04], "B04": [0.02], "B08": [0.60]}))["evi"]
    assert evi[0, 0, 0] == 1.0
