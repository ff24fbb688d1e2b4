"""The imagery package on real Sentinel-2 data from ../shared/data (skipped when it is absent, failed under CI)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_bounds
from rasterio.windows import Window

from farmcredit.imagery import CLEAR_SCL_CLASSES, open_imagery, read_window, spectral_indices

# eo-learn's L1C band order (B8A after B08, B10 kept); checked below: B08/B04 reproduce NDVI.npy.
EOLEARN_BANDS = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)
# REFERENCE_SCENES is not stored in timestamps.json order: scene k matches NDVI.npy date
# EOLEARN_DATE_OF_SCENE[k] exactly (and no other of the first five), found by comparing them.
EOLEARN_DATE_OF_SCENE = (2, 1, 4, 3, 0)


def test_earthsearch_item_loads_and_reads_plausible_desert(shared_data: Path) -> None:
    earthsearch = shared_data / "s2" / "earthsearch-29RKH-2020"
    imagery = open_imagery(earthsearch)

    (scene,) = imagery.scenes
    assert scene.scene_id == "S2A_29RKH_20200219_0_L2A"
    assert scene.dn_offset == 0.0  # baseline 02.14, raster:bands offset 0
    assert scene.band_paths["B04"][0] == str(earthsearch / "B04.tif")  # https href, local copy
    assert scene.cloud_cover == pytest.approx(4.051854)
    assert imagery.has_scl and "B8A" in imagery.bands
    assert imagery.shape == (1098, 1098)  # the downsampled 10 m bands (100 m pixels)

    cube = read_window(imagery, Window(0, 0, 1098, 1098))

    assert cube.read_errors == ()
    red = cube.reflectance[0, cube.bands.index("B04")][cube.clear[0]]
    assert 0.1 < np.median(red) < 0.5
    assert np.median(spectral_indices(cube)["ndvi"][0][cube.clear[0]]) < 0.2
    with rasterio.open(scene.band_paths["SCL"][0]) as dataset:
        scl = dataset.read(1)
    scl_on_base = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(cube.clear[0], np.isin(scl_on_base, CLEAR_SCL_CLASSES))
    assert 0.9 < cube.clear.mean() < 1.0  # a few percent cloud and cirrus are masked


def test_ftw_stack_has_no_descriptions_and_loads_with_band_layout(shared_data: Path) -> None:
    stack = shared_data / "s2" / "ftw-austria-2021" / "inference-img.tif"
    with rasterio.open(stack) as dataset:
        assert dataset.descriptions == (None,) * 8
    june, september = date(2021, 6, 17), date(2021, 9, 25)
    layout = [(day, band) for day in (june, september) for band in ("red", "green", "blue", "nir")]

    imagery = open_imagery(stack, band_layout=layout)
    cube = read_window(imagery, Window(0, 0, imagery.shape[1], imagery.shape[0]))
    ndvi = spectral_indices(cube)["ndvi"]

    assert cube.dates == (june, september)
    assert cube.bands == ("B02", "B03", "B04", "B08")
    for step in range(2):
        assert 0.5 < np.nanpercentile(ndvi[step], 75) < 0.9  # crops, meadows, forest
        assert np.nanpercentile(ndvi[step], 1) < 0  # the Inn river


def test_eolearn_ndvi_matches_from_a_described_stack(shared_data: Path, tmp_path: Path) -> None:
    eolearn = shared_data / "s2" / "eolearn-slovenia"
    scenes = np.load(eolearn / "REFERENCE_SCENES.npy")  # (time, y, x, band), L1C 0-1
    reference_ndvi = np.load(eolearn / "NDVI.npy")[..., 0]  # (time, y, x)
    timestamps = json.loads((eolearn / "timestamps.json").read_text())
    first_dates = [datetime.fromisoformat(stamp).date() for stamp in timestamps[:5]]
    dates = [first_dates[index] for index in EOLEARN_DATE_OF_SCENE]
    west, south, east, north = _bounds(json.loads((eolearn / "bbox.geojson").read_text()))
    count, height, width, band_count = scenes.shape
    assert band_count == len(EOLEARN_BANDS)

    stack = tmp_path / "eolearn.tif"
    with rasterio.open(
        stack, "w", driver="GTiff", width=width, height=height, count=count * band_count,
        dtype="float32", crs="EPSG:32633",
        transform=from_bounds(west, south, east, north, width, height),
    ) as dataset:
        for step, day in enumerate(dates):
            for position, band in enumerate(EOLEARN_BANDS):
                index = step * band_count + position + 1
                dataset.write(scenes[step, :, :, position], index)
                dataset.set_band_description(index, f"{day.isoformat()} {band}")

    imagery = open_imagery(stack)
    cube = read_window(imagery, Window(0, 0, width, height), bands=("B02", "B04", "B08", "B8A"))
    ndvi = spectral_indices(cube)["ndvi"]

    assert imagery.bands == EOLEARN_BANDS
    assert list(cube.dates) == sorted(dates)
    for step, day in enumerate(cube.dates):
        expected = reference_ndvi[first_dates.index(day)]
        both = np.isfinite(ndvi[step]) & np.isfinite(expected)
        assert both.mean() > 0.95
        np.testing.assert_allclose(ndvi[step][both], expected[both], atol=1e-5)
        # The band order matters: B8A (position 9) in place of B08 does not reproduce NDVI.npy.
        red, narrow_nir = cube.reflectance[step, 1], cube.reflectance[step, 3]
        narrow_ndvi = (narrow_nir - red) / (narrow_nir + red)
        assert np.nanmax(np.abs(narrow_ndvi[both] - expected[both])) > 1e-3


def _bounds(polygon: dict) -> tuple[float, float, float, float]:
    xs, ys = zip(*polygon["coordinates"][0], strict=True)
    return min(xs), min(ys), max(xs), max(ys)
