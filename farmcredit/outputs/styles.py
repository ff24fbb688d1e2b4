"""QGIS styles as data: the layers' renderers, written as QML for QGIS 3.22+.

Each style is an ``xml.etree`` element tree (a ``<qgis>`` document) so the same style can be
stored in the GeoPackage ``layer_styles`` table, written as a raster's ``.qml`` sidecar and
embedded in ``project.qgs``. Colours are fixed, never stretched per file, so two runs read the
same way side by side.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from farmcredit.credit.limit import money

QGIS_VERSION = "3.22.16-Białowieża"
# Decision classes: (value, colour, legend label). "error" keys on status, not decision. Blue, orange and a dark
# red stay apart to a red-green colour-blind eye (Machado 2009 deuteranopia/protanopia: tests/outputs/test_styles.py),
# where green and red did not; red still declines and orange refers.
DECISION_CLASSES = (
    ("approve", "#2c7bb6", "approve"),
    ("refer", "#fdae61", "refer to a loan officer"),
    ("decline", "#67001f", "decline"),
    ("error", "#7f7f7f", "not assessed (error)"),
)
DECISION_COLOURS = {value: colour for value, colour, _ in DECISION_CLASSES}
DECISION_EXPRESSION = "CASE WHEN \"status\" = 'error' THEN 'error' ELSE \"decision\" END"
# Colour is not the only cue: declined parcels are hatched, and borrowers' outlines are drawn in a line of their own.
HATCHED_DECISION = "decline"
HATCH_COLOUR = "#1a1a1a"
BORROWER_OUTLINES = {"approve": "solid", "refer": "dash", "decline": "dot"}
NO_VALUE_COLOUR = "#bdbdbd"
# No limit: a warm dark grey, apart from the pale first class of limits to a colour-blind eye (grey was not).
LIMIT_ZERO_COLOUR = "#8c6d5a"
# Diverging brown -> cream -> teal (ColorBrewer BrBG) over a fixed NDVI range: bare soil, sparse, dense canopy.
NDVI_RAMP = ((-0.2, "#8c510a"), (0.1, "#d8b365"), (0.35, "#f6e8c3"), (0.6, "#5ab4ac"), (0.9, "#01665e"))
# Red -> yellow -> blue (ColorBrewer RdYlBu): red-yellow-green folds onto itself to a red-green colour-blind eye.
HEALTH_RAMP = ((0.0, "#d73027"), (25.0, "#fc8d59"), (50.0, "#ffffbf"), (75.0, "#91bfdb"), (100.0, "#4575b4"))
CROPLAND_RAMP = ((0.0, "#f7f4e9"), (0.5, "#fee391"), (1.0, "#238443"))
# The class map: non-crop pale, each crop class its own hue (wheat, maize, rice, soybean, other).
NON_CROP_COLOUR = "#cfcfcf"
CLASS_COLOURS = ("#e6ab02", "#d95f02", "#1b9e77", "#0072b2", "#cc79a7")
# Yellow to blue, not green: limits must stand out over vegetation in the imagery underneath.
LIMIT_COLOURS = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
HEALTH_COLOURS = tuple(colour for _, colour in HEALTH_RAMP)
# Labels only when zoomed in past 1:LABEL_SCALE: a 100 m parcel is then at least 2 cm on screen.
PARCEL_LABEL_SCALE = 5000
BORROWER_LABEL_SCALE = 10000
TRUE_COLOUR_MAX = 3000  # reflectance x 10^4 shown as white: 0-0.3, as in preview.png


@dataclass(frozen=True)
class Style:
    """One named style of a layer: its QML document and whether QGIS opens it by default."""

    name: str
    qml: ET.Element
    default: bool = False
    description: str = ""


# A limit as the tables give it: its cents when it has some (a label rounding 139.67 to 140 showed more than lent).
LIMIT_TEXT = ('CASE WHEN "loan_limit" = floor("loan_limit") THEN format_number("loan_limit", 0) '
              'ELSE format_number("loan_limit", 2) END')


def parcel_styles(parcels: pd.DataFrame, currency: str) -> list[Style]:
    """The parcels layer's styles: decision (default), loan limit and health index."""
    label = f"\"parcel_id\" || ' · ' || {DECISION_EXPRESSION} || '\\n' || {LIMIT_TEXT} || ' {currency}'"
    labels = _labeling(label, PARCEL_LABEL_SCALE, priority=10)
    return [
        Style("decision", _vector_qml(_decision_renderer(outline_only=False), labels), True,
              "parcels by decision (approve / refer / decline; grey: not assessed)"),
        Style("loan limit", _vector_qml(_limit_renderer(parcels["loan_limit"], currency), labels),
              description=f"parcels graduated by loan limit ({currency})"),
        Style("health index", _vector_qml(_health_renderer(), labels),
              description="parcels graduated by health index (0-100, percentile among same-crop parcels)"),
    ]


