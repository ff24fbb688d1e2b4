"""Short content hashes for the audit record: the same settings always give the same hash."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

# GDAL's path of a file inside a zip archive: /vsizip/ZIP/MEMBER.
_ZIP_MEMBER = re.compile(r"/vsizip/(.+?\.zip)(?:/(.*))?", re.IGNORECASE | re.DOTALL)


def canonical_hash(data: object) -> str:
    """A 16-hex SHA-256 of ``data``'s canonical JSON (sorted keys, no spaces).

    Example:
        >>> canonical_hash({"b": 1, "a": 2}) == canonical_hash({"a": 2, "b": 1})
        True
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def source_files(*parts: str) -> list[Path]:
    """The package's code files (.py and .yaml), sorted: all of them, or those of ``parts`` (files or folders
    relative to the package, e.g. ``"imagery"``, ``"pipeline.py"``).

    Raises:
        FileNotFoundError: a part that is not there (a renamed module would otherwise drop out of a hash unseen).
    """
    root = Path(__file__).resolve().parent
    tops = [root / part for part in parts] or [root]
    missing = [str(top) for top in tops if not top.exists()]
    if missing:
        raise FileNotFoundError(f"no such part of the package: {', '.join(missing)}")
    found = {p for top in tops for p in ([top] if top.is_file() else top.rglob("*")) if p.suffix in (".py", ".yaml")}
    return sorted(found)


def source_hash(*parts: str) -> str:
    """SHA-256 of the package's code (its .py and .yaml files, by path), or of ``parts`` of it (``source_files``):
    what ran, whether installed or in a git checkout, with or without uncommitted changes (the audit's code
    version, of the whole package; a batch run's partitions hash the code that measures them)."""
    return files_sha256(Path(__file__).resolve().parent, source_files(*parts))


def files_sha256(root: Path, files: Iterable[Path], head_bytes: int | None = None) -> str:
    """SHA-256 of ``files`` (under ``root``) in sorted order, each as its path relative to ``root``, a NUL and its
    contents (its first ``head_bytes`` only, when given): the same tree, the same hash, wherever it lies.

    Example:
        >>> files_sha256(Path("parcels.gdb"), sorted(Path("parcels.gdb").rglob("*")))  # doctest: +SKIP
    """
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            if head_bytes is not None:
                digest.update(handle.read(head_bytes))
                continue
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def zip_member(path: str) -> tuple[str, str] | None:
    """The archive and the member of GDAL's path of a file inside a zip (``/vsizip/ZIP/MEMBER``, as a SAFE product
    is read in place); None for any other path.

    Example:
        >>> zip_member("/vsizip//data/S2B.zip/S2B.SAFE/MTD_MSIL2A.xml")
        ('/data/S2B.zip', 'S2B.SAFE/MTD_MSIL2A.xml')
    """
    found = _ZIP_MEMBER.fullmatch(path)
    return (found.group(1), found.group(2) or "") if found else None
