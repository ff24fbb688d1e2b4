"""Digital numbers, COG files, grids, dates and spec validation."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio

from farmcredit.errors import InputError
from farmcredit.simulate import SimulationSpec
from farmcredit.simulate.grid import scene_grid
from farmcredit.simulate.season import acquisition_dates
from farmcredit.simulate.spectra import BANDS, ENDMEMBER_SPECTRA, ENDMEMBERS
from farmcredit.simulate.stac import mgrs_tile
from farmcredit.simulate.writer import reflectance_to_dn, write_cog


def test_pure_soil_reads_back_through_the_boa_offset(tmp_path: Path) -> None:
    grid = scene_grid(114.0, 33.0, 48)
    soil = ENDMEMBER_SPECTRA[ENDMEMBERS.index("soil")]
    for position, band in enumerate(BANDS):
        reflectance = np.full(grid.shape(band.resolution_m), soil[position])
        path = tmp_path / f"{band.name}.tif"
        write_cog(
            path,
            reflectance_to_dn(reflectance, np.ones(reflectance.shape, bool)),
            grid.transform(band.resolution_m),
            grid.crs,
        )
        with rasterio.open(path) as dataset:
            back = (dataset.read(1).astype(float) - 1000) / 10000
        assert np.allclose(back, soil[position], atol=0.5e-4)


def test_dn_is_clipped_and_zero_outside_the_swath() -> None:
    dn = reflectance_to_dn(np.array([-0.2, 0.0, 7.0, 0.3]), np.array([True, True, True, False]))
    assert dn.tolist() == [1, 1000, 65535, 0]


def test_cog_bytes_do_not_depend_on_when_they_are_written(tmp_path: Path) -> None:
    grid = scene_grid(114.0, 33.0, 48)
    array = np.random.default_rng(0).integers(1, 5000, (48, 48)).astype(np.uint16)
    digests = set()
    for name in ("a.tif", "b.tif"):
        write_cog(tmp_path / name, array, grid.transform(10), grid.crs)
        digests.add(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert len(digests) == 1


def test_grid_origin_nests_10_20_60_m() -> None:
    grid = scene_grid(114.0, 33.0, 320)
    assert grid.crs == "EPSG:32650"
    assert grid.west % 60 == 0 and grid.north % 60 == 0
    assert grid.shape(10) == (320, 320) and grid.shape(20) == (160, 160) and grid.shape(60) == (54, 54)
    assert grid.render_px == 324


def test_acquisition_dates_sit_on_the_revisit_cycle() -> None:
    dates = acquisition_dates(SimulationSpec())
    assert len(dates) == 16 and dates[0] == date(2024, 3, 1) and dates[-1] <= date(2024, 10, 31)
    gaps = np.diff([d.toordinal() for d in dates])
    assert (gaps % 5 == 0).all() and gaps.min() >= 10 and gaps.max() <= 20


def test_mgrs_tile_of_the_default_scene() -> None:
    assert mgrs_tile(114.0, 33.0, 32650, 219_700.0, 3_655_340.0) == "50SKB"


@pytest.mark.parametrize(
    "changes",
    [
        {"size_px": 10},
        {"n_dates": 2},
        {"season_end": date(2024, 2, 1)},
        {"portfolio_fraction": 1.5},
        {"centre_lat": -10.0},
        {"n_dates": 3, "n_overcast_dates": 2, "n_swath_edge_dates": 1},
        {"n_dates": 6, "n_overcast_dates": -2, "n_swath_edge_dates": 3},  # made 4 of 6 dates all cloud
        {"n_dates": 6, "n_overcast_dates": 1, "n_swath_edge_dates": -1},
    ],
)
def test_invalid_specs_are_refused(changes: dict) -> None:
    with pytest.raises(InputError):
        SimulationSpec(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"season_end": date(2024, 3, 1)}, "season 2024-03-01..2024-03-01 (too short: 3 dates 5 days apart need 10 "),
        ({"season_end": date(2024, 3, 2)}, "season 2024-03-01..2024-03-02 (too short"),
        # The crop calendars are one year's: maize would read bare all season while truth.csv gave it sown.
        ({"season_start": date(2024, 11, 1), "season_end": date(2025, 3, 31)}, "crosses the new year"),
        ({"portfolio_fraction": 0.0}, "portfolio_fraction=0.0 (more than 0"),
    ],
)
def test_a_season_that_cannot_be_simulated_is_refused_saying_why(changes: dict, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        SimulationSpec(**changes)