def borrower_styles(borrowers: pd.DataFrame, currency: str) -> list[Style]:
    """The borrowers layer's styles: decision outlines (default) and total loan limit."""
    # A parcel without a borrower id stands alone, its borrower_id empty: named by its parcel.
    who = "coalesce('borrower ' || \"borrower_id\", 'parcel ' || \"parcel_ids\")"
    label = f"{who} || ' · ' || \"decision\" || '\\n' || {LIMIT_TEXT} || ' {currency}'"
    labels = _labeling(label, BORROWER_LABEL_SCALE, colour="#08306b", italic=True, priority=1)
    return [
        Style("decision", _vector_qml(_decision_renderer(outline_only=True, borrowers=True), labels), True,
              "borrowers' parcels outlined by the borrower's decision"),
        Style("loan limit", _vector_qml(_limit_renderer(borrowers["loan_limit"], currency), labels),
              description=f"borrowers graduated by total loan limit ({currency})"),
    ]


def raster_style(kind: str, classes: tuple[str, ...] = ()) -> ET.Element:
    """The QML of a raster output: ``cropland_probability``, ``cropland_class`` (named ``classes``),
    ``ndvi_peak``, ``health_index``, ``true_colour``."""
    if kind == "cropland_class":
        return _raster_qml(_paletted(classes), resampling="nearestNeighbour")
    if kind == "true_colour":
        renderer = _el("rasterrenderer", type="multibandcolor", opacity="1", alphaBand="-1",
                       redBand="1", greenBand="2", blueBand="3", nodataColor="")
        renderer.append(_min_max_origin())
        for colour in ("red", "green", "blue"):
            enhancement = ET.SubElement(renderer, f"{colour}ContrastEnhancement")
            ET.SubElement(enhancement, "minValue").text = "0"
            ET.SubElement(enhancement, "maxValue").text = str(TRUE_COLOUR_MAX)
            ET.SubElement(enhancement, "algorithm").text = "StretchToMinimumMaximum"
        return _raster_qml(renderer, resampling="cubic")
    ramps = {
        "cropland_probability": (CROPLAND_RAMP, {0.0: "0 not cropland", 0.5: "0.5 cut", 1.0: "1 cropland"}),
        "ndvi_peak": (NDVI_RAMP, {}),
        "health_index": (HEALTH_RAMP, {0.0: "0 worst of its crop", 100.0: "100 best of its crop"}),
    }
    stops, labels = ramps[kind]
    return _raster_qml(_pseudocolour(stops, labels), resampling="nearestNeighbour")


def qml_text(qml: ET.Element) -> str:
    """A style as the text of a ``.qml`` file."""
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(qml, encoding="unicode")


def write_layer_styles(gpkg: Path, styles: dict[str, list[Style]], geometry_column: str = "geom") -> None:
    """Store styles in the GeoPackage ``layer_styles`` table, the way QGIS itself does.

    QGIS opens a layer with the row whose ``f_table_name`` is the layer, ``f_geometry_column``
    its geometry column and ``useAsDefault`` true; the other rows are under Style > Load Style.
    """
    rows = [
        {"f_table_catalog": "", "f_table_schema": "", "f_table_name": layer, "f_geometry_column": geometry_column,
         "styleName": style.name, "styleQML": qml_text(style.qml), "styleSLD": "", "useAsDefault": style.default,
         "description": style.description, "owner": "farmcredit", "ui": "",
         "update_time": pd.Timestamp.now(tz="UTC").floor("s")}
        for layer, layer_styles in styles.items()
        for style in layer_styles
    ]
    pyogrio.write_dataframe(pd.DataFrame(rows), gpkg, layer="layer_styles", driver="GPKG", append=False,
                            layer_options={"FID": "id"})


def _decision_renderer(outline_only: bool, borrowers: bool = False) -> ET.Element:
    """Categorised by decision; parcels also by status (a borrower has no status, so no 'error' class). Parcels are
    filled, declines hatched over their fill; borrowers outlined, each decision in its own line style."""
    renderer = _el("renderer-v2", type="categorizedSymbol", attr='"decision"' if borrowers else DECISION_EXPRESSION,
                   symbollevels="0", enableorderby="0", forceraster="0", referencescale="-1")
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for index, (value, colour, label) in enumerate(c for c in DECISION_CLASSES if not borrowers or c[0] != "error"):
        ET.SubElement(categories, "category", symbol=str(index), value=value, label=label, render="true")
        if outline_only:
            symbols.append(_fill_symbol(str(index), colour, fill_alpha=0, outline_width=0.8,
                                        outline_style=BORROWER_OUTLINES[value]))
        else:
            symbols.append(_fill_symbol(str(index), colour, fill_alpha=204, outline_width=0.3,
                                        hatched=value == HATCHED_DECISION))
    return renderer


