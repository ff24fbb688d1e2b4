"""GDAL settings and error wording shared by opening and reading imagery."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import rasterio

# What a band file with no CRS tells: it opens, but places no pixel (a picture saved as B05.tif), so it reads as
# a file that fails to open.
NO_CRS = "has no coordinate reference system"


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


def gdal_http_env(timeout_s: float, attempts: int, retry_delay_s: float) -> rasterio.Env:
    """`gdal_env` for reading COGs over HTTP: bounded waits, retries on 429/5xx, a block cache.

    Args:
        timeout_s: Seconds one HTTP request may take (GDAL counts whole seconds, at least 1).
        attempts: Tries per request, the first included.
        retry_delay_s: Wait before the first retry, seconds (GDAL doubles it each time).
    """
    whole_seconds = str(max(1, math.ceil(timeout_s)))
    return rasterio.Env(
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
        GDAL_HTTP_TIMEOUT=whole_seconds,
        GDAL_HTTP_CONNECTTIMEOUT=whole_seconds,
        GDAL_HTTP_MAX_RETRY=str(max(0, attempts - 1)),
        GDAL_HTTP_RETRY_DELAY=str(retry_delay_s),
        VSI_CACHE="TRUE",
    )


class DeferredInterrupt:
    """A Ctrl-C received while GDAL ran, to be raised between its calls (see `interrupt_between_gdal_calls`)."""

    def __init__(self) -> None:
        self.received = False

    def mark(self, _signal: int, _frame: FrameType | None) -> None:
        self.received = True

    def check(self) -> None:
        """Raise KeyboardInterrupt when a Ctrl-C was received."""
        if self.received:
            raise KeyboardInterrupt


@contextmanager
def interrupt_between_gdal_calls() -> Iterator[DeferredInterrupt]:
    """While inside, Ctrl-C (SIGINT) is only noted, and raised as KeyboardInterrupt by ``check`` (call it after each
    GDAL open or read) and on leaving, whatever else was raised meanwhile.

    GDAL reports retries and failures through rasterio's logging callback, where Python code runs first after a
    Ctrl-C during a stalled read; a KeyboardInterrupt raised there is printed as "Exception ignored" and dropped, and
    the program carried on. Outside the main thread (which alone receives signals) this changes nothing.
    """
    interrupt = DeferredInterrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return
    previous = signal.signal(signal.SIGINT, interrupt.mark)
    try:
        yield interrupt
    finally:
        # None: a handler set outside Python, which cannot be put back; Python's own raises KeyboardInterrupt.
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        interrupt.check()
