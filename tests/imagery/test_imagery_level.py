"""Imagery no metadata gives the level of is warned of when its blue over dense vegetation looks top-of-atmosphere."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.windows import Window

from farmcredit.imagery import level, open_imagery, read_window
from farmcredit.imagery.level import TOP_OF_ATMOSPHERE_BLUE, dense_vegetation_blue
from farmcredit.parcels import read_parcels
from farmcredit.pipeline import load_inputs, run_assessment

SAMPLE = Path(__file__).resolve().parents[2] / "sample_tiles"
STACK_BANDS = ("B02", "B04", "B08", "SCL")


def sample_stack(path: Path, blue_added: float = 0.0) -> Path:
    """``sample_tiles``' simulated L2A season as a described stack (DNs, SCL kept), ``blue_added`` (reflectance) on
    every B02 pixel: top-of-atmosphere haze over surface reflectance is about +0.05 in blue over vegetation."""
    imagery = open_imagery(SAMPLE / "imagery")
    height, width = imagery.shape
    cube = read_window(imagery, Window(0, 0, width, height), ("B02", "B04", "B08"), clear_classes=(4, 5, 6))
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=len(cube.dates) * 4,
                       dtype="uint16", crs=imagery.crs, transform=imagery.transform) as dataset:
        for step, day in enumerate(cube.dates):
            blue, red, nir = cube.reflectance[step]
            for position, (band, values) in enumerate(zip(STACK_BANDS, (
                    blue + blue_added, red, nir, np.where(cube.clear[step], 4, 9)), strict=True)):
                dns = values if band == "SCL" else np.round(np.nan_to_num(values) * 10_000)
                dataset.write(dns.astype("uint16"), step * 4 + position + 1)
                dataset.set_band_description(step * 4 + position + 1, f"{day.isoformat()} {band}")
    return path


def test_a_stack_of_hazy_blue_over_vegetation_is_warned_of_as_top_of_atmosphere(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An L1C stack exported without B10 (Earth Engine's B2,B3,B4,B8) was read as L2A in silence."""
    hazy = sample_stack(tmp_path / "hazy.tif", blue_added=0.05)
    with caplog.at_level(logging.WARNING):
        load_inputs(SAMPLE / "parcels.geojson", hazy, dn_offset=0)
    warned = [record.getMessage() for record in caplog.records if "top-of-atmosphere" in record.getMessage()]
    assert len(warned) == 1
    assert "hazy.tif looks like top-of-atmosphere (Level-1C) reflectance" in warned[0]
    assert f"over the {TOP_OF_ATMOSPHERE_BLUE:g} surface reflectance" in warned[0]
    assert "sen2cor" in warned[0]
    # Read with DN offset 0 from 2024: L2A read without its -1000 offset is as hazy, every band 0.1 high; the
    # warning also said only to fetch L2A, which the user may have (a review: scene folders without their items).
    assert "read without its -1000 DN offset, every band 0.1 too high: try --dn-offset -1000" in warned[0]


