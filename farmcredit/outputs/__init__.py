"""Write a run's results: GeoPackage, GeoParquet, CSV, preview map and audit record."""

from farmcredit.outputs.preview import render_preview
from farmcredit.outputs.tables import write_outputs

__all__ = ["render_preview", "write_outputs"]
