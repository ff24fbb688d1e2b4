"""Legitimate files the content checks of farmcredit/formats.py must let through (what they refuse is tested beside
the readers: tests/test_parcels.py, tests/imagery)."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from farmcredit.formats import open_raster
from farmcredit.parcels import read_parcels

# The 4 bytes macOS's AppleDouble side files (._name) start with.
APPLE_DOUBLE = b"\x00\x05\x16\x07" + bytes(122)


def _parcels(n: int = 3, **columns: list) -> gpd.GeoDataFrame:
    boxes = [shapely.box(116.3 + 0.001 * i, 39.9, 116.3005 + 0.001 * i, 39.9005) for i in range(n)]
    return gpd.GeoDataFrame({"parcel_id": [f"P{i}" for i in range(n)], **columns}, geometry=boxes, crs="EPSG:4326")


def _google_earth_kml(parcels: gpd.GeoDataFrame) -> str:
    """KML as Google Earth writes it: a prolog, placemarks with their fields as ExtendedData."""
    marks = "".join(
        f"<Placemark><ExtendedData><Data name=\"parcel_id\"><value>{pid}</value></Data></ExtendedData><Polygon>"
        "<outerBoundaryIs><LinearRing><coordinates>"
        + " ".join(f"{x},{y},0" for x, y in geometry.exterior.coords)
        + "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
        for pid, geometry in zip(parcels["parcel_id"], parcels.geometry, strict=True))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
            f"{marks}</Document></kml>")


def test_a_shapefile_folder_copied_from_a_mac_reads_past_its_side_files(tmp_path: Path) -> None:
    """A folder copied by macOS to a USB stick or share holds ._parcels.shp beside parcels.shp: it was refused as 'of
    another format, not a Shapefile', a file the user cannot see."""
    folder = tmp_path / "usb"
    folder.mkdir()
    _parcels().to_file(folder / "parcels.shp")
    for name in ("._parcels.shp", "._parcels.dbf", "._parcels.shx"):
        (folder / name).write_bytes(APPLE_DOUBLE)
    assert list(read_parcels(folder)["parcel_id"]) == ["P0", "P1", "P2"]


@pytest.mark.parametrize("kind", ["shapefile", "kml"])
def test_a_zip_made_by_finder_reads_past_its_macosx_members(tmp_path: Path, kind: str) -> None:
    """Finder's Compress adds __MACOSX/._<name> for every file: a Shapefile zip and a KMZ were refused by them."""
    written = tmp_path / "written"
    written.mkdir()
    names = ["parcels.shp", "parcels.shx", "parcels.dbf", "parcels.prj"] if kind == "shapefile" else ["doc.kml"]
    if kind == "kml":
        (written / "doc.kml").write_text(_google_earth_kml(_parcels()), encoding="utf-8")
    else:
        _parcels().to_file(written / "parcels.shp")
    path = tmp_path / ("parcels.zip" if kind == "shapefile" else "parcels.kmz")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(written / name, name)
            archive.writestr(f"__MACOSX/._{name}", APPLE_DOUBLE)
    assert list(read_parcels(path)["parcel_id"]) == ["P0", "P1", "P2"]


@pytest.mark.parametrize("folder", ["parcels", "exports/2026 season"])
@pytest.mark.parametrize("finder", [True, False])
def test_a_zip_of_a_folder_of_shapefiles_reads_as_its_parcels_and_its_labels(tmp_path: Path, folder: str,
                                                                             finder: bool) -> None:
    """Finder's Compress, or Windows' Send to > Compressed folder, of the folder holding a Shapefile puts it in that
    folder inside the zip: GDAL reads a zip of several files as a folder, not its subfolders, and the file failed
    with GDAL's raw 'not recognized as being in a supported file format' (a readme beside the folder too)."""
    from rasterio.transform import from_origin

    from farmcredit.segmentation.data import polygon_crop_cover

    written = tmp_path / "written"
    written.mkdir()
    _parcels(crop=[1, 0, 1]).to_file(written / "parcels.shp")
    path = tmp_path / "parcels.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("parcels.shp", "parcels.shx", "parcels.dbf", "parcels.prj"):
            archive.write(written / name, f"{folder}/{name}")
            if finder:
                archive.writestr(f"__MACOSX/{folder}/._{name}", APPLE_DOUBLE)
        archive.writestr("readme.txt", "Parcels of the 2026 season, as exported from the cooperative's GIS.")
    assert list(read_parcels(path)["parcel_id"]) == ["P0", "P1", "P2"]
    cover = polygon_crop_cover(path, rasterio.crs.CRS.from_epsg(4326), from_origin(116.3, 39.9005, 0.0001, 0.0001),
                               (5, 30))
    assert np.nanmax(cover) == 1 and np.nanmin(cover) == 0


