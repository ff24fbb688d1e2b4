"""Partitions of a portfolio: which parcels each Dask task measures, and where it writes them.

A partition is one or more consecutive windows of ``plan_windows``. Its id hashes the code and
settings that measure it (``MEASURING_CODE``, ``MEASURING_SETTINGS``), the model and the scenes
(ids, DN offsets, band files with their sizes and modification times, a stack's band order) with
its windows and its parcels' ids and outlines in order, so a rerun on the same inputs maps the same
parcels to the same file, and a changed input or measuring code never reuses a stale one; a change
to what only finishes the run (credit, agronomy, outputs, their settings) reuses every file. A
file is read back by position, not by input row: parcels inserted, removed or moved elsewhere in
the table leave the other partitions' files reusable.

The partition files together are one GeoParquet dataset (``geopandas.read_parquet(folder)``
reads it whole): a row per parcel with its id, outline (imagery CRS) and raw statistics. The
manifest (``_manifest.json``) and files being written (``.*.tmp``) carry the prefixes that
Parquet dataset readers skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely
from pyproj import CRS
from rasterio.windows import Window

from farmcredit.errors import InputError
from farmcredit.hashing import canonical_hash, source_hash, zip_member
from farmcredit.imagery import Scene
from farmcredit.locking import WRITE_ERRNOS, free_space
from farmcredit.margins import without_margins
from farmcredit.pipeline import PER_DATE_STATS, PER_PARCEL_STATS, AssessmentInputs, plan_windows

# Part of every partition id: files an older farmcredit wrote (another layout) are never reused.
PARTITION_FORMAT = "geoparquet-1"
# The package's code that decides a partition's file (reading, the cropland models, zonal statistics, the
# windows and the file's layout) and its manifest entry (the model's description, hashed), and the config sections
# it reads; what comes before (parcels' repair, the settings' defaults) reaches the id as the outlines and settings
# it gives. A test runs partitions under a profiler and holds every farmcredit file that runs to this list.
MEASURING_CODE = ("batch", "imagery", "segmentation", "zonal", "pipeline.py", "hashing.py", "formats.py")
MEASURING_SETTINGS = {"imagery", "cropland_rule"}
MANIFEST = "_manifest.json"


def measuring_code() -> str:
    """SHA-256 of the package's ``MEASURING_CODE``: part of every partition id, and what a worker must run too
    (a worker with another farmcredit would write other measurements under this code's ids)."""
    return source_hash(*MEASURING_CODE)


@dataclass(frozen=True, eq=False)  # arrays inside: identity, not value, equality
class Partition:
    """The parcels one task measures.

    Attributes:
        partition_id: 16 hex digits, stable across reruns on the same inputs.
        rows: the parcels' row numbers in the input table, window by window.
        windows: each window with its parcels as positions in ``rows``.
    """

    partition_id: str
    rows: np.ndarray
    windows: tuple[tuple[Window, np.ndarray], ...]

    @property
    def file_name(self) -> str:
        """The partition's measurement file in the partitions folder."""
        return part_file_name(self.partition_id)


def part_file_name(partition_id: str) -> str:
    """The measurement file of the partition ``partition_id`` in the partitions folder."""
    return f"part-{partition_id}.parquet"


def measuring_key(model: object) -> str:
    """The hash of what decides a model's measurements: its ``measuring_hash`` (the farmcredit models': without the
    interval's margins), else its description's ``hash``."""
    measuring = getattr(model, "measuring_hash", None)
    return measuring() if measuring is not None else model.describe()["hash"]


def plan_partitions(inputs: AssessmentInputs, model_hash: str, parcels_per_partition: int) -> list[Partition]:
    """Group the run's windows, in plan order, into partitions of about ``parcels_per_partition`` parcels; their ids
    hash ``model_hash`` (``measuring_key``) and the settings that measure, not the interval's margins (applied after
    measuring: a margin calibrated anew keeps the partitions).

    Example:
        >>> inputs = load_inputs("parcels.gpkg", "S2/")  # doctest: +SKIP
        >>> parts = plan_partitions(inputs, measuring_key(model), 5000)  # doctest: +SKIP
    """
    settings = inputs.config.model_dump(mode="json", include=MEASURING_SETTINGS)
    settings = canonical_hash({**settings, "cropland_rule": without_margins(settings["cropland_rule"])})
    run_key = "|".join([PARTITION_FORMAT, measuring_code(), settings, model_hash,
                        *(_scene_key(s) for s in inputs.imagery.scenes)])
    parcel_ids = inputs.table["parcel_id"].astype(str).to_numpy()
    outlines = shapely.to_wkb(inputs.geoms)
    groups: list[list[tuple[Window, np.ndarray]]] = [[]]
    size = 0
    for window, members in plan_windows(inputs.geoms, inputs.imagery, inputs.config.imagery.chunk_px):
        # By id and outline, not by row: the same portfolio exported in another order keeps its partitions.
        members = members[np.lexsort((outlines[members], parcel_ids[members]))]
        if size >= parcels_per_partition:
            groups.append([])
            size = 0
        groups[-1].append((window, members))
        size += len(members)
    partitions = []
    for group in groups:
        if not group:
            continue
        digest = hashlib.sha256(run_key.encode())
        local, offset = [], 0
        for window, members in group:
            digest.update(repr((window.col_off, window.row_off, window.width, window.height)).encode())
            # Ids and outlines in order: a file's statistics go back by position to these parcels, wherever they are.
            digest.update("\0".join(parcel_ids[members]).encode())
            digest.update(b"".join(outlines[members]))
            local.append((window, np.arange(offset, offset + len(members))))
            offset += len(members)
        rows = np.concatenate([members for _, members in group])
        partitions.append(Partition(digest.hexdigest()[:16], rows, tuple(local)))
    return partitions


def _scene_key(scene: Scene) -> str:
    """What decides a scene's reflectance: its id, DN offset and scale, each band's file and band index in it
    (a stack's ``--bands``), and its parts'."""
    bands = ",".join(f"{band}={_file_key(path)}:{index}" for band, (path, index) in sorted(scene.band_paths.items()))
    offset, scale = (repr(float(value) + 0.0) for value in (scene.dn_offset, scene.dn_scale))  # -0.0 as 0.0
    return f"{scene.scene_id}({offset},{scale},{bands},{''.join(map(_scene_key, scene.parts))})"


def _file_key(path: str) -> str:
    """A band file as a partition id knows it: its path (a signed URL's query left out) and, when local, its (or its
    zip's) size and modification time (a file rewritten in place at the same size is another file)."""
    path = path.split("?")[0]
    archive = zip_member(path)  # a file in a zip (a SAFE product) is as new as the zip
    local = Path(archive[0] if archive else path)
    if not local.is_file():
        return path
    stat = local.stat()
    return f"{path}#{stat.st_size}@{stat.st_mtime_ns}"


def stats_frame(
    rows: np.ndarray, parcel_ids: np.ndarray, geoms: np.ndarray, crs: CRS, stats: Mapping[str, np.ndarray]
) -> gpd.GeoDataFrame:
    """One row per parcel: ``row`` (input position when written), ``parcel_id``, the raw statistics of
    ``measure_windows`` (``clear_0``..., ``inside``..., ``read_error``, ``read_failed``, ``context_failed``) and the
    outline as ``geometry``."""
    columns: dict[str, np.ndarray] = {"row": rows.astype(np.int64), "parcel_id": parcel_ids.astype(str)}
    for name in PER_DATE_STATS:
        columns.update({f"{name}_{k}": stats[name][:, k] for k in range(stats[name].shape[1])})
    columns.update({name: stats[name] for name in (*PER_PARCEL_STATS, "read_error", "read_failed",
                                                          "context_failed")})
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=crs)


