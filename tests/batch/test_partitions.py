"""Partition plans: stable ids, every windowed parcel once, complete files told from broken ones."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity
from pyproj import CRS

from farmcredit.batch.partitions import (
    fill_stats,
    is_complete,
    plan_partitions,
    stats_frame,
    write_manifest,
    write_temporary,
)
from farmcredit.config import load_config
from farmcredit.pipeline import empty_stats, load_inputs, plan_windows


def _inputs(small_season, chunk_px: int = 64):
    config = load_config()
    config = config.model_copy(update={"imagery": config.imagery.model_copy(update={"chunk_px": chunk_px})})
    return load_inputs(small_season.parcels_path, small_season.imagery_dir, config=config)


def test_partitions_cover_each_windowed_parcel_once_with_ids_stable_across_reruns(small_season) -> None:
    inputs = _inputs(small_season)
    plan = plan_partitions(inputs, "rule", 10)
    windowed = np.concatenate([m for _, m in plan_windows(inputs.geoms, inputs.imagery, 64)])
    rows = np.concatenate([p.rows for p in plan])
    assert len(plan) > 1 and np.array_equal(np.sort(rows), np.sort(windowed))
    rerun = plan_partitions(_inputs(small_season), "rule", 10)
    assert [p.partition_id for p in plan] == [p.partition_id for p in rerun]
    assert all(len(p.rows) == sum(len(m) for _, m in p.windows) for p in plan)


def test_a_moved_parcel_or_another_model_changes_the_ids(small_season) -> None:
    inputs = _inputs(small_season)
    before = {p.partition_id for p in plan_partitions(inputs, "rule", 10)}
    assert before.isdisjoint(p.partition_id for p in plan_partitions(inputs, "cnn", 10))
    moved = inputs.geoms.copy()
    moved[0] = shapely.affinity.translate(moved[0], 1.0, 0.0)
    changed = {p.partition_id for p in plan_partitions(type(inputs)(**{**vars(inputs), "geoms": moved}), "rule", 10)}
    assert len(before - changed) == 1


def test_the_same_parcels_in_another_order_keep_every_partition(small_season) -> None:
    """A portfolio exported again in another order (by borrower, reversed, unordered) is measured once: each window's
    parcels are planned by id and outline, the order its file keeps them in, whatever rows they come from."""
    inputs = _inputs(small_season)
    plan = plan_partitions(inputs, "rule", 10)
    for order in (np.r_[1 : len(inputs.table), 0], np.arange(len(inputs.table))[::-1],
                  np.random.default_rng(0).permutation(len(inputs.table))):
        table = inputs.table.iloc[order].reset_index(drop=True)
        reordered = plan_partitions(type(inputs)(**{**vars(inputs), "table": table, "geoms": inputs.geoms[order]}),
                                    "rule", 10)
        assert [p.partition_id for p in reordered] == [p.partition_id for p in plan]
        ids = inputs.table["parcel_id"].to_numpy()
        for before, after in zip(plan, reordered):
            assert list(table["parcel_id"].to_numpy()[after.rows]) == list(ids[before.rows])


def test_a_band_file_rewritten_in_place_at_the_same_size_changes_the_ids(small_season, tmp_path: Path) -> None:
    import os

    shutil.copytree(small_season.imagery_dir, tmp_path / "imagery")
    config = _inputs(small_season).config

    def ids() -> set[str]:
        inputs = load_inputs(small_season.parcels_path, tmp_path / "imagery", config=config)
        return {p.partition_id for p in plan_partitions(inputs, "rule", 10)}

    before = ids()
    assert ids() == before
    band = sorted((tmp_path / "imagery").glob("*/B08.tif"))[0]
    stat = band.stat()
    os.utime(band, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # as an edit in place leaves it
    assert before.isdisjoint(ids())


def test_a_band_file_in_a_zip_is_known_by_the_zips_size_and_time(tmp_path: Path) -> None:
    """A SAFE .zip replaced under the same name is another product."""
    import os
    import zipfile

    from farmcredit.batch.partitions import _file_key

    archive = tmp_path / "S2B_MSIL2A.SAFE.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("S2B_MSIL2A.SAFE/B04_10m.jp2", b"jp2")
    member = f"/vsizip/{archive}/S2B_MSIL2A.SAFE/B04_10m.jp2"
    before = _file_key(member)
    stat = archive.stat()
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert before.startswith(f"{member}#{stat.st_size}@") and _file_key(member) != before


def test_another_dn_offset_band_order_or_files_change_the_ids(small_season, tmp_path: Path) -> None:
    """A rerun with a corrected ``--dn-offset`` or ``--bands`` must measure again, not reuse the stale files."""
    from dataclasses import replace

    inputs = _inputs(small_season)
    before = {p.partition_id for p in plan_partitions(inputs, "rule", 10)}

    for change in (lambda s: replace(s, dn_offset=s.dn_offset - 1000),
                   lambda s: replace(s, band_paths={**s.band_paths, "B02": s.band_paths["B04"],
                                                    "B04": s.band_paths["B02"]})):
        imagery = replace(inputs.imagery, scenes=(change(inputs.imagery.scenes[0]), *inputs.imagery.scenes[1:]))
        again = plan_partitions(type(inputs)(**{**vars(inputs), "imagery": imagery}), "rule", 10)
        assert before.isdisjoint(p.partition_id for p in again)
    # Files of the same names elsewhere (say another processing level of the same scenes) are other inputs.
    shutil.copytree(small_season.imagery_dir, tmp_path / "imagery")
    config = inputs.config
    elsewhere = plan_partitions(load_inputs(small_season.parcels_path, tmp_path / "imagery", config=config), "rule", 10)
    assert before.isdisjoint(p.partition_id for p in elsewhere)


def test_other_measuring_code_or_settings_change_the_ids_but_credit_code_or_settings_do_not(
    small_season, monkeypatch, tmp_path: Path
) -> None:
    """A run resumed after an upgrade of what measures measures again (two versions' files never make one
    result); one after a change to what only finishes the run (credit, outputs) reuses every file."""
    import farmcredit
    import farmcredit.hashing as hashing

    inputs = _inputs(small_season)

    def ids(inputs=inputs) -> set[str]:
        return {p.partition_id for p in plan_partitions(inputs, "rule", 10)}

    before = ids()
    # The package's code copied elsewhere (installed, say) keeps the ids.
    copy = tmp_path / "farmcredit"
    shutil.copytree(Path(farmcredit.__file__).parent, copy, ignore=shutil.ignore_patterns("*.safetensors"))
    monkeypatch.setattr(hashing, "__file__", str(copy / "hashing.py"))
    assert ids() == before
    for finishing in ("credit/limit.py", "outputs/rasters.py", "agronomy/signals.py", "cli.py", "audit.py"):
        path = copy / finishing
        path.write_text(path.read_text() + "# another version\n")
    assert ids() == before
    def configured(section: str, **change) -> object:
        updated = getattr(inputs.config, section).model_copy(update=change)
        return type(inputs)(**{**vars(inputs), "config": inputs.config.model_copy(update={section: updated})})

    assert ids(configured("credit", max_reasons=inputs.config.credit.max_reasons + 1)) == before
    assert before.isdisjoint(ids(configured("imagery", clear_scl_classes=(4, 5))))
    for measuring in ("pipeline.py", "zonal/stats.py", "segmentation/rule.py", "imagery/read.py"):
        path = copy / measuring
        path.write_text(path.read_text() + "# another version\n")
        assert before.isdisjoint(ids()), measuring
        path.write_text(path.read_text().removesuffix("# another version\n"))
        assert ids() == before


def test_measuring_a_partition_runs_only_code_its_id_hashes(small_season, tmp_path: Path) -> None:
    """Code outside ``MEASURING_CODE`` may change without measuring again, so none of it may run in a partition."""
    import sys

    from farmcredit.batch.partitions import MEASURING_CODE
    from farmcredit.batch.runner import measure_partition
    from farmcredit.hashing import source_files
    from farmcredit.segmentation import load_cropland_model

    package = Path(source_files("hashing.py")[0]).parent
    inputs = _inputs(small_season)
    ran: set[str] = set()

    def record(frame, event, arg) -> None:
        if event == "call":
            ran.add(frame.f_code.co_filename)

    for name in ("rule", "cnn"):
        model = load_cropland_model(name, inputs.config.cropland_rule, device="cpu")
        part = plan_partitions(inputs, model.describe()["hash"], 10**6)[0]
        ids, geoms = inputs.table["parcel_id"].to_numpy()[part.rows], inputs.geoms[part.rows]
        sys.setprofile(record)
        try:
            result = measure_partition(part, ids, geoms, inputs.imagery, inputs.config, model, False,
                                       tmp_path / "part.parquet")
        finally:
            sys.setprofile(None)
        # The task leaves its file hidden for the driver to rename: one left running by a killed driver cannot put a
        # part file among a later run's.
        assert result["file"].startswith(".part.parquet.") and (tmp_path / result["file"]).is_file()
        assert not (tmp_path / "part.parquet").exists()
    in_package = {Path(f).resolve() for f in ran if Path(f).resolve().is_relative_to(package)}
    assert package / "segmentation" / "cnn.py" in in_package and package / "zonal" / "stats.py" in in_package
    assert not in_package - set(source_files(*MEASURING_CODE))


def test_stats_round_trip_through_a_geoparquet_partition_file_and_broken_files_are_incomplete(
        tmp_path: Path) -> None:
    stats = empty_stats(5, 3)
    stats["ndvi"][:] = np.arange(15.0).reshape(5, 3)
    stats["inside"][:] = 0.5
    rows = np.array([7, 1, 4, 0, 9])
    path = tmp_path / "part-x.parquet"
    ids = np.array(["a", "b", "c", "d", "e"])
    squares = shapely.box(rows * 10.0, 0.0, rows * 10.0 + 5.0, 5.0)
    os.replace(write_temporary(stats_frame(rows, ids, squares, CRS.from_epsg(32650), stats), path), path)
    assert is_complete(path, 5) and not is_complete(path, 6) and not list(tmp_path.glob(".*.tmp"))
    stats["read_error"][2] = True  # a band file short of the scene's extent: so on every read of that file
    os.replace(write_temporary(stats_frame(rows, ids, squares, CRS.from_epsg(32650), stats), path), path)
    assert is_complete(path, 5)
    stats["context_failed"][:] = True  # the model's context lost pixels: measured again where the model reads one
    os.replace(write_temporary(stats_frame(rows, ids, squares, CRS.from_epsg(32650), stats), path), path)
    assert is_complete(path, 5) and not is_complete(path, 5, reads_context=True)
    stats["read_failed"][2] = True  # a read that failed, perhaps for a moment: measured again
    os.replace(write_temporary(stats_frame(rows, ids, squares, CRS.from_epsg(32650), stats), path), path)
    assert not is_complete(path, 5)
    # A GeoParquet file (geo metadata, CRS, outlines), readable as a dataset with the folder's other parts.
    other = tmp_path / "part-y.parquet"
    os.replace(write_temporary(stats_frame(rows + 10, ids, squares, CRS.from_epsg(32650), stats), other), other)
    (tmp_path / "_manifest.json").write_text("{}")
    (tmp_path / ".part-z.parquet.0.tmp").write_bytes(b"half a file")
    dataset = gpd.read_parquet(tmp_path)
    assert len(dataset) == 10 and dataset.crs.to_epsg() == 32650
    one = gpd.read_parquet(path)
    assert list(one["parcel_id"]) == list(ids) and one.geometry.equals(gpd.GeoSeries(squares, crs=32650))
    full = empty_stats(12, 3)
    now = rows + 2  # the same parcels two rows further down the table in this run
    fill_stats(full, path, now)
    assert np.array_equal(full["ndvi"][now], stats["ndvi"]) and full["read_error"][6]
    assert np.isnan(full["ndvi"][[0, 1, 4]]).all()
    path.write_bytes(path.read_bytes()[:40])
    assert not is_complete(path, 5) and not is_complete(tmp_path / "missing.parquet", 5)


def test_a_part_of_the_package_that_is_not_there_is_an_error_not_an_empty_hash() -> None:
    import pytest

    from farmcredit.batch.partitions import MEASURING_CODE
    from farmcredit.hashing import source_files

    assert all(source_files(part) for part in MEASURING_CODE)
    with pytest.raises(FileNotFoundError, match="no_such_module.py"):
        source_files("pipeline.py", "no_such_module.py")



def test_a_margin_calibrated_anew_keeps_the_partitions_and_anything_measured_differently_does_not(
        small_season) -> None:
    """The interval's margins are applied after measuring: partition ids leave them out, and nothing else (a margin
    recalibrated alone renames the model NAME+cal-<hash>, which they leave out too)."""
    from dataclasses import replace

    from farmcredit.batch.partitions import measuring_key
    from farmcredit.segmentation import PhenologyRule, load_cropland_model
    from farmcredit.segmentation.calibration import recalibrated_card
    from farmcredit.segmentation.cnn import CnnCroplandModel

    inputs = _inputs(small_season)
    rule = inputs.config.cropland_rule

    def ids(config=inputs.config, model=None) -> list[str]:
        model = model or PhenologyRule(config.cropland_rule)
        return [p.partition_id for p in plan_partitions(replace(inputs, config=config), measuring_key(model), 10)]

    def with_rule(**update) -> object:
        return inputs.config.model_copy(update={"cropland_rule": rule.model_copy(update=update)})

    assert ids(with_rule(mixed_margin=(0.5,), area_bands_ha=())) == ids()
    assert ids(with_rule(scale=0.05)) != ids()  # a threshold measures otherwise
    cnn = load_cropland_model("cnn", device="cpu")

    def calibrated(**update) -> CnnCroplandModel:
        return CnnCroplandModel(cnn.net, recalibrated_card(cnn.card, {**cnn.card.calibration, **update}, {}), "cpu")

    recalibrated, replatted = calibrated(mixed_margin=0.5), calibrated(a=2.0)
    assert recalibrated.name != cnn.name
    assert measuring_key(recalibrated) == measuring_key(cnn) != measuring_key(replatted)
    assert ids(model=recalibrated) == ids(model=cnn) != ids(model=replatted)
    assert recalibrated.describe()["hash"] != cnn.describe()["hash"]  # the audit record still tells them apart


def test_a_manifest_its_full_disk_cannot_take_is_an_input_error_saying_the_space_and_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`batch` on a full disk ended in a traceback (exit 1), leaving ._manifest.json.<uuid>.tmp files."""
    from farmcredit.errors import InputError

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    entry = {"id": "a", "status": "done"}
    with pytest.raises(InputError, match=r"_manifest.json stopped: No space left on device \([0-9,.]+ MiB free on "):
        write_manifest(tmp_path / "_manifest.json", {"a": entry})
    assert not list(tmp_path.iterdir())
