"""`farmcredit fetch` options taking effect, against a loopback STAC API of small synthetic tiles."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import shapely
from servers import StacServer, tile_item
from test_fetch_cli import _run


def test_max_cloud_leaves_out_the_scenes_cloudier_than_it(tmp_path: Path) -> None:
    items, files = [], {}
    for day, cloud in (("05", 10.0), ("15", 30.0)):  # both under the default 50%
        item, item_files = tile_item(tmp_path / "cogs", f"S2A_50SKA_202403{day}_0_L2A", crs="EPSG:32650",
                                     origin=(500_000.0, 4_000_000.0), acquired=f"2024-03-{day}T03:20:00Z", cloud=cloud)
        items.append(item)
        files |= item_files
    parcels = tmp_path / "fields.gpkg"
    gpd.GeoDataFrame({"parcel_id": ["F1"]}, geometry=[shapely.box(500_020, 3_999_900, 500_100, 3_999_960)],
                     crs="EPSG:32650").to_file(parcels)
    with StacServer(items, files) as server:
        done = _run("fetch", str(parcels), "--stac-url", server.url, "--season", "2024-03-01/2024-03-31", "--out",
                    str(tmp_path / "s2"), "--max-cloud", "20", "--timeout", "5", "--retries", "0")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "s2" / "manifest.json").read_text())
    assert [scene["scene_id"] for scene in manifest["scenes"]] == ["S2A_50SKA_20240305_0_L2A"]
