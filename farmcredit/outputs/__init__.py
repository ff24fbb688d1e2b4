"""Write a run's results: GeoPackage with QGIS styles, GeoParquet, CSV, COGs, QGIS project, previews, audit."""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and editors see; at run time ``__getattr__`` imports them on first use
    from farmcredit.outputs.preview import render_preview
    from farmcredit.outputs.rasters import PixelRasters, write_rasters
    from farmcredit.outputs.tables import output_folder, write_outputs

__all__ = ["PixelRasters", "output_folder", "render_preview", "write_outputs", "write_rasters"]
# Each name's module, imported on first use: the pipeline names PixelRasters (rasters) without the previews'
# matplotlib, a third of a second or more.
_MODULES = {"PixelRasters": "rasters", "write_rasters": "rasters", "render_preview": "preview",
            "output_folder": "tables", "write_outputs": "tables"}


def __getattr__(name: str) -> object:
    if name in _MODULES:
        return getattr(_import_module(f"farmcredit.outputs.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'farmcredit.outputs' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (imported on first use) and the module's own dunders."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
