"""open_imagery on Earth Search-layout folders: discovery, metadata, offsets, season, errors."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import vrt_of, write_raster
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import calculate_default_transform, reproject
from rasterio.windows import Window
from safe_products import write_safe
from servers import Fault, StacServer

from farmcredit.errors import ImageryError, InputError
from farmcredit.imagery import open_imagery, read_window, within_season
from farmcredit.imagery.earthsearch import scene_from_item


def test_a_band_file_that_is_a_gdal_vrt_is_refused(season_folder: Path, tmp_path: Path) -> None:
    """GDAL reads by content: a VRT named B04.tif would read a file outside the imagery folder (or a URL)."""
    band = next(season_folder.rglob("B04.tif"))
    private = tmp_path / "private.tif"
    shutil.move(band, private)
    band.write_text(vrt_of(private))
    with pytest.raises(InputError, match=r"B04.tif is a GDAL VRT .*, not a GeoTIFF file"):
        open_imagery(season_folder)


def test_scenes_are_found_recursively_and_sorted_by_time(season_folder: Path) -> None:
    imagery = open_imagery(season_folder)

    assert [scene.scene_id for scene in imagery.scenes] == [
        "S2A_50SKA_20200610_0_L2A",
        "S2A_50SKA_20230801_0_L2A",
        "S2B_50SKA_20240315_0_L2A",
    ]
    assert imagery.scenes[0].acquired == datetime(2020, 6, 10, 3, 10, 2, tzinfo=timezone.utc)
    assert imagery.scenes[0].cloud_cover == 12.5
    assert imagery.source == str(season_folder)


def test_grid_is_the_10m_grid_and_bands_exclude_scl(season_folder: Path) -> None:
    imagery = open_imagery(season_folder)

    assert imagery.crs.to_epsg() == 32650
    assert imagery.transform == from_origin(500_000.0, 4_000_000.0, 10, 10)
    assert imagery.shape == (12, 12)
    assert imagery.bands == ("B01", "B02", "B03", "B04", "B05", "B08", "B8A", "B11")
    assert imagery.has_scl


def test_relative_hrefs_resolve_against_the_item(season_folder: Path) -> None:
    scene = open_imagery(season_folder).scenes[0]
    folder = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A"

    assert scene.band_paths["B04"] == (str(folder / "B04.tif"), 1)
    assert scene.band_paths["SCL"] == (str(folder / "SCL.tif"), 1)


def test_offset_follows_baseline_and_boa_offset_applied(season_folder: Path) -> None:
    offsets = {scene.scene_id: scene.dn_offset for scene in open_imagery(season_folder).scenes}

    assert offsets == {
        "S2A_50SKA_20200610_0_L2A": 0.0,  # baseline 02.14
        "S2A_50SKA_20230801_0_L2A": 0.0,  # 05.09 but earthsearch:boa_offset_applied
        "S2B_50SKA_20240315_0_L2A": -1000.0,  # 05.10, not applied
    }
    assert {scene.dn_scale for scene in open_imagery(season_folder).scenes} == {1e-4}


def test_explicit_raster_bands_offset_agrees_with_the_rule(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    write_scene(
        tmp_path / "S2B_50SKA_20240315_0_L2A",
        acquired=datetime(2024, 3, 15),
        baseline="05.10",
        raster_offset=-0.1,
    )

    assert open_imagery(tmp_path).scenes[0].dn_offset == -1000.0


def test_boa_offset_applied_overrides_the_raster_bands_offset_earth_search_publishes(
    tmp_path: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Earth Search's items from 2022 on say the offset is applied and still give raster:bands offset -0.1: the flag
    is the truth, or -1000 DN would be taken off twice (NDVI over 1)."""
    write_scene(
        tmp_path / "S2B_50SKA_20240315_0_L2A",
        acquired=datetime(2024, 3, 15),
        baseline="05.10",
        offset_applied=True,
        raster_offset=-0.1,
    )

    with caplog.at_level(logging.INFO):
        scene = open_imagery(tmp_path).scenes[0]

    assert scene.dn_offset == 0.0
    assert "overridden by earthsearch:boa_offset_applied" in caplog.text


