"""A documented synthetic loan history: what the shipped default risk model is fitted on.

No real repayment data ships with farmcredit. This generator draws past loans whose default
probability follows a known, stated rule (``TRUE_LOGIT``), so the default model's behaviour is
inspectable; a lender replaces it with ``farmcredit credit fit`` on its own history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEASONS = tuple(range(2019, 2025))
# Season shocks on the log-odds: 2022 stands in for a drought year.
SEASON_SHOCK = {2022: 0.5}
# The high end of the cultivated-area interval lies above the estimate by a margin on the parcel's edge cells, whose
# area grows as its perimeter: ha per sqrt(ha) of parcel (sample_tiles' upper quartile, CNN: 0.015).
EDGE_MARGIN_HA = 0.02
TRUE_LOGIT = (
    "-2.9 - 0.02 (health_index - 50) - 1.0 (relative_yield - 1)"
    " - 2.0 (cultivated_fraction - 0.9) - 0.3 log(1 + cultivated_area_ha)"
    " + 1.5 max(0, declared_area_ha / cultivated_area_ha - 1.1)"
    " + 4 (ndvi_uniformity - 0.1) + season shock (2022: +0.5)"
)


def synthetic_history(loans_per_season: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Past loans with results-table columns, ``season``, ``outcome_date`` and ``defaulted``."""
    rng = np.random.default_rng(seed)
    frames = []
    for season in SEASONS:
        n = loans_per_season
        area = np.exp(rng.normal(np.log(0.4), 0.8, n))
        fraction = rng.beta(8, 1, n)
        honest = rng.random(n) < 0.9
        ratio = np.where(honest, rng.uniform(0.95, 1.05, n), rng.uniform(1.2, 3.0, n))
        table = pd.DataFrame(
            {
                "health_index": rng.uniform(0, 100, n),
                "relative_yield": np.clip(rng.normal(1.0, 0.3, n), 0.1, 1.6),
                # A results column, but no cause of default: a cloudy season is the weather, not the farmer.
                "clear_observations": np.clip(rng.poisson(8, n), 0, 16),
                "cultivated_fraction": fraction,
                "cultivated_area_ha": area * fraction,
                "cultivated_area_high_ha": area * fraction + EDGE_MARGIN_HA * np.sqrt(area),
                "declared_area_ha": area * fraction * ratio,
                "ndvi_uniformity": rng.uniform(0.03, 0.2, n),
                "season": season,
                "outcome_date": f"{season}-12-31",
            }
        )
        logit = (
            -2.9
            - 0.02 * (table["health_index"] - 50)
            - 1.0 * (table["relative_yield"] - 1.0)
            - 2.0 * (fraction - 0.9)
            - 0.3 * np.log1p(table["cultivated_area_ha"])
            + 1.5 * np.maximum(0.0, ratio - 1.1)
            + 4.0 * (table["ndvi_uniformity"] - 0.1)
            + SEASON_SHOCK.get(season, 0.0)
        )
        table["defaulted"] = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)
