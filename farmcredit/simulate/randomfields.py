"""Smooth random fields: within-field texture, cloud decks."""

from __future__ import annotations

import numpy as np


def gaussian_field(shape: tuple[int, int], correlation_px: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary Gaussian random field with zero mean and unit standard deviation.

    White noise low-pass filtered in the Fourier domain by a Gaussian kernel, so the field wraps
    around at the edges (crop it from a larger one where that matters).

    Args:
        shape: (rows, cols) in cells.
        correlation_px: Standard deviation of the smoothing kernel, cells.
        rng: Random generator.

    Returns:
        float32 array of the given shape; zeros when ``correlation_px`` is so long that the shape holds no variation.

    Example:
        >>> field = gaussian_field((64, 64), 4.0, np.random.default_rng(0))
        >>> field.shape, round(float(field.std()), 3)
        ((64, 64), 1.0)
    """
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2.0 * (np.pi * correlation_px) ** 2 * (fx**2 + fy**2))
    field = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=shape)
    level = field.mean()
    field -= level
    spread = field.std()
    # Correlated far beyond the shape, what is left beside the mean is the mean's rounding (or nothing, at 48 px).
    if spread <= 100 * np.finfo(float).eps * abs(level):
        return np.zeros(shape, dtype=np.float32)
    field /= spread
    return field.astype(np.float32)
