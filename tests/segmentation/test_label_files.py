"""EuroSAT folders and DEA tables as users bring them: other spellings, stray folders, no data, other separators.

A patch or pixel whose label cannot be told is refused or left out, never scored as non-crop.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from farmcredit.errors import InputError
from farmcredit.segmentation.data import DEA_BANDS, eurosat_files, load_dea, load_eurosat, read_dea_table

DEA_COLUMNS = ["Class"] + [f"{name}_S{season}" for season in (1, 2) for name in DEA_BANDS]


def _patch(path: Path, value: int = 1500, nodata: float | None = None, zero_rows: int = 0, size: int = 8) -> None:
    """A 13-band ``size`` px square EuroSAT-MS-like patch; its first ``zero_rows`` rows 0 in every band."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bands = np.full((13, size, size), value, dtype=np.uint16)
    bands[:, :zero_rows] = 0
    with rasterio.open(path, "w", driver="GTiff", count=13, height=size, width=size, dtype="uint16", nodata=nodata,
                       crs="EPSG:32632", transform=from_origin(5e5, 5e6, 10, 10)) as dst:
        dst.write(bands)


def test_class_folders_match_ignoring_case_and_tiff_files_count_but_hidden_files_do_not(tmp_path: Path) -> None:
    _patch(tmp_path / "annualcrop" / "a.tif")
    _patch(tmp_path / "PERMANENTCROP" / "b.TIFF")
    (tmp_path / "empty").mkdir()  # a folder without patches is no class, and harmless
    _patch(tmp_path / "Forest" / "c.tif")
    _patch(tmp_path / "Forest" / "._c.tif")  # a macOS AppleDouble sidecar
    (tmp_path / "Forest" / "c.tif.aux.xml").write_text("<PAMDataset/>")
    (tmp_path / "README.txt").write_text("EuroSAT")
    files = eurosat_files(tmp_path)
    assert [(path.name, name) for path, name in files] == [("c.tif", "Forest"), ("b.TIFF", "PermanentCrop"),
                                                           ("a.tif", "AnnualCrop")]
    assert load_eurosat(tmp_path).is_crop.tolist() == [False, True, True]
    _patch(tmp_path / "annualcrop" / "2017" / "d.tif")  # a class's patches filed by year: read, not dropped
    _patch(tmp_path / "annualcrop" / ".trash" / "e.tif")
    assert [path.name for path, name in eurosat_files(tmp_path) if name == "AnnualCrop"] == ["d.tif", "a.tif"]


def test_a_folder_of_patches_that_is_no_eurosat_class_is_refused_not_scored_as_non_crop(tmp_path: Path) -> None:
    _patch(tmp_path / "AnnualCrop" / "a.tif")
    _patch(tmp_path / "unlabelled" / "u.tif")
    with pytest.raises(InputError, match="unlabelled hold patches but are not EuroSAT classes"):
        load_eurosat(tmp_path)


def test_unreadable_patch_files_are_skipped_listed_and_reported_and_refused_only_when_none_reads(
        tmp_path: Path) -> None:
    """One bad file among 27,000 ended evaluate (exit 2, naming only the first): they are left out and named."""
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path, format_report

    _patch(tmp_path / "AnnualCrop" / "a.tif")
    _patch(tmp_path / "Forest" / "b.tif")
    _patch(tmp_path / "AnnualCrop" / "c.tif", size=6)  # another size
    truncated = tmp_path / "Forest" / "d.tif"
    _patch(truncated)
    truncated.write_bytes(truncated.read_bytes()[:600])
    (tmp_path / "Forest" / "e.tif").write_bytes(b"")
    (tmp_path / "Pasture" / "f.tif").parent.mkdir()
    (tmp_path / "Pasture" / "f.tif").write_bytes(b"<html>404 Not Found</html>")
    with rasterio.open(tmp_path / "Pasture" / "g.tif", "w", driver="GTiff", count=3, height=8, width=8,
                       dtype="uint16") as dst:  # not 13 bands
        dst.write(np.full((3, 8, 8), 1500, dtype=np.uint16))
    bad = [str(tmp_path / name) for name in ("AnnualCrop/c.tif", "Forest/d.tif", "Forest/e.tif", "Pasture/f.tif",
                                             "Pasture/g.tif")]
    patches = load_eurosat(tmp_path)
    assert patches.group.tolist() == ["AnnualCrop", "Forest"] and patches.reflectance.shape[0] == 2
    assert sorted(patches.unreadable) == bad
    assert patches.subset(np.array([1])).unreadable == patches.unreadable
    report = evaluate_path(load_cropland_model("cnn", device="cpu"), tmp_path)
    assert report["overall"]["n"] == 2 and sorted(report["unreadable"]) == bad
    assert "unscored: 5 unreadable patch file(s): " in format_report(report)
    for name in ("a", "b", "c"):
        next(tmp_path.glob(f"*/{name}.tif")).write_bytes(b"")
    with pytest.raises(InputError, match="none of its 7 EuroSAT patch files can be read"):
        load_eurosat(tmp_path)


