"""open_imagery on multi-band GeoTIFF stacks: band descriptions, band_layout, dtypes, errors."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from farmcredit.errors import ImageryError
from farmcredit.imagery import open_imagery, read_window


def write_stack(
    path: Path,
    values: np.ndarray,
    descriptions: list[str] | None = None,
) -> Path:
    """Write a (band, rows, cols) stack on a 10 m grid, optionally with band descriptions."""
    with rasterio.open(
        path, "w", driver="GTiff", width=values.shape[2], height=values.shape[1],
        count=values.shape[0], dtype=values.dtype, crs="EPSG:32633",
        transform=from_origin(359_130.0, 5_352_340.0, 10, 10),
    ) as dataset:
        dataset.write(values)
        for index, description in enumerate(descriptions or [], start=1):
            dataset.set_band_description(index, description)
    return path


def dns(count: int) -> np.ndarray:
    """uint16 DNs; band k holds 1000 * k plus the pixel number."""
    pixel = np.arange(20, dtype=np.uint16).reshape(4, 5)
    return np.stack([1000 * (band + 1) + pixel for band in range(count)]).astype(np.uint16)


@pytest.mark.parametrize(
    "descriptions",
    [
        ["2021-09-25 B04", "2021-09-25 B08", "2021-06-17 B04", "2021-06-17 B08"],
        ["2021-09-25_red", "2021-09-25_nir", "2021-06-17_red", "2021-06-17_nir"],
        ["20210925_B04", "20210925_B08", "20210617_B4", "20210617_B8"],
    ],
    ids=["space", "underscore-asset-keys", "compact-dates"],
)
def test_dated_descriptions_become_one_scene_per_date(
    tmp_path: Path, descriptions: list[str]
) -> None:
    stack = write_stack(tmp_path / "parcels.tif", dns(4), descriptions)

    imagery = open_imagery(stack)

    assert [scene.acquired for scene in imagery.scenes] == [
        datetime(2021, 6, 17, tzinfo=timezone.utc),
        datetime(2021, 9, 25, tzinfo=timezone.utc),
    ]
    assert [scene.scene_id for scene in imagery.scenes] == ["parcels_20210617", "parcels_20210925"]
    assert imagery.scenes[0].band_paths == {"B04": (str(stack), 3), "B08": (str(stack), 4)}
    assert imagery.bands == ("B04", "B08")
    assert not imagery.has_scl
    assert imagery.shape == (4, 5)
    assert (imagery.scenes[0].dn_scale, imagery.scenes[0].dn_offset) == (1e-4, 0.0)


def test_undated_descriptions_take_the_date_in_the_file_name(tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "S2_20210617.tif", dns(3), ["B04", "B08", "SCL"])

    imagery = open_imagery(stack)

    assert [scene.acquired.date() for scene in imagery.scenes] == [date(2021, 6, 17)]
    assert imagery.has_scl
    assert imagery.bands == ("B04", "B08")


def test_band_layout_names_bands_without_descriptions(tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "img.tif", dns(4))
    june, september = date(2021, 6, 17), date(2021, 9, 25)

    imagery = open_imagery(
        stack,
        band_layout=[(june, "red"), (june, "nir"), (september, "B04"), (september, "B08")],
        dn_offset=-1000,
    )
    cube = read_window(imagery, Window(0, 0, 5, 4), bands=("B04", "B08"))

    assert [scene.band_paths["B08"][1] for scene in imagery.scenes] == [2, 4]
    # Band 3 (September red) pixel 7: DN 3007, offset -1000.
    assert cube.reflectance[1, 0, 1, 2] == pytest.approx((3007 - 1000) * 1e-4, rel=1e-6)
    assert cube.clear.all()


@pytest.mark.parametrize("day", [str, lambda when: datetime(when.year, when.month, when.day),
                                 lambda when: pd.Timestamp(when)], ids=["iso-text", "datetime", "timestamp"])
def test_band_layout_dates_may_be_datetimes_timestamps_or_iso_text(
    tmp_path: Path, day: Callable[[date], object]
) -> None:
    """As season= takes them: a datetime or Timestamp (its day) or YYYY-MM-DD text was a raw TypeError, compared
    with the date processing baseline 04.00 began."""
    stack = write_stack(tmp_path / "img.tif", dns(4))
    june, september = date(2021, 6, 17), date(2021, 9, 25)
    layout = [(june, "B04"), (june, "B08"), (september, "B04"), (september, "B08")]

    given = open_imagery(stack, band_layout=[(day(when), band) for when, band in layout], dn_offset=0)

    assert given.scenes == open_imagery(stack, band_layout=layout, dn_offset=0).scenes


@pytest.mark.parametrize("when", ["2021-06-31", "17/06/2021", 20210617])
def test_band_layout_dates_that_are_not_dates_are_named(tmp_path: Path, when: object) -> None:
    stack = write_stack(tmp_path / "img.tif", dns(2))

    with pytest.raises(ImageryError, match=f"band_layout dates band 'B08' {when!r}, which is not a date"):
        open_imagery(stack, band_layout=[(date(2021, 6, 17), "B04"), (when, "B08")])


def test_band_layout_given_as_the_clis_text_is_refused_saying_what_it_takes(tmp_path: Path) -> None:
    """Its characters were counted as bands: 'band_layout lists 32 bands but the file has 2'."""
    stack = write_stack(tmp_path / "img.tif", dns(2))

    with pytest.raises(ImageryError, match=r"band_layout= takes \(date, band\) pairs.*not the text --bands takes"):
        open_imagery(stack, band_layout="2021-06-17:B04;2021-06-17:B08")
    # Nor a list of its parts, or of bands alone: they were unpacked into a date and a band (or 'too many values').
    for layout in (["2021-06-17:B04", "2021-06-17:B08"], ["B4", "B8"], [(), (date(2021, 6, 17), "B04")]):
        odd = re.escape(repr(layout[0]))
        with pytest.raises(ImageryError, match=rf"band_layout= takes \(date, band\) pairs.*; {odd} is not one"):
            open_imagery(stack, band_layout=layout)


def test_float_stacks_are_reflectance(tmp_path: Path) -> None:
    values = (dns(2) / 10_000).astype(np.float32)
    stack = write_stack(tmp_path / "2021-06-17.tif", values, ["B04", "B08"])

    imagery = open_imagery(stack)
    cube = read_window(imagery, Window(0, 0, 5, 4), bands=("B04", "B08"))

    assert imagery.scenes[0].dn_scale == 1.0
    np.testing.assert_allclose(cube.reflectance[0], values, rtol=1e-6)


def test_a_season_without_scl_or_of_level_1c_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Unmasked, a clouded date reads as bare land (on a real L1C stack the rule approved forest as wheat); B10 is
    an L1C band: both were read without a word."""
    values = (dns(3) / 10_000).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        open_imagery(write_stack(tmp_path / "2021-06-17.tif", values, ["B04", "B08", "SCL"]))
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        assert not open_imagery(write_stack(tmp_path / "2021-06-18.tif", values, ["B04", "B08", "B10"])).has_scl
    assert "no scene has a scene classification (SCL) layer: clouds, shadows and haze are not masked" in caplog.text
    assert "2021-06-18.tif holds B10 (cirrus), a band of Level-1C products only" in caplog.text


