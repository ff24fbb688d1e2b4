"""farmcredit: Sentinel-2 imagery over farmers' parcels to explainable loan limits."""

from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and editors see; at run time ``__getattr__`` imports them on first use
    from farmcredit.pipeline import Assessment, assess, run_assessment

try:
    __version__ = _version("farmcredit")
except _PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from farmcredit.errors import ConfigError, FarmcreditError, ImageryError, InputError  # noqa: E402 (light, no GDAL)

__all__ = ["Assessment", "ConfigError", "FarmcreditError", "ImageryError", "InputError", "__version__", "assess",
           "run_assessment"]
# The pipeline pulls in rasterio, geopandas and torch; its names are imported on first use, not at
# `import farmcredit` (the CLI's --help stays fast).
_PIPELINE_NAMES = ("Assessment", "assess", "run_assessment")


def __getattr__(name: str) -> object:
    if name in _PIPELINE_NAMES:
        return getattr(_import_module("farmcredit.pipeline"), name)
    raise AttributeError(f"module 'farmcredit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the pipeline's among them (imported on first use), and the module's own dunders: tab
    completion offers these, not the helpers imported here."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
