"""Every output of a run: the tables (``results.gpkg`` with its QGIS styles, ``results.parquet``,
CSVs, ``ndvi_series.parquet``), the rasters, ``project.qgs``, ``preview.png``, ``run.json``, ``decisions.jsonl``,
``borrower_decisions.jsonl``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
from pyogrio.errors import DataLayerError, DataSourceError, FeatureError

from farmcredit.audit import (
    SEASON_COLUMNS,
    borrower_decision_records,
    decision_records,
    run_currency,
    write_decision_records,
)
from farmcredit.errors import InputError
from farmcredit.locking import (
    UNFINISHED,
    WRITE_ERRNOS,
    can_write_in,
    existing_ancestor,
    free_space,
    looked_up,
    results_lock,
)
from farmcredit.outputs.preview import render_preview
from farmcredit.outputs.project import write_project
from farmcredit.outputs.rasters import RASTER_WRITE_ERRORS, write_rasters
from farmcredit.outputs.styles import borrower_styles, parcel_styles, write_layer_styles
from farmcredit.spreadsheet import write_csv

if TYPE_CHECKING:
    from farmcredit.pipeline import Assessment

# What scored the run, on every parcel row (the pipeline's) and, written, on every borrower row too.
PROVENANCE_COLUMNS = ("model_version", "model_hash", "risk_model_hash", "config_hash")


def write_outputs(out_dir: str | Path, assessment: Assessment) -> dict[str, Path]:
    """Write every output of ``assessment`` into ``out_dir`` (created if missing).

    While it writes, the folder holds ``UNFINISHED`` (removed once every file but the preview, drawn from them, is
    written): a folder that still holds it was left by a write that did not finish (interrupted, a full disk),
    whatever else is there. An earlier run's ``run.json`` is removed first and the new one written last, so a
    ``run.json`` is always its folder's run's. The folder's results lock is held throughout (``results_lock``).

    Returns:
        The written files by kind.

    Raises:
        InputError: ``out_dir`` cannot be a folder (a file of that name, say), or cannot be written (full, read-only),
            or another run is writing there.
    """
    out_dir = output_folder(out_dir)
    marker = out_dir / UNFINISHED
    with results_lock(out_dir):
        try:
            marker.write_text("farmcredit is writing this folder; while this file is here its outputs are unfinished\n")
            files = _write_outputs(out_dir, assessment)
        except (OSError, DataSourceError, DataLayerError, FeatureError, *RASTER_WRITE_ERRORS) as exc:
            if isinstance(exc, OSError) and exc.errno is not None and exc.errno not in WRITE_ERRNOS:
                raise
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise InputError(f"writing the outputs in {out_dir} stopped{where}: "
                             f"{getattr(exc, 'strerror', None) or exc} ({free_space(out_dir)}); the folder holds an "
                             f"unfinished write ({UNFINISHED})") from exc
        marker.unlink()
        render_preview(out_dir, files["preview"])  # drawn from the finished files
    return files


def output_files(out_dir: Path) -> dict[str, Path]:
    """The files a run writes in ``out_dir`` under names of their own, by kind (the rasters and ``project.qgs``
    besides)."""
    return {
        "gpkg": out_dir / "results.gpkg",
        "parquet": out_dir / "results.parquet",
        "csv": out_dir / "results.csv",
        "borrowers_csv": out_dir / "borrowers.csv",
        "borrowers_parquet": out_dir / "borrowers.parquet",
        "preview": out_dir / "preview.png",
        "run": out_dir / "run.json",
        "decisions": out_dir / "decisions.jsonl",
        "borrower_decisions": out_dir / "borrower_decisions.jsonl",
        "series": out_dir / "ndvi_series.parquet",
    }


def _write_outputs(out_dir: Path, assessment: Assessment) -> dict[str, Path]:
    files = output_files(out_dir)
    # Rows by position, as the run made them: a caller's index (its labels may repeat) is not written.
    assessment = replace(assessment, parcels=assessment.parcels.reset_index(drop=True))
    parcels = parcel_table(assessment.parcels, assessment.record)
    borrowers = borrower_table(assessment.borrowers, assessment.parcels, assessment.record)
    # No audit record of an earlier run is left beside these while they are written (run.json is written last, so one
    # there is always its run's), nor a picture of one: its overview, nor its parcels' previews (preview_<id>.png).
    for earlier in (files["run"], files["gpkg"], files["preview"], *out_dir.glob("preview_*.png")):
        earlier.unlink(missing_ok=True)
    # GeoPackage 1.2: QGIS 3.22 warns about the 1.4 that GDAL writes by default. Through Arrow, as only it writes a
    # Date field (pyogrio's other path writes dates as text).
    _write_layer(as_dates(parcels, "ndvi_peak_date", *SEASON_COLUMNS), files["gpkg"], "parcels", VERSION="1.2",
                 use_arrow=True)
    _write_layer(as_dates(borrowers, *SEASON_COLUMNS), files["gpkg"], "borrowers", append=False, use_arrow=True)
    currency = run_currency(assessment.record)
    styles = {"parcels": parcel_styles(parcels, currency), "borrowers": borrower_styles(borrowers, currency)}
    write_layer_styles(files["gpkg"], styles)
    parquet_typed(assessment.parcels, assessment.record).to_parquet(files["parquet"], index=False)
    write_csv(_attributes(parcels), files["csv"])
    write_csv(_attributes(borrowers), files["borrowers_csv"])
    _text_typed(as_dates(borrowers, *SEASON_COLUMNS)).to_parquet(files["borrowers_parquet"], index=False)
    as_dates(assessment.series, "date").to_parquet(files["series"], index=False)
    rasters = write_rasters(out_dir, assessment)
    files.update(rasters)
    files["project"] = write_project(out_dir, assessment, styles, rasters)
    # The audit records hold the run's own rows: a parcel declared in hectares gains no declared_area_mu there.
    records = decision_records(assessment.parcels, assessment.record, assessment.overlaps, assessment.products,
                               assessment.clear, assessment.imagery.scenes)
    write_decision_records(records, files["decisions"])
    borrower_records = borrower_decision_records(assessment.borrowers, assessment.parcels, assessment.record)
    write_decision_records(borrower_records, files["borrower_decisions"])
    record = dict(assessment.record, outputs={kind: path.name for kind, path in files.items()})
    files["run"].write_text(json.dumps(record, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    return files


def output_folder(out_dir: str | Path, create: bool = True, inputs: Mapping[str, object] | None = None) -> Path:
    """``out_dir``, created if missing (with its parents); with ``create`` False only checked (before a run, which
    leaves nothing behind when it stops early). ``inputs``, the run's input files by what they are ("parcels",
    "--config"; a value that is no path is passed over), must not be among the files the run writes there.

    A leading ``~`` is the home folder, as pandas and GDAL writers would each take it or not: every output is
    written in the folder returned. An unknown user's ``~name`` is left as written, a folder so named (as pandas and
    the CLI's paths take it).

    Raises:
        InputError: it is a file, or it cannot be created (a file where a parent folder should be), or an input is one
            of its outputs (overwritten, and run.json fingerprinting a file gone), or it or an input cannot be looked
            up (a name too long, a loop of symbolic links: ``looked_up``).
    """
    out_dir = Path(os.path.expanduser(out_dir))
    if str(out_dir).startswith("~"):  # an unknown user's ~name: geopandas' writer would look for its home and stop
        out_dir = out_dir.absolute()
    out_dir = looked_up(out_dir, "output folder")
    written = {path.resolve(): path.name for path in output_files(out_dir).values()}
    for what, given in (inputs or {}).items():
        if not isinstance(given, str | Path):
            continue
        if name := written.get(looked_up(Path(given), what).resolve()):
            raise InputError(f"{what} {given} is {name}, one of the files this run writes in --out {out_dir}: it "
                             "would be overwritten, and run.json name a file that is gone; give another --out (out= "
                             "in Python)")
    ancestor = existing_ancestor(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} is a file, not a folder")
    if not ancestor.is_dir():
        raise InputError(f"output folder {out_dir} is not a folder that can be made ({ancestor} is a file)")
    can_write_in(out_dir)  # a read-only place fails now, not after the run
    if create:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"output folder {out_dir} is not a folder that can be made ({exc.strerror})") from exc
    return out_dir


def run_season(record: Mapping[str, object]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The season of a run's audit record (``run.json``), first and last day as midnight timestamps: the
    ``--season`` asked for (``season_requested``), else the first and last dates read (``season_dates``); NaT where
    it gives neither."""
    requested, read = record.get("season_requested"), record.get("season_dates") or [None]
    days = requested.split("/") if isinstance(requested, str) else read
    start, end = pd.to_datetime([days[0], days[-1]])
    return start, end


