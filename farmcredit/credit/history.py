"""Read a lender's repayment history and fit a risk model on it (``farmcredit credit fit``)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from farmcredit.config import load_config
from farmcredit.credit.risk import (
    FEATURE_DIRECTIONS,
    SOURCE_COLUMNS,
    MonotonicScorecard,
    predicted_seasons,
    risk_features,
)
from farmcredit.errors import InputError
from farmcredit.locking import write_problem
from farmcredit.spreadsheet import read_utf8_csv
from farmcredit.text import DECIMAL_COMMA
from farmcredit.version import card_code_version

OUTCOME_COLUMNS = ("season", "outcome_date", "defaulted")
# Optional column naming each loan; without it, a row repeated whole is taken as one loan read twice.
LOAN_ID = "loan_id"
# Columns a lender may never have recorded, blank or left out as parcels files may: a blank declaration scores as an
# honest one (``risk_features``), so the feature is constant and weighs nothing.
OPTIONAL_COLUMNS = ("declared_area_ha",)
MIN_ROWS = 200
MIN_PER_CLASS = 20
# Each season is predicted by a fit on the earlier ones; the calibration learns from those predictions alone.
MIN_OUT_OF_TIME_PER_CLASS = 10


def read_history(path: str | Path, as_of: date | None = None) -> pd.DataFrame:
    """Read and check past loans: agronomic columns, ``season``, ``outcome_date``, ``defaulted``.

    Args:
        path: CSV or Parquet, one row per past loan.
        as_of: the date the model is fitted; outcomes dated on a later day are leakage (default today). An
            outcome's day is the one written in it (``outcome_days``): at any time of ``as_of`` it is not later,
            and one written with an offset keeps its local day.

    Raises:
        InputError: unreadable file, a CSV separated by semicolons or tabs (a European Excel export), missing
            columns, non-numeric or infinite values (a decimal comma named as one), a column with no value (but
            ``declared_area_ha``, which may be blank or left out),
            a cultivated area's high end under its estimate, a row with no season, a loan repeated (``loan_id``
            twice, or a row repeated whole), too few rows, a single outcome class, ``as_of`` after today, or
            outcomes dated after ``as_of``; the message says which.
    """
    path = Path(path)
    try:
        is_parquet = path.suffix.lower() in (".parquet", ".pq")
        table = pd.read_parquet(path) if is_parquet else read_utf8_csv(path, "history file")
    except (OSError, ValueError, EOFError) as exc:  # EOFError: a compressed file cut short
        raise InputError(f"cannot read history file {path}: {exc}") from exc
    if len(table.columns) == 1 and (separator := next((s for s in (";", "\t") if s in str(table.columns[0])), None)):
        named = "tabs" if separator == "\t" else repr(separator)
        raise InputError(f"history file {path} is separated by {named} (a European Excel export?)"
                         f"{_decimal_commas(path, separator)}: save it as CSV with commas and decimal points")
    table = table.assign(**{column: np.nan for column in OPTIONAL_COLUMNS if column not in table.columns})
    missing = [c for c in (*SOURCE_COLUMNS, *OUTCOME_COLUMNS) if c not in table.columns]
    if missing:
        hints = {
            "relative_yield": "relative_yield: yield_p50_t_ha over the typical yield of the crop that priced the loan, "
                              "as results tables carry it",
            "cultivated_area_high_ha": "cultivated_area_high_ha: the high end of the cultivated area's interval, "
                                       "as results tables carry it; a history without one may repeat "
                                       "cultivated_area_ha, judging declarations against the estimate alone",
        }
        hint = "; ".join(text for column, text in hints.items() if column in missing)
        raise InputError(f"history file {path} lacks column(s): {', '.join(missing)}{f' ({hint})' if hint else ''}")
    for column in (*SOURCE_COLUMNS, "defaulted"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = (values.isna() & table[column].notna()) | np.isinf(values)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = str(table[column].iloc[row])
            comma = " (a decimal comma: save the file with decimal points)" if DECIMAL_COMMA.match(value) else ""
            raise InputError(f"history file {path}: column {column} has a value that is not a finite number "
                             f"{value!r} (row {row + 2}){comma}")
        if values.isna().all() and column not in OPTIONAL_COLUMNS:
            raise InputError(f"history file {path}: column {column} has no value on any row; the model needs it")
        table[column] = values
    if (below := table["cultivated_area_high_ha"] < table["cultivated_area_ha"]).any():
        row = int(np.flatnonzero(below.to_numpy())[0])
        raise InputError(f"history file {path}: cultivated_area_high_ha is under cultivated_area_ha on row {row + 2} "
                         f"({table['cultivated_area_high_ha'].iloc[row]} < {table['cultivated_area_ha'].iloc[row]}; "
                         f"{int(below.sum())} row(s)): it is the high end of the cultivated area's interval")
    season = table["season"].astype("string").str.strip()
    if (season.isna() | season.eq("")).any():
        row = int(np.flatnonzero((season.isna() | season.eq("")).to_numpy())[0])
        raise InputError(f"history file {path}: 'season' must be given on every row (row {row + 2} has none)")
    if not pd.api.types.is_numeric_dtype(table["season"]):  # numbers sort as numbers (2 before 12), text as text
        table["season"] = season
    if not table["defaulted"].dropna().isin([0, 1]).all() or table["defaulted"].isna().any():
        raise InputError(f"history file {path}: 'defaulted' must be 0 or 1 on every row")
    # A loan read twice (a join's or an export's duplicate) weighs its outcome twice. Loans are told apart by their
    # loan_id where one is given, else by all their columns.
    ids = table[LOAN_ID].astype("string").str.strip() if LOAN_ID in table.columns else None
    named = (ids.notna() & ids.ne("")).to_numpy() if ids is not None else np.zeros(len(table), dtype=bool)
    by_id = ids.where(named).duplicated().to_numpy() & named if ids is not None else named
    if (repeats := by_id | (table.duplicated().to_numpy() & ~named)).any():
        second = int(np.flatnonzero(repeats)[0])
        if named[second]:  # the first row of its loan_id, blanks around it aside
            first = int(np.flatnonzero((ids == ids.iloc[second]).fillna(False).to_numpy())[0])
        else:
            loan = table.groupby(list(table.columns), dropna=False, sort=False).ngroup().to_numpy()
            first = int(np.flatnonzero(loan == loan[second])[0])
        what = f"the same {LOAN_ID}" if named[second] else "identical"
        raise InputError(f"history file {path}: rows {first + 2} and {second + 2} are {what} ({int(repeats.sum())} "
                         f"repeated loan(s)); a loan counted twice weighs its outcome twice: remove the repeats"
                         f"{'' if named[second] else f' (or tell loans apart by their {LOAN_ID})'}")
    if len(table) < MIN_ROWS:
        raise InputError(f"history file {path} has {len(table)} loans; at least {MIN_ROWS} are needed")
    counts = table["defaulted"].value_counts()
    if len(counts) < 2 or counts.min() < MIN_PER_CLASS:
        raise InputError(f"history file {path} needs at least {MIN_PER_CLASS} defaulted and {MIN_PER_CLASS} "
                         f"repaid loans (has {counts.get(1, 0)} and {counts.get(0, 0)})")
    outcome = outcome_days(table["outcome_date"])
    if outcome.isna().any():
        row = int(np.flatnonzero(outcome.isna().to_numpy())[0])
        raise InputError(f"history file {path}: 'outcome_date' must be a date on every row, written YYYY-MM-DD "
                         f"(row {row + 2}: {table['outcome_date'].iloc[row]!r}; {int(outcome.isna().sum())} row(s))")
    if as_of is not None and as_of > date.today():
        raise InputError(f"--as-of {as_of} is after today: outcomes not yet known could not be told from leakage")
    fit_day = as_of or date.today()
    future = outcome > pd.Timestamp(fit_day)
    if future.any():
        raise InputError(f"history file {path}: {int(future.sum())} outcome(s) dated after {fit_day} "
                         "(the fit date); using them would leak the future into the model")
    _check_seasons(path, table["season"], outcome, table["defaulted"])
    return table


def _decimal_commas(path: Path, separator: str) -> str:
    """" with decimal commas" where a field of the first rows of the ``separator``-separated CSV ``path`` is a number
    written with one (``0,53``), else ""."""
    with path.open(encoding="utf-8-sig", errors="replace") as text:
        fields = [field.strip().strip('"') for _, line in zip(range(20), text) for field in line.split(separator)]
    return " with decimal commas" if any(DECIMAL_COMMA.match(field) for field in fields) else ""


def outcome_days(column: pd.Series) -> pd.Series:
    """Each outcome's calendar day as written (midnight timestamps; NaT where not an ISO 8601 date or time).

    A time of day counts within its day, and a time with an offset or zone keeps its local day, never converted to
    UTC: ``2024-12-31T23:30:00-05:00`` is 31 December, as its lender wrote it.

    >>> outcome_days(pd.Series(["2024-12-31 14:23:05", "2025-01-01T07:00:00+08:00"])).dt.day.tolist()
    [31, 1]
    """
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_localize(None).dt.normalize()
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column.dt.normalize()
    text = column.astype("string").str.strip()
    # A time's offset or zone is checked as part of it, then dropped, leaving its local time.
    valid = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601").notna()
    local = text.str.replace(r"^(.*\d[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$",
                             r"\1", regex=True)
    days = pd.to_datetime(local, errors="coerce", format="ISO8601").dt.normalize()
    return days.where(valid.to_numpy())


def _check_seasons(path: Path, season: pd.Series, outcome: pd.Series, defaulted: pd.Series) -> None:
    """The calibration predicts each season from those before it, in the order of their names: that order must be
    time's (by each season's first outcome), and the seasons it predicts (``predicted_seasons``) must hold both
    outcomes.

    Raises:
        InputError: Names that sort against time (spring 2019 after autumn 2020), or too few of an outcome in the
            seasons predicted (a calibration that never saw a default gives every applicant a PD of 0).
    """
    first_outcome = outcome.groupby(season.to_numpy()).min().sort_index()
    for (name, start), (later, later_start) in zip(first_outcome.items(), list(first_outcome.items())[1:]):
        if later_start < start:
            raise InputError(f"history file {path}: season {later!r} sorts after {name!r} but its outcomes begin "
                             f"earlier ({later_start.date()} against {start.date()}); name seasons so that they sort "
                             "in time, e.g. 2019-1 spring, 2019-2 autumn")
    predicted = predicted_seasons(season, defaulted)
    held = defaulted[season.isin(predicted).to_numpy()].value_counts()
    if len(held) < 2 or held.min() < MIN_OUT_OF_TIME_PER_CLASS:
        counts = defaulted.groupby(season.to_numpy()).agg(["sum", "size"])
        per_season = ", ".join(f"{name} {int(d)}/{n}" for name, (d, n) in counts.iterrows())
        found = (f"season(s) {', '.join(map(str, predicted))} are so predicted and hold {held.get(1, 0)} defaulted "
                 f"and {held.get(0, 0)} repaid loans" if predicted.size else "no season is so predicted")
        raise InputError(f"history file {path}: each season is predicted by a fit on the seasons before it once "
                         f"those hold defaulted and repaid loans (defaulted/loans per season: {per_season}); "
                         f"{found}, and the out-of-time calibration needs at least {MIN_OUT_OF_TIME_PER_CLASS} of "
                         "each: add seasons of both outcomes, or fit once more loans have ended")


def fit_risk_model(history: pd.DataFrame, *, source: str, l2: float = 1.0, note: str = "",
                   declared_slack_ha: float | None = None, as_of: date | None = None) -> dict:
    """Fit the monotonic scorecard on a checked history; return the JSON-ready model and card. Its
    ``declared_over_high`` reads a declaration over the cultivated interval's top by no more than
    ``declared_slack_ha`` (None: the packaged config's ``credit.declared_area_slack_ha``) as honest, and the model
    keeps the slack, so it scores loans as it read them. The card ties the model to its data: the SHA-256 of the
    columns fitted (``training_data_sha256``), ``as_of`` (the date ``read_history`` checked the outcomes against;
    None where none is given), loans and defaults per season (``metrics.per_season``), and each feature's
    ``missing_share``, the share of loans whose value was blank and filled (a blank declaration as an honest one).

    The loans are taken in a fixed order, by ``season``, then by the columns the fit reads (``SOURCE_COLUMNS``, then
    ``defaulted``; missing values last), so the same loans in any row order give the same model to the last bit:
    sums of floats depend on their order, and a coefficient off by 1e-16 changes the model's hash. Loans alike in
    all those columns are interchangeable to the fit.

    Raises:
        InputError: ``l2`` is negative or not finite.
    """
    if not 0 <= l2 < np.inf:
        raise InputError(f"the ridge penalty l2 must be a finite number, 0 or more (got {l2})")
    if declared_slack_ha is None:
        declared_slack_ha = load_config().credit.declared_area_slack_ha
    if not 0 <= declared_slack_ha < np.inf:
        raise InputError(f"the declared-area slack must be a finite number of hectares, 0 or more (got "
                         f"{declared_slack_ha})")
    history = history.sort_values(["season", *SOURCE_COLUMNS, "defaulted"], kind="stable", ignore_index=True)
    features = risk_features(history, declared_slack_ha)
    scorecard = MonotonicScorecard(l2=l2, declared_slack_ha=declared_slack_ha).fit(
        features, history["defaulted"], seasons=history["season"])
    # A feature of one value (declared_over_high where no area was declared) ranks no loan: its coefficient stays 0.
    constant = {name: features[name].dropna().iloc[0] for name in scorecard.features_ if features[name].nunique() == 1}
    blank = features.isna().assign(declared_over_high=lambda frame: frame["declared_over_high"] | pd.to_numeric(
        history["declared_area_ha"], errors="coerce").isna())
    card = {
        "kind": "farmcredit-monotonic-scorecard",
        "training_data": source,
        "training_data_sha256": _fitted_table_sha256(history),
        "as_of": as_of.isoformat() if as_of else None,
        "note": note,
        "features": {
            name: {"direction": "PD never rises as it rises" if FEATURE_DIRECTIONS[name] < 0 else
                   "PD never falls as it rises", "coefficient_per_sd": round(float(coef), 6),
                   "missing_share": round(float(blank[name].mean()), 6),
                   **({"note": f"{constant[name]:g} on every loan: it ranks none and weighs nothing"}
                      if name in constant else {})}
            for name, coef in zip(scorecard.features_, scorecard.coef_)
        },
        "calibration": "isotonic on out-of-time predictions (each season predicted by a fit on earlier ones, once "
                       "those hold defaulted and repaid loans)",
        "code_version": card_code_version(),
    }
    return scorecard.to_dict(card)


def _fitted_table_sha256(table: pd.DataFrame) -> str:
    """The SHA-256 of the columns a fit reads (``season``, ``SOURCE_COLUMNS``, ``defaulted``) of a history sorted as
    ``fit_risk_model`` sorts it, written as CSV text (season as text, features as floats, defaulted as 0/1): the same
    loans give the same hash in any row order, from a CSV or a Parquet file."""
    canonical = pd.DataFrame({"season": table["season"].astype(str),
                              **{column: pd.to_numeric(table[column], errors="coerce").astype(float)
                                 for column in SOURCE_COLUMNS},
                              "defaulted": table["defaulted"].astype(int)})
    return hashlib.sha256(canonical.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


def write_risk_model(model: dict, path: str | Path) -> Path:
    """Write a fitted model as pretty, stable JSON (its folder made if missing).

    Raises:
        InputError: ``path`` is a folder, or it cannot be written (a file where a folder should be, no permission).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; --out names the model's JSON file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write the model to {path}: {write_problem(path, exc)}") from exc
    return path
