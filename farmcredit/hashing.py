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


def source_hash() -> str:
    """SHA-256 of the package's code (its .py and .yaml files, by path): what ran, whether installed or in a git
    checkout, with or without uncommitted changes (the audit's code version; a batch run resumed after any change
    to it measures again rather than mix two versions' files)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