def test_fill_values_of_a_float_stack_are_no_data_but_digital_numbers_are_left_to_be_refused(tmp_path: Path) -> None:
    """An undeclared fill (-9999, -1, 65535) is no reflectance: that pixel-date is no data, not clear. A band above 2
    everywhere beside a red band of reflectance holds digital numbers, kept for the model to refuse with advice (a
    stack of them all is read as digital numbers)."""
    values = (dns(2) / 10_000).astype(np.float32)
    values[0, 0, 0], values[1, 1, 1], values[0, 2, 2] = -9999.0, -1.0, 65535.0
    stack = write_stack(tmp_path / "2021-06-17.tif", values, ["B04", "B08"])
    cube = read_window(open_imagery(stack), Window(0, 0, 5, 4), bands=("B04", "B08"))
    filled = np.zeros((4, 5), dtype=bool)
    filled[0, 0] = filled[1, 1] = filled[2, 2] = True
    np.testing.assert_array_equal(cube.clear[0], ~filled)
    assert np.isnan([cube.reflectance[0][0, 0, 0], cube.reflectance[0][1, 1, 1], cube.reflectance[0][0, 2, 2]]).all()
    np.testing.assert_allclose(cube.reflectance[0][:, ~filled], values[:, ~filled], rtol=1e-6)
    (tmp_path / "dn").mkdir()
    one_band = np.stack([values[0], dns(2)[1].astype(np.float32)])  # B08 in digital numbers: judged on its own
    digital = write_stack(tmp_path / "dn" / "2021-06-17.tif", one_band, ["B04", "B08"])
    kept = read_window(open_imagery(digital), Window(0, 0, 5, 4), bands=("B04", "B08"))
    assert kept.clear[0][~filled].all() and (kept.reflectance[0, 1] >= 1000).all()


