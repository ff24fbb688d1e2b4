"""End-to-end checks of a small simulated season: files, STAC items, grids, radiometry, clouds."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio import features
from shapely.geometry import box, shape

from farmcredit.errors import ImageryError, InputError
from farmcredit.imagery import open_imagery
from farmcredit.locking import SIMULATING
from farmcredit.simulate import SimulationResult, SimulationSpec, simulate_season
from farmcredit.simulate.phenology import peak_day
from farmcredit.simulate.season import OUTPUT_FILES
from farmcredit.simulate.spectra import BANDS

SPEC = SimulationSpec(size_px=96, n_dates=12)
SEED = 3
ASSET_KEYS = {
    "coastal",
    "blue",
    "green",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir",
    "nir08",
    "nir09",
    "swir16",
    "swir22",
    "scl",
}
CLEAR_SCL = (4, 5, 6)


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate_season(tmp_path_factory.mktemp("season") / "out", seed=SEED, spec=SPEC)


@pytest.fixture(scope="module")
def scenes(season: SimulationResult) -> list[dict]:
    """Per date: the item, and reflectance / SCL arrays read back from the files."""
    out = []
    for item_path in sorted(season.imagery_dir.glob("*/*.json")):
        item = json.loads(item_path.read_text())
        arrays = {}
        for name in ("B04", "B08", "SCL"):
            with rasterio.open(item_path.parent / f"{name}.tif") as dataset:
                arrays[name] = dataset.read(1)
        red, nir = ((arrays[b].astype(float) - 1000) / 10000 for b in ("B04", "B08"))
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - red) / (nir + red)
        scl_10m = arrays["SCL"].repeat(2, axis=0).repeat(2, axis=1)[: red.shape[0], : red.shape[1]]
        acquired = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
        out.append(
            {
                "item": item,
                "red": red,
                "ndvi": ndvi,
                "scl": arrays["SCL"],
                "scl_10m": scl_10m,
                "day": acquired.timetuple().tm_yday,
            }
        )
    return out


@pytest.fixture(scope="module")
def parcels(season: SimulationResult) -> gpd.GeoDataFrame:
    frame = gpd.read_file(season.parcels_path).to_crs(season.crs)
    return frame.merge(pd.read_csv(season.truth_path), on=["parcel_id", "borrower_id"])


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _interior(geometry, transform, shape, inset_m: float = 10.0) -> np.ndarray:
    """Pixels whose centres lie at least inset_m inside a polygon (so the pixel is pure)."""
    inner = geometry.buffer(-inset_m)
    if inner.is_empty:
        return np.zeros(shape, bool)
    return features.geometry_mask([inner], shape, transform, invert=True)


def test_same_seed_writes_identical_bytes(season: SimulationResult, tmp_path: Path) -> None:
    again = simulate_season(tmp_path / "again", seed=SEED, spec=SPEC)
    assert _digests(again.root) == _digests(season.root)


def test_rerun_into_same_folder_replaces_previous_scenes(tmp_path: Path) -> None:
    spec = SimulationSpec(size_px=48, n_dates=3, n_swath_edge_dates=0)
    simulate_season(tmp_path, seed=1, spec=spec)
    result = simulate_season(tmp_path, seed=1, spec=SimulationSpec(size_px=48, n_dates=4, n_swath_edge_dates=0))
    assert len(list(result.imagery_dir.iterdir())) == 4


def test_an_interrupted_simulation_is_refused_by_readers_and_replaced_by_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C once two dates and a third's bands (not yet its item) of seed 3 are written over seed 1: no parcels or
    truth of seed 1 are left beside seed 3's imagery, which reads as unfinished; the next run replaces it all."""
    import farmcredit.simulate.season as season_module

    spec = SimulationSpec(size_px=48, n_dates=4, n_swath_edge_dates=0)
    out = simulate_season(tmp_path / "out", seed=1, spec=spec).root
    items: list[str] = []

    def interrupted(**item: object) -> dict:
        if len(items) == 2:
            raise KeyboardInterrupt
        items.append(str(item["identifier"]))
        return build_item(**item)

    build_item = season_module.build_item
    monkeypatch.setattr(season_module, "build_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        simulate_season(out, seed=3, spec=spec)
    monkeypatch.undo()
    assert not any((out / name).exists() for name in OUTPUT_FILES)
    assert len(list((out / "imagery").glob("*/*.json"))) == 2 and len(list((out / "imagery").glob("*/B04.tif"))) == 3
    with pytest.raises(ImageryError, match=f"did not finish .{SIMULATING}"):
        open_imagery(out / "imagery")
    simulate_season(out, seed=3, spec=spec)
    assert _digests(out) == _digests(simulate_season(tmp_path / "fresh", seed=3, spec=spec).root)


@pytest.mark.skipif(sys.platform == "win32", reason="a limit on the size of files a process writes is POSIX's")
def test_a_full_disk_stops_simulate_naming_the_file_and_the_unfinished_folder(tmp_path: Path) -> None:
    """Files over 2 kB fail as on a full disk (EFBIG, not ENOSPC: a real limit, no root or small file system)."""
    import resource

    def small_files_only() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    done = subprocess.run([sys.executable, "-m", "farmcredit", "simulate", "--out", str(tmp_path), "--size", "48"],
                          capture_output=True, text=True, timeout=600, preexec_fn=small_files_only)
    said = done.stderr.replace("\n", "")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in said and f"simulating into {tmp_path} stopped: {tmp_path / 'imagery'}" in said
    assert ".tif could not be written (File too large)" in said
    assert f"the folder holds an unfinished season ({tmp_path / 'imagery' / SIMULATING})" in said
    assert (tmp_path / "imagery" / SIMULATING).is_file()


def test_east_of_157_5_degrees_scenes_are_dated_in_the_season(tmp_path: Path) -> None:
    """At 170 E the 10:30 local pass is 23:10 UTC the day before: the first date would fall before the season."""
    spec = SimulationSpec(size_px=48, n_dates=3, n_swath_edge_dates=0, centre_lon=170.0)
    result = simulate_season(tmp_path, seed=1, spec=spec)
    for folder in sorted(result.imagery_dir.iterdir()):
        properties = json.loads((folder / f"{folder.name}.json").read_text())["properties"]
        acquired = datetime.fromisoformat(properties["datetime"].replace("Z", "+00:00"))
        assert acquired.date() in result.dates and folder.name[10:18] == f"{acquired:%Y%m%d}"


def test_refuses_to_delete_foreign_folders(tmp_path: Path) -> None:
    (tmp_path / "imagery" / "my_data").mkdir(parents=True)
    with pytest.raises(InputError, match="my_data"):
        simulate_season(tmp_path, spec=SimulationSpec(size_px=48, n_dates=3))


@pytest.mark.parametrize("name", ["parcels.geojson", "truth.csv", "landcover.tif"])
def test_refuses_to_overwrite_a_users_files_but_not_its_own_or_a_hidden_file(tmp_path: Path, name: str) -> None:
    spec = SimulationSpec(size_px=48, n_dates=3, n_swath_edge_dates=0)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / name).write_text('{"my": "portfolio"}')
    with pytest.raises(InputError, match=f"{name} was not written by the simulator"):
        simulate_season(mine, seed=1, spec=spec)
    assert (mine / name).read_text() == '{"my": "portfolio"}'
    simulate_season(tmp_path / "own", seed=1, spec=spec)
    (tmp_path / "own" / "imagery" / ".DS_Store").write_text("finder")
    assert simulate_season(tmp_path / "own", seed=2, spec=spec).n_parcels > 0
    with pytest.raises(InputError, match="seed -1"):
        simulate_season(tmp_path / "negative", seed=-1, spec=spec)


