"""Users' own labels: polygons with a 0/1 ``crop`` column become per-pixel crop shares for training."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from farmcredit.errors import InputError
from farmcredit.segmentation.data import load_labelled_scene


def _polygon_labelled(small_season, folder: Path, crop: pd.Series | None = None) -> gpd.GeoDataFrame:
    """``folder`` with the season's imagery and its wholly cultivated or fallow parcels as labels.gpkg."""
    folder.mkdir()
    (folder / "imagery").symlink_to(small_season.imagery_dir)
    parcels = gpd.read_file(small_season.parcels_path)
    truth = pd.read_csv(small_season.truth_path, dtype={"parcel_id": str})
    labels = parcels.merge(truth[["parcel_id", "true_crop", "partly_cultivated"]], on="parcel_id")
    labels = labels[~labels["partly_cultivated"].astype(str).str.lower().eq("true")].copy()
    labels["crop"] = (labels["true_crop"] != "fallow").astype(int) if crop is None else crop
    # Stored in another CRS than the imagery's: the loader reprojects.
    labels[["parcel_id", "crop", "geometry"]].to_crs(4326).to_file(folder / "labels.gpkg")
    return labels


def test_polygon_labels_agree_with_the_simulated_land_cover(small_season, tmp_path: Path) -> None:
    labels = _polygon_labelled(small_season, tmp_path / "own")
    scene = load_labelled_scene(tmp_path / "own")
    truth = load_labelled_scene(small_season.root)
    known = np.isfinite(scene.crop_cover)
    assert 0.05 < known.mean() < 0.9, "parcels are labelled, the land between them is unknown"
    assert set(np.unique(scene.crop_type)) <= {-1, 0}
    inside = known & np.isin(scene.crop_cover, (0.0, 1.0))
    agree = (scene.crop_cover[inside] >= 0.5) == (truth.crop_cover[inside] >= 0.5)
    assert agree.mean() > 0.95
    assert labels["crop"].nunique() == 2


@pytest.mark.parametrize("crop, message", [("yes", "must be 1 or 0"), (2, "must be 1 or 0")])
def test_polygon_labels_with_bad_crop_values_are_refused(small_season, tmp_path: Path, crop, message) -> None:
    _polygon_labelled(small_season, tmp_path / "bad", crop=crop)
    with pytest.raises(InputError, match=message):
        load_labelled_scene(tmp_path / "bad")


def test_train_and_evaluate_commands_on_polygon_labels(small_season, tmp_path: Path) -> None:
    from farmcredit.cli import cli
    from farmcredit.segmentation.cnn import CnnCroplandModel

    _polygon_labelled(small_season, tmp_path / "own")
    weights = tmp_path / "mine.safetensors"
    trained = CliRunner().invoke(cli, ["train", str(tmp_path / "own"), "--out", str(weights), "--steps", "3",
                                       "--device", "cpu", "--checkpoint", str(tmp_path / "ckpt.safetensors")])
    assert trained.exit_code == 0, trained.output
    model = CnnCroplandModel.from_file(weights, device="cpu")
    assert model.card.training["config"]["steps"] == 3 and model.card.training["scenes"] == [str(tmp_path / "own")]
    assert model.card.training["config"]["atmosphere"] == 0.25  # the default: read L1C and L2A alike
    assert model.card.training["config"]["pixel_crop_share"] is None  # DEA pixels at the labels' own share
    bad_share = CliRunner().invoke(cli, ["train", str(tmp_path / "own"), "--out", str(weights),
                                         "--dea-crop-share", "1"])
    assert bad_share.exit_code == 2 and "--dea-crop-share" in bad_share.output
    evaluated = CliRunner().invoke(cli, ["evaluate", str(weights), str(tmp_path / "own"), "--device", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "accuracy=" in evaluated.output and "confusion" in evaluated.output
    missing = CliRunner().invoke(cli, ["train", str(small_season.imagery_dir), "--out", str(weights), "--steps", "1"])
    assert isinstance(missing.exception, InputError)  # the entry point prints it and exits 2
    assert "no landcover.tif, labels.tif or labels.gpkg" in str(missing.exception)


def test_evaluate_scores_the_rule_and_the_cnn_side_by_side_on_the_same_labels(small_season, tmp_path: Path) -> None:
    from farmcredit.cli import cli

    scores = {}
    for name in ("rule", "cnn"):
        result = CliRunner().invoke(cli, ["evaluate", name, str(small_season.root), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        scores[name] = float(result.output.split("accuracy=")[1].split()[0])
    assert min(scores.values()) > 0.8, scores  # both tell crop from the rest on a simulated season
    (tmp_path / "region").mkdir()
    (tmp_path / "region" / "training_data.txt").write_text("# Class blue_S1\n1 0.1\n")
    refused = CliRunner().invoke(cli, ["evaluate", "rule", str(tmp_path / "region")])
    assert isinstance(refused.exception, InputError) and "labelled scenes only" in str(refused.exception)
