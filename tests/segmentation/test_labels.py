"""Users' own labels: a labels.tif on the imagery grid, or polygons with a 0/1 ``crop`` column, become per-pixel
crop shares for training."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from farmcredit.errors import InputError
from farmcredit.imagery import open_imagery
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


def _raster_labelled(small_season, folder: Path, labels: np.ndarray, **profile) -> Path:
    """``folder`` with the season's imagery and ``labels`` as labels.tif, on the imagery grid unless ``profile``
    says otherwise (e.g. ``crs``, ``transform``, ``nodata``)."""
    folder.mkdir()
    (folder / "imagery").symlink_to(small_season.imagery_dir)
    with rasterio.open(small_season.root / "landcover.tif") as src:
        grid = {"crs": src.crs, "transform": src.transform, "height": src.height, "width": src.width}
    settings = {"driver": "GTiff", "count": 1, "dtype": labels.dtype.name, **grid, **profile}
    with rasterio.open(folder / "labels.tif", "w", **settings) as dst:
        dst.write(labels, 1)
    return folder


def _truth_labels(small_season, crop: int = 1, non_crop: int = 0) -> np.ndarray:
    """The season's crop (cover >= 50%) and non-crop pixels, coded ``crop`` and ``non_crop``."""
    with rasterio.open(small_season.root / "landcover.tif") as src:
        return np.where(src.read(2) >= 50, crop, non_crop).astype(np.uint8)


def test_raster_labels_read_0_1_and_the_files_nodata_or_255_as_unknown(small_season, tmp_path: Path) -> None:
    labels = _truth_labels(small_season)
    labels[:10] = 255
    scene = load_labelled_scene(_raster_labelled(small_season, tmp_path / "plain", labels))
    assert np.isnan(scene.crop_cover[:10]).all() and np.isin(scene.crop_cover[10:], (0.0, 1.0)).all()
    np.testing.assert_array_equal(scene.crop_cover[10:], labels[10:])
    labels[:10] = 9
    scene = load_labelled_scene(_raster_labelled(small_season, tmp_path / "nodata", labels, nodata=9))
    assert np.isnan(scene.crop_cover[:10]).all() and np.isfinite(scene.crop_cover[10:]).all()
    assert set(np.unique(scene.crop_type)) == {-1, 0}


@pytest.mark.parametrize("hidden_by", ["mask", "alpha"])
def test_raster_label_pixels_a_mask_or_alpha_band_hides_are_unknown_not_non_crop(small_season, tmp_path: Path,
                                                                                 hidden_by: str) -> None:
    labels = _truth_labels(small_season)
    shown = np.full(labels.shape, 255, dtype=np.uint8)
    shown[:, :32] = 0  # left out as GIS tools leave pixels out: by a mask, no nodata value
    labels[:, :32] = 0
    folder = _raster_labelled(small_season, tmp_path / hidden_by, labels, count=1 + (hidden_by == "alpha"))
    with rasterio.open(folder / "labels.tif", "r+") as dst:
        if hidden_by == "alpha":
            dst.colorinterp = [rasterio.enums.ColorInterp.gray, rasterio.enums.ColorInterp.alpha]
            dst.write(shown, 2)
        else:
            dst.write_mask(shown)
    scene = load_labelled_scene(folder)
    assert np.isnan(scene.crop_cover[:, :32]).all() and (scene.crop_type[:, :32] == -1).all()
    np.testing.assert_array_equal(scene.crop_cover[:, 32:], labels[:, 32:])


def test_raster_labels_with_other_codes_are_refused_with_the_codes_found(small_season, tmp_path: Path) -> None:
    one_two = _truth_labels(small_season, crop=2, non_crop=1)  # a common coding: 1 non-crop, 2 crop
    with pytest.raises(InputError, match=r"labels.tif: codes 2 are not labels; code each pixel 0 \(non-crop\), 1"):
        load_labelled_scene(_raster_labelled(small_season, tmp_path / "one-two", one_two))
    with pytest.raises(InputError, match="nodata value is 0, which is also a label code"):
        load_labelled_scene(_raster_labelled(small_season, tmp_path / "zero", _truth_labels(small_season), nodata=0))


