"""The outputs opened in real QGIS 3.22 (Debian's PyQGIS, headless, in a subprocess).

``qgis_check.py`` loads every layer and the project the way a QGIS user would and reports
what QGIS sees; these tests check that report and the PNGs QGIS rendered. They skip, with
the install command, where PyQGIS is not installed; they fail under CI (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from farmcredit.outputs.styles import DECISION_EXPRESSION

SYSTEM_PYTHON = Path("/usr/bin/python3")
CHECK = Path(__file__).with_name("qgis_check.py")


def _qgis_missing() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} not found"
    found = subprocess.run([str(SYSTEM_PYTHON), "-c", "import qgis.core"], capture_output=True, timeout=120)
    return None if found.returncode == 0 else "PyQGIS not importable from /usr/bin/python3"


@pytest.fixture(scope="module")
def qgis(outputs: Path, tmp_path_factory: pytest.TempPathFactory, not_installed: Callable[[str], NoReturn]) -> dict:
    """QGIS's report on a copy of the outputs in another folder (so paths must be relative)."""
    missing = _qgis_missing()
    if missing:
        not_installed(f"{missing}: install QGIS 3.22 with `apt-get install -y --no-install-recommends qgis "
                      "python3-qgis`")
    work = tmp_path_factory.mktemp("qgis")
    moved = work / "copied elsewhere"
    shutil.copytree(outputs, moved)
    (work / "home").mkdir()
    (work / "png").mkdir()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(work / "home"), XDG_RUNTIME_DIR=str(work / "home"))
    done = subprocess.run([str(SYSTEM_PYTHON), str(CHECK), str(moved), str(work / "report.json"), str(work / "png")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads((work / "report.json").read_text())
    report.update(stderr=done.stderr, folder=str(moved), outputs=str(outputs))
    return report


def test_geopackage_layers_open_valid_styled_and_without_warnings(qgis, assessed) -> None:
    assert qgis["qgis"].startswith("3.")
    parcels, borrowers = qgis["gpkg"]["parcels"], qgis["gpkg"]["borrowers"]
    for layer, frame, attr in ((parcels, assessed.parcels, DECISION_EXPRESSION),
                               (borrowers, assessed.borrowers, '"decision"')):
        assert layer["valid"] and layer["crs"] == frame.crs.to_string()
        assert layer["features"] == len(frame)
        assert layer["renderer"] == "categorizedSymbol" and layer["attr"] == attr
        expected = ["approve", "refer", "decline", "error"] if layer is parcels else ["approve", "refer", "decline"]
        assert [c[0] for c in layer["classes"]] == expected
        assert layer["labels"] and layer["label_scales"][0] and layer["label_scales"][2] <= 10_000
        # Each label shows its limit as the table gives it, cents and all: never rounded up to more than is lent.
        shown = [(limit, float(text.split("\n")[-1].split()[0].replace(",", "")))
                 for limit, text in layer["label_texts"]]
        assert len(shown) == len(frame) and all(amount == pytest.approx(limit, abs=1e-9) for limit, amount in shown)
        # And its decision in words, so it reads without telling the colours apart.
        said = [text.split("\n")[0].split(" · ")[-1] for _, text in layer["label_texts"]]
        words = frame["decision"] if layer is borrowers else frame["decision"].mask(frame["status"] == "error", "error")
        assert sorted(said) == sorted(words)
    assert any(limit % 1 for limit, _ in parcels["label_texts"])  # parcel limits have cents, and show them
    assert parcels["stored_styles"] == ["decision", "loan limit", "health index"]
    assert borrowers["stored_styles"] == ["decision", "loan limit"]
    assert qgis["messages"] == []
    assert "Warning" not in qgis["stderr"] and "ERROR" not in qgis["stderr"], qgis["stderr"]


def test_rasters_open_with_their_sidecar_styles(qgis, assessed) -> None:
    rasters = qgis["rasters"]
    assert set(rasters) == {"true_colour", "cropland_probability", "cropland_class", "ndvi_peak", "health_index"}
    window = assessed.grid_window
    for name, layer in rasters.items():
        assert layer["valid"] and layer["crs"] == assessed.imagery.crs.to_string(), name
        assert layer["size"] == [window.width, window.height]
    assert rasters["true_colour"]["renderer"] == "multibandcolor" and rasters["true_colour"]["bands"] == 3
    assert rasters["ndvi_peak"]["renderer"] == "singlebandpseudocolor"
    assert rasters["ndvi_peak"]["range"] == pytest.approx([-0.2, 0.9])
    assert rasters["health_index"]["range"] == [0, 100]
    assert rasters["cropland_probability"]["range"] == [0, 1]
    assert rasters["cropland_class"]["renderer"] == "paletted"
    assert [(value, label) for value, _, label in rasters["cropland_class"]["classes"]] == [
        (0, "non-crop"), (1, "wheat"), (2, "maize"), (3, "rice"), (4, "soybean"), (5, "other crop")]


def test_project_opens_every_layer_in_order_from_a_copied_folder(qgis, assessed) -> None:
    project = qgis["project"]
    assert project["read"] and project["crs"] == assessed.imagery.crs.to_string()
    assert [(n["group"], n["name"].split(" 2")[0]) for n in project["tree"]] == [
        ("decisions", "borrowers"), ("decisions", "parcels"), ("season layers", "health index (0-100)"),
        ("season layers", "peak NDVI"), ("season layers", "cropland probability"),
        ("season layers", "cropland class"), ("", "true colour"),
    ]
    assert [n["visible"] for n in project["tree"]] == [True, True, False, False, False, False, True]
    assert all(n["source"].startswith(qgis["folder"]) for n in project["tree"])
    assert all(layer["valid"] for layer in project["layers"].values())
    assert project["layers"]["parcels"]["features"] == len(assessed.parcels)
    assert project["layers"]["parcels"]["current_style"] == "decision"
    assert sorted(project["layers"]["parcels"]["styles"]) == ["decision", "health index", "loan limit"]
    assert qgis["outputs"] not in (Path(qgis["folder"]) / "project.qgs").read_text()


def test_project_renders_to_a_picture_with_each_parcels_style(qgis) -> None:
    renders = qgis["project"]["renders"]
    assert set(renders) == {"decision", "loan limit", "health index", "close_up", "close_up_parcels", "health_index",
                            "ndvi_peak", "cropland_probability", "cropland_class"}
    for name, render in renders.items():
        assert not render["errors"] and Path(render["path"]).read_bytes()[:4] == b"\x89PNG"
        # Imagery under parcels shows hundreds of colours; a ramp alone at least its few; the class map
        # its classes' (non-crop and the simulated crops) and the background.
        least = 200 if name in ("decision", "loan limit", "health index", "close_up", "close_up_parcels") else 10
        assert render["colours"] > (4 if name == "cropland_class" else least), name
    assert renders["close_up"]["scale"] < 5000  # where the parcel labels show


def test_borrower_labels_never_hide_a_parcels_own_label(qgis) -> None:
    """Both sit at the centroid: a one-parcel borrower's label hid its parcel's id and limit."""
    renders = qgis["project"]["renders"]
    shown, _, most_zoomed_out = qgis["gpkg"]["borrowers"]["label_scales"]
    assert shown and renders["close_up"]["scale"] < most_zoomed_out  # both layers label at this scale
    assert renders["close_up"]["labels"]["parcels"] == renders["close_up_parcels"]["labels"]["parcels"] > 0



def test_parcels_with_heights_are_named_as_qgis_spells_their_type(small_season, tmp_path: Path) -> None:
    """OGR says "Polygon Z", QGIS reads "PolygonZ": the project must say the latter (3-D parcels from a GPS)."""
    import xml.etree.ElementTree as ET

    import geopandas as gpd
    import shapely

    from farmcredit import assess

    parcels = gpd.read_file(small_season.parcels_path).head(5)
    parcels["geometry"] = shapely.force_3d(parcels.geometry.to_numpy(), z=120.0)
    parcels.to_file(tmp_path / "heights.gpkg")
    assess(tmp_path / "heights.gpkg", small_season.imagery_dir, model="rule", out=tmp_path / "out")
    layers = ET.parse(tmp_path / "out" / "project.qgs").getroot().iter("maplayer")
    assert {layer.get("wkbType") for layer in layers if layer.get("type") == "vector"} <= {"PolygonZ", "MultiPolygonZ"}