def test_a_float_stack_of_hazy_blue_is_not_told_to_try_a_dn_offset(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Float reflectance takes no DN offset (a stack refuses --dn-offset): the warning told it to try -1000."""
    hazy = sample_stack(tmp_path / "hazy.tif", blue_added=0.05)
    with rasterio.open(hazy) as source:
        values, profile, descriptions = source.read(), source.profile, source.descriptions
    scl = np.array(["SCL" in d for d in descriptions])
    reflectance = np.where(scl[:, None, None], values, values / 10_000).astype("float32")
    with rasterio.open(tmp_path / "float.tif", "w", **(profile | {"dtype": "float32"})) as dataset:
        dataset.write(reflectance)
        for index, description in enumerate(descriptions, start=1):
            dataset.set_band_description(index, description)
    with caplog.at_level(logging.WARNING):
        load_inputs(SAMPLE / "parcels.geojson", tmp_path / "float.tif")
    warned = [record.getMessage() for record in caplog.records if "top-of-atmosphere" in record.getMessage()]
    assert len(warned) == 1 and "--dn-offset" not in warned[0]


def test_sample_tiles_surface_reflectance_is_not_warned_of_as_a_stack_or_with_its_items(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Simulated L2A: its dense vegetation's median blue (0.045) is under the threshold; its items say L2A."""
    stack = sample_stack(tmp_path / "clear.tif")
    centres = shapely.get_coordinates(shapely.centroid(read_parcels(SAMPLE / "parcels.geojson").to_crs(
        open_imagery(stack).crs).geometry.to_numpy()))
    blue, pixels = dense_vegetation_blue(open_imagery(stack), centres, (4, 5, 6))
    assert pixels >= 1000
    assert 0.03 < blue < TOP_OF_ATMOSPHERE_BLUE - 0.01
    with caplog.at_level(logging.WARNING):
        load_inputs(SAMPLE / "parcels.geojson", stack, dn_offset=0)
        load_inputs(SAMPLE / "parcels.geojson", SAMPLE / "imagery")
    assert "top-of-atmosphere" not in caplog.text


def test_a_stack_holding_b10_is_warned_of_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """B10 already says L1C (``stack_scenes``): no second warning from the blue band. The first date's hazy blue is
    relabelled B10 and written again as B02 at the end."""
    hazy = sample_stack(tmp_path / "hazy.tif", blue_added=0.05)
    with rasterio.open(hazy) as dataset:
        descriptions = list(dataset.descriptions)
    descriptions[0] = descriptions[0].replace("B02", "B10")
    descriptions.append(descriptions[1].replace("B04", "B02"))
    with rasterio.open(hazy) as dataset:
        values = np.concatenate([dataset.read(), dataset.read(1)[None]])
        profile = dataset.profile | {"count": len(descriptions)}
    with rasterio.open(tmp_path / "with_b10.tif", "w", **profile) as dataset:
        dataset.write(values)
        for index, description in enumerate(descriptions, start=1):
            dataset.set_band_description(index, description)
    with caplog.at_level(logging.WARNING):
        load_inputs(SAMPLE / "parcels.geojson", tmp_path / "with_b10.tif", dn_offset=0)
    assert caplog.text.count("top-of-atmosphere") == 1
    assert "holds B10" in caplog.text


def test_ftw_austrias_real_surface_reflectance_is_under_the_threshold(shared_data: Path) -> None:
    """Real L2A (FTW Austria, 2 dates): dense vegetation's median blue is 0.027, well under the threshold."""
    layout = [(day, band) for day in ("2021-06-17", "2021-09-25") for band in ("B04", "B03", "B02", "B08")]
    imagery = open_imagery(shared_data / "s2" / "ftw-austria-2021" / "inference-img.tif", band_layout=layout,
                           dn_offset=0)
    height, width = imagery.shape
    centre = np.array([imagery.transform @ (width / 2, height / 2)])
    blue, pixels = dense_vegetation_blue(imagery, centre, (4, 5, 6))
    assert pixels >= 1000
    assert blue < TOP_OF_ATMOSPHERE_BLUE - 0.02


def test_train_and_evaluate_warn_of_a_labelled_stack_that_looks_top_of_atmosphere_as_assess_does(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``load_labelled_scene`` (train, evaluate, calibrate) took a Level-1C stack in silence that assess warns of."""
    from farmcredit.segmentation.data import load_labelled_scene

    for name, blue_added in (("hazy", 0.05), ("clear", 0.0)):
        (tmp_path / name).mkdir()
        stack = sample_stack(tmp_path / name / "imagery.tif", blue_added)
        with rasterio.open(stack) as dataset:
            profile = dataset.profile | {"count": 1, "dtype": "uint8", "nodata": 255}
        labels = np.full((profile["height"], profile["width"]), 255, dtype=np.uint8)
        labels[: profile["height"] // 2] = 1  # the north half crop, the south non-crop: the whole scene labelled
        labels[profile["height"] // 2 :] = 0
        with rasterio.open(tmp_path / name / "labels.tif", "w", **profile) as dataset:
            dataset.write(labels, 1)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            load_labelled_scene(tmp_path / name, dn_offset=0)
        warned = [record.getMessage() for record in caplog.records if "top-of-atmosphere" in record.getMessage()]
        assert len(warned) == (name == "hazy")
        assert all("imagery.tif looks like top-of-atmosphere (Level-1C) reflectance" in text for text in warned)


def test_evaluate_of_a_labelled_scene_warns_of_its_imagery_once_in_each_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """evaluate warned of one scene's imagery three times: as its labels were read, as its parcels' inputs were
    loaded, and as they were assessed."""
    from click.testing import CliRunner

    from farmcredit.cli import cli
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path
    from farmcredit.simulate import SimulationSpec, simulate_season

    scene = tmp_path / "hazy"  # big enough for MIN_DENSE_PIXELS of dense vegetation around its parcels
    simulate_season(scene, seed=3, spec=SimulationSpec(size_px=160, n_dates=8))
    for band in (scene / "imagery").glob("*/B02.tif"):
        with rasterio.open(band) as dataset:
            profile, dns = dataset.profile, dataset.read()
        with rasterio.open(band, "w", **profile) as dataset:
            dataset.write(dns + 500)  # 0.05 of haze in blue
    for item in (scene / "imagery").glob("*/*.json"):
        item.unlink()  # no item gives the level
    for _ in range(2):  # a run of its own each: each warns
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            done = CliRunner().invoke(cli, ["evaluate", "cnn", str(scene), "--dn-offset", "0", "--device", "cpu"])
        assert done.exit_code == 0, done.output
        warned = [record.getMessage() for record in caplog.records if "top-of-atmosphere" in record.getMessage()]
        assert len(warned) == 1 and warned[0].startswith(f"{scene / 'imagery'} looks like top-of-atmosphere")
    # The Python API's evaluate_path as the command: once (it warned twice, the command's own scope aside).
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        evaluate_path(load_cropland_model("cnn", device="cpu"), scene, dn_offset=0)
    assert sum("top-of-atmosphere" in record.getMessage() for record in caplog.records) == 1


def test_overlapping_sample_windows_count_each_pixel_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows round parcels close together (or every window of an image smaller than one) overlap: a pixel read
    by two was counted, and weighed in the median, twice (a review: a 100 x 101 px L1C stack "over 28890 clear
    pixels", its 5 dates' 9,630 read three times)."""
    monkeypatch.setattr(level, "ENOUGH_DENSE_PIXELS", 10**9)  # every window read: one holds 99,824 pixel-dates
    imagery = open_imagery(sample_stack(tmp_path / "clear.tif"))
    corner = np.array([imagery.transform @ (64, 64)])
    once = dense_vegetation_blue(imagery, corner, (4, 5, 6))
    assert dense_vegetation_blue(imagery, np.repeat(corner, 3, axis=0), (4, 5, 6)) == once
    # The 320 px image's window round column 256 is its columns 64-320: only 256-320 are new.
    both = dense_vegetation_blue(imagery, np.array([*corner, imagery.transform @ (256, 64)]), (4, 5, 6))[1]
    assert once[1] < both < 1.5 * once[1]


def hazed_copy(imagery: Path, folder: Path, days: tuple[str, ...], haze: float = 0.15) -> Path:
    """``imagery`` (scene folders) copied to ``folder``, every band of the scenes of ``days`` (yyyymmdd) blended
    ``haze`` of the way toward 0.30 reflectance, their SCL left clear: haze the scene classification missed."""
    shutil.copytree(imagery, folder)
    for band in (path for day in days for path in folder.glob(f"*_{day}_*/B*.tif")):
        with rasterio.open(band) as dataset:
            profile, dns = dataset.profile, dataset.read().astype(float)
        with rasterio.open(band, "w", **profile) as dataset:  # (1 - haze) * reflectance + haze * 0.30, offset kept
            dataset.write(np.where(dns > 0, (1 - haze) * dns + haze * 4000, 0).round().astype(profile["dtype"]))
    return folder


def test_dates_hazy_though_their_scl_calls_them_clear_are_warned_of_once_a_run_and_nothing_is_masked(
        small_season, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Haze SCL missed on peak dates moved 23 of the sample's 93 approved borrowers to decline, in silence: the
    top-of-atmosphere check pools every date, and reads only imagery of unknown level."""
    hazed = hazed_copy(small_season.imagery_dir, tmp_path / "imagery", ("20240714", "20240818"))
    with caplog.at_level(logging.WARNING), level.one_warning_per_source():
        inputs = load_inputs(small_season.parcels_path, hazed)
        again = load_inputs(small_season.parcels_path, hazed)
    assert [day.day.isoformat() for day in inputs.hazy_dates] == ["2024-07-14", "2024-08-18"]
    assert again.hazy_dates == inputs.hazy_dates
    assert all(day.blue > day.season_blue + level.HAZE_MARGIN for day in inputs.hazy_dates)
    warned = [record.getMessage() for record in caplog.records if "look hazy" in record.getMessage()]
    assert len(warned) == 1
    assert "2 date(s) of" in warned[0] and "2024-07-14 0.0" in warned[0] and "2024-08-18 0.0" in warned[0]
    assert "scene classification (SCL) called them clear" in warned[0]
    assert "health and peak NDVI may be understated" in warned[0]
    assert "--season" in warned[0] and "S2B_50SKB_20240714_0_L2A" in warned[0]
    assert "top-of-atmosphere" not in caplog.text
    assert len(inputs.imagery.scenes) == 8  # warned of and recorded, not left out


def test_half_a_seasons_dates_hazy_are_all_found(small_season, tmp_path: Path) -> None:
    """Judged against the season's median, dates hazy in half a season (a --season narrowed to its peak) raised it
    halfway to them, and none stood out: 27 sample approvals became declines without a warning."""
    days = sorted(folder.name.split("_")[2] for folder in small_season.imagery_dir.glob("*_L2A"))
    hazed = hazed_copy(small_season.imagery_dir, tmp_path / "imagery", tuple(days[-len(days) // 2:]))
    found = load_inputs(small_season.parcels_path, hazed).hazy_dates
    assert [day.day.strftime("%Y%m%d") for day in found] == days[-len(days) // 2:]


def test_no_date_of_the_clear_simulated_seasons_reads_hazy(small_season) -> None:
    """The simulated seasons' dates stand at most 0.011 over their lower quartile (``sample_tiles``' 16 dates)."""
    assert load_inputs(small_season.parcels_path, small_season.imagery_dir).hazy_dates == ()
    assert load_inputs(SAMPLE / "parcels.geojson", SAMPLE / "imagery").hazy_dates == ()


def test_neither_of_ftw_austrias_real_dates_reads_hazy(shared_data: Path) -> None:
    """Real L2A, two dates: the earlier stands 0.009 over their lower quartile."""
    layout = [(day, band) for day in ("2021-06-17", "2021-09-25") for band in ("B04", "B03", "B02", "B08")]
    imagery = open_imagery(shared_data / "s2" / "ftw-austria-2021" / "inference-img.tif", band_layout=layout,
                           dn_offset=0)
    height, width = imagery.shape
    assert level.check_atmosphere(imagery, np.array([imagery.transform @ (width / 2, height / 2)]), (4, 5, 6)) == ()


def test_the_run_record_lists_the_hazy_dates_under_the_imagery_in_batch_as_in_assess(small_season,
                                                                                   tmp_path: Path) -> None:
    """run.json said nothing of dates that read hazy; it lists each with its blue and the season's."""
    from farmcredit.batch import run_batch

    hazed = hazed_copy(small_season.imagery_dir, tmp_path / "imagery", ("20240818",))
    record = run_assessment(small_season.parcels_path, hazed, model="rule").record
    listed = record["inputs"]["imagery"]["hazy_dates"]
    assert [entry["date"] for entry in listed] == ["2024-08-18"]
    assert listed[0]["blue"] > listed[0]["season_blue"] + level.HAZE_MARGIN
    batch = run_batch(small_season.parcels_path, hazed, tmp_path / "batch", model="rule", workers=1, processes=False)
    assert batch.assessment.record["inputs"]["imagery"]["hazy_dates"] == listed
    assert run_assessment(small_season.parcels_path, small_season.imagery_dir,
                          model="rule").record["inputs"]["imagery"]["hazy_dates"] == []