def test_each_date_is_an_earth_search_folder(season: SimulationResult) -> None:
    folders = sorted(season.imagery_dir.iterdir())
    assert len(folders) == SPEC.n_dates
    for folder in folders:
        assert folder.name.startswith(("S2A_50SKB_", "S2B_50SKB_")) and folder.name.endswith("_0_L2A")
        names = {path.name for path in folder.iterdir()}
        assert names == {f"{band.name}.tif" for band in BANDS} | {"SCL.tif", f"{folder.name}.json"}
    assert sorted(f.name[10:18] for f in folders) == [d.strftime("%Y%m%d") for d in season.dates]
    assert season.crs == "EPSG:32650"


def test_stac_items_are_shaped_like_earth_search_v1(scenes: list[dict], season: SimulationResult) -> None:
    for scene in scenes:
        item = scene["item"]
        folder = season.imagery_dir / item["id"]
        assert item["type"] == "Feature" and item["collection"] == "sentinel-2-l2a"
        properties = item["properties"]
        assert properties["proj:epsg"] == 32650
        assert properties["s2:processing_baseline"] == "05.10"
        assert properties["earthsearch:boa_offset_applied"] is False
        assert properties["s2:product_uri"].endswith(".SAFE") and "_N0510_" in properties["s2:product_uri"]
        assert datetime.fromisoformat(properties["datetime"].replace("Z", "+00:00")).date() in season.dates
        assert set(item["assets"]) == ASSET_KEYS
        for key, asset in item["assets"].items():
            assert asset["href"].startswith("./")
            raster_band = asset["raster:bands"][0]
            assert raster_band["nodata"] == 0
            with rasterio.open(folder / asset["href"]) as dataset:
                assert list(dataset.shape) == asset["proj:shape"]
                assert list(dataset.transform)[:6] == asset["proj:transform"]
                assert raster_band["spatial_resolution"] == dataset.res[0]
            if key != "scl":
                assert raster_band["scale"] == 0.0001 and raster_band["offset"] == -0.1
                assert asset["eo:bands"][0]["name"] == key
        footprint = shape(item["geometry"])
        assert footprint.is_valid and footprint.exterior.is_ccw
        west, south, east, north = item["bbox"]
        assert 113.9 < west < east < 114.1 and 32.9 < south < north < 33.1
        assert footprint.within(box(*item["bbox"]).buffer(1e-9))
        # eo:cloud_cover is the SCL cloud share (medium, high, cirrus) of the valid pixels.
        scl = scene["scl"]
        share = 100 * np.isin(scl, (8, 9, 10)).sum() / (scl > 0).sum()
        assert properties["eo:cloud_cover"] == pytest.approx(share, abs=1e-4)


