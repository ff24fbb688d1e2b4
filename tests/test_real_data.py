"""Real Sentinel-2 data from ../shared/data through the same code paths users run."""

from __future__ import annotations

import json
from pathlib import Path

import exactextract
import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine

from farmcredit.zonal import coverage_fractions, zonal_stats


def _slovenia_ndvi(shared_data: Path, tmp_path: Path) -> tuple[Path, np.ndarray, Affine]:
    """The first NDVI date of the eo-learn patch as a GeoTIFF on its real EPSG:32633 grid."""
    folder = shared_data / "s2" / "eolearn-slovenia"
    ndvi = np.load(folder / "NDVI.npy")[0, :, :, 0].astype(np.float32)
    ring = np.array(json.loads((folder / "bbox.geojson").read_text())["coordinates"][0])
    west, south, east, north = ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max()
    transform = Affine((east - west) / ndvi.shape[1], 0, west, 0, -(north - south) / ndvi.shape[0], north)
    path = tmp_path / "ndvi.tif"
    with rasterio.open(path, "w", driver="GTiff", width=ndvi.shape[1], height=ndvi.shape[0], count=1,
                       dtype="float32", crs="EPSG:32633", transform=transform, nodata=np.nan) as dst:
        dst.write(ndvi, 1)
    return path, ndvi, transform


def test_slovenia_lulc_parcel_means_match_exactextract(shared_data: Path, tmp_path: Path) -> None:
    raster, ndvi, transform = _slovenia_ndvi(shared_data, tmp_path)
    parcels = gpd.read_file(shared_data / "s2" / "eolearn-slovenia" / "LULC.gpkg")
    coverage = coverage_fractions(parcels.geometry.to_numpy(), transform, ndvi.shape)
    ours = zonal_stats(coverage, ndvi, cell_area=abs(transform.a * transform.e), percentiles=())
    theirs = exactextract.exact_extract(str(raster), parcels, ["mean", "count"], output="pandas")
    has_cells = theirs["count"].to_numpy() > 0
    assert has_cells.sum() > 50
    np.testing.assert_allclose(ours["mean"][has_cells], theirs["mean"].to_numpy()[has_cells], rtol=1e-6)
    np.testing.assert_allclose(ours["count"][has_cells], theirs["count"].to_numpy()[has_cells], rtol=1e-6)


def test_slovenia_land_use_classes_have_sane_summer_ndvi(shared_data: Path, tmp_path: Path) -> None:
    _, ndvi, transform = _slovenia_ndvi(shared_data, tmp_path)
    parcels = gpd.read_file(shared_data / "s2" / "eolearn-slovenia" / "LULC.gpkg")
    coverage = coverage_fractions(parcels.geometry.to_numpy(), transform, ndvi.shape)
    parcels["ndvi"] = zonal_stats(coverage, ndvi, cell_area=100.0, percentiles=())["mean"]
    by_class = parcels.groupby("LULC_NAME")["ndvi"].median()
    for vegetated in ("grassland", "forest"):
        assert 0.5 <= by_class[vegetated] <= 0.95, by_class.to_dict()
    assert by_class["artificial surface"] < by_class["grassland"], by_class.to_dict()


def _slovenia_scenes(shared_data: Path) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """The eo-learn km2's five reference scenes (time, band, y, x; L1C), band names, cloud-masked clear, has-data."""
    folder = shared_data / "s2" / "eolearn-slovenia"
    scenes = np.load(folder / "REFERENCE_SCENES.npy")  # (scene, y, x, band), not in timestamps.json order
    bands = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
    # Each scene's date: the NDVI.npy date its own NDVI equals.
    nir, red = scenes[..., bands.index("B08")], scenes[..., bands.index("B04")]
    ndvi_by_date = np.load(folder / "NDVI.npy")[: len(scenes), ..., 0]
    dates = [int(np.argmin([np.nanmean(np.abs((n - r) / (n + r) - d)) for d in ndvi_by_date]))
             for n, r in zip(nir, red)]
    assert sorted(dates) == list(range(len(scenes)))
    has_data = np.load(folder / "IS_DATA.npy")[dates, ..., 0] > 0
    clear = (np.load(folder / "CLM.npy")[dates, ..., 0] == 0) & has_data
    return np.moveaxis(scenes, -1, 1), bands, clear, has_data


def test_unmasked_cloudy_real_dates_are_not_refused_as_mislabelled_bands(shared_data: Path) -> None:
    """Haze and thin cloud lift blue over red as soil read with red and blue swapped does: a stack without a cloud
    mask must still pass (the km2's two cloudy dates read so on 5.7% and 15% of pixels before the check asked blue
    for 1.5x red)."""
    from farmcredit.segmentation import load_cropland_model

    reflectance, bands, clear, has_data = _slovenia_scenes(shared_data)
    cloudy = clear.mean(axis=(1, 2)) < 0.01
    assert cloudy.sum() == 2
    model = load_cropland_model("cnn", device="cpu")
    for date in np.flatnonzero(cloudy):
        assert np.isfinite(model.predict(reflectance[[date]], has_data[[date]], bands).crop_probability).all()