def _limit_renderer(limits: pd.Series, currency: str) -> ET.Element:
    """Graduated by loan limit: zero on its own, then breaks at round numbers near the quintiles."""
    positive = limits[limits > 0].to_numpy(dtype=float)
    breaks = _round_breaks(positive, len(LIMIT_COLOURS)) if positive.size else []  # no limit: the zero class only
    ranges = [(0.0, 0.0, f"0 {currency} (no limit)", LIMIT_ZERO_COLOUR)]
    for index, (lower, upper) in enumerate(zip([0.0, *breaks[:-1]], breaks)):
        ranges.append((lower, upper, f"{money(lower)} - {money(upper)} {currency}", LIMIT_COLOURS[index]))
    return _graduated("loan_limit", ranges)


def _health_renderer() -> ET.Element:
    """Graduated by health index in fixed fifths; parcels without one stay visible, in grey."""
    ranges = [(-1.0, -1.0, "no health index", NO_VALUE_COLOUR)]
    for index, colour in enumerate(HEALTH_COLOURS):
        ranges.append((20.0 * index, 20.0 * (index + 1), f"{20 * index} - {20 * (index + 1)}", colour))
    return _graduated('coalesce("health_index", -1)', ranges)


def _graduated(attr: str, ranges: list[tuple[float, float, str, str]]) -> ET.Element:
    renderer = _el("renderer-v2", type="graduatedSymbol", attr=attr, graduatedMethod="GraduatedColor",
                   symbollevels="0", enableorderby="0", forceraster="0", referencescale="-1")
    range_list = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    for index, (lower, upper, label, colour) in enumerate(ranges):
        ET.SubElement(range_list, "range", symbol=str(index), lower=f"{lower:.6f}", upper=f"{upper:.6f}",
                      label=label, render="true")
        symbols.append(_fill_symbol(str(index), colour, fill_alpha=200, outline_width=0.3, outline="#505050"))
    ET.SubElement(renderer, "classificationMethod", id="Custom")
    return renderer


def _round_breaks(values: np.ndarray, classes: int) -> list[float]:
    """Upper class bounds of ``values`` (not empty) at the quantiles rounded up to two significant figures, the
    last the maximum."""
    top = float(values.max())
    breaks = []
    for q in np.linspace(0, 1, classes + 1)[1:-1]:
        value = float(np.quantile(values, q))
        step = 10 ** max(math.floor(math.log10(value)) - 1, 0) if value > 0 else 1
        rounded = math.ceil(value / step) * step
        if rounded < top and (not breaks or rounded > breaks[-1]):
            breaks.append(float(rounded))
    return [*breaks, top]


