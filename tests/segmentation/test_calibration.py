"""`farmcredit calibrate`: Platt scaling and the area interval's margin fitted on a labelled scene, into the card."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from farmcredit.errors import InputError
from farmcredit.evaluation import score_against_truth
from farmcredit.pipeline import run_assessment
from farmcredit.segmentation import load_cropland_model
from farmcredit.segmentation.calibration import calibrate, recalibrated_card
from farmcredit.segmentation.card import DEFAULT_WEIGHTS, card_path, file_sha256, read_card, uncalibrated
from farmcredit.segmentation.cnn import CnnCroplandModel
from farmcredit.segmentation.data import load_labelled_scene
from farmcredit.segmentation.metrics import evaluate_path


def _uncalibrated_copy(folder: Path, **training) -> Path:
    """The shipped weights with the card `farmcredit train` leaves: no Platt scaling, no area margin."""
    weights = folder / "trained.safetensors"
    shutil.copyfile(DEFAULT_WEIGHTS, weights)
    card = read_card(DEFAULT_WEIGHTS)
    card_path(weights).write_text(replace(card, name="trained", calibration=uncalibrated(), metrics={},
                                          training={**card.training, **training}).to_json())
    return weights


def test_calibrating_fits_platt_and_a_margin_whose_interval_holds_the_level_of_the_scenes_parcels(
        small_season, tmp_path: Path) -> None:
    weights = _uncalibrated_copy(tmp_path)
    held_out = {"dea_unseen_regions": {"overall": {"accuracy": 0.6071}}}  # as `farmcredit train` measured it
    card_path(weights).write_text(replace(read_card(weights), metrics=held_out).to_json())
    card = calibrate(weights, small_season.root, device="cpu")
    assert read_card(weights) == card  # the card beside the weights rewritten, the weights untouched
    # Measured uncalibrated, the held-out accuracy is not the calibrated model's: kept aside, and the model renamed,
    # so results before and after calibration do not carry the same model_version.
    assert re.fullmatch(r"trained\+cal-[0-9a-f]{8}", card.name)
    assert list(card.metrics) == ["calibration", "before_calibration"]
    assert card.metrics["before_calibration"]["dea_unseen_regions"] == held_out["dea_unseen_regions"]
    assert card.weights_sha256 == file_sha256(weights) == file_sha256(DEFAULT_WEIGHTS)
    assert card.calibration != uncalibrated() and min(card.area_margins.margins) > 0
    record = card.metrics["calibration"]
    truth = pd.read_csv(small_season.truth_path)
    fitted = ~truth["broken_geometry"]  # the parcels the margins were fitted on, of every size
    assert record["parcels"] == sum(record["parcels_by_area"]) == fitted.sum() < len(truth) and record["level"] == 0.8
    # No size band of this 96 px scene has the parcels to fit alone: each takes the margin of them all.
    assert record["widest_margin_for"] == card.area_margins.labels() and len(set(card.area_margins.margins)) == 1
    assert record["calibrated_from"] == {"name": "trained", "calibration": uncalibrated()} and record["pixels"] > 0

    def gap(table: list[dict]) -> float:  # pixel-weighted distance between predicted and observed, per bin
        return sum(row["n"] * abs(row["predicted"] - row["observed"]) for row in table) / record["pixels"]

    assert gap(record["reliability_calibrated"]) < gap(record["reliability_uncalibrated"])
    results = run_assessment(small_season.parcels_path, small_season.imagery_dir,
                             model=CnnCroplandModel.from_file(weights, device="cpu")).parcels
    truth = truth.astype({"parcel_id": str})
    by_area = score_against_truth(results, truth).interval_coverage_by_area.values()  # the parcels fitted on
    assert sum(n * share for n, share in by_area) / sum(n for n, _ in by_area) >= 0.8


def test_a_copy_is_written_where_asked_and_the_shipped_weights_are_not_rewritten(small_season, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(small_season.root, scene, ignore=shutil.ignore_patterns("truth.csv"))
    with pytest.raises(InputError, match="shipped weights are not rewritten in place"):
        calibrate(DEFAULT_WEIGHTS, scene, device="cpu")
    out = tmp_path / "out" / "calibrated.safetensors"
    with pytest.raises(InputError, match="no parcels.geojson with truth.csv .* or --platt-only"):
        calibrate(DEFAULT_WEIGHTS, scene, out, device="cpu")  # dropping the shipped margin (0.06) needs saying
    assert not out.parent.exists()
    card = calibrate(DEFAULT_WEIGHTS, scene, out, platt_only=True, device="cpu")
    assert "mixed_margin" not in card.calibration and read_card(out) == card  # no truth: Platt alone
    assert card.metrics["calibration"]["calibrated_from"]["calibration"] == read_card(DEFAULT_WEIGHTS).calibration
    assert file_sha256(out) == file_sha256(DEFAULT_WEIGHTS)
    assert min(read_card(DEFAULT_WEIGHTS).area_margins.margins) > 0  # the original card as it was
    other = _uncalibrated_copy(tmp_path)
    shutil.copyfile(DEFAULT_WEIGHTS, other)
    with open(other, "ab") as handle:  # other weights (their card no longer fits them: never read)
        handle.write(b" ")
    before = other.read_bytes()
    with pytest.raises(InputError, match="holds other weights, which a copy of cropland_cnn_v2.safetensors would"):
        calibrate(DEFAULT_WEIGHTS, scene, other, platt_only=True, device="cpu")
    assert other.read_bytes() == before


def test_recalibrating_sets_aside_the_metrics_of_the_former_calibration_and_renames_the_model(
        small_season, tmp_path: Path) -> None:
    """A copy of the shipped model calibrated anew kept its name and its held-out figures (accuracy, the area
    interval's margins and coverage), measured with the shipped calibration, as if they were its own."""
    shipped = read_card(DEFAULT_WEIGHTS)
    out = tmp_path / "recalibrated.safetensors"
    card = calibrate(DEFAULT_WEIGHTS, small_season.root, out, device="cpu")
    assert re.fullmatch(rf"{re.escape(shipped.name)}\+cal-[0-9a-f]{{8}}", card.name)
    assert card.metrics["calibration"]["calibrated_from"] == {"name": shipped.name,
                                                              "calibration": shipped.calibration}
    assert list(card.metrics) == ["calibration", "before_calibration"]  # no area_interval, dea_unseen_regions...
    before = card.metrics["before_calibration"]
    assert "calibration this one replaced" in before["note"]
    assert {key: value for key, value in before.items() if key != "note"} == shipped.metrics
    again = calibrate(out, small_season.root, platt_only=True, device="cpu")  # another calibration: no margin
    assert again.name != card.name and again.name.startswith(f"{shipped.name}+cal-")  # one suffix, the new one's
    assert again.metrics["calibration"]["calibrated_from"] == {"name": card.name, "calibration": card.calibration}
    assert again.metrics["before_calibration"]["calibration"] == card.metrics["calibration"]
    assert again.metrics["before_calibration"]["before_calibration"] == before
    assert read_card(out) == again and read_card(DEFAULT_WEIGHTS) == shipped


def test_a_model_keeps_its_name_only_when_its_calibration_is_unchanged() -> None:
    """A trained model's first calibration kept its name, so results before and after it carried the same
    model_version (only model_hash told them apart)."""
    trained = replace(read_card(DEFAULT_WEIGHTS), name="trained", calibration=uncalibrated())
    fitted = recalibrated_card(trained, {"a": 1.5, "b": -0.25}, {})
    assert re.fullmatch(r"trained\+cal-[0-9a-f]{8}", fitted.name)
    again = recalibrated_card(fitted, {"a": 1.25, "b": 0.0}, {})
    assert again.name.startswith("trained+cal-") and again.name.count("+cal-") == 1 and again.name != fitted.name
    assert recalibrated_card(fitted, dict(fitted.calibration), {}).name == fitted.name


def test_a_margin_recalibrated_alone_keeps_the_measuring_hash_a_platt_fit_does_not() -> None:
    """``calibrate --level 0.8`` on the scene calibrated at 0.9 (the same Platt a/b, other margins) renames the model,
    yet measures nothing anew: its measuring hash, which partition ids hash, is kept; a Platt fit changes it, and
    the audit's hash tells both apart."""
    shipped = load_cropland_model("cnn", device="cpu")
    calibration = shipped.card.calibration

    def recalibrated(model: CnnCroplandModel, **update) -> CnnCroplandModel:
        return CnnCroplandModel(model.net, recalibrated_card(model.card, {**calibration, **update}, {}), "cpu")

    margin = recalibrated(shipped, mixed_margin=[value * 1.1 for value in calibration["mixed_margin"]])
    again = recalibrated(margin, mixed_margin=0.2)  # a recalibrated model recalibrated: its suffix replaced
    platt = recalibrated(shipped, a=calibration["a"] * 1.1)
    assert len({shipped.name, margin.name, again.name}) == 3
    assert shipped.measuring_hash() == margin.measuring_hash() == again.measuring_hash() != platt.measuring_hash()
    assert len({model.describe()["hash"] for model in (shipped, margin, again, platt)}) == 4


def test_labels_of_one_class_and_truth_unfit_to_score_are_refused_before_a_card_is_written(
        small_season, tmp_path: Path) -> None:
    """Labels all non-crop fitted a = 1e222 (every parcel declined), blank truth an infinite margin (the card then
    refused to load), truth of other ids an IndexError."""
    import rasterio

    weights = _uncalibrated_copy(tmp_path)
    before = card_path(weights).read_bytes()
    one_class = tmp_path / "one_class"
    shutil.copytree(small_season.root / "imagery", one_class / "imagery")
    with rasterio.open(small_season.landcover_path) as source:
        profile = {**source.profile, "count": 1, "dtype": "uint8", "nodata": 255}
        with rasterio.open(one_class / "labels.tif", "w", **profile) as labels:
            labels.write(np.zeros(source.shape, dtype="uint8"), 1)
    with pytest.raises(InputError, match="0 labelled crop and 9216 non-crop pixels .* at least 100 of each"):
        calibrate(weights, one_class, platt_only=True, device="cpu")
    scene = tmp_path / "scene"
    shutil.copytree(small_season.root, scene)
    truth = pd.read_csv(small_season.truth_path, dtype={"parcel_id": str})
    truth.loc[:2, "true_cultivated_area_ha"] = np.nan
    truth.to_csv(scene / "truth.csv", index=False)
    with pytest.raises(InputError, match=r"true_cultivated_area_ha is blank, negative or not a number for 3 parcel"):
        calibrate(weights, scene, device="cpu")
    truth.assign(parcel_id="X" + truth["parcel_id"], true_cultivated_area_ha=0.1).to_csv(scene / "truth.csv",
                                                                                          index=False)
    with pytest.raises(InputError, match="none of the 62 parcel ids of its truth.csv is in its parcels.geojson"):
        calibrate(weights, scene, device="cpu")
    (scene / "truth.csv").write_text("")
    with pytest.raises(InputError, match="truth.csv: not a readable CSV table"):
        calibrate(weights, scene, device="cpu")
    assert card_path(weights).read_bytes() == before


def test_a_scene_the_weights_trained_on_is_refused(small_season, tmp_path: Path) -> None:
    trained_on = load_labelled_scene(small_season.root).imagery_sha256()
    weights = _uncalibrated_copy(tmp_path, scene_imagery_sha256=[trained_on])
    before = card_path(weights).read_bytes()
    with pytest.raises(InputError, match="the model trained on this scene's imagery"):
        calibrate(weights, small_season.root, device="cpu")
    assert card_path(weights).read_bytes() == before


def test_a_truth_file_without_the_true_area_is_refused_by_name(small_season, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(small_season.root, scene)
    truth = pd.read_csv(scene / "truth.csv").drop(columns="true_cultivated_area_ha")
    truth.to_csv(scene / "truth.csv", index=False)
    with pytest.raises(InputError, match="truth.csv: no column true_cultivated_area_ha"):
        calibrate(_uncalibrated_copy(tmp_path), scene, device="cpu")


def test_a_truth_file_saved_by_excel_on_chinese_windows_is_refused_saying_how_to_save_it(small_season,
                                                                                         tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(small_season.root, scene)
    truth = pd.read_csv(scene / "truth.csv").assign(note="田")
    truth.to_csv(scene / "truth.csv", index=False, encoding="gbk")
    with pytest.raises(InputError, match=f'truth file {scene / "truth.csv"} is not UTF-8 text .*; save it in Excel as '
                                         r'"CSV UTF-8 \(逗号分隔\)\(\*\.csv\)"'):
        calibrate(_uncalibrated_copy(tmp_path), scene, device="cpu")


def test_the_command_writes_the_card_prints_the_reliability_and_assess_no_longer_warns(small_season,
                                                                                      tmp_path: Path) -> None:
    weights = _uncalibrated_copy(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "farmcredit", *args], capture_output=True, text=True, check=False)

    done = run("calibrate", str(weights), str(small_season.root), "--device", "cpu", "--level", "0.9")
    assert done.returncode == 0, done.stderr
    assert "uncalibrated:" in done.stdout and "calibrated:" in done.stdout
    card = json.loads(card_path(weights).read_text())
    assert card["name"].startswith("trained+cal-")  # a trained model calibrated: results tell the two apart
    said = " ".join(done.stderr.split())
    assert f"wrote {card_path(weights)} (model {card['name']}, calibrated from trained)" in said  # in place: the card
    assert "no calibrated area interval" not in done.stderr  # the model it measures with has none, by design
    margin = card["calibration"]["mixed_margin"][0]
    assert (f"area margins (level 0.9, by parcel size): {margin:g} for under 0.1 ha (16 parcels: too few to fit alone, "
            "the widest)" in " ".join(done.stderr.split()))
    assert "predicted" in done.stdout and "0.9-1.0" in done.stdout
    assert card["metrics"]["calibration"]["level"] == 0.9
    assessed = run("assess", str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir),
                   "--model", str(weights), "--out", str(tmp_path / "out"), "--quiet")
    assert assessed.returncode == 0, assessed.stderr
    assert "no calibrated area interval" not in assessed.stderr
    refused = run("calibrate", str(weights), str(small_season.root), "--level", "1")
    assert refused.returncode == 2 and "--level" in refused.stderr
    assert np.isfinite(card["calibration"]["a"])
    evaluated = run("evaluate", str(weights), str(small_season.root), "--device", "cpu")
    assert "calibrated on this scene: its reliability and area interval here are in-sample" in evaluated.stdout


def test_the_command_names_a_recalibrated_copy_and_says_where_the_former_metrics_went(small_season,
                                                                                      tmp_path: Path) -> None:
    out = tmp_path / "cnn_re.safetensors"
    done = subprocess.run([sys.executable, "-m", "farmcredit", "calibrate", "cnn", str(small_season.root), "--out",
                           str(out), "--device", "cpu"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    card = read_card(out)
    said = " ".join(done.stderr.split())
    assert f"wrote {out} and {card_path(out)} (model {card.name}, calibrated from " in said  # it said the card alone
    assert f"(model {card.name}, calibrated from {read_card(DEFAULT_WEIGHTS).name})" in said
    assert "measured with the former calibration, are now under metrics.before_calibration" in said
    assert "margins were dropped" not in said
    # Platt only, on a model that had margins: said, or assess's warning that it has none would seem to blame train.
    done = subprocess.run([sys.executable, "-m", "farmcredit", "calibrate", str(out), str(small_season.root), "--out",
                           str(tmp_path / "platt.safetensors"), "--platt-only", "--device", "cpu"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "the model's area margins were dropped (--platt-only)" in " ".join(done.stderr.split())
    # --out naming MODEL's own weights (here relative to the folder it runs in) rewrites the card alone: said so.
    done = subprocess.run([sys.executable, "-m", "farmcredit", "calibrate", str(out), str(small_season.root), "--out",
                           out.name, "--platt-only", "--device", "cpu"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert f"wrote {card_path(Path(out.name))} (model " in said  # not "wrote cnn_re.safetensors and cnn_re.json"


def test_scenes_are_pooled_each_counted_and_each_named_in_the_card(small_season, tmp_path: Path) -> None:
    from farmcredit.simulate import SimulationSpec, simulate_season

    other = simulate_season(tmp_path / "other", seed=4, spec=SimulationSpec(size_px=96, n_dates=8))
    weights = _uncalibrated_copy(tmp_path)
    alone = calibrate(weights, small_season.root, tmp_path / "alone.safetensors", device="cpu").metrics["calibration"]
    card = calibrate(weights, [small_season.root, other.root], device="cpu")
    record = card.metrics["calibration"]
    assert record["scenes"] == [str(small_season.root.resolve()), str(other.root.resolve())]
    assert record["imagery_sha256"] == [load_labelled_scene(s.root).imagery_sha256() for s in (small_season, other)]
    # Both scenes' parcels (their ids are each scene's own: P00001 is in both) and pixels.
    measured = sum(int((~pd.read_csv(s.truth_path)["broken_geometry"]).sum()) for s in (small_season, other))
    assert record["parcels"] == measured > alone["parcels"] and record["pixels"] > alone["pixels"]
    for scene in (small_season, other):  # each is in-sample now
        note = evaluate_path(CnnCroplandModel.from_file(weights, device="cpu"), scene.root)["note"]
        assert "calibrated on this scene" in note
    with pytest.raises(InputError, match="give each scene once"):
        calibrate(weights, [small_season.root, small_season.root], device="cpu")
    copy = tmp_path / "copy"  # a backup, or the same seed simulated again: its parcels would count twice
    shutil.copytree(small_season.root, copy)
    with pytest.raises(InputError, match=f"{small_season.root}, {copy}: the same imagery; give each scene once"):
        calibrate(weights, [small_season.root, copy, other.root], device="cpu")
    renamed = tmp_path / "renamed"  # truth ids an export lower-cased: the scene would add nothing to the pool
    shutil.copytree(other.root, renamed)
    truth = pd.read_csv(renamed / "truth.csv")
    truth.assign(parcel_id=truth["parcel_id"].str.lower()).to_csv(renamed / "truth.csv", index=False)
    with pytest.raises(InputError, match=f"{renamed}: none of the {len(truth)} parcel ids of its truth.csv is in its "
                                         "parcels.geojson"):
        calibrate(weights, [small_season.root, renamed], tmp_path / "pooled.safetensors", device="cpu")
    truth.assign(parcel_id=truth["parcel_id"].where(truth.index >= 5, "X" + truth["parcel_id"])).to_csv(
        renamed / "truth.csv", index=False)
    with pytest.warns(UserWarning, match="5 parcel ids of its truth.csv are not in its parcels.geojson"):
        report = evaluate_path(CnnCroplandModel.from_file(weights, device="cpu"), renamed)
    assert report["area"]["parcels_unassessed"] == 0  # scored on the parcels it holds: none taken for a miss