def test_a_patch_of_another_size_that_sorts_first_is_the_one_skipped_naming_it(tmp_path: Path) -> None:
    """The first readable file set the size: one 32 x 32 px patch sorting first marked every 64 x 64 one unreadable."""
    _patch(tmp_path / "AnnualCrop" / "000_odd.tif", size=6)
    for name in ("a", "b"):
        _patch(tmp_path / "AnnualCrop" / f"{name}.tif")
    _patch(tmp_path / "Forest" / "c.tif")
    patches = load_eurosat(tmp_path)
    assert patches.group.tolist() == ["AnnualCrop", "AnnualCrop", "Forest"] and patches.reflectance.shape[-2:] == (8, 8)
    assert patches.unreadable == (str(tmp_path / "AnnualCrop" / "000_odd.tif"),)


def test_when_no_patch_reads_the_refusal_says_likewise_only_of_files_failing_alike(tmp_path: Path) -> None:
    for name in ("a", "b"):  # 3 bands, not 13
        (tmp_path / "AnnualCrop").mkdir(exist_ok=True)
        with rasterio.open(tmp_path / "AnnualCrop" / f"{name}.tif", "w", driver="GTiff", count=3, height=8, width=8,
                           dtype="uint16", crs="EPSG:32632", transform=from_origin(5e5, 5e6, 10, 10)) as dst:
            dst.write(np.full((3, 8, 8), 1500, dtype=np.uint16))
    with pytest.raises(InputError, match="a.tif: 3 bands, EuroSAT-MS has 13, and likewise the others"):
        load_eurosat(tmp_path)
    (tmp_path / "Forest").mkdir()
    (tmp_path / "Forest" / "c.tif").write_bytes(b"")
    with pytest.raises(InputError) as unlike:
        load_eurosat(tmp_path)
    assert "none of its 3 EuroSAT patch files can be read" in str(unlike.value)
    assert "likewise" not in str(unlike.value) and "c.tif: not a readable raster" in str(unlike.value)


def test_class_folders_one_level_down_are_pointed_to(tmp_path: Path) -> None:
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path

    _patch(tmp_path / "EuroSAT_MS" / "Forest" / "f.tif")
    _patch(tmp_path / "EuroSAT_MS" / "River" / "r.tif")
    with pytest.raises(InputError, match="the EuroSAT class folders are in .*EuroSAT_MS: give that folder"):
        load_eurosat(tmp_path)
    with pytest.raises(InputError, match="the EuroSAT class folders are in .*EuroSAT_MS: give that folder"):
        evaluate_path(load_cropland_model("cnn", device="cpu"), tmp_path)


def test_class_folders_of_the_official_zip_six_levels_down_are_pointed_to(tmp_path: Path) -> None:
    """EuroSATallBands.zip unpacks to ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/: the hint looked
    one level down only."""
    unzipped = tmp_path / "EuroSATallBands"
    tif = unzipped / "ds" / "images" / "remote_sensing" / "otherDatasets" / "sentinel_2" / "tif"
    (unzipped / "ds" / "images" / "other").mkdir(parents=True)
    _patch(tif / "Forest" / "f.tif")
    _patch(tif / "River" / "r.tif")
    for given in (unzipped, tmp_path):  # the zip's folder, or the one it was unzipped into
        with pytest.raises(InputError, match=f"the EuroSAT class folders are in {re.escape(str(tif))}: give that"):
            load_eurosat(given)
    far = tmp_path / "far"
    for name in ("Forest", "River"):
        _patch(far.joinpath(*["deeper"] * 8, name, "f.tif"))  # beyond HINT_DEPTH: not walked to
    with pytest.raises(InputError) as unhinted:
        load_eurosat(far)
    assert "class folders are in" not in str(unhinted.value)


