"""Scenes from Sentinel-2 L2A SAFE products: a ``.SAFE`` folder, or its ``.zip`` as the Copernicus
Browser downloads it (read in place through GDAL's /vsizip/, never unpacked).

Everything comes from the product's ``MTD_MSIL2A.xml``: the acquisition time
(PRODUCT_START_TIME), the DN conversion (BOA_QUANTIFICATION_VALUE, and BOA_ADD_OFFSET, or when a
product lacks it what its PROCESSING_BASELINE implies), the cloud cover (Cloud_Coverage_Assessment)
and the JP2 band files (IMAGE_FILE, at 10, 20 and 60 m; their names carry the tile). Each band is
read at the finest resolution the product has it.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from farmcredit.errors import ImageryError
from farmcredit.imagery.naming import BOA_ADD_OFFSET_DN, OFFSET_BASELINE, band_name, processing_baseline
from farmcredit.imagery.scene import Scene, parse_utc

logger = logging.getLogger(__name__)

METADATA_NAME = "MTD_MSIL2A.xml"
L1C_METADATA_NAME = "MTD_MSIL1C.xml"
# Most bytes of a MTD_MSIL2A.xml read (a real one is some 60 kB).
METADATA_MAX_BYTES = 16 * 2**20
# ".../IMG_DATA/R10m/T50SKB_20240315T031521_B04_10m" (baselines before 02.07 prefix "L2A_").
_IMAGE_FILE = re.compile(r"_(B\d{2}|B8A|SCL)_(\d{2})m$")
# A Sentinel-2 product's name (S2B_MSIL2A_20240315T031521_N0510_...), as downloaded.
PRODUCT_NAME = re.compile(r"S2[A-D]_MSIL(1C|2A)_(\d{8})T\d{6}_", re.IGNORECASE)


def is_safe_product(path: Path, season: tuple[date, date] | None = None) -> bool:
    """True for a ``.SAFE`` folder, or a ``.zip`` holding a SAFE product's metadata (L2A or L1C).

    Raises:
        ImageryError: A ``.zip`` named as a Sentinel-2 product acquired in ``season`` (any, without one) does not
            read as a zip (a download cut short): left out in silence, it would take its date off the season.
    """
    if path.is_dir():
        return path.name.upper().endswith(".SAFE")
    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                return any(_is_metadata(name) for name in archive.namelist())
        except (zipfile.BadZipFile, OSError) as error:
            named = PRODUCT_NAME.match(path.name)
            acquired = datetime.strptime(named.group(2), "%Y%m%d").date() if named else None
            if acquired is not None and (season is None or season[0] <= acquired <= season[1]):
                raise ImageryError(f"{path}: a Sentinel-2 product that does not read as a zip ({error}): a download "
                                   "cut short? Download it again, or move it out of the imagery folder") from error
            return False
    return False


def safe_scenes(path: Path) -> list[Scene]:
    """The scenes of L2A products: a .SAFE folder's one, or each one a .zip holds (as downloaded, or several
    zipped together).

    Raises:
        ImageryError: Not an L2A product, or unreadable metadata. A band file listed but not held is kept, for
            `open_imagery` to report as one GDAL cannot open, when the product holds the band at no resolution.

    >>> scene, = safe_scenes(Path("S2B_MSIL2A_20240315T031521_N0510_R118_T50SKB_20240315T064513.SAFE.zip"))
    ... # doctest: +SKIP
    >>> scene.band_paths["B04"][0]  # doctest: +SKIP
    '/vsizip/.../GRANULE/L2A_T50SKB_A036651_20240315T031516/IMG_DATA/R10m/T50SKB_20240315T031521_B04_10m.jp2'
    """
    if path.is_dir():
        members = {str(p.relative_to(path).as_posix()) for p in path.rglob("*") if p.is_file()}
        if METADATA_NAME not in members:
            _refuse_l1c(path, members)
            raise ImageryError(f"{path}: no {METADATA_NAME} in the .SAFE folder")
        _check_metadata_size(path / METADATA_NAME, (path / METADATA_NAME).stat().st_size)
        return [_scene(path, (path / METADATA_NAME).read_bytes(), members, str(path))]
    scenes = []
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            found = sorted(name for name in names if PurePosixPath(name).name == METADATA_NAME)
            if not found:
                _refuse_l1c(path, names)
                raise ImageryError(f"{path}: the zip holds no {METADATA_NAME}; is it a Sentinel-2 L2A product?")
            for name in found:  # one product's metadata in memory at a time
                _check_metadata_size(Path(f"{path}/{name}"), archive.getinfo(name).file_size)
                root = name[: -len(METADATA_NAME)]
                members = {member[len(root):] for member in names if member.startswith(root)}
                scenes.append(_scene(path, archive.read(name), members,
                                     f"/vsizip/{path.resolve()}/{root.rstrip('/')}".rstrip("/")))
    except (zipfile.BadZipFile, OSError) as error:
        raise ImageryError(f"{path}: not a readable zip file ({error})") from error
    return scenes


def _check_metadata_size(path: Path, size: int) -> None:
    """Refuse a product's metadata file (``path``, maybe a zip's member) of ``size`` bytes over
    ``METADATA_MAX_BYTES``: a real one is some 60 kB, and a zip of a few MB can unpack to GBs.

    Raises:
        ImageryError: naming the file and its size.
    """
    if size > METADATA_MAX_BYTES:
        raise ImageryError(f"{path}: {size} bytes, over the {METADATA_MAX_BYTES // 2**20} MiB a Sentinel-2 product's "
                           f"{METADATA_NAME} can be (some 60 kB); not a product's metadata, it is not read")


def _scene(path: Path, metadata: bytes, members: set[str], prefix: str) -> Scene:
    try:
        root = ElementTree.fromstring(metadata)
    except ElementTree.ParseError as error:
        raise ImageryError(f"{path}: {METADATA_NAME} is not valid XML ({error})") from error
    texts = _texts(root)
    start = _first(path, texts, "PRODUCT_START_TIME")
    try:
        acquired = parse_utc(start)
    except ValueError as error:
        raise ImageryError(f"{path}: cannot parse PRODUCT_START_TIME {start!r}") from error
    # Products of PSD 14.2 (baselines 02.04-02.06, Sen2Cor 2.4-2.5) name the L2A fields with a 2A / L2A_ mark.
    product_uri = (texts.get("PRODUCT_URI") or texts.get("PRODUCT_URI_2A") or [path.name])[0]
    scene_id = re.sub(r"(\.SAFE)?(\.zip)?$", "", product_uri, flags=re.IGNORECASE)
    band_paths = {}
    for name, relative in _band_files(path, texts, members).items():
        # One the product does not hold is a band file GDAL cannot open, as `open_imagery` handles it.
        band_paths[name] = (f"{prefix}/{relative}", 1)
    if not band_paths:
        raise ImageryError(f"{path}: no band files (JP2) found in the product")
    cloud = texts.get("Cloud_Coverage_Assessment") or texts.get("CLOUDY_PIXEL_PERCENTAGE")
    return Scene(
        scene_id=scene_id,
        acquired=acquired,
        band_paths=band_paths,
        dn_offset=_dn_offset(path, root, _first(path, texts, "PROCESSING_BASELINE")),
        dn_scale=1.0 / float(_first(path, texts, "BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE")),
        cloud_cover=float(cloud[0]) if cloud else None,
        level="L2A",
    )


def _band_files(path: Path, texts: dict[str, list[str]], members: Iterable[str]) -> dict[str, str]:
    """Band name -> its file at the finest resolution the product holds, as listed in IMAGE_FILE (else found by
    name); a band it holds at no resolution gets its finest listed file."""
    held = set(members)
    listed = [f"{text.strip()}.jp2" for text in texts.get("IMAGE_FILE", []) + texts.get("IMAGE_FILE_2A", [])]
    if outside := [relative for relative in listed if not _within_product(relative)]:
        logger.warning("%s: IMAGE_FILE %s is not read: it lies outside the product", path, ", ".join(outside))
        listed = [relative for relative in listed if relative not in outside]
    candidates = listed or [m for m in held if m.lower().endswith(".jp2") and "/IMG_DATA/" in m]
    finest: dict[str, tuple[tuple[bool, int], str]] = {}
    for relative in candidates:
        match = _IMAGE_FILE.search(PurePosixPath(relative).stem)
        name = band_name(match.group(1)) if match else None
        if name is None:
            continue
        rank = (relative not in held, int(match.group(2)))
        if name not in finest or rank < finest[name][0]:
            finest[name] = (rank, relative)
    return {name: relative for name, (_, relative) in finest.items()}


def _within_product(relative: str) -> bool:
    """Whether a path the metadata lists stays inside the product: relative, no ".." (GDAL reads "\\" as "/" too)."""
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    return bool(parts) and parts[0] != "/" and ".." not in parts


def _dn_offset(path: Path, root: ElementTree.Element, baseline_text: str) -> float:
    """The product's BOA_ADD_OFFSET; without one, what its processing baseline implies (-1000 from 04.00)."""
    offsets = {float(element.text or 0) for element in root.iter() if _local(element.tag) == "BOA_ADD_OFFSET"}
    if len(offsets) > 1:
        raise ImageryError(
            f"{path}: BOA_ADD_OFFSET differs between bands {sorted(offsets)}; one DN offset per scene is supported"
        )
    if offsets:
        return offsets.pop()
    baseline = processing_baseline(baseline_text)
    if baseline is None:
        raise ImageryError(f"{path}: cannot parse PROCESSING_BASELINE {baseline_text!r}")
    return BOA_ADD_OFFSET_DN if baseline >= OFFSET_BASELINE else 0.0


