"""The formats farmcredit reads from outside, checked by content before GDAL opens a file.

GDAL picks a file's format from its contents: a GDAL VRT (XML naming other files or URLs) named B04.tif or
parcels.geojson would make it read local files outside the given folders and contact internal URLs. Band files open
only with the raster driver their name says (``open_raster``); vector files are refused unless their first bytes are
of the format their name says (``check_vector_file``), and a zip whose member would unpack past ``ZIP_MAX_BYTES`` (or
``ZIP_RATIO_MAX_BYTES`` at over ``ZIP_MAX_RATIO`` times its packed size) is refused before it is read.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath

import rasterio
from rasterio.errors import RasterioIOError

from farmcredit.errors import InputError

# Real parcel files compress 5-20x; a member of over 50 MB packed over 100x is a bomb (one feature repeated a
# million times: 382 MB from 1.7 MB took 4 GB before failing), and none over 2 GB is read whatever its ratio. A
# Shapefile's .dbf is its fixed-width table, padded with spaces: ArcGIS's 254-character text fields pack it some 150x
# (20,000 parcels with 8 empty optional columns: 61 MB from 0.4 MB), so it is held to the 2 GB alone.
ZIP_MAX_BYTES = 2 * 1024**3
ZIP_RATIO_MAX_BYTES = 50 * 1024**2
ZIP_MAX_RATIO = 100
PADDED_SUFFIXES = (".dbf",)

HEADER_BYTES = 4096
JP2_SUFFIXES = (".jp2", ".j2k")
XML_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL)
XML_ROOT = re.compile(rb"\s*<([\w.:-]+)")
SQLITE = b"SQLite format 3\x00"


def open_raster(path: str | Path) -> rasterio.DatasetReader:
    """``rasterio.open(path)`` with GDAL's JP2OpenJPEG driver for a ``.jp2`` name, else GTiff (a COG is one, local
    or ``/vsicurl/``): no other format, a GDAL VRT above all, is opened whatever the file holds.

    Raises:
        InputError: a local file of another format GDAL reads by content (a VRT, other XML), naming it.
        RasterioIOError: GDAL's, for any other failure (missing, truncated, not a raster), as ``rasterio.open``.
    """
    name = str(path).split("?")[0].lower()
    jp2 = name.endswith(JP2_SUFFIXES)
    try:
        return rasterio.open(path, driver="JP2OpenJPEG" if jp2 else "GTiff")
    except RasterioIOError:
        real = _xml_format(_header(path))
        if real is not None:
            expected = "a JPEG 2000" if jp2 else "a GeoTIFF"
            raise InputError(f"{path} is {real}, not {expected} file: farmcredit reads band files only as GeoTIFF "
                             "(COG) or JPEG 2000, by their content; give the band file itself") from None
        if jp2 or PurePosixPath(name).suffix in (".tif", ".tiff") or Path(path).exists():
            raise
    # A URL need not end in its format's suffix (Copernicus Data Space serves JPEG 2000 bands at .../$value): JPEG
    # 2000 is the other format a band comes in, and no VRT either; a .tif that failed is not tried again.
    return rasterio.open(path, driver="JP2OpenJPEG")


def check_vector_file(path: Path, what: str) -> Path | str:
    """Refuse ``path`` (a ``what``: "parcel file") unless its content is of the format its suffix says: GeoJSON
    (.geojson, .json), CSV (.csv, .tsv), GeoPackage or SQLite (.gpkg, .sqlite), Shapefile (.shp, or a folder of
    them), FlatGeobuf (.fgb), KML (.kml), GML (.gml), a zip of these (.zip, .kmz), checked member by member, each no
    bomb. GeoParquet (read by Arrow, not GDAL) and other suffixes are left to their readers.

    Returns:
        What GDAL is to read: ``path``, or, for a .zip whose Shapefiles (or FlatGeobufs) all lie in one folder inside
        it (macOS Finder's "Compress" and Windows' "Send to > Compressed folder" of a folder of Shapefiles, a readme
        beside it or not), that folder as a /vsizip/ path: GDAL reads a zip of several files as a folder, its
        subfolders unread, and only Shapefiles and FlatGeobufs in it. For a zip of one other vector file (GeoJSON,
        GeoPackage, KML, ...) beside others (macOS's side files, a readme), or a .kmz of one KML, that file: GDAL
        could not read the first (Finder's zip of one GeoJSON), and, reading a .kmz, libkml loses the fields a KML's
        own Schema types (GDAL's KML zipped by hand).

    Raises:
        InputError: naming the file (and member) and what it really is.
    """
    if path.is_dir():
        for member in sorted(path.iterdir()):
            if member.suffix.lower() == ".shp" and member.is_file() and not _side_file(member.name):
                _check_header(f"{what} {path}: {member.name}", member.suffix.lower(), _header(member))
        return path
    suffix = path.suffix.lower()
    if suffix not in (".zip", ".kmz"):
        _check_header(f"{what} {path}", suffix, _header(path))
        return path
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            for info in members:
                _refuse_bomb(info, f"{what} {path}")
            # A zip of one file is that file to GDAL, whatever its name (a side file's too); of several, only known
            # ones are read, and macOS's side files beside them are not.
            read = members if len(members) == 1 else [info for info in members if not _side_file(info.filename)]
            for info in read:
                member_suffix = PurePosixPath(info.filename).suffix.lower()
                if member_suffix in VECTOR_SIGNATURES or len(members) == 1:
                    with archive.open(info) as member:
                        header = member.read(HEADER_BYTES)
                    _check_header(f"{what} {path}: member {info.filename}", member_suffix, header)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{what} {path} is not a zip file that can be read ({exc})") from exc
    # The folders holding what GDAL reads from a folder (Shapefiles, FlatGeobufs), a readme beside them aside.
    folders = {PurePosixPath(info.filename).parent for info in read
               if PurePosixPath(info.filename).suffix.lower() in (".shp", ".fgb")}
    folder = next(iter(folders)) if len(folders) == 1 else None
    if suffix == ".zip" and len(members) > 1 and folder not in (None, PurePosixPath(".")):
        return f"/vsizip/{path.resolve()}/{folder}"
    # One file of a format GDAL reads as a file beside others (macOS's side files, a readme) is read as that file.
    files = [info.filename for info in read if PurePosixPath(info.filename).suffix.lower() in VECTOR_SIGNATURES]
    if not folders and len(files) == 1 and (len(members) > 1 or suffix == ".kmz"):
        return f"/vsizip/{path.resolve()}/{files[0]}"
    if not folders and len(members) > 1 and len(files) != 1:
        held = (f"{len(files)} files of parcels ({', '.join(files[:5])}{', ...' if len(files) > 5 else ''}): give "
                "the one to read, unzipped" if files else
                f"no file of parcels ({', '.join(info.filename for info in members[:5])}"
                f"{', ...' if len(members) > 5 else ''}): zip the parcels' file itself")
        raise InputError(f"{what} {path} holds {held}")
    return path


def _side_file(name: str) -> bool:
    """Whether a folder's or zip's member is macOS's metadata beside a file (``._parcels.shp``, ``__MACOSX/``),
    written on every copy to a USB stick or share and into Finder's zips; GDAL reads past them."""
    return PurePosixPath(name).name.startswith("._") or name.startswith("__MACOSX/")


def _refuse_bomb(info: zipfile.ZipInfo, source: str) -> None:
    ratio = info.file_size / max(info.compress_size, 1)
    padded = PurePosixPath(info.filename).suffix.lower() in PADDED_SUFFIXES
    if info.file_size > ZIP_MAX_BYTES or (info.file_size > ZIP_RATIO_MAX_BYTES and ratio > ZIP_MAX_RATIO
                                          and not padded):
        raise InputError(
            f"{source}: member {info.filename} would unpack to {info.file_size:,} bytes from {info.compress_size:,} "
            f"({ratio:.0f}x): a zip member over {ZIP_MAX_BYTES // 1024**3} GB, or over "
            f"{ZIP_RATIO_MAX_BYTES // 1024**2} MB at over {ZIP_MAX_RATIO}x, is not read (real parcel files pack "
            "5-20x): unzip it and check what it holds"
        )


def _is_json(header: bytes) -> bool:
    return header.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"[", b"\x1e")


def _is_text_table(header: bytes) -> bool:
    return header.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] not in (b"<", b"{", b"[")


def _is_kml(header: bytes) -> bool:
    root = _xml_root(header)
    return root is not None and root.split(":")[-1].lower() == "kml"


def _is_gml(header: bytes) -> bool:
    return _xml_root(header) is not None and b"opengis.net/gml" in header


# Suffix -> (the format's name, whether a file's first bytes are of it).
VECTOR_SIGNATURES = {
    ".geojson": ("GeoJSON", _is_json),
    ".json": ("GeoJSON", _is_json),
    ".csv": ("CSV", _is_text_table),
    ".tsv": ("CSV", _is_text_table),
    ".gpkg": ("GeoPackage", lambda header: header.startswith(SQLITE)),
    ".sqlite": ("SQLite", lambda header: header.startswith(SQLITE)),
    ".shp": ("Shapefile", lambda header: header.startswith(b"\x00\x00\x27\x0a")),
    ".fgb": ("FlatGeobuf", lambda header: header.startswith(b"fgb")),
    ".kml": ("KML", _is_kml),
    ".gml": ("GML", _is_gml),
}


def _check_header(source: str, suffix: str, header: bytes) -> None:
    """Refuse ``header`` (of the file ``source`` names) unless of the format ``suffix`` names (any known one for an
    unknown suffix, as a zip's one member may have)."""
    formats = [VECTOR_SIGNATURES[suffix]] if suffix in VECTOR_SIGNATURES else list(VECTOR_SIGNATURES.values())
    if suffix in (".parquet", ".geoparquet") or any(matches(header) for _, matches in formats):
        return
    real = _xml_format(header) or "of another format"
    expected = f"a {formats[0][0]}" if len(formats) == 1 else "a vector"
    advice = ("copy or write the results folder again" if source.startswith("results file") else
              "save the polygons themselves in one of these")
    raise InputError(f"{source} is {real}, not {expected} file: farmcredit reads polygons as GeoJSON, GeoPackage, "
                     f"Shapefile, GeoParquet, FlatGeobuf, KML, GML or CSV, checked by content; {advice}")


def _header(path: str | Path) -> bytes:
    """The first ``HEADER_BYTES`` of a local file; empty for one that cannot be read (a URL, a /vsi path)."""
    try:
        with open(path, "rb") as file:
            return file.read(HEADER_BYTES)
    except OSError:
        return b""


def _xml_root(header: bytes) -> str | None:
    """The root element's name of XML text (after its prolog and comments), None for other text."""
    text = header.removeprefix(b"\xef\xbb\xbf")
    while (prolog := XML_PROLOG.match(text)) is not None:
        text = text[prolog.end():]
    root = XML_ROOT.match(text)
    return root.group(1).decode("ascii", "replace") if root else None


def _xml_format(header: bytes) -> str | None:
    """What XML ``header`` is, in words ("a GDAL VRT (XML naming other files or URLs)"); None for no XML."""
    root = _xml_root(header)
    if root is None:
        return None
    if root.startswith(("VRTDataset", "OGRVRTDataSource")):
        return "a GDAL VRT (XML naming other files or URLs)"
    return f"XML ({root})"
