"""Short content hashes for the audit record: the same settings always give the same hash."""

from __future__ import annotations

import hashlib
import json


def canonical_hash(data: object) -> str:
    """A 16-hex SHA-256 of ``data``'s canonical JSON (sorted keys, no spaces).

    Example:
        >>> canonical_hash({"b": 1, "a": 2}) == canonical_hash({"a": 2, "b": 1})
        True
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
