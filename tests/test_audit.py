"""The audit record's file fingerprints: the same bytes, the same hash; any input that decides, in it."""

import copy
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from safe_products import write_safe, zip_safe
from shapely.geometry import box

import farmcredit
from farmcredit.audit import build_run_record, file_fingerprint, scene_record
from farmcredit.config import load_config
from farmcredit.imagery import open_imagery
from farmcredit.outputs import write_outputs


def test_a_shapefiles_fingerprint_covers_its_attributes_and_crs(tmp_path: Path) -> None:
    """Declarations live in the .dbf and the CRS in the .prj: changing either changes the hash."""
    frame = gpd.GeoDataFrame({"parcel_id": ["P1"], "area_ha": [0.26]}, geometry=[box(0, 0, 50, 50)],
                             crs="EPSG:32650")
    frame.to_file(tmp_path / "parcels.shp")
    before = file_fingerprint(tmp_path / "parcels.shp")
    assert set(before["sidecars"]) >= {"parcels.dbf", "parcels.shx", "parcels.prj"}
    assert file_fingerprint(tmp_path / "parcels.shp") == before
    frame.assign(area_ha=[5.0]).to_file(tmp_path / "parcels.shp")
    declared = file_fingerprint(tmp_path / "parcels.shp")
    assert declared["sha256"] != before["sha256"] and declared["bytes"] == before["bytes"]
    frame.set_crs("EPSG:32649", allow_override=True).to_file(tmp_path / "parcels.shp")
    assert file_fingerprint(tmp_path / "parcels.shp")["sha256"] not in (before["sha256"], declared["sha256"])


@pytest.mark.parametrize("name", ["parcels.gpkg", "parcels.shp.zip"])
def test_other_files_hash_alone(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"some bytes")
    (tmp_path / "parcels.dbf").write_bytes(b"not its sidecar")
    expected = {"path": str(path), "bytes": 10, "sha256": hashlib.sha256(b"some bytes").hexdigest()}
    assert file_fingerprint(path) == expected


