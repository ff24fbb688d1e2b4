"""The risk committee's report on a run: summary, fairness, stability and changes, calibration, reason codes and
referrals.

``credit_report`` reads a results table (what ``farmcredit assess`` writes) and, optionally, an
earlier run to compare with, and writes one self-contained HTML file (plots embedded as base64
PNG) or a Markdown file with its PNGs beside it. The same inputs give byte-identical output.

    >>> results = load_results(Path("results/sample"))
    >>> credit_report(results, out=Path("results/sample/credit_report.html"))
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from pyogrio import read_dataframe
from pyogrio.errors import DataLayerError, DataSourceError

from farmcredit.audit import SEASON_COLUMNS, run_currency, run_id
from farmcredit.config import DECLARED_FALLOW, RESERVED_CROP_NAMES, AgronomyConfig
from farmcredit.credit.limit import DECISIONS, STATUSES, UNOBSERVED, call_unsure
from farmcredit.errors import InputError
from farmcredit.fonts import figure_fonts, missing_glyphs_told
from farmcredit.formats import check_vector_file
from farmcredit.locking import looked_up, refuse_unfinished, write_problem
from farmcredit.outputs.preview import read_as_written
from farmcredit.outputs.styles import DECISION_COLOURS
from farmcredit.outputs.tables import run_season
from farmcredit.reasons import REASONS
from farmcredit.spreadsheet import read_csv, write_csv
from farmcredit.text import folded

REQUIRED_COLUMNS = (
    "parcel_id", "borrower_id", "status", "decision", "loan_limit", "risk_grade", "polygon_area_ha",
    "cultivated_area_ha", "crop", "health_index", "clear_observations", "yield_p10_t_ha", "reason",
)
NUMERIC_COLUMNS = (
    "loan_limit", "polygon_area_ha", "cultivated_area_ha", "health_index", "clear_observations", "yield_p10_t_ha",
)
# 1 mu = 1/15 ha; 10 mu is the usual smallholder ceiling in China.
TEN_MU_HA = 10 / 15
# Parcel-size bands, left-closed: [0, 0.1), [0.1, 10 mu), [10 mu, inf) ha.
SIZE_BAND_EDGES_HA = (0.1, TEN_MU_HA)
SIZE_BANDS = ("< 0.1 ha", "0.1-0.67 ha", ">= 0.67 ha")
UNKNOWN = "unknown"
FOUR_FIFTHS = 0.8
# Below this many parcels a group's rate is too noisy to read much into; the text says so.
MIN_GROUP_PARCELS = 30
# Share given to an empty PSI bin so that its log term stays finite.
PSI_EPSILON = 1e-4
PSI_STABLE, PSI_MAJOR = 0.1, 0.25
TOP_REASONS = 10
# The gloss of a counted code this version does not define: an older run's, or a hand-edited file's.
UNKNOWN_CODE = ("not a farmcredit reason code in this version, so what it means is not known here (an older run's "
                "results, or a hand-edited file, may hold it)")
# Characters that mark up Markdown inline text, and runs of underscores (_md_text).
_MARKDOWN_MARKS = re.compile(r"[\\`*\[\]|~$]|_+")
# The plots, by the name a Markdown report gives their files (<stem>-<name>.png beside it).
PLOT_NAMES = ("summary", "fairness", "stability", "calibration", "reasons")
FIGURE_DPI = 100
RUN_COLOURS = {"this run": "#2c7fb8", "reference": "#bdbdbd"}
# Orange-purple, light to dark (greyscale 195, 126, 81, 34), the middle two hatched besides: in greyscale the old
# orange, purple and green read 121, 121 and 114, one grey; the fourth near black, as a light one read as green to a
# red-green colour-blind eye (a black hatch would not show on it).
BAND_COLOURS = ("#fdb863", "#e66101", "#5e3c99", "#222222")
BAND_HATCHES = ("", "////", "....", "")
HATCH_COLOUR = "#ffffff"
# Money grouped as its readers group it: Indian rupees in lakh and crore (55,45,340), others in thousands.
LAKH_GROUPED = frozenset({"INR"})
DECIDED = {"approve": "approved", "refer": "referred", "decline": "declined"}


def load_results(path: str | Path) -> pd.DataFrame:
    """Read a results table for the report (attributes only; the geometry is dropped).

    Args:
        path: an output folder of ``farmcredit assess`` (its ``results.parquet`` is read; without one, its
            ``results.csv`` or ``results.gpkg`` is named to give instead), or a ``.parquet``, ``.gpkg`` (layer
            ``parcels``) or ``.csv`` results file.

    Returns:
        The table, with ``attrs["source"]`` set to the file read, ``attrs["currency"]``, ``attrs["lend_on_area"]``
        and ``attrs["crop_min_confidence"]`` to its run's (from the ``run.json`` beside it; None without one), and
        ``attrs["run_id"]`` and ``attrs["run_lines"]`` naming that run (``_run_named``).

    Raises:
        InputError: the file is missing, unreadable, empty, cut short (a CSV row short of fields or no final line
            break; fewer or more rows than the ``run.json`` beside it counts) or lacks required columns (the message
            names the file and the columns); the ``run.json`` beside it does not parse; the borrowers table or
            ``run.json`` beside it is another run's (``_check_one_run``).
    """
    path = looked_up(Path(path), "results")
    file = path / "results.parquet" if path.is_dir() else path
    if not file.exists():
        # assess writes results.csv (and .gpkg) beside results.parquet: a folder copied without it still holds a run.
        held = [path / name for name in ("results.csv", "results.gpkg") if path.is_dir() and (path / name).exists()]
        instead = f"; {path} holds {held[0]}: give that file instead" if held else ""
        raise InputError(f"results file {file} does not exist{instead}")
    refuse_unfinished(file.parent)
    suffix = file.suffix.lower()
    if suffix not in (".parquet", ".geoparquet", ".gpkg", ".csv"):
        raise InputError(f"results file {file}: expected an output folder, .parquet, .gpkg or .csv")
    check_vector_file(file, "results file")
    try:
        if suffix == ".gpkg":
            table = read_dataframe(file, layer="parcels", read_geometry=False)
        elif suffix == ".csv":
            # Ids such as "007" must stay strings; an empty reason cell means no reason.
            text_columns = {"parcel_id": str, "borrower_id": str, "reason": str, "region": str, "risk_grade": str,
                            **dict.fromkeys(RUN_COLUMNS, str)}
            table = read_csv(file, text_columns, "results file")
        else:
            table = pd.read_parquet(file)
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        raise InputError(f"cannot read results file {file}: {exc}") from exc
    table = pd.DataFrame(table.drop(columns="geometry", errors="ignore"))
    table.attrs["source"] = str(file)
    run = _run_beside(file)
    table.attrs["currency"] = run_currency(run) or None
    table.attrs["season"] = _season_read(run)
    values = run.get("config", {}).get("values", {})
    table.attrs["lend_on_area"] = values.get("credit", {}).get("lend_on_area")
    table.attrs["crop_min_confidence"] = values.get("agronomy", {}).get("crop_min_confidence")
    table.attrs["run_id"], table.attrs["run_lines"] = _run_named(run, file)
    _check_columns(table, f"results file {file}")
    _check_row_count(table, run, file)
    _check_one_run(table, run, file)
    return table


def _check_row_count(table: pd.DataFrame, run: dict, file: Path) -> None:
    """Refuse results with another number of rows than the parcels their run's audit record counts: a file cut short
    at a row's end, or edited, reads whole otherwise. A record without counts checks nothing.

    Raises:
        InputError: naming the file and both numbers.
    """
    counts = run.get("counts")
    written = counts.get("parcels") if isinstance(counts, dict) else None
    if isinstance(written, int) and written != len(table):
        raise InputError(f"results file {file} holds {len(table)} rows where the run wrote {written} (counts in the "
                         "run.json beside it): it was cut short or edited; copy or write the results folder again")


def _check_one_run(table: pd.DataFrame, run: dict, file: Path) -> None:
    """Refuse results whose borrowers table beside them (``_run_tables``), or ``run.json``, is another run's: a write
    killed mid-way, its folder copied without its marker (``refuse_unfinished``), left one run's parcels beside
    another's borrowers, and both were reported as one run. Compared: the ``RUN_COLUMNS`` both name.

    Raises:
        InputError: naming both files and the values that differ.
    """
    ours = _run_values(table)
    for other, values in _run_tables(file, run):
        differ = [f"{column} {', '.join(sorted(ours[column]))} against {', '.join(sorted(values[column]))}"
                  for column in RUN_COLUMNS
                  if ours.get(column) and values.get(column) and ours[column] != values[column]]
        if differ:
            raise InputError(f"results file {file} and {other} are not of one run ({'; '.join(differ)}): a write that "
                             "did not finish, or files copied from two runs' folders; write the results folder again "
                             "(farmcredit assess) or copy it whole")


def _run_tables(file: Path, run: dict) -> list[tuple[str, dict[str, frozenset[str]]]]:
    """What names the run (``_run_values``) of the borrowers table beside results ``file`` (its ``borrowers`` layer,
    ``borrowers.parquet`` or ``borrowers.csv``) and of its audit record ``run`` (``run.json``), each with the file it
    is from; a borrowers table that does not read is left out (the report says it found none)."""
    models = run.get("models") if isinstance(run.get("models"), dict) else {}
    record = {"config_hash": run.get("config", {}).get("hash"),
              "model_hash": (models.get("cropland") or {}).get("hash"),
              "risk_model_hash": (models.get("risk") or {}).get("hash")}
    if run.get("season_dates") or run.get("season_requested"):
        record.update(zip(SEASON_COLUMNS, run_season(run)))
    named = [("the run.json beside it", _run_values(pd.DataFrame([record])))] if run else []
    suffix = file.suffix.lower()
    borrowers = file if suffix == ".gpkg" else file.with_name("borrowers.csv" if suffix == ".csv" else
                                                              "borrowers.parquet")
    try:
        if suffix == ".gpkg":
            table = read_dataframe(file, layer="borrowers", read_geometry=False)
        elif suffix == ".csv":
            table = read_csv(borrowers, dict.fromkeys(RUN_COLUMNS, str), "borrowers file")
        else:
            table = pd.read_parquet(borrowers, columns=[c for c in RUN_COLUMNS if c in pq.read_schema(borrowers).names])
    except (DataSourceError, DataLayerError, OSError, ValueError, InputError):
        return named
    where = f"{file} (its borrowers layer)" if suffix == ".gpkg" else str(borrowers)
    return [*named, (where, _run_values(table))]


def _run_values(table: pd.DataFrame) -> dict[str, frozenset[str]]:
    """The values of each of ``RUN_COLUMNS`` in ``table`` as text (a season's days as ``YYYY-MM-DD``, however the
    format read them), blanks left out."""
    values = {}
    for column in RUN_COLUMNS:
        if column in table:
            cells = table[column].dropna()
            if column in SEASON_COLUMNS:
                cells = pd.to_datetime(cells.astype(str), errors="coerce").dropna().dt.strftime("%Y-%m-%d")
            values[column] = frozenset(cells.astype(str))
    return values


def _run_beside(file: Path) -> dict:
    """The audit record (``run.json``) of the run whose results ``file`` holds, beside it; empty when there is none
    (results copied without it).

    Raises:
        InputError: a ``run.json`` there that does not read or parse (cut short by a copy that did not finish),
            naming it.
    """
    run = file.parent / "run.json"
    if not run.exists():
        return {}
    with read_as_written(run):
        record = json.loads(run.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError(f"a JSON {type(record).__name__}, not an object")
    return record


def _run_named(record: dict, file: Path) -> tuple[str | None, tuple[str, ...]]:
    """The short id of the run whose audit record (``run.json`` beside results ``file``) is ``record``, and what the
    report's Run block says of it: when it was made (with its time zone), the code, configuration, models and parcels
    file that made it, and the lending policy its configuration set. Without a record: no id, and a line saying so.

    The id is the record's ``created`` time in UTC and the first 8 characters of its config hash
    (``20261202T093608Z-bf78e9ee``), both in ``run.json``, so a printed page leads back to it.
    """
    where = file.parent / "run.json"
    if not record:
        return None, (f"no run.json beside {file}: the run that wrote these results, its code, models and lending "
                      "policy cannot be named here (results copied without their audit record); copy the output "
                      "folder whole",)

    def part(*keys: str) -> object:
        value: object = record
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    created = str(part("created") or "")
    try:
        made = datetime.fromisoformat(created)
    except ValueError:
        made = None
    zoned = made is not None and made.tzinfo is not None
    config_hash = str(part("config", "hash") or "")
    commit, source = part("code", "git_commit"), part("code", "source_sha256")
    code = f"farmcredit {part('code', 'farmcredit') or '(version not recorded)'}"
    if commit:
        code += f", commit {str(commit)[:12]}" + (" with uncommitted changes" if part("code", "git_uncommitted_changes")
                                                 else "")
    elif source:
        code += f", source SHA-256 {str(source)[:12]}"
    currency = run_currency(record)
    credit = part("config", "values", "credit")
    credit = credit if isinstance(credit, dict) else {}

    def amount(key: str) -> str:
        value = credit.get(key)
        if not isinstance(value, (int, float)):
            return "not recorded"
        return f"{_money(value, currency, 0 if float(value).is_integer() else 2)} {currency}".strip()

    parcels_sha = part("inputs", "parcels", "sha256")
    risk_source = part("models", "risk", "source")
    lines = (
        f"audit record: {where}",
        f"created {created or 'not recorded'}" + (f" ({made.tzname()})" if zoned else
                                                  " (no time zone recorded)" if made else ""),
        f"code: {code}",
        f"configuration hash {config_hash or 'not recorded'}",
        f"cropland model {part('models', 'cropland', 'name') or '(no name)'}, hash "
        f"{part('models', 'cropland', 'hash') or 'not recorded'}",
        f"risk model {Path(str(risk_source)).name if risk_source else '(no file)'}, hash "
        f"{part('models', 'risk', 'hash') or 'not recorded'}",
        f"parcels file {Path(str(part('inputs', 'parcels', 'path') or '(not recorded)')).name}, SHA-256 "
        f"{str(parcels_sha)[:12] if parcels_sha else 'not recorded'}",
        f"policy: minimum loan {amount('min_loan')}; borrower cap {amount('borrower_cap')}; parcel cap "
        f"{amount('parcel_cap')}; borrower limits rounded down to steps of {amount('rounding_step')}",
        "imagery dates are UTC days",
    )
    return run_id(record), lines


def _season_read(record: dict) -> str | None:
    """The first and last imagery date of a run's audit record, with the season asked for where it says (two runs of
    different seasons compare crops of different years); None when it gives no dates."""
    dates = record.get("season_dates")
    if not isinstance(dates, list) or not dates:
        return None
    if "season_requested" not in record:  # a run from before it was recorded
        return f"imagery {dates[0]} to {dates[-1]}"
    return f"imagery {dates[0]} to {dates[-1]}, season asked for: {record['season_requested'] or 'none (all dates)'}"


def size_band(polygon_area_ha: ArrayLike) -> pd.Series:
    """Parcel-size band of each area (ha): ``< 0.1 ha``, ``0.1-0.67 ha`` (to 10 mu), ``>= 0.67 ha``.

    Bands are left-closed: exactly 0.1 ha is in the middle band, exactly 10 mu (2/3 ha) in the
    larger one. A missing area gets ``unknown``.
    """
    area = pd.to_numeric(pd.Series(polygon_area_ha), errors="coerce").to_numpy(dtype=float)
    index = np.searchsorted(SIZE_BAND_EDGES_HA, area, side="right")
    index = np.where(np.isnan(area), len(SIZE_BANDS), index)
    labels = np.array((*SIZE_BANDS, UNKNOWN))[index]
    return pd.Series(pd.Categorical(labels, categories=(*SIZE_BANDS, UNKNOWN)), name="size_band")


def population_stability_index(reference: ArrayLike, current: ArrayLike) -> float:
    """PSI of ``current`` against ``reference`` over bins fixed by the reference's deciles.

    PSI = sum over bins of (current share - reference share) x ln(current share / reference share);
    bins are right-closed between the reference's 10th-90th percentiles (tied deciles merge),
    missing values form a bin of their own, and an empty bin counts as a share of ``PSI_EPSILON``.
    Below 0.1 reads as stable, 0.1-0.25 as a moderate shift, above 0.25 as a major shift.

        >>> population_stability_index([1, 2, 3, 4], [1, 2, 3, 4])
        0.0

    Returns:
        The PSI (unitless), NaN when the reference has no values.
    """
    return float(_psi_bins(reference, current)["contribution"].sum(min_count=1))


def psi_reading(value: float) -> str:
    """Plain-words reading of a PSI value."""
    if np.isnan(value):
        return "not computable"
    if value < PSI_STABLE:
        return "stable"
    return "moderate shift" if value <= PSI_MAJOR else "major shift"


def fairness_table(results: pd.DataFrame, by: Literal["size_band", "region"] = "size_band") -> pd.DataFrame:
    """Outcomes per parcel-size band or region, with the four-fifths adverse-impact screen.

    Returns:
        One row per group: ``parcels``, ``approval_rate``, ``refer_rate``, ``decline_rate`` (0-1),
        ``mean_approved_limit`` (the run's currency per parcel: the approved ones' limits, a referred or declined
        parcel counting as 0), ``mean_pending_limit`` (per parcel: the referred ones' limits, pending a person's
        review, the others counting as 0), ``limit_per_cultivated_ha``
        (CNY/ha: total limit over total cultivated area of the parcels given a limit),
        ``impact_ratio`` (approval rate over the best group's) and ``below_four_fifths``.
    """
    return _fairness(_prepare(results, "results table"), by)


def calibration_table(results: pd.DataFrame, by: Literal["risk_grade", "pd_decile"] = "risk_grade") -> pd.DataFrame:
    """Predicted against observed default per risk grade or PD decile, over assessed parcels.

    Returns:
        One row per group: ``parcels``, ``mean_pd`` (0-1) and ``expected_defaults`` (sum of PD) and, when the
        table has ``defaulted``, ``with_outcome``, ``defaults`` and ``default_rate`` (0-1), ``mean_pd`` and
        ``expected_defaults`` then over the parcels with an outcome, as the default rate is, and
        ``mean_pd_all_graded`` over all. PD deciles (of all graded parcels' PD) also carry ``pd_min`` and ``pd_max``.

    Raises:
        InputError: PD deciles asked of a table without ``probability_of_default``.
    """
    return _calibration(_prepare(results, "results table"), by)


@figure_fonts()
def credit_report(
    results: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    out: Path,
    fmt: Literal["html", "md"] = "html",
) -> Path:
    """Write the fairness and stability report for the risk committee.

    Args:
        results: a results table (``load_results`` or the frame ``farmcredit.assess`` returns).
        reference: an earlier run to measure stability and changes against (its borrowers and parcels joined on
            ``borrower_id`` and ``parcel_id``, with the borrowers table beside each run's results file and the
            outlines in it, where there are some); without it, both are skipped.
        out: the report file to write; Markdown writes ``<stem>-<section>.png`` beside it (removing those of an
            earlier report that this one does not draw); with a reference, ``<stem>-borrower-changes.csv`` and
            ``<stem>-parcel-changes.csv`` list every changed borrower and parcel beside it (where some changed).
        fmt: ``html`` (one self-contained file) or ``md``.

    Returns:
        ``out``.

    Raises:
        InputError: an empty table, missing columns, an unknown ``fmt``, a reference in another currency, or
            ``out`` cannot be written (a folder, a file where a folder should be).
    """
    if fmt not in ("html", "md"):
        raise InputError(f"report format {fmt!r}: expected 'html' or 'md'")
    currency = results.attrs.get("currency")
    if reference is not None and None not in (currency, reference.attrs.get("currency")) \
            and reference.attrs["currency"] != currency:
        raise InputError(f"the results' limits are in {currency}, the reference run's in "
                         f"{reference.attrs['currency']}: they cannot be compared")
    unit = currency or "the run's currency"
    table = _prepare(results, results.attrs.get("source", "results table"))
    borrowers = _borrowers_of(table, results.attrs.get("source"))
    base = changes = base_borrowers = None
    if reference is not None:
        base = _prepare(reference, reference.attrs.get("source", "reference table"))
        base_borrowers = _borrowers_of(base, reference.attrs.get("source"))
        changes = _compare(results, reference, (borrowers, base_borrowers),
                           (results.attrs.get("source"), reference.attrs.get("source")))
    screened = _prepare_borrowers(borrowers)
    out = Path(out)
    with missing_glyphs_told(out):  # the plots are drawn as each section is made
        sections = [
            _summary_section(table, base, (borrowers, base_borrowers), unit),
            _fairness_section(table, screened, _has_regions(results), unit),
            _stability_section(table, base, changes, unit),
            _changes_section(table, base, changes, unit),
            _calibration_section(table),
            _reasons_section(table, screened, unit),
        ]
    intro = _intro(results, reference, table, unit)
    title = "farmcredit credit report" + (f", run {results.attrs['run_id']}" if results.attrs.get("run_id") else "")
    try:
        if out.is_dir():
            raise IsADirectoryError(21, "a folder; --out names the report file")
        out.parent.mkdir(parents=True, exist_ok=True)
        text = _render_html(title, intro, sections) if fmt == "html" else _render_markdown(intro, sections, out)
        out.write_text(text, encoding="utf-8")
        _write_change_lists(changes, out)
    except OSError as exc:
        raise InputError(f"cannot write the report to {out}: {write_problem(out, exc)}") from exc
    return out


# --- Checking and preparing tables ---------------------------------------------------------------


def _check_columns(table: pd.DataFrame, name: str) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise InputError(f"{name} lacks required column(s): {', '.join(missing)}")
    if table.empty:
        raise InputError(f"{name} has no parcels")
    _refuse_stacked_seasons(table, name)


def _refuse_stacked_seasons(table: pd.DataFrame, name: str) -> None:
    """Refuse results of several runs stacked into one table (each parcel_id once a run): every count and total
    counted each parcel once a run. Ids one run repeats (its rows ``DUPLICATE_PARCEL_ID``) pass.

    Raises:
        InputError: naming the table and, where they differ, its runs' seasons.
    """
    repeated = table["parcel_id"].duplicated(keep=False)
    codes = table["reason_all"] if "reason_all" in table else table["reason"]
    if not (repeated & ~codes.fillna("").astype(str).str.contains("DUPLICATE_PARCEL_ID", regex=False)).any():
        return
    seasons = (table[list(SEASON_COLUMNS)].dropna().astype(str).drop_duplicates().sort_values(list(SEASON_COLUMNS))
               if set(SEASON_COLUMNS) <= set(table.columns) else pd.DataFrame())
    if len(seasons) > 1:
        named = ", ".join(f"{start}..{end}" for start, end in seasons.itertuples(index=False))
        raise InputError(f"{name} holds the results of {len(seasons)} seasons ({named}), its parcel ids repeated "
                         "from one to the next: its counts and totals would count a parcel once a season; report "
                         "each season on its own (its rows of one season_start and season_end), giving an earlier "
                         "one as --reference (reference= in Python) to compare with")
    raise InputError(f"{name} repeats parcel ids on rows that are not DUPLICATE_PARCEL_ID (as one run writes a "
                     "repeated id): the results of several runs appended into one table, a season rerun, say, whose "
                     "rows nothing in the table tells apart: its counts and totals would count a parcel once a run; "
                     "report each run from its own results folder, giving an earlier one as --reference (reference= "
                     "in Python) to compare with")


def _prepare(results: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check the columns and normalise types; add ``size_band`` and ``region``; keep ``attrs["crop_min_confidence"]``
    (``_fallow_unsure``)."""
    _check_columns(results, name)
    table = pd.DataFrame(results.drop(columns="geometry", errors="ignore")).reset_index(drop=True)
    table.attrs["crop_min_confidence"] = results.attrs.get("crop_min_confidence")
    for column in NUMERIC_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    for column in ("status", "decision", "risk_grade"):
        table[column] = table[column].astype("string")
    table["reason"] = table["reason"].fillna("").astype(str)
    if "probability_of_default" in table:
        table["probability_of_default"] = pd.to_numeric(table["probability_of_default"], errors="coerce")
    if "defaulted" in table:
        defaulted = pd.to_numeric(table["defaulted"], errors="coerce")
        if not defaulted.dropna().isin([0, 1]).all():
            raise InputError(f"{name}: 'defaulted' must be 0 or 1 (or empty where the outcome is unknown)")
        table["defaulted"] = defaulted
    table["region"] = table["region"].fillna(UNKNOWN).astype(str) if _has_regions(table) else "all"
    table["size_band"] = size_band(table["polygon_area_ha"])
    return table


# Columns naming what scored a run: the risk model, the cropland model (its name, and its hash: a model retrained
# under the same name), the configuration.
PROVENANCE_COLUMNS = {"risk_model_hash": "risk model", "model_version": "cropland model",
                      "model_hash": "cropland model", "config_hash": "configuration"}
# What names a run on every row of both its parcels' and its borrowers' tables (farmcredit.outputs writes both).
RUN_COLUMNS = (*PROVENANCE_COLUMNS, *SEASON_COLUMNS)


def _changed_models(table: pd.DataFrame, base: pd.DataFrame) -> str:
    """What scored the two runs differently (``PROVENANCE_COLUMNS`` whose values differ), in words; '' if nothing."""
    def values(frame: pd.DataFrame, column: str) -> set[str]:
        return set(frame[column].dropna().astype(str)) if column in frame else set()

    changed = [words for column, words in PROVENANCE_COLUMNS.items()
               if values(table, column) and values(base, column) and values(table, column) != values(base, column)]
    return " and ".join(dict.fromkeys(changed))  # a model renamed and retrained is one cropland model changed


def _has_pd(table: pd.DataFrame) -> bool:
    return "probability_of_default" in table and table["probability_of_default"].notna().any()


# --- Statistics ----------------------------------------------------------------------------------


def _decile_edges(reference: np.ndarray) -> np.ndarray:
    """Inner bin edges: the reference's 10th-90th percentiles, ties merged."""
    return np.unique(np.quantile(reference, np.linspace(0.1, 0.9, 9)))


def _psi_bins(reference: ArrayLike, current: ArrayLike,
              edge: Callable[[float], str] = "{:.4g}".format) -> pd.DataFrame:
    """Per bin: label (its edges written by ``edge``), reference and current shares and the bin's PSI
    contribution."""
    ref = pd.to_numeric(pd.Series(reference), errors="coerce").to_numpy(dtype=float)
    cur = pd.to_numeric(pd.Series(current), errors="coerce").to_numpy(dtype=float)
    ref_known = ref[~np.isnan(ref)]
    if ref_known.size == 0:
        return pd.DataFrame({"bin": [], "reference_share": [], "current_share": [], "contribution": []})
    edges = _decile_edges(ref_known)
    labels = [f"<= {edge(edges[0])}", *(f"{edge(low)} to {edge(high)}" for low, high in zip(edges[:-1], edges[1:])),
              f"> {edge(edges[-1])}", "missing"]

    def shares(values: np.ndarray) -> np.ndarray:
        # side="left" makes bins right-closed, so a point mass (e.g. many zero limits) stays in one bin.
        index = np.where(np.isnan(values), len(edges) + 1, np.searchsorted(edges, values, side="left"))
        return np.bincount(index, minlength=len(edges) + 2) / max(values.size, 1)

    frame = pd.DataFrame({"bin": labels, "reference_share": shares(ref), "current_share": shares(cur)})
    if frame["reference_share"].iloc[-1] == 0 and frame["current_share"].iloc[-1] == 0:
        frame = frame.iloc[:-1]
    expected = frame["reference_share"].clip(lower=PSI_EPSILON)
    actual = frame["current_share"].clip(lower=PSI_EPSILON)
    frame["contribution"] = (actual - expected) * np.log(actual / expected)
    return frame


def _fairness(table: pd.DataFrame, by: str, counted: str = "parcels") -> pd.DataFrame:
    """``fairness_table`` of a prepared table of parcels, or of borrowers (``counted``: what its rows are)."""
    if by not in ("size_band", "region"):
        raise InputError(f"fairness by {by!r}: expected 'size_band' or 'region'")
    limited = (table["loan_limit"] > 0) & (table["cultivated_area_ha"] > 0)
    flags = pd.DataFrame(
        {
            "approve": table["decision"].eq("approve").astype(float),
            "refer": table["decision"].eq("refer").astype(float),
            "decline": table["decision"].eq("decline").astype(float),
            "approved_limit": table["loan_limit"].where(table["decision"].eq("approve").fillna(False), 0.0),
            "pending_limit": table["loan_limit"].where(table["decision"].eq("refer").fillna(False), 0.0),
            "limit_given": table["loan_limit"].where(limited, 0.0),
            "area_given": table["cultivated_area_ha"].where(limited, 0.0),
        }
    )
    groups = flags.groupby(table[by], observed=False, sort=True)
    frame = pd.DataFrame(
        {
            "parcels": groups.size(),
            "approval_rate": groups["approve"].mean(),
            "refer_rate": groups["refer"].mean(),
            "decline_rate": groups["decline"].mean(),
            "mean_approved_limit": groups["approved_limit"].mean(),
            "mean_pending_limit": groups["pending_limit"].mean(),
        }
    )
    area = groups["area_given"].sum()
    frame["limit_per_cultivated_ha"] = (groups["limit_given"].sum() / area).where(area > 0)
    if by == "size_band":
        # The named bands always show, even when empty; "unknown" only when some area is missing.
        frame = frame[(frame.index != UNKNOWN) | (frame["parcels"] > 0)]
    frame.index = frame.index.astype(str)
    frame.index.name = "size band" if by == "size_band" else "region"
    # Parcels of unknown size or region are not a group one could treat unfairly: no screen.
    screened = (frame.index != UNKNOWN) & (frame["parcels"] > 0)
    best = frame.loc[screened, "approval_rate"].max()
    frame["impact_ratio"] = (frame["approval_rate"] / best).where(screened & (best > 0))
    frame["below_four_fifths"] = frame["impact_ratio"].lt(FOUR_FIFTHS)
    return frame.rename(columns={"parcels": counted})


def _calibration(table: pd.DataFrame, by: str) -> pd.DataFrame:
    if by not in ("risk_grade", "pd_decile"):
        raise InputError(f"calibration by {by!r}: expected 'risk_grade' or 'pd_decile'")
    # Parcels without a grade (not assessed, or nothing cultivated: no PD) have nothing to calibrate.
    assessed = table[table["status"].ne("error") & table["risk_grade"].notna()]
    has_pd = _has_pd(table)
    if by == "pd_decile":
        if not has_pd:
            raise InputError("PD deciles need a probability_of_default column")
        assessed = assessed[assessed["probability_of_default"].notna()]
        probability = assessed["probability_of_default"].to_numpy()
        edges = _decile_edges(probability) if len(probability) else np.array([])
        bins = pd.Series(np.searchsorted(edges, probability, side="left"), index=assessed.index)
        key = bins.rank(method="dense").astype(int).rename("PD decile")  # 1, 2, 3 ... where tied deciles merged
    else:
        key = assessed["risk_grade"].astype(str).rename("risk grade")
    probability = assessed["probability_of_default"] if has_pd else pd.Series(np.nan, index=assessed.index)
    columns = {"parcels": probability.groupby(key).size()}
    if by == "pd_decile":
        columns["pd_min"] = probability.groupby(key).min()
        columns["pd_max"] = probability.groupby(key).max()
    if "defaulted" not in assessed:
        columns["mean_pd"] = probability.groupby(key).mean()
        columns["expected_defaults"] = probability.groupby(key).sum(min_count=1)
        return pd.DataFrame(columns)
    # Predicted against observed over the same parcels: those whose outcome is known (a grade whose high-PD parcels
    # had no outcome yet showed 29.9 expected defaults against 27, where over the 85 with one it was 26.2).
    outcome = assessed["defaulted"]
    known = outcome.notna()
    columns["mean_pd_all_graded"] = probability.groupby(key).mean()
    columns["mean_pd"] = probability[known].groupby(key[known]).mean()
    columns["expected_defaults"] = probability[known].groupby(key[known]).sum(min_count=1)
    columns["with_outcome"] = known.groupby(key).sum()
    columns["defaults"] = outcome.groupby(key).sum(min_count=1)  # n/a, not 0, where no outcome is known
    columns["default_rate"] = outcome.groupby(key).mean()
    return pd.DataFrame(columns).reindex(columns["parcels"].index)


def _reason_counts(table: pd.DataFrame, counted: str = "parcels") -> pd.DataFrame:
    """The most frequent reason codes: the parcels (or borrowers, ``counted``) carrying each, overall share and share
    per size band."""
    codes = table["reason"].str.split(";").explode().str.strip()
    codes = codes[codes.ne("") & codes.notna()]
    # A code listed twice on one parcel still counts that parcel once.
    long = pd.DataFrame({"parcel": codes.index, "code": codes.to_numpy()}).drop_duplicates()
    long["band"] = table["size_band"].to_numpy()[long["parcel"].to_numpy()]
    counts = long.groupby("code").size().rename(counted).reset_index()
    counts = counts.sort_values([counted, "code"], ascending=[False, True]).head(TOP_REASONS).set_index("code")
    counts["effect"] = [REASONS[code].effect if code in REASONS else UNKNOWN for code in counts.index]
    counts["share"] = counts[counted] / len(table)
    band_sizes = table["size_band"].value_counts()
    per_band = pd.crosstab(long["code"], long["band"]).reindex(index=counts.index, fill_value=0)
    for band in (*SIZE_BANDS, UNKNOWN):
        if band_sizes.get(band, 0) > 0:
            counts[band] = per_band.get(band, 0) / band_sizes[band]
    return counts


# --- Sections ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    caption: str
    frame: pd.DataFrame  # strings, ready to print; the index is the first column


@dataclass(frozen=True)
class _Plot:
    name: str
    alt: str
    png: bytes


@dataclass(frozen=True)
class _Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class _Section:
    title: str
    blocks: tuple[str | _Table | _Plot | _Bullets, ...]
    level: int = 2  # of its heading: 3 for a part of the section before it


def _intro(results: pd.DataFrame, reference: pd.DataFrame | None, table: pd.DataFrame,
           unit: str) -> list[str | _Bullets]:
    """The report's opening: each run's results file and season, and its Run block (``_run_block``); then how limits
    and rates are read."""
    def run(frame: pd.DataFrame, parcels: int) -> str:
        season = frame.attrs.get("season")
        return f"{frame.attrs.get('source', 'a results table')} ({parcels} parcels{f'; {season}' if season else ''})."

    lines: list[str | _Bullets] = [f"Results: {run(results, len(table))}", *_run_block(results, "Run")]
    if reference is not None:
        lines += [f"Reference run: {run(reference, len(reference))}", *_run_block(reference, "Reference run")]
    lines.append(f"Limits are in {unit}; rates are shares of all borrowers or parcels in the group, including "
                 "parcels that could not be assessed (status error).")
    runs = {"This run": results} if reference is None else {"This run": results, "The reference run": reference}
    lines.extend(f"{name} lent on the low end of each parcel's cultivated area interval (credit.lend_on_area: low), "
                 "not its estimate; limit per cultivated ha is over the estimate."
                 for name, frame in runs.items() if frame.attrs.get("lend_on_area") == "low")
    return lines


def _run_block(frame: pd.DataFrame, name: str) -> list[str | _Bullets]:
    """What names the run ``frame`` is of (``load_results``' ``run_id`` and ``run_lines``, from its ``run.json``):
    its id, then its record, code, models and policy as bullets; a frame from no file says it has no record."""
    if "run_lines" not in frame.attrs:
        return [f"{name}: a results table from no file; no run.json names the run that wrote it."]
    named = frame.attrs.get("run_id")
    if named is None:
        return [f"{name}: {frame.attrs['run_lines'][0]}."]
    return [f"{name} {named}:", _Bullets(tuple(frame.attrs["run_lines"]))]


def _summary_section(table: pd.DataFrame, base: pd.DataFrame | None,
                     borrowers: tuple[pd.DataFrame | None, pd.DataFrame | None], unit: str) -> _Section:
    runs = {"this run": table} if base is None else {"this run": table, "reference": base}
    values = {name: {**_summary_values(run, unit), **_borrower_values(lent, unit)}
              for (name, run), lent in zip(runs.items(), borrowers)}
    # Measures in first-seen order (status rows differ between runs); absent ones read 0.
    measures = list(dict.fromkeys(measure for run in values.values() for measure in run))
    frame = pd.DataFrame({name: [run.get(m, "0") for m in measures] for name, run in values.items()},
                         index=pd.Index(measures, name="measure"))
    fig, ax = _figure(1, width=6.0)
    shares = pd.DataFrame({name: [run["decision"].eq(decision).mean() for decision in DECISIONS]
                           for name, run in runs.items()}, index=list(DECISIONS))
    _grouped_bars(ax[0], shares, {name: RUN_COLOURS[name] for name in runs})
    ax[0].set_ylabel("share of parcels")
    ax[0].set_title("Parcel decisions (signals)")
    note = ("The credit decision is the borrower's: its parcels' limits summed, capped, rounded down and held to the "
            "minimum loan (the borrowers table beside the results; borrowers approved, referred and declined below, "
            "the referred by refer code in section 5). "
            "Parcel rates and totals are each parcel's own signal and limit, before the per-borrower cap and minimum "
            "loan, so they can exceed what borrowers are lent.")
    missing = [name for name, lent in zip(runs, borrowers) if lent is None]
    blocks: list[str | _Table | _Plot] = [note]
    if missing:
        blocks.append("No borrowers table of these borrowers was found beside the results of "
                      f"{' and of '.join(missing)} (a table from no file, results from before borrowers were "
                      "written, or another run's borrowers): its borrower decisions read n/a; report from the "
                      "run's output folder as assess wrote it.")
    plot = _Plot("summary", "Decision shares of parcels", _png(fig))
    return _Section("1. Summary", (*blocks, _Table("Portfolio summary", frame), plot))


def _summary_values(table: pd.DataFrame, unit: str) -> dict[str, str]:
    # A parcel without a borrower id is lent to as its own borrower.
    borrowers = table["borrower_id"].nunique(dropna=True) + int(table["borrower_id"].isna().sum())
    total = float(table["loan_limit"].sum())
    values = {
        "parcels": f"{len(table):,}",
        "borrowers": f"{borrowers:,}",
        "approval rate": _pct(table["decision"].eq("approve").mean()),
        "refer rate": _pct(table["decision"].eq("refer").mean()),
        "decline rate": _pct(table["decision"].eq("decline").mean()),
        f"total of parcel limits ({unit})": _money(total, unit),
        f"mean limit per parcel ({unit})": _money(table["loan_limit"].mean(), unit),
        f"parcel limits per borrower ({unit})": _money(total / borrowers if borrowers else np.nan, unit),
    }
    statuses = table["status"].fillna(UNKNOWN).value_counts()
    for status in (*STATUSES, *sorted(set(statuses.index) - set(STATUSES))):
        values[f"status {status}"] = f"{int(statuses.get(status, 0)):,}"
    return values


def _borrower_values(borrowers: pd.DataFrame | None, unit: str) -> dict[str, str]:
    """The borrowers' decisions (count and share) and their limits, approved apart from those pending review
    (``_borrower_limits``), n/a without a borrowers table."""
    decisions = {f"borrowers {done}": "n/a" for done in DECIDED.values()}
    for decision, done in DECIDED.items() if borrowers is not None else ():
        chosen = borrowers["decision"].eq(decision)
        decisions[f"borrowers {done}"] = f"{int(chosen.sum()):,} ({_pct(chosen.mean())})"
    return {**decisions, **{measure: _money(v, unit) for measure, v in _borrower_limits(borrowers, unit).items()}}


def _borrower_limits(borrowers: pd.DataFrame | None, unit: str) -> dict[str, float]:
    """The limits of the borrowers approved, and apart those of the borrowers referred, which wait on a person's
    review (as assess's summary line gives them): summed, they read as lent what may never be; NaN without a
    borrowers table."""
    def total(decision: str) -> float:
        if borrowers is None:
            return np.nan
        return float(pd.to_numeric(borrowers["loan_limit"], errors="coerce")[borrowers["decision"].eq(decision)].sum())

    return {f"approved limits ({unit})": total("approve"),
            f"pending review: referred borrowers' limits ({unit})": total("refer")}


def _fairness_section(table: pd.DataFrame, borrowers: pd.DataFrame | str, has_region: bool, unit: str) -> _Section:
    by_band, by_region = _fairness(table, "size_band"), _fairness(table, "region")
    edge = "10 mu (0.67 ha)" if unit == "CNY" else "0.67 ha"  # mu is China's unit: a lender elsewhere reads hectares
    blocks: list[str | _Table | _Plot | _Bullets] = [
        f"Bands by drawn area: under 0.1 ha (10 Sentinel-2 pixels or fewer), 0.1 ha to {edge}, "
        "and larger; a band includes its lower bound. Mean approved limit is the approved borrowers' or parcels' "
        "limits over all of the group's, a referred or declined one counting as 0; mean pending review limit is the "
        "referred ones' limits, which wait on a person's review and may never be lent, over the same count. Limit "
        "per cultivated ha is total limit (approved and pending) over total cultivated area of those given a limit.",
        "Four-fifths screen: a group whose approval rate is below 80% of the best group's is "
        "flagged. This is a screen, not a verdict: it says where to look, not that any group is "
        "treated unfairly. Small parcels are measured from fewer pixels, most of them mixed with the neighbours', "
        "so they read less healthy than they are (on simulated seasons, plots under 0.1 ha 7 health points under "
        "their true percentile, those over 0.67 ha 8 over): part of a small-plot gap is this measurement bias, not "
        "agronomy; a flag asks the committee to check which reason codes drive it.",
        "The credit decision is the borrower's, screened first, by the band of its total drawn area (its parcels' "
        "polygon_area_ha summed): the minimum loan applies to that total, so it can shut out the smallest farms "
        "whose parcels each look fine.",
    ]
    panels = [(by_band, "By parcel-size band (parcel signals)", "parcels"),
              (by_region, "By region (parcel signals)", "parcels")]
    if isinstance(borrowers, str):
        blocks.append(f"Borrowers not screened: {borrowers}.")
    else:
        by_total = _fairness(borrowers, "size_band", "borrowers")
        by_total.index.name = "total drawn area"
        blocks.append(_Bullets(_four_fifths_lines(by_total, "borrower area band", "borrowers")))
        blocks.append(_Table("Borrower decisions (the credit decision) by total drawn area",
                             _fairness_display(by_total, unit, "borrowers")))
        panels.insert(0, (by_total, "Borrowers by total drawn area", "borrowers"))
    blocks.append("Parcel signals: each parcel's own decision and limit, before its borrower's total is capped and "
                  "held to the minimum loan; not the credit decision.")
    if not has_region:
        blocks.append("No region column: every parcel is in one region, 'all'.")
    for frame, noun in ((by_band, "size band"), (by_region, "region")):
        blocks.append(_Bullets(_four_fifths_lines(frame, f"parcel {noun}" if noun == "size band" else noun)))
        blocks.append(_Table(f"Parcel signals by {noun} (not the credit decision)", _fairness_display(frame, unit)))
    fig, ax = _figure(len(panels))
    for axis, (frame, title, counted) in zip(ax, panels):
        rates = frame[["approval_rate", "refer_rate"]].set_axis(["approve", "refer"], axis=1)
        _grouped_bars(axis, rates, {"approve": DECISION_COLOURS["approve"], "refer": DECISION_COLOURS["refer"]})
        best = frame.loc[frame["impact_ratio"].notna(), "approval_rate"].max()
        if pd.notna(best):
            axis.axhline(FOUR_FIFTHS * best, color="black", linestyle="--", linewidth=1, label="4/5 of best approval")
        axis.set_title(title)
        axis.set_ylabel(f"share of {counted}")
        axis.set_ylim(0, 1.05)
    # One legend above the panels, outside them: inside each, it covered the axis's top tick label.
    handles = {label: handle for axis in ax for handle, label in zip(*axis.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), fontsize=8, loc="outside upper center", ncols=len(handles))
    blocks.append(_Plot("fairness", "Approval and refer rates", _png(fig)))
    return _Section("2. Fairness by borrower and parcel size, and region", tuple(blocks))


def _has_regions(table: pd.DataFrame) -> bool:
    """Whether the parcels name regions: a column of them, not empty (assess writes one whether or not its input had
    one)."""
    return "region" in table and bool(table["region"].notna().any())


def _four_fifths_lines(frame: pd.DataFrame, noun: str, counted: str = "parcels") -> tuple[str, ...]:
    screened = frame[frame["impact_ratio"].notna()]
    if screened.empty:
        known = ((frame.index != UNKNOWN) & (frame[counted] > 0)).any()
        return (f"Four-fifths screen by {noun}: no {counted[:-1]} of a known {noun}{' was approved' if known else ''}, "
                "so there is nothing to compare.",)
    best = screened["approval_rate"].idxmax()
    flagged = screened[screened["below_four_fifths"]]
    if flagged.empty:
        return (f"Four-fifths screen by {noun}: no {noun} is below 80% of the best ({best}, approval "
                f"{_pct(screened.loc[best, 'approval_rate'])}).",)
    lines = []
    for group, row in flagged.iterrows():
        noise = f" Only {int(row[counted])} {counted}: the rate is noisy." if row[counted] < MIN_GROUP_PARCELS else ""
        lines.append(f"FLAG (screen, not a verdict): {noun} {group} is approved at {_pct(row['approval_rate'])}, "
                     f"{row['impact_ratio']:.2f} of the best {noun} ({best}, "
                     f"{_pct(screened.loc[best, 'approval_rate'])}).{noise}")
    return tuple(lines)


def _fairness_display(frame: pd.DataFrame, unit: str, counted: str = "parcels") -> pd.DataFrame:
    return pd.DataFrame(
        {
            counted: frame[counted].map("{:,}".format),
            "approval rate": frame["approval_rate"].map(_pct),
            "refer rate": frame["refer_rate"].map(_pct),
            "decline rate": frame["decline_rate"].map(_pct),
            f"mean approved limit ({unit})": frame["mean_approved_limit"].map(lambda v: _money(v, unit)),
            f"mean pending review limit ({unit})": frame["mean_pending_limit"].map(lambda v: _money(v, unit)),
            f"limit per cultivated ha ({unit}/ha)": frame["limit_per_cultivated_ha"].map(lambda v: _money(v, unit)),
            "approval vs best": frame["impact_ratio"].map(lambda v: _number(v, 2)),
            "four-fifths flag": frame["below_four_fifths"].map({True: "FLAG", False: ""}),
        },
        index=frame.index,
    )


def _stability_section(table: pd.DataFrame, base: pd.DataFrame | None, changes: _Changes | None,
                       unit: str) -> _Section:
    title = "3. Stability against the reference run"
    if base is None or changes is None:
        return _Section(title, ("No reference run given: population stability was not measured.",))
    # A PD column with no values (no parcel graded) still has its shift measured: its nulls fill the missing bin.
    score = "probability_of_default" if "probability_of_default" in table and "probability_of_default" in base \
        else "health_index"
    blocks: list[str | _Table | _Plot | _Bullets] = [
        "Population stability index (PSI) = sum over bins of (this run's share - reference share) x "
        "ln(this run's share / reference share). Bins are fixed by the reference run's deciles "
        "(10th to 90th percentile as edges, ties merged, each bin including its upper edge), with "
        f"one more bin for missing values when either run has any; an empty bin counts as a share "
        f"of {PSI_EPSILON:g}. Reading: below {PSI_STABLE:g} stable, {PSI_STABLE:g}-{PSI_MAJOR:g} "
        f"moderate shift, above {PSI_MAJOR:g} major shift.",
    ]
    if score == "health_index":
        blocks.append("probability_of_default is missing from one of the runs: health_index stands in for it.")
    if changed := _changed_models(table, base):
        blocks.append(f"The runs differ in {changed}: a shift below may be the models' or settings', not the "
                      "portfolio's.")
    variables = (score, "loan_limit", "cultivated_area_ha")
    # Limits' bin edges as money, as the tables write it: "1,074 CNY to 1,584 CNY", not "1074 to 1584".
    edges = {"loan_limit": lambda value: f"{_money(value, unit)} {unit}"}
    bins = {variable: _psi_bins(base[variable], table[variable], *[edges[variable]] if variable in edges else [])
            for variable in variables}
    psi = {variable: float(frame["contribution"].sum(min_count=1)) for variable, frame in bins.items()}
    summary = pd.DataFrame(
        {
            "PSI": [_number(psi[v], 4) for v in variables],
            "reading": [psi_reading(psi[v]) for v in variables],
            "bins": [str(len(bins[v])) for v in variables],
            "bins (reference deciles)": ["; ".join(bins[v]["bin"]) for v in variables],
        },
        index=pd.Index(variables, name="variable"),
    )
    blocks += [_Table("PSI against the reference run", summary), _level_table(table, base, changes, unit)]
    fig, ax = _figure(3)
    for axis, variable in zip(ax, variables):
        shares = bins[variable].set_index(pd.Index(range(1, len(bins[variable]) + 1)))
        shares = shares[["reference_share", "current_share"]].rename(
            columns={"reference_share": "reference", "current_share": "this run"})
        _grouped_bars(axis, shares, {"reference": RUN_COLOURS["reference"], "this run": RUN_COLOURS["this run"]})
        axis.set_title(f"{variable}\nPSI {_number(psi[variable], 3)} ({psi_reading(psi[variable])})", fontsize=9)
        axis.set_xlabel("bin (reference deciles; see table)")
        axis.set_ylabel("share of parcels")
        axis.legend(fontsize=7)
    return _Section(title, (*blocks, _Plot("stability", "Shares per bin, reference against this run", _png(fig))))


# --- Changes against the reference run ----------------------------------------------------------

# A borrower in both runs is listed when its limit (approved, or pending a referral's review) or cultivated area fell
# by more than this share of the reference run's.
FALL_SHARE = 0.3
# Borrowers' limits nearer than this (in the run's currency) are the same limit, read back from a CSV, say.
LIMIT_TOLERANCE = 0.005
# Declared areas further apart than this (ha) are listed as changed; nearer, a rounding of the same declaration.
DECLARED_AREA_TOLERANCE_HA = 0.005
# The same for an area declared in mu (declared_area_mu, as written): its hectares are those over 15, so a change of
# up to 0.075 mu would pass the hectares' tolerance.
DECLARED_AREA_TOLERANCE_MU = 0.005
# What a parcel's row carries of its declaration (farmcredit.parcels.PARCEL_COLUMNS less its id), compared run to run.
PARCEL_TEXT_INPUTS = ("borrower_id", "declared_crop", "region")
PARCEL_INPUTS = (*PARCEL_TEXT_INPUTS, "declared_area_ha", "declared_area_mu")
PARCEL_CHANGE_KINDS = ("added", "dropped", "moved to another borrower", "redrawn", "declared area changed",
                       "declared crop changed", "region changed")
# A parcel whose outline moved further than this anywhere (Hausdorff distance, metres) is listed as redrawn: nearer, the
# same outline exported again (reprojected, or at another coordinate precision).
REDRAWN_M = 0.5
# Rows a report lists of each change list; the CSVs beside it hold them all.
MAX_LISTED = 50
DECISION_ORDER = ("approve", "refer", "decline")
NOT_IN_REFERENCE, NOT_IN_RUN, UNGRADED = "(not in reference)", "(not in this run)", "(ungraded)"
BORROWER_COLUMNS = ("borrower_id", "decision", "loan_limit", "cultivated_area_ha")
# What the borrowers' fairness screen and reason codes read besides: a borrowers table without them is not screened.
BORROWER_SCREEN_COLUMNS = ("polygon_area_ha", "reason")
# Every code of a borrower (``reason`` holds its leading ones): the referral table reads it where a run wrote it.
ALL_REASONS = "reason_all"
# A borrower's parcels (``P1;P2``): what names a parcel lent to alone, which has no borrower_id (``_borrower_keys``).
PARCEL_IDS = "parcel_ids"


@dataclass(frozen=True)
class _Changes:
    """Two runs compared: each run's borrowers table (None where none was found beside its results), the borrowers
    joined (``borrower_changes``; None without both tables), the changed parcels (``parcel_changes``) and whether
    outlines were compared (both runs' results came from a GeoPackage or GeoParquet file)."""

    borrowers: pd.DataFrame | None
    base_borrowers: pd.DataFrame | None
    borrower_moves: pd.DataFrame | None
    parcel_moves: pd.DataFrame
    outlines_compared: bool


def borrower_changes(borrowers: pd.DataFrame, reference: pd.DataFrame,
                     parcels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Borrowers of both runs joined on ``borrower_id`` (a parcel lent to alone, without one, on its parcel id:
    ``_borrower_keys``), with what changed, either way.

    Args:
        borrowers, reference: borrowers tables (``borrowers.parquet``: ``borrower_id``, ``decision``, ``loan_limit``
            in the run's currency, ``cultivated_area_ha``, ``parcel_ids``), this run's and the reference run's; a
            borrower with neither ``borrower_id`` nor ``parcel_ids`` (a table farmcredit did not write) cannot be
            matched and is left out.
        parcels: the runs' changed parcels (``parcel_changes``), to say what changed in each borrower's parcels'
            inputs; without it, ``parcel_inputs_changed`` is left out.

    Returns:
        One row per borrower in either run, by ``borrower_id`` (its key): ``reference_decision`` and ``decision``
        (NaN where not in that run), ``reference_loan_limit`` and ``loan_limit`` (as the run wrote it: approved, or
        pending a referral's review), ``reference_approved_limit`` and ``approved_limit`` (the limit of an approved
        borrower, else 0), ``reference_cultivated_area_ha`` and ``cultivated_area_ha``, ``limit_change``,
        ``approved_limit_change`` and ``cultivated_area_change`` (shares of the reference's, NaN where it is 0),
        ``direction`` ('worse': decided worse, or decided alike with its limit (approved or pending) or cultivated area
        fallen by more than ``FALL_SHARE``, as the report lists; 'lower': its limit fell by less, the same decision;
        'better': decided better, whatever fell, or its limit rose, the same decision; '' for none of these, or a
        borrower in one run alone), ``change`` (what changed, in words, where ``direction`` is not ''), and
        ``parcel_inputs_changed`` (its parcels' ``inputs_changed``, 'none' where none of them changed, in either run).
    """
    def side(frame: pd.DataFrame) -> pd.DataFrame:
        keys = _borrower_keys(frame["borrower_id"], frame[PARCEL_IDS] if PARCEL_IDS in frame else
                              pd.Series(pd.NA, index=frame.index, dtype="string"))
        frame = frame[keys.notna().to_numpy()].set_axis(pd.Index(keys.dropna(), name="borrower_id"))
        frame = pd.DataFrame({"decision": frame["decision"].astype("string"),
                              "loan_limit": pd.to_numeric(frame["loan_limit"], errors="coerce"),
                              "cultivated_area_ha": pd.to_numeric(frame["cultivated_area_ha"], errors="coerce")})
        frame.insert(2, "approved_limit", frame["loan_limit"].where(frame["decision"].eq("approve").fillna(False),
                                                                    0.0))
        return frame

    joined = side(reference).add_prefix("reference_").join(side(borrowers), how="outer").sort_index()
    rank = {decision: k for k, decision in enumerate(DECISION_ORDER)}
    step = joined["decision"].map(rank).astype(float) - joined["reference_decision"].map(rank).astype(float)
    limit = joined["loan_limit"] - joined["reference_loan_limit"]  # NaN for a borrower in one run alone
    change = pd.Series("", index=joined.index, dtype=object)  # per-row text added to the changed rows only
    decided = step.ne(0) & step.notna()
    change[decided] = [f"decision {old} -> {new}; " for old, new in
                       joined.loc[decided, ["reference_decision", "decision"]].itertuples(index=False)]
    joined["limit_change"] = limit / joined["reference_loan_limit"].where(joined["reference_loan_limit"] > 0)
    # A referred borrower's limit is pending, its approved limit 0 in both runs: its limit as written falls too.
    fell = joined["limit_change"] < -FALL_SHARE
    for column, words in (("approved_limit", "approved limit"), ("cultivated_area_ha", "cultivated area")):
        before = joined[f"reference_{column}"]
        share = (joined[column] - before) / before.where(before > 0)
        joined[column.removesuffix("_ha") + "_change"] = share
        fallen = share < -FALL_SHARE
        change[fallen] += [f"{words} {_signed_pct(value)}; " for value in share[fallen]]
        fell |= fallen
    # The limit as written, where the approved limit's fall does not already say it.
    relimited = limit.abs().gt(LIMIT_TOLERANCE) & ~joined["approved_limit_change"].lt(-FALL_SHARE)
    change[relimited] += [f"limit {_signed_pct(share)}; " if pd.notna(share) else "limit up from 0; "
                          for share in joined.loc[relimited, "limit_change"]]
    # A fall makes a borrower decided alike worse; a better decision stays better, its fall said (a referral approved
    # at less than it had pending).
    alike = step.eq(0)
    joined["direction"] = np.select([step.gt(0) | (fell & alike), step.lt(0), alike & limit.lt(-LIMIT_TOLERANCE),
                                     alike & limit.gt(LIMIT_TOLERANCE)], ["worse", "better", "lower", "better"], "")
    joined["change"] = change.str.removesuffix("; ")
    if parcels is not None:
        joined["parcel_inputs_changed"] = _parcel_inputs_by_borrower(joined.index, parcels)
    return joined


def _parcel_inputs_by_borrower(ids: pd.Index, parcels: pd.DataFrame) -> pd.Series:
    """Per borrower of ``ids`` (``_borrower_keys``): its changed parcels (``parcel_changes``; those it has in either
    run) as ``P1: declared crop maize -> rice; P2: redrawn``, 'none' where it has none."""
    parcel_ids = pd.Series(parcels.index, index=parcels.index)
    held = pd.concat([pd.DataFrame({"inputs_changed": parcels["inputs_changed"],
                                    "borrower_id": _borrower_keys(parcels[column], parcel_ids)})
                      for column in ("reference_borrower_id", "borrower_id")]).reset_index()
    held = held.drop_duplicates(["parcel_id", "borrower_id"])
    worded = (held["parcel_id"] + ": " + held["inputs_changed"]).groupby(held["borrower_id"]).agg("; ".join)
    return worded.reindex(ids).fillna("none")


def _borrower_keys(borrower_ids: pd.Series, parcel_ids: pd.Series) -> pd.Series:
    """What a borrower is joined on run to run: its ``borrower_id``; a parcel lent to alone, which has none, its
    parcel's id as ``(no borrower id: P7)`` (``parcel_ids``: a borrowers table's, or a parcel's own id), so that it
    meets itself in the other run and no other borrower without an id (each was joined to every other on the text
    'nan'); NA where neither is known."""
    alone = "(no borrower id: " + parcel_ids.astype("string") + ")"
    return borrower_ids.astype("string").fillna(alone)


def parcel_changes(parcels: pd.DataFrame, reference: pd.DataFrame, outlines: gpd.GeoSeries | None = None,
                   reference_outlines: gpd.GeoSeries | None = None) -> pd.DataFrame:
    """Parcels added, dropped, moved to another borrower, redrawn or whose declared area, crop or region changed,
    joined on ``parcel_id`` (a repeated id: its first row).

    Args:
        parcels, reference: results tables, this run's and the reference run's.
        outlines, reference_outlines: each run's outlines by ``parcel_id``, in any CRS each; without both, outlines
            are not compared. Redrawn: moved more than ``REDRAWN_M`` somewhere, or present in one run alone.

    Returns:
        One row per changed parcel, by ``parcel_id``: ``change`` (of ``PARCEL_CHANGE_KINDS``, several joined by
        '; '; declared area: its hectares further apart than ``DECLARED_AREA_TOLERANCE_HA``, or its mu, where both
        runs have them, than ``DECLARED_AREA_TOLERANCE_MU``), ``inputs_changed`` (the same in words with both runs'
        values: ``declared crop maize -> rice``), then ``reference_``-prefixed and plain ``PARCEL_INPUTS``,
        ``decision`` and ``loan_limit``.
    """
    def side(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.drop_duplicates("parcel_id")
        given = {column: frame[column] if column in frame else pd.Series(np.nan, index=frame.index)
                 for column in PARCEL_INPUTS}
        return pd.DataFrame({**{column: given[column].astype("string") for column in PARCEL_TEXT_INPUTS},
                             **{column: pd.to_numeric(given[column], errors="coerce")
                                for column in ("declared_area_ha", "declared_area_mu")},
                             "decision": frame["decision"].astype("string"),
                             "loan_limit": pd.to_numeric(frame["loan_limit"], errors="coerce")}
                            ).set_axis(pd.Index(frame["parcel_id"].astype(str), name="parcel_id"))

    before, after = side(reference), side(parcels)
    joined = before.add_prefix("reference_").join(after, how="outer").sort_index()
    was, now = joined.index.isin(before.index), joined.index.isin(after.index)
    both = was & now

    def differ(column: str) -> np.ndarray:
        return both & joined[f"reference_{column}"].fillna("").ne(joined[column].fillna("")).to_numpy(dtype=bool)

    def apart(column: str, tolerance: float, either: bool) -> np.ndarray:
        old, new = joined[f"reference_{column}"], joined[column]
        gap = (old - new).abs().gt(tolerance) | (old.isna().ne(new.isna()) if either else False)
        return both & gap.to_numpy(dtype=bool)

    kinds = {
        "added": now & ~was,
        "dropped": was & ~now,
        "moved to another borrower": differ("borrower_id"),
        "redrawn": both & _redrawn(joined.index, outlines, reference_outlines),
        "declared area changed": apart("declared_area_ha", DECLARED_AREA_TOLERANCE_HA, either=True)
        | apart("declared_area_mu", DECLARED_AREA_TOLERANCE_MU, either=False),
        "declared crop changed": differ("declared_crop"),
        "region changed": differ("region"),
    }
    change = pd.Series("", index=joined.index)
    for words in PARCEL_CHANGE_KINDS:
        change[kinds[words]] += words + "; "
    joined.insert(0, "change", change.str.removesuffix("; "))
    joined = joined[joined["change"].ne("")]
    joined.insert(1, "inputs_changed", pd.Series([_inputs_changed(row) for row in joined.itertuples()],
                                                 index=joined.index, dtype=str))
    return joined


def _inputs_changed(row: tuple) -> str:
    """What changed of one row of ``parcel_changes`` in words, both runs' values beside those that have them:
    ``declared area 0.640 -> 0.250 ha, declared crop maize -> rice``."""
    def area() -> str:
        if pd.notna(row.reference_declared_area_mu) and pd.notna(row.declared_area_mu):
            return f"{row.reference_declared_area_mu:g} -> {row.declared_area_mu:g} mu"
        return f"{_number(row.reference_declared_area_ha, 3)} -> {_number(row.declared_area_ha, 3)} ha"

    values = {"moved to another borrower": lambda: f"from {_text(row.reference_borrower_id)} to "
                                                   f"{_text(row.borrower_id)}",
              "declared area changed": area,
              "declared crop changed": lambda: f"{_text(row.reference_declared_crop)} -> {_text(row.declared_crop)}",
              "region changed": lambda: f"{_text(row.reference_region)} -> {_text(row.region)}"}
    return ", ".join(f"{kind.removesuffix(' changed')} {values[kind]()}" if kind in values else kind
                     for kind in row.change.split("; "))


def _redrawn(ids: pd.Index, outlines: gpd.GeoSeries | None, reference: gpd.GeoSeries | None) -> np.ndarray:
    """Per id of ``ids``: its outline in one run moved more than ``REDRAWN_M`` from the other's (compared in one UTM
    zone), or it has an outline in one run alone; all False without both runs' outlines."""
    if outlines is None or reference is None:
        return np.zeros(len(ids), dtype=bool)
    now, was = outlines.reindex(ids), reference.reindex(ids)
    usable = now.notna() & ~now.is_empty, was.notna() & ~was.is_empty
    if not (usable[0] & usable[1]).any():
        return (usable[0] != usable[1]).to_numpy()
    metric = now[usable[0]].estimate_utm_crs()
    apart = shapely.hausdorff_distance(now.to_crs(metric).to_numpy(), was.to_crs(metric).to_numpy())
    return ((usable[0] != usable[1]) | (usable[0] & usable[1] & (apart > REDRAWN_M))).to_numpy()


def _compare(results: pd.DataFrame, reference: pd.DataFrame, lent: tuple[pd.DataFrame | None, pd.DataFrame | None],
             sources: tuple[str | None, str | None]) -> _Changes:
    """This run (``results``, as given, not ``_prepare``'d: its filled-in regions would read as changed) compared with
    the ``reference``, with their borrowers tables (``lent``: ``_borrowers_of`` each) and the outlines in the files
    their results came from (``sources``: this run's, the reference's; None for a frame that came from no file)."""
    (borrowers, base_borrowers) = lent
    outlines, base_outlines = (_outlines_beside(Path(source)) if source else None for source in sources)
    parcels = parcel_changes(results, reference, outlines, base_outlines)
    moves = None if borrowers is None or base_borrowers is None else borrower_changes(borrowers, base_borrowers,
                                                                                       parcels)
    return _Changes(borrowers, base_borrowers, moves, parcels, outlines is not None and base_outlines is not None)


def _borrowers_of(parcels: pd.DataFrame, source: str | None) -> pd.DataFrame | None:
    """The borrowers table beside the results file ``source`` the ``parcels`` came from (``_borrowers_beside``); None
    for a frame from no file."""
    return _borrowers_beside(Path(source), parcels) if source else None


def _borrowers_beside(file: Path, parcels: pd.DataFrame) -> pd.DataFrame | None:
    """The borrowers table a run wrote beside its results ``file`` (the ``borrowers`` layer of a GeoPackage,
    ``borrowers.parquet`` or ``borrowers.csv`` beside a Parquet or CSV file), its ``BORROWER_COLUMNS`` and those of
    ``BORROWER_SCREEN_COLUMNS``, ``ALL_REASONS`` and ``PARCEL_IDS`` it has; None when there is none to read, or it is
    not the borrowers of these parcels (another run's)."""
    try:
        if file.suffix.lower() == ".gpkg":
            table = read_dataframe(file, layer="borrowers", read_geometry=False)
        elif file.suffix.lower() == ".csv":
            table = read_csv(file.with_name("borrowers.csv"), {"borrower_id": str, PARCEL_IDS: str, "decision": str,
                                                                "reason": str}, "borrowers file")
        else:
            named = pq.read_schema(file.with_name("borrowers.parquet")).names
            table = pd.read_parquet(file.with_name("borrowers.parquet"), columns=[
                column for column in (*BORROWER_COLUMNS, *BORROWER_SCREEN_COLUMNS, ALL_REASONS, PARCEL_IDS)
                if column in named])
    except (DataSourceError, DataLayerError, OSError, ValueError, InputError):
        return None
    if any(column not in table for column in BORROWER_COLUMNS):
        return None
    lent_to = set(parcels["borrower_id"].dropna().astype(str))
    return table if set(table["borrower_id"].dropna().astype(str)) == lent_to else None


def _prepare_borrowers(borrowers: pd.DataFrame | None) -> pd.DataFrame | str:
    """The borrowers table ready to screen, with ``size_band`` the band of its total drawn area (``polygon_area_ha``);
    or why it cannot be screened."""
    if borrowers is None:
        return ("no borrowers table of these borrowers was found beside the results (a table from no file, results "
                "from before borrowers were written, or another run's borrowers); report from the run's output folder "
                "as assess wrote it")
    missing = [column for column in BORROWER_SCREEN_COLUMNS if column not in borrowers]
    if missing:
        return f"the borrowers table beside the results lacks {', '.join(missing)} (an older run's); rerun assess"
    table = pd.DataFrame(borrowers).reset_index(drop=True)
    for column in ("loan_limit", "cultivated_area_ha", "polygon_area_ha"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["decision"] = table["decision"].astype("string")
    for column in ("reason", ALL_REASONS) if ALL_REASONS in table else ("reason",):
        table[column] = table[column].fillna("").astype(str)
    table["size_band"] = size_band(table["polygon_area_ha"])
    return table


def _outlines_beside(file: Path) -> gpd.GeoSeries | None:
    """Each parcel's outline by ``parcel_id`` (a repeated id: its first), from results ``file`` itself (a
    GeoPackage's ``parcels`` layer, GeoParquet); None for a CSV, or one without outlines or a CRS."""
    try:
        if file.suffix.lower() == ".gpkg":
            frame = read_dataframe(file, layer="parcels", columns=["parcel_id"])
        elif file.suffix.lower() == ".csv":
            return None
        else:
            frame = gpd.read_parquet(file, columns=["parcel_id", "geometry"])
    except (DataSourceError, DataLayerError, OSError, ValueError):
        return None
    if frame.crs is None:
        return None
    frame = frame.drop_duplicates("parcel_id")
    return frame.geometry.set_axis(pd.Index(frame["parcel_id"].astype(str), name="parcel_id"))


def _level_table(table: pd.DataFrame, base: pd.DataFrame, changes: _Changes, unit: str) -> _Table:
    """Totals of both runs side by side with the change in per cent: a level shift that PSI, measuring shape, misses."""
    def totals(parcels: pd.DataFrame, borrowers: pd.DataFrame | None) -> dict[str, float]:
        values = {f"total of parcel limits ({unit})": float(parcels["loan_limit"].sum())}
        if borrowers is not None and changes.borrower_moves is not None:
            values["borrowers approved"] = float(borrowers["decision"].eq("approve").sum())
            values.update(_borrower_limits(borrowers, unit))
        return values

    before, after = totals(base, changes.base_borrowers), totals(table, changes.borrowers)
    frame = pd.DataFrame({"reference": [_money(v, unit) for v in before.values()],
                          "this run": [_money(v, unit) for v in after.values()],
                          "change": [_signed_pct((after[k] - before[k]) / before[k]) if before[k] else "n/a"
                                     for k in before]},
                         index=pd.Index(list(before), name="total"))
    return _Table("Totals against the reference run (PSI measures the shape of a distribution, not its level)", frame)


def _migration(before: pd.Series, after: pd.Series, order: tuple[str, ...] = ()) -> pd.DataFrame:
    """Counts of each (reference value, this run's value) pair of two aligned series, reference rows by this run's
    columns, in ``order`` then any other values sorted (those in brackets last); NaN is absence from that run."""
    before = before.astype("string").fillna(NOT_IN_REFERENCE)
    after = after.astype("string").fillna(NOT_IN_RUN)
    seen = (set(before) | set(after)) - {NOT_IN_REFERENCE, NOT_IN_RUN}
    labels = [v for v in order if v in seen] + sorted(seen - set(order), key=lambda v: (v.startswith("("), v))
    counts = pd.crosstab(before, after).reindex(index=[*labels, NOT_IN_REFERENCE], columns=[*labels, NOT_IN_RUN],
                                                fill_value=0)
    counts = counts.loc[counts.sum(axis=1).gt(0) | counts.index.isin(labels),
                        counts.sum(axis=0).gt(0) | counts.columns.isin(labels)]
    counts.index.name = "reference run"
    counts.columns.name = None
    return counts.map("{:,}".format)


def _changes_section(table: pd.DataFrame, base: pd.DataFrame | None, changes: _Changes | None,
                     unit: str) -> _Section:
    title = "3.1 Changes against the reference run"
    if base is None or changes is None:
        return _Section(title, ("No reference run given: no borrower or parcel was compared.",), level=3)
    blocks: list[str | _Table | _Plot | _Bullets] = [
        f"Joined on borrower_id and parcel_id. A borrower in both runs is listed as decided worse when its decision "
        f"worsened (approve to refer or decline, refer to decline) or its limit (approved, or pending a referral's "
        f"review) or cultivated area fell by more than {FALL_SHARE:.0%} of the reference run's, decided alike, and as "
        "decided better when its decision improved, whatever fell, or its limit rose, each with what changed in its "
        "parcels' declared "
        "inputs (borrower, declared area, crop or region, outline; 'none': nothing it declared changed, so its "
        f"outcome moved with the rest of the run). The first {MAX_LISTED} of each list are shown; the CSV files "
        "beside the report hold them all, the borrowers' every borrower whose decision or limit changed either way "
        "(its direction worse, lower or better). A parcel without a borrower id is lent to alone, and joined on its "
        "parcel id, as '(no borrower id: P7)'."]
    moved = changes.borrower_moves
    if moved is None:
        blocks.append("Borrowers not compared: no borrowers table of these borrowers beside the results of "
                      + " and of ".join(run for run, found in (("this run", changes.borrowers),
                                                               ("the reference run", changes.base_borrowers))
                                        if found is None) + ".")
    else:
        blocks.append(_Table("Borrower decisions, reference run (rows) against this run (columns)",
                             _migration(moved["reference_decision"], moved["decision"], DECISION_ORDER)))
        worse, better = _listed_borrowers(moved, ("worse",)), _listed_borrowers(moved, ("better",))
        lower = int(moved["direction"].eq("lower").sum())
        blocks.append(f"Borrowers in both runs decided worse or whose limit or cultivated area fell by more than "
                      f"{FALL_SHARE:.0%}: {len(worse):,}." + _more(len(worse)))
        if len(worse):
            blocks.append(_Table("Borrowers decided worse or whose limit or cultivated area fell",
                                 _borrower_display(worse.head(MAX_LISTED), unit)))
        blocks.append(f"Borrowers in both runs decided better or whose limit rose: {len(better):,}."
                      + _more(len(better))
                      + (f" {lower:,} more, decided the same with a lower limit (short of the falls listed "
                         "above), are in the CSV alone." if lower else ""))
        if len(better):
            blocks.append(_Table("Borrowers decided better or whose limit rose",
                                 _borrower_display(better.head(MAX_LISTED), unit)))
    parcels = changes.parcel_moves
    grades = pd.concat([run.drop_duplicates("parcel_id").set_index("parcel_id")["risk_grade"].fillna(UNGRADED)
                        for run in (base, table)], axis=1)
    blocks.append(_Table("Parcel risk grades, reference run (rows) against this run (columns)",
                         _migration(grades.iloc[:, 0], grades.iloc[:, 1])))
    kinds = parcels["change"].str.split("; ").explode().value_counts()
    # mu is China's unit: a lender elsewhere declares hectares, unless both runs read a declared_area_mu column.
    mu_declared = all("declared_area_mu" in run and run["declared_area_mu"].notna().any() for run in (base, table))
    or_mu = f", or {DECLARED_AREA_TOLERANCE_MU:g} mu" if unit == "CNY" or mu_declared else ""
    tolerance = f" (by more than {DECLARED_AREA_TOLERANCE_HA:g} ha{or_mu})"
    counts = ", ".join(f"{int(kinds.get(kind, 0)):,} {kind}" + (tolerance if kind == "declared area changed" else "")
                       for kind in PARCEL_CHANGE_KINDS)
    blocks.append(f"Parcels: {counts}." + _more(len(parcels)))
    if not changes.outlines_compared:
        blocks.append("Outlines not compared: a run's results came from a CSV file or from no file, without "
                      "outlines, so a redrawn parcel is not found.")
    if len(parcels):
        blocks.append(_Table("Parcels added, dropped, moved, redrawn or re-declared",
                             _parcel_display(parcels.head(MAX_LISTED), unit)))
    return _Section(title, tuple(blocks), level=3)


def _listed_borrowers(moved: pd.DataFrame, directions: tuple[str, ...] = ("worse", "lower", "better")) -> pd.DataFrame:
    """The borrowers of ``borrower_changes`` whose ``direction`` is one of ``directions``, in that order, each the
    largest fall of limit, approved or as written (pending a referral's review), first (worse) or the largest change
    of limit (lower, better)."""
    listed = moved[moved["direction"].isin(directions)].copy()
    listed["order"] = listed["direction"].map({direction: k for k, direction in enumerate(directions)})
    fall = np.maximum(listed["reference_approved_limit"] - listed["approved_limit"],
                      listed["reference_loan_limit"] - listed["loan_limit"])
    listed["size"] = fall.where(listed["direction"].eq("worse"),
                                (listed["loan_limit"] - listed["reference_loan_limit"]).abs())
    return listed.sort_values(["order", "size", "borrower_id"], ascending=[True, False, True]).drop(
        columns=["order", "size"])


def _more(listed: int) -> str:
    return f" The first {MAX_LISTED} are shown; {listed - MAX_LISTED:,} more are in the CSV." if listed > MAX_LISTED \
        else ""


def _borrower_display(listed: pd.DataFrame, unit: str) -> pd.DataFrame:
    return pd.DataFrame({"change": listed["change"],
                         "decision": listed["reference_decision"] + " -> " + listed["decision"],
                         f"limit ({unit})": _both(listed, "loan_limit", lambda v: _money(v, unit)),
                         f"approved limit ({unit})": _both(listed, "approved_limit", lambda v: _money(v, unit)),
                         "cultivated area (ha)": _both(listed, "cultivated_area_ha", lambda v: _number(v, 3)),
                         "its parcels' declared inputs changed": listed["parcel_inputs_changed"]},
                        index=listed.index)


def _parcel_display(parcels: pd.DataFrame, unit: str) -> pd.DataFrame:
    return pd.DataFrame({"change": parcels["change"],
                         "borrower": _both(parcels, "borrower_id", _text),
                         "declared area (ha)": _both(parcels, "declared_area_ha", lambda v: _number(v, 3)),
                         "declared crop": _both(parcels, "declared_crop", _text),
                         "decision": _both(parcels, "decision", _text),
                         f"limit ({unit})": _both(parcels, "loan_limit", lambda v: _money(v, unit))},
                        index=parcels.index)


def _both(frame: pd.DataFrame, column: str, fmt: Callable[[object], str]) -> pd.Series:
    """``reference -> this run`` of ``column``, each formatted by ``fmt``."""
    return frame[f"reference_{column}"].map(fmt) + " -> " + frame[column].map(fmt)


def _write_change_lists(changes: _Changes | None, out: Path) -> None:
    """Write every changed borrower (``_listed_borrowers``: worse, lower, then better) and parcel to
    ``<stem>-borrower-changes.csv`` and ``<stem>-parcel-changes.csv`` beside report ``out``, each where it lists some;
    an earlier report's where this one lists none is removed."""
    moved = None if changes is None else changes.borrower_moves
    lists = {"borrower": None if moved is None else _listed_borrowers(moved),
             "parcel": None if changes is None else changes.parcel_moves}
    for name, frame in lists.items():
        path = out.parent / f"{out.stem}-{name}-changes.csv"
        if frame is None or frame.empty:
            path.unlink(missing_ok=True)
        else:
            write_csv(frame.reset_index(), path)


def _signed_pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:+.1f}%"


# Why a parcel has no risk grade, the first that applies: an error, too few clear images, most of it off the imagery,
# a crop the cropland models cannot measure (PERENNIAL_NOT_MEASURED), an unsure call of a crop the declaration does
# not name (UNDETERMINED_DECLARED_CROP: health and yield measured, but of a crop nobody confirmed), land declared fallow
# under an unsure call of a crop (CROP_MISMATCH, ungraded as ``limit._unsure_call`` decides), no clear image while
# its crop is green or at its peak (a season of many clear dates may miss those weeks), or no PD, its health and yield
# not rated.
_UNGRADED = ("not assessed, status error", "referred, too few clear images to grade their risk",
             "referred, mostly off the imagery",
             "referred, their declared crop never drops to bare land, so the imagery cannot measure it",
             "referred, declaring a crop the configuration does not price over an unsure call of what grows there",
             "referred, declared fallow over an unsure call of a crop",
             "referred, no clear image reading their crop's green weeks bare, or its peak",
             "with nothing cultivated to lend on", "of a crop not recognised", "with no health or yield measured")
_TOO_FEW_IMAGES = frozenset({"FEW_CLEAR_OBSERVATIONS", "NO_CLEAR_OBSERVATIONS"})


def _why_ungraded(table: pd.DataFrame) -> pd.Series:
    """Why each parcel without a risk grade has none (one of ``_UNGRADED``, a categorical of all ten), read from its
    codes (``reason_all``, else ``reason``, where the too-little-imagery codes of ``UNOBSERVED`` lead), and of one
    declared fallow from its call's confidence against its run's ``agronomy.crop_min_confidence`` (the packaged
    value without a ``run.json``)."""
    error = table["status"].eq("error").fillna(False).to_numpy(dtype=bool)
    codes = table[_codes_column(table)].fillna("").map(lambda text: {c.strip() for c in text.split(";")})
    too_few, off, perennial, undetermined, unobserved = (
        ~codes.map(of.isdisjoint).to_numpy(dtype=bool)
        for of in (_TOO_FEW_IMAGES, {"MOSTLY_OUTSIDE_IMAGERY"}, {"PERENNIAL_NOT_MEASURED"},
                   {"UNDETERMINED_DECLARED_CROP"}, UNOBSERVED))
    crop = table["crop"].astype("string").fillna("")
    fallow, unknown = (crop.eq(name).to_numpy(dtype=bool) for name in RESERVED_CROP_NAMES)
    why = np.select([error, too_few, off, perennial, undetermined, _fallow_unsure(table), unobserved, fallow, unknown],
                    _UNGRADED[:-1], _UNGRADED[-1])
    ungraded = error | table["risk_grade"].isna().to_numpy(dtype=bool)
    return pd.Series(pd.Categorical(why[ungraded], categories=_UNGRADED))


def _fallow_unsure(table: pd.DataFrame) -> np.ndarray:
    """Whether each parcel was declared fallow (休耕) under an unsure call of a crop, which withholds its grade; all
    False for results without ``declared_crop`` or ``crop_confidence``."""
    if not {"declared_crop", "crop_confidence"} <= set(table.columns):
        return np.zeros(len(table), dtype=bool)
    least = table.attrs.get("crop_min_confidence") or AgronomyConfig().crop_min_confidence
    confidence = pd.to_numeric(table["crop_confidence"], errors="coerce").to_numpy(dtype=float)
    return np.array([isinstance(said, str) and folded(said) in DECLARED_FALLOW and call_unsure(crop, sure, least)
                     for said, crop, sure in zip(table["declared_crop"], table["crop"], confidence, strict=True)],
                    dtype=bool)


def _calibration_section(table: pd.DataFrame) -> _Section:
    has_pd, observed = _has_pd(table), "defaulted" in table and table["defaulted"].notna().any()
    why = _why_ungraded(table).value_counts(sort=False)
    counts = "; ".join(f"{count:,} {reason}" for reason, count in why.items() if count)
    if why.sum() == len(table):
        return _Section("4. Calibration", (f"No parcel was graded: {counts}. There is nothing to calibrate.",))
    blocks: list[str | _Table | _Plot | _Bullets] = [
        f"Left out: {why.sum():,} of {len(table):,} parcels without a risk grade" + (f": {counts}." if counts else ".")
    ]
    if not has_pd:
        blocks.append("No probability_of_default values: predicted PD is not available; counts by grade only.")
    if observed:
        blocks.append("Predicted and observed default are compared over parcels whose outcome (defaulted) is known; "
                      "the mean predicted PD of all graded parcels is beside them.")
    elif "defaulted" in table:
        # Loans not yet ended: compared over parcels with an outcome, every figure would be n/a.
        blocks.append("No parcel has an outcome yet (defaulted is blank): predictions only, over all graded "
                      "parcels; calibration against outcomes cannot be checked.")
        table = table.drop(columns="defaulted")
    else:
        blocks.append("No defaulted column (not a back-test): predictions only; calibration against "
                      "outcomes cannot be checked.")
    by_grade = _calibration(table, "risk_grade")
    if has_pd and observed:
        both = table[table["status"].ne("error") & table["probability_of_default"].notna() & table["defaulted"].notna()]
        if len(both):
            blocks.append(f"Over {len(both):,} assessed parcels with an outcome: mean predicted PD "
                          f"{_pct(both['probability_of_default'].mean())}, observed default rate "
                          f"{_pct(both['defaulted'].mean())}.")
    blocks.append(_Table("By risk grade", _calibration_display(by_grade)))
    by_decile = _calibration(table, "pd_decile") if has_pd else None
    if by_decile is not None:
        blocks.append(_Table("By PD decile (deciles of this run's PD)", _calibration_display(by_decile)))
    fig, ax = _figure(2)
    _calibration_plot(ax[0], by_grade, "By risk grade")
    if by_decile is not None:
        _calibration_plot(ax[1], by_decile, "By PD decile")
    else:
        ax[1].set_axis_off()
    drawn = ("Mean predicted PD against observed default rate" if observed else
             "Mean predicted PD (predictions only: no outcomes drawn)")
    alt = f"{drawn}, by risk grade" + (" and by PD decile" if by_decile is not None else "")
    return _Section("4. Calibration", (*blocks, _Plot("calibration", alt, _png(fig))))


def _calibration_display(frame: pd.DataFrame) -> pd.DataFrame:
    known = ", with outcome" if "with_outcome" in frame else ""
    formats: dict[str, tuple[str, Callable[[float], str]]] = {
        "parcels": ("parcels", "{:,}".format),
        "pd_min": ("PD from", _pct),
        "pd_max": ("PD to", _pct),
        "mean_pd_all_graded": ("mean predicted PD, all graded", _pct),
        "mean_pd": (f"mean predicted PD{known}", _pct),
        "expected_defaults": (f"expected defaults{known}", lambda v: _number(v, 1)),
        "with_outcome": ("with outcome", lambda v: f"{int(v):,}"),
        "defaults": ("defaults", lambda v: _number(v, 0)),
        "default_rate": ("observed default rate", _pct),
    }
    return pd.DataFrame({label: frame[column].map(fmt) for column, (label, fmt) in formats.items() if column in frame},
                        index=frame.index)


def _calibration_plot(axis: Axes, frame: pd.DataFrame, title: str) -> None:
    values = pd.DataFrame({"predicted": frame["mean_pd"]})
    if "mean_pd_all_graded" in frame:
        # A group with no outcome yet still shows what was predicted for it.
        values["predicted"] = values["predicted"].fillna(frame["mean_pd_all_graded"])
    if "default_rate" in frame:
        values["observed"] = frame["default_rate"]
    _grouped_bars(axis, values, {"predicted": "#2c7fb8", "observed": "#d95f02"})
    axis.set_title(title)
    axis.set_ylabel("probability of default")
    axis.legend(fontsize=8)


def _reasons_section(table: pd.DataFrame, borrowers: pd.DataFrame | str, unit: str) -> _Section:
    counts = _reason_counts(table)
    title = "5. Reason codes"
    blocks: list[str | _Table | _Plot | _Bullets] = [] if isinstance(borrowers, str) else _referral_blocks(borrowers,
                                                                                                           unit)
    if isinstance(borrowers, str):
        blocks.append(f"Borrowers' reason codes not counted: {borrowers}.")
        borrower_counts = counts.iloc[:0]
    elif (borrower_counts := _reason_counts(borrowers, "borrowers")).empty:
        blocks.append("No borrower carries a reason code.")
    else:
        blocks += [f"The {TOP_REASONS} most frequent codes in the borrowers' reason column (each borrower's leading "
                   "codes: what its credit decision gives), as the share of all borrowers and of the borrowers of each "
                   "band of total drawn area that carry them.",
                   _Table("Top borrower reason codes (the credit decision)", _reasons_display(borrower_counts,
                                                                                             "borrowers"))]
    if counts.empty:
        return _Section(title, (*blocks, "No parcel carries a reason code."))
    bands = [band for band in (*SIZE_BANDS, UNKNOWN) if band in counts]
    intro = (f"The {TOP_REASONS} most frequent codes in the parcels' reason column (each parcel's leading codes), "
             "as the share of all parcels and of each size band's parcels that carry them.")
    fig, ax = _figure(1, width=9.0, height=0.35 * len(counts) + 1.5)
    shares = counts[bands].iloc[::-1]
    _grouped_bars(ax[0], shares, dict(zip(bands, BAND_COLOURS)), horizontal=True,
                  hatches=dict(zip(bands, BAND_HATCHES)))
    ax[0].set_xlabel("share of the band's parcels")
    ax[0].legend(fontsize=8, title="size band")
    plot = _Plot("reasons", "Share of each size band's parcels carrying each of the most frequent reason codes",
                 _png(fig))
    # A code this version does not define is said to be one, not left without a sentence.
    glossary = _Bullets(tuple(f"{code}: {REASONS[code].sentence if code in REASONS else UNKNOWN_CODE}"
                              for code in dict.fromkeys([*borrower_counts.index, *counts.index])))
    return _Section(title, (*blocks, intro, _Table("Top parcel reason codes", _reasons_display(counts, "parcels")),
                            "What each code means:", glossary, plot))


def _referrals(referred: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Each refer code (``REASONS``' effect ``refer``) among the ``referred`` borrowers' codes (``ALL_REASONS``, else
    ``reason``): the borrowers carrying it and their limits summed, pending review, most borrowers first; and how many
    of them carry none. A borrower with several refer codes is counted, with its limit, under each."""
    codes = referred[_codes_column(referred)].str.split(";").explode().str.strip()
    codes = codes[codes.map(lambda code: code in REASONS and REASONS[code].effect == "refer")]
    # A code listed twice on one borrower still counts that borrower, and its limit, once.
    long = pd.DataFrame({"borrower": codes.index, "code": codes.to_numpy()}).drop_duplicates()
    long["pending"] = referred["loan_limit"].to_numpy()[long["borrower"].to_numpy()]
    counts = long.groupby("code").agg(borrowers=("borrower", "size"), pending=("pending", "sum")).reset_index()
    counts = counts.sort_values(["borrowers", "pending", "code"], ascending=[False, False, True]).set_index("code")
    return counts, len(referred) - long["borrower"].nunique()


def _codes_column(borrowers: pd.DataFrame) -> str:
    return ALL_REASONS if ALL_REASONS in borrowers else "reason"


def _referral_blocks(borrowers: pd.DataFrame, unit: str) -> list[str | _Table | _Plot | _Bullets]:
    """The referral table (``_referrals``): what the referred borrowers' limits pending review wait on."""
    referred = borrowers[borrowers["decision"].eq("refer")].reset_index(drop=True)
    if referred.empty:
        return ["No borrower is referred, so no limit is pending review."]
    counts, uncoded = _referrals(referred)
    read = ("every code of each borrower, reason_all" if ALL_REASONS in borrowers
            else "each borrower's leading codes, reason: this older borrowers table has no reason_all")
    note = (f"Referrals: {len(referred):,} borrowers are referred to a person, their limits of "
            f"{_money(referred['loan_limit'].sum(), unit)} {unit} pending review. The table gives each refer code "
            f"among their codes ({read}), the referred borrowers carrying it and their limits; a borrower with several "
            "refer codes is counted, with its limit, under each, so the rows may sum to more than these totals.")
    display = pd.DataFrame({"referred borrowers": counts["borrowers"].map("{:,}".format),
                            f"pending review ({unit})": counts["pending"].map(lambda v: _money(v, unit)),
                            "meaning": [REASONS[code].sentence for code in counts.index]}, index=counts.index)
    blocks: list[str | _Table | _Plot | _Bullets] = [note]
    if not counts.empty:
        blocks.append(_Table("Referred borrowers by refer code", display))
    if uncoded:
        blocks.append(f"{uncoded:,} of the referred borrowers carry no refer code of this version there (an older "
                      "run's codes, or a hand-edited file).")
    return blocks


def _reasons_display(counts: pd.DataFrame, counted: str) -> pd.DataFrame:
    """``_reason_counts`` of parcels or borrowers (``counted``) as printed."""
    display = pd.DataFrame({"effect": counts["effect"], counted: counts[counted].map("{:,}".format),
                            f"share of {counted}": counts["share"].map(_pct)}, index=counts.index)
    for band in (*SIZE_BANDS, UNKNOWN):
        if band in counts:
            display[f"share in {band}"] = counts[band].map(_pct)
    return display


# --- Plots and rendering -------------------------------------------------------------------------


def _figure(panels: int, width: float = 11.0, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    """A fixed-size figure on the Agg canvas (no pyplot state, same bytes every time)."""
    fig = Figure(figsize=(width, height), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, panels, k + 1) for k in range(panels)]


def _grouped_bars(axis: Axes, values: pd.DataFrame, colours: dict[str, str], horizontal: bool = False,
                  hatches: dict[str, str] | None = None) -> None:
    """One bar per column for each row of ``values``, in column order left to right, or, ``horizontal``, top to
    bottom (as a legend lists them); NaN draws nothing. ``hatches``: a pattern per column besides its colour."""
    positions = np.arange(len(values))
    width = 0.8 / max(len(values.columns), 1)
    for k, column in enumerate(values.columns):
        offset = positions + (0.4 - width * (k + 0.5) if horizontal else -0.4 + width * (k + 0.5))
        heights = values[column].astype(float).fillna(0.0).to_numpy()
        draw = axis.barh if horizontal else axis.bar
        hatch = (hatches or {}).get(column)
        # The hatch colour from the rcParams as the bars are made (``hatchcolor=`` is matplotlib 3.11's; the pin
        # allows 3.8), and their outline drawn apart: up to 3.10 a bar's own edge colour recolours its hatch.
        with matplotlib.rc_context({"hatch.color": HATCH_COLOUR}):
            draw(offset, heights, width, label=str(column), color=colours.get(column, "#999999"), hatch=hatch)
        if hatch is not None:
            draw(offset, heights, width, fill=False, edgecolor="#000000", linewidth=0.4)
    labels = [str(label) for label in values.index]
    if horizontal:
        axis.set_yticks(positions, labels, fontsize=8)
    else:
        crowded = sum(len(label) for label in labels) > 40
        axis.set_xticks(positions, labels, fontsize=8, rotation=30 if crowded else 0)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No software/version stamp: the same inputs give the same bytes.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _render_html(title: str, intro: list[str | _Bullets], sections: list[_Section]) -> str:
    """The report as one HTML page titled ``title``; printed, tables repeat their header row on each page (``thead``)
    and no table row, image or heading is split from what follows it."""
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}caption{text-align:left;font-weight:bold}"
        "th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px}td{text-align:right}"
        "th{background:#f0f0f0}th[scope=row]{text-align:left;font-weight:normal;background:none}img{max-width:100%}"
        "@media print{body{margin:0;max-width:none}thead{display:table-header-group}tr,img{break-inside:avoid}"
        "h1,h2,h3,caption{break-after:avoid}}"
        # A printed page's footer names the run and the page, where the browser draws page margin boxes; the title
        # is this module's words and a run id of letters, digits and hyphens (_run_named): nothing to escape.
        f'@page{{@bottom-right{{content:"{title}, page " counter(page)}}}}'
    )
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{style}</style></head><body>",
             "<h1>farmcredit credit report</h1>"]
    parts += [_html_block(block) for block in intro]
    for section in sections:
        parts.append(f"<h{section.level}>{html.escape(section.title)}</h{section.level}>")
        parts += [_html_block(block) for block in section.blocks]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_block(block: str | _Table | _Plot | _Bullets) -> str:
    if isinstance(block, str):
        return f"<p>{html.escape(block)}</p>"
    if isinstance(block, _Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, _Table):
        return _html_table(block)
    data = base64.b64encode(block.png).decode("ascii")
    return f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'


def _html_table(table: _Table) -> str:
    """A table with its header row in ``thead`` (a printed table repeats it on each page), column headers
    ``scope="col"`` and each row's label (the index) a header ``scope="row"``."""
    frame = table.frame
    header = "".join(f'<th scope="col">{html.escape(str(c))}</th>' for c in (frame.index.name or "", *frame.columns))
    rows = "".join(
        f'<tr><th scope="row">{html.escape(str(index))}</th>'
        + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for index, row in zip(frame.index, frame.itertuples(index=False))
    )
    return (f"<table><caption>{html.escape(table.caption)}</caption><thead><tr>{header}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _render_markdown(intro: list[str | _Bullets], sections: list[_Section], out: Path) -> str:
    lines = ["# farmcredit credit report", ""]
    for block in intro:
        lines += [f"{_md_text(block)}  "] if isinstance(block, str) else ["", *(f"- {_md_text(item)}"
                                                                           for item in block.items), ""]
    lines.append("")
    for section in sections:
        lines += [f"{'#' * section.level} {_md_text(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, str):
                lines += [_md_text(block), ""]
            elif isinstance(block, _Bullets):
                lines += [*(f"- {_md_text(item)}" for item in block.items), ""]
            elif isinstance(block, _Table):
                lines += [f"**{_md_text(block.caption)}**", "", *_markdown_table(block.frame), ""]
            else:
                name = f"{out.stem}-{block.name}.png"
                (out.parent / name).write_bytes(block.png)
                lines += [f"![{_md_text(block.alt)}]({_link_destination(name)})", ""]
    drawn = {block.name for section in sections for block in section.blocks if isinstance(block, _Plot)}
    for name in PLOT_NAMES:
        if name not in drawn:  # an earlier report's (its stability plot, say): a picture of another run
            (out.parent / f"{out.stem}-{name}.png").unlink(missing_ok=True)
    return "\n".join(lines)


def _link_destination(name: str) -> str:
    """A file name as a CommonMark link destination: in angle brackets, which may hold spaces (a report named
    ``报告 2.md``), its own angle brackets and backslashes escaped."""
    return "<" + re.sub(r"([<>\\])", r"\\\1", name) + ">"


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    header = [frame.index.name or "", *frame.columns]
    lines = ["| " + " | ".join(_md_text(c) for c in header) + " |", "|" + "---|" * len(header)]
    for index, row in zip(frame.index, frame.itertuples(index=False)):
        lines.append("| " + " | ".join(_md_text(v) for v in (index, *row)) + " |")
    return lines


def _md_text(value: object) -> str:
    """``value`` (regions, reason codes, file names: the lender's data) as Markdown inline text that renders as
    written: a line break as a space (no row of a table split, or forged), ``&`` and ``<`` as entities (no inline
    HTML), and a backslash before each character that marks up inline text (emphasis, code, links, table cells,
    strikethrough, math); an underscore inside a word, which marks nothing up (``PARTLY_CULTIVATED``), is left."""
    def escaped(mark: re.Match[str]) -> str:
        text, start, end = mark.string, mark.start(), mark.end()
        inside_a_word = 0 < start and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
        return mark[0] if mark[0][0] == "_" and inside_a_word else re.sub(".", r"\\\g<0>", mark[0])

    one_line = re.sub(r"\r\n?|\n", " ", str(value))
    return _MARKDOWN_MARKS.sub(escaped, one_line).replace("&", "&amp;").replace("<", "&lt;")


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}%"


def _money(value: float, unit: str, digits: int = 0) -> str:
    """An amount of money in ``unit`` (a currency code) to ``digits`` decimals, its digits grouped as that currency's
    readers group them: lakh and crore for ``LAKH_GROUPED`` (``55,45,340``), else thousands (``5,545,340``)."""
    if pd.isna(value):
        return "n/a"
    text = f"{value:,.{digits}f}"
    if unit not in LAKH_GROUPED:
        return text
    sign, whole, decimals = re.fullmatch(r"(-?)([\d,]+)(\.\d+)?", text).groups()
    whole = whole.replace(",", "")
    head, last3 = whole[:-3], whole[-3:]
    head = re.sub(r"\B(?=(\d{2})+$)", ",", head)
    return f"{sign}{head + ',' if head else ''}{last3}{decimals or ''}"


def _number(value: float, digits: int) -> str:
    return "n/a" if pd.isna(value) else f"{value:.{digits}f}"


def _text(value: object) -> str:
    """A cell as text, '-' where it is empty (not in that run, or not declared)."""
    return "-" if pd.isna(value) else str(value)