def test_one_folder_named_as_a_class_or_class_folders_without_patches_are_not_pointed_to(tmp_path: Path) -> None:
    """A photos/River folder of JPEGs, seven levels down at most, was hinted as the EuroSAT class folders."""
    for name in ("River", "Forest"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        (tmp_path / "photos" / name / "holiday.jpg").write_bytes(b"\xff\xd8")
    _patch(tmp_path / "maps" / "Forest" / "f.tif")  # one class folder of GeoTIFFs alone
    with pytest.raises(InputError) as unhinted:
        load_eurosat(tmp_path)
    assert "class folders are in" not in str(unhinted.value)


def test_no_data_pixels_are_not_clear_and_a_patch_of_no_data_is_not_scored(tmp_path: Path) -> None:
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path

    _patch(tmp_path / "AnnualCrop" / "a.tif", zero_rows=3)  # zeros in every band: no data, nodata set or not
    _patch(tmp_path / "AnnualCrop" / "b.tif", value=9, nodata=9)  # every pixel the file's nodata value
    _patch(tmp_path / "Forest" / "c.tif")
    patches = load_eurosat(tmp_path)
    assert patches.clear[0, 0, :3].sum() == 0 and patches.clear[0, 0, 3:].all()
    assert np.isnan(patches.reflectance[0, 0, :, :3]).all() and not patches.clear[1].any()
    report = evaluate_path(load_cropland_model("cnn", device="cpu"), tmp_path)
    assert report["overall"]["n"] == 2 and report["unscored"] == 1


def _dea_table(path: Path, classes: list[float], separator: str = " ", above: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [separator.join(f"{v:g}" for v in [c, *np.linspace(0.05, 0.4, len(DEA_COLUMNS) - 1)]) for c in classes]
    path.write_text(above + "# " + separator.join(DEA_COLUMNS) + "\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("code", ["nan", "2"])
def test_a_dea_class_other_than_0_or_1_is_refused_naming_the_row(tmp_path: Path, code: str) -> None:
    _dea_table(tmp_path / "kenya" / "training_data.txt", [1, 0, float(code), 1])
    with pytest.raises(InputError, match=f"Class must be 1 \\(crop\\) or 0 \\(non-crop\\); data row 3 has {code}"):
        load_dea(tmp_path, ("kenya",))


def test_dea_tables_may_be_comma_separated_with_comments_above_the_header(tmp_path: Path) -> None:
    _dea_table(tmp_path / "a" / "training_data.txt", [1, 0, 1])
    _dea_table(tmp_path / "b" / "training_data.txt", [1, 0, 1], separator=",", above="# exported 2026-11-29\n\n")
    spaced, commas = read_dea_table(tmp_path, "a"), read_dea_table(tmp_path, "b")
    assert spaced.keys() == commas.keys() and all(np.array_equal(spaced[k], commas[k]) for k in spaced)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "training_data.txt").write_text("1 0.1 0.2\n")
    with pytest.raises(InputError, match="no '#' header line naming the columns"):
        read_dea_table(tmp_path, "c")


def test_a_dea_table_of_digital_numbers_is_refused_naming_the_file(tmp_path: Path) -> None:
    from farmcredit.segmentation import load_cropland_model
    from farmcredit.segmentation.metrics import evaluate_path

    table = tmp_path / "kenya" / "training_data.txt"
    _dea_table(table, [1, 0, 1])
    header, *rows = table.read_text().splitlines()
    scaled = [" ".join([row.split()[0], *(f"{float(v) * 10_000:g}" for v in row.split()[1:])]) for row in rows]
    table.write_text("\n".join([header, *scaled]) + "\n")
    with pytest.raises(InputError, match=f"{table}: reflectance must be 0-1"):
        evaluate_path(load_cropland_model("cnn", device="cpu"), tmp_path / "kenya")


def test_evaluate_shows_its_progress_reading_and_scoring_eurosat_patches(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """4,000 patches ran two minutes without a word (27,000: 12-20 minutes): the bar counts files read and scored."""
    from click.testing import CliRunner
    from rich.progress import Progress

    from farmcredit.cli import cli

    for name in ("a", "b", "c"):
        _patch(tmp_path / "AnnualCrop" / f"{name}.tif")
    _patch(tmp_path / "Forest" / "d.tif")
    shown: list[tuple[str, float, float]] = []
    update = Progress.update

    def recorded(self: Progress, task: int, **fields: object) -> None:
        update(self, task, **fields)
        shown.append((self.tasks[task].description, self.tasks[task].completed, self.tasks[task].total))

    monkeypatch.setattr(Progress, "update", recorded)
    done = CliRunner().invoke(cli, ["evaluate", "cnn", str(tmp_path), "--device", "cpu"])
    assert done.exit_code == 0, done.output
    assert [step for step in shown if step[0].startswith("reading")] == [
        ("reading and scoring EuroSAT patches", n, 4) for n in (1, 2, 3, 4)]


def test_evaluate_reads_and_scores_eurosat_a_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every EuroSAT patch was held in memory before any was scored (6-6.5 GB projected for EuroSAT-MS's 27,000
    patches): they are read and scored a chunk of ``PIXELS_PER_CALL`` pixels at a time, never all loaded, the report
    the same whatever the chunk, a file that cannot be read skipped and listed as before."""
    import farmcredit.segmentation.metrics as metrics
    from farmcredit.segmentation.metrics import evaluate_path
    from farmcredit.segmentation.registry import load_cropland_model

    for k in range(5):
        _patch(tmp_path / "AnnualCrop" / f"a{k}.tif", value=900 + 150 * k)
        _patch(tmp_path / "Forest" / f"f{k}.tif", value=400 + 300 * k)
    broken = tmp_path / "Forest" / "f2b.tif"
    broken.write_bytes(b"II*\0 truncated")
    model = load_cropland_model("cnn", device="cpu")
    whole = evaluate_path(model, tmp_path)
    scored: list[int] = []
    probability = metrics.patch_probability
    monkeypatch.setattr(metrics, "patch_probability",
                        lambda model, patches, progress=None: scored.append(len(patches.is_crop))
                        or probability(model, patches, progress))
    monkeypatch.setattr(metrics, "load_eurosat", lambda *args, **kwargs: pytest.fail("every patch loaded at once"))
    monkeypatch.setattr(metrics, "PIXELS_PER_CALL", 3 * 8 * 8)  # three 8 px patches a chunk
    assert evaluate_path(model, tmp_path) == whole
    assert scored == [3, 3, 3, 1] and whole["unreadable"] == [str(broken)] and whole["overall"]["n"] == 10
