"""Sentinel-2 L2A imagery: open a season of scenes, read windows as reflectance, compute indices.

`ndvi` below is float32 (time, rows, cols), NaN where not clear.

>>> season = (date(2024, 3, 1), date(2024, 10, 31))  # doctest: +SKIP
>>> imagery = open_imagery("scenes/", season=season)  # doctest: +SKIP
>>> cube = read_window(imagery, Window(0, 0, 256, 256))  # doctest: +SKIP
>>> ndvi = spectral_indices(cube)["ndvi"]  # doctest: +SKIP
"""

from farmcredit.imagery.indices import spectral_indices
from farmcredit.imagery.read import CLEAR_SCL_CLASSES, SeasonCube, read_window
from farmcredit.imagery.scene import Imagery, Scene
from farmcredit.imagery.source import open_imagery, within_season

__all__ = [
    "CLEAR_SCL_CLASSES",
    "Imagery",
    "Scene",
    "SeasonCube",
    "open_imagery",
    "read_window",
    "spectral_indices",
    "within_season",
]