def test_cogs_are_deflate_uint16_with_nodata_zero(season: SimulationResult) -> None:
    folder = next(season.imagery_dir.iterdir())
    for path in folder.glob("*.tif"):
        with rasterio.open(path) as dataset:
            assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert dataset.compression.name == "deflate"
            assert dataset.nodata == 0 and dataset.crs.to_epsg() == 32650
            assert dataset.dtypes[0] == ("uint8" if path.stem == "SCL" else "uint16")


def test_10_20_60_m_grids_nest_like_a_tile(season: SimulationResult) -> None:
    folder = next(season.imagery_dir.iterdir())
    grids = {}
    for band in ("B04", "B05", "B01", "SCL"):
        with rasterio.open(folder / f"{band}.tif") as dataset:
            grids[band] = (dataset.transform, dataset.shape)
    origin = (grids["B04"][0].c, grids["B04"][0].f)
    assert origin[0] % 60 == 0 and origin[1] % 60 == 0
    for band, resolution in (("B04", 10), ("B05", 20), ("B01", 60), ("SCL", 20)):
        transform, raster_shape = grids[band]
        assert (transform.a, -transform.e) == (resolution, resolution)
        assert (transform.c, transform.f) == origin
        assert raster_shape[0] * resolution >= SPEC.size_px * 10 > (raster_shape[0] - 1) * resolution