def fill_stats(stats: Mapping[str, np.ndarray], path: Path, rows: np.ndarray) -> None:
    """Read a partition file's statistics into the run's full (n, ...) statistics arrays, in place.

    ``rows``: the partition's rows in this run's table (``Partition.rows``), in the file's order; the file's own
    ``row`` column is where they were when it was written.
    """
    per_date = {name: [f"{name}_{k}" for k in range(stats[name].shape[1])] for name in PER_DATE_STATS}
    per_parcel = [*PER_PARCEL_STATS, "read_error"]
    # Plain Parquet columns only: the outlines are for the dataset's readers, not for the merge.
    frame = pd.read_parquet(path, columns=[*(c for names in per_date.values() for c in names), *per_parcel])
    for name, columns in per_date.items():
        stats[name][rows] = frame[columns].to_numpy()
    for name in per_parcel:
        stats[name][rows] = frame[name].to_numpy()


def write_temporary(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write GeoParquet, flushed to disk, to a unique hidden temporary name beside ``path`` (dataset readers skip
    it); returns that name, for whoever decides the file is a result to rename it to ``path``: readers see the whole
    file or none, even after a crash of the machine."""
    tmp = temporary_name(path)
    frame.to_parquet(tmp, index=False)
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    return tmp


def temporary_name(path: Path) -> Path:
    """A unique name beside ``path`` that dataset readers skip (leading dot) and reruns clean up (``.tmp``)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def is_complete(path: Path, expected_rows: int, reads_context: bool = False) -> bool:
    """True when ``path`` reads back whole with ``expected_rows`` rows and no parcel's imagery failed to read, nor,
    ``reads_context`` (a model reading context around its windows: the CNN), any pixel its model read (a finished
    partition to reuse; a read failure may have been passing, so that one is measured again). A parcel that a band
    file short of its scene's extent left without a date (``read_error`` alone) is as rereading that file leaves it:
    the partition's id holds the file's size and time, so another file is another partition. A failure another
    product of the date stood in for left nothing without data, and costs no rerun."""
    try:
        table = pq.read_table(path, columns=[column for column in pq.read_schema(path).names if column != "geometry"])
        failed = pc.any(table["context_failed" if reads_context else "read_failed"]).as_py()
    except (OSError, ValueError, KeyError, pa.ArrowException):
        # Missing, truncated, damaged, not Parquet at all or not a partition's: measure the partition again.
        return False
    return table.num_rows == expected_rows and not failed


def write_manifest(path: Path, entries: Mapping[str, dict]) -> None:
    """Rewrite the manifest (one entry per partition: parcels, status, attempts, error, read failures) atomically.

    Raises:
        InputError: Its disk is full or cannot be written (its temporary file removed), saying how much is free.
    """
    summary = {status: sum(e["status"] == status for e in entries.values()) for status in ("done", "failed", "pending")}
    text = json.dumps({"summary": summary, "partitions": list(entries.values())}, indent=1) + "\n"
    tmp = temporary_name(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise InputError(f"writing {path} stopped: {exc.strerror or exc} ({free_space(path.parent)})") from exc


def read_manifest(path: Path) -> dict[str, dict]:
    """The manifest's entries by partition id (empty when there is none or it is unreadable)."""
    try:
        return {e["id"]: e for e in json.loads(path.read_text())["partitions"]}
    except (OSError, ValueError, KeyError):
        return {}
