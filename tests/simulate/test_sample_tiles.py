"""The committed sample regenerates byte-identically from its seed."""

import hashlib
from pathlib import Path

from farmcredit.simulate import simulate_season

SAMPLE = Path(__file__).resolve().parents[2] / "sample_tiles"


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "README.md"
    }


def test_sample_tiles_regenerate_byte_identically(tmp_path: Path) -> None:
    simulate_season(tmp_path, seed=42)
    assert _digests(tmp_path) == _digests(SAMPLE)