def test_float_stacks_refuse_a_dn_offset(tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "2021-06-17.tif", np.full((1, 2, 2), 0.2, "float32"), ["B04"])

    with pytest.raises(ImageryError, match=r"float reflectance; --dn-offset \(dn_offset= in Python\) applies"):
        open_imagery(stack, dn_offset=-1000)


def test_a_stack_of_digital_numbers_without_an_offset_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stack carries no BOA offset to read: 2024 DNs read with 0 were 0.1 too bright in silence (a CNN's accuracy
    0.59 for 0.79), where an item-less scene folder of them is warned of. As for such a folder, every date is in
    doubt (Collection 1 reprocessed older acquisitions with the offset too): a stack of 2021 alone is warned of.
    Told the offset, or of reflectance, nothing is said."""
    recent = ["2021-11-01 B04", "2021-11-01 B08", "2024-06-19 B04", "2024-06-19 B08"]
    with caplog.at_level(logging.WARNING):
        assert open_imagery(write_stack(tmp_path / "dn.tif", dns(4), recent)).scenes[1].dn_offset == 0
    assert "dn.tif: the DNs of 2 date(s) (2021-11-01, 2024-06-19) are read with DN offset 0" in caplog.text
    assert "pass --dn-offset -1000 (dn_offset=-1000 in Python); if not, --dn-offset 0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # DNs cast to float (an Earth Engine export) take an offset as well
        open_imagery(write_stack(tmp_path / "float_dn.tif", dns(4).astype(np.float32), recent))
    assert "float_dn.tif: the DNs of 2 date(s) (2021-11-01, 2024-06-19)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        open_imagery(write_stack(tmp_path / "old.tif", dns(2), ["2021-11-01 B04", "2021-11-01 B08"]))
    assert "old.tif: the DNs of 1 date(s) (2021-11-01) are read with DN offset 0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        open_imagery(tmp_path / "dn.tif", dn_offset=0)
        open_imagery(tmp_path / "dn.tif", dn_offset=-1000)
        open_imagery(write_stack(tmp_path / "reflectance.tif", (dns(4) / 10_000).astype(np.float32), recent))
    assert "DN offset 0" not in caplog.text


def test_a_stacks_offset_warning_names_only_the_dates_of_the_season_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stack of two seasons assessed for one was warned of (or not) by the dates of the other, which it does not
    read: the warning names the season's dates alone, as a scene folder's does."""
    stack = write_stack(tmp_path / "two_seasons.tif", dns(4),
                        ["2021-06-17 B04", "2021-06-17 B08", "2024-06-19 B04", "2024-06-19 B08"])
    for season, read, unread in (("2021-03-01/2021-10-31", "2021-06-17", "2024-06-19"),
                                 ("2024-03-01/2024-10-31", "2024-06-19", "2021-06-17")):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            open_imagery(stack, season)
        assert f"two_seasons.tif: the DNs of 1 date(s) ({read}) are read with DN offset 0" in caplog.text
        assert unread not in caplog.text


