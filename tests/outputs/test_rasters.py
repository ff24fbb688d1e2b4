"""Raster outputs: COGs on the parcels' extent whose pixels match what the pipeline measured."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.windows import Window

from farmcredit.imagery import read_window, spectral_indices
from farmcredit.locking import UNFINISHED
from farmcredit.outputs import rasters
from farmcredit.outputs.rasters import (
    RASTER_NAMES,
    PixelRasters,
    RasterGrid,
    _health_strips,
    _near_strip,
    _parcel_numbers,
    _strips,
    _to_cog,
    _write_true_colour,
    scenes_by_clearness,
)


def test_every_raster_is_a_cog_with_a_qml_on_one_grid(outputs, assessed) -> None:
    grids = set()
    for name in RASTER_NAMES:
        path = outputs / f"{name}.tif"
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert src.crs == assessed.imagery.crs and src.tags()["DESCRIPTION"]
            grids.add((src.transform, src.shape))
        assert path.with_suffix(".qml").read_text().startswith("<!DOCTYPE qgis")
    assert len(grids) == 1
    (transform, shape), window = grids.pop(), assessed.grid_window
    assert shape == (window.height, window.width)
    assert transform == rasterio.windows.transform(window, assessed.imagery.transform)


def test_peak_ndvi_is_the_seasons_clear_sky_maximum_per_pixel(outputs, assessed) -> None:
    imagery, window = assessed.imagery, assessed.grid_window
    cube = read_window(imagery, window, ("B04", "B08"))
    expected = np.fmax.reduce(spectral_indices(cube)["ndvi"], axis=0)
    with rasterio.open(outputs / "ndvi_peak.tif") as src:
        written = src.read(1)
    measured = np.isfinite(written)
    assert measured.mean() > 0.5  # the windows around the parcels cover most of this small scene
    np.testing.assert_allclose(written[measured], expected[measured], rtol=1e-5, atol=1e-6)
    with rasterio.open(outputs / "cropland_probability.tif") as src:
        probability = src.read(1)
    assert np.nanmin(probability) >= 0 and np.nanmax(probability) <= 1


def test_health_raster_carries_each_parcels_index(outputs, assessed) -> None:
    parcels = assessed.parcels.to_crs(assessed.imagery.crs)
    parcels = parcels[(parcels["status"] != "error") & parcels["health_index"].notna()]
    points = shapely.get_coordinates(parcels.geometry.representative_point())
    with rasterio.open(outputs / "health_index.tif") as src:
        values = np.array([v[0] for v in src.sample(points)])
    agree = np.isclose(values, parcels["health_index"].to_numpy(), atol=1e-3)
    assert agree.mean() > 0.9  # the rest: the point's pixel centre lies outside a thin parcel


@pytest.mark.parametrize("strip_rows", [512, 3])
def test_a_parcel_holding_no_pixel_centre_shows_on_the_pixels_it_touches(monkeypatch, strip_rows: int) -> None:
    """A plot smaller than a pixel or a strip between pixel centres still shows; others keep their own pixels."""
    monkeypatch.setattr(rasters, "STRIP_ROWS", strip_rows)  # 3: parcels spanning strips
    grid = RasterGrid(Window(0, 0, 12, 12), rasterio.Affine(10, 0, 0, 0, -10, 120), rasterio.crs.CRS.from_epsg(32650))
    geoms = np.array([
        shapely.box(12, 82, 44, 108),  # holds 3 x 3 pixel centres, touches a fourth column
        shapely.box(51, 61, 54, 64),  # 9 m2 inside pixel (row 5, col 5), away from its centre
        shapely.box(31, 0, 34, 60),  # 3 m wide between the centres of column 3, across strips at strip_rows 3
        shapely.box(71, 11, 74, 14),  # under parcel 5's pixel, holding no centre: the centre rule wins
        shapely.box(70, 10, 80, 20),
        shapely.box(90, 90, 110, 110),  # not rated (fallow): its pixels stay empty
        shapely.box(108, 101, 112, 104),  # holding no centre, touching its pixel (1, 10) and (1, 11)
    ])
    values = np.array([1, 2, 3, 4, 5, np.nan, 7])
    burnt = np.concatenate([strip[0] for strip in _health_strips(geoms, values, grid)])
    assert burnt.shape == (12, 12)
    expected = np.full((12, 12), np.nan)
    expected[1:4, 1:4] = 1
    expected[5, 5] = 2
    expected[6:12, 3] = 3
    expected[10, 7] = 5
    expected[1, 11] = 7
    np.testing.assert_array_equal(burnt, expected)


def _random_parcels(grid: RasterGrid, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` overlapping boxes of 1 m to a few pixels on ``grid`` (some unrated), and two a tile long, one of them
    narrower than a pixel; with their health values."""
    rng = np.random.default_rng(seed)
    left, top = grid.transform.c, grid.transform.f
    width, height = grid.window.width * grid.transform.a, grid.window.height * -grid.transform.e
    x, y = left + rng.uniform(0, width, count), top - rng.uniform(0, height, count)
    geoms = np.append(shapely.box(x, y, x + rng.uniform(1, 40, count), y + rng.uniform(1, 40, count)),
                      [shapely.box(left + 33.3, top - height + 5, left + 36.6, top - 5),
                       shapely.box(left + 50, top - height + 5, left + 90, top - 5)])
    values = rng.uniform(0, 100, len(geoms))
    values[rng.random(len(geoms)) < 0.2] = np.nan
    return geoms, values


