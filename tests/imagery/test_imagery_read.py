"""read_window: reflectance, resampling to 10 m, SCL masking, boundless windows, bad files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import write_raster
from rasterio.windows import Window

from farmcredit.imagery import CLEAR_SCL_CLASSES, open_imagery, read_window

SCENE_2024 = ("2024", "S2B_50SKA_20240315_0_L2A")  # offset -1000 DN


def full_base_grid(path: Path) -> np.ndarray:
    """A band file read whole and repeated up to the 12x12 10 m grid: the reference."""
    with rasterio.open(path) as dataset:
        values = dataset.read(1).astype(np.float64)
    factor = 12 // values.shape[0]
    return np.repeat(np.repeat(values, factor, axis=0), factor, axis=1)


def _scl_clear(season_folder: Path) -> np.ndarray:
    """bool (12, 12): where the 2024 scene's SCL is a clear class, on the 10 m grid."""
    return np.isin(full_base_grid(season_folder.joinpath(*SCENE_2024, "SCL.tif")), CLEAR_SCL_CLASSES)


def test_reflectance_is_dn_plus_offset_times_scale_and_dn0_is_nan(season_folder: Path) -> None:
    imagery = open_imagery(season_folder)
    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B04",))

    assert cube.reflectance.dtype == np.float32
    assert cube.reflectance.shape == (3, 1, 12, 12)
    assert cube.dates == (date(2020, 6, 10), date(2023, 8, 1), date(2024, 3, 15))
    for step, scene in enumerate(imagery.scenes):
        dns = full_base_grid(Path(scene.band_paths["B04"][0]))
        expected = np.where(dns == 0, np.nan, (dns + scene.dn_offset) * 1e-4)
        np.testing.assert_allclose(cube.reflectance[step, 0], expected, rtol=1e-6)
    assert np.isnan(cube.reflectance[:, 0, 11, 0]).all()
    assert not cube.clear[:, 11, 0].any()
    # Baseline 05.10 carries +1000 DN: the same position reads 0.1 lower than a 0-offset scene.
    assert cube.reflectance[2, 0, 5, 5] == pytest.approx((4000 + 65 - 1000) * 1e-4, rel=1e-6)


@pytest.mark.parametrize(
    "window",
    [Window(3, 5, 6, 5), Window(1, 1, 1, 1), Window(0, 0, 12, 12), Window(7, 2, 5, 9)],
    ids=["odd-offset", "single-odd-pixel", "whole", "odd-to-edge"],
)
def test_coarse_bands_align_with_a_full_array_reference(
    season_folder: Path, window: Window
) -> None:
    imagery = open_imagery(season_folder)
    cube = read_window(imagery, window, bands=("B01", "B04", "B05", "B8A", "B11"))
    scene = imagery.scenes[0]  # baseline 02.14: reflectance = DN * 1e-4
    rows = slice(window.row_off, window.row_off + window.height)
    cols = slice(window.col_off, window.col_off + window.width)

    for position, band in enumerate(cube.bands):
        reference = full_base_grid(Path(scene.band_paths[band][0]))[rows, cols]
        reference = np.where(reference == 0, np.nan, reference * 1e-4)
        np.testing.assert_allclose(cube.reflectance[0, position], reference, rtol=1e-6)


def test_scl_masks_cloud_shadow_and_nodata(season_folder: Path) -> None:
    imagery = open_imagery(season_folder)
    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B02", "B04", "B08"))
    scl = full_base_grid(Path(imagery.scenes[0].band_paths["SCL"][0]))
    expected = np.isin(scl, CLEAR_SCL_CLASSES)
    expected[11, 0] = False  # B04 has DN 0 there

    for step in range(3):
        np.testing.assert_array_equal(cube.clear[step], expected)
    assert not cube.clear[:, :2, :2].any()  # SCL 9 (cloud) covers the first 2x2 pixels
    # A cloudy pixel still has its reflectance; only `clear` says to drop it.
    assert np.isfinite(cube.reflectance[:, :, 0, 0]).all()
    # SCL no data (class 0) in the last 20 m pixel.
    assert not cube.clear[:, 10:, 10:].any()


