"""farmcredit: Sentinel-2 imagery over farmers' parcels to explainable loan limits."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("farmcredit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "assess"]


def __getattr__(name: str) -> object:
    # The pipeline pulls in rasterio, geopandas and torch; import it on first use, not at
    # `import farmcredit` (the CLI's --help stays fast).
    if name == "assess":
        from farmcredit.pipeline import assess

        return assess
    raise AttributeError(f"module 'farmcredit' has no attribute {name!r}")
