"""The run's audit record (``run.json``): inputs and their hashes, imagery, config, code, counts."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd

import farmcredit
from farmcredit.config import Config
from farmcredit.imagery import Imagery

FULL_HASH_LIMIT = 64 * 1024 * 1024
HEADER_BYTES = 1024 * 1024


def file_fingerprint(path: str | Path) -> dict:
    """SHA-256 of a local file; for files over 64 MiB, of its first MiB plus its size.

    Remote paths (URLs) are recorded without a hash.
    """
    path_text = str(path)
    local = Path(path_text)
    if "://" in path_text or not local.is_file():
        return {"path": path_text}
    size = local.stat().st_size
    digest = hashlib.sha256()
    with local.open("rb") as handle:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            kind = "sha256"
        else:
            digest.update(handle.read(HEADER_BYTES))
            kind = "sha256-first-mib"
    return {"path": path_text, "bytes": size, kind: digest.hexdigest()}


def code_version() -> dict:
    """The package version and, when run from a git checkout, its commit."""
    root = Path(farmcredit.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"farmcredit": farmcredit.__version__, "git_commit": commit, "python": platform.python_version()}


def build_run_record(
    parcels_source: Path | None,
    imagery: Imagery,
    config: Config,
    models: dict,
    parcels: pd.DataFrame,
    borrowers: pd.DataFrame,
    dates: Sequence[date],
    timings: dict[str, float],
) -> dict:
    """Assemble the audit record of a run (JSON-serialisable)."""
    scenes = [
        {
            "scene_id": scene.scene_id,
            "acquired": scene.acquired.isoformat(),
            "cloud_cover": scene.cloud_cover,
            "dn_offset": scene.dn_offset,
            "files": {band: file_fingerprint(path) for band, (path, _) in sorted(scene.band_paths.items())},
        }
        for scene in imagery.scenes
    ]
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code": code_version(),
        "inputs": {
            "parcels": file_fingerprint(parcels_source) if parcels_source else {"path": "<in-memory GeoDataFrame>"},
            "imagery": {"source": imagery.source, "crs": imagery.crs.to_string(), "scenes": scenes},
        },
        "season_dates": [d.isoformat() for d in dates],
        "models": models,
        "config": {"hash": config.config_hash(), "values": config.model_dump(mode="json")},
        "counts": {
            "parcels": len(parcels),
            "status": parcels["status"].value_counts().to_dict(),
            "decision": parcels["decision"].value_counts().to_dict(),
            "borrowers": len(borrowers),
            "total_limit": float(borrowers["loan_limit"].sum()),
        },
        "timings_s": {name: round(seconds, 3) for name, seconds in timings.items()},
    }