def test_records_vouch_for_the_parcel_file_as_read_name_overlaps_and_hash_outlines_by_their_land(
        small_season, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import farmcredit.pipeline as pipeline
    from farmcredit.audit import decision_records

    parcels = gpd.read_file(small_season.parcels_path).head(6)
    # The same land, another borrower, under an id holding the ';' that joins ids in the tables.
    twice = parcels.iloc[[0]].assign(parcel_id="AGAIN;2", borrower_id="OTHER")
    path = tmp_path / "parcels.gpkg"
    gpd.GeoDataFrame(pd.concat([parcels, twice], ignore_index=True), crs=parcels.crs).to_file(path)
    as_read = file_fingerprint(path)
    measure = pipeline.measure_parcels

    imagery = tmp_path / "imagery"  # a copy: the season is shared with other tests
    shutil.copytree(small_season.imagery_dir, imagery)
    band = next(imagery.glob("*/B04.tif"))
    band_as_read = file_fingerprint(band)

    def edited_meanwhile(*args, **kwargs):  # an analyst saves the file in QGIS while a long run measures
        gpd.read_file(path).assign(declared_area_ha=9.0).to_file(path)
        measured = measure(*args, **kwargs)
        with open(band, "ab") as handle:  # a band file rewritten (bytes GDAL does not read: its values stay)
            handle.write(b"\0")
        return measured

    monkeypatch.setattr(pipeline, "measure_parcels", edited_meanwhile)
    result = pipeline.run_assessment(path, imagery, model="rule")
    assert file_fingerprint(path)["sha256"] != as_read["sha256"]
    assert result.record["inputs"]["parcels"]["sha256"] == as_read["sha256"]
    scenes = {scene["scene_id"]: scene for scene in result.record["inputs"]["imagery"]["scenes"]}
    assert file_fingerprint(band) != band_as_read
    assert scenes[band.parent.name]["files"]["B04"] == {**band_as_read, "band_index": 1}
    # The model named by its hash too: one retrained under the same name is another model.
    assert set(result.parcels["model_hash"]) == {result.record["models"]["cropland"]["hash"]}
    records = {r["parcel_id"]: r for r in decision_records(result.parcels, result.record, result.overlaps,
                                                           result.products, result.clear, result.imagery.scenes)}
    first = str(parcels["parcel_id"].iloc[0])
    assert records["AGAIN;2"]["overlaps_parcels"] == [first] and records[first]["overlaps_parcels"] == ["AGAIN;2"]
    second = str(parcels["parcel_id"].iloc[1])
    assert records[second]["overlaps_parcels"] == []
    assert [records[pid]["overlaps_count"] for pid in ("AGAIN;2", first, second)] == [1, 1, 0]
    files = write_outputs(tmp_path / "out", result)  # the tables join the ids; decisions.jsonl keeps the list
    for table in (gpd.read_file(files["gpkg"], layer="parcels"), pd.read_parquet(files["parquet"])):
        assert table.set_index("parcel_id").loc[first, "overlaps_parcels"] == "AGAIN;2"
    written = {r["parcel_id"]: r for r in map(json.loads, files["decisions"].read_text().splitlines())}
    assert written[first]["overlaps_parcels"] == ["AGAIN;2"]
    outlines = result.parcels.geometry.to_numpy()
    for same_land in (shapely.reverse(outlines),  # as a Shapefile turns the rings
                      shapely.multipolygons([[g] for g in outlines])):  # as QGIS exports them
        again = decision_records(result.parcels.set_geometry(same_land), result.record, result.overlaps,
                                 result.products, result.clear, result.imagery.scenes)
        assert [r["inputs"]["geometry_wkb_sha256"] for r in again] == [
            r["inputs"]["geometry_wkb_sha256"] for r in records.values()]


@pytest.mark.parametrize(("model", "level", "margins"), [
    ("cnn", 0.8, [0.097, 0.097, 0.059, 0.048]),  # the packaged card's
    ("rule", None, [0.084, 0.084, 0.062, 0.057]),  # the packaged config's cropland_rule
])
def test_run_json_lists_the_area_interval_of_the_model_that_measured(small_season, model: str, level: float | None,
                                                                     margins: list[float]) -> None:
    """A CNN run's run.json listed the rule's margins (in the config) and none of the CNN's, which it applied."""
    from farmcredit.pipeline import run_assessment

    result = run_assessment(small_season.parcels_path, small_season.imagery_dir, model=model)
    assert result.record["models"]["cropland"]["area_interval"] == {
        "level": level, "mixed_margin": margins, "area_bands_ha": [0.1, 0.2, 0.4],
        "sizes": ["under 0.1 ha", "0.1-0.2 ha", "0.2-0.4 ha", "0.4 ha and over"]}


def test_a_records_risk_features_are_built_with_the_slack_its_scorecard_was_fitted_with(small_season) -> None:
    """declared_over_high counts only what a declaration exceeds the interval's top by beyond the slack the scorecard
    was fitted with (run.json's models.risk.declared_slack_ha), as the PD was scored."""
    from farmcredit.audit import decision_records
    from farmcredit.pipeline import run_assessment

    result = run_assessment(small_season.parcels_path, small_season.imagery_dir, model="rule")
    parcels = result.parcels.assign(declared_area_ha=result.parcels["cultivated_area_high_ha"] + 0.006)
    measured = parcels["cultivated_area_high_ha"].to_numpy() > 0

    def declared_over_high(record: dict) -> np.ndarray:
        return np.array([r["risk_features"]["declared_over_high"] for r in decision_records(
            parcels, record, result.overlaps, result.products, result.clear, result.imagery.scenes)])

    assert result.record["models"]["risk"]["declared_slack_ha"] == 0.01
    assert (declared_over_high(result.record)[measured] == 1.0).all() and measured.any()
    unforgiving = copy.deepcopy(result.record)
    unforgiving["models"]["risk"]["declared_slack_ha"] = 0.0
    assert (declared_over_high(unforgiving)[measured] > 1.0).all()


def test_each_decision_names_the_dates_clear_over_its_parcel_and_the_run_each_dates_clear_share(
        small_season, tmp_path: Path) -> None:
    """decisions.jsonl listed every date's product, clear or clouded, so no one could tell which dates a decision
    rests on; run.json said nothing of how clear each date was over the portfolio."""
    from farmcredit.pipeline import run_assessment

    result = run_assessment(small_season.parcels_path, small_season.imagery_dir, model="rule")
    files = write_outputs(tmp_path / "out", result)
    records = [json.loads(line) for line in files["decisions"].read_text().splitlines()]
    min_share = result.config.imagery.min_clear_share
    series = result.series[(result.series["clear_share"] >= min_share) & result.series["ndvi_mean"].notna()]
    seen = series.groupby("parcel_id")["date"].apply(lambda days: [d.date().isoformat() for d in days])
    for record, row in zip(records, result.parcels.itertuples(), strict=True):
        expected = seen.get(record["parcel_id"], []) if row.status != "error" else []
        assert record["clear_dates"] == expected and len(expected) == row.clear_observations
    assert any(record["clear_dates"] for record in records)
    assert any(len(record["clear_dates"]) < len(result.record["season_dates"]) for record in records)
    written = json.loads(files["run"].read_text())["season_clear"]
    measured = int((result.parcels["status"] != "error").sum())
    assert written["parcels_measured"] == measured
    assert [day["date"] for day in written["dates"]] == result.record["season_dates"]
    for day in written["dates"]:
        clear = sum(day["date"] in record["clear_dates"] for record in records)
        assert (day["parcels_clear"], day["share"]) == (clear, round(clear / measured, 4))
    assert min(day["share"] for day in written["dates"]) == 0.0  # the simulator's overcast date


def test_records_keep_a_declared_area_in_mu_as_the_borrower_declared_it(small_season, tmp_path: Path) -> None:
    """Given in mu, the declared area was recorded only as declared_area_ha (0.9 mu as 0.06): not the figure signed.
    decisions.jsonl's inputs and the results keep it in mu beside its hectares; an input in ha gains no mu in its
    records."""
    from farmcredit.pipeline import run_assessment

    parcels = gpd.read_file(small_season.parcels_path).head(4)
    in_mu = parcels.assign(declared_area_mu=[0.9, 1.95, None, 3.0]).drop(columns="declared_area_ha")
    in_mu.to_file(tmp_path / "mu.gpkg")
    files = write_outputs(tmp_path / "mu", run_assessment(tmp_path / "mu.gpkg", small_season.imagery_dir,
                                                          model="rule"))
    inputs = [json.loads(line)["inputs"] for line in files["decisions"].read_text().splitlines()]
    assert [(i["declared_area_mu"], i["declared_area_ha"]) for i in inputs] == [
        (0.9, 0.06), (1.95, 0.13), (None, None), (3.0, 0.2)]
    results = pd.read_csv(tmp_path / "mu" / "results.csv")
    assert results["declared_area_mu"].tolist()[:2] == [0.9, 1.95] and results["declared_area_ha"][0] == 0.06
    files = write_outputs(tmp_path / "ha", run_assessment(small_season.parcels_path, small_season.imagery_dir,
                                                          model="rule"))
    assert "declared_area_mu" not in json.loads(files["decisions"].read_text().splitlines()[0])["inputs"]
    # The tables carry the column, empty, so that seasons declared either way append into one table.
    assert pd.read_csv(tmp_path / "ha" / "results.csv")["declared_area_mu"].isna().all()


def test_the_crs_a_parcel_file_was_read_in_is_recorded_beside_its_hash_and_in_every_decision(tmp_path: Path) -> None:
    """A CSV of longitudes and latitudes read as EPSG:4326 or as EPSG:4490 (CGCS2000: the same numbers in another
    CRS, as Gauss-Krueger coordinates read as EPSG:4547 or another datum's, parcels metres apart) recorded the same
    bytes, config and outlines: run.json and every decision record now name the CRS read in, and run.json the one
    given; a GeoJSON given none records its own."""
    from farmcredit.pipeline import run_assessment

    sample = Path(__file__).resolve().parents[1] / "sample_tiles"
    parcels = gpd.read_file(sample / "parcels.geojson").head(30)
    csv = tmp_path / "parcels.csv"
    parcels.drop(columns="geometry").assign(
        WKT=shapely.to_wkt(parcels.geometry.to_numpy(), rounding_precision=-1)).to_csv(csv, index=False)
    runs = {}
    for crs in ("EPSG:4326", "EPSG:4490"):
        files = write_outputs(tmp_path / crs.replace(":", "_"), run_assessment(
            csv, sample / "imagery", parcels_crs=crs, model="rule"))
        run = json.loads(files["run"].read_text())
        assert {k: run["inputs"]["parcels"][k] for k in ("crs", "parcels_crs")} == {"crs": crs, "parcels_crs": crs}
        for name in ("decisions", "borrower_decisions"):
            fingerprints = [json.loads(line)["parcels_file_fingerprint"]
                            for line in files[name].read_text().splitlines()]
            assert fingerprints and all(f == {"sha256": run["inputs"]["parcels"]["sha256"], "crs": crs}
                                        for f in fingerprints)
        runs[crs] = run
    assert runs["EPSG:4326"]["inputs"]["parcels"] != runs["EPSG:4490"]["inputs"]["parcels"]
    parcels.to_file(tmp_path / "parcels.geojson")
    own = run_assessment(tmp_path / "parcels.geojson", sample / "imagery", model="rule").record["inputs"]["parcels"]
    assert (own["crs"], own["parcels_crs"]) == ("EPSG:4326", None)


def test_the_commit_recorded_is_farmcredits_own_never_a_project_it_is_installed_in(tmp_path: Path) -> None:
    project = tmp_path / "project"
    site = project / ".venv" / "site-packages"
    shutil.copytree(Path(farmcredit.__file__).parent, site / "farmcredit")
    (project / "app.py").write_text("print('an app')\n")
    git = ["git", "-C", str(project), "-c", "user.email=a@b", "-c", "user.name=a"]
    for command in (["init", "-q"], ["add", "app.py"], ["commit", "-qm", "app"]):
        subprocess.run([*git, *command], check=True)
    script = ("import json, farmcredit; from farmcredit.version import code_version; "
              f"assert farmcredit.__file__.startswith({str(site)!r}); print(json.dumps(code_version()))")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(site)},
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    recorded = json.loads(done.stdout)
    assert recorded["git_commit"] is None and recorded["git_uncommitted_changes"] is None
    assert recorded["source_sha256"]


