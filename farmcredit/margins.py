"""The cultivated-area interval's margin by parcel size (``AreaMargins``).

A parcel's interval is widened to its estimate -/+ margin x its share in edge cells
(``pipeline.widened``). How far a model's estimate strays grows faster than that share
as parcels shrink: one margin fitted over every size left the truth inside the interval for 69% of
simulated 0.05-0.1 ha parcels and 90% of those over 0.67 ha, at a level of 80%. So each size band
gets its own margin, fitted split-conformally on its own parcels (``evaluation.mixed_margin_for``).

Numpy-free at import, as the CLI and config read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# The parcel sizes (ha) whose margins are fitted apart: under 10, 20 and 40 Sentinel-2 cells of 10 m, and above.
AREA_BANDS_HA: tuple[float, ...] = (0.1, 0.2, 0.4)
# The keys a card's calibration and the rule's config hold the margins under: applied after measuring, so a model's
# measuring hash (``without_margins``) leaves them out and a batch's partitions outlive a margin calibrated anew.
MARGIN_KEYS = ("mixed_margin", "area_bands_ha")


@dataclass(frozen=True)
class AreaMargins:
    """Margins by parcel size: ``margins[i]`` for polygons under ``bands_ha[i]`` ha (and at or above the band
    before), the last for the rest; no bands and one margin for every size (what older cards and configs hold)."""

    bands_ha: tuple[float, ...] = ()
    margins: tuple[float, ...] = (0.0,)

    @classmethod
    def read(cls, margin: float | Sequence[float], bands_ha: Sequence[float] = ()) -> AreaMargins:
        """From a card's or config's ``mixed_margin`` and ``area_bands_ha``: one number (or a list of one) is one
        margin for every size (the bands unread), a list one margin per band.

        Raises:
            ValueError: what makes them unusable (``margin_problem``).
        """
        if not isinstance(margin, (list, tuple)):
            margin = (margin,)
        if len(margin) == 1:
            bands_ha = ()
        if not isinstance(bands_ha, (list, tuple)):
            raise ValueError(f"area_bands_ha must be a list of parcel areas (ha), rising; got {bands_ha!r}")
        if problem := margin_problem(tuple(margin), tuple(bands_ha)):
            raise ValueError(problem)
        return cls(tuple(float(b) for b in bands_ha), tuple(float(m) for m in margin))

    def at(self, area_ha: np.ndarray) -> np.ndarray:
        """Each polygon area's margin (``size_band``: a NaN area takes the last band's)."""
        import numpy as np

        return np.asarray(self.margins, dtype=np.float64)[size_band(area_ha, self.bands_ha)]

    def rounded(self) -> AreaMargins:
        """The margins rounded up to 0.001, as cards and configs write them (never narrower than fitted)."""
        return AreaMargins(self.bands_ha, tuple(math.ceil(round(m * 1000, 6)) / 1000 for m in self.margins))

    def labels(self) -> list[str]:
        """Each margin's parcel sizes in words (``band_labels``)."""
        return band_labels(self.bands_ha)

    def written(self) -> dict:
        """As a card's calibration keys (or a config's): ``mixed_margin`` (a number when there are no bands)."""
        if not self.bands_ha:
            return {"mixed_margin": self.margins[0]}
        return {"mixed_margin": list(self.margins), "area_bands_ha": list(self.bands_ha)}


def without_margins(settings: Mapping) -> dict:
    """``settings`` (a card's calibration, the rule's config) without the margins' keys (``MARGIN_KEYS``)."""
    return {key: value for key, value in settings.items() if key not in MARGIN_KEYS}


def model_margins(model: object) -> AreaMargins:
    """A cropland model's interval margins by parcel size: its ``area_margins``; for a model with one ``mixed_margin``
    (as models gave before margins by size), that one for every size; none for a model with neither."""
    margins = getattr(model, "area_margins", None)
    return margins if margins is not None else AreaMargins.read(getattr(model, "mixed_margin", 0.0))


def size_band(area_ha: np.ndarray, bands_ha: Sequence[float] = AREA_BANDS_HA) -> np.ndarray:
    """Each area's band over ``bands_ha``: 0 under the first, 1 from it to the second, ...; an area on an edge is in
    the band above it, and NaN in the last (``searchsorted`` sorts it last)."""
    import numpy as np

    return np.searchsorted(bands_ha, area_ha, side="right")


def band_labels(bands_ha: Sequence[float]) -> list[str]:
    """Each size band in words: 'under 0.1 ha', '0.1-0.2 ha', ..., '0.4 ha and over'; 'every size' with no bands."""
    if not bands_ha:
        return ["every size"]
    edges = [f"{b:g}" for b in bands_ha]
    return [f"under {edges[0]} ha", *(f"{a}-{b} ha" for a, b in zip(edges, edges[1:])), f"{edges[-1]} ha and over"]


def margin_problem(margins: tuple, bands_ha: tuple) -> str:
    """What makes margins and size bands unusable ('' when nothing): finite numbers, margins 0 or more, bands above
    0 and rising, one margin more than bands."""
    def numbers(values: tuple) -> bool:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)

    if not numbers(margins) or not margins or min(margins) < 0:
        return "mixed_margin must be a finite number 0 or more, or a list of them (one per area band)"
    if not numbers(bands_ha) or any(b <= 0 for b in bands_ha) or any(b <= a for a, b in zip(bands_ha, bands_ha[1:])):
        return f"area_bands_ha must rise and lie above 0, got {list(bands_ha)}"
    if not bands_ha and len(margins) > 1:
        return (f"mixed_margin lists {len(margins)} margins, one per parcel-size band: give area_bands_ha, the "
                f"{len(margins) - 1} parcel areas (ha) between the bands")
    if len(margins) != len(bands_ha) + 1:
        return (f"mixed_margin needs one margin per parcel-size band, {len(bands_ha) + 1} for area_bands_ha "
                f"{list(bands_ha)} (under the first, between each two, and over the last); got {len(margins)}")
    return ""