def test_raster_labels_without_a_labelled_pixel_are_refused(small_season, tmp_path: Path) -> None:
    folder = _raster_labelled(small_season, tmp_path / "empty", np.full((96, 96), 255, np.uint8))
    with pytest.raises(InputError, match=f"{folder}: no pixel is labelled 0 \\(non-crop\\) or 1"):
        load_labelled_scene(folder)


def test_raster_labels_on_another_grid_are_refused_with_both_grids(small_season, tmp_path: Path) -> None:
    labels = _truth_labels(small_season)
    with rasterio.open(small_season.root / "landcover.tif") as src:
        transform, crs = src.transform, src.crs
    five_km_east = transform @ Affine.translation(500, 0)  # 500 px of 10 m
    shifted = _raster_labelled(small_season, tmp_path / "shifted", labels, transform=five_km_east)
    with pytest.raises(InputError, match=rf"transform \({transform.a}, .*the imagery's is \({transform.a}, "):
        load_labelled_scene(shifted)
    geographic = _raster_labelled(small_season, tmp_path / "wgs84", labels, crs="EPSG:4326")
    with pytest.raises(InputError, match=f"CRS EPSG:4326, the imagery's is {crs}"):
        load_labelled_scene(geographic)
    # Reprojected, the labels have another size too: the CRS is the cause to name.
    resized = _raster_labelled(small_season, tmp_path / "resized", labels[:-5], crs="EPSG:4326",
                               height=labels.shape[0] - 5)
    with pytest.raises(InputError, match=f"CRS EPSG:4326, the imagery's is {crs}; reproject"):
        load_labelled_scene(resized)
    noise = Affine(*(v * (1 + 1e-12) for v in tuple(transform)[:6]))  # float noise, not another grid
    assert np.isfinite(load_labelled_scene(_raster_labelled(small_season, tmp_path / "noise", labels,
                                                            transform=noise)).crop_cover).all()


@pytest.mark.parametrize("damage", ["not a tiff", "truncated"])
def test_an_unreadable_labels_tif_is_refused_naming_the_file_by_train_and_evaluate(small_season, tmp_path: Path,
                                                                                   damage) -> None:
    from farmcredit.cli import cli

    folder = _raster_labelled(small_season, tmp_path / "own", _truth_labels(small_season))
    labels = folder / "labels.tif"
    labels.write_bytes(b"not a tiff" if damage == "not a tiff" else labels.read_bytes()[:5000])
    for args in (["train", str(folder), "--out", str(tmp_path / "m.safetensors"), "--steps", "1"],
                 ["evaluate", "cnn", str(folder)]):
        result = CliRunner().invoke(cli, [*args, "--device", "cpu"])
        assert isinstance(result.exception, InputError), result.output  # the entry point prints it and exits 2
        assert str(result.exception).startswith(f"{labels}: not a readable raster")


def test_unreadable_label_polygons_are_refused_naming_the_file(small_season, tmp_path: Path) -> None:
    for name in ("labels.gpkg", "labels.parquet"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / "imagery").symlink_to(small_season.imagery_dir)
        (folder / name).write_text("not a vector file")
        # A GeoPackage by name is checked by content before GDAL opens it (a VRT so named would read what it names).
        said = (f"labels file {folder / name} is of another format, not a GeoPackage file" if name.endswith(".gpkg")
                else f"{folder / name}: not a readable vector file")
        with pytest.raises(InputError, match=re.escape(said)):
            load_labelled_scene(folder)


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
    # Polygons and a labels.tif beside them: which is meant cannot be told, so neither is used.
    (tmp_path / "own" / "labels.tif").write_bytes(b"")
    with pytest.raises(InputError, match="labels in labels.tif and labels.gpkg; keep the one to use"):
        load_labelled_scene(tmp_path / "own")


