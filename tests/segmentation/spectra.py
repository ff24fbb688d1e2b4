"""Random reflectance made to read as land, so the model's input checks take it for bands as named."""

from __future__ import annotations

import numpy as np


def as_land(blue: np.ndarray, green: np.ndarray, red: np.ndarray, nir: np.ndarray, swir1: np.ndarray) -> None:
    """Change random reflectance of one scale (0-1 or x 10000) in place so that no band pair reads as swapped
    (``farmcredit.segmentation.cnn.check_reflectance``): NIR at least red and green, green at least 0.71x red, blue
    under 1.6x green, SWIR1 from 0.51x red to 1.5x NIR (margins over the checks' 0.5 survive whole
    numbers)."""
    nir[...] = np.maximum(nir, np.maximum(red, green))
    green[...] = np.maximum(green, 0.71 * red)
    blue[...] = np.minimum(blue, 1.6 * green)
    swir1[...] = np.clip(swir1, 0.51 * red, 1.5 * nir)
