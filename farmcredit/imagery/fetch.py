"""`fetch_imagery`: download a season of Sentinel-2 L2A over an area into a local imagery folder.

The folder is in the Earth Search layout that `open_imagery` reads: one folder per scene with one
GeoTIFF per band and a STAC item (relative hrefs, the scene's DN offset in ``raster:bands``), plus
``manifest.json`` saying what was fetched. Only the windows around the parcels are downloaded; the
rest of each band file is sparse no-data, so a file costs disk only where there are parcels.

A scene folder is written under a hidden ``.partial-<id>`` name and renamed when complete, so an
interrupted fetch never leaves a half scene that `open_imagery` would read. A rerun downloads only
windows that no scene folder holds yet.

>>> area = area_from_bbox("-11.9,24.9,-11.8,25.0")  # doctest: +SKIP
>>> manifest = fetch_imagery(area, (date(2020, 2, 1), date(2020, 2, 29)), parse_remote_source("stac"), "s2/")
... # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import affine
import geopandas as gpd
import numpy as np
import rasterio
import rasterio.crs
import rasterio.io
import rasterio.warp
import shapely
import shapely.geometry
from rasterio.errors import RasterioError
from rasterio.windows import Window

from farmcredit.errors import ImageryError, InputError
from farmcredit.formats import open_raster
from farmcredit.imagery._gdal import gdal_message
from farmcredit.imagery.earthsearch import is_level_1c_collection, set_aside_scenes
from farmcredit.imagery.mosaic import same_lattice
from farmcredit.imagery.naming import (
    ASSET_KEYS,
    BASE_GRID_BANDS,
    L2A_DN_SCALE,
    SCL,
    SET_ASIDE_PREFIX,
    SUPERSEDED_PREFIX,
    band_name,
    band_sort_key,
)
from farmcredit.imagery.safe import level_1c_error
from farmcredit.locking import first_missing, folder_lock, remove_if_untouched, write_problem
from farmcredit.parcels import map_only, utm_zone_epsg

logger = logging.getLogger(__name__)

# Every L2A band the pipeline and the outputs read, plus the 20 m red edges and SWIR; not the
# 60 m atmospheric bands B01/B09.
FETCH_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", SCL)
EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
DEFAULT_COLLECTION = "sentinel-2-l2a"
DEFAULT_MAX_CLOUD = 50.0
# (margin, alignment) pixels fetched around each parcel: the default CNN's context (its ``read_context``, which a
# test holds equal), so a parcel assessed on the fetched folder gets the probabilities of the whole scene.
CONTEXT_PX = (60, 4)
MANIFEST_NAME = "manifest.json"
UNFINISHED_NOTE = ("a later fetch into this folder began and did not finish: its scene folders may differ from those "
                   "this manifest names")
FIRST_UNFINISHED_NOTE = ("a fetch into this folder began and did not finish: it may hold only some of the season's "
                         "scenes")
PARTIAL_PREFIX = ".partial-"
# Held while a fetch writes into the folder (``farmcredit.locking``): two at once would replace each other's scenes.
LOCK_NAME = ".fetch.lock"
GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
# A catalogue's item id names its scene folder: only a plain name, not hidden (hidden folders are never read as scenes,
# and the partial and set-aside ones are named so), can be one; "../x" would write, and replace, outside the folder.
_SCENE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
# The names the folder's own files take at its top level that are not hidden: an item so named wrote its scene folder
# in their place ("manifest.json" stopped the fetch, saying a folder of a scene it did not write was in the way).
_FOLDER_OWN_NAMES = frozenset({MANIFEST_NAME})
# Windows' device names, whatever the case and whatever follows a first dot ("nul.json" is NUL): a folder so named
# cannot be made or copied there, and a fetched folder is copied to Windows computers.
_WINDOWS_DEVICE = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?")
# Bounds that agree to a millimetre are the same window (they pass through float transforms).
_SAME_M = 1e-3

ProgressCallback = Callable[[str, int, int], None]
"""Called with (what is being fetched, scenes done, scenes in all)."""


@dataclass(frozen=True)
class HttpSettings:
    """How patient remote reads are (STAC API, COG range reads, Sentinel Hub).

    Attributes:
        timeout_s: Seconds one request may take before it counts as failed: each wait for its answer, and each
            stretch of its body's arrival that gains under 64 KiB (``stac.BODY_PROGRESS_BYTES``; a shorter body:
            all of it) (a COG range read: the whole read).
        attempts: Tries per request on a 429, a 5xx or a timeout, the first included.
        retry_delay_s: Wait before the first retry, seconds; later waits grow (backoff).
    """

    timeout_s: float = 60.0
    attempts: int = 4
    retry_delay_s: float = 2.0


@dataclass(frozen=True)
class RemoteSource:
    """Where to fetch from.

    Attributes:
        kind: "stac" (a STAC API, COG assets read by HTTP range requests) or "sentinelhub".
        url: STAC API root URL; for Sentinel Hub, the service base URL (None: the sentinelhub
            configuration's, or Copernicus Data Space Ecosystem when it names none).
        collection: STAC collection id (Sentinel Hub: always Sentinel-2 L2A).
    """

    kind: str
    url: str | None = None
    collection: str = DEFAULT_COLLECTION

    def describe(self) -> str:
        """The source in words, URL without credentials or query string."""
        where = public_url(self.url) if self.url else "configured endpoint"
        return f"{self.kind} {where} ({self.collection})"


@dataclass(frozen=True)
class FetchedScene:
    """One scene folder of a fetch.

    Attributes:
        scene_id: Item id (also the folder name).
        acquired: Acquisition time, ISO 8601 UTC.
        cloud_cover: Scene cloud cover from the catalogue, percent (None when it gives none).
        tile: MGRS tile, e.g. "29RKH" (None when unknown).
        windows: Windows held (each a rectangle around nearby parcels).
        bytes_downloaded: Response bytes received this run (None where the transport does not say:
            GDAL range reads of COGs).
        bytes_on_disk: Size of the scene folder's files, bytes.
        cached: True when everything was already on disk and nothing was downloaded.
        bands: Bands the folder holds.
    """

    scene_id: str
    acquired: str
    cloud_cover: float | None
    tile: str | None
    windows: int
    bytes_downloaded: int | None
    bytes_on_disk: int
    cached: bool
    bands: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchManifest:
    """What a fetch put in its folder (``manifest.json``); the audit record of `assess` includes it.

    Attributes:
        source: The source in words (no credentials).
        season: (start, end) ISO dates.
        max_cloud: Scene cloud cover filter, percent.
        bands: Bands every scene of this fetch holds (those asked for that the catalogue has).
        area_bounds: (west, south, east, north) of the area, degrees.
        scenes: One entry per scene folder written or reused, by date.
        skipped: (scene id, why) for catalogue scenes left out (duplicates, too cloudy).
        earlier_scenes: Scene folders of earlier fetches into the folder that this one did not select
            (another season or area, a looser cloud filter); ``assess`` reads them too.
        created: When the fetch ran, ISO 8601 UTC.
    """

    source: str
    season: tuple[str, str]
    max_cloud: float
    bands: tuple[str, ...]
    area_bounds: tuple[float, float, float, float]
    scenes: tuple[FetchedScene, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    earlier_scenes: tuple[str, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON-ready data, with totals."""
        document = asdict(self)
        downloaded = [scene.bytes_downloaded for scene in self.scenes if scene.bytes_downloaded is not None]
        document["totals"] = {
            "scenes": len(self.scenes),
            "scenes_downloaded": sum(not scene.cached for scene in self.scenes),
            "bytes_downloaded": sum(downloaded) if downloaded else None,
            "bytes_on_disk": sum(scene.bytes_on_disk for scene in self.scenes),
        }
        return document

    def summary(self) -> str:
        """One line for people: scenes, dates, cloud cover, bytes."""
        if not self.scenes:
            return f"no scene fetched from {self.source} ({len(self.skipped)} left out)"
        totals = self.to_json()["totals"]
        dates = sorted(scene.acquired[:10] for scene in self.scenes)
        covers = [scene.cloud_cover for scene in self.scenes if scene.cloud_cover is not None]
        cloud = f", cloud cover {min(covers):.0f}-{max(covers):.0f}%" if covers else ""
        received = totals["bytes_downloaded"]
        return (
            f"{len(self.scenes)} scenes {dates[0]}..{dates[-1]} from {self.source}{cloud}: "
            f"{totals['scenes_downloaded']} downloaded, {len(self.scenes) - totals['scenes_downloaded']} already "
            f"there; {_megabytes(totals['bytes_on_disk'])} on disk"
            + (f", {_megabytes(received)} received" if received else "")
            + (f"; {len(self.skipped)} left out" if self.skipped else "")
        )

    def write(self, folder: Path) -> Path:
        """Write ``manifest.json`` into the folder (``write_manifest``); returns its path."""
        return write_manifest(folder, self.to_json())


def write_manifest(folder: Path, document: Mapping[str, Any]) -> Path:
    """Replace the folder's ``manifest.json`` (``_replace_manifest``) with ``document``; returns its path."""
    return _replace_manifest(folder, (json.dumps(document, indent=2) + "\n").encode())


def _replace_manifest(folder: Path, data: bytes) -> Path:
    """Replace the folder's ``manifest.json`` with ``data`` atomically: written to a hidden temporary file, flushed
    to disk, renamed (a kill leaves the old manifest whole; ``_marked_unfinished`` removes a temporary file left)."""
    path = folder / MANIFEST_NAME
    temporary = folder / f".{MANIFEST_NAME}.{uuid.uuid4().hex}.tmp"
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


@dataclass(frozen=True)
class SceneGrid:
    """Where a remote scene's pixels are: its CRS and each band's grid.

    Attributes:
        crs: The scene's CRS.
        base_transform: Transform of the 10 m grid the windows are planned on, metres.
        base_shape: (height, width) of that grid; None for an unbounded grid (Sentinel Hub).
        cell_px: Windows are planned per cell of this many pixels (see `plan_fetch_windows`).
        band_transforms: Band name -> transform of its grid (10, 20 or 60 m).
        band_dtypes: Band name -> numpy dtype name.
    """

    crs: rasterio.crs.CRS
    base_transform: affine.Affine
    base_shape: tuple[int, int] | None
    cell_px: int
    band_transforms: Mapping[str, affine.Affine] = field(default_factory=dict)
    band_dtypes: Mapping[str, str] = field(default_factory=dict)

    def plan(self, area: gpd.GeoSeries, held: Sequence[LocalScene] = ()) -> list[tuple[float, float, float, float]]:
        """Bounds of the windows to fetch around the area's geometries, with the CNN's context around each
        (``CONTEXT_PX``; see `plan_fetch_windows`), and the windows the ``held`` scene folders hold (those of
        processings this scene supersedes, so it replaces everything they held)."""
        bounds = area.to_crs(self.crs).bounds.to_numpy()
        windows = plan_fetch_windows(bounds, self.base_transform, self.base_shape, self.cell_px, CONTEXT_PX)
        planned = [window_bounds(window, self.base_transform) for window in windows]
        for scene in held:
            planned += [bounds for bounds in scene.windows_in(self.crs)
                        if not any(contains(window, bounds) for window in planned)]
        return planned

    def same_lattice(self, other: SceneGrid) -> bool:
        """True when the other grid's pixels are this one's: the same CRS, pixel size and lattice."""
        return self.crs == other.crs and same_lattice(self.base_transform, other.base_transform)

    def __str__(self) -> str:
        return f"{self.crs.to_string()}, {abs(self.base_transform.a):g} m pixels"

    def to_json(self) -> dict[str, Any]:
        """The base grid, for the local item (a rerun plans its windows without asking the server)."""
        return {
            "crs": self.crs.to_string(),
            "base_transform": list(self.base_transform)[:6],
            "base_shape": list(self.base_shape) if self.base_shape else None,
            "cell_px": self.cell_px,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> SceneGrid:
        """The base grid stored by `to_json` (no band grids)."""
        shape = document["base_shape"]
        return cls(
            crs=rasterio.crs.CRS.from_user_input(document["crs"]),
            base_transform=affine.Affine(*document["base_transform"]),
            base_shape=None if shape is None else (int(shape[0]), int(shape[1])),
            cell_px=int(document["cell_px"]),
        )


@dataclass(frozen=True)
class SceneInfo:
    """A catalogue's description of one scene, as the local item keeps it.

    Attributes:
        scene_id: Item id (the local folder's name).
        acquired: Acquisition time, UTC.
        cloud_cover: Scene cloud cover, percent (None when unknown).
        tile: MGRS tile (None when unknown).
        properties: Catalogue properties copied into the local item.
        dn_offset: DN added before scaling in the fetched files (-1000: baseline >= 04.00, not applied).
        dn_scale: Reflectance per DN.
        links: STAC links of the local item (e.g. ``derived_from`` the remote item).
    """

    scene_id: str
    acquired: datetime
    cloud_cover: float | None
    tile: str | None
    properties: Mapping[str, Any]
    dn_offset: float
    dn_scale: float = L2A_DN_SCALE
    links: tuple[Mapping[str, str], ...] = ()


def scene_id_problem(scene_id: object) -> str | None:
    """Why a catalogue's item id cannot name a scene folder, or None when it can.

    >>> scene_id_problem("S2A_29RKH_20200219_0_L2A") is None
    True
    >>> scene_id_problem("../../etc") is None
    False
    """
    if not (isinstance(scene_id, str) and _SCENE_ID.fullmatch(scene_id)):
        return (f"its id {scene_id!r} is not a plain folder name (up to 200 letters, digits, '.', '_' or '-', not "
                "starting with '.'), so its scene folder could lie outside the imagery folder")
    # As macOS and Windows name files: whatever the case, and on Windows without trailing dots.
    if scene_id.rstrip(".").casefold() in _FOLDER_OWN_NAMES:
        return f"its id {scene_id!r} would name a scene folder in place of the imagery folder's own {MANIFEST_NAME}"
    if _WINDOWS_DEVICE.fullmatch(scene_id):
        return (f"its id {scene_id!r} is a Windows device name, so its scene folder could not be copied to or read "
                "on Windows")
    return None


def scene_folder(out: Path, scene_id: str) -> Path:
    """The folder of a scene in the imagery folder ``out``.

    Raises:
        ImageryError: The id is not one folder's name (empty, ".", "..", or holding a path separator), so the folder
            would lie elsewhere (item ids are checked as they are searched: ``scene_id_problem``).
    """
    if scene_id in ("", ".", "..") or Path(scene_id).name != scene_id:
        raise ImageryError(f"scene id {scene_id!r} is a path, not the name of a folder in {out}: no scene folder of it "
                           "is read or written")
    return out / scene_id


def public_url(url: str) -> str:
    """A URL safe to print: no user:password, no query string (signed URLs carry tokens there).

    >>> public_url("https://user:pw@host:8443/a/B04.tif?sig=secret")
    'https://host:8443/a/B04.tif'
    >>> public_url("http://[::1]:8080/v1?token=x")
    'http://[::1]:8080/v1'
    """
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    host = parts.netloc.rpartition("@")[2]  # the host and port as written ([::1]:8080 keeps its brackets)
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _Rewrite(logging.Filter):
    """Passes each log record's message through ``rewrite``."""

    def __init__(self, rewrite: Callable[[str], str]) -> None:
        super().__init__()
        self.rewrite = rewrite

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        rewritten = self.rewrite(message)
        if rewritten != message:
            record.msg, record.args = rewritten, ()
        return True


@contextmanager
def rewritten_logs(loggers: Sequence[str], rewrite: Callable[[str], str]) -> Iterator[None]:
    """While inside, the messages of ``loggers`` pass through ``rewrite`` (a secret blanked out, say)."""
    rewriting = _Rewrite(rewrite)
    for name in loggers:
        logging.getLogger(name).addFilter(rewriting)
    try:
        yield
    finally:
        for name in loggers:
            logging.getLogger(name).removeFilter(rewriting)


def parse_remote_source(text: str) -> RemoteSource | None:
    """The remote source an ``--imagery`` value names, or None for a local path.

    Accepted: "stac" (Earth Search), "sentinelhub", "stac://HOST/PATH?collection=ID" (https),
    and an http(s) URL of a STAC API (optionally "?collection=ID").

    >>> parse_remote_source("stac://earth-search.aws.element84.com/v1?collection=sentinel-2-l2a").url
    'https://earth-search.aws.element84.com/v1'
    >>> parse_remote_source("scenes/") is None
    True
    """
    if text == "stac":
        return RemoteSource("stac", EARTH_SEARCH_URL)
    if text == "sentinelhub":
        return RemoteSource("sentinelhub")
    parts = urlsplit(text)
    if parts.scheme not in ("stac", "http", "https"):
        return None
    if not parts.netloc:
        raise InputError(f"{text!r}: a STAC API URL needs a host, e.g. stac://earth-search.aws.element84.com/v1")
    query = parse_qs(parts.query)
    collection = query.pop("collection", [DEFAULT_COLLECTION])[-1]
    scheme = "https" if parts.scheme == "stac" else parts.scheme
    rest = "&".join(f"{key}={value}" for key, values in query.items() for value in values)
    return RemoteSource("stac", urlunsplit((scheme, parts.netloc, parts.path, rest, "")), collection)


def area_from_bbox(text: str) -> gpd.GeoSeries:
    """The area of a ``W,S,E,N`` bounding box in degrees (EPSG:4326).

    Raises:
        InputError: Not four numbers, or west >= east, south >= north, outside -180..180 / -90..90.
    """
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError as error:
        raise InputError(f"--bbox {text!r} is not W,S,E,N in degrees, e.g. 116.30,39.90,116.35,39.94") from error
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError(f"--bbox {text!r}: need west < east within -180..180 and south < north within -90..90")
    return gpd.GeoSeries([shapely.box(west, south, east, north)], crs="EPSG:4326")


def area_from_parcels(parcels: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """The outlines a run measures of ``parcels`` (as ``read_parcels`` returns them): missing and empty geometries
    dropped, and those drawn but never measured (``map_only``: a vertex typed kilometres off would fetch its whole
    span), in the parcels' CRS.

    Raises:
        InputError: No parcel has an outline to measure.
    """
    geoms = parcels.geometry
    usable = geoms[~(geoms.isna() | geoms.is_empty) & ~map_only(parcels["reasons"])]
    if usable.empty:
        raise InputError("no parcel has an outline to measure, so there is no area to fetch imagery for")
    return usable.reset_index(drop=True)


def fetch_imagery(
    area: gpd.GeoSeries,
    season: tuple[date, date],
    source: RemoteSource,
    out: str | Path,
    *,
    max_cloud: float = DEFAULT_MAX_CLOUD,
    bands: Sequence[str] = FETCH_BANDS,
    http: HttpSettings = HttpSettings(),
    progress: ProgressCallback | None = None,
    sentinelhub_config: Any = None,
) -> FetchManifest:
    """Download the season's scenes over the area into ``out`` and write its manifest (the folders this call made,
    ``out`` and its parents, are removed again when it fails before writing anything in them).

    Args:
        area: Parcel outlines or a box, any CRS; windows are planned around each geometry.
        season: (start, end) dates, inclusive.
        source: From `parse_remote_source`.
        out: The imagery folder (created); `open_imagery` and `assess` read it.
        max_cloud: Leave out scenes whose catalogue cloud cover is above this, percent.
        bands: Bands to fetch (SCL included for cloud masking), with those the folder's scenes already hold.
        http: Timeouts and retries.
        progress: Called as each scene starts and when all are done.
        sentinelhub_config: A ``sentinelhub.SHConfig`` to use instead of the environment's.

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        InputError: Unusable arguments, or Sentinel Hub credentials missing or refused.
        ImageryError: A Level-1C collection, the catalogue finds no scene, or a remote read fails past its retries.
    """
    start, end = season
    if end < start:
        raise InputError(f"season {start}/{end} ends before it starts")
    if not 0 <= max_cloud <= 100:
        raise InputError(f"max cloud cover {max_cloud} is not a percentage (0-100)")
    if source.kind == "stac" and is_level_1c_collection(source.collection):
        # Its items would be refused as they are read: refuse before making the folder or asking the server.
        raise level_1c_error(f"STAC collection {source.collection}", f"the {DEFAULT_COLLECTION} collection")
    folder = Path(out)
    made = first_missing(folder)  # assess's --out, when it fetches into OUT/imagery
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = write_problem(folder / LOCK_NAME, error)  # a file in the way says so, not "File exists"
        raise InputError(f"imagery folder {folder} cannot be made ({problem})") from error
    lock = folder / LOCK_NAME
    with folder_lock(lock, f"imagery folder {folder}: another farmcredit fetch is writing there; wait for it or "
                     "fetch into another --out"):
        try:
            return _fetch_into(folder, area, season, source, max_cloud, bands, http, progress, sentinelhub_config)
        except BaseException:
            if made is not None:  # no empty folder left to be mistaken for imagery
                remove_if_untouched(made, lock)
            raise


def _fetch_into(folder: Path, area: gpd.GeoSeries, season: tuple[date, date], source: RemoteSource,
                max_cloud: float, bands: Sequence[str], http: HttpSettings, progress: ProgressCallback | None,
                sentinelhub_config: Any) -> FetchManifest:
    """``fetch_imagery`` into ``folder``, which exists."""
    start, end = season
    restore_set_aside(folder)
    # A folder keeps every band it holds: asked for fewer, a fetch brings the held ones for its new windows too.
    wanted = normalise_bands([*bands, *held_bands(folder)])
    if not set(wanted) & set(BASE_GRID_BANDS):
        raise InputError(f"bands {', '.join(wanted)} include none of the 10 m bands {', '.join(BASE_GRID_BANDS)}, "
                         "which define a scene's grid (and assess needs B04 and B08)")
    if SCL not in wanted:
        logger.warning("bands %s leave out SCL: clouds will not be masked (SCL is the cloud mask; add SCL to --bands)",
                       ", ".join(wanted))
    area_wgs84 = area.to_crs("EPSG:4326")
    if source.kind not in ("stac", "sentinelhub"):
        raise InputError(f"unknown imagery source {source.kind!r}; use stac or sentinelhub")
    if source.kind == "sentinelhub":
        from farmcredit.imagery.sentinelhub_source import sentinelhub_config as resolve_config

        sentinelhub_config = resolve_config(source, http, sentinelhub_config)
        source = replace(source, url=sentinelhub_config.sh_base_url)  # the manifest names the endpoint used
    with _marked_unfinished(folder):
        if source.kind == "stac":
            from farmcredit.imagery.stac import fetch_stac

            scenes, skipped = fetch_stac(area_wgs84, season, source, folder, max_cloud, wanted, http, progress)
        else:
            from farmcredit.imagery.sentinelhub_source import fetch_sentinelhub

            scenes, skipped = fetch_sentinelhub(area_wgs84, season, source, folder, max_cloud, wanted, http,
                                                progress, sentinelhub_config)
    west, south, east, north = (round(float(v), 7) for v in area_wgs84.total_bounds)
    ids = {scene.scene_id for scene in scenes}
    manifest = FetchManifest(
        source=source.describe(),
        season=(start.isoformat(), end.isoformat()),
        max_cloud=max_cloud,
        bands=tuple(band for band in wanted if all(band in scene.bands for scene in scenes)),
        area_bounds=(west, south, east, north),
        scenes=tuple(sorted(scenes, key=lambda scene: (scene.acquired, scene.scene_id))),
        skipped=tuple(skipped),
        earlier_scenes=tuple(sorted(path.parent.name for path in folder.glob("*/*.json")
                                    if path.stem == path.parent.name and path.stem not in ids
                                    and not path.parent.name.startswith("."))),
    )
    manifest.write(folder)
    return manifest


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The ``manifest.json`` of a fetched imagery folder, or None when the folder has none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: nested too deep
        raise ImageryError(f"{path}: not valid JSON ({error})") from error


@contextmanager
def _marked_unfinished(folder: Path) -> Iterator[None]:
    """While a fetch writes scenes into ``folder``: the earlier fetch's manifest marked ``unfinished_fetch`` (with
    none, a manifest saying only that), which the new manifest replaces when the fetch succeeds. Killed, or failed
    after changing a scene folder, the fetch leaves it marked (the folder may hold scenes the manifest does not name,
    or only some of the season's: ``assess`` warns, and its audit says so); failed with every scene folder as it was,
    it puts the earlier manifest back as it was (removes its own). An earlier manifest that does not read as a JSON
    object is marked as that."""
    for stray in folder.glob(f".{MANIFEST_NAME}.*.tmp"):  # left by a fetch killed while writing its manifest
        stray.unlink(missing_ok=True)
    path = folder / MANIFEST_NAME
    earlier = path.read_bytes() if path.is_file() else None
    before = _scene_folders(folder)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if earlier is None:
        write_manifest(folder, {"unfinished_fetch": {"started": started, "note": FIRST_UNFINISHED_NOTE}})
    else:
        try:
            document = json.loads(earlier)
        except (ValueError, RecursionError) as error:
            document = {"unreadable_manifest": str(error)}
        if not isinstance(document, dict):
            document = {"unreadable_manifest": f"a JSON {type(document).__name__}, not an object"}
        write_manifest(folder, {**document, "unfinished_fetch": {"started": started, "note": UNFINISHED_NOTE}})
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):  # the fetch's own error is the one to tell
            if _scene_folders(folder) == before:
                if earlier is None:
                    path.unlink()
                else:
                    _replace_manifest(folder, earlier)
        raise


def _scene_folders(folder: Path) -> dict[str, tuple[int, int]]:
    """The folders in ``folder`` (scenes, and those set aside; not the partial ones, never read) with their inodes
    and modification times (a scene replaced is another folder renamed into place)."""
    return {path.name: (stat.st_ino, stat.st_mtime_ns) for path in folder.iterdir()
            if path.is_dir() and not path.name.startswith(PARTIAL_PREFIX) for stat in [path.stat()]}


def restore_set_aside(folder: Path) -> None:
    """Put back the scene folders a fetch killed while replacing them had set aside (``SceneWriter.finish``)."""
    for aside, scene in set_aside_scenes(folder, (path.name for path in folder.iterdir() if path.is_dir())):
        aside.rename(scene)


def held_bands(folder: Path) -> frozenset[str]:
    """The bands the scene folders of earlier fetches into ``folder`` hold."""
    scenes = (LocalScene.load(folder, path.name) for path in folder.iterdir()
              if path.is_dir() and not path.name.startswith("."))
    return frozenset().union(*(scene.bands for scene in scenes if scene is not None))


def normalise_bands(bands: Iterable[str]) -> tuple[str, ...]:
    """Canonical band names in wavelength order, SCL last.

    Raises:
        InputError: A label names no Sentinel-2 band.
    """
    names = set()
    for label in bands:
        name = band_name(label)
        if name is None:
            raise InputError(f"{label!r} is not a Sentinel-2 band (expected B02..B12, B8A or SCL)")
        names.add(name)
    if not names - {SCL}:
        raise InputError(f"bands {tuple(bands)} hold no reflectance band")
    return tuple(sorted(names, key=band_sort_key))


def pixel_box(bounds: np.ndarray, transform: affine.Affine) -> np.ndarray:
    """Whole-pixel boxes (col0, row0, col1, row1), ends exclusive, covering each (minx, miny, maxx, maxy).

    Args:
        bounds: float (n, 4) in the grid's CRS.
        transform: A north-up grid transform.

    Returns:
        int64 (n, 4).
    """
    bounds = np.atleast_2d(np.asarray(bounds, dtype=np.float64))
    cols = (bounds[:, [0, 2]] - transform.c) / transform.a
    rows = (bounds[:, [3, 1]] - transform.f) / transform.e
    # A bound on a pixel edge (to float noise) must not pull in the next pixel.
    tolerance = 1e-6
    return np.column_stack([
        np.floor(cols[:, 0] + tolerance), np.floor(rows[:, 0] + tolerance),
        np.ceil(cols[:, 1] - tolerance), np.ceil(rows[:, 1] - tolerance),
    ]).astype(np.int64)


def plan_fetch_windows(
    bounds: np.ndarray, transform: affine.Affine, shape: tuple[int, int] | None, cell_px: int,
    context: tuple[int, int] = (0, 1),
) -> list[Window]:
    """Windows to download: per cell of ``cell_px`` pixels, the box around the geometry parts in it.

    Cells bound each window (a Sentinel Hub request's size limit, a COG read's size); within a cell
    only the box around the parcels is read, and cells without parcels cost nothing.

    Args:
        bounds: float (n, 4) geometry bounds in the grid's CRS.
        transform: The 10 m grid.
        shape: (height, width) to clip to, or None for an unbounded grid.
        cell_px: Cell size, pixels.
        context: (margin, alignment) pixels: each box grows by the margin, its origin down to a multiple of the
            alignment (so a folder's grid keeps the pooling phase of the scene's).

    Returns:
        Windows in row-major cell order, each at most cell_px x cell_px.
    """
    margin, align = context
    boxes = pixel_box(bounds, transform) if len(bounds) else np.empty((0, 4), dtype=np.int64)
    boxes = np.column_stack([(boxes[:, :2] - margin) // align * align, boxes[:, 2:] + margin])
    if shape is not None:
        height, width = shape
        boxes = np.column_stack([
            np.clip(boxes[:, 0], 0, width), np.clip(boxes[:, 1], 0, height),
            np.clip(boxes[:, 2], 0, width), np.clip(boxes[:, 3], 0, height),
        ])
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    cells: dict[tuple[int, int], list[int]] = {}
    for col0, row0, col1, row1 in boxes.tolist():
        for cell_row in range(row0 // cell_px, (row1 - 1) // cell_px + 1):
            for cell_col in range(col0 // cell_px, (col1 - 1) // cell_px + 1):
                part = [
                    max(col0, cell_col * cell_px), max(row0, cell_row * cell_px),
                    min(col1, (cell_col + 1) * cell_px), min(row1, (cell_row + 1) * cell_px),
                ]
                box = cells.setdefault((cell_row, cell_col), part)
                box[:] = [min(box[0], part[0]), min(box[1], part[1]), max(box[2], part[2]), max(box[3], part[3])]
    return [Window(c0, r0, c1 - c0, r1 - r0) for _, (c0, r0, c1, r1) in sorted(cells.items())]


def window_bounds(window: Window, transform: affine.Affine) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of a window of a north-up grid."""
    west, north = transform @ (window.col_off, window.row_off)
    east, south = transform @ (window.col_off + window.width, window.row_off + window.height)
    return (min(west, east), min(south, north), max(west, east), max(south, north))


def contains(outer: Sequence[float], inner: Sequence[float]) -> bool:
    """True when bounds ``inner`` lie within ``outer`` (to a millimetre)."""
    return (
        outer[0] <= inner[0] + _SAME_M and outer[1] <= inner[1] + _SAME_M
        and outer[2] >= inner[2] - _SAME_M and outer[3] >= inner[3] - _SAME_M
    )


@dataclass(frozen=True)
class LocalScene:
    """What an existing scene folder of a fetch holds (read from its item)."""

    folder: Path
    grid: SceneGrid
    windows: tuple[tuple[float, float, float, float], ...]
    bands: frozenset[str]
    properties: Mapping[str, Any] = field(default_factory=dict)
    # Band -> bytes of its file as the fetch wrote it (none recorded by fetches before sizes were).
    file_sizes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, out: Path, scene_id: str) -> LocalScene | None:
        """The folder of a scene under ``out`` as its item describes it, or None when no fetch wrote one; a band whose
        file is gone (deleted, or a folder cut short) is not held, so its windows are fetched again."""
        folder = scene_folder(out, scene_id)
        try:
            item = json.loads((folder / f"{scene_id}.json").read_text(encoding="utf-8"))
            properties = item["properties"]
            grid = SceneGrid.from_json(properties["farmcredit:grid"])
            windows = tuple(tuple(float(v) for v in bounds) for bounds in properties["farmcredit:windows"])
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError, KeyError, TypeError, ValueError):
            return None  # absent, or not written by a fetch (or damaged): `fetch_scene` will not replace it
        assets = {name: asset for key, asset in (item.get("assets") or {}).items()
                  if (name := band_name(key)) is not None and (folder / f"{name}.tif").is_file()}
        sizes = {name: asset["file:size"] for name, asset in assets.items()
                 if isinstance(asset, dict) and isinstance(asset.get("file:size"), int)}
        return cls(folder, grid, windows, frozenset(assets), properties, sizes)  # type: ignore[arg-type]

    def damaged(self) -> list[str]:
        """What is wrong with each band file not as the fetch wrote it (cut short, changed since), naming the file.

        Cheap, for every rerun: a file's size against the one its item records; with none recorded (a folder of an
        earlier version), whether it opens on the scene's CRS. Damage that keeps the size shows when its windows are
        copied (`SceneWriter.copy_from`).
        """
        problems = []
        for band in sorted(self.bands):
            path = self.folder / f"{band}.tif"
            if band in self.file_sizes:
                size = path.stat().st_size
                if size != self.file_sizes[band]:
                    problems.append(f"{path}: {size} bytes where the fetch that wrote it left {self.file_sizes[band]}")
                continue
            try:
                with open_raster(path) as dataset:
                    crs = dataset.crs
            except RasterioError as error:
                problems.append(f"{path}: does not open ({gdal_message(error)})")
                continue
            if crs != self.grid.crs:
                problems.append(f"{path}: reads without the scene's CRS {self.grid.crs.to_string()}")
        return problems

    def missing(self, needed: Sequence[tuple[float, float, float, float]], bands: Sequence[str]) -> list[int]:
        """Indexes of the needed windows this folder does not hold (all of them when bands are missing)."""
        if not set(bands) <= self.bands:
            return list(range(len(needed)))
        return [k for k, bounds in enumerate(needed) if not any(contains(held, bounds) for held in self.windows)]

    def size(self) -> int:
        """Bytes of the folder's files."""
        return sum(path.stat().st_size for path in self.folder.iterdir() if path.is_file())

    def windows_in(self, crs: rasterio.crs.CRS) -> list[tuple[float, float, float, float]]:
        """The windows held, as bounds in ``crs``."""
        if crs == self.grid.crs:
            return list(self.windows)
        return [rasterio.warp.transform_bounds(self.grid.crs, crs, *bounds) for bounds in self.windows]

    def set_aside(self) -> None:
        """Hide the folder as ``.superseded-<id>``: a newer processing of the scene now holds its windows, and read
        beside it the old one would be mosaicked with it."""
        aside = self.folder.with_name(f"{SUPERSEDED_PREFIX}{self.folder.name}")
        shutil.rmtree(aside, ignore_errors=True)
        self.folder.rename(aside)

    def footprint(self) -> shapely.Geometry:
        """The windows held, in degrees (EPSG:4326)."""
        return footprint_wgs84(self.windows, self.grid.crs)

    def outlines(self) -> np.ndarray:
        """Each window held as a polygon in degrees (EPSG:4326), corners transformed."""
        return window_outlines(self.windows, self.grid.crs)

    def windows_over(self, footprint: shapely.Geometry) -> LocalScene:
        """The folder with only the windows that overlap ``footprint`` (degrees), more than along an edge."""
        over = overlapping(self.outlines(), footprint)
        return replace(self, windows=tuple(bounds for bounds, keep in zip(self.windows, over, strict=True) if keep))


def overlapping(geoms: shapely.Geometry | np.ndarray, other: shapely.Geometry) -> np.bool_ | np.ndarray:
    """Whether ``geoms`` (one, or each of an array) shares more than an edge with ``other``."""
    return shapely.intersects(geoms, other) & ~shapely.touches(geoms, other)


Download = Callable[["SceneWriter", Sequence[tuple[float, float, float, float]]], int | None]
"""Fills a writer with the given windows; returns the bytes received, or None when unknown."""


def fetch_scene(
    out: Path,
    info: SceneInfo,
    grid: SceneGrid,
    bands: Sequence[str],
    needed: Sequence[tuple[float, float, float, float]],
    download: Download,
    *,
    outdated: bool = False,
) -> FetchedScene:
    """Bring one scene folder up to date: reuse what an earlier fetch holds, download the rest.

    Args:
        out: The imagery folder.
        info: The scene's catalogue description.
        grid: The scene's grid, band grids included; an earlier fetch's folder of the scene must be on it.
        bands: Bands to hold.
        needed: Window bounds the area needs, in the grid's CRS.
        download: Reads windows from the remote into the writer.
        outdated: The folder's pixels were built otherwise than this fetch builds them (Sentinel Hub: under another
            cloud limit): the windows it holds are downloaded again with the new ones, none copied.

    Raises:
        InputError: A folder of the scene's name that no fetch wrote (a whole scene downloaded by hand, say): it would
            be replaced.
        ImageryError: The folder holds the scene on another grid (its windows' numbers would be read in this one's
            CRS, and their pixels moved).
    """
    local = LocalScene.load(out, info.scene_id)
    if local is None and (folder := scene_folder(out, info.scene_id)).exists():
        raise InputError(
            f"{folder}: a folder of scene {info.scene_id} that farmcredit fetch did not write (its item "
            f"{info.scene_id}.json is missing, unreadable or without farmcredit:grid), which this fetch would "
            "replace; move it elsewhere, or fetch into another --out"
        )
    if local is not None and not local.grid.same_lattice(grid):
        raise ImageryError(
            f"{local.folder}: an earlier fetch holds scene {info.scene_id} on another grid ({local.grid}) than this "
            f"fetch reads it on ({grid}); move that folder away to fetch the scene again, or fetch into another --out"
        )
    held = local.windows if local is not None else ()
    new = [bounds for bounds in needed if not any(contains(window, bounds) for window in held)]
    damaged = local.damaged() if local is not None else []
    for problem in damaged:
        logger.warning("%s (cut short or changed since); the scene's windows are downloaded again", problem)
    if local is not None and not outdated and not damaged and set(bands) <= local.bands:
        if not new:
            return _fetched(info, held, None, local.size(), cached=True, bands=local.bands)
        reused = held  # what earlier fetches hold stays: parcels fetched then still have their imagery
    else:  # nothing held, not in all these bands, damaged or outdated: the windows held come again with the bands
        reused, new = (), [*held, *new]
    with SceneWriter(out, info.scene_id, grid, bands, (*reused, *new)) as writer:
        if reused and local is not None:
            try:
                writer.copy_from(local)
            except ImageryError as error:  # a band file cut short or damaged since: download what it held again
                logger.warning("%s; the scene's windows are downloaded again", error)
                new = [*reused, *new]
        received = download(writer, new)
        size = writer.finish(info)
    return _fetched(info, writer.windows, received, size, cached=False, bands=writer.bands)


def cached_scene(
    out: Path, info: SceneInfo, area: gpd.GeoSeries, bands: Sequence[str], held: Sequence[LocalScene] = ()
) -> FetchedScene | None:
    """The scene as an earlier fetch left it when that covers the area, the windows of the ``held`` folders and the
    bands, else None (no network)."""
    local = LocalScene.load(out, info.scene_id)
    if local is None or local.missing(local.grid.plan(area, held), bands) or local.damaged():
        return None
    return _fetched(info, local.windows, None, local.size(), cached=True, bands=local.bands)


def _fetched(
    info: SceneInfo, windows: Sequence, received: int | None, size: int, *, cached: bool, bands: Iterable[str]
) -> FetchedScene:
    return FetchedScene(
        scene_id=info.scene_id,
        acquired=info.acquired.isoformat(),
        cloud_cover=info.cloud_cover,
        tile=info.tile,
        windows=len(windows),
        bytes_downloaded=0 if cached else received,
        bytes_on_disk=size,
        cached=cached,
        bands=tuple(sorted(bands)),
    )


class SceneWriter:
    """Writes one scene folder: sparse band GeoTIFFs on the extent of the windows, then the item.

    Use as a context manager; `finish` writes the item and moves the folder into place. On an
    exception the partial folder is removed.
    """

    def __init__(
        self,
        out: Path,
        scene_id: str,
        grid: SceneGrid,
        bands: Sequence[str],
        windows: Sequence[tuple[float, float, float, float]],
    ) -> None:
        self.out = out
        self.scene_id = scene_id
        self.grid = grid
        self.bands = tuple(bands)
        self.windows = tuple(windows)
        self.final = scene_folder(out, scene_id)
        self.partial = self.final.with_name(f"{PARTIAL_PREFIX}{scene_id}")
        self._datasets: dict[str, rasterio.io.DatasetWriter] = {}
        extent = np.array([
            [min(b[0] for b in windows), min(b[1] for b in windows), max(b[2] for b in windows),
             max(b[3] for b in windows)]
        ])
        self._file_grids: dict[str, tuple[affine.Affine, int, int]] = {}
        for band in self.bands:
            transform = grid.band_transforms[band]
            col0, row0, col1, row1 = pixel_box(extent, transform)[0].tolist()
            self._file_grids[band] = (transform @ affine.Affine.translation(col0, row0), row1 - row0, col1 - col0)

    def __enter__(self) -> SceneWriter:
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        for band in self.bands:
            transform, height, width = self._file_grids[band]
            self._datasets[band] = rasterio.open(
                self.partial / f"{band}.tif", "w", driver="GTiff", width=width, height=height, count=1,
                dtype=self.grid.band_dtypes[band], crs=self.grid.crs, transform=transform, nodata=0,
                tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=2, sparse_ok=True,
            )
            self._datasets[band].set_band_description(1, band)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._close()
        if kind is not None and self.partial.exists():
            shutil.rmtree(self.partial)

    def write(self, band: str, values: np.ndarray, transform: affine.Affine) -> None:
        """Put a block of a band (rows x cols, on the band's grid starting at ``transform``) in place.

        Parts outside the file's extent are dropped.
        """
        file_transform, height, width = self._file_grids[band]
        col = int(round((transform.c - file_transform.c) / file_transform.a))
        row = int(round((transform.f - file_transform.f) / file_transform.e))
        rows, cols = values.shape
        top, left = max(0, -row), max(0, -col)
        bottom, right = min(rows, height - row), min(cols, width - col)
        if bottom <= top or right <= left:
            return
        self._datasets[band].write(
            values[top:bottom, left:right].astype(self.grid.band_dtypes[band], copy=False), 1,
            window=Window(col + left, row + top, right - left, bottom - top),
        )

    def copy_from(self, scene: LocalScene) -> None:
        """Copy the windows an earlier fetch of this scene holds, so they are not downloaded again.

        Raises:
            ImageryError: A band file of the scene does not read (cut short, damaged); the message names it.
        """
        for band in self.bands:
            path = scene.folder / f"{band}.tif"
            try:
                with open_raster(path) as dataset:
                    for bounds in scene.windows:
                        col0, row0, col1, row1 = pixel_box(np.array([bounds]), dataset.transform)[0].tolist()
                        window = Window(col0, row0, col1 - col0, row1 - row0)
                        values = dataset.read(1, window=window, boundless=True, fill_value=0)
                        self.write(band, values, dataset.window_transform(window))
            except RasterioError as error:
                raise ImageryError(f"{path}: an earlier fetch's band file does not read ({gdal_message(error)})"
                                   ) from error

    def finish(self, info: SceneInfo) -> int:
        """Write the STAC item, move the folder into place; returns the folder's size in bytes."""
        self._close()
        item = self._item(info)
        (self.partial / f"{self.scene_id}.json").write_text(json.dumps(item, indent=1) + "\n", encoding="utf-8")
        # Renames, then the old folder removed: a kill at any point leaves the scene whole, or set aside (hidden
        # folders are never read as scenes) for the next fetch to put back, never a folder half removed.
        old = _replaced(self.out, self.scene_id)
        if old.exists():
            shutil.rmtree(old)
        if self.final.exists():
            self.final.rename(old)
        self.partial.rename(self.final)
        if old.exists():
            shutil.rmtree(old)
        return sum(path.stat().st_size for path in self.final.iterdir())

    def _close(self) -> None:
        for dataset in self._datasets.values():
            dataset.close()
        self._datasets.clear()

    def _item(self, info: SceneInfo) -> dict[str, Any]:
        asset_keys = {name: key for key, name in ASSET_KEYS.items() if name in self.bands}
        assets = {}
        for band in self.bands:
            raster_band: dict[str, Any] = {"nodata": 0, "data_type": self.grid.band_dtypes[band]}
            if band != SCL:
                # raster:bands means reflectance = DN * scale + offset.
                raster_band |= {"scale": info.dn_scale, "offset": round(info.dn_offset * info.dn_scale, 10)}
            assets[asset_keys[band]] = {
                "href": f"./{band}.tif", "type": GEOTIFF_MEDIA_TYPE, "title": band, "roles": ["data"],
                "raster:bands": [raster_band],
                # A rerun checks the file is whole against it (`LocalScene.damaged`).
                "file:size": (self.partial / f"{band}.tif").stat().st_size,
            }
        footprint = footprint_wgs84(self.windows, self.grid.crs)
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": ["https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/file/v2.1.0/schema.json"],
            "id": self.scene_id,
            "geometry": shapely.geometry.mapping(footprint),
            "bbox": [round(v, 7) for v in footprint.bounds],
            "properties": {
                **info.properties,
                "datetime": info.acquired.isoformat().replace("+00:00", "Z"),
                "eo:cloud_cover": info.cloud_cover,
                # The reader's baseline rule then agrees with raster:bands (0: nothing to add).
                "earthsearch:boa_offset_applied": info.dn_offset == 0,
                "proj:epsg": self.grid.crs.to_epsg(),
                "farmcredit:grid": self.grid.to_json(),
                "farmcredit:windows": [list(bounds) for bounds in self.windows],
            },
            "links": [dict(link) for link in info.links],
            "assets": assets,
        }


def _replaced(out: Path, scene_id: str) -> Path:
    """Where a scene folder being replaced is set aside until its successor is in place."""
    return scene_folder(out, scene_id).with_name(f"{SET_ASIDE_PREFIX}{scene_id}")


def footprint_wgs84(windows: Sequence[tuple[float, float, float, float]], crs: rasterio.crs.CRS) -> shapely.Geometry:
    """The union of the windows in degrees (corners transformed; windows are a few km at most)."""
    return shapely.union_all(window_outlines(windows, crs)).normalize()


def window_outlines(windows: Sequence[tuple[float, float, float, float]], crs: rasterio.crs.CRS) -> np.ndarray:
    """Each window as a polygon in degrees (EPSG:4326), its corners transformed."""
    return gpd.GeoSeries([shapely.box(*bounds) for bounds in windows], crs=crs).to_crs("EPSG:4326").to_numpy()


def _megabytes(count: int) -> str:
    """A byte count for people: kB under 0.1 MB (a few small parcels' windows), else MB."""
    return f"{count / 1e3:.0f} kB" if count < 100_000 else f"{count / 1e6:.1f} MB"


def utm_crs(lon: float, lat: float) -> rasterio.crs.CRS:
    """The WGS 84 / UTM zone CRS holding a point (EPSG:326xx north, 327xx south)."""
    return rasterio.crs.CRS.from_epsg(int(utm_zone_epsg(lon, lat)))
