"""Per-parcel zonal statistics with exact cell coverage, vectorised over all parcels."""

from farmcredit.zonal.coverage import Coverage, coverage_fractions
from farmcredit.zonal.stats import zonal_stats

__all__ = ["Coverage", "coverage_fractions", "zonal_stats"]
