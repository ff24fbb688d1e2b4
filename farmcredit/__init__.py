"""farmcredit: Sentinel-2 imagery over farmers' parcels to explainable loan limits."""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and editors see; at run time ``__getattr__`` imports them on first use
    from farmcredit.pipeline import Assessment, assess, run_assessment

try:
    __version__ = version("farmcredit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Assessment", "__version__", "assess", "run_assessment"]
# The pipeline pulls in rasterio, geopandas and torch; its names are imported on first use, not at
# `import farmcredit` (the CLI's --help stays fast).
_PIPELINE_NAMES = ("Assessment", "assess", "run_assessment")


def __getattr__(name: str) -> object:
    if name in _PIPELINE_NAMES:
        return getattr(import_module("farmcredit.pipeline"), name)
    raise AttributeError(f"module 'farmcredit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and the pipeline's, imported on first use: tab completion offers them too."""
    return sorted({*globals(), *_PIPELINE_NAMES})
