"""What a synthetic season is made of (`SimulationSpec`) and where it was written (`SimulationResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from farmcredit.errors import InputError

# Sentinel-2 revisits every 5 days with two satellites; acquisition dates sit on that cycle.
REVISIT_DAYS = 5
# Fewest acquisition dates of a season.
MIN_DATES = 3


@dataclass(frozen=True)
class SimulationSpec:
    """Parameters of a synthetic Sentinel-2 L2A season over a smallholder landscape.

    Attributes:
        size_px: 10 m pixels per side of the scene (the 60 m grid is rounded up to cover it).
        season_start: First possible acquisition date (UTC).
        season_end: Last possible acquisition date (UTC), in the same year: the crop calendars are one year's.
        n_dates: Acquisition dates (3 or more), spread evenly over the season on the 5-day revisit cycle.
        centre_lon: Scene centre longitude, degrees east (sets the UTM zone).
        centre_lat: Scene centre latitude, degrees north (northern hemisphere only).
        subpixel: Sub-cells per 10 m pixel side used to render land cover (5 -> 2 m cells).
        portfolio_fraction: Share of farm fields that are pledged parcels in ``parcels.geojson`` (more than 0; at
            least one parcel).
        n_broken_geometries: Parcels written as self-intersecting (repairable) bow-ties.
        over_declared_fraction: Share of cropped parcels declared at 1.6-3x their true area.
        crop_mismatch_fraction: Share of cropped parcels declared as another crop.
        clear_date_fraction: Share of dates without any cloud.
        n_overcast_dates: Dates entirely under thick cloud.
        n_swath_edge_dates: Dates with a no-data wedge beyond the orbit's swath edge.
        noise_reflectance: Sensor noise standard deviation at 0.25 reflectance (grows with signal).

    Example:
        >>> SimulationSpec(size_px=96, n_dates=6).n_dates
        6
    """

    size_px: int = 320
    season_start: date = date(2024, 3, 1)
    season_end: date = date(2024, 10, 31)
    n_dates: int = 16
    centre_lon: float = 114.0
    centre_lat: float = 33.0
    subpixel: int = 5
    portfolio_fraction: float = 0.25
    n_broken_geometries: int = 3
    over_declared_fraction: float = 0.05
    crop_mismatch_fraction: float = 0.04
    clear_date_fraction: float = 0.4
    n_overcast_dates: int = 1
    n_swath_edge_dates: int = 1
    noise_reflectance: float = 0.005

    def __post_init__(self) -> None:
        problems = []
        if self.size_px < 48:
            problems.append(f"size_px={self.size_px} (at least 48 pixels)")
        if self.subpixel < 1:
            problems.append(f"subpixel={self.subpixel} (at least 1)")
        season = f"season {self.season_start}..{self.season_end}"
        slots = (self.season_end - self.season_start).days // REVISIT_DAYS + 1
        if self.season_end < self.season_start:
            problems.append(f"{season} (end before start)")
        elif self.season_end.year != self.season_start.year:
            problems.append(f"{season} (crosses the new year, which the crop calendars do not: keep it in one year)")
        elif slots < MIN_DATES:
            problems.append(f"{season} (too short: {MIN_DATES} dates {REVISIT_DAYS} days apart need "
                            f"{(MIN_DATES - 1) * REVISIT_DAYS} days from start to end)")
        elif not MIN_DATES <= self.n_dates <= slots:
            problems.append(f"n_dates={self.n_dates} ({MIN_DATES} to {slots} for this season)")
        if self.n_overcast_dates < 0 or self.n_swath_edge_dates < 0:
            problems.append(f"n_overcast_dates={self.n_overcast_dates}, n_swath_edge_dates={self.n_swath_edge_dates} "
                            "(0 or more)")
        elif not self.n_overcast_dates + self.n_swath_edge_dates < self.n_dates:
            problems.append("n_overcast_dates + n_swath_edge_dates must leave a normal date")
        if not -80 <= self.centre_lat <= 84 or self.centre_lat <= 0:
            problems.append(f"centre_lat={self.centre_lat} (northern UTM zones only)")
        if not -180 <= self.centre_lon < 180:
            problems.append(f"centre_lon={self.centre_lon}")
        if not 0 < self.portfolio_fraction <= 1:
            problems.append(f"portfolio_fraction={self.portfolio_fraction} (more than 0, at most 1: a portfolio has "
                            "at least one parcel)")
        for name in (
            "over_declared_fraction",
            "crop_mismatch_fraction",
            "clear_date_fraction",
        ):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name}={getattr(self, name)} (0 to 1)")
        if self.n_broken_geometries < 0 or self.noise_reflectance < 0:
            problems.append("n_broken_geometries and noise_reflectance must not be negative")
        if problems:
            raise InputError("invalid simulation spec: " + "; ".join(problems))


@dataclass(frozen=True)
class SimulationResult:
    """Where a simulated season was written.

    Attributes:
        root: The output folder.
        imagery_dir: Folder of per-date Earth Search-layout scene folders.
        parcels_path: ``parcels.geojson`` (WGS84) with declared crop and area.
        truth_path: ``truth.csv``, the exact per-parcel ground truth.
        dates: Acquisition dates, ascending.
        crs: CRS of the imagery, e.g. "EPSG:32650".
        n_parcels: Parcels in ``parcels.geojson``.
        landcover_path: ``landcover.tif``, 10 m land-cover classes and cropland percentage.
    """

    root: Path
    imagery_dir: Path
    parcels_path: Path
    truth_path: Path
    dates: tuple[date, ...]
    crs: str
    n_parcels: int
    landcover_path: Path
