"""Sentinel-2 L2A bands, the endmember spectra (surface reflectance, 0-1) mixed to render a scene, and random
reflectance made to read as land (``as_land``, for model inputs in tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _read_only(values: list[float] | list[list[float]]) -> np.ndarray:
    """A float32 array that cannot be modified (module constants stay constant)."""
    array = np.array(values, dtype=np.float32)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Band:
    """One Sentinel-2 MSI band as Earth Search v1 names and describes it.

    Attributes:
        name: File stem, e.g. "B04".
        asset: Earth Search asset key, e.g. "red".
        common_name: STAC eo common name.
        description: e.g. "Red (band 4)".
        resolution_m: Native pixel size, metres.
        centre_um: Centre wavelength, micrometres.
        fwhm_um: Full width at half maximum, micrometres.
    """

    name: str
    asset: str
    common_name: str
    description: str
    resolution_m: int
    centre_um: float
    fwhm_um: float

    @property
    def title(self) -> str:
        """Asset title as in Earth Search, e.g. "Red (band 4) - 10m"."""
        return f"{self.description} - {self.resolution_m}m"


# The twelve L2A reflectance bands in wavelength order (B10 cirrus is not in L2A).
BANDS: tuple[Band, ...] = (
    Band("B01", "coastal", "coastal", "Coastal aerosol (band 1)", 60, 0.443, 0.027),
    Band("B02", "blue", "blue", "Blue (band 2)", 10, 0.49, 0.098),
    Band("B03", "green", "green", "Green (band 3)", 10, 0.56, 0.045),
    Band("B04", "red", "red", "Red (band 4)", 10, 0.665, 0.038),
    Band("B05", "rededge1", "rededge", "Red edge 1 (band 5)", 20, 0.704, 0.019),
    Band("B06", "rededge2", "rededge", "Red edge 2 (band 6)", 20, 0.74, 0.018),
    Band("B07", "rededge3", "rededge", "Red edge 3 (band 7)", 20, 0.783, 0.028),
    Band("B08", "nir", "nir", "NIR 1 (band 8)", 10, 0.842, 0.145),
    Band("B8A", "nir08", "nir08", "NIR 2 (band 8A)", 20, 0.865, 0.033),
    Band("B09", "nir09", "nir09", "NIR 3 (band 9)", 60, 0.945, 0.026),
    Band("B11", "swir16", "swir16", "SWIR 1 (band 11)", 20, 1.61, 0.143),
    Band("B12", "swir22", "swir22", "SWIR 2 (band 12)", 20, 2.19, 0.242),
)
RESOLUTIONS_M: tuple[int, ...] = (10, 20, 60)

# Endmembers (the channels of a cover-fraction raster), in the order of ENDMEMBER_SPECTRA rows.
ENDMEMBERS: tuple[str, ...] = ("gv_grass", "gv_broadleaf", "npv", "soil", "water", "built", "asphalt")

# Reflectance per endmember and band (B01 ... B12 as in BANDS). Typical library values: cereal and
# broadleaf canopies (red 0.03, NIR 0.44-0.49: NDVI 0.87-0.9), dry residue, the yellow-brown
# loess-derived soils of the plain (red 0.19, NDVI 0.17), turbid water (NIR below red), concrete
# roofs and asphalt.
ENDMEMBER_SPECTRA = _read_only(
    [
        [0.020, 0.028, 0.068, 0.030, 0.105, 0.300, 0.400, 0.440, 0.450, 0.440, 0.200, 0.090],
        [0.020, 0.026, 0.072, 0.027, 0.115, 0.340, 0.460, 0.490, 0.500, 0.490, 0.220, 0.100],
        [0.060, 0.080, 0.120, 0.160, 0.200, 0.240, 0.270, 0.290, 0.300, 0.300, 0.380, 0.290],
        [0.080, 0.100, 0.140, 0.190, 0.220, 0.240, 0.260, 0.270, 0.280, 0.280, 0.350, 0.290],
        [0.060, 0.065, 0.075, 0.055, 0.045, 0.025, 0.020, 0.018, 0.015, 0.012, 0.008, 0.005],
        [0.120, 0.130, 0.150, 0.170, 0.180, 0.190, 0.200, 0.210, 0.210, 0.205, 0.240, 0.220],
        [0.070, 0.075, 0.082, 0.088, 0.092, 0.095, 0.098, 0.100, 0.102, 0.100, 0.115, 0.105],
    ]
)
# Thick cloud: bright and flat in the visible, darker in the SWIR (ice and large droplets absorb).
CLOUD_SPECTRUM = _read_only([0.56, 0.54, 0.52, 0.51, 0.51, 0.51, 0.51, 0.50, 0.50, 0.46, 0.34, 0.23])
CIRRUS_SPECTRUM = _read_only([0.36, 0.35, 0.34, 0.33, 0.33, 0.33, 0.33, 0.32, 0.32, 0.30, 0.24, 0.18])
# Share of the signal a full cloud shadow removes: diffuse skylight (blue-rich) still lights it.
SHADOW_DEPTH = _read_only([0.50, 0.55, 0.60, 0.65, 0.67, 0.70, 0.71, 0.72, 0.72, 0.72, 0.75, 0.75])


def band_indices(resolution_m: int) -> list[int]:
    """Positions in BANDS of the bands with a given native resolution (10, 20 or 60 m)."""
    return [i for i, band in enumerate(BANDS) if band.resolution_m == resolution_m]


def band_index(name: str) -> int:
    """Position of a band name ("B04") in BANDS."""
    return [band.name for band in BANDS].index(name)


def mix(fractions: np.ndarray, band_positions: list[int]) -> np.ndarray:
    """Linear mixture: reflectance of each band from endmember cover fractions.

    Args:
        fractions: (len(ENDMEMBERS), rows, cols) cover fractions (soil pre-scaled by brightness).
        band_positions: Which bands, as positions in BANDS.

    Returns:
        float32 reflectance, (len(band_positions), rows, cols).
    """
    spectra = ENDMEMBER_SPECTRA[:, band_positions]
    return np.tensordot(spectra.T, fractions, axes=1).astype(np.float32)


def as_land(blue: np.ndarray, green: np.ndarray, red: np.ndarray, nir: np.ndarray, swir1: np.ndarray) -> None:
    """Change random reflectance of one scale (0-1 or x 10000) in place so that no band pair reads as swapped
    (``farmcredit.segmentation.cnn.check_reflectance``): NIR at least red and green, green at least 0.71x red, blue
    under 1.6x green, SWIR1 from 0.51x red to 1.5x NIR (margins over the checks' 0.5 survive whole
    numbers)."""
    nir[...] = np.maximum(nir, np.maximum(red, green))
    green[...] = np.maximum(green, 0.71 * red)
    blue[...] = np.minimum(blue, 1.6 * green)
    swir1[...] = np.clip(swir1, 0.51 * red, 1.5 * nir)
