"""Synthetic Sentinel-2 L2A seasons over smallholder parcels, with exact ground truth.

>>> from pathlib import Path
>>> from farmcredit.simulate import SimulationSpec, simulate_season
>>> result = simulate_season(Path("sample_tiles"), seed=42)  # doctest: +SKIP
>>> small = simulate_season(Path("small"), seed=1, spec=SimulationSpec(size_px=96, n_dates=6))  # doctest: +SKIP
"""

from farmcredit.simulate.season import simulate_season
from farmcredit.simulate.spec import SimulationResult, SimulationSpec

__all__ = ["SimulationResult", "SimulationSpec", "simulate_season"]
