"""L2A SAFE products: a tiny synthetic product (JP2 at 10/20/60 m, MTD_MSIL2A.xml) as a folder and a .zip."""

from __future__ import annotations

import logging
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window
from safe_products import CRS, GRANULE, PRODUCT, safe_dns, write_safe, zip_safe

from farmcredit.errors import ImageryError
from farmcredit.imagery import open_imagery, read_window


def test_a_safe_folder_gives_date_offset_cloud_and_each_band_at_its_finest(tmp_path: Path) -> None:
    safe = write_safe(tmp_path)

    imagery = open_imagery(safe)

    (scene,) = imagery.scenes
    assert scene.scene_id == PRODUCT
    assert scene.acquired == datetime(2024, 3, 15, 3, 15, 21, 24000, tzinfo=timezone.utc)
    assert (scene.dn_offset, scene.dn_scale, scene.cloud_cover) == (-1000.0, 1e-4, 12.3)
    assert scene.band_paths["B04"][0].endswith("R10m/T50SKB_20240315T031521_B04_10m.jp2")
    assert scene.band_paths["B05"][0].endswith("_B05_20m.jp2") and scene.band_paths["B01"][0].endswith("_B01_60m.jp2")
    assert imagery.shape == (12, 12) and imagery.has_scl and imagery.crs.to_string() == CRS

    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B04", "B05"))
    np.testing.assert_allclose(cube.reflectance[0, 0], (safe_dns("B04", 10) - 1000.0) * 1e-4, rtol=1e-6)
    b05 = np.repeat(np.repeat(safe_dns("B05", 20), 2, axis=0), 2, axis=1)
    np.testing.assert_allclose(cube.reflectance[0, 1], (b05 - 1000.0) * 1e-4, rtol=1e-6)
    assert not cube.clear[0, :2, :2].any() and cube.clear[0, 2:, 2:].all()  # the SCL cloud


def test_the_zip_reads_in_place_exactly_like_the_folder(tmp_path: Path) -> None:
    safe = write_safe(tmp_path / "unpacked")
    archive = zip_safe(safe)
    shutil.rmtree(safe)

    imagery = open_imagery(archive)

    (scene,) = imagery.scenes
    assert scene.band_paths["B04"][0].startswith(f"/vsizip/{archive.resolve()}/{PRODUCT}.SAFE/GRANULE/")
    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B04",))
    np.testing.assert_allclose(cube.reflectance[0, 0], (safe_dns("B04", 10) - 1000.0) * 1e-4, rtol=1e-6)


def test_a_folder_of_products_is_a_season(tmp_path: Path) -> None:
    write_safe(tmp_path / "season")
    later = "S2A_MSIL2A_20240325T031521_N0510_R118_T50SKB_20240325T064513"
    other = write_safe(tmp_path / "elsewhere", name=later)
    metadata = other / "MTD_MSIL2A.xml"
    metadata.write_text(metadata.read_text().replace("2024-03-15T03:15:21", "2024-03-25T03:15:21"))
    zip_safe(other).rename(tmp_path / "season" / f"{later}.zip")

    imagery = open_imagery(tmp_path / "season")

    assert [scene.scene_id for scene in imagery.scenes] == [PRODUCT, later]


def test_a_zip_of_several_products_reads_each(tmp_path: Path) -> None:
    first = write_safe(tmp_path / "products")
    later = "S2A_MSIL2A_20240325T031521_N0510_R118_T50SKB_20240325T064513"
    second = write_safe(tmp_path / "products", name=later)
    metadata = second / "MTD_MSIL2A.xml"
    metadata.write_text(metadata.read_text().replace("2024-03-15T03:15:21", "2024-03-25T03:15:21"))
    archive = tmp_path / "season.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        for path in sorted([*first.rglob("*"), *second.rglob("*")]):
            handle.write(path, path.relative_to(tmp_path).as_posix())

    imagery = open_imagery(archive)

    assert [scene.scene_id for scene in imagery.scenes] == [PRODUCT, later]
    assert [scene.band_paths["B04"][0].split(".SAFE/")[0] for scene in imagery.scenes] == [
        f"/vsizip/{archive.resolve()}/products/{name}" for name in (PRODUCT, later)]
    cube = read_window(imagery, Window(0, 0, 12, 12), bands=("B04",))
    np.testing.assert_allclose(cube.reflectance[:, 0], [(safe_dns("B04", 10) - 1000.0) * 1e-4] * 2, rtol=1e-6)


