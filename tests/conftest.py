"""Shared fixtures: the real data folder (skipped when absent) and small simulated seasons."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Sentinel-2 data not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_season(tmp_path_factory: pytest.TempPathFactory):
    """A small simulated season (96 x 96 px, 8 dates) with its truth, made once per run."""
    from farmcredit.simulate import SimulationSpec, simulate_season

    root = tmp_path_factory.mktemp("season")
    return simulate_season(root, seed=3, spec=SimulationSpec(size_px=96, n_dates=8))
