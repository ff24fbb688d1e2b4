"""Many tiles, many zones: one season grid, one scene per date, each pixel from one product."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window
from shapely import box

from farmcredit.audit import parcel_imagery
from farmcredit.config import load_config
from farmcredit.imagery import Imagery, Scene, open_imagery, read_window
from farmcredit.imagery.mosaic import Grid, season_grid
from farmcredit.outputs.rasters import TRUE_COLOUR_BANDS, RasterGrid, _write_true_colour
from farmcredit.pipeline import measure_parcels
from farmcredit.segmentation import load_cropland_model

A_ID, B_ID = "S2A_50SKA_20240315_0_L2A", "S2A_50SLA_20240315_0_L2A"
MARCH_15 = datetime(2024, 3, 15, 3, 20, 11)


def b04(folder: Path) -> np.ndarray:
    """A scene folder's B04 DNs as float, NaN where no data."""
    with rasterio.open(folder / "B04.tif") as dataset:
        values = dataset.read(1).astype(np.float64)
    return np.where(values == 0, np.nan, values)


@pytest.fixture
def two_tiles(tmp_path: Path, write_scene: Callable[..., Path]) -> tuple[Path, Path, Path]:
    """Tile B overlaps tile A by 60 m (six 10 m columns); the same date on both; tile A also on 2024-03-20.

    B is the less cloudy product, so it comes first where both see the ground clear.
    """
    root = tmp_path / "season"
    a = write_scene(root / A_ID, acquired=MARCH_15, cloud_cover=30.0)
    b = write_scene(root / B_ID, acquired=MARCH_15, cloud_cover=20.0, origin=(500_060.0, 4_000_000.0), shift=500)
    write_scene(root / "S2A_50SKA_20240320_0_L2A", acquired=datetime(2024, 3, 20), shift=7)
    return root, a, b


def test_two_tiles_of_one_zone_give_their_union_grid_and_one_scene_per_date(two_tiles) -> None:
    root, _, _ = two_tiles

    imagery = open_imagery(root)

    assert imagery.shape == (12, 18) and (imagery.transform.c, imagery.transform.f) == (500_000.0, 4_000_000.0)
    assert [s.scene_id for s in imagery.scenes] == [f"{B_ID}+{A_ID}", "S2A_50SKA_20240320_0_L2A"]
    mosaic = imagery.scenes[0]
    assert [p.scene_id for p in mosaic.parts] == [B_ID, A_ID] and mosaic.cloud_cover == 25.0
    assert read_window(imagery, Window(0, 0, 18, 12)).dates == (MARCH_15.date(), datetime(2024, 3, 20).date())


def test_each_pixel_of_a_date_comes_from_one_tile_clear_first(two_tiles) -> None:
    root, a, b = two_tiles
    imagery = open_imagery(root)

    cube = read_window(imagery, Window(0, 0, 18, 12), bands=("B04",))

    red = cube.reflectance[0, 0] / 1e-4 + 1000  # both tiles: baseline 05.10, offset -1000 DN
    a_dns, b_dns = b04(a), b04(b)
    np.testing.assert_allclose(red[:, 12:], b_dns[:, 6:], rtol=1e-6)  # B only
    both_clear = b_dns[4:, :6]  # below B's north-west cloud and shadow
    np.testing.assert_allclose(red[4:, 6:12][np.isfinite(both_clear)], both_clear[np.isfinite(both_clear)],
                               rtol=1e-6)  # overlap, both clear: the first part, B
    # B's north-west corner is cloud (SCL 9, 8) and shadow (3); A sees it clear there and fills in.
    np.testing.assert_allclose(red[0:4, 6:8], a_dns[0:4, 6:8], rtol=1e-6)
    assert cube.clear[0, 0:4, 6:8].all()
    # B has no data at its (11, 0); A has: A's value, not a hole.
    assert red[11, 6] == pytest.approx(a_dns[11, 6])
    np.testing.assert_allclose(red[:, :6][np.isfinite(a_dns[:, :6])], a_dns[:, :6][np.isfinite(a_dns[:, :6])],
                               rtol=1e-6)  # A only
    assert np.isnan(red[11, 0])  # A's own no-data pixel, seen by no other tile
    # The other date is tile A alone: no data east of it.
    assert np.isnan(cube.reflectance[1, 0, :, 12:]).all() and not cube.clear[1, :, 12:].any()