def test_the_run_records_limit_totals_are_summed_to_the_cent(tmp_path: Path) -> None:
    """Borrower limits of a ``rounding_step`` under 1 CNY, whole cents, total whole cents in run.json: added in
    floating point, 1,000.10 + 1,000.20 came to 2000.3000000000002."""
    imagery = open_imagery(_stack(tmp_path / "S2_20240601.tif"),
                           band_layout=[(None, "B04"), (None, "B08"), (None, "B11"), (None, "B12")])
    borrowers = pd.DataFrame({"loan_limit": [1000.1, 1000.2, 0.1, 0.2, 0.3, 5.0],
                              "decision": ["approve", "approve", "refer", "refer", "refer", "decline"]})
    parcels = pd.DataFrame({"status": ["ok"] * 6, "decision": borrowers["decision"]})
    record = build_run_record(None, imagery, load_config(), {}, parcels, borrowers, [], np.zeros((6, 0), bool), {})
    assert (record["counts"]["approved_limit"], record["counts"]["referred_limit"]) == (2000.3, 0.6)


def test_the_run_records_counts_name_every_status_and_decision_in_a_fixed_order(tmp_path: Path) -> None:
    """value_counts left out a zero (an all-error run had no "approve": a KeyError for whoever read it) and ordered
    the rest by how many there were."""
    imagery = open_imagery(_stack(tmp_path / "S2_20240601.tif"),
                           band_layout=[(None, "B04"), (None, "B08"), (None, "B11"), (None, "B12")])
    parcels = pd.DataFrame({"status": ["error"] * 2 + ["flagged"] * 3, "decision": ["refer"] * 2 + ["decline"] * 3})
    borrowers = pd.DataFrame({"loan_limit": [0.0], "decision": ["decline"]})
    counts = build_run_record(None, imagery, load_config(), {}, parcels, borrowers, [], np.zeros((5, 0), bool),
                              {})["counts"]
    assert list(counts["status"].items()) == [("ok", 0), ("flagged", 3), ("error", 2)]
    assert list(counts["decision"].items()) == [("approve", 0), ("refer", 2), ("decline", 3)]
    assert all(type(count) is int for count in (*counts["status"].values(), *counts["decision"].values()))


