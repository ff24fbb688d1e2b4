"""The audit record's file fingerprints: the same bytes, the same hash; any input that decides, in it."""

import hashlib
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from farmcredit.audit import file_fingerprint


def test_a_shapefiles_fingerprint_covers_its_attributes_and_crs(tmp_path: Path) -> None:
    """Declarations live in the .dbf and the CRS in the .prj: changing either changes the hash."""
    frame = gpd.GeoDataFrame({"parcel_id": ["P1"], "area_ha": [0.26]}, geometry=[box(0, 0, 50, 50)],
                             crs="EPSG:32650")
    frame.to_file(tmp_path / "parcels.shp")
    before = file_fingerprint(tmp_path / "parcels.shp")
    assert set(before["sidecars"]) >= {"parcels.dbf", "parcels.shx", "parcels.prj"}
    assert file_fingerprint(tmp_path / "parcels.shp") == before
    frame.assign(area_ha=[5.0]).to_file(tmp_path / "parcels.shp")
    declared = file_fingerprint(tmp_path / "parcels.shp")
    assert declared["sha256"] != before["sha256"] and declared["bytes"] == before["bytes"]
    frame.set_crs("EPSG:32649", allow_override=True).to_file(tmp_path / "parcels.shp")
    assert file_fingerprint(tmp_path / "parcels.shp")["sha256"] not in (before["sha256"], declared["sha256"])


@pytest.mark.parametrize("name", ["parcels.gpkg", "parcels.shp.zip"])
def test_other_files_hash_alone(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"some bytes")
    (tmp_path / "parcels.dbf").write_bytes(b"not its sidecar")
    expected = {"path": str(path), "bytes": 10, "sha256": hashlib.sha256(b"some bytes").hexdigest()}
    assert file_fingerprint(path) == expected