@pytest.mark.parametrize("member", ["doc.kml", "parcels.kml"])
def test_a_kmz_of_a_kml_gdal_wrote_reads_its_fields(tmp_path: Path, member: str) -> None:
    """GDAL's KML types its fields in a Schema that each placemark's SchemaData names: zipped by hand as a .kmz,
    libkml read the outlines without them, and the file was refused for having no parcel_id."""
    _parcels(declared_crop=["maize", "wheat", "rice"]).to_file(tmp_path / "parcels.kml", driver="KML")
    path = tmp_path / "parcels.kmz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(tmp_path / "parcels.kml", member)
    parcels = read_parcels(path)
    assert list(parcels["parcel_id"]) == ["P0", "P1", "P2"]
    assert list(parcels["declared_crop"]) == ["maize", "wheat", "rice"]


def test_a_shapefile_zip_whose_table_is_padded_is_no_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ArcGIS's 254-character text fields pad a .dbf with spaces, packing it some 150x: a 2.5 MB zip of 20,000 parcels
    was refused as a zip bomb (limits lowered here so the test writes little); a GeoJSON packed so is still one."""
    monkeypatch.setattr("farmcredit.formats.ZIP_RATIO_MAX_BYTES", 20_000)
    n = 300
    remarks = ["x" * 250] + [""] * (n - 1)  # one long remark: the column is 250 wide, every other row spaces
    written = tmp_path / "written"
    written.mkdir()
    _parcels(n, remarks=remarks, officer=remarks[::-1]).to_file(written / "parcels.shp")
    path = tmp_path / "parcels.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("parcels.shp", "parcels.shx", "parcels.dbf", "parcels.prj"):
            archive.write(written / name, name)
        table = archive.getinfo("parcels.dbf")
    assert table.file_size > 20_000 and table.file_size / table.compress_size > 100
    assert len(read_parcels(path)) == n


def test_a_band_at_a_url_without_a_suffix_opens_as_jpeg_2000(tmp_path: Path) -> None:
    """Copernicus Data Space serves JPEG 2000 bands at .../$value: opened as GTiff only, such a band failed."""
    values = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    with MemoryFile(filename="$value") as memory:  # a URL's last part, no suffix
        with memory.open(driver="JP2OpenJPEG", width=64, height=64, count=1, dtype="uint16", crs="EPSG:32650",
                         transform=from_origin(500_000, 3_650_000, 10, 10), QUALITY=100, REVERSIBLE="YES") as dst:
            dst.write(values, 1)
        with rasterio.open(memory.name) as written:
            assert written.driver == "JP2OpenJPEG"
        with open_raster(memory.name) as band:
            assert band.driver == "JP2OpenJPEG" and (band.read(1) == values).all()


def test_a_zip_of_one_side_file_is_checked_as_the_file_gdal_reads_it_as(tmp_path: Path) -> None:
    """Side files were passed over, so a zip holding only __MACOSX/._parcels.geojson, a GDAL VRT, went unchecked while
    GDAL opened it as that one file and read the parcels it named outside the zip."""
    from farmcredit.errors import InputError

    elsewhere = tmp_path / "elsewhere.geojson"
    _parcels().to_file(elsewhere)
    path = tmp_path / "parcels.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__MACOSX/._parcels.geojson", f"<OGRVRTDataSource><OGRVRTLayer name='p'><SrcDataSource>"
                                                        f"{elsewhere}</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>")
    with pytest.raises(InputError, match=r"member __MACOSX/._parcels.geojson is a GDAL VRT"):
        read_parcels(path)


@pytest.mark.parametrize(("member", "beside"), [("parcels.geojson", "__MACOSX/._parcels.geojson"),
                                                ("export/parcels.gpkg", "export/readme.txt"),
                                                ("doc.kml", "__MACOSX/._doc.kml")])
def test_a_zip_of_one_vector_file_beside_side_files_or_a_readme_reads_as_that_file(tmp_path: Path, member: str,
                                                                                  beside: str) -> None:
    """GDAL opens a zip of one file as that file, of several as a folder: Finder's zip of a GeoJSON (with its
    __MACOSX/._parcels.geojson) failed with GDAL's 'not recognized as being in a supported file format', and was then
    refused, saying to give the GeoJSON itself; a zip of a folder of a GeoPackage and a readme, or a .zip of a KML
    beside side files, failed so too. Each reads as its one vector file."""
    written = tmp_path / PurePosixPath(member).name
    if member.endswith(".kml"):
        written.write_text(_google_earth_kml(_parcels()), encoding="utf-8")
    else:
        _parcels().to_file(written)
    path = tmp_path / "parcels.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(written, member)
        archive.writestr(beside, APPLE_DOUBLE if "MACOSX" in beside else "Parcels of the 2026 season.")
    assert sorted(read_parcels(path)["parcel_id"]) == ["P0", "P1", "P2"]


def test_a_finder_zip_of_a_flatgeobuf_reads(tmp_path: Path) -> None:
    """GDAL reads a folder of FlatGeobufs, and a zip of one beside macOS's side files so (refused, it read before)."""
    written = tmp_path / "parcels.fgb"
    _parcels().to_file(written, driver="FlatGeobuf")
    path = tmp_path / "parcels.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(written, "parcels.fgb")
        archive.writestr("__MACOSX/._parcels.fgb", APPLE_DOUBLE)
    assert sorted(read_parcels(path)["parcel_id"]) == ["P0", "P1", "P2"]


