"""GDAL settings and error wording shared by opening and reading imagery."""

from __future__ import annotations

import rasterio


def gdal_env() -> rasterio.Env:
    """A rasterio environment for reading band files, local or remote.

    Listing a remote COG's folder costs a request per open and finds nothing we use.
    """
    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")


def gdal_message(error: Exception) -> str:
    """GDAL's words for a failure (rasterio's "see previous exception" keeps them in the cause)."""
    cause = error.__cause__ or error.__context__
    if cause is None or str(cause) in str(error):
        return str(error)
    return f"{error} ({cause})"
