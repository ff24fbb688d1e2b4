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
