"""One assessed small season with every output written, shared by the output tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from farmcredit.pipeline import Assessment, run_assessment


@pytest.fixture(scope="session")
def assessed(small_season) -> Assessment:
    """The small season assessed with its per-pixel layers kept."""
    return run_assessment(small_season.parcels_path, small_season.imagery_dir, pixel_layers=True)


@pytest.fixture(scope="session")
def outputs(assessed: Assessment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``write_outputs`` filled for ``assessed``."""
    from farmcredit.outputs import write_outputs

    out = tmp_path_factory.mktemp("outputs")
    write_outputs(out, assessed)
    return out
