"""farmcredit: Sentinel-2 imagery over farmers' parcels to explainable loan limits."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("farmcredit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
