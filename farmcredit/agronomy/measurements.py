"""What the zonal stage measured for each parcel: the input of the agronomy stage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np


@dataclass(frozen=True)
class ParcelMeasurements:
    """Per-parcel, per-date statistics over the season, in parcel order.

    Shapes: ``(n,)`` per parcel, ``(n, t)`` per parcel and date. NaN marks no measurement.

    Attributes:
        dates: acquisition dates, ascending (length t).
        polygon_area_ha: exact polygon area (ha), planar in the parcel's own UTM zone; NaN where no outline was read.
        inside_share: share of the polygon area in the imagery (0-1): in cells of its grid with data on some date.
        clear_share: share of the parcel's in-imagery area that is clear on each date.
        ndvi_mean: mean NDVI of clear pixels on each date, each weighted by its coverage squared (``zonal_stats``'s
            ``weight_power``): an edge cell, mostly the land beside the parcel, counts less than its area.
        ndvi_std: NDVI standard deviation on each date, weighted as the mean.
        crop_ndvi_mean: the same mean over pixels the cropland model calls cropland (p >= 0.5).
        crop_ndvi_std: the same standard deviation over them (uniformity, beside the peak ``crop_ndvi_mean`` gives:
            a bare part of the outline, already left out of its cultivated area, is no unevenness of its crop).
        ndmi_mean: mean NDMI (B8A/B11) on each date, over the pixels called cropland, weighted as ``ndvi_mean``.
        evi_mean: the same of EVI (B08, B04, B02); NaN without the blue band. Both NaN where no cropland pixel is
            clear (or the index has no valid pixel there).
        cultivated_fraction: cultivated share of the parcel, expected value (0-1).
        cultivated_fraction_low: low end of its interval.
        cultivated_fraction_high: high end of its interval.
        product: index, in each date's scene's ``parts`` (0 for a scene of one product), of the product that
            supplied the most of the parcel's cells with data, clear or not (``clear_share`` says how much was clear);
            NaN where none had data (the date does not cover it).
        read_error: True where an image date could not be read for the parcel.
        read_failures: the files that failed to decode where parcels were read, (scene id, file, message, parcels
            that lost a clear observation to it) once per scene and file, so that the run can name them.
    """

    dates: tuple[date, ...]
    polygon_area_ha: np.ndarray
    inside_share: np.ndarray
    clear_share: np.ndarray
    ndvi_mean: np.ndarray
    ndvi_std: np.ndarray
    crop_ndvi_mean: np.ndarray
    crop_ndvi_std: np.ndarray
    ndmi_mean: np.ndarray
    evi_mean: np.ndarray
    cultivated_fraction: np.ndarray
    cultivated_fraction_low: np.ndarray
    cultivated_fraction_high: np.ndarray
    product: np.ndarray
    read_error: np.ndarray
    read_failures: tuple[tuple[str, str, str, int], ...] = ()

    def clear(self, min_clear_share: float) -> np.ndarray:
        """Per parcel and date: whether the date is clear over the parcel (its ``clear_share`` at least
        ``min_clear_share``, ``imagery.min_clear_share``, and its NDVI measured): the dates its signals rest on."""
        return (self.clear_share >= min_clear_share) & np.isfinite(self.ndvi_mean)

    def cropland_ndvi(self) -> tuple[np.ndarray, np.ndarray]:
        """Per parcel and date, the NDVI mean and standard deviation its crop is read by: over the pixels called
        cropland (``crop_ndvi_mean``, ``crop_ndvi_std``), the whole parcel's where none of them is clear."""
        over_cropland = np.isfinite(self.crop_ndvi_mean)
        return (np.where(over_cropland, self.crop_ndvi_mean, self.ndvi_mean),
                np.where(over_cropland, self.crop_ndvi_std, self.ndvi_std))
