"""``project.qgs``: a QGIS project that opens every output, styled, from wherever the folder lies.

Written without QGIS as plain XML. Paths are relative to the project file; each layer carries
its style (and the parcels their other stored styles, under Layer > Styles), the project its
CRS, and a layer tree: decisions on top, the season's analysis rasters (off) under them, the
true-colour image at the bottom.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyogrio
import pyproj

from farmcredit.formats import open_raster
from farmcredit.outputs.preview import map_parcels
from farmcredit.outputs.rasters import pixel_classes
from farmcredit.outputs.styles import QGIS_VERSION, Style, raster_style

if TYPE_CHECKING:
    from farmcredit.pipeline import Assessment

PROJECT_NAME = "project.qgs"
# Analysis rasters in the layer tree, top to bottom: (output name, layer name); off at first.
RASTER_LAYERS = (
    ("health_index", "health index (0-100)"),
    ("ndvi_peak", "peak NDVI"),
    ("cropland_probability", "cropland probability"),
    ("cropland_class", "cropland class"),
)


@dataclass(frozen=True)
class ProjectLayer:
    """One layer of the project.

    Attributes:
        name: Name shown in the layer tree.
        source: File name in the output folder (and ``|layername=...`` for GeoPackage layers).
        crs: The layer's CRS, as pyproj understands it.
        styles: Its styles; the first marked default is the current one.
        geometry: ``Polygon`` or ``MultiPolygon`` for vector layers, None for rasters.
        visible: Whether it is ticked in the layer tree.
    """

    name: str
    source: str
    crs: object
    styles: list[Style]
    geometry: str | None = None
    visible: bool = True

    @property
    def layer_id(self) -> str:
        """A stable id: the GeoPackage layer or file name."""
        return "farmcredit_" + self.source.split("|layername=")[-1].removesuffix(".tif")


def write_project(out_dir: Path, assessment: Assessment, styles: dict[str, list[Style]],
                  rasters: dict[str, Path]) -> Path:
    """Write ``project.qgs`` over the outputs already in ``out_dir``.

    Args:
        out_dir: The output folder; layer sources are relative to it.
        assessment: The run (for the title, the CRSs and the initial extent).
        styles: The GeoPackage layers' styles by layer name (``parcels``, ``borrowers``).
        rasters: The raster outputs written, by name (see ``write_rasters``).

    Returns:
        The project file.
    """
    crs = assessment.imagery.crs
    classes = pixel_classes(assessment)
    geometry_types = dict(pyogrio.list_layers(out_dir / "results.gpkg"))
    # Both shown: a parcel approved on its own may belong to a borrower declined under the minimum loan, so the
    # borrowers' outlines, in their decision's colour and line (solid, dashed, dotted), frame the parcels' fills.
    decisions = [
        ProjectLayer(layer, f"results.gpkg|layername={layer}", assessment.parcels.crs, styles[layer],
                     geometry_types[layer])
        for layer in ("borrowers", "parcels")
    ]
    season = [
        ProjectLayer(name, f"{key}.tif", crs, [Style("default", raster_style(key, classes), True)], visible=False)
        for key, name in RASTER_LAYERS if key in rasters
    ]
    imagery = []
    if "true_colour" in rasters:
        with open_raster(rasters["true_colour"]) as src:
            acquired = src.tags().get("ACQUIRED", "")
        imagery.append(ProjectLayer(f"true colour {acquired}".strip(), "true_colour.tif", crs,
                                    [Style("default", raster_style("true_colour"), True)]))
    framed = map_parcels(assessment.parcels)
    bounds = framed.to_crs(crs).total_bounds if len(framed) else np.zeros(4)
    pad = 0.03 * max(bounds[2] - bounds[0], bounds[3] - bounds[1], 100.0)
    extent = (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)
    dates = assessment.record.get("season_dates") or ["?"]
    title = f"farmcredit: {len(assessment.parcels)} parcels, season {dates[0]} to {dates[-1]}"
    return _write_qgs(out_dir / PROJECT_NAME, title, crs, extent,
                      [("decisions", decisions), ("season layers", season), (None, imagery)])


def _write_qgs(path: Path, title: str, crs: object, extent: tuple[float, float, float, float],
               groups: list[tuple[str | None, list[ProjectLayer]]]) -> Path:
    """The project XML: CRS, layer tree (groups top to bottom; None: at the root) and layers."""
    project = ET.Element("qgis", projectname=title, version=QGIS_VERSION)
    ET.SubElement(project, "homePath", path="")
    ET.SubElement(project, "title").text = title
    ET.SubElement(project, "projectCrs").append(_spatial_ref_sys(crs))
    tree = ET.SubElement(project, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    for group_name, layers in groups:
        if not layers:
            continue
        parent = tree
        if group_name is not None:
            parent = ET.SubElement(tree, "layer-tree-group", name=group_name, checked="Qt::Checked", expanded="1")
            ET.SubElement(parent, "customproperties")
        for layer in layers:
            node = ET.SubElement(parent, "layer-tree-layer", id=layer.layer_id, name=layer.name, source=layer.source,
                                 providerKey="ogr" if layer.geometry else "gdal", expanded="1",
                                 checked="Qt::Checked" if layer.visible else "Qt::Unchecked")
            ET.SubElement(node, "customproperties")
    canvas = ET.SubElement(project, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    ET.SubElement(canvas, "units").text = "meters"
    canvas.append(_extent(extent))
    ET.SubElement(canvas, "rotation").text = "0"
    ET.SubElement(canvas, "destinationsrs").append(_spatial_ref_sys(crs))
    project_layers = ET.SubElement(project, "projectlayers")
    for _, layers in groups:
        project_layers.extend(_map_layer(layer) for layer in layers)
    properties = ET.SubElement(project, "properties")
    paths = ET.SubElement(properties, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    ET.SubElement(ET.SubElement(properties, "SpatialRefSys"), "ProjectionsEnabled", type="int").text = "1"
    ET.indent(project)
    text = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(project, encoding="unicode")
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _map_layer(layer: ProjectLayer) -> ET.Element:
    """A ``<maplayer>``: source, CRS, provider, the current style inline and the others stored."""
    current = next((style for style in layer.styles if style.default), layer.styles[0])
    attributes = {key: value for key, value in current.qml.attrib.items() if key != "version"}
    if layer.geometry:
        # QGIS spells dimensions without a space: OGR's "Polygon Z" is its "PolygonZ".
        attributes.update(type="vector", geometry="Polygon", wkbType=layer.geometry.replace(" ", ""))
    else:
        attributes.update(type="raster")
    element = ET.Element("maplayer", attributes)
    ET.SubElement(element, "id").text = layer.layer_id
    ET.SubElement(element, "datasource").text = f"./{layer.source}"
    ET.SubElement(element, "layername").text = layer.name
    ET.SubElement(element, "srs").append(_spatial_ref_sys(layer.crs))
    ET.SubElement(element, "provider", encoding="UTF-8").text = "ogr" if layer.geometry else "gdal"
    manager = ET.SubElement(element, "map-layer-style-manager", current=current.name)
    for style in layer.styles:
        stored = ET.SubElement(manager, "map-layer-style", name=style.name)
        if style is not current:
            stored.append(copy.deepcopy(style.qml))
    element.extend(copy.deepcopy(current.qml))
    return element


def _spatial_ref_sys(crs: object) -> ET.Element:
    """QGIS's CRS element: the WKT (what QGIS reads first) and the authority code."""
    crs = pyproj.CRS.from_user_input(crs)
    element = ET.Element("spatialrefsys")
    epsg = crs.to_epsg()
    for tag, text in (("wkt", crs.to_wkt()), ("srid", str(epsg or 0)),
                      ("authid", f"EPSG:{epsg}" if epsg else ""), ("description", crs.name),
                      ("geographicflag", "true" if crs.is_geographic else "false")):
        ET.SubElement(element, tag).text = text
    return element


def _extent(bounds: tuple[float, float, float, float]) -> ET.Element:
    element = ET.Element("extent")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), bounds):
        ET.SubElement(element, tag).text = repr(float(value))
    return element