def test_a_product_of_format_psd_14_2_names_its_fields_with_their_level(tmp_path: Path) -> None:
    """Baselines 02.04-02.06 (Sen2Cor 2.4-2.5): PRODUCT_URI_2A, IMAGE_FILE_2A, L2A_BOA_QUANTIFICATION_VALUE."""
    safe = write_safe(tmp_path, baseline="02.06", offsets=False)
    metadata = safe / "MTD_MSIL2A.xml"
    text = metadata.read_text()
    for tag in ("PRODUCT_URI", "IMAGE_FILE"):
        text = text.replace(f"<{tag}>", f"<{tag}_2A>").replace(f"</{tag}>", f"</{tag}_2A>")
    metadata.write_text(text.replace("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"))

    (scene,) = open_imagery(safe).scenes

    assert (scene.scene_id, scene.dn_offset, scene.dn_scale) == (PRODUCT, 0.0, 1e-4)
    assert scene.band_paths["B04"][0].endswith("R10m/T50SKB_20240315T031521_B04_10m.jp2")


@pytest.mark.parametrize(
    ("baseline", "offsets", "expected"),
    [("02.14", False, 0.0), ("05.10", False, -1000.0), ("05.10", True, -1000.0)],
    ids=["old-baseline", "baseline-without-offset-list", "boa-add-offset"],
)
def test_the_offset_is_boa_add_offset_or_else_what_the_baseline_implies(
    tmp_path: Path, baseline: str, offsets: bool, expected: float
) -> None:
    assert open_imagery(write_safe(tmp_path, baseline=baseline, offsets=offsets)).scenes[0].dn_offset == expected


def test_a_level_1c_product_is_refused_with_the_reason(tmp_path: Path) -> None:
    safe = write_safe(tmp_path)
    (safe / "MTD_MSIL2A.xml").rename(safe / "MTD_MSIL1C.xml")

    with pytest.raises(ImageryError, match="is Level-1C .* needs Level-2A"):
        open_imagery(zip_safe(safe))


def test_a_band_whose_finest_file_the_product_lacks_is_read_from_a_coarser_one(tmp_path: Path) -> None:
    safe = write_safe(tmp_path)
    (safe / GRANULE / "R10m" / "T50SKB_20240315T031521_B04_10m.jp2").unlink()

    imagery = open_imagery(safe)

    assert imagery.scenes[0].band_paths["B04"][0].endswith("_B04_20m.jp2") and not imagery.unopened


@pytest.mark.parametrize("zipped", [False, True])
def test_a_band_file_the_metadata_lists_but_the_product_lacks_is_named(tmp_path: Path, zipped: bool) -> None:
    safe = write_safe(tmp_path)
    (safe / GRANULE / "R10m" / "T50SKB_20240315T031521_B08_10m.jp2").unlink()

    imagery = open_imagery(zip_safe(safe) if zipped else safe)
    ((_, band, path, message),) = imagery.unopened
    assert band == "B08" and path.endswith("_B08_10m.jp2") and message
    assert "B08" not in imagery.bands and "B04" in imagery.bands


@pytest.mark.parametrize("zipped", [False, True])
def test_a_band_file_the_metadata_lists_outside_the_product_is_not_read(
    tmp_path: Path, zipped: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """IMAGE_FILE "../../x" named a file beside the product (anywhere on the computer, for a .SAFE folder)."""
    safe = write_safe(tmp_path / "season")
    listed = f"{GRANULE}/R20m/T50SKB_20240315T031521_B11_20m"
    outside = "../outside/T50SKB_20240315T031521_B11_20m"
    shutil.copytree(safe / GRANULE / "R20m", tmp_path / "season" / "outside")
    metadata = safe / "MTD_MSIL2A.xml"
    metadata.write_text(metadata.read_text().replace(listed, outside))

    with caplog.at_level(logging.WARNING):
        imagery = open_imagery(zip_safe(safe) if zipped else safe)

    (scene,) = imagery.scenes
    assert "B11" not in scene.band_paths and not any(".." in path for path, _ in scene.band_paths.values())
    assert f"IMAGE_FILE {outside}.jp2 is not read: it lies outside the product" in caplog.text


def test_a_zip_whose_metadata_unpacks_to_more_than_a_product_holds_is_refused_before_it_is_read(
    tmp_path: Path,
) -> None:
    """A 2 MB zip whose MTD_MSIL2A.xml unpacked to 2 GiB took 4.4 GB of memory, then ended in a traceback."""
    archive = tmp_path / f"{PRODUCT}.zip"
    member = f"{PRODUCT}.SAFE/MTD_MSIL2A.xml"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle, handle.open(member, "w") as metadata:
        metadata.write(b"<?xml version='1.0'?><root>")
        for _ in range(20):
            metadata.write(b" " * 2**20)
        metadata.write(b"</root>")
    assert archive.stat().st_size < 100_000

    with pytest.raises(ImageryError, match=f"{member}: {20 * 2**20 + 34} bytes, over the 16 MiB"):
        open_imagery(archive)
