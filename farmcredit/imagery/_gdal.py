"""GDAL settings and error wording shared by opening and reading imagery."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator
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
    """GDAL's words for a failure (rasterio's "see previous exception" keeps them in the cause), without that pointer
    to nothing shown."""
    cause = error.__cause__ or error.__context__
    text = str(error).replace(" See previous exception for details.", "")
    if cause is None or str(cause) in text:
        return text
    return f"{text} ({cause})"


def gdal_http_env(timeout_s: float, attempts: int, retry_delay_s: float, afresh: bool = False) -> rasterio.Env:
    """`gdal_env` for reading COGs over HTTP: bounded waits, retries on 429/5xx, a block cache.

    Args:
        timeout_s: Seconds one HTTP request may take (GDAL counts whole seconds, at least 1).
        attempts: Tries per request, the first included.
        retry_delay_s: Wait before the first retry, seconds (GDAL doubles it each time).
        afresh: Request every file again, none of GDAL's cache: it keeps the bytes it received of a file for the
            process's life, a body cut short or timed out included, so reading it again would fail alike without a
            request.
    """
    whole_seconds = str(max(1, math.ceil(timeout_s)))
    # A list of prefixes split at every colon, so no URL can be named alone: every /vsicurl/ file.
    uncached = {"CPL_VSIL_CURL_NON_CACHED": "/vsicurl/"} if afresh else {}
    return rasterio.Env(
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
        GDAL_HTTP_TIMEOUT=whole_seconds,
        GDAL_HTTP_CONNECTTIMEOUT=whole_seconds,
        GDAL_HTTP_MAX_RETRY=str(max(0, attempts - 1)),
        GDAL_HTTP_RETRY_DELAY=str(retry_delay_s),
        VSI_CACHE="TRUE",
        **uncached,
    )


class DeferredInterrupt:
    """A Ctrl-C or SIGTERM received while GDAL ran, its handler to be run between its calls (see
    `interrupt_between_gdal_calls`)."""

    def __init__(self, handlers: dict[int, Callable]) -> None:
        self.handlers = handlers  # what each deferred signal runs when raised: its handler from before
        self.received: int | None = None

    def mark(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def check(self) -> None:
        """Run the first signal received's handler, once (Ctrl-C's raises KeyboardInterrupt)."""
        if self.received is not None:
            signum, self.received = self.received, None
            self.handlers[signum](signum, None)


@contextmanager
def interrupt_between_gdal_calls() -> Iterator[DeferredInterrupt]:
    """While inside, Ctrl-C (SIGINT) and SIGTERM, where Python handles them (the CLI's ``errors.terminate``, or a
    program's own handler), are only noted, and their handler run once by ``check`` (call it after each GDAL open or
    read) or on leaving, whatever else was raised meanwhile.

    GDAL reports retries and failures through rasterio's logging callback, where Python code runs first after a
    signal during a stalled read; an exception raised there is printed as "Exception ignored" and dropped, and
    the program carried on. Outside the main thread (which alone receives signals) this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield DeferredInterrupt({})
        return
    # None: a handler set outside Python, which cannot be put back; Python's own raises KeyboardInterrupt. A signal
    # ignored (SIG_IGN) or left to the system (SIG_DFL, which is 0) is left so.
    current = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    current[signal.SIGINT] = signal.default_int_handler if current[signal.SIGINT] is None else current[signal.SIGINT]
    handlers = {signum: handler for signum, handler in current.items() if callable(handler)}
    interrupt = DeferredInterrupt(handlers)
    for signum in handlers:
        signal.signal(signum, interrupt.mark)
    try:
        yield interrupt
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        interrupt.check()
