"""Short content hashes for the audit record: the same settings always give the same hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


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
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in source_files(*parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