def _stack(path: Path) -> Path:
    """A one-date, four-band uint16 GeoTIFF stack without band descriptions (named by ``--bands``)."""
    values = np.stack([np.full((4, 5), 1000 * (k + 1), dtype=np.uint16) for k in range(4)])
    with rasterio.open(path, "w", driver="GTiff", width=5, height=4, count=4, dtype="uint16", crs="EPSG:32650",
                       transform=from_origin(399_960.0, 4_000_020.0, 10, 10)) as dataset:
        dataset.write(values)
    return path


def test_a_stacks_record_names_which_band_was_read_as_each_band_at_its_absolute_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B11 and B12 swapped by ``--bands`` read other pixels from the same file: the record tells the runs apart."""
    monkeypatch.chdir(tmp_path)
    _stack(tmp_path / "S2_20240601.tif")
    layout = [(None, "B04"), (None, "B08"), (None, "B11"), (None, "B12")]
    swapped = [*layout[:2], layout[3], layout[2]]

    (as_laid_out,), (as_swapped,) = (
        [scene_record(scene) for scene in open_imagery("S2_20240601.tif", band_layout=bands).scenes]
        for bands in (layout, swapped))

    assert [as_laid_out["files"][band]["band_index"] for band in ("B04", "B08", "B11", "B12")] == [1, 2, 3, 4]
    assert (as_swapped["files"]["B11"]["band_index"], as_swapped["files"]["B12"]["band_index"]) == (4, 3)
    assert as_laid_out["files"]["B04"]["path"] == str(tmp_path / "S2_20240601.tif")  # not as typed


def test_a_band_inside_a_safe_zip_is_recorded_with_the_zips_fingerprint_and_its_member(tmp_path: Path) -> None:
    archive = zip_safe(write_safe(tmp_path))
    (scene,) = open_imagery(archive).scenes

    record = scene_record(scene)["files"]["B04"]

    assert record["path"] == scene.band_paths["B04"][0]
    assert record["member"].endswith("/R10m/T50SKB_20240315T031521_B04_10m.jp2")
    assert record["member"].startswith(f"{archive.stem}.SAFE/GRANULE/")
    assert record["archive"] == {"path": str(archive), "bytes": archive.stat().st_size,
                                 "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}


@pytest.mark.parametrize(("folder", "layer", "driver"), [("parcels", "parcels.shp", "ESRI Shapefile"),
                                                      ("parcels.gdb", "", "OpenFileGDB")], ids=["shapefile", "gdb"])
def test_a_parcel_folder_is_fingerprinted_by_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, layer: str, driver: str) -> None:
    """A folder holding a Shapefile, an OpenFileGDB .gdb: its files by relative path and contents, wherever it is."""
    monkeypatch.chdir(tmp_path)
    frame = gpd.GeoDataFrame({"parcel_id": ["P1"], "area_ha": [0.26]}, geometry=[box(0, 0, 50, 50)],
                             crs="EPSG:32650")
    Path(folder).mkdir()
    frame.to_file(Path(folder, layer), driver=driver)
    files = [member for member in Path(folder).rglob("*") if member.is_file()]

    before = file_fingerprint(folder)

    assert before["path"] == str(tmp_path / folder) and before["files"] == len(files) > 1
    assert before["bytes"] == sum(member.stat().st_size for member in files) and len(before["sha256"]) == 64
    shutil.copytree(folder, tmp_path / "elsewhere" / folder)
    assert file_fingerprint(tmp_path / "elsewhere" / folder)["sha256"] == before["sha256"]
    frame.assign(area_ha=[5.0]).to_file(Path(folder, layer), driver=driver)
    assert file_fingerprint(folder)["sha256"] != before["sha256"]


def test_a_band_file_and_a_folder_that_cannot_be_read_are_named_in_run_json_and_the_run_goes_on(
        small_season, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A band file without read permission, already IMAGERY_READ_ERROR for its parcels, crashed the run (exit 1, no
    results) when run.json hashed it; a folder under the imagery that could not be listed went unrecorded."""
    from farmcredit.pipeline import run_assessment

    imagery_dir = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, imagery_dir)
    scene = sorted(path.name for path in imagery_dir.iterdir() if path.is_dir())[2]
    band = imagery_dir / scene / "B08.tif"
    band.write_bytes(b"")  # GDAL cannot open it either
    opener = Path.open

    def refusing(self: Path, *args: object, **kwargs: object) -> object:
        if self == band:  # as the system refuses a file without read permission (chmod 000 would not: root reads it)
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return opener(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing)
    unlisted = str(imagery_dir / "S2A_50SKB_20240520_0_L2A")
    imagery = replace(open_imagery(imagery_dir), unread_folders=((unlisted, "Permission denied"),))

    with caplog.at_level("WARNING"):
        result = run_assessment(small_season.parcels_path, imagery, model="rule")

    record = result.record["inputs"]["imagery"]
    (entry,) = [scene_entry for scene_entry in record["scenes"] if scene_entry["scene_id"] == scene]
    assert entry["files"]["B08"] == {"path": str(band), "error": "Permission denied", "band_index": 1}
    assert f"{band}: cannot be read to hash it for run.json (Permission denied)" in caplog.text
    assert record["unread_folders"] == [{"folder": unlisted, "message": "Permission denied"}]
    assert result.parcels["reason"].str.contains("IMAGERY_READ_ERROR").any()