@pytest.mark.parametrize(("members", "said"), [
    ({"p.geojson": "geojson", "p.csv": "parcel_id,WKT\n"}, r"holds 2 files of parcels \(p.geojson, p.csv\): give the "
                                                          "one to read, unzipped"),
    ({"__MACOSX/._a": APPLE_DOUBLE, "__MACOSX/._b": APPLE_DOUBLE}, r"holds no file of parcels \(__MACOSX/._a, "
                                                                   r"__MACOSX/._b\): zip the parcels' file itself"),
])
def test_a_zip_of_several_files_of_parcels_or_of_none_is_refused_saying_so(tmp_path: Path, members: dict,
                                                                          said: str) -> None:
    """GDAL reads a zip of several files as a folder of Shapefiles: one of a GeoJSON and a CSV, or of macOS's side
    files alone, failed with GDAL's raw 'not recognized as being in a supported file format'."""
    from farmcredit.errors import InputError

    _parcels().to_file(tmp_path / "p.geojson")
    path = tmp_path / "parcels.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            if content == "geojson":
                archive.write(tmp_path / "p.geojson", name)
            else:
                archive.writestr(name, content)
    with pytest.raises(InputError, match=f"parcel file {path} {said}"):
        read_parcels(path)


def test_a_zip_of_two_shapefiles_side_by_side_reads_the_layer_asked(tmp_path: Path) -> None:
    """Two Shapefiles at a zip's root are one GDAL source of two layers: the check of several files of parcels refused
    them (a diff review), where --parcels-layer had read one."""
    _parcels().to_file(tmp_path / "p.shp")
    _parcels(2).to_file(tmp_path / "q.shp")
    path = tmp_path / "parcels.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for stem in ("p", "q"):
            for ext in (".shp", ".shx", ".dbf", ".prj"):
                archive.write(tmp_path / f"{stem}{ext}", f"{stem}{ext}")
    assert list(read_parcels(path, layer="q")["parcel_id"]) == ["P0", "P1"]
