"""Exception hierarchy: file- and run-level problems. Per-parcel problems are reason codes."""


class FarmcreditError(Exception):
    """Base class for every error farmcredit raises on purpose."""


class InputError(FarmcreditError):
    """A user-supplied file or argument cannot be used (the message names it)."""


class ImageryError(FarmcreditError):
    """Imagery is missing, unreadable or inconsistent (the message names the file)."""


class ConfigError(FarmcreditError):
    """A configuration file is invalid (the message names the key)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (Kubernetes, Airflow, `docker stop`), stopping a CLI run as Ctrl-C does: its temporary files removed,
    its cluster shut down, its folders left as an interrupted run leaves them."""


def terminate(signum: int, frame: object) -> None:
    """The CLI's SIGTERM handler (also the one way to stop a process that is a container's PID 1, which the kernel
    spares the default action); reads of imagery defer it between GDAL calls, as Ctrl-C."""
    raise Terminated