def test_clear_classes_can_be_chosen(season_folder: Path) -> None:
    imagery = open_imagery(season_folder)
    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B04",), clear_classes=(4, 5, 6, 8))

    assert cube.clear[0, 0, 2:4].all()  # SCL 8 (medium cloud) now counts as clear
    assert not cube.clear[0, 0, 0:2].any()  # SCL 9 does not


def test_window_partly_outside_the_grid_is_nan_and_not_clear(season_folder: Path) -> None:
    imagery = open_imagery(season_folder)
    window = Window(-3, 8, 8, 7)  # columns -3..4, rows 8..14 of a 12x12 grid
    cube = read_window(imagery, window, bands=("B04", "B8A"))

    assert cube.reflectance.shape == (3, 2, 7, 8)
    assert np.isnan(cube.reflectance[:, :, :, :3]).all()
    assert np.isnan(cube.reflectance[:, :, 4:, :]).all()
    assert not cube.clear[:, :, :3].any() and not cube.clear[:, 4:, :].any()
    inside = full_base_grid(Path(imagery.scenes[0].band_paths["B8A"][0]))[8:12, 0:5] * 1e-4
    np.testing.assert_allclose(cube.reflectance[0, 1, :4, 3:], inside, rtol=1e-6)
    assert cube.transform.c == 500_000.0 - 30.0
    assert cube.transform.f == 4_000_000.0 - 80.0


def test_window_wholly_outside_reads_all_nan(season_folder: Path) -> None:
    cube = read_window(open_imagery(season_folder), Window(20, 20, 4, 4), bands=("B04",))

    assert np.isnan(cube.reflectance).all()
    assert not cube.clear.any()
    assert cube.read_errors == ()