def test_real_bands_swapped_in_pairs_vegetation_shows_are_refused_and_as_named_are_not(shared_data: Path) -> None:
    """The km2's five dates, cloudy ones unmasked (top of atmosphere: blue and green swapped cannot be told there)."""
    from farmcredit.errors import InputError
    from farmcredit.segmentation.cnn import check_reflectance

    reflectance, bands, _, has_data = _slovenia_scenes(shared_data)
    check_reflectance(reflectance, has_data, bands, bands)
    for pair in (("B03", "B08"), ("B04", "B11"), ("B08", "B11")):
        swapped = tuple({pair[0]: pair[1], pair[1]: pair[0]}.get(b, b) for b in bands)
        with pytest.raises(InputError, match="bands look mislabelled: .* of clear pixels .* read as no land surface"):
            check_reflectance(reflectance, has_data, swapped, swapped)


def test_real_lake_and_late_season_fields_are_not_refused_as_bands_swapped(shared_data: Path) -> None:
    """EuroSAT SeaLake_15 (turbid water with floating vegetation, red 0.10) with its SWIR1 or, darker, its SWIR2 as
    SWIR1 (3.2% of it read as red and SWIR1 swapped when "red" of 0.1 sufficed); FTW Austria's late-September
    16 x 16 windows, one holding a senescent field (green under 0.7x red, NIR 3.4x it: 30 pixels read as green and
    red swapped when that was checked)."""
    import rasterio

    from farmcredit.segmentation.cnn import check_reflectance
    from farmcredit.segmentation.data import EUROSAT_BANDS

    with rasterio.open(shared_data / "labels" / "eurosat" / "SeaLake" / "SeaLake_15.tif") as src:
        patch = src.read().astype(np.float32) / 10_000
    bands = ("B02", "B03", "B04", "B08", "B11")
    clear = np.ones((1, *patch.shape[1:]), dtype=bool)
    for swir in ("B11", "B12"):
        lake = patch[[EUROSAT_BANDS.index(b) for b in (*bands[:-1], swir)]][None]
        check_reflectance(lake, clear, bands, bands)
    with rasterio.open(shared_data / "s2" / "ftw-austria-2021" / "inference-img.tif") as src:
        late = src.read((5, 6, 7, 8)).astype(np.float32) / 10_000
    for c0 in (496, 512):
        window = late[None, :, :16, c0 : c0 + 16]
        check_reflectance(window, np.ones((1, 16, 16), dtype=bool), ("B04", "B03", "B02", "B08"), ("B04",))


def test_cnn_calls_none_of_real_slovenian_forest_grassland_or_shrub_cropland(shared_data: Path) -> None:
    """The shipped CNN on the eo-learn km2 (Slovenia, L1C, never trained on) against the RABA land-use register.

    All five reference scenes, each with its own cloud mask: three clear (2015-07-11, 08-30, 09-09),
    two cloudy and masked. The patch holds only 11 cultivated pixels, so this checks false positives.
    """
    from farmcredit.segmentation import load_cropland_model

    reflectance, bands, clear, _ = _slovenia_scenes(shared_data)
    land_use = np.load(shared_data / "s2" / "eolearn-slovenia" / "LULC.npy")[..., 0]
    model = load_cropland_model("cnn", device="cpu")
    probability = model.predict(reflectance, clear, bands).crop_probability
    called_crop = {name: float(np.nanmean(probability[land_use == code] > 0.5))
                   for code, name in ((2, "forest"), (3, "grassland"), (4, "shrubland"))}
    assert max(called_crop.values()) < 0.05, called_crop


def test_cnn_calls_little_of_a_real_desert_tile_cropland(shared_data: Path) -> None:
    """A whole L2A tile of Mauritanian desert (29RKH, one date, 100 m pixels; no vegetation, never trained on).

    v2.5 called 99.5% of it cropland with all ten bands (P 0.999: only simulated scenes and EuroSAT taught
    it all-band input, and neither has bright bare land); v2.6, whose DEA pixels also come with B8A, 10.8%; v2.7 9.8%
    (red, green, blue and NIR alone: v2.6 10.0%, v2.7 15.6%).
    """
    from rasterio.windows import Window

    from farmcredit.imagery import open_imagery, read_window
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.card import MODEL_BANDS

    imagery = open_imagery(shared_data / "s2" / "earthsearch-29RKH-2020")
    cube = read_window(imagery, Window(0, 0, imagery.shape[1], imagery.shape[0]), MODEL_BANDS)
    model = load_cropland_model("cnn", device="cpu")
    for bands in (MODEL_BANDS, ("B02", "B03", "B04", "B08")):
        keep = [cube.bands.index(b) for b in bands]
        probability = model.predict(cube.reflectance[:, keep], cube.clear, bands).crop_probability
        seen = probability[np.isfinite(probability)]
        assert seen.size > 0.9 * probability.size and np.mean(seen >= 0.5) < 0.2, bands