def test_bare_soil_reads_back_with_the_boa_offset(scenes: list[dict], parcels: gpd.GeoDataFrame) -> None:
    # Maize and soybean fields are bare, tilled soil until June.
    spring = [s for s in scenes if s["day"] < 120]
    summer_crops = parcels[parcels.true_crop.isin(["maize", "soybean"]) & ~parcels.partly_cultivated & parcels.is_valid]
    transform = _red_transform(scenes)
    readings = []
    for geometry in summer_crops.geometry:
        inside = _interior(geometry, transform, spring[0]["red"].shape)
        for scene in spring:
            pixels = inside & np.isin(scene["scl_10m"], CLEAR_SCL)
            if pixels.sum() >= 2:
                readings.append((np.median(scene["red"][pixels]), np.median(scene["ndvi"][pixels])))
    red, ndvi = np.array(readings).T
    assert len(readings) >= 5
    assert np.all((red > 0.14) & (red < 0.25))
    assert np.all((ndvi > 0.1) & (ndvi < 0.23))


def test_healthy_crops_peak_above_ndvi_0_7(scenes: list[dict], parcels: gpd.GeoDataFrame) -> None:
    healthy = parcels[
        (parcels.true_crop != "fallow") & (parcels.health_factor >= 0.9) & ~parcels.partly_cultivated & parcels.is_valid
    ]
    transform = _red_transform(scenes)
    peaks = []
    for crop, geometry in zip(healthy.true_crop, healthy.geometry):
        inside = _interior(geometry, transform, scenes[0]["red"].shape)
        near_peak = [s for s in scenes if abs(s["day"] - peak_day(crop)) <= 12]
        clear = [s for s in near_peak if inside.sum() >= 3 and np.isin(s["scl_10m"][inside], CLEAR_SCL).all()]
        if clear:
            peaks.append(max(np.median(s["ndvi"][inside]) for s in clear))
    assert len(peaks) >= 3
    assert min(peaks) > 0.7


def test_water_has_negative_ndvi(scenes: list[dict], season: SimulationResult) -> None:
    with rasterio.open(season.landcover_path) as dataset:
        water = dataset.read(1) == 8
    # Pixels whose eight neighbours are water too: pure water, not a mixed shore pixel.
    core = water.copy()
    for shift in ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)):
        core &= np.roll(water, shift, axis=(0, 1))
    assert core.sum() > 10
    for scene in scenes:
        clear = core & (scene["scl_10m"] == 6)
        if clear.any():
            # A few core pixels are bridges: roads crossing the river.
            assert np.percentile(scene["ndvi"][clear], 95) < 0


def test_an_overcast_date_is_all_cloud_and_several_are_clear(scenes: list[dict]) -> None:
    overcast = [s for s in scenes if s["item"]["properties"]["eo:cloud_cover"] == 100]
    assert len(overcast) == SPEC.n_overcast_dates
    assert np.isin(overcast[0]["scl"], (8, 9)).all()
    clear = [s for s in scenes if s["item"]["properties"]["eo:cloud_cover"] == 0]
    assert len(clear) >= 3
    partly = [s for s in scenes if 0 < s["item"]["properties"]["eo:cloud_cover"] < 100]
    assert any((s["scl"] == 3).any() for s in partly), "cloudy dates should show cloud shadows"


def test_swath_edge_date_has_nodata_wedge(scenes: list[dict]) -> None:
    edged = [s for s in scenes if s["item"]["properties"]["s2:nodata_pixel_percentage"] > 0]
    assert len(edged) == SPEC.n_swath_edge_dates
    scl = edged[0]["scl"]
    assert 0 < (scl == 0).mean() < 0.5
    footprint = shape(edged[0]["item"]["geometry"])
    assert len(footprint.exterior.coords) >= 4


def _red_transform(scenes: list[dict]) -> Affine:
    return Affine(*scenes[0]["item"]["assets"]["red"]["proj:transform"])


def test_a_small_scene_has_no_blank_date_and_an_out_in_the_way_is_an_input_error(tmp_path: Path) -> None:
    """At 48 px a cirrus field correlated far beyond the scene divided by a spread of 0: a date of all no-data."""
    for seed in (0, 2, 5):
        result = simulate_season(tmp_path / f"s{seed}", seed=seed, spec=SimulationSpec(size_px=48))
        for band in sorted(result.imagery_dir.glob("*/B04.tif")):
            with rasterio.open(band) as source:
                assert source.read(1).any(), band
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError, match="afile cannot be written"):
        simulate_season(tmp_path / "afile", spec=SimulationSpec(size_px=48))