def _burnt_afresh(geoms: np.ndarray, values: np.ndarray, grid: RasterGrid) -> np.ndarray:
    """The health raster with every strip's parcel numbers rasterized afresh wherever they are used."""
    bounds, strips = shapely.bounds(geoms), _strips(grid)
    near = [_near_strip(bounds, strip, grid.transform) for strip in strips]
    holds = np.zeros(len(geoms), dtype=bool)
    for strip, near_strip in zip(strips, near, strict=True):
        numbers = _parcel_numbers(geoms, near_strip, strip, grid.transform)
        holds[np.unique(numbers[numbers > 0]) - 1] = True
    lookup = np.append(values, np.nan)
    burnt = []
    for strip, near_strip in zip(strips, near, strict=True):
        held = _parcel_numbers(geoms, near_strip, strip, grid.transform)
        touched = _parcel_numbers(geoms, near_strip & ~holds & np.isfinite(values), strip, grid.transform,
                                  all_touched=True)
        burnt.append(np.where(held > 0, lookup[held - 1], lookup[touched - 1]))
    return np.concatenate(burnt).astype(np.float32)


@pytest.mark.parametrize(("strip_rows", "seed"), [(512, 1), (7, 2), (3, 3), (1, 4)])
def test_health_strips_burn_the_pixels_fresh_rasterizing_burns(monkeypatch, strip_rows: int, seed: int) -> None:
    """Parcel numbers kept from the centre test are those a fresh rasterize gives, parcels across strips included."""
    monkeypatch.setattr(rasters, "STRIP_ROWS", strip_rows)
    grid = RasterGrid(Window(0, 0, 47, 61), rasterio.Affine(10, 0, 500_000, 0, -10, 4_000_000),
                      rasterio.crs.CRS.from_epsg(32650))
    geoms, values = _random_parcels(grid, 400, seed)
    burnt = np.concatenate([strip[0] for strip in _health_strips(geoms, values, grid)])
    assert burnt.dtype == np.float32 and burnt.shape == (61, 47)
    assert np.isfinite(burnt).mean() > 0.3
    np.testing.assert_array_equal(burnt, _burnt_afresh(geoms, values, grid))


def test_the_health_raster_rasterizes_each_strips_parcel_centres_once(monkeypatch, assessed, tmp_path) -> None:
    """Its strips are rasterized once to tell which parcels hold a pixel centre and burn them (then the pixels that
    coarse parcels touch), not a second time for the burning."""
    monkeypatch.setattr(rasters, "STRIP_ROWS", 16)  # several strips on the small scene
    calls = {False: 0, True: 0}
    rasterize = rasterio.features.rasterize

    def counting(*args: object, all_touched: bool = False, **kwargs: object) -> np.ndarray:
        calls[all_touched] += 1
        return rasterize(*args, all_touched=all_touched, **kwargs)

    monkeypatch.setattr(rasterio.features, "rasterize", counting)
    rasters.write_rasters(tmp_path, assessed)
    strips = _strips(RasterGrid(assessed.grid_window, assessed.imagery.transform, assessed.imagery.crs))
    assert len(strips) > 2
    assert calls[False] <= len(strips)


def test_health_strips_keep_few_strips_of_numbers_beside_a_tile_long_parcel(monkeypatch) -> None:
    """Memory stays a few strips, not the tile's, though a parcel spans every strip (its centres are told late)."""
    monkeypatch.setattr(rasters, "STRIP_ROWS", 8)
    grid = RasterGrid(Window(0, 0, 2000, 400), rasterio.Affine(10, 0, 500_000, 0, -10, 4_000_000),
                      rasterio.crs.CRS.from_epsg(32650))
    geoms, values = _random_parcels(grid, 300, 5)
    strip_bytes = rasters.STRIP_ROWS * 2000 * 4
    tracemalloc.start()
    try:
        for _ in _health_strips(geoms, values, grid):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * strip_bytes  # the tile is 50 strips; a strip burnt takes some 8 with its temporaries


