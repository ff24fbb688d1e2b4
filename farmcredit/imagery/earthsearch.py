"""Scenes from Earth Search-layout folders: per-band GeoTIFF/COG (or JPEG 2000) files, maybe a STAC item.

A folder that holds STAC item JSON files yields one scene per item; a folder without items but
with band files (``B04.tif`` or ``red.tif``) yields one scene dated by the folder's name. L2A
``.SAFE`` folders and their ``.zip`` files met on the way are read as SAFE products.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
from rasterio.errors import RasterioError

from farmcredit.errors import ImageryError
from farmcredit.formats import open_raster
from farmcredit.imagery._gdal import gdal_env
from farmcredit.imagery.naming import (
    BOA_ADD_OFFSET_DN,
    L2A_DN_SCALE,
    OFFSET_BASELINE,
    OFFSET_BASELINE_SINCE,
    SCL,
    SET_ASIDE_PREFIX,
    band_name,
    date_in_name,
    processing_baseline,
    reflectance_scale,
    scene_dn_offset,
    tagged_conversion,
    unknown_offset_warning,
)
from farmcredit.imagery.read import float_scale
from farmcredit.imagery.safe import is_safe_product, level_1c_error, safe_scenes
from farmcredit.imagery.scene import Scene, parse_utc
from farmcredit.locking import SIMULATING
from farmcredit.text import some

logger = logging.getLogger(__name__)

# JPEG 2000 band files (AWS's sentinel-s2-l2a layout, bands copied out of a SAFE) read through GDAL's JP2OpenJPEG.
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
# Files of a scene folder that are read: bands, STAC items, zipped SAFE products.
READ_SUFFIXES = (*RASTER_SUFFIXES, ".json", ".zip")
# Hrefs a local item reads from the copy beside it, never over the network.
_REMOTE_SCHEMES = ("http", "https", "s3")
# Where fsck puts what it recovers, at an ext2/3/4 drive's root, readable by root only: not an imagery folder.
LOST_AND_FOUND = "lost+found"


def find_scenes(folder: Path, dn_offset: float | None,
                season: tuple[date, date] | None = None) -> tuple[list[Scene], list[tuple[str, str]]]:
    """Every scene under a folder, searched recursively (hidden folders skipped), and the folders under it that
    cannot be listed (no read or search permission), each warned of: their scenes are not read, as a band file GDAL
    cannot open costs only its date.

    Args:
        folder: Root folder of scene folders (or itself a scene folder).
        dn_offset: DN offset for scenes without a STAC item; None means 0 (see ``_check_unknown_offsets``).
        season: The season read: a product cut short is refused only when acquired in it (see ``is_safe_product``).

    Returns:
        Scenes in folder order (not yet sorted by date); (folder, the system's message) of each folder not listed.

    Raises:
        ImageryError: A folder holds scenes a simulation left unfinished (``farmcredit.locking.SIMULATING``), or
            ``folder`` itself cannot be listed.
    """
    scenes: list[Scene] = []
    without_item: list[Scene] = []
    unread: list[tuple[str, str]] = []
    visited: set[str] = set()

    def not_listed(error: OSError, where: str | None = None) -> None:
        where = where or str(error.filename)
        message = error.strerror or str(error)
        if where == os.fspath(folder):
            raise ImageryError(f"{where}: imagery folder cannot be listed ({message}); give the user running "
                               "farmcredit read and search permission on it (chmod a+rX)") from error
        if os.path.basename(where) == LOST_AND_FOUND:  # the file system's own, at a drive's root: never imagery
            return
        logger.warning("%s: folder under the imagery cannot be listed (%s): any scene in it is not read, so no "
                       "parcel sees its dates; give the user running farmcredit read and search permission on it "
                       "(chmod -R a+rX), or move it out of the imagery folder", where, message)
        unread.append((where, message))

    # Linked scene folders are followed (each real folder once: a link back up would loop); hidden files, such as
    # macOS's ._ sidecars of every file copied to an exFAT or SMB drive, are skipped as hidden folders are. A folder
    # that cannot be listed is reported (``not_listed``), never skipped in silence.
    for directory, subdirectories, all_files in os.walk(folder, onerror=not_listed, followlinks=True):
        here = Path(directory)
        if (real := os.path.realpath(directory)) in visited:
            subdirectories[:] = []
            continue
        visited.add(real)
        if SIMULATING in all_files:
            raise ImageryError(f"{here}: the `farmcredit simulate` writing these scenes did not finish ({SIMULATING} "
                               "is still there): some dates may be missing or from another seed; run the simulation "
                               "again")
        try:
            found, offset_unknown = _folder_scenes(here, subdirectories, all_files, folder, dn_offset, season)
        except OSError as error:  # listed, yet its files cannot be looked at (read but no search permission: 444)
            not_listed(error, directory)
            subdirectories[:] = []
            continue
        scenes.extend(found)
        without_item.extend(offset_unknown)
    if dn_offset is None:
        _check_unknown_offsets(folder, scenes, without_item, season)
    return scenes, unread


def _folder_scenes(here: Path, subdirectories: list[str], all_files: list[str], root: Path, dn_offset: float | None,
                   season: tuple[date, date] | None) -> tuple[list[Scene], list[Scene]]:
    """The scenes ``find_scenes`` reads in one folder of its walk (``here``, holding ``all_files``, under ``root``),
    and those of them without a DN offset; ``subdirectories`` is left holding those to walk on into (none in a SAFE
    product, no hidden one).

    Raises:
        OSError: A file in ``here`` cannot be looked at (no search permission on it).
    """
    files = [name for name in all_files if not name.startswith(".")]
    # The files this reads (a notes file beside them is never opened, whatever its name's encoding).
    _check_utf8([os.fspath(here)] if is_safe_product(here) else
                [os.path.join(here, name) for name in files if name.lower().endswith(READ_SUFFIXES)])
    for aside, scene in set_aside_scenes(here, subdirectories):
        logger.warning("%s: scene %s was set aside by an interrupted `farmcredit fetch` and is not read; "
                       "run the fetch again into %s to put it back", aside, scene.name, here)
    if is_safe_product(here):
        subdirectories[:] = []
        return safe_scenes(here), []
    subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
    scenes = [scene for name in sorted(files) if is_safe_product(here / name, season)
              for scene in safe_scenes(here / name)]
    items = [
        (path, document)
        for path in sorted(here / name for name in files if name.lower().endswith(".json"))
        if _is_stac_item(document := _load_json(path))
    ]
    if items:
        return scenes + _own_files(here, [scene_from_item(path, document, root) for path, document in items]), []
    if (found := _scene_from_band_files(here, files, dn_offset)) is None:
        return scenes, []
    scene, offset_unknown = found
    return [*scenes, scene], [scene] if offset_unknown else []


def _own_files(folder: Path, scenes: list[Scene]) -> list[Scene]:
    """The scenes of ``folder``'s items, each reading band files of its own.

    Raises:
        ImageryError: Two items read one local file: a flat download, where each item's ``B04.tif`` was written over
            the one before (an https href finds its local copy by its file name), so one date's pixels would be read
            for every date.
    """
    reader: dict[str, str] = {}
    for scene in scenes:
        for band, (path, _) in scene.band_paths.items():
            if path.startswith("/vsi"):
                continue
            first = reader.setdefault(path, scene.scene_id)
            if first != scene.scene_id:
                raise ImageryError(
                    f"{folder}: items {first} and {scene.scene_id} both read {Path(path).name} ({band}), so both "
                    "dates would get one date's pixels; give each item and its band files a folder of their own (as "
                    "`farmcredit fetch` lays them out)")
    return scenes


def _check_utf8(paths: list[str]) -> None:
    """GDAL takes file names as UTF-8: a file to read whose name on disk is in another encoding (a folder named in
    GBK, unzipped on Linux) would not open, nor would one named in UTF-8 that Python read in a locale that is not
    (LANG=zh_CN.GB18030, or C with PYTHONUTF8=0), which gives GDAL other bytes, or none (a surrogate).

    Raises:
        ImageryError: naming the first such path as best it reads, and how to rename it or to run in a UTF-8 locale.
    """
    for name in paths:
        on_disk = os.fsencode(name)
        readable = on_disk.decode("utf-8", errors="replace")
        try:
            utf8_name = on_disk.decode("utf-8")
        except UnicodeDecodeError:
            raise ImageryError(f"{readable}: its name is not UTF-8 text, which GDAL needs; rename it (from GBK, say: "
                               "convmv -f gbk -t utf-8 -r --notest FOLDER)") from None
        if utf8_name != name:
            raise ImageryError(f"{readable}: its name is UTF-8 text, but this system's locale is not UTF-8 (file names "
                               f"read as {sys.getfilesystemencoding()}), so GDAL cannot be given it; run farmcredit "
                               "with LANG=C.UTF-8 (or PYTHONUTF8=1) set, and leave the name as it is")


def _check_unknown_offsets(folder: Path, scenes: list[Scene], without_item: list[Scene],
                           season: tuple[date, date] | None) -> None:
    """Scene folders without an item are read with DN offset 0, for want of one to read theirs from; each in the
    season is warned of whatever its date, as baseline 04.00's -1000 also came to older acquisitions reprocessed
    (Collection 1).

    Raises:
        ImageryError: Such a folder is dated on or after the season's first item or SAFE product that gives -1000:
            read with 0, it would be a tenth of reflectance brighter than the dates beside it.
    """
    def in_season(scene: Scene) -> bool:
        return season is None or season[0] <= scene.acquired.date() <= season[1]

    unknown = [scene for scene in without_item if in_season(scene)]
    if not unknown:
        return
    item_less = {id(scene) for scene in without_item}
    # By date: a folder's time is midnight, an item's the moment of acquisition (another tile of that day counts).
    offset_since = min((scene.acquired.date() for scene in scenes if in_season(scene) and id(scene) not in item_less
                        and scene.dn_offset == BOA_ADD_OFFSET_DN), default=None)
    if offset_since is not None and (after := [s.scene_id for s in unknown if s.acquired.date() >= offset_since]):
        raise ImageryError(
            f"{folder}: {len(after)} scene folder(s) without a STAC item ({some(after)}) have no DN offset to read, "
            f"while the season's items from {offset_since} give {BOA_ADD_OFFSET_DN:g} (processing baseline "
            "04.00 on): read with 0, their reflectance would be 0.1 above the other dates'; pass --dn-offset "
            f"(dn_offset= in Python): -1000 for products of baseline 04.00 or later (acquired since "
            f"{OFFSET_BASELINE_SINCE}, or older ones reprocessed as Collection 1), 0 for others (it applies to every "
            "folder without an item); or add their items"
        )
    unknown_ids = [scene.scene_id for scene in unknown]
    logger.warning("%s", unknown_offset_warning(f"{len(unknown_ids)} scene folder(s) without a STAC item "
                                                f"({some(unknown_ids)})"))


def set_aside_scenes(folder: Path, subdirectories: Iterable[str]) -> list[tuple[Path, Path]]:
    """(set-aside folder, its scene folder) for each of ``subdirectories`` of ``folder`` that a fetch killed while
    replacing a scene folder left set aside, its scene folder missing (hidden, so no reader sees it)."""
    asides = [folder / name for name in subdirectories if name.startswith(SET_ASIDE_PREFIX)]
    pairs = [(aside, folder / aside.name.removeprefix(SET_ASIDE_PREFIX)) for aside in asides]
    return [(aside, scene) for aside, scene in pairs if not scene.exists()]


def scene_from_item(item_path: Path | str, item: dict[str, Any], root: Path | None = None) -> Scene:
    """A scene from a STAC item (Earth Search v1 asset keys, or band names as keys).

    Offsets follow the item: ``earthsearch:boa_offset_applied`` true -> 0; else processing
    baseline >= 04.00 -> -1000 DN; else 0. An explicit ``raster:bands`` offset wins over that rule.

    A local item's band files are local files inside ``root``: a relative, absolute or file: href is read where it
    points when that lies inside, and a remote one (http, https, s3) as the file of its name beside the item (Earth
    Search's items as published, their files downloaded beside them); the network is never read. A band whose href
    names no such file is left out, with a warning. A remote item's band files are read over the network only.

    Args:
        item_path: The item's file, or the URL of a remote item (whose hrefs must be absolute http(s) or s3 URLs).
        item: The item's JSON.
        root: The imagery folder a local item lies in (default: the item's own folder).

    Raises:
        ImageryError: The item is Level-1C, lacks a datetime or band assets, has a value of the wrong kind, or (a
            remote item) an href that is no http(s) or s3 URL.
    """
    item_id = str(item.get("id") or (item_path.stem if isinstance(item_path, Path) else item_path))
    try:
        return _item_scene(item_path, item_id, item, root)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        # A value of the wrong type or out of range ("eo:cloud_cover": "n/a", a scale of 0, an asset as text).
        raise ImageryError(f"{item_path}: STAC item {item_id} has a value farmcredit cannot use "
                           f"({type(error).__name__}: {error}); fix or remove it") from error


def _item_scene(item_path: Path | str, item_id: str, item: dict[str, Any], root: Path | None) -> Scene:
    """``scene_from_item``'s work, its errors of malformed values not yet told."""
    local_folder = item_path.parent if isinstance(item_path, Path) else None
    properties = item.get("properties") or {}
    if is_level_1c_item(item):
        raise level_1c_error(f"{item_path}: STAC item {item_id}")
    acquired = _item_datetime(item_path, properties)
    band_assets: dict[str, dict[str, Any]] = {}
    for key, asset in item["assets"].items():
        name = band_name(key)
        if name is not None and name not in band_assets and asset.get("href"):
            band_assets[name] = asset
    if not band_assets:
        raise ImageryError(f"{item_path}: STAC item {item_id} has no Sentinel-2 band assets")
    if isinstance(item_path, Path):
        band_paths = _local_band_files(item_path, band_assets, root or item_path.parent)
    else:
        band_paths = {name: (_remote_band_file(item_path, asset["href"]), 1) for name, asset in band_assets.items()}
    dn_offset, dn_scale = _dn_conversion(item_path, properties, band_assets)
    # Its red band's file tells (or the first): opening every file of every item of a large folder cost seconds.
    told = {name: path for name, path in band_paths.items() if name == "B04"} or dict(list(band_paths.items())[:1])
    if local_folder is not None and _band_file_conversion(local_folder, told, None)[0] == 1.0:
        # Local copies saved as reflectance (a processing run over the download): what the item says of DNs is not
        # theirs.
        dn_offset, dn_scale = 0.0, 1.0
    cloud_cover = properties.get("eo:cloud_cover")
    return Scene(
        scene_id=item_id,
        acquired=acquired,
        band_paths=band_paths,
        dn_offset=dn_offset,
        dn_scale=dn_scale,
        cloud_cover=None if cloud_cover is None else float(cloud_cover),
        level="L2A",
    )


def is_level_1c_collection(collection: str) -> bool:
    """True for a Level-1C collection id (Earth Search's and Copernicus Data Space's ``sentinel-2-l1c``)."""
    return "l1c" in collection.lower()


def is_level_1c_item(item: dict[str, Any]) -> bool:
    """True for a STAC item of a Level-1C product: ``s2:product_type`` S2MSI1C, ``processing:level`` L1C, or a
    Level-1C collection (an item of Earth Search's ``sentinel-2-l1c`` looks as one of ``sentinel-2-l2a`` otherwise,
    its band assets named alike)."""
    properties = item.get("properties") or {}
    return (str(properties.get("s2:product_type", "")).upper() == "S2MSI1C"
            or str(properties.get("processing:level", "")).upper() == "L1C"
            or is_level_1c_collection(str(item.get("collection") or "")))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: nested too deep
        # A broken item would silently drop a date from the season: refuse instead.
        raise ImageryError(f"{path}: not valid JSON ({error}); fix or remove it") from error


def _is_stac_item(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and document.get("type") == "Feature"
        and isinstance(document.get("assets"), dict)
    )


def _item_datetime(item_path: Path | str, properties: dict[str, Any]) -> datetime:
    text = properties.get("datetime") or properties.get("start_datetime")
    if not text:
        raise ImageryError(f"{item_path}: STAC item has no datetime")
    try:
        return parse_utc(str(text))
    except ValueError as error:
        raise ImageryError(f"{item_path}: cannot parse datetime {text!r}") from error


def _remote_band_file(item_url: str, href: str) -> str:
    """GDAL's path of a remote item's band file.

    Raises:
        ImageryError: The href is no http(s) or s3 URL (a file: URL or a path would read this computer's files).
    """
    parsed = urlparse(href)
    if parsed.scheme == "s3":
        return f"/vsis3/{parsed.netloc}{parsed.path}"
    if parsed.scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    raise ImageryError(f"{item_url}: asset href {_without_query(href)!r} is not an http(s) or s3 URL; a remote item's "
                       "band files are read over the network only")


def _local_band_files(
    item_path: Path, band_assets: dict[str, dict[str, Any]], root: Path
) -> dict[str, tuple[str, int]]:
    """The band files of a local item (see ``scene_from_item``): each href's local file inside ``root``; a band whose
    href names none is left out, with a warning naming it and why."""
    band_paths, unread = {}, []
    for name, asset in band_assets.items():
        href = asset["href"]
        parsed = urlparse(href)
        remote = parsed.scheme in _REMOTE_SCHEMES
        if remote:  # its copy beside the item
            path = item_path.parent / PurePosixPath(parsed.path).name
        elif parsed.scheme == "file":
            path = Path(url2pathname(parsed.path))
        else:
            path = item_path.parent / href
        path = Path(os.path.normpath(path))
        if not _inside(path, root, item_path.parent):
            unread.append(f"{name} ({_without_query(href)}: outside {root})")
        elif remote and not path.is_file():
            unread.append(f"{name} ({_without_query(href)}: remote, and no {path.name} beside the item)")
        else:
            band_paths[name] = (str(path), 1)
    if unread:
        logger.warning("%s: band(s) %s are not read: a local item's band files are the local files inside the imagery "
                       "folder (download them beside the item, or fetch the scene: farmcredit fetch)",
                       item_path, ", ".join(unread))
    return band_paths


def _inside(path: Path, root: Path, scene_folder: Path) -> bool:
    """Whether ``path`` lies in ``root`` (or is it) by their names made absolute (links inside are followed, as
    linked scene folders are), or, as a file, in the folder that ``root`` or the item's ``scene_folder`` really is (an
    href naming the real path of a linked scene folder)."""
    real = os.path.realpath(path)
    return any(os.path.commonpath([named, folder]) == folder for named, folder in (
        (os.path.abspath(path), os.path.abspath(root)), (real, os.path.realpath(root)),
        (real, os.path.realpath(scene_folder))))


def _without_query(href: str) -> str:
    """An href without its query string (a signed URL's token)."""
    return href.split("?", 1)[0]


def _dn_conversion(
    item_path: Path | str, properties: dict[str, Any], band_assets: dict[str, dict[str, Any]]
) -> tuple[float, float]:
    """(dn_offset, dn_scale) of an item: the baseline rule, cross-checked with ``raster:bands``.

    ``earthsearch:boa_offset_applied`` true means offset 0 whatever ``raster:bands`` says: Earth Search publishes its
    items from 2022 on with the flag true and a stale ``raster:bands`` offset of -0.1, and its maintainers say the flag
    is the truth (Element84/earth-search#9, cirrus-geo/cirrus-earth-search#33). Without the flag, ``raster:bands``
    wins over the baseline rule.
    """
    offset_applied = properties.get("earthsearch:boa_offset_applied") is True
    if offset_applied:
        rule_offset = 0.0
    elif _baseline(item_path, properties.get("s2:processing_baseline")) >= OFFSET_BASELINE:
        rule_offset = BOA_ADD_OFFSET_DN
    else:
        rule_offset = 0.0

    explicit: set[tuple[float, float]] = set()
    for name, asset in band_assets.items():
        raster_bands = asset.get("raster:bands") or [{}]
        offset, scale = raster_bands[0].get("offset"), raster_bands[0].get("scale")
        if name != SCL and offset is not None:
            scale = L2A_DN_SCALE if scale is None else float(scale)
            # raster:bands means reflectance = DN * scale + offset; ours adds the offset in DN.
            explicit.add((round(float(offset) / scale, 6), scale))
    if len(explicit) > 1:
        raise ImageryError(
            f"{item_path}: bands disagree on raster:bands offset/scale {sorted(explicit)}; "
            "one DN conversion per scene is supported"
        )
    if not explicit:
        return rule_offset, L2A_DN_SCALE
    offset, scale = explicit.pop()
    if offset_applied and offset != 0.0:
        logger.info("%s: raster:bands offset %g DN is overridden by earthsearch:boa_offset_applied true (the offset is "
                    "already in the DNs): read with DN offset 0", item_path, offset)
        return 0.0, scale
    if offset != rule_offset:
        logger.warning(
            "%s: raster:bands offset %g DN disagrees with processing baseline/boa_offset_applied "
            "(%g DN); using raster:bands",
            item_path,
            offset,
            rule_offset,
        )
    return offset, scale


def _baseline(item_path: Path | str, text: Any) -> tuple[int, int]:
    """Processing baseline "05.10" as (5, 10); (0, 0) when the item does not say."""
    if text is None:
        return (0, 0)
    baseline = processing_baseline(text)
    if baseline is None:
        raise ImageryError(f"{item_path}: cannot parse s2:processing_baseline {text!r}")
    return baseline


def _scene_from_band_files(
    folder: Path, files: list[str], dn_offset: float | None
) -> tuple[Scene, bool] | None:
    """The scene of a folder of band files without an item, and whether its DN offset is unknown (DNs whose tags
    declare none, read with ``dn_offset`` or 0: float reflectance has none to miss); None without band files."""
    band_paths: dict[str, tuple[str, int]] = {}
    # A band's GeoTIFF before its JPEG 2000 copy (an Earth Search item's red and red-jp2 assets both downloaded).
    for file_name in sorted(files, key=lambda name: (name.lower().endswith(".jp2"), name)):
        stem, suffix = os.path.splitext(file_name)
        name = band_name(stem) if suffix.lower() in RASTER_SUFFIXES else None
        if name is None:
            continue
        if name in band_paths and suffix.lower() == ".jp2" and not band_paths[name][0].lower().endswith(".jp2"):
            continue
        if name in band_paths:
            raise ImageryError(
                f"{folder}: both {Path(band_paths[name][0]).name} and {file_name} look like {name}"
            )
        band_paths[name] = (str(folder / file_name), 1)
    if not band_paths:
        return None
    acquired = date_in_name(folder.name)
    if acquired is None:
        raise ImageryError(
            f"{folder}: cannot tell the acquisition date from the folder name; name it YYYY-MM-DD "
            "(or a Sentinel-2 id such as S2B_50SKA_20240315_0_L2A) or add a STAC item"
        )
    dn_scale, tagged_offset = _band_file_conversion(folder, band_paths, dn_offset)
    scene = Scene(
        scene_id=folder.name,
        acquired=datetime(acquired.year, acquired.month, acquired.day, tzinfo=timezone.utc),
        band_paths=band_paths,
        dn_offset=scene_dn_offset(dn_offset, dn_scale, tagged_offset),
        dn_scale=dn_scale,
        cloud_cover=None,
    )
    return scene, tagged_offset is None and dn_scale != 1.0


def _band_file_conversion(
    folder: Path, band_paths: dict[str, tuple[str, int]], dn_offset: float | None
) -> tuple[float, float | None]:
    """(reflectance per stored value, DN offset their tags declare or None) of a scene's local band files: 1e-4 for
    integer DNs, or the scale their GDAL tags declare (``tagged_conversion``); for float files what their red band's
    values say (``float_scale``). A file that does not open is `open_imagery`'s to report.

    Raises:
        ImageryError: the scene mixes integer and float band files, has 8-bit ones, or its tags disagree (with each
            other or with ``dn_offset``).
    """
    dtypes, scale, tags = [], None, []
    with gdal_env():
        for name, (path, index) in sorted(band_paths.items(), key=lambda pair: pair[0] != "B04"):
            if name == SCL or path.startswith("/vsi"):
                continue
            try:
                with open_raster(path) as dataset:
                    dtypes.append(dataset.dtypes[index - 1])
                    if np.issubdtype(np.dtype(dtypes[-1]), np.integer):
                        tags.append((dataset.scales[index - 1], dataset.offsets[index - 1]))
                    elif scale is None:
                        scale = float_scale([(dataset, index)])
            except RasterioError:
                continue
    kind = reflectance_scale(folder, dtypes)  # refuses a mix
    if scale is not None:
        return scale, None
    return tagged_conversion(folder, tags, dn_offset) or (kind, None)
