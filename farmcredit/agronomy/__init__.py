"""Agronomic signals per parcel: cultivated area, crop, health, phenology, yield, data quality."""

from farmcredit.agronomy.measurements import ParcelMeasurements
from farmcredit.agronomy.signals import (
    days_of_year_text,
    derive_signals,
    green_ndvi,
    near_peak_runs,
    never_bare,
    peak_days,
    season_days,
)

__all__ = [
    "ParcelMeasurements", "days_of_year_text", "derive_signals", "green_ndvi", "near_peak_runs", "never_bare",
    "peak_days", "season_days",
]