def test_true_colour_is_the_clearest_date_in_reflectance(outputs, assessed) -> None:
    scene = scenes_by_clearness(assessed.imagery, assessed.series)[0]
    by_date = assessed.series.groupby("date")["clear_share"].mean()
    assert by_date[str(scene.acquired.date())] == pytest.approx(by_date.max())
    with rasterio.open(outputs / "true_colour.tif") as src:
        assert src.count == 3 and src.dtypes[0] == "uint16" and src.descriptions == ("B04", "B03", "B02")
        assert [c.name for c in src.colorinterp] == ["red", "green", "blue"]
        assert src.tags()["ACQUIRED"] == scene.acquired.date().isoformat()
        rgb = src.read()
    reflectance = rgb[rgb > 0] / 10_000
    assert 0.005 < np.median(reflectance) < 0.5


def test_true_colour_falls_back_to_the_next_clearest_date_when_a_file_will_not_read(assessed, tmp_path) -> None:
    scenes = scenes_by_clearness(assessed.imagery, assessed.series)
    broken = tmp_path / "B04.tif"
    broken.write_bytes(b"II*\x00 not really a GeoTIFF")
    clearest = dataclasses.replace(scenes[0], band_paths={**scenes[0].band_paths, "B04": (str(broken), 1)})
    window = Window(0, 0, 64, 48)
    grid = RasterGrid(window, rasterio.windows.transform(window, assessed.imagery.transform), assessed.imagery.crs)
    assert _write_true_colour(tmp_path / "rgb.tif", grid, assessed.imagery, [clearest, *scenes[1:]]) == scenes[1]
    with rasterio.open(tmp_path / "rgb.tif") as src:
        assert src.read().any()
    assert _write_true_colour(tmp_path / "none.tif", grid, assessed.imagery, [clearest]) is None

    def full(*_: object, **__: object) -> None:  # the disk, not the date: every date would fail the same
        raise rasterio.errors.RasterioError("Write failed: No space left on device")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(rasterio.errors.RasterioError, match="No space left"):
        patch.setattr(rasterio.io.DatasetWriter, "write", full)
        _write_true_colour(tmp_path / "full.tif", grid, assessed.imagery, scenes)  # was: None, the picture dropped


def test_a_pixel_layer_cut_short_by_a_full_disk_stops_the_run_with_the_usual_error(assessed) -> None:
    """A TIFF a full TMPDIR cut short was reopened for the next window: rasterio's TypeError ended in a traceback."""
    from farmcredit.errors import InputError

    pixels = PixelRasters(assessed.imagery, Window(100, 200, 700, 600))
    pixels.add(Window(110, 210, 50, 40), {"ndvi_peak": np.full((40, 50), 0.5, dtype=np.float32)})
    with open(pixels.paths["ndvi_peak"], "r+b") as layer:
        layer.truncate(100)
    with pytest.raises(InputError, match="writing the per-pixel layers in .* stopped: ndvi_peak.tif: .*set TMPDIR"):
        pixels.add(Window(110, 210, 50, 40), {"ndvi_peak": np.full((40, 50), 0.7, dtype=np.float32)})


def test_pixel_layers_gather_windows_sparsely_and_become_cogs_with_overviews(assessed, tmp_path) -> None:
    pixels = PixelRasters(assessed.imagery, Window(100, 200, 700, 600))
    pixels.add(Window(110, 210, 50, 40), {"ndvi_peak": np.full((40, 50), 0.5, dtype=np.float32)})
    pixels.add(Window(140, 230, 300, 300), {"ndvi_peak": np.full((300, 300), 0.7, dtype=np.float32)})
    with rasterio.open(pixels.paths["ndvi_peak"]) as src:
        written = src.read(1)
    assert written[10, 10] == 0.5 and written[30, 40] == 0.7 and np.isnan(written[500, 650])
    assert np.isfinite(written).sum() == 40 * 50 + 300 * 300 - 20 * 20  # the second window overlaps the first
    _to_cog(pixels.paths["ndvi_peak"], {}, tmp_path / "ndvi_peak.tif", "ndvi_peak")
    with rasterio.open(tmp_path / "ndvi_peak.tif") as src:
        assert src.overviews(1) == [2, 4] and src.block_shapes[0] == (256, 256)
        assert src.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    # A class layer: uint8, and its overviews keep the commonest class (three 4s to one 1 in every 2 x 2 block).
    classes = np.full((300, 300), 4.0, dtype=np.float32)
    classes[::2, ::2] = 1.0
    pixels.add(Window(140, 230, 300, 300), {"cropland_class": classes})
    _to_cog(pixels.paths["cropland_class"], {}, tmp_path / "cropland_class.tif", "cropland_class")
    with rasterio.open(tmp_path / "cropland_class.tif") as src:
        assert (src.dtypes[0], src.nodata, src.overviews(1)) == ("uint8", 255, [2, 4])
        assert src.read(1)[31, 41] == 4 and src.read(1)[500, 650] == 255
    with rasterio.open(tmp_path / "cropland_class.tif", overview_level=0) as half:
        inside = half.read(1)[15:165, 20:170]  # the window (rows 30-330, columns 40-340) at half resolution
    assert (inside == 4).all()  # averaging would give 3