def parcel_table(parcels: gpd.GeoDataFrame, record: Mapping[str, object]) -> gpd.GeoDataFrame:
    """``parcels`` (a run's, its audit ``record``) with the columns every run writes, whatever its input, so that
    seasons appended into one table keep every column and can be told apart: ``declared_area_mu`` (NaN where the
    file declared hectares: a table without it took no rows of a run declaring mu), ``currency`` (``with_currency``)
    and, last, the run's season (``SEASON_COLUMNS``, ``run_season``)."""
    if "declared_area_mu" not in parcels:  # where a run declaring mu has it: after the measured areas
        parcels = parcels.copy()
        parcels.insert(parcels.columns.get_loc("cultivated_fraction") + 1, "declared_area_mu", np.nan)
    return _before_geometry(with_currency(parcels, record), dict(zip(SEASON_COLUMNS, run_season(record))))


def borrower_table(borrowers: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame,
                   record: Mapping[str, object]) -> gpd.GeoDataFrame:
    """``borrowers`` (a run's, of its ``parcels``, its audit ``record``) with ``currency`` (``with_currency``) and,
    last, what scored them as the parcels name it (``PROVENANCE_COLUMNS``) and the run's season (``SEASON_COLUMNS``,
    ``run_season``)."""
    provenance = {column: parcels[column].iloc[0] if len(parcels) else None for column in PROVENANCE_COLUMNS}
    return _before_geometry(with_currency(borrowers, record),
                            {**provenance, **dict(zip(SEASON_COLUMNS, run_season(record)))})


