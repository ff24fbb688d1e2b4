"""Write a run's results: GeoPackage with QGIS styles, GeoParquet, CSV, COGs, QGIS project, previews, audit."""

from farmcredit.outputs.preview import render_preview
from farmcredit.outputs.rasters import PixelRasters, write_rasters
from farmcredit.outputs.tables import output_folder, write_outputs

__all__ = ["PixelRasters", "output_folder", "render_preview", "write_outputs", "write_rasters"]
