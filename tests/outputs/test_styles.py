"""QGIS styles: fixed classes and ranges, stored where QGIS looks for them."""

from __future__ import annotations

import itertools
import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from farmcredit.credit.report import BAND_COLOURS
from farmcredit.outputs.styles import (
    BORROWER_OUTLINES,
    CLASS_COLOURS,
    DECISION_CLASSES,
    DECISION_EXPRESSION,
    HEALTH_RAMP,
    LIMIT_COLOURS,
    LIMIT_ZERO_COLOUR,
    NDVI_RAMP,
    NON_CROP_COLOUR,
    borrower_styles,
    parcel_styles,
    qml_text,
    raster_style,
)

# Machado, Oliveira & Fernandes 2009 (IEEE TVCG 15(6)), full severity, on linear sRGB.
MACHADO = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
}
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
D65 = np.array([0.95047, 1.0, 1.08883])


def _lab_seen(colour: str, vision: str) -> np.ndarray:
    """CIE L*a*b* (D65) of a ``#rrggbb`` colour as ``vision`` (a ``MACHADO`` key) sees it."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = SRGB_TO_XYZ @ np.clip(MACHADO[vision] @ linear, 0, 1) / D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _far_apart(ramp: tuple[tuple[float, str], ...], share: float) -> list[tuple[str, str]]:
    """Pairs of a ramp's stops at least ``share`` of its range apart."""
    gap = share * (ramp[-1][0] - ramp[0][0])
    return [(a, b) for (v, a), (w, b) in itertools.combinations(ramp, 2) if abs(v - w) >= gap]


@pytest.mark.parametrize(("palette", "pairs", "least"), [
    ("decision classes", list(itertools.combinations([colour for _, colour, _ in DECISION_CLASSES], 2)), 25.0),
    ("crop classes", list(itertools.combinations([NON_CROP_COLOUR, *CLASS_COLOURS], 2)), 12.0),
    ("health ramp", _far_apart(HEALTH_RAMP, 0.5), 20.0),
    ("peak NDVI ramp", _far_apart(NDVI_RAMP, 0.4), 20.0),
    ("no limit beside the limits", [(LIMIT_ZERO_COLOUR, colour) for colour in LIMIT_COLOURS], 20.0),
    ("credit report's size bands", list(itertools.combinations(BAND_COLOURS, 2)), 15.0),
])
def test_colours_stay_apart_to_a_red_green_colour_blind_eye(palette: str, pairs: list, least: float) -> None:
    """A deuteranope measured the outputs (Machado 2009, CIEDE2000): approve green and decline red 6.7 apart over
    the imagery, the health ramp's 29 and 75 0.2, peak NDVI's 0.13 and 0.57 0.1, maize and soybean 3.3. Here each pair
    of one palette, simulated for deuteranopia and protanopia, stays ``least`` apart in CIE76 (Euclidean L*a*b*;
    the old palettes' closest pairs: 19.6, 9.5, 5.0, 0.4, 11.9 and 10.4)."""
    closest = min((float(np.linalg.norm(_lab_seen(a, vision) - _lab_seen(b, vision))), vision, a, b)
                  for a, b in pairs for vision in MACHADO)
    assert closest[0] >= least, f"{palette}: {closest}"


def test_declines_are_hatched_and_borrowers_outlined_in_a_line_of_their_decision() -> None:
    """Colour was the only cue: declined parcels get a line pattern over their fill, borrowers' outlines a line
    style per decision, and both layers' labels say the decision."""
    parcels = parcel_styles(pd.DataFrame({"loan_limit": [0.0]}), "CNY")[0].qml
    patterned = [symbol.get("name") for symbol in parcels.iter("symbol")
                 if symbol.find("layer[@class='LinePatternFill']") is not None]
    declined = next(c.get("symbol") for c in parcels.iter("category") if c.get("value") == "decline")
    assert patterned == [declined]
    borrowers = borrower_styles(pd.DataFrame({"loan_limit": [0.0]}), "CNY")[0].qml
    outline = {symbol.get("name"): option.get("value") for symbol in borrowers.iter("symbol")
               for option in symbol.iter("Option") if option.get("name") == "outline_style"}
    lines = {category.get("value"): outline[category.get("symbol")] for category in borrowers.iter("category")}
    assert lines == BORROWER_OUTLINES and len(set(lines.values())) == 3
    for qml, decision in ((parcels, DECISION_EXPRESSION), (borrowers, '"decision"')):
        assert f"' · ' || {decision} || '\\n'" in qml.find("labeling/settings/text-style").get("fieldName")