def _ftw_austria_river_and_field(shared_data: Path):
    """The FTW Austria stack (two dates of red, green, blue, NIR) and two parcels on it."""
    from datetime import date

    import shapely

    from farmcredit.imagery import open_imagery

    early, late = date(2021, 6, 17), date(2021, 9, 25)
    layout = [(day, band) for day in (early, late) for band in ("B04", "B03", "B02", "B08")]
    imagery = open_imagery(shared_data / "s2" / "ftw-austria-2021" / "inference-img.tif", band_layout=layout)
    # Seen on the true-colour image: the Inn river, and a crop field north of it.
    river = shapely.box(360970, 5349170, 361030, 5349230)
    field = shapely.box(361480, 5351180, 361520, 5351220)
    return imagery, gpd.GeoDataFrame({"parcel_id": ["river", "field"]}, geometry=[river, field], crs=imagery.crs)


def test_ftw_austria_parcels_over_river_and_field_have_sane_ndvi(shared_data: Path) -> None:
    from farmcredit.pipeline import run_assessment

    imagery, parcels = _ftw_austria_river_and_field(shared_data)
    results = run_assessment(parcels, imagery).parcels.set_index("parcel_id")
    assert results.loc["river", "ndvi_peak"] < 0
    assert 0.5 <= results.loc["field", "ndvi_peak"] <= 0.95
    assert (results["clear_observations"] == 2).all()
    assert results["polygon_area_ha"].tolist() == pytest.approx([0.36, 0.16])


@pytest.mark.parametrize(("order", "cause"), [("B08,B03,B02,B04", "B04 (red) is bright"),
                                              ("B02,B03,B04,B08", "red (B04) and blue (B02) swapped")])
def test_red_swapped_with_nir_or_blue_in_a_band_layout_exits_2_naming_the_cause(
        shared_data: Path, tmp_path: Path, order: str, cause: str) -> None:
    """The stack's red, green, blue, NIR declared with red and NIR, or red and blue, swapped (the latter as a
    B02, B03, B04, B08 stack would read as named): refused, not a cropland map of nonsense (the CNN called 30% of
    the raster crop read right, 9% with red and blue swapped).

    Read as declared, the same parcels pass (the test above), the turbid Inn river among them.
    """
    import subprocess
    import sys

    _, parcels = _ftw_austria_river_and_field(shared_data)
    parcels.to_file(tmp_path / "parcels.gpkg")
    swapped = ";".join(f"{day}:{order}" for day in ("2021-06-17", "2021-09-25"))
    done = subprocess.run([sys.executable, "-m", "farmcredit", "assess", str(tmp_path / "parcels.gpkg"), "--imagery",
                           str(shared_data / "s2" / "ftw-austria-2021" / "inference-img.tif"), "--bands", swapped,
                           "--out", str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    assert "bands look mislabelled" in done.stderr and cause in " ".join(done.stderr.split())


def test_cnn_on_real_two_date_rgbn_imagery_tells_the_field_from_the_river(shared_data: Path) -> None:
    """The shipped CNN on real Sentinel-2 it never saw (Austria, 4 bands, 2 dates), through assess.

    The rule gives no probability from two dates (FEW_CLEAR_OBSERVATIONS); the CNN does: certain the
    river is not cropland on those dates, the field possibly all cultivated (two RGBN dates; v2.7 says 100%, interval
    31-100%; v2.6 75%, 0-100%; v2.5 100%, v2.2 25%), never sure it is not. The two dates (17 June, 25 September)
    miss every crop's green weeks, so what reads bare on them may be sown after them (SEASON_MISSES_CROP): the
    river's interval reaches its outline, its fallow call with no confidence (its top was 0 before that).
    """
    from farmcredit.pipeline import run_assessment
    from farmcredit.segmentation import load_cropland_model

    imagery, parcels = _ftw_austria_river_and_field(shared_data)
    model = load_cropland_model("cnn", device="cpu")
    results = run_assessment(parcels, imagery, model=model).parcels.set_index("parcel_id")
    river = results.loc["river"]
    assert river["cultivated_fraction"] == 0.0 == river["cultivated_area_low_ha"] == river["cultivated_area_ha"]
    assert "SEASON_MISSES_CROP" in river["reason_all"] and np.isnan(river["crop_confidence"])
    assert river["cultivated_area_high_ha"] == pytest.approx(river["polygon_area_ha"])
    assert results.loc["field", "cultivated_fraction"] > 0.0
    assert results.loc["field", "cultivated_area_high_ha"] == pytest.approx(results.loc["field", "polygon_area_ha"])
    assert (results["model_version"] == model.name).all()
