"""`farmcredit fetch` options taking effect, against a loopback STAC API of small synthetic tiles."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
from servers import DATED_FIELD, StacServer, dated_items
from test_fetch_cli import _run


def test_max_cloud_leaves_out_the_scenes_cloudier_than_it(tmp_path: Path) -> None:
    items, files = dated_items(tmp_path / "cogs", ("2024-03-05", "2024-03-15"), clouds=(10.0, 30.0))  # under 50%
    parcels = tmp_path / "fields.gpkg"
    gpd.GeoDataFrame({"parcel_id": ["F1"]}, geometry=[DATED_FIELD], crs="EPSG:32650").to_file(parcels)
    with StacServer(items, files) as server:
        done = _run("fetch", str(parcels), "--stac-url", server.url, "--season", "2024-03-01/2024-03-31", "--out",
                    str(tmp_path / "s2"), "--max-cloud", "20", "--timeout", "5", "--retries", "0")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "s2" / "manifest.json").read_text())
    assert [scene["scene_id"] for scene in manifest["scenes"]] == ["S2A_50SKA_20240305_0_L2A"]


def test_bands_without_scl_and_items_without_an_scl_asset_are_warned_of_at_fetch_time(tmp_path: Path) -> None:
    """Fetched without SCL, a season read every cloud as clear, told only by assess after the download."""
    items, files = dated_items(tmp_path / "cogs", ("2024-03-05", "2024-03-15", "2024-03-25"))
    del items[1]["assets"]["scl"]
    parcels = tmp_path / "fields.gpkg"
    gpd.GeoDataFrame({"parcel_id": ["F1"]}, geometry=[DATED_FIELD], crs="EPSG:32650").to_file(parcels)
    fetch = ("fetch", str(parcels), "--season", "2024-03-01/2024-03-31", "--timeout", "5", "--retries", "0")
    with StacServer(items, files) as server:
        missing = _run(*fetch, "--stac-url", server.url, "--out", str(tmp_path / "all"))
        unasked = _run(*fetch, "--stac-url", server.url, "--out", str(tmp_path / "few"), "--bands", "B04,B08")
    assert missing.returncode == 0, missing.stderr
    assert missing.stderr.count("no scl asset") == 1
    assert "STAC items S2A_50SKA_20240315_0_L2A have no scl asset: their clouds will not be masked" in missing.stderr
    assert "leave out SCL" not in missing.stderr
    assert unasked.returncode == 0, unasked.stderr
    assert "bands B04, B08 leave out SCL: clouds will not be masked (SCL is the cloud mask; add SCL to --bands)" in (
        unasked.stderr)
    assert "SCL is the cloud mask" in _run("fetch", "--help").stdout
