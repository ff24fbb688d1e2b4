"""Spectral indices of a season cube: NDVI, NDRE, NDMI and EVI on clear pixels."""

from __future__ import annotations

import numpy as np

from farmcredit.imagery.read import SeasonCube

# Land, water and vegetation keep EVI's denominator above about 0.8 (1 + NIR + 6 red - 7.5 blue); far below it, a
# bright blue surface drives EVI to +-20. The densest canopies reach about 1.05: beyond EVI_MAX, a pixel is wrong.
EVI_MIN_DENOMINATOR = 0.7
EVI_MAX = 1.1


def spectral_indices(cube: SeasonCube) -> dict[str, np.ndarray]:
    """NDVI (B08, B04), NDRE (B8A, B05), NDMI ((B8A or B08), B11) and EVI of every clear pixel.

    EVI = 2.5 (B08 - B04) / (B08 + 6 B04 - 7.5 B02 + 1), reflectance 0-1, held to -1..1; NaN where the
    denominator falls under ``EVI_MIN_DENOMINATOR`` or EVI beyond +-``EVI_MAX`` (a blue roof, haze: one such pixel
    would sway a parcel's mean).

    Args:
        cube: From `read_window`.

    Returns:
        "ndvi", "ndre", "ndmi", "evi" -> float32 (time, rows, cols); NaN where the pixel is not
        clear, a band is absent from the cube, or the denominator is 0 (EVI: see above).

    >>> indices = spectral_indices(cube)  # doctest: +SKIP
    >>> float(np.nanmedian(indices["ndvi"]))  # doctest: +SKIP
    0.62
    """

    def band(name: str) -> np.ndarray | None:
        return cube.reflectance[:, cube.bands.index(name)] if name in cube.bands else None

    blue, red, red_edge, nir, narrow_nir, swir = (
        band(name) for name in ("B02", "B04", "B05", "B08", "B8A", "B11")
    )
    moisture_nir = narrow_nir if narrow_nir is not None else nir
    indices = {
        "ndvi": _normalised_difference(nir, red),
        "ndre": _normalised_difference(narrow_nir, red_edge),
        "ndmi": _normalised_difference(moisture_nir, swir),
        "evi": _evi(blue, red, nir),
    }
    return {name: _on_clear(values, cube.clear) for name, values in indices.items()}


def _on_clear(values: np.ndarray | None, clear: np.ndarray) -> np.ndarray:
    """The index where clear, NaN elsewhere; all NaN when a band was missing (values None)."""
    if values is None:
        return np.full(clear.shape, np.nan, dtype=np.float32)
    values[~clear] = np.nan
    return values


def _normalised_difference(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return None
    return _safe_divide(a - b, a + b)


def _evi(
    blue: np.ndarray | None,
    red: np.ndarray | None,
    nir: np.ndarray | None,
) -> np.ndarray | None:
    if blue is None or red is None or nir is None:
        return None
    denominator = nir + 6.0 * red - 7.5 * blue + 1.0
    evi = _safe_divide(2.5 * (nir - red), denominator)
    evi[~(denominator >= EVI_MIN_DENOMINATOR) | ~(np.abs(evi) <= EVI_MAX)] = np.nan
    np.clip(evi, -1.0, 1.0, out=evi)
    return evi


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as float32; NaN where either is not finite or the divisor is 0."""
    out = np.full(numerator.shape, np.nan, dtype=np.float32)
    ok = np.isfinite(numerator) & np.isfinite(denominator) & (denominator != 0)
    np.divide(numerator, denominator, out=out, where=ok)
    return out