def test_bands_missing_from_the_imagery_are_left_out(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    write_scene(
        tmp_path / "2024-05-01",
        acquired=datetime(2024, 5, 1),
        with_item=False,
        bands=("B02", "B04", "B08", "SCL"),
    )
    imagery = open_imagery(tmp_path)

    cube = read_window(imagery, Window(0, 0, 12, 12))

    assert cube.bands == ("B02", "B04", "B08")
    assert cube.clear.sum() > 0


def test_unknown_band_names_are_refused(season_folder: Path) -> None:
    with pytest.raises(ValueError, match="B13"):
        read_window(open_imagery(season_folder), Window(0, 0, 2, 2), bands=("B04", "B13"))


def test_a_truncated_cog_is_reported_and_only_its_date_is_masked(season_folder: Path) -> None:
    folder = season_folder.joinpath(*SCENE_2024)
    band_file = folder / "B8A.tif"
    with rasterio.open(band_file) as dataset:
        values = dataset.read(1)
    band_file.unlink()
    with rasterio.open(
        band_file, "w", driver="COG", width=6, height=6, count=1, dtype="uint16",
        crs="EPSG:32650", transform=dataset.transform, nodata=0, blocksize=16, compress="NONE",
    ) as cog:
        cog.write(values, 1)
    # Keep the header (at the front of a COG), cut half of the only tile's bytes.
    data = band_file.read_bytes()
    band_file.write_bytes(data[: len(data) - 256])

    imagery = open_imagery(season_folder)  # the header still opens
    cube = read_window(imagery, Window(2, 2, 6, 6), bands=("B04", "B8A"))

    assert len(cube.read_errors) == 1
    scene_id, path, message = cube.read_errors[0]
    assert scene_id == "S2B_50SKA_20240315_0_L2A"
    assert path == str(band_file)
    assert "IReadBlock failed" in message  # GDAL's own words, not only rasterio's
    assert np.isnan(cube.reflectance[2]).all() and not cube.clear[2].any()
    assert np.isfinite(cube.reflectance[:2]).all() and cube.clear[:2].any()


def test_a_striped_band_cut_short_loses_only_the_strips_that_fail(season_folder: Path) -> None:
    """The window is read again strip by strip: the rows of the strips that still decode keep their date."""
    band_file = season_folder.joinpath(*SCENE_2024, "B04.tif")
    with rasterio.open(band_file) as dataset:
        values, profile = dataset.read(1), dataset.profile
    profile.update(driver="GTiff", tiled=False, blockysize=4, compress="NONE")
    profile.pop("blockxsize", None)
    band_file.unlink()
    with rasterio.open(band_file, "w", **profile) as striped:  # 12 rows: 3 strips of 4
        striped.write(values, 1)
    pristine = read_window(open_imagery(season_folder), Window(0, 0, 12, 12), bands=("B04", "B08"))
    band_file.write_bytes(band_file.read_bytes()[:-8])  # the last strip cut short

    cube = read_window(open_imagery(season_folder), Window(0, 0, 12, 12), bands=("B04", "B08"))

    assert [error[:2] for error in cube.read_errors] == [(SCENE_2024[1], str(band_file))]
    np.testing.assert_array_equal(cube.reflectance[:, :, :8], pristine.reflectance[:, :, :8])
    np.testing.assert_array_equal(cube.clear[:, :8], pristine.clear[:, :8])
    assert np.isnan(cube.reflectance[2, :, 8:]).all() and not cube.clear[2, 8:].any()
    expected_lost = np.zeros_like(cube.lost)
    # Where the scene has data and its SCL is clear (B04's own no-data pixel cannot be told once B04 fails): a cloudy
    # pixel lost costs no clear date.
    would_be_clear = _scl_clear(season_folder) & np.isfinite(pristine.reflectance[2, 1])
    expected_lost[2, 8:] = would_be_clear[8:]
    np.testing.assert_array_equal(cube.lost, expected_lost)
    assert expected_lost.any() and not pristine.lost.any() and cube.imaged()[8:].all()


@pytest.mark.parametrize("broken", [("B04",), ("B04", "SCL")], ids=["band", "band-and-scl"])
def test_a_cloudy_twin_does_not_stand_in_for_the_clear_pixels_of_a_file_that_fails(
    season_folder: Path, write_scene: Callable[..., Path], broken: tuple[str, ...]
) -> None:
    """A twin product of the date, all cloud, supplies the pixels of a band file that does not open: where the broken
    product was clear, or its SCL did not read to tell, the clear observation is ``lost`` (it stood in with no loss
    only where the broken product was cloudy too)."""
    scene = season_folder.joinpath(*SCENE_2024)
    twin = write_scene(scene.with_name(scene.name.replace("_0_", "_1_")), acquired=datetime(2024, 3, 15, 3, 20, 11))
    with rasterio.open(twin / "SCL.tif") as scl, rasterio.open(twin / "B04.tif") as red:
        profile, clear_scl, twin_no_red = scl.profile, np.isin(scl.read(1), CLEAR_SCL_CLASSES), red.read(1) == 0
    with rasterio.open(twin / "SCL.tif", "w", **profile) as scl:
        scl.write(np.full((profile["height"], profile["width"]), 9, dtype=profile["dtype"]), 1)
    for layer in broken:
        (scene / f"{layer}.tif").write_bytes(bytes((scene / f"{layer}.tif").stat().st_size))

    cube = read_window(open_imagery(season_folder), Window(0, 0, 12, 12), bands=("B04", "B08"))

    expected = np.zeros_like(cube.lost)
    expected[2] = np.repeat(np.repeat(clear_scl, 2, axis=0), 2, axis=1) if broken == ("B04",) else True
    expected[2] |= twin_no_red  # no data of the twin there at all
    np.testing.assert_array_equal(cube.lost, expected)
    assert not cube.clear[2].any() and [error[0] for error in cube.read_errors] == [scene.name] * len(broken)


@pytest.mark.parametrize("band, kept_px", [("B04", 8), ("SCL", 4)])
def test_a_band_file_short_of_its_scenes_extent_leaves_the_pixels_it_misses_uncovered(
    season_folder: Path, band: str, kept_px: int
) -> None:
    """A B04 cropped to 8x8 beside 12x12 siblings, or the 20 m SCL to the same ground: the pixels it does not reach
    have no data (B04) or are not clear (SCL: not known to be clear) on its date, and are ``uncovered`` there where
    they would have been clear (the scene's other bands have data); the rest of the date, and the other dates, are
    not."""
    band_file = season_folder.joinpath(*SCENE_2024, f"{band}.tif")
    pristine = read_window(open_imagery(season_folder), Window(0, 0, 12, 12), bands=("B04", "B08"))
    with rasterio.open(band_file) as source:
        values = source.read()[:, :kept_px, :kept_px]
        profile = source.profile | {"width": kept_px, "height": kept_px}
    with rasterio.open(band_file, "w", **profile) as dataset:
        dataset.write(values)

    cube = read_window(open_imagery(season_folder), Window(0, 0, 12, 12), bands=("B04", "B08"))

    expected = np.zeros_like(cube.uncovered)
    # Where the date would have been clear: the SCL says so (B04 short), or it is not known to be cloudy (SCL short).
    expected[2] = np.isfinite(pristine.reflectance[2, 1]) & (_scl_clear(season_folder) if band == "B04" else True)
    expected[2, :8, :8] = False
    assert 0 < expected[2].sum() <= 12 * 12 - 8 * 8
    np.testing.assert_array_equal(cube.uncovered, expected)
    assert not cube.lost.any() and not cube.read_errors
    assert not cube.clear[2][expected[2]].any()
    assert np.isnan(cube.reflectance[2, 0][expected[2]]).all() == (band == "B04")


def test_snow_is_not_clear_whatever_its_scl_and_turbid_water_is_not_snow(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """Snow a cloud mask of one's own wrote as SCL 4 (or Sen2Cor leaked as 4 or 5) was read clear, as bare land, and
    the CNN wiped the fields out. Read as snow by its spectrum it is not clear, and is snow as SCL 11 is; silt-laden
    water (high NDSI, dark NIR) and a pond Sen2Cor calls water stay clear. Without B11 nothing changes."""
    folder = write_scene(tmp_path / "s" / "S2A_50SKA_20200610_0_L2A", acquired=datetime(2020, 6, 10),
                         baseline="02.14")
    # 10 m rows 0-3 snow, 4-7 turbid water (NDSI 0.76, NIR 0.05), 8-11 land; SCL all clear but 6 (water) under
    # rows 4-7 and 11 (snow) in the last 20 m pixel, and rows 0-1, columns 0-3 of water under silt (NIR 0.2).
    green = np.repeat([8400, 1500, 800], 4)[:, None] * np.ones((1, 12))
    nir = np.repeat([7500, 500, 3000], 4)[:, None] * np.ones((1, 12))
    swir = np.repeat([800, 200, 2000], 2)[:, None] * np.ones((1, 6))
    green[:2, :4], nir[:2, :4], swir[0, :2] = 2000, 2000, 500
    scl = np.full((6, 6), 4)
    scl[0, :2], scl[2:4], scl[5, 5] = 6, 6, 11
    for band, values, resolution in (("B03", green, 10), ("B08", nir, 10), ("B11", swir, 20), ("SCL", scl, 20)):
        write_raster(folder / f"{band}.tif", values.astype(np.uint16 if band != "SCL" else np.uint8), resolution)
    imagery = open_imagery(tmp_path / "s")

    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B03", "B08", "B11"))

    snow = np.zeros((12, 12), dtype=bool)
    snow[:4] = True
    snow[:2, :4] = False  # silt-laden water Sen2Cor calls water
    called_clear = snow.copy()
    snow[10:, 10:] = True  # SCL 11
    np.testing.assert_array_equal(cube.snow[0], snow)
    np.testing.assert_array_equal(cube.snow_unmasked[0], called_clear)
    np.testing.assert_array_equal(cube.clear[0], ~snow)
    without_swir = read_window(imagery, Window(0, 0, 12, 12), bands=("B03", "B08"))
    np.testing.assert_array_equal(without_swir.clear[0], ~snow | called_clear)
    assert not without_swir.snow_unmasked.any()
