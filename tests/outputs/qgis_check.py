"""Open a farmcredit results folder in real QGIS and report what QGIS sees, as JSON.

Runs under Debian's ``/usr/bin/python3`` (PyQGIS is not importable from the venv), headless:

    QT_QPA_PLATFORM=offscreen HOME=$(mktemp -d) /usr/bin/python3 qgis_check.py RESULTS REPORT.json PNG_DIR

It loads each GeoPackage layer (with its default style from ``layer_styles``), each raster
(with its ``.qml`` sidecar) and ``project.qgs``, and renders the project to PNGs: the whole
extent with each stored parcels style, and a close-up where labels show. Standard library
and PyQGIS only; the test that runs it checks the report.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsExpression,
    QgsExpressionContext,
    QgsExpressionContextUtils,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

RASTERS = ("true_colour", "cropland_probability", "cropland_class", "ndvi_peak", "health_index")
CLOSE_UP_M = 500.0  # a 500 m view on 1000 px is about 1:1900, inside the labels' scale range


def vector_report(layer: QgsVectorLayer) -> dict:
    """Validity, CRS, count, renderer classes, labels and the styles stored in the GeoPackage."""
    renderer = layer.renderer()
    report = {"valid": layer.isValid(), "crs": layer.crs().authid(), "features": layer.featureCount(),
              "renderer": renderer.type(), "labels": layer.labelsEnabled()}
    if renderer.type() == "categorizedSymbol":
        report["attr"] = renderer.classAttribute()
        report["classes"] = [[str(c.value()), c.label(), c.symbol().color().name()] for c in renderer.categories()]
    elif renderer.type() == "graduatedSymbol":
        report["attr"] = renderer.classAttribute()
        report["classes"] = [[r.lowerValue(), r.upperValue(), r.label()] for r in renderer.ranges()]
    if layer.labelsEnabled():
        settings = layer.labeling().settings()
        report["label_expression"] = settings.fieldName
        report["label_scales"] = [settings.scaleVisibility, settings.maximumScale, settings.minimumScale]
        # Each feature's label as QGIS evaluates it, beside the limit it shows.
        expression, context = QgsExpression(settings.fieldName), QgsExpressionContext()
        context.appendScopes(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
        report["label_texts"] = []
        for feature in layer.getFeatures():
            context.setFeature(feature)
            report["label_texts"].append([feature["loan_limit"], expression.evaluate(context)])
    # The layer's own styles come first, then those of the GeoPackage's other layers.
    own, _, names, _, error = layer.listStylesInDatabase()
    report["stored_styles"] = list(names[:own])
    report["stored_styles_error"] = error
    return report


def raster_report(layer: QgsRasterLayer) -> dict:
    """Validity, CRS, size and the renderer with its fixed range."""
    renderer = layer.renderer()
    report = {"valid": layer.isValid(), "crs": layer.crs().authid(), "bands": layer.bandCount(),
              "size": [layer.width(), layer.height()], "renderer": renderer.type()}
    if renderer.type() == "singlebandpseudocolor":
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        report["range"] = [renderer.classificationMin(), renderer.classificationMax()]
        report["ramp"] = [[item.value, item.color.name(), item.label] for item in items]
    elif renderer.type() == "paletted":
        report["classes"] = [[entry.value, entry.color.name(), entry.label] for entry in renderer.classes()]
    elif renderer.type() == "multibandcolor":
        report["bands_rgb"] = [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
        report["range"] = [renderer.redContrastEnhancement().minimumValue(),
                           renderer.redContrastEnhancement().maximumValue()]
    return report


def render(project: QgsProject, extent: QgsRectangle, path: Path, width: int = 1200,
           layers: list | None = None) -> dict:
    """Render ``layers`` (default: the ticked layers of the project's tree) over ``extent`` to a PNG."""
    settings = QgsMapSettings()
    settings.setLayers(layers if layers is not None else project.layerTreeRoot().checkedLayers())
    settings.setDestinationCrs(project.crs())
    settings.setBackgroundColor(QColor("white"))
    settings.setOutputDpi(96)
    height = max(int(width * extent.height() / extent.width()), 1)
    settings.setOutputSize(QSize(width, height))
    settings.setExtent(extent)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(str(path), "PNG")
    distinct = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    placed: dict[str, int] = {}  # labels QGIS placed, by layer name
    for label in job.takeLabelingResults().allLabels():
        if not label.isUnplaced:
            name = project.mapLayer(label.layerID).name()
            placed[name] = placed.get(name, 0) + 1
    return {"path": str(path), "size": [image.width(), image.height()], "colours": len(distinct),
            "scale": settings.scale(), "errors": [e.message for e in job.errors()], "labels": placed}


def project_report(path: Path, png_dir: Path) -> dict:
    """Read the project, list its tree and layers, and render it with each parcels style."""
    project = QgsProject.instance()
    report = {"read": project.read(str(path)), "crs": project.crs().authid(), "title": project.title()}
    report["tree"] = [
        {"name": node.name(), "group": node.parent().name(), "visible": node.isVisible(),
         "source": node.layer().source() if node.layer() else None}
        for node in project.layerTreeRoot().findLayers()
    ]
    report["layers"] = {}
    for layer in project.mapLayers().values():
        entry = {"valid": layer.isValid(), "crs": layer.crs().authid(), "renderer": layer.renderer().type(),
                 "styles": layer.styleManager().styles(), "current_style": layer.styleManager().currentStyle()}
        if isinstance(layer, QgsVectorLayer):
            entry["features"] = layer.featureCount()
        report["layers"][layer.name()] = entry
    parcels = project.mapLayersByName("parcels")[0]
    to_project = QgsCoordinateTransform(parcels.crs(), project.crs(), project)
    extent = to_project.transformBoundingBox(parcels.extent())
    extent.scale(1.05)
    report["renders"] = {}
    for style in parcels.styleManager().styles():
        parcels.styleManager().setCurrentStyle(style)
        report["renders"][style] = render(project, extent, png_dir / f"project_{style.replace(' ', '_')}.png")
    parcels.styleManager().setCurrentStyle("decision")
    for node in project.layerTreeRoot().findLayers():
        if node.parent().name() == "season layers":  # each analysis raster alone, as its .qml draws it
            name = node.layer().source().rsplit("/", 1)[-1].removesuffix(".tif")
            report["renders"][name] = render(project, extent, png_dir / f"raster_{name}.png", 600, [node.layer()])
    middle = parcels.extent().center()
    feature = min(parcels.getFeatures("\"status\" = 'ok'"),
                  key=lambda f: f.geometry().centroid().asPoint().sqrDist(middle))
    centre = to_project.transform(feature.geometry().centroid().asPoint())
    close_up = QgsRectangle(centre.x() - CLOSE_UP_M / 2, centre.y() - CLOSE_UP_M / 2,
                            centre.x() + CLOSE_UP_M / 2, centre.y() + CLOSE_UP_M / 2)
    report["renders"]["close_up"] = render(project, close_up, png_dir / "project_close_up.png", width=1000)
    report["renders"]["close_up"]["parcel_id"] = feature["parcel_id"]
    report["renders"]["close_up_parcels"] = render(project, close_up, png_dir / "project_close_up_parcels.png",
                                                   width=1000, layers=[parcels])
    return report


def main(results: Path, report_path: Path, png_dir: Path) -> int:
    messages: list[str] = []
    QgsApplication.messageLog().messageReceived.connect(
        lambda message, tag, level: messages.append(f"{tag}: {message}") if level >= Qgis.Warning else None
    )
    report: dict = {"qgis": Qgis.QGIS_VERSION, "gpkg": {}, "rasters": {}}
    for name in ("parcels", "borrowers"):
        layer = QgsVectorLayer(f"{results / 'results.gpkg'}|layername={name}", name, "ogr")
        report["gpkg"][name] = vector_report(layer)
        del layer
    for name in RASTERS:
        if (results / f"{name}.tif").exists():
            layer = QgsRasterLayer(str(results / f"{name}.tif"), name)
            report["rasters"][name] = raster_report(layer)
            del layer
    report["project"] = project_report(results / "project.qgs", png_dir)
    QgsProject.instance().clear()
    report["messages"] = messages
    report_path.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    try:
        code = main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    except Exception as error:  # noqa: BLE001 - reported to the test, which shows it
        import traceback

        traceback.print_exc()
        print(f"qgis_check failed: {error}", file=sys.stderr)
        code = 1
    QgsApplication.exitQgis()
    # Exiting normally can segfault in Qt/QGIS teardown; the report is already written.
    os._exit(code)
