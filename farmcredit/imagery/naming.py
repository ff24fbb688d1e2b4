"""How Sentinel-2 bands and dates are spelled in file names, STAC assets and band descriptions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

import numpy as np

from farmcredit.errors import ImageryError

# Canonical band names in wavelength order (B8A sits between B08 and B09, as in the product).
BAND_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)
SCL = "SCL"
# The surface bands a model reads: B01 (aerosols), B09 (water vapour) and B10 (cirrus) describe the atmosphere.
SURFACE_BANDS: tuple[str, ...] = tuple(band for band in BAND_ORDER if band not in ("B01", "B09", "B10"))
# Red and NIR: every parcel statistic starts from NDVI.
NDVI_BANDS: tuple[str, ...] = ("B04", "B08")
# Where `farmcredit fetch` sets a scene folder aside while replacing it (the next fetch puts back one left there).
SET_ASIDE_PREFIX = ".partial-old-"
# Where `farmcredit fetch` moves a scene folder of an earlier fetch that a newer processing of its tile and time
# supersedes (hidden, so readers do not mosaic the old pixels with the new).
SUPERSEDED_PREFIX = ".superseded-"

# Earth Search v1 asset keys (cirrus is L1C-only, kept so L1C stacks can be named too).
ASSET_KEYS: dict[str, str] = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "cirrus": "B10",
    "swir16": "B11",
    "swir22": "B12",
    "scl": SCL,
}

# Processing baseline 04.00 (products from 2022-01-25) adds 1000 to every L2A DN.
BOA_ADD_OFFSET_DN = -1000.0
# Reflectance per DN of L2A integer band files.
L2A_DN_SCALE = 1e-4
OFFSET_BASELINE = (4, 0)
OFFSET_BASELINE_SINCE = date(2022, 1, 25)


def unknown_offset_warning(read: str) -> str:
    """The warning for DNs read with offset 0 for want of one given or read: ``read`` names them, as the subject of
    "are read with DN offset 0" (``"1 scene folder(s) without a STAC item (2024-03-20)"``)."""
    return (f"{read} are read with DN offset 0; Sentinel-2 L2A products of processing baseline 04.00 or later "
            f"(acquisitions since {OFFSET_BASELINE_SINCE}, and older ones reprocessed as Collection 1) add 1000 to "
            "every DN (their MTD_MSIL2A.xml BOA_ADD_OFFSET): if theirs do, pass --dn-offset -1000 (dn_offset=-1000 "
            "in Python); if not, --dn-offset 0")


# The 10 m bands: the finest of them present defines a scene's base grid.
BASE_GRID_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")

# "B4" / "B04" / "b8a"; Google Earth Engine exports drop the leading zero.
_BAND_NUMBER = re.compile(r"B0?(\d{1,2}|8A)", re.IGNORECASE)
# 2021-06-17 or 20210617 not glued to other digits (S2 ids, SAFE names and tile folders all match).
_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def band_name(label: str) -> str | None:
    """Canonical band name ("B04", "B8A", "SCL") for a band label or asset key, or None.

    >>> band_name("red"), band_name("b8a"), band_name("B4"), band_name("visual")
    ('B04', 'B8A', 'B04', None)
    """
    label = label.strip()
    if label.lower() in ASSET_KEYS:
        return ASSET_KEYS[label.lower()]
    if label.upper() == SCL:
        return SCL
    match = _BAND_NUMBER.fullmatch(label)
    if match is None:
        return None
    number = match.group(1).upper()
    name = "B8A" if number == "8A" else f"B{int(number):02d}"
    return name if name in BAND_ORDER else None


def processing_baseline(text: object) -> tuple[int, int] | None:
    """A processing baseline "05.10" as (5, 10), or None when the text is not one.

    >>> processing_baseline("05.10"), processing_baseline(" 02.14 "), processing_baseline("N0510")
    ((5, 10), (2, 14), None)
    """
    match = re.fullmatch(r"(\d+)\.(\d+)", str(text).strip())
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def band_sort_key(name: str) -> int:
    """Position of a canonical band name in wavelength order (SCL last)."""
    return BAND_ORDER.index(name) if name in BAND_ORDER else len(BAND_ORDER)


def date_in_name(name: str) -> date | None:
    """The first valid calendar date written as YYYY-MM-DD or YYYYMMDD in a name, or None.

    >>> date_in_name("S2B_50SKA_20240315_0_L2A"), date_in_name("2024-03-15")
    (datetime.date(2024, 3, 15), datetime.date(2024, 3, 15))
    """
    for match in _DATE.finditer(name):
        try:
            return date(*(int(part) for part in match.groups()))
        except ValueError:
            continue
    return None


def dated_band_label(label: str) -> tuple[date | None, str] | None:
    """Parse a stack band description.

    Accepted: "B04", "red", "2021-06-17 B04", "2021-06-17_B04", "20210617_B04".

    Returns:
        (date or None, canonical band name), or None when the label names no band.
    """
    parts = re.split(r"[ _]+", label.strip(), maxsplit=1)
    if len(parts) == 1:
        name = band_name(parts[0])
        return None if name is None else (None, name)
    when = date_in_name(parts[0]) if _DATE.fullmatch(parts[0]) else None
    name = band_name(parts[1])
    return None if when is None or name is None else (when, name)


def reflectance_scale(where: object, dtypes: Iterable[str]) -> float:
    """Reflectance per stored value of band files of these data types (not SCL's): 1e-4 for integer DNs, 1 for float
    reflectance (0-1, as SNAP, openEO or a FLOAT32 Sentinel Hub export write it).

    Raises:
        ImageryError: ``where`` mixes integer and float bands, or has 8-bit ones.
    """
    dtypes = list(dtypes)
    if any(np.dtype(dtype).itemsize == 1 for dtype in dtypes):
        # Read as DNs they would be reflectance 0-0.0255, and every parcel would read uncultivated.
        raise ImageryError(f"{where}: 8-bit imagery is a display product (reflectance*255 or a visual), not "
                           "reflectance; export UINT16 or FLOAT32")
    kinds = {np.issubdtype(np.dtype(dtype), np.floating) for dtype in dtypes}
    if len(kinds) > 1:
        raise ImageryError(f"{where}: mixes integer and float reflectance bands ({sorted(set(dtypes))})")
    return 1.0 if kinds == {True} else L2A_DN_SCALE


def tagged_conversion(
    where: object, tags: Iterable[tuple[float, float]], dn_offset: float | None
) -> tuple[float, float | None] | None:
    """(dn_scale, dn_offset) that integer band files' GDAL scale/offset tags declare (reflectance = DN * scale +
    offset, as rioxarray, odc-stac and Copernicus Data Space exports write them), the offset None where theirs is 0
    (a file without the tag reads 0 too, so it says nothing); None where they declare nothing (1, 0).

    Args:
        where: The file or folder, for messages.
        tags: (scale, offset) of each band that is not SCL.
        dn_offset: The DN offset asked for (--dn-offset), None where none was.

    Raises:
        ImageryError: The bands declare different ones, or an offset that ``dn_offset`` contradicts.
    """
    declared = {(float(scale), float(offset)) for scale, offset in tags}
    if declared <= {(1.0, 0.0)}:
        return None
    if len(declared) > 1:
        raise ImageryError(f"{where}: its bands declare different GDAL scale/offset tags {sorted(declared)}; one DN "
                           "conversion per scene is supported")
    scale, offset = declared.pop()
    if not offset:
        return scale, None
    tagged_offset = round(offset / scale, 6)
    if dn_offset is not None and float(dn_offset) != tagged_offset:
        raise ImageryError(f"{where}: its band files' GDAL tags declare reflectance = DN x {scale:g} {offset:+g}, a DN "
                           f"offset of {tagged_offset:g}, which --dn-offset {dn_offset:g} (dn_offset= in Python) "
                           "contradicts; leave --dn-offset out to read the tags' offset, or, if the tags are wrong, "
                           "reset them (gdal_edit.py -scale 1 -offset 0)")
    return scale, tagged_offset


def scene_dn_offset(dn_offset: float | None, dn_scale: float, tagged_offset: float | None) -> float:
    """The DN offset a scene of local band files is read with: the one their GDAL tags declare (``tagged_conversion``),
    else the one asked for (``dn_offset``, --dn-offset) on integer DNs, else 0 (float reflectance takes none)."""
    if tagged_offset is not None:
        return tagged_offset
    return 0.0 if dn_offset is None or dn_scale == 1.0 else float(dn_offset)