def _checkout(root: Path) -> Path:
    """A committed git checkout of farmcredit: the package (its default config a link into configs/) and configs/."""
    package = Path(farmcredit.__file__).resolve().parent
    shutil.copytree(package, root / "farmcredit", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(package.parent / "configs", root / "configs")
    (root / ".gitignore").write_text("__pycache__/\n")
    git = ["git", "-C", str(root), "-c", "user.email=a@b", "-c", "user.name=a"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "farmcredit"]):
        subprocess.run([*git, *command], check=True)
    return root


def _recorded_code(root: Path) -> tuple[dict, str]:
    """``code_version()`` as farmcredit imported from ``root`` records it, and what it logged."""
    script = ("import json, farmcredit; from farmcredit.version import code_version; "
              f"assert farmcredit.__file__.startswith({str(root)!r}); print(json.dumps(code_version()))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"})
    return json.loads(done.stdout), done.stderr


def test_uncommitted_changes_count_the_linked_default_config_and_new_files_and_a_refusing_git_is_warned_of(
        tmp_path: Path) -> None:
    root = _checkout(tmp_path / "checkout")
    clean, _ = _recorded_code(root)
    assert clean["git_commit"] and clean["git_uncommitted_changes"] is False

    defaults = root / "configs" / "default.yaml"  # farmcredit/default_config.yaml links to it
    committed = defaults.read_text()
    defaults.write_text(committed.replace("\n", "\n\n", 1))
    assert _recorded_code(root)[0]["git_uncommitted_changes"] is True
    defaults.write_text(committed)
    (root / "farmcredit" / "scoring.py").write_text("THRESHOLD = 0.4\n")  # untracked, and imported it would decide
    assert _recorded_code(root)[0]["git_uncommitted_changes"] is True

    shutil.rmtree(root / ".git")
    (root / ".git").write_text(f"gitdir: {tmp_path / 'gone'}\n")  # git runs, and refuses (as for another's checkout)
    refused, logged = _recorded_code(root)
    assert refused["git_commit"] is None and f"git refuses to read farmcredit's checkout {root}" in logged


