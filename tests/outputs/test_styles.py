"""QGIS styles: fixed classes and ranges, stored where QGIS looks for them."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from farmcredit.outputs.styles import (
    DECISION_EXPRESSION,
    borrower_styles,
    parcel_styles,
    qml_text,
    raster_style,
)


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