def test_class_map_is_the_cnns_classes_where_it_calls_crop_in_uint8(outputs, assessed) -> None:
    from farmcredit.segmentation import load_cropland_model

    model = load_cropland_model("cnn", device="cpu")
    cube = read_window(assessed.imagery, assessed.grid_window, model.bands)
    expected = model.classify(cube, {}).crop_class
    with rasterio.open(outputs / "cropland_class.tif") as src:
        assert (src.dtypes[0], src.nodata) == ("uint8", 255)
        written = src.read(1)
        assert src.tags()["CLASSES"] == ",".join(model.classes)
    with rasterio.open(outputs / "cropland_probability.tif") as src:
        probability = src.read(1)
    measured = written != 255
    assert measured.mean() > 0.5
    # Each window is classified alone (its edges lack the neighbours a whole-grid pass sees): nearly all agree.
    assert np.mean(written[measured] == expected[measured]) > 0.95
    assert ((written[measured] > 0) == (probability[measured] >= 0.5)).all()
    style = (outputs / "cropland_class.qml").read_text()
    assert 'type="paletted"' in style and 'label="wheat"' in style


def test_the_rule_writes_no_class_map_and_removes_one_left_by_an_earlier_run(small_season, tmp_path) -> None:
    from farmcredit.outputs.rasters import write_rasters
    from farmcredit.pipeline import run_assessment

    rule = run_assessment(small_season.parcels_path, small_season.imagery_dir, model="rule", pixel_layers=True)
    (tmp_path / "cropland_class.tif").write_bytes(b"left by a CNN run")
    (tmp_path / "cropland_class.qml").write_text("<qgis/>")
    files = write_rasters(tmp_path, rule)
    assert "cropland_class" not in files and "cropland_probability" in files
    assert not (tmp_path / "cropland_class.tif").exists() and not (tmp_path / "cropland_class.qml").exists()



def _with_small_files(tmp_path: Path, limit_where: str, limit: int) -> subprocess.CompletedProcess:
    """Assess two parcels at opposite corners of sample_tiles (rasters over the whole grid, ~400 kB; small tables,
    a 150 kB GeoPackage) keeping the per-pixel layers, then write the outputs into ``tmp_path``, files over ``limit``
    bytes failing as on a full disk (EFBIG, a real limit) from ``limit_where`` on: "measuring" or "writing". Prints
    an InputError's message."""
    sample = Path(__file__).resolve().parents[2] / "sample_tiles"
    script = f"""
import resource, signal
from pathlib import Path
import geopandas as gpd
from farmcredit.errors import InputError
from farmcredit.outputs import write_outputs
from farmcredit.pipeline import run_assessment

def small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

parcels = gpd.read_file({str(sample / "parcels.geojson")!r})
corner = parcels.geometry.bounds.minx + parcels.geometry.bounds.miny
try:
    if {limit_where!r} == "measuring":
        small_files()
    assessment = run_assessment(parcels.loc[[corner.idxmin(), corner.idxmax()]], {str(sample / "imagery")!r},
                                model="rule", pixel_layers=True)
    small_files()
    write_outputs(Path({str(tmp_path)!r}), assessment)
except InputError as exc:
    print("InputError:", exc)
"""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(sys.platform == "win32", reason="a limit on the size of files a process writes is POSIX's")
def test_a_raster_gdal_cannot_write_stops_the_outputs_naming_the_folder_and_the_unfinished_write(tmp_path) -> None:
    """A full disk while GDAL writes a raster is rasterio's CPLE error, not a RasterioError: it ended in a
    traceback."""
    done = _with_small_files(tmp_path, "writing", 250_000)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"InputError: writing the outputs in {tmp_path} stopped: " in done.stdout
    assert "stopped: true_colour.tif (written first in " in done.stdout  # not skipped as a bad date
    assert "See previous exception" not in done.stdout
    assert f"the folder holds an unfinished write ({UNFINISHED})" in done.stdout
    assert (tmp_path / UNFINISHED).is_file() and (tmp_path / "results.gpkg").is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="a limit on the size of files a process writes is POSIX's")
def test_a_full_disk_under_the_per_pixel_layers_stops_the_run_naming_their_folder(tmp_path) -> None:
    """The per-pixel layers are written while measuring, to a temporary folder (TMPDIR): a full disk there ended in a
    traceback."""
    done = _with_small_files(tmp_path, "measuring", 100_000)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "InputError: writing the per-pixel layers in " in done.stdout and "farmcredit-scratch-pixels-" in done.stdout
    assert "free space there, or set TMPDIR to a folder with room" in done.stdout