def test_label_polygons_off_the_imagery_are_counted_in_a_warning(small_season, tmp_path: Path) -> None:
    import shapely.affinity

    labels = _polygon_labelled(small_season, tmp_path / "own").to_crs(4326)
    far = labels.iloc[:2].copy()
    far["geometry"] = far.geometry.apply(lambda shape: shapely.affinity.translate(shape, 1.0, 0.0))  # ~100 km east
    pd.concat([labels, far])[["parcel_id", "crop", "geometry"]].to_file(tmp_path / "own" / "labels.gpkg")
    with pytest.warns(UserWarning, match=f"of {len(labels) + 2} labelled rows, 2 lie off the imagery: they"):
        load_labelled_scene(tmp_path / "own")
    odd = labels.iloc[:2].copy()
    odd["geometry"] = [None, odd.geometry.iloc[1].exterior]  # never drawn; a line: neither is "off the imagery"
    pd.concat([labels, far, odd])[["parcel_id", "crop", "geometry"]].to_file(tmp_path / "own" / "labels.gpkg")
    with pytest.warns(UserWarning, match=f"of {len(labels) + 4} labelled rows, 2 lie off the imagery and 1 has no "
                                         "area and 1 is not a polygon: they label nothing"):
        load_labelled_scene(tmp_path / "own")
    # Metres in a file that says degrees: latitudes past the pole, not placeable (it was a GEOS traceback).
    metres = labels.iloc[:1].copy()
    metres["geometry"] = metres.to_crs(labels.estimate_utm_crs()).geometry.to_numpy()
    pd.concat([labels, metres])[["parcel_id", "crop", "geometry"]].to_file(tmp_path / "own" / "labels.gpkg")
    with pytest.warns(UserWarning, match=f"of {len(labels) + 1} labelled rows, 1 cannot be placed in the imagery's "
                                         r"CRS \(is the file's CRS right\?\)"):
        load_labelled_scene(tmp_path / "own")


def test_a_self_crossing_label_polygon_labels_both_its_lobes(small_season, tmp_path: Path) -> None:
    from shapely.geometry import Polygon

    from farmcredit.segmentation.data import polygon_crop_cover

    imagery = open_imagery(small_season.imagery_dir)
    x0, y0 = imagery.transform.c, imagery.transform.f
    bowtie = Polygon([(x0, y0 - 200), (x0 + 200, y0), (x0 + 200, y0 - 200), (x0, y0)])  # two triangles, crossing
    square = Polygon([(x0, y0 - 200), (x0 + 200, y0 - 200), (x0 + 200, y0), (x0, y0)])
    for name, shape in (("bowtie", bowtie), ("square", square)):
        gpd.GeoDataFrame({"crop": [1]}, geometry=[shape], crs=imagery.crs).to_file(tmp_path / f"{name}.gpkg")
    cover = {name: polygon_crop_cover(tmp_path / f"{name}.gpkg", imagery.crs, imagery.transform, imagery.shape)
             for name in ("bowtie", "square")}
    labelled = {name: np.isfinite(values).sum() for name, values in cover.items()}
    assert labelled["bowtie"] > 0.4 * labelled["square"]  # both lobes (half the square), not one (a quarter)