def test_parcels_open_by_decision_with_limit_and_health_styles_beside() -> None:
    styles = parcel_styles(pd.DataFrame({"loan_limit": [0.0, 100.0, 2500.0, 9000.0]}), "CNY")
    assert [s.name for s in styles] == ["decision", "loan limit", "health index"]
    assert [s.default for s in styles] == [True, False, False]
    decision = styles[0].qml.find("renderer-v2")
    assert decision.get("type") == "categorizedSymbol" and decision.get("attr") == DECISION_EXPRESSION
    assert [c.get("value") for c in decision.iter("category")] == ["approve", "refer", "decline", "error"]
    assert all(s.qml.get("labelsEnabled") == "1" for s in styles)
    rendering = styles[0].qml.find("labeling/settings/rendering")
    assert rendering.get("scaleVisibility") == "1" and int(rendering.get("scaleMax")) <= 10_000
    assert "parcel_id" in styles[0].qml.find("labeling/settings/text-style").get("fieldName")


def test_limit_classes_start_at_zero_and_reach_the_largest_limit() -> None:
    limits = pd.Series(np.r_[np.zeros(20), np.linspace(50, 12_345, 200)])
    renderer = parcel_styles(pd.DataFrame({"loan_limit": limits}), "CNY")[1].qml.find("renderer-v2")
    ranges = [(float(r.get("lower")), float(r.get("upper"))) for r in renderer.iter("range")]
    assert renderer.get("type") == "graduatedSymbol" and renderer.get("attr") == "loan_limit"
    assert ranges[0] == (0.0, 0.0) and ranges[-1][1] == pytest.approx(12_345)
    assert all(a[1] == b[0] and b[0] < b[1] for a, b in zip(ranges[1:], ranges[2:]))


def test_health_style_keeps_parcels_without_an_index_visible() -> None:
    renderer = parcel_styles(pd.DataFrame({"loan_limit": [1.0]}), "CNY")[2].qml.find("renderer-v2")
    assert renderer.get("attr") == 'coalesce("health_index", -1)'
    ranges = [(float(r.get("lower")), float(r.get("upper"))) for r in renderer.iter("range")]
    assert ranges[0] == (-1.0, -1.0) and ranges[1][0] == 0.0 and ranges[-1][1] == 100.0


def test_borrowers_are_outlined_by_decision() -> None:
    styles = borrower_styles(pd.DataFrame({"loan_limit": [0.0, 300.0]}), "CNY")
    assert [s.name for s in styles] == ["decision", "loan limit"] and styles[0].default
    fills = {o.get("value") for o in styles[0].qml.iter("Option") if o.get("name") == "style"}
    assert fills == {"no"}
    decision = styles[0].qml.find("renderer-v2")  # a borrower has a decision, not a status
    assert decision.get("attr") == '"decision"'
    assert [c.get("value") for c in decision.iter("category")] == ["approve", "refer", "decline"]


def test_a_run_without_any_limit_has_the_zero_class_only() -> None:
    renderer = parcel_styles(pd.DataFrame({"loan_limit": [0.0, 0.0]}), "CNY")[1].qml.find("renderer-v2")
    assert [(float(r.get("lower")), float(r.get("upper"))) for r in renderer.iter("range")] == [(0.0, 0.0)]


@pytest.mark.parametrize(
    ("kind", "renderer", "low", "high"),
    [("ndvi_peak", "singlebandpseudocolor", -0.2, 0.9), ("health_index", "singlebandpseudocolor", 0, 100),
     ("cropland_probability", "singlebandpseudocolor", 0, 1), ("true_colour", "multibandcolor", None, None)],
)
def test_raster_styles_use_fixed_ranges(kind: str, renderer: str, low: float | None, high: float | None) -> None:
    qml = ET.fromstring(qml_text(raster_style(kind)).split("\n", 1)[1])
    element = qml.find("pipe/rasterrenderer")
    assert element.get("type") == renderer
    assert element.find("minMaxOrigin/limits").text == "None"  # never re-stretched to a file's values
    if low is not None:
        values = [float(item.get("value")) for item in element.iter("item")]
        assert (values[0], values[-1]) == (low, high) and values == sorted(values)


def test_styles_are_stored_in_the_geopackage_for_each_layer(outputs) -> None:
    with sqlite3.connect(outputs / "results.gpkg") as db:
        rows = db.execute("SELECT f_table_name, f_geometry_column, styleName, useAsDefault, styleQML "
                          "FROM layer_styles").fetchall()
        registered = db.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone()
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    assert registered == ("attributes",)
    assert {(r[0], r[2]) for r in rows} == {("parcels", "decision"), ("parcels", "loan limit"),
                                             ("parcels", "health index"), ("borrowers", "decision"),
                                             ("borrowers", "loan limit")}
    assert {r[1] for r in rows} == {"geom"}
    assert sorted(r[0] for r in rows if r[3]) == ["borrowers", "parcels"]
    assert all(ET.fromstring(r[4].split("\n", 1)[1]).tag == "qgis" for r in rows)