def test_a_card_made_outside_a_git_checkout_names_the_source_it_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed from a wheel, a CNN card's code_version was "0.1.0" alone, which every edit of the code shares."""
    from farmcredit import version
    from farmcredit.hashing import source_hash

    monkeypatch.setattr(version, "_git", lambda root, *args: (None, ""))  # no git, as in an installed package
    assert version.card_code_version() == f"{version.code_version()['farmcredit']}+src.{source_hash()[:12]}"


def test_decision_records_write_values_of_every_kind_a_record_may_hold_as_json(tmp_path: Path) -> None:
    """Plain values take a fast path (a speed-up only); numpy scalars, missing values, timestamps and nesting are
    written as before: numbers as numbers, NaN / NaT / NA / infinity as null, timestamps as their date."""
    from datetime import date

    from farmcredit.audit import write_decision_records

    kinds = {"str": "张三", "np_str": np.str_("P1"), "int": 3, "np_int": np.int64(-4), "bool": True,
             "np_bool": np.bool_(False), "float": 0.1, "nan": float("nan"), "inf": float("inf"),
             "np_float": np.float64(2.5), "np_nan": np.float32("nan"), "none": None,
             "timestamp": pd.Timestamp("2024-05-01 10:00"), "nat": pd.NaT, "na": pd.NA, "day": date(2024, 5, 1),
             "tuple": (1, np.int32(2)), "nested": [{"a": [np.float64("nan")]}]}
    written = write_decision_records([kinds], tmp_path / "kinds.jsonl").read_text(encoding="utf-8")
    assert written == (
        '{"bool": true, "day": "2024-05-01", "float": 0.1, "inf": null, "int": 3, "na": null, "nan": null, '
        '"nat": null, "nested": [{"a": [null]}], "none": null, "np_bool": false, "np_float": 2.5, "np_int": -4, '
        '"np_nan": null, "np_str": "P1", "str": "张三", "timestamp": "2024-05-01", "tuple": [1, 2]}\n')
