"""Folders runs write in: checked writable before the work (``writable_folder``), one writer at a time (a lock
file held while `fetch`, `assess` or `batch` writes there), and removed again when the run that made them stopped before
writing anything (``remove_if_untouched``).

The lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows), so it goes
with the process that holds it: a killed run never leaves a folder locked. The lock file itself
stays (removing it would let a second run lock a file the first no longer sees).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from farmcredit.errors import InputError

# Present while a run writes its outputs; left behind, it marks a folder whose write did not finish.
UNFINISHED = ".farmcredit-writing"
# Present in a simulated season's imagery/ while `farmcredit simulate` writes it; left behind, the season is unfinished.
SIMULATING = ".farmcredit-simulating"
# A results folder's lock file (``results_lock``), and the lock files this process holds (``held_lock``).
RESULTS_LOCK = ".farmcredit.lock"
_HELD: set[Path] = set()
# What a disk says when outputs cannot be written: full, over quota, a file too large for it or over the process's
# limit, read-only, not allowed, a name too long.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                          errno.ENAMETOOLONG})
# A run's scratch folders in the temporary folder (``ScratchFolder``), the lock file each holds while its run lives, and
# the name one has while it is made and locked.
SCRATCH_PREFIX = "farmcredit-scratch-"
SCRATCH_LOCK = ".lock"
_SCRATCH_MAKING = "farmcredit-making-"
# Why a path cannot be looked up, said so that the person who gave it knows what to change.
# The longest name of one file or folder most file systems take (ext4, XFS, NTFS, APFS), in bytes.
NAME_MAX = 255
LOOKUP_PROBLEMS = {errno.ENAMETOOLONG: f"file name too long: a name in a path may be at most {NAME_MAX} bytes; give a "
                                       "shorter one",
                   errno.ELOOP: "a loop of symbolic links: a link in it leads, through others, back to itself; point "
                                "it at a real file or folder"}


def looked_up(path: Path, what: str) -> Path:
    """``path`` once the system can look it up, whether or not it exists: not a name too long for the file system,
    nor a loop of symbolic links, which ``exists``, ``is_file`` and ``resolve`` otherwise raise (or call missing).

    Raises:
        InputError: Naming ``what`` (e.g. "parcel file"), ``path`` and why it cannot be looked up.
    """
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):  # missing, or below a file: each caller says so its own way
        pass
    except OSError as exc:
        raise InputError(f"{what} {path}: {_lookup_problem(path, exc)}") from exc
    return path


def _lookup_problem(path: Path, error: OSError) -> str:
    """Why the system could not look ``path`` up (``error``), said so that the person who gave it knows what to change:
    a name too long, or, each name short enough, the whole path (the system says "File name too long" of both)."""
    if error.errno == errno.ENAMETOOLONG and all(len(os.fsencode(part)) <= NAME_MAX for part in path.parts):
        return (f"path too long: its {len(os.fsencode(path)):,} bytes are over the system's limit for a whole path "
                "(4096 bytes on Linux); give one with fewer or shorter folders")
    return LOOKUP_PROBLEMS.get(error.errno, error.strerror or str(error))


def writable_folder(folder: Path) -> Path:
    """``folder``, made if missing, once a file could be written in it (checked before a run's work, not after).

    Raises:
        InputError: It cannot be made or written in (a read-only mount, a file in the way).
    """
    probe = folder / f".probe-{uuid.uuid4().hex}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:  # the folder, or a parent, a file: the system says only "File exists"
        raise InputError(f"folder {folder} cannot be written ({write_problem(probe, exc)})") from exc
    return folder


def can_write_in(folder: Path) -> None:
    """Check, making nothing, that ``folder`` could be made and written in: its nearest existing ancestor is a folder
    this process may write in (a run that writes only at its end checks so before its work).

    Raises:
        InputError: A file is in the way, or the folder is read-only, or its path cannot be looked up (``looked_up``).
    """
    looked_up(folder, "folder")
    if link := _dangling_link(folder):
        raise InputError(f"folder {folder} cannot be written ({link})")
    ancestor = existing_ancestor(folder)
    if not ancestor.is_dir():
        raise InputError(f"folder {folder} cannot be written ({ancestor} is a file)")
    if not os.access(ancestor, os.W_OK):
        raise InputError(f"folder {folder} cannot be written ({ancestor}: {_unwritable(ancestor)})")


def _unwritable(folder: Path) -> str:
    """Why this process may not write in the existing ``folder``: its file system is mounted read-only, or no write
    permission."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: Windows has no statvfs
        read_only = False
    return "read-only file system" if read_only else "no write permission"


def _dangling_link(path: Path) -> str | None:
    """Said, the first of ``path`` and its parents that is a symbolic link to nothing (making it said only "File
    exists"); None when none is."""
    for step in (*reversed(path.parents), path):
        if step.is_symlink() and not step.exists():
            return f"{step} is a link to {os.readlink(step)}, which does not exist"
    return None


def refuse_unfinished(folder: Path) -> None:
    """Refuse a results folder a write left unfinished (its ``UNFINISHED`` marker still there): its files may mix two
    runs.

    Raises:
        InputError: The folder holds the marker.
    """
    if (folder / UNFINISHED).exists():
        raise InputError(f"{folder}: its outputs were left unfinished ({UNFINISHED}: the run writing them was "
                         "interrupted or failed); run it again")


def write_problem(path: Path, exc: OSError) -> str:
    """Why ``path`` could not be written: a file standing where a folder of its path should be, or a link to nothing
    (the system says only "File exists"), else the system's words."""
    blocking = next((step for step in path.parents if step.is_file()), None)
    if blocking:
        return f"{blocking} is a file, not a folder"
    return _dangling_link(path) or str(exc.strerror or exc)


def free_space(folder: Path) -> str:
    """How much its disk has free, said, and the temporary folder's where that is another disk (the rasters are
    written there first); a write that failed for space names no space (GDAL's "Failed to commit transaction")."""
    said = []
    for where, path in (("its disk", folder), (f"the temporary folder {tempfile.gettempdir()} (TMPDIR)",
                                               Path(tempfile.gettempdir()))):
        try:
            if said and path.stat().st_dev == folder.stat().st_dev:
                continue
            said.append(f"{shutil.disk_usage(path).free / 2**20:,.1f} MiB free on {where}")
        except OSError:
            said.append(f"free space on {where} unknown")
    return "; ".join(said)


def existing_ancestor(path: Path) -> Path:
    """``path`` itself or its nearest parent that exists (the root at worst): where making it would start.

    Raises:
        InputError: The path cannot be looked up (a name too long for the file system).
    """
    try:
        return next(step for step in (path, *path.parents) if step.exists() or step == Path(step.anchor))
    except OSError as exc:
        raise InputError(f"{path} cannot be a folder ({exc.strerror or exc})") from exc


def first_missing(path: Path) -> Path | None:
    """The first folder making ``path`` would create (``path`` or a parent, absolute); None when it exists."""
    path = path.absolute()
    return next((step for step in (*reversed(path.parents), path) if not step.exists()), None)


def remove_if_untouched(made: Path, *locks: Path) -> None:
    """Remove ``made``, a folder a run made, when it holds nothing but folders and the run's ``locks`` files (the run
    stopped before writing anything): no empty folder is left to be taken for its output."""
    mine = {lock.absolute() for lock in locks}
    with contextlib.suppress(OSError):  # the run's own error is the one to tell
        if made.is_dir() and all(path.is_dir() or path.absolute() in mine for path in made.rglob("*")):
            shutil.rmtree(made, ignore_errors=True)


@contextmanager
def results_lock(folder: Path) -> Iterator[None]:
    """Hold a results folder's lock (``RESULTS_LOCK``; the folder made if missing) while the body runs, so one run
    at a time writes there (two ``assess`` runs into one --out left one's run.json over the other's tables). A lock
    file it made is removed again when the body raises.

    Raises:
        InputError: Another run holds it, or the folder cannot be made or written.
    """
    lock_file = writable_folder(folder) / RESULTS_LOCK
    made = not lock_file.exists()
    try:
        with held_lock(lock_file, f"{folder}: another farmcredit run is writing its results there; wait for it to "
                       "finish or use another --out"):
            yield
    except BaseException:
        if made:  # a run that failed leaves a folder that was there as it found it (a finished run keeps the file)
            lock_file.unlink(missing_ok=True)
        raise


@contextmanager
def held_lock(lock_file: Path, busy: str) -> Iterator[None]:
    """``folder_lock``, and within a body of this process that holds ``lock_file`` already, nothing more (the CLI holds
    a lock over a run, and the library's steps take it again)."""
    key = lock_file.absolute()
    if key in _HELD:
        yield
        return
    with folder_lock(lock_file, busy):
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)