def with_currency(frame: gpd.GeoDataFrame, record: Mapping[str, object]) -> gpd.GeoDataFrame:
    """``frame`` with ``currency`` after ``loan_limit``: the run's ``credit.currency`` (``run_currency`` of its audit
    ``record``; None where it says none), so that a limit read from a table or stacked with another run's says what
    it is in."""
    frame = frame.copy()
    frame.insert(frame.columns.get_loc("loan_limit") + 1, "currency", run_currency(record) or None)
    return frame


def _before_geometry(frame: gpd.GeoDataFrame, values: Mapping[str, object]) -> gpd.GeoDataFrame:
    """``frame`` with a column of each of ``values`` (one value for every row), after its others, before its
    outlines."""
    added = frame.assign(**values)
    return added[[*frame.columns.drop(frame.geometry.name), *values, frame.geometry.name]]


def as_dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``frame`` with ``columns``, calendar days held as midnight timestamps, as dates with no time of day: Arrow's
    date32 in Parquet, a Date field in a GeoPackage. Written as a midnight with no time zone, the day showed as the
    one before in a tool that reads such a time as UTC west of Greenwich."""
    return frame.assign(**{column: frame[column].astype(pd.ArrowDtype(pa.date32())) for column in columns})


def parquet_typed(parcels: gpd.GeoDataFrame, record: Mapping[str, object]) -> gpd.GeoDataFrame:
    """``parcels`` (a run's, its audit ``record``) as ``results.parquet`` holds them: with the columns of
    ``parcel_table``, the peak's and the season's days dates (``as_dates``), text as ``_text_typed``."""
    return _text_typed(as_dates(parcel_table(parcels, record), "ndvi_peak_date", *SEASON_COLUMNS))


def _text_typed(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with its text columns that hold no value typed as its other text, not Arrow's ``null`` (runs without
    regions or borrowers, or every parcel referred, would otherwise not stack with others)."""
    empty = [column for column in frame.columns[frame.dtypes == "object"] if frame[column].isna().all()]
    # As the frame's other text is typed (pandas 3: missing values NaN), so the column reads back as they do.
    text = next((dtype for dtype in frame.dtypes if isinstance(dtype, pd.StringDtype)), "string")
    return frame.astype(dict.fromkeys(empty, text)) if empty else frame


def _write_layer(frame: gpd.GeoDataFrame, path: Path, layer: str, **options: object) -> None:
    """Write ``frame`` as GeoPackage ``layer`` of MultiPolygons (with heights where any outline has them), whatever
    its outlines: the declared type followed the data (Polygon, MultiPolygon when one parcel was one, Geometry when
    none had an outline), so appending each run's layer into one table warned or failed. Its text columns that hold
    no value go as text (``_text_typed``): through Arrow, as Arrow's ``null`` type, GDAL before 3.10 (pyogrio's
    wheels before 0.11) refused them, and a run without regions stopped."""
    multipolygons = "MultiPolygon Z" if frame.geometry.has_z.any() else "MultiPolygon"
    _text_typed(_nulls_as_none(frame)).to_file(path, layer=layer, driver="GPKG", engine="pyogrio",
                                               promote_to_multi=True, geometry_type=multipolygons, **options)


def _nulls_as_none(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with the missing values of its text (object) columns as None: pyogrio writes pandas' NA there as the
    text "<NA>", which QGIS shows and `credit report` counted as a borrower or region."""
    frame = frame.copy()
    for column in frame.columns[frame.dtypes == "object"]:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _attributes(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Attributes plus a point inside each polygon in WGS84 (lon, lat) for spreadsheet users, found in WGS84 whatever
    the parcels' CRS: found in the file's own, a borrower's point among parcels 3 km apart was the one or the other's
    as the file was in WGS84 or UTM."""
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    valid = frame.geometry.notna() & ~frame.geometry.is_empty
    points = frame.geometry[valid].to_crs(4326).representative_point()
    table["lon"] = points.x.reindex(frame.index)
    table["lat"] = points.y.reindex(frame.index)
    return table