def _texts(root: ElementTree.Element) -> dict[str, list[str]]:
    """Element texts by local tag name (the metadata's namespaces vary with the product version)."""
    texts: dict[str, list[str]] = {}
    for element in root.iter():
        if element.text and element.text.strip():
            texts.setdefault(_local(element.tag), []).append(element.text.strip())
    return texts


def _first(path: Path, texts: dict[str, list[str]], tag: str, *aliases: str) -> str:
    """The first text of ``tag`` (else of the first of ``aliases`` the metadata has)."""
    for name in (tag, *aliases):
        if name in texts:
            return texts[name][0]
    raise ImageryError(f"{path}: {METADATA_NAME} has no {tag}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_metadata(name: str) -> bool:
    return PurePosixPath(name).name in (METADATA_NAME, L1C_METADATA_NAME)


def level_1c_error(where: str, instead: str = "the S2MSI2A product of the same date") -> ImageryError:
    """The refusal of Level-1C imagery (a SAFE product, a STAC item or collection), naming ``where`` and what to read
    ``instead``: its top-of-atmosphere reflectance is hazier than the surface reflectance the models and thresholds
    are set on, and without a scene classification clouds read as clear."""
    return ImageryError(f"{where} is Level-1C (top-of-atmosphere reflectance); farmcredit needs Level-2A (surface "
                        f"reflectance with its scene classification), e.g. {instead}")


def _refuse_l1c(path: Path, names: Iterable[str]) -> None:
    if any(PurePosixPath(name).name == L1C_METADATA_NAME for name in names):
        raise level_1c_error(str(path))