def test_evaluate_warns_of_a_stack_of_digital_numbers_without_an_offset(tmp_path: Path) -> None:
    """`farmcredit evaluate` scored a 2024 stack of DNs read with offset 0 (0.59 for 0.79) without a word."""
    scene = tmp_path / "scene"
    scene.mkdir()
    write_stack(scene / "imagery.tif", np.concatenate([dns(4), dns(4)]),
                [f"{day} {band}" for day in ("2024-06-19", "2024-07-09") for band in ("B02", "B03", "B04", "B08")])
    write_stack(scene / "labels.tif", np.ones((1, 4, 5), dtype=np.uint8))
    done = subprocess.run([sys.executable, "-m", "farmcredit", "evaluate", "cnn", str(scene), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "imagery.tif: the DNs of 2 date(s) (2024-06-19, 2024-07-09) are read with DN offset 0" \
        in done.stderr and "pass --dn-offset -1000" in done.stderr


def test_a_float_stack_of_digital_numbers_is_read_as_digital_numbers(tmp_path: Path) -> None:
    """An Earth Engine export cast to float holds DNs: read as reflectance, the rule ran on values in the thousands
    (and --dn-offset, which it needs, was refused)."""
    stack = write_stack(tmp_path / "2021-06-17.tif", dns(2).astype(np.float32), ["B04", "B08"])
    imagery = open_imagery(stack, dn_offset=-1000)
    assert (imagery.scenes[0].dn_scale, imagery.scenes[0].dn_offset) == (1e-4, -1000.0)
    cube = read_window(imagery, Window(0, 0, 5, 4), bands=("B04", "B08"))
    np.testing.assert_allclose(cube.reflectance[0], (dns(2) - 1000.0) * 1e-4, rtol=1e-6)
    # Clipped to a few parcels (a decimated read sees only no data), its first date masked whole: still DNs.
    sparse = np.full((4, 300, 300), np.nan, dtype=np.float32)
    sparse[2:, :2, :2] = 3000.0
    clipped = write_stack(tmp_path / "clipped.tif", sparse, ["2021-06-17 B04", "2021-06-17 B08", "2021-07-17 B04",
                                                            "2021-07-17 B08"])
    assert {scene.dn_scale for scene in open_imagery(clipped, dn_offset=-1000).scenes} == {1e-4}


def test_gdal_scale_and_offset_tags_of_integer_bands_are_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DNs with their BOA offset declared in GDAL tags (scale 1e-4, offset -0.1, as rioxarray, odc-stac and CDSE
    exports write them) were read as DN * 1e-4, every band 0.1 too bright; an --dn-offset the tags contradict is
    refused, one they agree with taken."""
    stack = write_stack(tmp_path / "2024-06-19.tif", dns(2), ["B04", "B08"])
    with rasterio.open(stack, "r+") as dataset:
        dataset.scales, dataset.offsets = (1e-4, 1e-4), (-0.1, -0.1)

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(stack)

    assert (imagery.scenes[0].dn_scale, imagery.scenes[0].dn_offset) == (1e-4, -1000.0)
    assert "DN offset 0" not in caplog.text
    cube = read_window(imagery, Window(0, 0, 5, 4), bands=("B04", "B08"))
    np.testing.assert_allclose(cube.reflectance[0], dns(2) * 1e-4 - 0.1, rtol=1e-6)
    assert open_imagery(stack, dn_offset=-1000).scenes[0].dn_offset == -1000.0
    with pytest.raises(ImageryError, match=r"GDAL tags declare reflectance = DN x 0.0001 -0.1, a DN offset of -1000, "
                                           r"which --dn-offset 0 \(dn_offset= in Python\) contradicts"):
        open_imagery(stack, dn_offset=0)


def test_8_bit_stacks_are_refused_as_display_products(tmp_path: Path) -> None:
    """Sentinel Hub's UINT8 output (reflectance x 255) was read as DNs, reflectance 0-0.0255: every parcel
    uncultivated."""
    stack = write_stack(tmp_path / "2024-06-19.tif", np.full((2, 4, 5), 60, np.uint8), ["B04", "B08"])

    with pytest.raises(ImageryError, match=r"8-bit imagery is a display product \(reflectance\*255 or a visual\), "
                                           "not reflectance; export UINT16 or FLOAT32"):
        open_imagery(stack)


def test_unidentifiable_bands_ask_for_band_layout(tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "img.tif", dns(2), ["2021-06-17 B04", "cloud probability"])

    with pytest.raises(ImageryError, match="band_layout") as raised:
        open_imagery(stack)
    assert str(stack) in str(raised.value)


def test_band_layout_must_cover_every_band(tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "img.tif", dns(3))

    with pytest.raises(ImageryError, match=r"--bands \(band_layout= in Python\) lists 2 bands but the file has 3"):
        open_imagery(stack, band_layout=[(None, "B04"), (None, "B08")])
    with pytest.raises(ImageryError, match=r"--bands \(band_layout= in Python\) names an unknown band 'B99'"):
        open_imagery(stack, band_layout=[(None, "B04"), (None, "B08"), (None, "B99")])


def test_undated_stack_without_a_date_in_its_name_is_an_error(tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "img.tif", dns(2), ["B04", "B08"])

    with pytest.raises(ImageryError, match="no date"):
        open_imagery(stack)


def test_a_band_twice_on_one_date_is_an_error(tmp_path: Path) -> None:
    stack = write_stack(tmp_path / "img.tif", dns(2), ["2021-06-17 B04", "2021-06-17 red"])

    with pytest.raises(ImageryError, match="appears twice"):
        open_imagery(stack)


def test_a_file_that_is_not_a_raster_is_named(tmp_path: Path) -> None:
    not_raster = tmp_path / "stack.tif"
    not_raster.write_bytes(b"II*\x00garbage" * 10)

    with pytest.raises(ImageryError, match="GDAL cannot open") as raised:
        open_imagery(not_raster)
    assert str(not_raster) in str(raised.value)
