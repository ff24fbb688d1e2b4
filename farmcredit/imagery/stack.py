"""Scenes from a multi-band GeoTIFF stack: each distinct date is a scene pointing into the file."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from farmcredit.dates import as_day
from farmcredit.errors import ImageryError
from farmcredit.formats import open_raster
from farmcredit.imagery._gdal import gdal_env, gdal_message
from farmcredit.imagery.naming import (
    SCL,
    band_name,
    date_in_name,
    dated_band_label,
    reflectance_scale,
    scene_dn_offset,
    tagged_conversion,
    unknown_offset_warning,
)
from farmcredit.imagery.read import float_scale
from farmcredit.imagery.scene import Scene
from farmcredit.text import some

logger = logging.getLogger(__name__)


def stack_scenes(
    path: Path,
    band_layout: Sequence[tuple[date | str | None, str]] | None,
    dn_offset: float | None,
    season: tuple[date, date] | None = None,
) -> list[Scene]:
    """The scenes in a multi-band GeoTIFF, one per distinct date.

    Bands are identified by ``band_layout`` when given, else by their descriptions ("B04",
    "red", "2021-06-17 B04", "2021-06-17_B04", "20210617_B04"). Undated bands take the date in
    the file name. Integer stacks are DNs (reflectance = (DN + dn_offset) * 1e-4, or DN * scale + offset where their
    GDAL scale/offset tags declare other than (1, 0)); float stacks
    are reflectance 0-1, or DNs stored as floats where their red band's values say so (``float_scale``).

    Args:
        path: The stack file.
        band_layout: (date or None, band name) per raster band, in order; a date may be a datetime or pandas
            Timestamp (its day) or YYYY-MM-DD text.
        dn_offset: DN offset for stacks of DNs; None means 0, warned of for the dates in ``season``, whatever they
            are, as for scene folders without a STAC item (``earthsearch._check_unknown_offsets``).
        season: The season read (first and last day, inclusive); None for every date.

    Returns:
        Scenes in date order.
    """
    with gdal_env():
        try:
            dataset = open_raster(path)
        except RasterioError as error:
            raise ImageryError(
                f"{path}: GDAL cannot open it as a raster ({gdal_message(error)})"
            ) from error
        with dataset:
            layout = _layout(path, dataset.descriptions, band_layout)
            if any(name == "B10" for _, name in layout):
                logger.warning("%s holds B10 (cirrus), a band of Level-1C products only: top-of-atmosphere "
                               "reflectance, hazier than the Level-2A surface reflectance farmcredit's models and "
                               "thresholds are set on; use the L2A products of these dates where there are any", path)
            names = [name for _, name in layout]
            dn_scale = _dn_scale(path, dataset, names)
            tagged = tagged_conversion(path, [
                (scale, offset) for name, dtype, scale, offset in zip(names, dataset.dtypes, dataset.scales,
                                                                      dataset.offsets, strict=True)
                if name != SCL and np.issubdtype(np.dtype(dtype), np.integer)], dn_offset)
    tagged_offset = None
    if tagged is not None:
        dn_scale, tagged_offset = tagged
    if dn_scale == 1.0 and dn_offset:
        raise ImageryError(f"{path}: holds float reflectance; --dn-offset (dn_offset= in Python) applies to integer "
                           "DNs only")
    dates = _dates(path, layout)
    # DNs carry no offset of their own in a stack: baseline 04.00's -1000 came to older acquisitions reprocessed as
    # Collection 1 too, so every date the season reads is in doubt, as a scene folder's without an item is.
    read = sorted({when.isoformat() for when in dates if season is None or season[0] <= when <= season[1]})
    if dn_offset is None and tagged_offset is None and dn_scale != 1.0 and read:
        logger.warning("%s", unknown_offset_warning(f"{path}: the DNs of {len(read)} date(s) ({some(read)})"))

    bands_by_date: dict[date, dict[str, tuple[str, int]]] = {}
    for index, ((_, name), when) in enumerate(zip(layout, dates, strict=True), start=1):
        bands = bands_by_date.setdefault(when, {})
        if name in bands:
            raise ImageryError(
                f"{path}: {name} of {when} appears twice "
                f"(raster bands {bands[name][1]} and {index})"
            )
        bands[name] = (str(path), index)
    return [
        Scene(
            scene_id=f"{path.stem}_{when:%Y%m%d}",
            acquired=datetime(when.year, when.month, when.day, tzinfo=timezone.utc),
            band_paths=bands,
            dn_offset=scene_dn_offset(dn_offset, dn_scale, tagged_offset),
            dn_scale=dn_scale,
            cloud_cover=None,
        )
        for when, bands in sorted(bands_by_date.items())
    ]


def _layout(
    path: Path,
    descriptions: tuple[str | None, ...],
    band_layout: Sequence[tuple[date | str | None, str]] | None,
) -> list[tuple[date | None, str]]:
    pairs = "band_layout= takes (date, band) pairs, one per band of the file, e.g. [('2024-06-19', 'B04'), " \
            "('2024-06-19', 'B08')]"
    if isinstance(band_layout, str):  # the CLI's text, whose characters would be counted as bands
        raise ImageryError(f"{path}: {pairs}, not the text --bands takes")
    if band_layout is not None:
        if odd := [e for e in band_layout if isinstance(e, str) or not isinstance(e, Sequence) or len(e) != 2]:
            raise ImageryError(f"{path}: {pairs}; {odd[0]!r} is not one")
        if len(band_layout) != len(descriptions):
            raise ImageryError(f"{path}: --bands (band_layout= in Python) lists {len(band_layout)} bands but the file "
                               f"has {len(descriptions)}: name every band of the file, in order")
        layout = []
        for when, label in band_layout:
            name = band_name(label)
            if name is None:
                raise ImageryError(f"{path}: --bands (band_layout= in Python) names an unknown band {label!r}: "
                                   "Sentinel-2 band names are B01-B12, B8A and SCL, or red, green, blue, nir")
            try:
                layout.append((None if when is None else as_day(when), name))
            except (TypeError, ValueError) as exc:
                raise ImageryError(f"{path}: band_layout dates band {label!r} {when!r}, which is not a date, a "
                                   f"datetime or YYYY-MM-DD text ({exc})") from exc
        return layout
    parsed = [dated_band_label(text) if text else None for text in descriptions]
    if any(entry is None for entry in parsed):
        unknown = [index for index, entry in enumerate(parsed, start=1) if entry is None]
        raise ImageryError(
            f"{path}: cannot identify raster bands {unknown} from their descriptions "
            f"{list(descriptions)}; pass band_layout=[(date, 'B04'), ...] with one entry per band "
            "(command line: --bands 2021-06-17:B04,B03,B02,B08;2021-09-25:B04,...)"
        )
    return [entry for entry in parsed if entry is not None]



def _dn_scale(path: Path, dataset: rasterio.DatasetReader, names: list[str]) -> float:
    """Reflectance per stored value of the stack's bands (``names``, SCL's not counted): 1e-4 for integer DNs; for
    floats what the red bands' values say, every date's (``float_scale``: reflectance, or DNs stored as floats)."""
    scale = reflectance_scale(path, [dtype for name, dtype in zip(names, dataset.dtypes, strict=True) if name != SCL])
    if scale != 1.0:
        return scale
    red = [i + 1 for i, name in enumerate(names) if name == "B04"] or [i + 1 for i, name in enumerate(names)
                                                                       if name != SCL]
    return float_scale((dataset, index) for index in red)

def _dates(path: Path, layout: list[tuple[date | None, str]]) -> list[date]:
    """Each band's date; undated bands (all or none) take the date in the file name."""
    undated = [when is None for when, _ in layout]
    if not any(undated):
        return [when for when, _ in layout if when is not None]
    if not all(undated):
        raise ImageryError(f"{path}: some bands are dated and some are not; date all of them")
    file_date = date_in_name(path.stem)
    if file_date is None:
        raise ImageryError(
            f"{path}: bands carry no date and the file name has none; name bands like "
            "'2021-06-17 B04' or pass band_layout with dates (command line: --bands DATE:BAND,...)"
        )
    return [file_date] * len(layout)