def _fill_symbol(name: str, colour: str, fill_alpha: int, outline_width: float, outline: str | None = None,
                 outline_style: str = "solid", hatched: bool = False) -> ET.Element:
    """A simple fill; ``hatched`` adds diagonal lines in ``HATCH_COLOUR`` over it (QGIS's line pattern fill)."""
    symbol = _el("symbol", type="fill", name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"})
    layer.append(_options({
        "color": _rgba(colour, fill_alpha), "style": "solid" if fill_alpha else "no",
        "outline_color": _rgba(outline or colour, 255), "outline_style": outline_style,
        "outline_width": f"{outline_width:g}", "outline_width_unit": "MM", "joinstyle": "bevel",
    }))
    if hatched:
        hatch = ET.SubElement(symbol, "layer", {"class": "LinePatternFill", "enabled": "1", "locked": "0",
                                                "pass": "0"})
        hatch.append(_options({"angle": "45", "color": _rgba(HATCH_COLOUR, 255), "distance": "1.5",
                               "distance_unit": "MM", "line_width": "0.3", "line_width_unit": "MM", "offset": "0",
                               "offset_unit": "MM", "outline_width_unit": "MM"}))
        line = ET.SubElement(hatch, "symbol", type="line", name=f"@{name}@1", alpha="1", clip_to_extent="1",
                             force_rhr="0")
        ET.SubElement(line, "layer", {"class": "SimpleLine", "enabled": "1", "locked": "0", "pass": "0"}).append(
            _options({"line_color": _rgba(HATCH_COLOUR, 255), "line_style": "solid", "line_width": "0.3",
                      "line_width_unit": "MM", "capstyle": "square", "joinstyle": "bevel"}))
    return symbol


def _labeling(expression: str, max_scale: int, priority: int, colour: str = "#141414",
              italic: bool = False) -> ET.Element:
    """Labels from an expression on a white halo, only at scales larger than 1:max_scale.

    Where two labels collide QGIS keeps the one of higher ``priority`` (0-10): a parcel's own id and limit
    (10) before its borrower's total (1), which sits at the same centroid when the borrower has one parcel.
    """
    labeling = _el("labeling", type="simple")
    settings = ET.SubElement(labeling, "settings", calloutType="simple")
    style = ET.SubElement(settings, "text-style", fieldName=expression, isExpression="1", fontFamily="Sans Serif",
                          fontSize="8", fontSizeUnit="Point", fontWeight="50", textColor=_rgba(colour, 255),
                          fontItalic="1" if italic else "0",
                          textOpacity="1", multilineHeight="1", namedStyle="Regular")
    ET.SubElement(style, "text-buffer", bufferDraw="1", bufferSize="0.7", bufferSizeUnits="MM",
                  bufferColor="255,255,255,255", bufferOpacity="0.8", bufferNoFill="1", bufferJoinStyle="128")
    ET.SubElement(settings, "text-format", multilineAlign="1", wrapChar="")
    ET.SubElement(settings, "placement", placement="1", centroidInside="1", centroidWhole="0", fitInPolygonOnly="0",
                  priority=str(priority), dist="0")
    # In this element scaleMin is the most zoomed-in scale and scaleMax the most zoomed-out one.
    ET.SubElement(settings, "rendering", scaleVisibility="1", scaleMin="1", scaleMax=str(max_scale), obstacle="1",
                  obstacleType="1", drawLabels="1", displayAll="0", upsidedownLabels="0", labelPerPart="0",
                  mergeLines="0", limitNumLabels="0", maxNumLabels="2000", minFeatureSize="0", zIndex="0")
    return labeling


def _vector_qml(renderer: ET.Element, labeling: ET.Element) -> ET.Element:
    qml = _el("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories", labelsEnabled="1",
              hasScaleBasedVisibilityFlag="0", minScale="100000000", maxScale="0")
    qml.extend([renderer, labeling])
    ET.SubElement(qml, "blendMode").text = "0"
    ET.SubElement(qml, "featureBlendMode").text = "0"
    ET.SubElement(qml, "layerOpacity").text = "1"
    ET.SubElement(qml, "layerGeometryType").text = "2"
    return qml


def _pseudocolour(stops: tuple[tuple[float, str], ...], labels: dict[float, str]) -> ET.Element:
    low, high = stops[0][0], stops[-1][0]
    renderer = _el("rasterrenderer", type="singlebandpseudocolor", band="1", opacity="1", alphaBand="-1",
                   classificationMin=f"{low:g}", classificationMax=f"{high:g}", nodataColor="")
    renderer.append(_min_max_origin())
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", colorRampType="INTERPOLATED",
                           classificationMode="1", clip="0", minimumValue=f"{low:g}", maximumValue=f"{high:g}",
                           labelPrecision="2")
    for value, colour in stops:
        ET.SubElement(shader, "item", value=f"{value:g}", color=colour, alpha="255",
                      label=labels.get(value, f"{value:g}"))
    return renderer


def _paletted(classes: tuple[str, ...]) -> ET.Element:
    """One colour per class value 0.. (non-crop grey, crops in ``CLASS_COLOURS`` order, cycled)."""
    renderer = _el("rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1", nodataColor="")
    renderer.append(_min_max_origin())
    palette = ET.SubElement(renderer, "colorPalette")
    for value, name in enumerate(classes):
        colour = NON_CROP_COLOUR if value == 0 else CLASS_COLOURS[(value - 1) % len(CLASS_COLOURS)]
        ET.SubElement(palette, "paletteEntry", value=str(value), color=colour, alpha="255",
                      label="non-crop" if value == 0 else name.replace("_", " "))
    return renderer


def _min_max_origin() -> ET.Element:
    """Limits "None": keep the style's own range instead of re-stretching to each file's values."""
    origin = _el("minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(origin, tag).text = text
    return origin


def _raster_qml(renderer: ET.Element, resampling: str) -> ET.Element:
    qml = _el("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories", hasScaleBasedVisibilityFlag="0",
              minScale="1e+08", maxScale="0")
    pipe = ET.SubElement(qml, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(provider, "resampling", enabled="false", maxOversampling="2",
                  zoomedInResamplingMethod="nearestNeighbour", zoomedOutResamplingMethod=resampling)
    pipe.append(renderer)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0", invertColors="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"
    ET.SubElement(qml, "blendMode").text = "0"
    return qml


def _options(values: dict[str, str]) -> ET.Element:
    options = _el("Option", type="Map")
    for name, value in values.items():
        ET.SubElement(options, "Option", type="QString", name=name, value=value)
    return options


def _rgba(colour: str, alpha: int) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"{red},{green},{blue},{alpha}"


def _el(tag: str, **attributes: str) -> ET.Element:
    return ET.Element(tag, attributes)
