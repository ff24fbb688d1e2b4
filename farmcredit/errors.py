"""Exception hierarchy: file- and run-level problems. Per-parcel problems are reason codes."""


class FarmcreditError(Exception):
    """Base class for every error farmcredit raises on purpose."""


class InputError(FarmcreditError):
    """A user-supplied file or argument cannot be used (the message names it)."""


class ImageryError(FarmcreditError):
    """Imagery is missing, unreadable or inconsistent (the message names the file)."""


class ConfigError(FarmcreditError):
    """A configuration file is invalid (the message names the key)."""