def test_a_neighbouring_utm_zone_is_read_through_its_own_crs(tmp_path: Path, write_scene) -> None:
    # 36 N, 120 E: zone 50 west of the meridian, zone 51 east; a 120 m tile on each side.
    to_50 = Transformer.from_crs(4326, 32650, always_xy=True)
    to_51 = Transformer.from_crs(4326, 32651, always_xy=True)
    x50, y50 = to_50.transform(119.9990, 36.0)
    x51, y51 = to_51.transform(120.0005, 36.0)
    a_origin = (x50 // 10 * 10, y50 // 10 * 10)
    b_origin = (x51 // 10 * 10, y51 // 10 * 10)
    root = tmp_path / "season"
    write_scene(root / "S2A_50SQE_20240315_0_L2A", acquired=MARCH_15, origin=a_origin)
    b = write_scene(root / "S2A_51STV_20240315_0_L2A", acquired=MARCH_15, origin=b_origin, crs="EPSG:32651",
                    shift=500)
    write_scene(root / "S2A_51STV_20240320_0_L2A", acquired=datetime(2024, 3, 20), origin=b_origin,
                crs="EPSG:32651", shift=900)
    # Tile B seen on more dates than A: its CRS holds the season, so most of it keeps its own pixels.
    assert open_imagery(root).crs.to_epsg() == 32651
    write_scene(root / "S2A_50SQE_20240325_0_L2A", acquired=datetime(2024, 3, 25), origin=a_origin)

    imagery = open_imagery(root)

    # Equal areas over the season in each zone: the smaller EPSG code is the season's CRS, on tile A's lattice.
    assert imagery.crs.to_epsg() == 32650 and (imagery.transform.c - a_origin[0]) % 10 == 0
    assert len(imagery.scenes) == 3 and len(imagery.scenes[0].parts) == 2
    cube = read_window(imagery, Window(0, 0, imagery.shape[1], imagery.shape[0]), bands=("B04",))
    # Every base pixel whose centre lies in tile B (and not A) holds the B pixel containing that centre.
    to_b = Transformer.from_crs(32650, 32651, always_xy=True)
    rows, cols = np.indices(imagery.shape)
    xs, ys = imagery.transform @ (cols + 0.5, rows + 0.5)
    bx, by = to_b.transform(xs, ys)
    b_col = np.floor((bx - b_origin[0]) / 10).astype(int)
    b_row = np.floor((b_origin[1] - by) / 10).astype(int)
    in_a = (xs >= a_origin[0]) & (xs < a_origin[0] + 120) & (ys <= a_origin[1]) & (ys > a_origin[1] - 120)
    in_b = (b_col >= 0) & (b_col < 12) & (b_row >= 0) & (b_row < 12)
    only_b = in_b & ~in_a
    assert only_b.sum() > 50 and not (in_a & in_b).any()
    b_dns = b04(b)
    expected = b_dns[b_row[only_b], b_col[only_b]]
    got = cube.reflectance[0, 0][only_b] / 1e-4 + 1000
    np.testing.assert_allclose(got[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-6)
    # The date only zone 51 saw is a plain scene in another CRS: read the same way.
    later = cube.reflectance[1, 0][only_b] / 1e-4 + 1000 - 400  # shift 900 instead of 500
    np.testing.assert_allclose(later[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-6)
    assert np.isnan(cube.reflectance[1, 0][in_a]).all()


def _true_colour_is_what_the_statistics_read(imagery: Imagery, scene: Scene, path: Path) -> np.ndarray:
    """Write ``scene``'s true colour over the whole grid; check it is the reflectance ``read_window`` gives."""
    window = Window(0, 0, imagery.shape[1], imagery.shape[0])
    grid = RasterGrid(window, imagery.transform, imagery.crs)
    assert _write_true_colour(path, grid, imagery, [scene]) == scene
    with rasterio.open(path) as src:
        rgb = src.read()
    step = imagery.scenes.index(scene)
    expected = read_window(imagery, window, TRUE_COLOUR_BANDS).reflectance[step] * 10_000
    np.testing.assert_array_equal(rgb, np.where(np.isfinite(expected), np.round(np.nan_to_num(expected)), 0))
    return rgb


def test_the_true_colour_of_a_date_of_two_tiles_is_their_mosaic(two_tiles, tmp_path: Path) -> None:
    root, _, _ = two_tiles
    imagery = open_imagery(root)
    rgb = _true_colour_is_what_the_statistics_read(imagery, imagery.scenes[0], tmp_path / "rgb.tif")
    assert rgb[:, :, 12:].all()  # tile B's columns: not the first part's no data


def test_the_true_colour_of_a_scene_in_another_utm_zone_is_read_through_its_crs(tmp_path: Path, write_scene) -> None:
    to_50, to_51 = (Transformer.from_crs(4326, epsg, always_xy=True) for epsg in (32650, 32651))
    x50, y50 = to_50.transform(119.9990, 36.0)
    x51, y51 = to_51.transform(120.0005, 36.0)
    root = tmp_path / "season"
    write_scene(root / "S2A_50SQE_20240315_0_L2A", acquired=MARCH_15, origin=(x50 // 10 * 10, y50 // 10 * 10))
    write_scene(root / "S2A_51STV_20240320_0_L2A", acquired=datetime(2024, 3, 20),
                origin=(x51 // 10 * 10, y51 // 10 * 10), crs="EPSG:32651", shift=900)
    imagery = open_imagery(root)
    assert imagery.crs.to_epsg() == 32650
    rgb = _true_colour_is_what_the_statistics_read(imagery, imagery.scenes[1], tmp_path / "rgb.tif")
    assert (rgb > 0).all(axis=0).sum() > 50  # the zone-51 tile's pixels on the zone-50 grid


def _grids(*specs: tuple[str, float, float, int]) -> tuple[list[Scene], list[Grid]]:
    """Scenes (unread) and their grids from (crs, pixel size m, origin x, pixels a side)."""
    scenes = [Scene(f"s{k}", datetime(2024, 3, 1 + k), {}, 0.0, 1e-4, None) for k in range(len(specs))]
    grids = [Grid(CRS.from_string(crs), from_origin(x, 4_000_000.0, size, size), (side, side))
             for crs, size, x, side in specs]
    return scenes, grids


def test_the_season_grid_is_of_the_finest_pixels_its_crs_holds_most_of() -> None:
    # Three 20 m products in zone 50 cover more ground than two 10 m scenes in zone 51, but hold fewer pixels.
    scenes, grids = _grids(*[("EPSG:32650", 20.0, 500_000.0, 6)] * 3, *[("EPSG:32651", 10.0, 300_000.0, 12)] * 2)
    grid = season_grid(scenes, grids)
    assert grid.crs.to_epsg() == 32651 and grid.transform.a == 10.0
    # Twenty-five times the 20 m pixels of one 10 m scene: still 10 m.
    scenes, grids = _grids(*[("EPSG:32651", 20.0, 300_000.0, 60)] * 5, ("EPSG:32650", 10.0, 500_000.0, 12))
    grid = season_grid(scenes, grids)
    assert grid.crs.to_epsg() == 32650 and grid.transform.a == 10.0
    # Sizes a float apart are one size: the lattice five scenes share wins over one half a pixel off.
    scenes, grids = _grids(*[("EPSG:32650", 10.0000006, 500_000.0, 12)] * 5, ("EPSG:32650", 10.0000004, 500_005.0, 12))
    assert season_grid(scenes, grids).transform.c == 500_000.0


def test_a_parcel_names_the_products_read_over_it_not_the_seasons(two_tiles) -> None:
    root, _, _ = two_tiles
    imagery = open_imagery(root)
    west, east, both = (box(500_000.0 + 10 * c0, 3_999_920.0, 500_000.0 + 10 * c1, 3_999_970.0)
                        for c0, c1 in ((0, 4), (14, 18), (7, 11)))

    measurements, _ = measure_parcels(np.array([west, east, both]), imagery, load_config(), load_cropland_model("rule"))
    named = list(parcel_imagery(measurements.product, imagery.scenes))

    # Tile A alone covers the west on both dates; tile B alone the east, on the mosaic's date only (A's second date
    # holds none of it).
    assert named[0] == [f"{A_ID}@2024-03-15", "S2A_50SKA_20240320_0_L2A@2024-03-20"]
    assert named[1] == [f"{B_ID}@2024-03-15"]
    # Where both cover, the product first in the mosaic (B, the less cloudy) supplied the pixels.
    assert named[2] == [f"{B_ID}@2024-03-15", "S2A_50SKA_20240320_0_L2A@2024-03-20"]


def test_a_pixel_whose_every_band_is_a_fill_value_was_read_from_no_product(two_tiles) -> None:
    root, _, _ = two_tiles
    for path in (root / "S2A_50SKA_20240320_0_L2A").glob("*.tif"):  # its first 60 m clear, at the fill value
        with rasterio.open(path, "r+") as dataset:
            block = max(1, round(60 / dataset.res[0]))
            value = 4 if path.stem == "SCL" else 65535
            dataset.write(np.full((block, block), value, dtype=dataset.dtypes[0]), 1, window=Window(0, 0, block, block))

    cube = read_window(open_imagery(root), Window(0, 0, 18, 12))

    assert np.isnan(cube.reflectance[1, :, :6, :6]).all()
    assert (cube.source[1, :6, :6] == -1).all() and (cube.source[1, 6:10, :6] == 0).all()