def test_crop_polygons_over_a_non_crop_background_are_refused_but_a_border_drawn_twice_is_averaged(
        small_season, tmp_path: Path) -> None:
    from shapely.geometry import box

    from farmcredit.segmentation.data import polygon_crop_cover

    imagery = open_imagery(small_season.imagery_dir)
    labels = _polygon_labelled(small_season, tmp_path / "layered")
    whole = box(*rasterio.transform.array_bounds(*imagery.shape, imagery.transform))
    background = gpd.GeoDataFrame({"crop": [0]}, geometry=[whole], crs=imagery.crs)
    fields = labels[labels["crop"] == 1][["crop", "geometry"]]
    pd.concat([background.to_crs(fields.crs), fields]).to_file(tmp_path / "layered" / "labels.gpkg")
    with pytest.raises(InputError, match=r"labels\.gpkg: \d+ cell\(s\) are more than half inside both a crop and a "
                                         r"non-crop polygon \(crop rows 2, 3, 4, 5, 6 and \d+ more; non-crop rows 1; "
                                         r"counting from 1\), so .* cut the crop polygons out of the non-crop ones"):
        load_labelled_scene(tmp_path / "layered")
    x0, y0 = imagery.transform.c, imagery.transform.f
    field, beside = box(x0 + 100, y0 - 300, x0 + 300, y0 - 100), box(x0 + 298, y0 - 300, x0 + 500, y0 - 100)
    gpd.GeoDataFrame({"crop": [1, 0]}, geometry=[field, beside], crs=imagery.crs).to_file(tmp_path / "twice.gpkg")
    cover = polygon_crop_cover(tmp_path / "twice.gpkg", imagery.crs, imagery.transform, imagery.shape)
    np.testing.assert_allclose(cover[11:29, 29], 1 / 1.2, rtol=1e-6)  # 2 m of a 10 m cell labelled both: mixed


@pytest.mark.parametrize("crop, message", [("yes", r"\d+ row\(s\) hold 'yes', first at row 1 "),
                                           (2, r"\d+ row\(s\) hold 2, first at row 1 ")])
def test_polygon_labels_with_bad_crop_values_are_refused(small_season, tmp_path: Path, crop, message) -> None:
    _polygon_labelled(small_season, tmp_path / "bad", crop=crop)
    with pytest.raises(InputError, match=r"labels\.gpkg: 'crop' must be 1 \(crop\) or 0 \(non-crop\) in every row; "
                                         + message):
        load_labelled_scene(tmp_path / "bad")


def test_bad_crop_values_are_listed_with_the_first_row_that_holds_one(small_season, tmp_path: Path) -> None:
    labels = _polygon_labelled(small_season, tmp_path / "ok")
    crop = labels["crop"].astype(object).copy()
    crop.iloc[[2, 5, 6]] = ["maybe", 7, "maybe"]
    _polygon_labelled(small_season, tmp_path / "bad", crop=crop)
    with pytest.raises(InputError, match=r"3 row\(s\) hold 'maybe', '7', first at row 3 \(counting from 1\)"):
        load_labelled_scene(tmp_path / "bad")


def test_label_polygons_in_several_layers_are_refused_naming_them(small_season, tmp_path: Path) -> None:
    labels = _polygon_labelled(small_season, tmp_path / "layers")
    path = tmp_path / "layers" / "labels.gpkg"
    path.unlink()
    for name, crop in (("non_crop_fields", 0), ("crop_fields", 1)):
        labels[labels["crop"] == crop][["crop", "geometry"]].to_file(path, layer=name, mode="a" if crop else "w")
    with pytest.raises(InputError, match=r"labels\.gpkg: holds 2 layers \(non_crop_fields, crop_fields\); labels "
                                         r"are read from one"):
        load_labelled_scene(tmp_path / "layers")
    # A table without geometry (QGIS's layer_styles, a style saved in the file) is no layer of labels.
    path.unlink()
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["crop"]}), path, layer="layer_styles", driver="GPKG")
    labels[["crop", "geometry"]].to_file(path, layer="fields", mode="a")
    _polygon_labelled(small_season, tmp_path / "layers_one")
    assert sorted(str(kind) for _, kind in pyogrio.list_layers(path)) == ["None", "Polygon"]
    np.testing.assert_array_equal(load_labelled_scene(tmp_path / "layers").crop_cover,
                                  load_labelled_scene(tmp_path / "layers_one").crop_cover)