@contextmanager
def folder_lock(lock_file: Path, busy: str) -> Iterator[None]:
    """Hold ``lock_file`` (made if missing) while the body runs.

    Raises:
        InputError: ``busy``, when another process holds it (it is not waited for); or the folder cannot be written.
    """
    try:
        handle = lock_file.open("a+")
    except OSError as exc:
        raise InputError(f"folder {lock_file.parent} cannot be written ({exc.strerror or exc})") from exc
    with handle:
        if not _try_lock(handle):
            raise InputError(busy)
        try:
            yield
        finally:
            _unlock(handle)


def _try_lock(handle: IO[str]) -> bool:
    """Take the lock on the open ``handle`` without waiting; False when another process holds it."""
    if os.name == "nt":
        import msvcrt

        handle.seek(0)  # locks the file's first byte, whatever its length
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(handle: IO[str]) -> None:
    """Release the lock ``_try_lock`` took (Windows frees a closed file's locks only in its own time)."""
    if os.name == "nt":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class ScratchFolder:
    """A temporary folder (``SCRATCH_PREFIX``) that this process holds the lock of (``SCRATCH_LOCK`` inside) until it
    is removed (``cleanup``, leaving a ``with`` block, or when collected): as ``tempfile.TemporaryDirectory``, but a
    run killed outright (SIGKILL, the OOM killer), which removes nothing, leaves its folder unlocked, and the next
    run's ``remove_orphans`` removes it. The lock is the operating system's, so a folder of a run alive in another
    process, container or PID namespace sharing the temporary folder is never taken for one gone."""

    def __init__(self, kind: str) -> None:
        remove_orphans()
        # Made and locked under a name remove_orphans passes over, then renamed: it never sees it unlocked.
        making = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_MAKING}{kind}-"))
        self._handle = (making / SCRATCH_LOCK).open("a+")
        _try_lock(self._handle)
        self.name = str(making.with_name(making.name.replace(_SCRATCH_MAKING, SCRATCH_PREFIX, 1)))
        os.rename(making, self.name)
        self._removed = weakref.finalize(self, _remove_scratch, self.name, self._handle)

    def cleanup(self) -> None:
        """Remove the folder and free its lock (once; later calls do nothing)."""
        self._removed()

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *_: object) -> None:
        self.cleanup()


def remove_orphans(folder: str | Path | None = None) -> list[Path]:
    """Remove the ``ScratchFolder`` folders in ``folder`` (default: the temporary folder) whose lock no process holds:
    those of runs killed before they could remove them. Only folders named so that hold the lock file are touched.

    Returns:
        The folders removed.
    """
    removed = []
    for found in Path(tempfile.gettempdir() if folder is None else folder).glob(f"{SCRATCH_PREFIX}*"):
        lock_file = found / SCRATCH_LOCK
        if found.is_symlink() or not found.is_dir() or not lock_file.is_file():
            continue
        try:
            handle = lock_file.open("a+")
        except OSError:  # another user's, say
            continue
        with handle:
            if _try_lock(handle):  # its run is gone
                shutil.rmtree(found, ignore_errors=True)
                _unlock(handle)
                if not found.exists():
                    removed.append(found)
    return removed


def _remove_scratch(name: str, handle: IO[str]) -> None:
    """Remove a ``ScratchFolder``'s folder, then free and close its lock."""
    shutil.rmtree(name, ignore_errors=True)
    with contextlib.suppress(OSError):
        _unlock(handle)
    handle.close()
