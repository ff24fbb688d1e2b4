"""The code that ran, as the audit record and model cards name it: the release, the source's hash and the git commit.

Light to import (no pandas, no GDAL), so ``farmcredit --version`` answers at once.
"""

from __future__ import annotations

import logging
import platform
import subprocess
from pathlib import Path

import farmcredit
from farmcredit.hashing import source_hash

logger = logging.getLogger(__name__)


def code_version() -> dict:
    """The package version, the SHA-256 of its source (``source_hash``: pins the code that ran, installed or not,
    committed or not) and, when run from a git checkout of farmcredit, its commit and whether the package had
    uncommitted changes: edited or untracked files, the targets of its links (the packaged default config) included.
    A checkout that git refuses to read (another user's: 'dubious ownership') is warned of and recorded with no
    commit."""
    root = Path(farmcredit.__file__).resolve().parent.parent
    # Only a checkout of farmcredit itself: a package installed into another project's repository (its .venv) is not
    # that project's commit.
    top, refusal = _git(root, "rev-parse", "--show-toplevel")
    if top is None and refusal and (root / ".git").exists():
        logger.warning("git refuses to read farmcredit's checkout %s (%s): the audit record names no commit; if it "
                       "says 'dubious ownership', run `git config --global --add safe.directory %s` as the user who "
                       "runs farmcredit", root, refusal, root)
    ours = top is not None and Path(top).resolve() == root and _git(
        root, "ls-files", "--error-unmatch", "farmcredit/__init__.py")[0] is not None
    commit = _git(root, "rev-parse", "HEAD")[0] if ours else None
    changes = None
    if commit:
        package = root / "farmcredit"
        targets = sorted({str(link.resolve().relative_to(root)) for link in package.rglob("*")
                          if link.is_symlink() and link.resolve().is_relative_to(root)})
        changes = _git(root, "status", "--porcelain", "--untracked-files=all", "--", "farmcredit", *targets)[0]
    return {"farmcredit": farmcredit.__version__, "source_sha256": source_hash(), "git_commit": commit,
            "git_uncommitted_changes": bool(changes) if changes is not None else None,
            "python": platform.python_version()}


def card_code_version() -> str:
    """The code that fitted a model, as its card records it: the farmcredit version, ``+src.<12 hex>`` of the
    package's source hash (``code_version``'s ``source_sha256``: installed or not), and ``.git.<commit>``
    (``-dirty`` with uncommitted changes) in a git checkout."""
    found = code_version()
    version = f"{found['farmcredit']}+src.{found['source_sha256'][:12]}"
    if not found["git_commit"]:
        return version
    dirty = "-dirty" if found["git_uncommitted_changes"] else ""
    return f"{version}.git.{found['git_commit'][:12]}{dirty}"

def _git(root: Path, *args: str) -> tuple[str | None, str]:
    """git's output in ``root`` (None when git is missing, hangs or fails) and what it said when it failed."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):  # no git to run, or it hung
        return None, ""
    said = done.stderr.strip().splitlines()
    return (done.stdout.strip(), "") if done.returncode == 0 else (None, said[0] if said else f"exit {done.returncode}")