def test_labels_of_one_class_only_are_warned_of(small_season, tmp_path: Path) -> None:
    crop_only = np.where(_truth_labels(small_season) == 1, 1, 255).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"crop_only: all \d+ labelled pixels are crop: a model learns nothing of "
                                         r"non-crop from this scene"):
        load_labelled_scene(_raster_labelled(small_season, tmp_path / "crop_only", crop_only))


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
    assert model.card.training["config"]["narrow_nir_fill"] == 0.5  # half the DEA batches given B8A
    asked = CliRunner().invoke(cli, ["train", str(tmp_path / "own"), "--out", str(tmp_path / "asked.safetensors"),
                                     "--steps", "1", "--device", "cpu", "--dea-b8a-fill", "0", "--atmosphere", "0",
                                     "--dea-crop-share", "0.3"])
    assert asked.exit_code == 0, asked.output
    config = CnnCroplandModel.from_file(tmp_path / "asked.safetensors").card.training["config"]
    assert (config["narrow_nir_fill"], config["atmosphere"], config["pixel_crop_share"]) == (0, 0, 0.3)
    bad_share = CliRunner().invoke(cli, ["train", str(tmp_path / "own"), "--out", str(weights),
                                         "--dea-crop-share", "1"])
    assert bad_share.exit_code == 2 and "--dea-crop-share" in bad_share.output
    evaluated = CliRunner().invoke(cli, ["evaluate", str(weights), str(tmp_path / "own"), "--device", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "accuracy=" in evaluated.output and "confusion" in evaluated.output
    assert "note: the model trained on this scene: not a held-out score" in evaluated.output
    layout_on_folder = CliRunner().invoke(cli, ["evaluate", "cnn", str(tmp_path / "own"), "--device", "cpu",
                                                "--bands", "2021-06-17:B04,B03,B02,B08"])
    assert "applies to a GeoTIFF stack" in str(layout_on_folder.exception)  # not silently ignored
    missing = CliRunner().invoke(cli, ["train", str(small_season.imagery_dir), "--out", str(weights), "--steps", "1"])
    assert isinstance(missing.exception, InputError)  # the entry point prints it and exits 2
    assert "no landcover.tif, labels.tif or labels.gpkg" in str(missing.exception)


def test_evaluate_scores_the_rule_and_the_cnn_side_by_side_on_the_same_labels(small_season, tmp_path: Path) -> None:
    from farmcredit.cli import cli

    scores, area = {}, {}
    for name in ("rule", "cnn"):
        result = CliRunner().invoke(cli, ["evaluate", name, str(small_season.root), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        scores[name] = float(result.output.split("accuracy=")[1].split()[0])
        area[name] = result.output.split("cultivated area, ")[1]
    assert min(scores.values()) > 0.8, scores  # both tell crop from the rest on a simulated season
    # Its parcels with their truth: the area and its interval, by parcel size (all 59 measured, 16 under 0.1 ha).
    for text in area.values():
        assert text.startswith("43 parcels of 0.1 ha and more") and "within 10% of truth" in text
        assert re.search(r"\n  truth inside the interval, parcels under 0\.1 ha: [\d.]+% of 16 "
                         r"\(95% range [\d.-]+%\)\n", text)
    no_truth = tmp_path / "no_truth"
    shutil.copytree(small_season.root, no_truth, ignore=shutil.ignore_patterns("truth.csv"))
    assert "cultivated area" not in CliRunner().invoke(cli, ["evaluate", "rule", str(no_truth)]).output
    other_truth = tmp_path / "other_truth"  # a truth.csv of another kind: the pixels are still scored, the area not
    shutil.copytree(small_season.root, other_truth)
    truth = other_truth / "truth.csv"
    pd.read_csv(truth).drop(columns="polygon_area_ha").to_csv(truth, index=False)
    said = CliRunner().invoke(cli, ["evaluate", "rule", str(other_truth)])
    assert said.exit_code == 0 and "accuracy=" in said.output
    assert "cultivated area not scored: " in said.output and "no column polygon_area_ha" in said.output
    (tmp_path / "region").mkdir()
    (tmp_path / "region" / "training_data.txt").write_text("# Class blue_S1\n1 0.1\n")
    refused = CliRunner().invoke(cli, ["evaluate", "rule", str(tmp_path / "region")])
    assert isinstance(refused.exception, InputError) and "labelled scenes only" in str(refused.exception)


def test_train_and_evaluate_read_a_labelled_geotiff_stack_with_a_band_layout(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    from farmcredit.cli import cli

    rng = np.random.default_rng(3)
    rows, cols = 40, 48
    crop = np.zeros((rows, cols), dtype=np.uint8)
    crop[:, : cols // 2] = 1
    # Two dates of red, green, blue, nir (x 10000): the crop half green in the second, the other half bare.
    bare, green = (0.20, 0.15, 0.10, 0.25), (0.04, 0.08, 0.03, 0.45)
    bands = [np.where(crop == 1, g if date == 1 else b, b) for date in (0, 1) for b, g in zip(bare, green)]
    stack = (np.stack(bands) * 10_000 + rng.integers(0, 100, (8, rows, cols))).astype(np.uint16)
    profile = {"driver": "GTiff", "width": cols, "height": rows, "crs": "EPSG:32633",
               "transform": from_origin(600_000, 5_300_000, 10, 10)}
    folder = tmp_path / "stacked"
    folder.mkdir()
    with rasterio.open(folder / "imagery.tif", "w", count=8, dtype="uint16", **profile) as dst:
        dst.write(stack)
    labels = np.where(np.arange(cols)[None] % 10 == 0, 255, crop).astype(np.uint8)  # every tenth column unknown
    with rasterio.open(folder / "labels.tif", "w", count=1, dtype="uint8", **profile) as dst:
        dst.write(labels[None])
    layout = "2021-06-17:B04,B03,B02,B08;2021-09-25:B04,B03,B02,B08"
    weights = tmp_path / "stacked.safetensors"
    trained = CliRunner().invoke(cli, ["train", str(folder), "--bands", layout, "--out", str(weights),
                                       "--steps", "2", "--device", "cpu"])
    assert trained.exit_code == 0, trained.output
    evaluated = CliRunner().invoke(cli, ["evaluate", str(weights), str(folder), "--bands", layout, "--device", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    # The scores, after the warning that an RGBN stack has no SCL where the log reaches the output.
    assert f"\nscene: n={int((labels != 255).sum())} " in f"\n{evaluated.output}"
    unnamed = CliRunner().invoke(cli, ["evaluate", str(weights), str(folder), "--device", "cpu"])
    assert unnamed.exception is not None and "--bands" in str(unnamed.exception)
    # The same stack written with L2A's +1000 DN offset (baseline 04.00+): read alike once --dn-offset says so (each
    # offset given, no date is warned of as read with an offset unknown).
    offset = tmp_path / "offset"
    offset.mkdir()
    with rasterio.open(offset / "imagery.tif", "w", count=8, dtype="uint16", **profile) as dst:
        dst.write(stack + 1000)
    (offset / "labels.tif").write_bytes((folder / "labels.tif").read_bytes())
    said = [CliRunner().invoke(cli, ["evaluate", "cnn", str(scene), "--bands", layout, "--device", "cpu",
                                     *extra]).output
            for scene, extra in ((folder, ["--dn-offset", "0"]), (offset, ["--dn-offset", "-1000"]), (offset, []))]
    assert said[0] == said[1] != said[2] and "\nscene: " in f"\n{said[0]}"
    retrained = CliRunner().invoke(cli, ["train", str(offset), "--bands", layout, "--dn-offset", "-1000", "--out",
                                         str(tmp_path / "offset.safetensors"), "--steps", "2", "--device", "cpu"])
    assert retrained.exit_code == 0, retrained.output
    # Digital numbers in a float stack (an Earth Engine export cast to float) are read as digital numbers.
    floats = tmp_path / "floats"
    floats.mkdir()
    with rasterio.open(floats / "imagery.tif", "w", count=8, dtype="float32", **profile) as dst:
        dst.write(stack.astype(np.float32))
    (floats / "labels.tif").write_bytes((folder / "labels.tif").read_bytes())
    as_floats = CliRunner().invoke(cli, ["evaluate", "cnn", str(floats), "--bands", layout, "--device", "cpu",
                                         "--dn-offset", "0"])
    assert as_floats.exit_code == 0 and as_floats.output == said[0], as_floats.output
    # What evaluate and assess refuse, train refuses too (it trained, and the model then ran silently on 0-1 data):
    # red and NIR swapped by --bands.
    swapped = layout.replace("B04", "B99").replace("B08", "B04").replace("B99", "B08")
    refused = CliRunner().invoke(cli, ["train", str(folder), "--bands", swapped, "--out",
                                       str(tmp_path / "refused.safetensors"), "--steps", "2", "--device", "cpu"])
    assert isinstance(refused.exception, InputError) and "bands look mislabelled" in str(refused.exception)
    assert not (tmp_path / "refused.safetensors").exists()


def _labelled_stack(folder: Path, bands: tuple[str, ...], reflectance: float = 0.2) -> str:
    """``folder`` with a two-date float ``imagery.tif`` of ``bands`` (each ``reflectance``, NaN for NaN) and half-crop
    ``labels.tif``; returns its band layout."""
    from rasterio.transform import from_origin

    rows, cols = 40, 40
    profile = {"driver": "GTiff", "width": cols, "height": rows, "crs": "EPSG:32633",
               "transform": from_origin(600_000, 5_300_000, 10, 10)}
    folder.mkdir()
    with rasterio.open(folder / "imagery.tif", "w", count=2 * len(bands), dtype="float32", **profile) as dst:
        dst.write(np.full((2 * len(bands), rows, cols), reflectance, dtype=np.float32))
    labels = np.zeros((1, rows, cols), dtype=np.uint8)
    labels[..., : cols // 2] = 1
    with rasterio.open(folder / "labels.tif", "w", count=1, dtype="uint8", **profile) as dst:
        dst.write(labels)
    return ";".join(f"2021-0{month}-15:{','.join(bands)}" for month in (6, 8))


def test_labelled_imagery_without_red_or_nir_is_refused_as_assess_refuses_it(tmp_path: Path) -> None:
    """Its missing band was read as NaN, so every pixel was never clear: evaluate and calibrate said no pixel had a
    clear date, and train with --init wrote its starting weights back unchanged as trained on the scene."""
    from farmcredit.cli import cli
    from farmcredit.errors import ImageryError

    for missing in ("B08", "B04"):
        folder = tmp_path / f"no_{missing}"
        layout = _labelled_stack(folder, tuple(b for b in ("B02", "B03", "B04", "B08") if b != missing))
        out = tmp_path / f"no_{missing}.safetensors"
        for args in (["train", str(folder), "--init", "cnn", "--out", str(out), "--steps", "1"],
                     ["evaluate", "cnn", str(folder)],
                     ["calibrate", "cnn", str(folder), "--platt-only", "--out", str(out)]):
            result = CliRunner().invoke(cli, [*args, "--bands", layout, "--device", "cpu"])
            assert isinstance(result.exception, ImageryError), result.output  # the entry point prints it and exits 2
            assert str(result.exception) == (
                f"imagery {folder / 'imagery.tif'} lacks {missing} in some or all scenes (bands in every scene: "
                f"{', '.join(b for b in ('B02', 'B03', 'B04', 'B08') if b != missing)}); NDVI needs red (B04) and "
                "NIR (B08)")
            assert not out.exists() and not out.with_suffix(".json").exists()


def test_training_on_labelled_imagery_of_no_clear_value_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    from farmcredit.cli import cli

    folder = tmp_path / "all_nan"
    layout = _labelled_stack(folder, ("B02", "B03", "B04", "B08"), reflectance=np.nan)
    for init in (["--init", "cnn"], []):
        out = tmp_path / "nan.safetensors"
        result = CliRunner().invoke(cli, ["train", str(folder), "--bands", layout, *init, "--out", str(out),
                                          "--steps", "1", "--device", "cpu"])
        assert isinstance(result.exception, InputError), result.output
        assert str(result.exception).startswith(f"nothing to train on: no labelled pixel of {folder} has a clear date "
                                                "with red (B04) and NIR (B08) reflectance")
        assert not out.exists() and not out.with_suffix(".json").exists()
