"""The phenology rule: cropland is land that is sown and grows within the season."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from farmcredit.config import CroplandRuleConfig
from farmcredit.hashing import canonical_hash
from farmcredit.imagery import SeasonCube
from farmcredit.margins import AreaMargins, without_margins

if TYPE_CHECKING:
    from farmcredit.segmentation.cnn import Prediction


class CroplandModel(Protocol):
    """Anything that turns a season of indices into a per-pixel cropland probability."""

    name: str

    def predict_proba(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return P(cropland) as float32 (rows, cols) in [0, 1], NaN where it cannot tell.

        Args:
            cube: the window's season of reflectance and clear masks.
            indices: spectral indices of that cube (``ndvi``, ...), (time, rows, cols).
        """
        ...

    def describe(self) -> dict:
        """What the audit record says about the model: at least its ``name`` and a ``hash`` of all
        that decides its output (the same hash, the same probabilities, up to bf16 rounding on a GPU)."""
        ...


@runtime_checkable
class CroplandClassifier(CroplandModel, Protocol):
    """A cropland model that also names a class per pixel (the CNN; the rule has no classes)."""

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names; index 0 is non-crop."""
        ...

    def classify(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> Prediction:
        """P(cropland) and the class map (index into ``classes``, -1 where it cannot tell), in one pass."""
        ...


@dataclass(frozen=True)
class PhenologyRule:
    """Cropland probability from the clear-sky NDVI season of each pixel.

    A cultivated pixel reaches a high peak (``peak_mid``), rises from a bare or sparse state
    (its minimum stays under ``minimum_max``) and so has a large amplitude (``amplitude_mid``).
    Each test is a logistic of width ``scale`` and the probability is their product. The
    thresholds were set on simulated seasons, where forest (over half leafed in March) fails the
    minimum test, grassland and fallow the peak and amplitude tests, water and built-up land all three. On a
    real season (Slovenia, 2017) that does not hold: deciduous forest, grassland and shrubland
    are as low as a sown field in dormant early March (NDVI about 0.2), peak over 0.7 in summer,
    pass all three tests and are called cultivated. A baseline, not a model to decide loans on
    (``pipeline.warn_of_model`` says so on every run).

    Example:
        >>> rule = PhenologyRule(CroplandRuleConfig())
        >>> ndvi = np.array([0.2, 0.5, 0.85, 0.3], dtype=np.float32)[:, None, None]
        >>> float(rule.probability_from_ndvi(ndvi)[0, 0]) > 0.9
        True
    """

    config: CroplandRuleConfig
    name: str = "phenology-rule-v1"

    @property
    def area_margins(self) -> AreaMargins:
        """Widening of the cultivated-area interval per unit of edge-cell share by parcel size (see
        ``cultivated_fractions``)."""
        return self.config.area_margins

    def describe(self) -> dict:
        """Name and hash of the rule with its thresholds (see ``CroplandModel``)."""
        return {"name": self.name, "hash": canonical_hash([self.name, self.config.model_dump(mode="json")]),
                "device": "cpu", "precision": "float32"}  # NDVI is float32, and numpy keeps it so

    def measuring_hash(self) -> str:
        """The hash of what decides its measurements: ``describe``'s without the interval's margins, applied after."""
        return canonical_hash([self.name, without_margins(self.config.model_dump(mode="json"))])

    def predict_proba(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return P(cropland) for the window (see ``CroplandModel``); uses NDVI only."""
        return self.probability_from_ndvi(indices["ndvi"])

    def probability_from_ndvi(self, ndvi: np.ndarray) -> np.ndarray:
        """Return P(cropland) for ``ndvi`` (time, rows, cols; NaN where not clear)."""
        cfg = self.config
        clear_dates = np.sum(np.isfinite(ndvi), axis=0)
        enough = clear_dates >= cfg.min_clear_dates
        with np.errstate(invalid="ignore"):
            filled_low = np.where(np.isfinite(ndvi), ndvi, np.inf)
            filled_high = np.where(np.isfinite(ndvi), ndvi, -np.inf)
            minimum = filled_low.min(axis=0)
            peak = filled_high.max(axis=0)
        amplitude = peak - minimum
        probability = (
            _sigmoid((peak - cfg.peak_mid) / cfg.scale)
            * _sigmoid((amplitude - cfg.amplitude_mid) / cfg.scale)
            * _sigmoid((cfg.minimum_max - minimum) / cfg.scale)
        )
        return np.where(enough, probability, np.nan).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.clip(x, -60.0, 60.0)))