def test_explicit_raster_bands_offset_wins_and_the_conflict_is_logged(
    tmp_path: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    write_scene(
        tmp_path / "S2B_50SKA_20240315_0_L2A",
        acquired=datetime(2024, 3, 15),
        baseline="05.10",
        offset_applied=None,
        raster_offset=0.0,
    )

    with caplog.at_level(logging.WARNING):
        scene = open_imagery(tmp_path).scenes[0]

    assert scene.dn_offset == 0.0
    assert "disagrees" in caplog.text


@pytest.mark.parametrize(("text", "microseconds"), [
    ("2024-03-15T03:20:11.1Z", 100000),
    ("2024-03-15T03:20:11.12345Z", 123450),
    ("2024-03-15T03:20:11.1234567Z", 123456),
    ("2024-03-15T11:20:11.5+08:00", 500000),
    ("2024-03-15T03:20:11", 0),  # no offset: UTC, as STAC says
])
def test_item_times_with_any_fraction_of_a_second_or_offset_read_as_utc(tmp_path: Path, text: str,
                                                                        microseconds: int) -> None:
    """Python 3.10's fromisoformat refuses a fraction of other than 3 or 6 digits, which 3.11 reads."""
    base = "https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/50/S/KA"
    item = {"type": "Feature", "id": "S2B_50SKA_20240315_0_L2A",
            "properties": {"datetime": text, "s2:processing_baseline": "05.10"},
            "assets": {"red": {"href": f"{base}/B04.tif"}, "nir": {"href": f"{base}/B08.tif"}}}

    scene = scene_from_item(tmp_path / "item.json", item)

    assert scene.acquired == datetime(2024, 3, 15, 3, 20, 11, microseconds, tzinfo=timezone.utc)
    assert scene.acquired.tzinfo == timezone.utc


def test_remote_hrefs_of_a_local_item_read_the_copy_beside_it_and_never_the_network(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "B04.tif").write_bytes(b"")
    base = "https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/50/S/KA"
    item = {
        "type": "Feature",
        "id": "S2B_50SKA_20240315_0_L2A",
        "properties": {"datetime": "2024-03-15T03:20:11Z", "s2:processing_baseline": "05.10"},
        "assets": {
            "red": {"href": f"{base}/B04.tif"},
            "nir": {"href": f"{base}/B08.tif?token=secret"},
            "swir16": {"href": "s3://sentinel-cogs/sentinel-s2-l2a-cogs/50/S/KA/B11.tif"},
            "red-jp2": {"href": "s3://sentinel-s2-l2a/tiles/50/S/KA/B04.jp2"},
            "thumbnail": {"href": f"{base}/thumbnail.jpg"},
        },
    }

    with caplog.at_level(logging.WARNING):
        scene = scene_from_item(tmp_path / "item.json", item)

    assert scene.band_paths == {"B04": (str(tmp_path / "B04.tif"), 1)}
    assert f"B08 ({base}/B08.tif: remote, and no B08.tif beside the item)" in caplog.text
    assert "B11 (s3://sentinel-cogs/sentinel-s2-l2a-cogs/50/S/KA/B11.tif: remote, and no B11.tif" in caplog.text
    assert "secret" not in caplog.text
    assert scene.dn_offset == -1000.0
    assert scene.cloud_cover is None


def _jp2_driver() -> bool:
    with rasterio.Env() as env:
        return "JP2OpenJPEG" in env.drivers()


@pytest.mark.skipif(not _jp2_driver(), reason="this GDAL build has no JP2OpenJPEG driver")
def test_a_date_folder_of_jp2_band_files_is_read_as_one_of_geotiffs(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """B04.jp2 ... SCL.jp2 (bands copied flat into a date folder) were skipped in silence, dropping the date from the
    season. Beside GeoTIFFs of the same bands, the GeoTIFFs are read (both asset kinds of an item downloaded)."""
    tif = write_scene(tmp_path / "tif" / "2024-06-17", acquired=datetime(2024, 6, 17), with_item=False)
    (tmp_path / "jp2" / "2024-06-17").mkdir(parents=True)
    for band_file in sorted(tif.glob("*.tif")):
        with rasterio.open(band_file) as source:
            profile = {key: source.profile[key] for key in ("width", "height", "count", "dtype", "crs", "transform",
                                                             "nodata")}
            with rasterio.open(tmp_path / "jp2" / "2024-06-17" / f"{band_file.stem}.jp2", "w", driver="JP2OpenJPEG",
                               QUALITY=100, REVERSIBLE="YES", **profile) as out:
                out.write(source.read())

    jp2 = open_imagery(tmp_path / "jp2", dn_offset=0)
    reference = open_imagery(tmp_path / "tif", dn_offset=0)

    assert [scene.scene_id for scene in jp2.scenes] == ["2024-06-17"] and jp2.bands == reference.bands
    window = Window(0, 0, *reversed(reference.shape))
    read, expected = read_window(jp2, window), read_window(reference, window)
    np.testing.assert_array_equal(read.reflectance, expected.reflectance)
    np.testing.assert_array_equal(read.clear, expected.clear)
    for band_file in (tmp_path / "jp2" / "2024-06-17").glob("*.jp2"):
        (tif / band_file.name).write_bytes(band_file.read_bytes())
    both = open_imagery(tmp_path / "tif", dn_offset=0)
    assert {Path(path).suffix for path, _ in both.scenes[0].band_paths.values()} == {".tif"}


def test_a_folder_of_band_files_declaring_their_offset_in_gdal_tags_is_read_with_it(
    tmp_path: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Band files of DNs whose GDAL tags declare reflectance = DN * 1e-4 - 0.1 were read with offset 0 (0.1 too
    bright); 8-bit band files are refused."""
    folder = write_scene(tmp_path / "s2" / "2024-06-17", acquired=datetime(2024, 6, 17), with_item=False)
    for band_file in folder.glob("B*.tif"):
        with rasterio.open(band_file, "r+") as dataset:
            dataset.scales, dataset.offsets = (1e-4,), (-0.1,)

    with caplog.at_level(logging.WARNING):
        scene = open_imagery(tmp_path / "s2").scenes[0]

    assert (scene.dn_scale, scene.dn_offset) == (1e-4, -1000.0)
    assert "DN offset 0" not in caplog.text
    with pytest.raises(ImageryError, match="which --dn-offset 0 .* contradicts"):
        open_imagery(tmp_path / "s2", dn_offset=0)
    eight_bit = tmp_path / "u8" / "2024-06-17"
    for band in ("B04", "B08"):
        write_raster(eight_bit / f"{band}.tif", np.full((12, 12), 60, np.uint8), 10)
    with pytest.raises(ImageryError, match="8-bit imagery is a display product"):
        open_imagery(tmp_path / "u8")


def test_folders_without_item_are_dated_by_name_and_take_dn_offset(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    for name in ("2024-05-01", "20240611", "S2B_50SKA_20240315_0_L2A"):
        write_scene(
            tmp_path / name,
            acquired=datetime(2000, 1, 1),
            with_item=False,
            file_names="asset_key",
            bands=("B04", "B08", "SCL"),
        )

    imagery = open_imagery(tmp_path, dn_offset=-1000)

    assert [scene.acquired.date() for scene in imagery.scenes] == [
        date(2024, 3, 15),
        date(2024, 5, 1),
        date(2024, 6, 11),
    ]
    assert imagery.scenes[1].band_paths["B04"] == (str(tmp_path / "2024-05-01" / "red.tif"), 1)
    assert imagery.bands == ("B04", "B08")
    assert imagery.has_scl
    assert {scene.dn_offset for scene in imagery.scenes} == {-1000.0}
    assert {scene.cloud_cover for scene in imagery.scenes} == {None}


def test_a_folder_without_an_item_beside_items_giving_an_offset_needs_one(
    season_folder: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Read with 0 beside a date whose item gives -1000 (baseline 05.10), it would be 0.1 brighter: say which."""
    # Before the season's first item giving -1000 (2024-03-15), a folder is as likely 0 as its neighbours: read so.
    write_scene(season_folder / "2021-11-01", acquired=datetime(2021, 11, 1), with_item=False)
    assert open_imagery(season_folder).scenes[1].dn_offset == 0
    write_scene(season_folder / "2024-03-20", acquired=datetime(2024, 3, 20), with_item=False)
    with pytest.raises(ImageryError, match=r"1 scene folder\(s\) without a STAC item \(2024-03-20\) have no DN "
                                           r"offset to read, while the season's items from 2024-03-15 give -1000 .* "
                                           r"--dn-offset \(dn_offset= in Python\): -1000 for products of baseline "
                                           r"04.00 or later"):
        open_imagery(season_folder)
    # Another tile of the item's own day (its folder dated midnight, the item at 03:20): a mosaic seam of 0.1.
    write_scene(season_folder / "S2B_50SKB_20240315", acquired=datetime(2024, 3, 15), with_item=False)
    with pytest.raises(ImageryError, match=r"2 scene folder\(s\) without a STAC item \(2024-03-20, "
                                           r"S2B_50SKB_20240315\)"):
        open_imagery(season_folder)
    shutil.rmtree(season_folder / "S2B_50SKB_20240315")
    assert open_imagery(season_folder, dn_offset=-1000).scenes[-1].dn_offset == -1000
    with caplog.at_level(logging.WARNING):  # alone, dated in baseline 04.00's time: most likely -1000
        scenes = open_imagery(season_folder, season=(date(2024, 3, 16), date(2024, 12, 31))).scenes
    assert [(scene.scene_id, scene.dn_offset) for scene in scenes] == [("2024-03-20", 0.0)]
    assert "1 scene folder(s) without a STAC item (2024-03-20) are read with DN offset 0" in caplog.text \
        and "pass --dn-offset -1000 (dn_offset=-1000 in Python)" in caplog.text


def test_a_dn_offset_no_scene_reads_is_warned_of_as_ignored(
    season_folder: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """`assess --dn-offset 500` on scenes whose STAC items give their offsets ran with the items' -1000 and said
    nothing: warned of once, naming the offsets read instead, as an unused --parcels-crs is; a folder without an item
    reads it, and nothing is said."""
    with caplog.at_level(logging.WARNING):
        scenes = open_imagery(season_folder, dn_offset=500).scenes
    assert sorted(scene.dn_offset for scene in scenes) == [-1000.0, 0.0, 0.0]
    told = [record.getMessage() for record in caplog.records if "--dn-offset" in record.getMessage()]
    assert told == [f"{season_folder}: every scene's STAC item or SAFE metadata gives its DN offset (-1000, 0): "
                    "--dn-offset 500 (dn_offset= in Python) is ignored"]
    caplog.clear()
    write_scene(season_folder / "2024-03-20", acquired=datetime(2024, 3, 20), with_item=False)
    with caplog.at_level(logging.WARNING):
        assert open_imagery(season_folder, dn_offset=500).scenes[-1].dn_offset == 500
    assert "is ignored" not in caplog.text


def test_a_folder_without_an_item_dated_before_baseline_04_is_warned_of(
    season_folder: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Collection 1 reprocessed pre-2022 acquisitions to baseline 05.00 (-1000 DN): a 2021 folder of DNs without an
    item may carry the offset as surely as a 2024 one, so it is warned of, not read with 0 in silence."""
    write_scene(season_folder / "2021-11-01", acquired=datetime(2021, 11, 1), with_item=False)
    with caplog.at_level(logging.WARNING):
        scenes = open_imagery(season_folder, season=(date(2020, 1, 1), date(2023, 12, 31))).scenes
    assert len(scenes) == 3 and scenes[1].dn_offset == 0
    assert "1 scene folder(s) without a STAC item (2021-11-01) are read with DN offset 0" in caplog.text
    assert "older ones reprocessed as Collection 1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # told its offset, nothing to warn of
        open_imagery(season_folder, season=(date(2020, 1, 1), date(2023, 12, 31)), dn_offset=0)
    assert "DN offset 0" not in caplog.text


def test_a_folder_of_float_band_files_is_reflectance(
    season_folder: Path, write_scene: Callable[..., Path], tmp_path: Path
) -> None:
    """Float band files (SNAP, openEO, a FLOAT32 export) hold reflectance 0-1: read at scale 1 and offset 0, beside
    items giving -1000 with no offset to ask for, --dn-offset applying to the folders of DNs beside them; float
    files holding DNs (an Earth Engine export cast to float) are DNs; a folder mixing floats and integers is
    refused."""
    def as_float(folder: Path, scale: float, offset: float) -> None:
        for band in ("B04", "B08"):
            with rasterio.open(folder / f"{band}.tif") as dataset:
                dns, profile = dataset.read(1), dataset.profile
            with rasterio.open(folder / f"{band}.tif", "w", **(profile | {"dtype": "float32", "nodata": None})) as out:
                out.write(np.where(dns == 0, np.nan, (dns.astype(np.float32) + offset) * scale), 1)

    dated = season_folder / "2024-03-20"
    write_scene(dated, acquired=datetime(2024, 3, 20), with_item=False, bands=("B04", "B08", "SCL"))
    as_float(dated, 1e-4, -1000)

    imagery = open_imagery(season_folder)
    scene = imagery.scenes[-1]
    assert (scene.scene_id, scene.dn_scale, scene.dn_offset) == ("2024-03-20", 1.0, 0.0)
    cube = read_window(imagery, Window(0, 0, 12, 12), ("B04", "B08"))
    with rasterio.open(dated / "B04.tif") as dataset:
        expected = dataset.read(1)
    np.testing.assert_allclose(cube.reflectance[-1, 0], expected, rtol=1e-6)
    assert 0.05 < np.nanmedian(cube.reflectance[-1]) < 1
    write_scene(season_folder / "2024-03-25", acquired=datetime(2024, 3, 25), with_item=False, bands=("B04", "B08"))
    as_float(write_scene(season_folder / "2024-03-30", acquired=datetime(2024, 3, 30), with_item=False,
                         bands=("B04", "B08")), 1, 0)
    offsets = {s.scene_id: (s.dn_offset, s.dn_scale) for s in open_imagery(season_folder, dn_offset=-1000).scenes}
    assert [offsets[day] for day in ("2024-03-20", "2024-03-25", "2024-03-30")] == [
        (0.0, 1.0), (-1000.0, 1e-4), (-1000.0, 1e-4)]
    write_scene(tmp_path / "mixed" / "2024-03-20", acquired=datetime(2024, 3, 20), with_item=False,
                bands=("B03", "B04", "B08"))
    shutil.copy(dated / "B04.tif", tmp_path / "mixed" / "2024-03-20" / "B04.tif")
    with pytest.raises(ImageryError, match=r"mixes integer and float reflectance bands \(\['float32', 'uint16'\]\)"):
        open_imagery(tmp_path / "mixed")
    # Beside its STAC item (baseline 05.10: -1000 DN), a scene's local files saved as reflectance are reflectance.
    with_item = season_folder / "2024" / "S2B_50SKA_20240315_0_L2A"

    def item_scene() -> tuple[float, float]:
        scene = next(s for s in open_imagery(season_folder, dn_offset=-1000).scenes if s.scene_id == with_item.name)
        return scene.dn_offset, scene.dn_scale

    assert item_scene() == (-1000.0, 1e-4)
    for band in ("B01", "B02", "B03", "B05", "B8A", "B11"):
        (with_item / f"{band}.tif").unlink()
    as_float(with_item, 1e-4, -1000)
    assert item_scene() == (0.0, 1.0)


def test_items_of_one_folder_reading_one_local_band_file_are_refused(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """A flat download: each item's https hrefs find their local copy by file name, each date's B04.tif written
    over the last, so every date would read the last one's pixels."""
    for day in (10, 20):
        folder = write_scene(tmp_path / "flat", acquired=datetime(2024, 6, day), bands=("B04", "B08", "SCL"))
        item_path = folder / "flat.json"
        item = json.loads(item_path.read_text())
        item["id"] = f"S2B_50SKA_202406{day}_0_L2A"
        for asset in item["assets"].values():
            asset["href"] = f"https://example.com/{item['id']}/{asset['href'][2:]}"
        item_path.rename(folder / f"{item['id']}.json").write_text(json.dumps(item))

    with pytest.raises(ImageryError, match=r"flat: items S2B_50SKA_20240610_0_L2A and S2B_50SKA_20240620_0_L2A both "
                                           r"read B04.tif \(B04\), so both dates would get one date's pixels"):
        open_imagery(tmp_path / "flat")
    (tmp_path / "flat" / "S2B_50SKA_20240610_0_L2A.json").unlink()
    assert [scene.band_paths["B04"][0] for scene in open_imagery(tmp_path / "flat").scenes] == [
        str(tmp_path / "flat" / "B04.tif")]


def test_season_keeps_scenes_within_inclusive_bounds(season_folder: Path) -> None:
    imagery = open_imagery(season_folder, season=(date(2023, 8, 1), date(2024, 3, 15)))

    assert [scene.acquired.date() for scene in imagery.scenes] == [
        date(2023, 8, 1),
        date(2024, 3, 15),
    ]


@pytest.mark.parametrize("season", ["2023-08-01/2024-03-15", ("2023-08-01", "2024-03-15"),
                                    (datetime(2023, 8, 1), pd.Timestamp("2024-03-15 12:00"))],
                         ids=["start-end", "iso-pair", "datetime-timestamp"])
def test_a_season_is_taken_in_the_forms_assess_takes(season_folder: Path, season: object) -> None:
    """ISO text, datetimes and Timestamps were raw TypeErrors, START/END a ValueError (too many values to unpack)."""
    dates = (date(2023, 8, 1), date(2024, 3, 15))
    opened = open_imagery(season_folder)

    assert open_imagery(season_folder, season=season) == open_imagery(season_folder, season=dates)
    assert within_season(opened, season) == within_season(opened, dates)


@pytest.mark.parametrize("season", ["2023-08-01", ("2023-08-01",), ("2024-03-15", "2023-08-01"), (1, 2)])
def test_a_season_that_is_not_one_is_an_input_error(season_folder: Path, season: object) -> None:
    opened = open_imagery(season_folder)
    for narrow in (lambda: open_imagery(season_folder, season=season), lambda: within_season(opened, season)):
        with pytest.raises(InputError, match=r"season .*\(--season START/END, season= in Python\)"):
            narrow()


def test_a_season_without_scenes_is_an_error(season_folder: Path) -> None:
    with pytest.raises(ImageryError, match="2021-01-01..2021-12-31"):
        open_imagery(season_folder, season=(date(2021, 1, 1), date(2021, 12, 31)))


def test_a_season_narrows_imagery_opened_already_as_opening_it_for_the_season_does(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """The bands, SCL and unopened files are the kept scenes'; a season without scenes is the same error."""
    write_scene(tmp_path / "S2A_50SKA_20230801_0_L2A", acquired=datetime(2023, 8, 1))
    thin = write_scene(tmp_path / "S2A_50SKA_20230811_0_L2A", acquired=datetime(2023, 8, 11),
                       bands=("B02", "B03", "B04", "B08", "B8A"))
    (thin / "B8A.tif").write_bytes(b"this is not a GeoTIFF\x00\x01" * 20)
    opened = open_imagery(tmp_path)
    assert not opened.has_scl and opened.bands == ("B02", "B03", "B04", "B08", "B8A") and opened.unopened
    august_first = (date(2023, 8, 1), date(2023, 8, 5))
    narrowed = within_season(opened, august_first)
    assert narrowed == open_imagery(tmp_path, season=august_first)
    assert narrowed.has_scl and "B11" in narrowed.bands and not narrowed.unopened
    assert within_season(opened, (date(2023, 8, 1), date(2023, 8, 31))) == opened
    with pytest.raises(ImageryError, match=f"{tmp_path}: none of the 2 scenes was acquired within 2021-01-01"):
        within_season(opened, (date(2021, 1, 1), date(2021, 12, 31)))


def test_a_season_holding_no_scene_says_when_the_scenes_are(tmp_path: Path, write_scene: Callable[..., Path]) -> None:
    """Last season's --season rerun on this season's folder said only that no scene fell within it, not when the
    scenes are: the dates the user needs to give."""
    for day in (date(2025, 3, 1), date(2025, 10, 27), date(2025, 6, 1)):
        write_scene(tmp_path / f"S2A_50SKA_{day:%Y%m%d}_0_L2A", acquired=datetime(day.year, day.month, day.day))
    with pytest.raises(ImageryError, match=r"none of the 3 scenes was acquired within 2024-03-01\.\.2024-10-31; its "
                                           r"scenes run 2025-03-01\.\.2025-10-27: give a --season"):
        open_imagery(tmp_path, season=(date(2024, 3, 1), date(2024, 10, 31)))


def test_a_season_after_the_last_scene_says_there_is_no_imagery_of_it_yet(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """A season after every scene was told to give a --season within the scenes' dates: an earlier year's crops,
    lent on as this season's. It is told to fetch this season's imagery instead."""
    for day in (date(2024, 3, 1), date(2024, 10, 27)):
        write_scene(tmp_path / f"S2A_50SKA_{day:%Y%m%d}_0_L2A", acquired=datetime(day.year, day.month, day.day))
    with pytest.raises(ImageryError, match=r"within 2027-03-01\.\.2027-10-31; its scenes run 2024-03-01\.\.2024-10-27: "
                                           r"it holds no imagery of this season yet; fetch it \(farmcredit fetch "
                                           r"PARCELS --season 2027-03-01/2027-10-31 --source stac "
                                           r"--out FOLDER\)") as raised:
        open_imagery(tmp_path, season=(date(2027, 3, 1), date(2027, 10, 31)))
    assert "within them" not in str(raised.value)


def test_a_season_narrowing_imagery_opened_already_drops_what_opening_it_for_the_season_drops(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """A band whose one good file is out of the season is read on no date of it (kept, it failed on every date and
    referred every parcel), and a scene left out of the whole year is not named as left out of the season."""
    for day in (1, 11):
        scene = write_scene(tmp_path / f"S2A_50SKA_202308{day:02d}_0_L2A", acquired=datetime(2023, 8, day))
        (scene / "B8A.tif").write_bytes(b"this is not a GeoTIFF\x00\x01" * 20)
    write_scene(tmp_path / "S2A_50SKA_20230901_0_L2A", acquired=datetime(2023, 9, 1))
    october = write_scene(tmp_path / "S2A_50SKA_20231001_0_L2A", acquired=datetime(2023, 10, 1))
    for band in ("B02", "B03", "B04", "B08"):
        (october / f"{band}.tif").write_bytes(b"cut short")
    opened = open_imagery(tmp_path)
    assert "B8A" in opened.bands and [scene_id for scene_id, _ in opened.left_out] == [october.name]
    august = (date(2023, 8, 1), date(2023, 8, 31))
    narrowed = within_season(opened, august)
    assert narrowed == open_imagery(tmp_path, season=august)
    assert "B8A" not in narrowed.bands and not narrowed.left_out


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ImageryError, match="does not exist") as raised:
        open_imagery(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(raised.value)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ImageryError, match="no Sentinel-2 scenes found"):
        open_imagery(tmp_path / "empty")


def test_a_band_file_gdal_cannot_open_is_listed_and_fails_where_it_is_read(
    season_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = season_folder / "2023" / "S2A_50SKA_20230801_0_L2A" / "B8A.tif"
    garbage.write_bytes(b"this is not a GeoTIFF\x00\x01" * 20)

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder)

    assert len(imagery.scenes) == 3 and "B8A" in imagery.bands
    ((scene_id, band, path, message),) = imagery.unopened
    assert (scene_id, band, path) == ("S2A_50SKA_20230801_0_L2A", "B8A", str(garbage)) and "not recognized" in message
    assert "band B8A: GDAL cannot open its file in 1 scene(s)" in caplog.text and str(garbage) in caplog.text
    cube = read_window(imagery, Window(0, 0, 4, 4), bands=("B04", "B8A"))
    assert [error[:2] for error in cube.read_errors] == [("S2A_50SKA_20230801_0_L2A", str(garbage))]
    assert not cube.clear[1].any() and cube.clear[[0, 2]].any()


def _unlistable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """os.scandir refuses ``folder`` as the system refuses a folder without read permission (chmod 000 would not do:
    root, who may run these tests, lists any folder)."""
    scandir = os.scandir

    def refusing(path: str | os.PathLike[str] = ".") -> Iterator[os.DirEntry]:
        if os.fspath(path) == str(folder):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)


def _unsearchable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """os.stat refuses what is in ``folder`` as the system does in a folder with read but no search permission
    (chmod 444): it lists, yet nothing in it can be looked at (root, who may run these tests, looks at anything)."""
    stat = os.stat

    def refusing(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        if os.path.dirname(os.fspath(path)) == str(folder):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", refusing)


@pytest.mark.parametrize("refuse", [_unlistable, _unsearchable])
def test_a_scene_folder_that_cannot_be_listed_is_warned_of_and_kept_for_run_json(
    season_folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    refuse: Callable[[pytest.MonkeyPatch, Path], None]
) -> None:
    """Skipped in silence, an unreadable date folder (the sample's one cloud-free date) moved decisions (488/173/91 to
    488/158/106) with run.json listing nothing wrong. One that lists but cannot be searched (chmod 444) stopped the run
    with PermissionError (exit 1)."""
    folder = season_folder / "2023" / "S2A_50SKA_20230801_0_L2A"
    refuse(monkeypatch, folder)

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder)

    assert [scene.scene_id for scene in imagery.scenes] == ["S2A_50SKA_20200610_0_L2A", "S2B_50SKA_20240315_0_L2A"]
    assert imagery.unread_folders == ((str(folder), "Permission denied"),)
    assert f"{folder}: folder under the imagery cannot be listed (Permission denied)" in caplog.text
    assert within_season(imagery, (date(2020, 1, 1), date(2024, 12, 31))).unread_folders == imagery.unread_folders


def test_a_drives_lost_and_found_is_not_warned_of(
    season_folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An ext4 drive's root given as the imagery warned of its lost+found (root's only) on every run, advising to move
    it."""
    (season_folder / "lost+found").mkdir()
    _unlistable(monkeypatch, season_folder / "lost+found")

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder)

    assert len(imagery.scenes) == 3 and imagery.unread_folders == ()
    assert "lost+found" not in caplog.text


def test_an_imagery_folder_that_cannot_be_listed_is_an_error_naming_it(
    season_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unlistable(monkeypatch, season_folder)

    with pytest.raises(ImageryError, match=rf"^{season_folder}: imagery folder cannot be listed \(Permission denied"):
        open_imagery(season_folder)


def test_a_band_whose_file_no_scene_has_is_read_on_no_date(
    season_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the bands a model reads were downloaded: the item's other assets are not there, and nothing is lost."""
    for unused in [*season_folder.glob("*/*/B01.tif"), *season_folder.glob("*/*/B11.tif")]:
        unused.unlink()

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder)

    assert len(imagery.scenes) == 3 and imagery.bands == ("B02", "B03", "B04", "B05", "B08", "B8A")
    assert {band for _, band, _, _ in imagery.unopened} == {"B01", "B11"} and len(imagery.unopened) == 6
    assert "band B11: GDAL can open its file in no scene" in caplog.text and "B01" not in caplog.text
    assert not read_window(imagery, Window(0, 0, 4, 4), bands=("B04", "B08")).read_errors


def test_a_scene_whose_10m_bands_gdal_cannot_open_is_left_out(
    season_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for band in season_folder.glob("2024/*/B0[2348].tif"):
        band.write_bytes(b"")

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder)

    assert [scene.scene_id for scene in imagery.scenes] == ["S2A_50SKA_20200610_0_L2A", "S2A_50SKA_20230801_0_L2A"]
    assert "scene S2B_50SKA_20240315_0_L2A: GDAL can open none of its 10 m band files" in caplog.text
    assert imagery.left_out == (("S2B_50SKA_20240315_0_L2A", "GDAL can open none of its 10 m band files B02, B03, "
                                                             "B04, B08"),)  # for run.json


def test_a_season_whose_10m_bands_gdal_cannot_open_is_an_error_with_its_message(season_folder: Path) -> None:
    for band in season_folder.glob("*/*/B0[2348].tif"):
        band.write_bytes(b"GIF89a")

    with pytest.raises(ImageryError, match="no scene has a 10 m band .* that GDAL can open") as raised:
        open_imagery(season_folder)
    assert "B02.tif: " in str(raised.value) and "not recognized" in str(raised.value)


def test_a_season_whose_scl_gdal_can_open_in_no_scene_is_an_error(season_folder: Path) -> None:
    """Dropping it would count clouds as clear."""
    for scl in season_folder.glob("*/*/SCL.tif"):
        scl.write_bytes(b"")

    with pytest.raises(ImageryError, match="no scene's SCL file .*SCL.tif: .*clouds would read as clear"):
        open_imagery(season_folder)


def test_a_mosaic_part_that_cannot_be_opened_costs_only_where_it_has_data(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """Two tiles of one date, each a folder named as the scene (one scene id): B08 broken in the west one only."""
    west, east = (write_scene(tmp_path / tile / "S2A_50SKA_20230801_0_L2A", acquired=datetime(2023, 8, 1),
                              with_item=False, origin=(500_000.0 + offset, 4_000_000.0))
                  for tile, offset in (("west", 0.0), ("east", 120.0)))
    (west / "B08.tif").write_bytes(b"")

    imagery = open_imagery(tmp_path)

    assert imagery.shape == (12, 24) and "B08" in imagery.bands and len(imagery.scenes[0].parts) == 2
    east_only = read_window(imagery, Window(14, 0, 8, 8), bands=("B04", "B08"))
    assert not east_only.read_errors and np.isfinite(east_only.reflectance).all()
    both = read_window(imagery, Window(8, 0, 8, 8), bands=("B04", "B08"))
    assert [error[1] for error in both.read_errors] == [str(west / "B08.tif")]
    assert np.isnan(both.reflectance[..., :4]).all() and np.isfinite(both.reflectance[..., 4:]).all()
    assert not both.clear[..., :4].any()


def test_scenes_without_the_scl_others_have_are_warned_of_as_unmasked(
    tmp_path: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    write_scene(tmp_path / "S2A_50SKA_20230801_0_L2A", acquired=datetime(2023, 8, 1))
    write_scene(tmp_path / "S2A_50SKA_20230811_0_L2A", acquired=datetime(2023, 8, 11),
                bands=("B02", "B03", "B04", "B08"))
    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(tmp_path)
    assert len(imagery.scenes) == 2 and not imagery.has_scl
    assert "1 scene(s) have no SCL layer, which other scenes have: their clouds are not masked" in caplog.text
    assert "S2A_50SKA_20230811_0_L2A" in caplog.text


def test_a_local_item_never_reads_a_remote_band_file_so_a_server_that_never_answers_costs_nothing(
    season_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GDAL opened an http href of a local item with no timeout: a server that never answered hung the run."""
    item_path = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A" / "S2A_50SKA_20200610_0_L2A.json"
    item = json.loads(item_path.read_text())
    (item_path.parent / "B11.tif").unlink()
    with StacServer([], {}) as server:
        server.fail("/", *[Fault(hang=True)] * 5)
        item["assets"]["swir16"]["href"] = f"{server.url}/S2A_50SKA_20200610_0_L2A/B11.tif"
        item_path.write_text(json.dumps(item))
        with caplog.at_level(logging.WARNING):
            imagery = open_imagery(season_folder)
        assert server.records == []

    scene = next(scene for scene in imagery.scenes if scene.scene_id == "S2A_50SKA_20200610_0_L2A")
    assert "B11" not in scene.band_paths and "B11" not in imagery.bands
    assert "B11.tif: remote, and no B11.tif beside the item)" in caplog.text


@pytest.mark.parametrize("where", ["absolute", "file URL", "relative"])
def test_a_local_items_href_to_a_file_outside_the_imagery_folder_is_not_read(
    season_folder: Path, tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An item's href named any file on the computer (another tenant's rasters, /etc/passwd, which run.json then
    fingerprinted): only files inside the imagery folder are read."""
    elsewhere = tmp_path / "private" / "B05.tif"
    elsewhere.parent.mkdir()
    scene_folder = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A"
    shutil.copy(scene_folder / "B05.tif", elsewhere)
    href = {"absolute": str(elsewhere), "file URL": elsewhere.as_uri(), "relative": "../../../private/B05.tif"}[where]
    item_path = scene_folder / "S2A_50SKA_20200610_0_L2A.json"
    item = json.loads(item_path.read_text())
    item["assets"]["rededge1"]["href"] = href
    item_path.write_text(json.dumps(item))

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder)

    scene = next(scene for scene in imagery.scenes if scene.scene_id == "S2A_50SKA_20200610_0_L2A")
    assert "B05" not in scene.band_paths
    assert f"B05 ({href}: outside {season_folder})" in caplog.text
    assert all(str(elsewhere) not in path for scene in imagery.scenes for path, _ in scene.band_paths.values())


@pytest.mark.parametrize("where", ["absolute", "file URL", "relative"])
def test_a_local_items_href_to_a_file_elsewhere_in_the_imagery_folder_is_read(
    season_folder: Path, where: str
) -> None:
    shared = season_folder / "shared" / "copy.tif"
    shared.parent.mkdir()
    scene_folder = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A"
    (scene_folder / "B05.tif").rename(shared)
    href = {"absolute": str(shared), "file URL": shared.as_uri(), "relative": "../../shared/copy.tif"}[where]
    item_path = scene_folder / "S2A_50SKA_20200610_0_L2A.json"
    item = json.loads(item_path.read_text())
    item["assets"]["rededge1"]["href"] = href
    item_path.write_text(json.dumps(item))

    scene = next(scene for scene in open_imagery(season_folder).scenes if scene.scene_id == "S2A_50SKA_20200610_0_L2A")

    assert scene.band_paths["B05"] == (str(shared), 1)


def test_an_unparseable_item_is_named(season_folder: Path) -> None:
    item = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A" / "S2A_50SKA_20200610_0_L2A.json"
    item.write_text(item.read_text()[:50], encoding="utf-8")

    with pytest.raises(ImageryError, match="not valid JSON") as raised:
        open_imagery(season_folder)
    assert str(item) in str(raised.value)


def test_json_nested_too_deep_to_parse_is_named_not_a_traceback(season_folder: Path) -> None:
    deep = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A" / "notes.json"
    deep.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")

    with pytest.raises(ImageryError, match="not valid JSON") as raised:
        open_imagery(season_folder)
    assert str(deep) in str(raised.value)


@pytest.mark.parametrize(("edit", "what"), [
    (lambda item: item["properties"].update({"eo:cloud_cover": "n/a"}), "ValueError"),
    (lambda item: item["assets"]["red"].update({"raster:bands": {"offset": -0.1}}), "KeyError"),
    (lambda item: item["assets"]["red"].update({"raster:bands": [{"offset": -0.1, "scale": 0}]}), "ZeroDivision"),
    (lambda item: item["assets"].update({"red": "./B04.tif"}), "AttributeError"),
])
def test_an_item_with_a_value_of_the_wrong_kind_is_named_not_a_traceback(season_folder: Path, edit, what: str) -> None:
    item_path = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A" / "S2A_50SKA_20200610_0_L2A.json"
    item = json.loads(item_path.read_text())
    edit(item)
    item_path.write_text(json.dumps(item))
    with pytest.raises(ImageryError, match=f"{item_path}: STAC item .* cannot use \\({what}"):
        open_imagery(season_folder)


@pytest.mark.parametrize("edit", [
    lambda item: item["properties"].update({"s2:product_type": "S2MSI1C"}),
    lambda item: item["properties"].update({"processing:level": "L1C"}),
    lambda item: item.update({"collection": "sentinel-2-l1c"}),
], ids=["product-type", "processing-level", "collection"])
def test_a_level_1c_item_is_refused_as_a_level_1c_safe_product_is(season_folder: Path, tmp_path: Path, edit) -> None:
    """An Earth Search L1C item (top-of-atmosphere, no SCL) names its bands as an L2A item does, and was read as L2A;
    a SAFE L1C product was refused. Both are now, in the same words."""
    item_path = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A" / "S2A_50SKA_20200610_0_L2A.json"
    item = json.loads(item_path.read_text())
    edit(item)
    item_path.write_text(json.dumps(item))
    safe = write_safe(tmp_path / "safe")
    (safe / "MTD_MSIL2A.xml").rename(safe / "MTD_MSIL1C.xml")

    with pytest.raises(ImageryError) as item_refused:
        open_imagery(season_folder)
    with pytest.raises(ImageryError) as safe_refused:
        open_imagery(safe)
    why = str(safe_refused.value).removeprefix(str(safe))
    assert why.startswith(" is Level-1C") and "needs Level-2A" in why
    assert str(item_refused.value) == f"{item_path}: STAC item S2A_50SKA_20200610_0_L2A{why}"


def test_linked_scene_folders_are_read_and_hidden_sidecar_files_skipped(season_folder: Path, tmp_path: Path) -> None:
    """A scene folder linked in was dropped in silence; macOS's ._ sidecar of an item stopped the season."""
    elsewhere = tmp_path / "elsewhere"
    (season_folder / "2023" / "S2A_50SKA_20230801_0_L2A").rename(elsewhere)
    (season_folder / "2023" / "S2A_50SKA_20230801_0_L2A").symlink_to(elsewhere, target_is_directory=True)
    (season_folder / "2023" / "back_up").symlink_to(season_folder, target_is_directory=True)  # a loop, read once
    (elsewhere / "._S2A_50SKA_20230801_0_L2A.json").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    scenes = open_imagery(season_folder).scenes
    assert [scene.scene_id for scene in scenes] == ["S2A_50SKA_20200610_0_L2A", "S2A_50SKA_20230801_0_L2A",
                                                    "S2B_50SKA_20240315_0_L2A"]


def test_a_scene_without_the_nir_file_others_have_is_left_out_not_the_band(
        tmp_path: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture) -> None:
    """Without an item a missing file is a band the scene lacks: it took B08 off every date, stopping the run. When
    as many lack it as have it, no date is left out: the band is missing, and the run says so."""
    for day in (10, 20, 30):
        write_scene(tmp_path / f"2024-03-{day}", acquired=datetime(2024, 3, day), with_item=False)
    (tmp_path / "2024-03-20" / "B08.tif").unlink()
    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(tmp_path)
    assert [scene.scene_id for scene in imagery.scenes] == ["2024-03-10", "2024-03-30"] and "B08" in imagery.bands
    assert "scene 2024-03-20 has no B08 file, which NDVI needs" in caplog.text
    assert imagery.left_out == (("2024-03-20", "no B08 file, which NDVI needs and most scenes have"),)
    write_scene(tmp_path / "2024-03-25", acquired=datetime(2024, 3, 25), with_item=False)
    (tmp_path / "2024-03-25" / "B04.tif").unlink()  # red and NIR each in three of four: both incomplete left out
    assert [scene.scene_id for scene in open_imagery(tmp_path).scenes] == ["2024-03-10", "2024-03-30"]
    (tmp_path / "2024-03-30" / "B08.tif").unlink()
    imagery = open_imagery(tmp_path)
    assert len(imagery.scenes) == 4 and "B08" not in imagery.bands


def test_a_band_file_without_a_crs_is_one_gdal_cannot_use_not_the_seasons_end(season_folder: Path) -> None:
    band = season_folder / "2023" / "S2A_50SKA_20230801_0_L2A" / "B05.tif"
    with rasterio.open(band) as source:
        pixels = source.read()
    with rasterio.open(band, "w", driver="GTiff", width=pixels.shape[2], height=pixels.shape[1], count=1,
                       dtype=pixels.dtype) as plain:  # no CRS, no transform: a picture saved as B05.tif
        plain.write(pixels)
    imagery = open_imagery(season_folder)
    assert len(imagery.scenes) == 3
    assert [(band_name, message) for _, band_name, _, message in imagery.unopened] == [
        ("B05", "has no coordinate reference system")]
    cube = read_window(imagery, Window(0, 0, 4, 4), bands=("B04", "B05"))  # read, it costs its date, no more
    assert list(cube.read_errors) == [("S2A_50SKA_20230801_0_L2A", str(band), "has no coordinate reference system")]
    assert not cube.clear[1].any() and cube.clear[[0, 2]].any()


def test_a_sentinel2_zip_cut_short_is_named_not_left_out_in_silence(season_folder: Path) -> None:
    cut = season_folder / "S2B_MSIL2A_20240401T031521_N0510_R118_T50SKB_20240401T064513.SAFE.zip"
    cut.write_bytes(b"PK\x03\x04" + b"\x00" * 500)
    with pytest.raises(ImageryError, match="a Sentinel-2 product that does not read as a zip .* cut short"):
        open_imagery(season_folder)
    season = (date(2020, 1, 1), date(2024, 3, 31))  # a product of another season does not stop this one
    assert len(open_imagery(season_folder, season).scenes) == 3
    cut.rename(season_folder / "notes.zip")  # any other zip is not imagery, and is passed over
    assert len(open_imagery(season_folder).scenes) == 3


def test_a_folder_without_a_date_is_an_error(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    write_scene(tmp_path / "my_scene", acquired=datetime(2024, 1, 1), with_item=False)

    with pytest.raises(ImageryError, match="acquisition date"):
        open_imagery(tmp_path)


def test_a_band_file_of_another_extent_than_its_scene_is_warned_of(
    season_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A B04 written 300x300 beside 320x320 siblings was read in silence, the parcels it missed losing that date with
    no reason: a band whose extent lies more than one of its own pixels off its scene's grid is warned of, naming the
    file and both extents; a 60 m or 20 m band reaching part of a pixel past a 10 m grid is not."""
    band_file = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A" / "B04.tif"
    with caplog.at_level(logging.WARNING):
        open_imagery(season_folder)
    assert "its extent" not in caplog.text
    for size, warned in ((11, False), (10, True)):  # one pixel short, within a pixel; two pixels short
        with rasterio.open(band_file) as source:
            values, profile = source.read()[:, :size, :size], source.profile | {"width": size, "height": size}
        with rasterio.open(band_file, "w", **profile) as dataset:
            dataset.write(values)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            open_imagery(season_folder)
        said = (f"{band_file}: its extent (500000.0, {4_000_000 - 10 * size:.1f}, {500_000 + 10 * size:.1f}, "
                "4000000.0) differs by more than a pixel from (500000.0, 3999880.0, 500120.0, 4000000.0) of "
                f"{band_file.with_name('B02.tif')} (west, south, east, north in EPSG:32650), which defines scene "
                "S2A_50SKA_20200610_0_L2A's grid; parcels it does not cover have no reading of it on that date")
        assert (said in caplog.text) is warned and ("its extent" in caplog.text) is warned


@pytest.mark.parametrize("band", ["B05", "B02"])  # a 20 m band; one of the 10 m bands that define the grid
def test_a_band_file_in_another_crs_is_read_where_it_lies_not_the_seasons_end(
    season_folder: Path, band: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A band exported in another projection (it used to stop the run); the grid stays its scene's other bands'."""
    band_file = season_folder / "2020" / "S2A_50SKA_20200610_0_L2A" / f"{band}.tif"
    window = Window(0, 0, 8, 8)
    before = read_window(open_imagery(season_folder), window, bands=(band,)).reflectance[:, 0]
    with rasterio.open(band_file) as source:
        transform, width, height = calculate_default_transform(
            source.crs, "EPSG:32651", source.width, source.height, *source.bounds, resolution=1.0)
        crs = rasterio.crs.CRS.from_epsg(32651)
        profile = source.profile | {"crs": crs, "transform": transform, "width": width, "height": height}
        values = np.zeros((1, height, width), dtype=profile["dtype"])
        reproject(source.read(), values, src_transform=source.transform, src_crs=source.crs,
                  dst_transform=transform, dst_crs=crs, resampling=Resampling.nearest)
    with rasterio.open(band_file, "w", **profile) as dataset:
        dataset.write(values)

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder)

    assert len(imagery.scenes) == 3 and band in imagery.bands and imagery.crs == "EPSG:32650"
    assert not imagery.unopened and imagery.transform.a == 10
    assert f"{band_file}: its CRS EPSG:32651 differs from EPSG:32650 of " in caplog.text
    after = read_window(imagery, window, bands=(band,)).reflectance[:, 0]
    np.testing.assert_array_equal(after[1:], before[1:])  # the other dates as they were
    assert (after[0] == before[0]).mean() > 0.9  # this one (2020) resampled: nearest of nearest


def test_one_band_in_another_crs_does_not_move_a_scene_that_has_few_10m_bands(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    """B04 exported at 9.5 m in the next zone beside B08: the scene's other files hold its grid, not the finer."""
    for day in (1, 2):
        write_scene(tmp_path / f"2024-05-0{day}", acquired=datetime(2024, 5, day), with_item=False,
                    bands=("B04", "B08", "B05", "SCL"))
    grid = open_imagery(tmp_path, dn_offset=0).transform
    band_file = tmp_path / "2024-05-01" / "B04.tif"
    with rasterio.open(band_file) as source:
        transform, width, height = calculate_default_transform(
            source.crs, "EPSG:32651", source.width, source.height, *source.bounds, resolution=9.5)
        profile = source.profile | {"crs": "EPSG:32651", "transform": transform, "width": width, "height": height}
        values = np.zeros((1, height, width), dtype=profile["dtype"])
        reproject(source.read(), values, src_transform=source.transform, src_crs=source.crs, dst_transform=transform,
                  dst_crs="EPSG:32651", resampling=Resampling.nearest)
    with rasterio.open(band_file, "w", **profile) as dataset:
        dataset.write(values)
    imagery = open_imagery(tmp_path, dn_offset=0)
    assert imagery.crs == "EPSG:32650" and imagery.transform == grid


def test_two_files_for_one_band_are_an_error(
    tmp_path: Path, write_scene: Callable[..., Path]
) -> None:
    folder = write_scene(tmp_path / "2024-05-01", acquired=datetime(2024, 5, 1), with_item=False)
    (folder / "red.tif").write_bytes((folder / "B04.tif").read_bytes())

    with pytest.raises(ImageryError, match="look like B04"):
        open_imagery(tmp_path)


def _coarse_scene(folder: Path, red: np.ndarray) -> None:
    """A 20 m product of the fixture's tile, item-less: B02, B03, B08 at DN 2000, B04 ``red``, SCL clear."""
    folder.mkdir(parents=True)
    for band in ("B02", "B03", "B04", "B08", "SCL"):
        values = red if band == "B04" else np.full((6, 6), 4 if band == "SCL" else 2000, dtype=np.uint16)
        with rasterio.open(folder / f"{band}.tif", "w", driver="GTiff", width=6, height=6, count=1, dtype="uint16",
                           crs="EPSG:32650", transform=from_origin(500_000.0, 4_000_000.0, 20, 20)) as dataset:
            dataset.write(values[None])


def test_a_scene_off_the_pixel_lattice_of_the_others_is_read_through_its_own_grid(
    season_folder: Path, write_scene: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """It used to stop the season; it is read as a scene of another CRS is (tests/imagery/test_mosaic.py)."""
    grid = open_imagery(season_folder).transform
    # Half a 10 m pixel off, and a product of the tile resampled to 20 m.
    write_scene(season_folder / "other" / "S2A_50SKA_20220101_0_L2A", acquired=datetime(2022, 1, 1),
                origin=(500_005.0, 4_000_000.0))
    red = (1000 + np.arange(36).reshape(6, 6)).astype(np.uint16)
    _coarse_scene(season_folder / "other" / "2022-02-01", red)
    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(season_folder, dn_offset=0)
    assert len(imagery.scenes) == 5 and imagery.transform == grid
    assert "scene S2A_50SKA_20220101_0_L2A (EPSG:32650, 10 m pixels, origin (500005.0, 4000000.0)" in caplog.text
    assert "scene 2022-02-01 (EPSG:32650, 20 m pixels" in caplog.text
    assert caplog.text.count("is off the pixel lattice of the season's 3 scenes on it in its CRS") == 2
    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B04",))
    coarse = cube.dates.index(date(2022, 2, 1))
    np.testing.assert_allclose(cube.reflectance[coarse, 0], np.kron(red, np.ones((2, 2))) * 1e-4, rtol=1e-6)
    # More 20 m products than 10 m scenes: the season keeps the finer pixels.
    for month in (3, 4, 5):
        _coarse_scene(season_folder / "other" / f"2022-0{month}-01", red)
    assert open_imagery(season_folder, dn_offset=0).transform == grid
    # A date seen on the lattice and off it: the part on it (native pixels) comes first, though cloudier.
    write_scene(season_folder / "other" / "S2B_50SKA_20220101_0_L2A", acquired=datetime(2022, 1, 1, 1),
                cloud_cover=60.0)
    (mosaic,) = [scene for scene in open_imagery(season_folder, dn_offset=0).scenes if scene.parts]
    assert [part.scene_id for part in mosaic.parts] == ["S2B_50SKA_20220101_0_L2A", "S2A_50SKA_20220101_0_L2A"]


def test_an_item_lists_only_band_assets(tmp_path: Path) -> None:
    item_path = tmp_path / "item.json"
    item_path.write_text(
        json.dumps(
            {
                "type": "Feature",
                "id": "x",
                "properties": {"datetime": "2024-03-15T00:00:00Z"},
                "assets": {"thumbnail": {"href": "thumb.jpg"}},
            }
        ),
        encoding="utf-8",
    )

    with pytest.raises(ImageryError, match="no Sentinel-2 band assets"):
        open_imagery(tmp_path)


def test_a_scene_folder_left_set_aside_by_an_interrupted_fetch_is_named_not_silently_missed(
    season_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scenes = len(open_imagery(season_folder).scenes)
    folder = next(path for path in sorted(season_folder.rglob("*")) if path.is_dir() and list(path.glob("*.json")))
    folder.rename(folder.with_name(f".partial-old-{folder.name}"))  # as a fetch killed between its two renames
    with caplog.at_level(logging.WARNING):
        assert len(open_imagery(season_folder).scenes) == scenes - 1
    assert f"scene {folder.name} was set aside by an interrupted `farmcredit fetch`" in caplog.text
    caplog.clear()
    folder.mkdir()  # a folder of that name is back: nothing is missing
    with caplog.at_level(logging.WARNING):
        open_imagery(season_folder)
    assert "set aside" not in caplog.text


def test_a_folder_named_in_another_encoding_than_utf8_is_an_imagery_error_naming_it(tmp_path: Path) -> None:
    """GBK or latin-1 names unzipped on Linux: GDAL could not open the files (a UnicodeEncodeError traceback)."""
    import os

    _coarse_scene(tmp_path / "region" / "2022-02-01", np.full((6, 6), 1000, dtype=np.uint16))
    os.rename(os.fsencode(tmp_path / "region"), os.fsencode(tmp_path) + b"/r\xe9gion")  # 'région' in latin-1
    with pytest.raises(ImageryError, match="r\ufffdgion/2022-02-01/B0.\\.tif: its name is not UTF-8 text"):
        open_imagery(tmp_path)
    os.rename(os.fsencode(tmp_path) + b"/r\xe9gion", os.fsencode(tmp_path / "region"))
    (tmp_path / "region" / "2022-02-01").joinpath(os.fsdecode(b"\xcb\xb5\xc3\xf7.txt")).write_text("GBK notes")
    assert len(open_imagery(tmp_path).scenes) == 1  # a file never opened may be named as it likes


def test_a_folder_named_in_utf8_read_in_a_locale_that_is_not_says_to_run_in_one_not_to_rename_it(
        tmp_path: Path) -> None:
    """Under LC_ALL=C (PYTHONUTF8=0) the name's bytes reach Python as surrogates: it was called not UTF-8, and the
    convmv advised would have encoded it twice."""
    import os
    import subprocess
    import sys

    _coarse_scene(tmp_path / "地块 一" / "2022-02-01", np.full((6, 6), 1000, dtype=np.uint16))
    done = subprocess.run([sys.executable, "-c", "import sys; from farmcredit.imagery import open_imagery; "
                           "open_imagery(sys.argv[1])", str(tmp_path)], capture_output=True, check=False,
                          env={**os.environ, "PYTHONUTF8": "0", "LC_ALL": "C"})
    error = done.stderr.decode("ascii")  # the locale's: 地块 written \u5730\u5757
    assert "ImageryError: " in error and "\\u5730\\u5757 \\u4e00/2022-02-01/B0" in error
    assert ("its name is UTF-8 text, but this system's locale is not UTF-8 (file names read as ascii), so GDAL cannot "
            "be given it; run farmcredit with LANG=C.UTF-8 (or PYTHONUTF8=1) set") in error
    assert "convmv" not in error


def test_a_linked_scene_folder_whose_item_names_its_real_path_is_read(season_folder: Path, tmp_path: Path) -> None:
    """A scene kept in a store and linked into the imagery folder, its item's hrefs naming the store's absolute paths:
    read by the names made absolute, every band was outside the folder and the scene was left out."""
    store = tmp_path / "store"
    store.mkdir()
    scene_id = "S2A_50SKA_20200610_0_L2A"
    real = shutil.move(season_folder / "2020" / scene_id, store / scene_id)
    item_path = Path(real) / f"{scene_id}.json"
    item = json.loads(item_path.read_text())
    for asset in item["assets"].values():
        if not asset["href"].startswith(("http", "s3")) and asset["href"].endswith(".tif"):
            asset["href"] = str(Path(real) / Path(asset["href"]).name)
    item_path.write_text(json.dumps(item))
    (season_folder / "2020" / scene_id).symlink_to(real, target_is_directory=True)

    scene = next(scene for scene in open_imagery(season_folder).scenes if scene.scene_id == scene_id)
    assert {"B04", "B08", "B05"} <= set(scene.band_paths)
    assert all(path.startswith(str(store)) for path, _ in scene.band_paths.values())
