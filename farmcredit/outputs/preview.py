"""Map previews drawn from a results folder: ``preview.png`` and one parcel's season.

Everything comes from the files ``write_outputs`` wrote (``results.gpkg``, ``true_colour.tif``,
``ndvi_series.parquet``, ``run.json``), so a copied results folder previews without the imagery.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import textwrap
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pyproj
import rasterio
import shapely
from matplotlib.artist import setp
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba, to_rgba_array
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import Geod, Transformer
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, WindowError
from rasterio.windows import Window, from_bounds

from farmcredit.audit import run_currency, run_id
from farmcredit.config import AgronomyConfig, ImageryConfig
from farmcredit.credit.limit import DECISIONS, money
from farmcredit.errors import InputError
from farmcredit.fonts import figure_fonts, missing_glyphs_told
from farmcredit.formats import check_vector_file, open_raster
from farmcredit.locking import refuse_unfinished, write_problem
from farmcredit.outputs.styles import (
    DECISION_CLASSES,
    DECISION_COLOURS,
    HATCH_COLOUR,
    HATCHED_DECISION,
    TRUE_COLOUR_MAX,
)
from farmcredit.spreadsheet import unquoted

MAX_PREVIEW_PX = 1600
PARCEL_VIEW_M = 400.0  # the least ground (metres) shown around one parcel, so its neighbours show too
PEER_BAND = (10, 90)  # percentiles of the peers' NDVI drawn as a band
# Longest id, in UTF-8 bytes, kept in a preview's file name (file systems allow 255 bytes a name).
MAX_NAME_BYTES = 120
FILL_ALPHA = 0.8  # parcels' fill over the imagery: at 0.55 three in four parcels blended into it to a colour-blind eye
HATCH = "///"  # declines', so a decline reads as one without telling its colour

logger = logging.getLogger(__name__)


@figure_fonts()
def render_preview(results: str | Path, out: str | Path | None = None, parcel_id: str | None = None) -> Path:
    """Draw a results folder as a PNG: parcels by decision over the true-colour image.

    With ``parcel_id``, the map centres on that parcel and a second panel plots its NDVI over
    the season against the parcels its health was ranked among (or says why there are none).

    Args:
        results: An output folder of ``farmcredit assess``, or its ``results.gpkg``.
        out: The PNG to write; default ``preview.png`` (or ``preview_<parcel id>.png``) in the folder.
        parcel_id: The parcel to show; as results.csv shows it, too (``'000001``: the quote mark that keeps a
            spreadsheet from reading it as a number is taken off, as ``credit report`` takes it off).

    Returns:
        The PNG written.

    Example:
        >>> render_preview(Path("results/sample"), parcel_id="P00003")  # doctest: +SKIP
    """
    results, out = Path(results), None if out is None else Path(out)
    parcel_id = None if parcel_id is None else unquoted(parcel_id)
    folder = results.parent if results.suffix == ".gpkg" and results.is_file() else results
    if not (folder / "results.gpkg").is_file():
        raise InputError(f"{results}: not a farmcredit results folder (no results.gpkg)")
    if out is not None and out.suffix.lower() != ".png":
        raise InputError(f"{out}: the preview is a PNG; name a .png file")
    refuse_unfinished(folder)
    run = folder / "run.json"
    with read_as_written(run):
        record = json.loads(run.read_text(encoding="utf-8")) if run.is_file() else {}
    check_vector_file(folder / "results.gpkg", "results file")
    with read_as_written(folder / "results.gpkg"):
        # The overview draws outlines by decision: its other columns (the arithmetic, some 400 characters a parcel)
        # held 0.4 GiB a 100,000 parcels for nothing.
        parcels = gpd.read_file(folder / "results.gpkg", layer="parcels", engine="pyogrio",
                                columns=["parcel_id", "decision", "status"] if parcel_id is None else None)
    if missing := {"parcel_id", "decision", "status"} - set(parcels.columns):
        raise InputError(f"{folder / 'results.gpkg'}: its parcels layer has no {', '.join(sorted(missing))} column")
    imagery = folder / "true_colour.tif"
    crs = _map_crs(imagery, parcels)
    parcels = parcels.to_crs(crs)
    usable = parcels[parcels.geometry.notna() & ~parcels.geometry.is_empty]
    if parcel_id is None:
        out = out or folder / "preview.png"
        shown = map_parcels(parcels)  # one not assessed far off is counted in the title instead
        focus = series = None
        bounds = _padded(shown.total_bounds, 0.03) if len(shown) else (0.0, 0.0, 1.0, 1.0)
        off = len(usable) - len(usable.cx[bounds[0] : bounds[2], bounds[1] : bounds[3]])
        title = (f"farmcredit: {len(parcels)} parcels, season {_season(record)}"
                 + (f" ({off} not assessed, off the map)" if off else ""))
    else:
        matches = parcels.index[parcels["parcel_id"].astype(str) == parcel_id]  # ids read as integers, too
        if len(matches) == 0:
            raise InputError(f"{results}: no parcel {parcel_id!r} in results.gpkg")
        if len(matches) > 1:  # their NDVI series would be drawn as one
            raise InputError(f"{results}: {len(matches)} parcels have the id {parcel_id!r} (DUPLICATE_PARCEL_ID); give "
                             "each its own id to preview it")
        out = out or folder / f"preview_{_file_safe(parcel_id, parcels['parcel_id'].astype(str))}.png"
        shown, focus = usable, parcels.loc[matches[0]]
        located = focus.geometry is not None and not focus.geometry.is_empty
        bounds = (_around(focus.geometry.bounds, _ground_metres(crs, focus.geometry.bounds)) if located
                  else _padded(usable.total_bounds, 0.03))
        title = _parcel_title(focus, record)
        series = _read_series(folder / "ndvi_series.parquet")
    image = _true_colour(imagery, bounds) if imagery.is_file() else None  # every file read before the drawing
    fig, axes = _map_figure(shown, n_panels=1 if focus is None else 2)
    with missing_glyphs_told(out):
        ax = axes if focus is None else axes[0]
        if focus is not None:
            _ndvi_panel(axes[1], series, parcels, focus, record)
        subtitle = _draw_map(ax, usable, bounds, image, focus, crs)
        ax.legend(handles=_legend(parcels), loc="lower left", title="decision", framealpha=0.9, fontsize=8)
        fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
        fig.get_layout_engine().set(rect=(0, 0.02, 1, 0.98))  # room for the footer under the axes' labels
        fig.text(0.01, 0.005, f"farmcredit results {folder.resolve().name}/: {run_label(record)}; imagery dates "
                 f"are UTC days; map CRS {crs.to_string()}", fontsize=7, color="#444444")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out)
        except OSError as exc:
            raise InputError(f"cannot write the preview to {out}: {write_problem(out, exc)}") from exc
    return out



def _map_figure(usable: gpd.GeoDataFrame, n_panels: int) -> tuple[Figure, Axes | np.ndarray]:
    """A figure on the Agg canvas, not pyplot's: drawing it changes no backend and leaves no figure open in the
    caller's session (a notebook's inline plots)."""
    if n_panels == 2:
        fig = Figure(figsize=(15, 7), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.1]})
    if len(usable):
        x0, y0, x1, y1 = usable.total_bounds
        aspect = (y1 - y0) / max(x1 - x0, 1.0)
    else:
        aspect = 1.0
    fig = Figure(figsize=(10, float(np.clip(10 * aspect + 1.2, 4, 14))), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _draw_map(ax: Axes, usable: gpd.GeoDataFrame, bounds: tuple[float, float, float, float],
              image: tuple[np.ndarray, tuple, str] | None, focus: pd.Series | None, crs: rasterio.crs.CRS) -> str:
    """``image`` (from ``_true_colour``, None for none), parcels by decision (in ``crs``, the map's), scale bar and
    north arrow; returns the imagery caption."""
    caption = ""
    if image is not None:
        rgb, extent, acquired = image
        ax.imshow(rgb, extent=extent, interpolation="nearest")
        caption = f"imagery {acquired} (Sentinel-2 true colour)"
    usable = usable.cx[bounds[0] : bounds[2], bounds[1] : bounds[3]]  # only what the view shows
    classes = np.where(usable["status"].eq("error"), "error", usable["decision"].astype(str))
    if len(usable):
        _draw_parcels(ax, usable.geometry.to_numpy(), [DECISION_COLOURS[value] for value in classes],
                      classes == HATCHED_DECISION)
    if focus is not None and focus.geometry is not None and not focus.geometry.is_empty:
        gpd.GeoSeries([focus.geometry]).boundary.plot(ax=ax, color="white", linewidth=4)
        gpd.GeoSeries([focus.geometry]).boundary.plot(ax=ax, color="black", linewidth=2)
    ax.set_xlim(bounds[0], bounds[2])
    ax.set_ylim(bounds[1], bounds[3])
    ax.set_aspect("equal")
    _scale_bar(ax, bounds, _ground_metres(crs, bounds))
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center",
                fontsize=14, fontweight="bold", fontfamily="DejaVu Sans",  # CJK fonts lack bold: matplotlib warns
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 2})
    unit = {"metre": "m", "meter": "m", "unknown": "map units"}.get(crs.linear_units, crs.linear_units)
    ax.set_xlabel(f"easting ({unit})")
    ax.set_ylabel(f"northing ({unit})")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=8)
    return caption


def _draw_parcels(ax: Axes, geometry: np.ndarray, colours: list[str], hatched: np.ndarray) -> None:
    """Each geometry in its colour: polygons filled (``FILL_ALPHA``, holes left open, those ``hatched`` with
    ``HATCH``) and outlined opaque, as collections of paths built from the coordinates at once (geopandas makes a
    patch a polygon: 16 s of a 100,000 parcels' preview); any other part (a line or point an erroneous parcel kept)
    drawn by geopandas."""
    parts, owner = shapely.get_parts(shapely.orient_polygons(geometry), return_index=True)
    polygon = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    rings, ring_part = shapely.get_rings(parts[polygon], return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    if len(coords):
        ring_start = np.flatnonzero(np.r_[True, np.diff(ring_of) != 0])
        codes = np.full(len(coords), MplPath.LINETO, dtype=MplPath.code_type)
        codes[ring_start], codes[np.r_[ring_start[1:], len(coords)] - 1] = MplPath.MOVETO, MplPath.CLOSEPOLY
        part_of = ring_part[ring_of]  # each coordinate's polygon among parts[polygon]
        start = np.flatnonzero(np.r_[True, np.diff(part_of) != 0])
        paths = np.array([MplPath(coords[a:b], codes[a:b]) for a, b in zip(start, np.r_[start[1:], len(coords)])],
                         dtype=object)
        drawn = owner[polygon][part_of[start]]  # each path's geometry
        edge = to_rgba_array(colours)[drawn]
        face = edge.copy()
        face[:, 3] = FILL_ALPHA
        for lined in (False, True):  # one collection with no hatch and one hatched: hatching is a collection's
            chosen = hatched[drawn] == lined
            if chosen.any():
                with _hatch_colour():
                    ax.add_collection(PathCollection(list(paths[chosen]), facecolors=face[chosen],
                                                     edgecolors=edge[chosen], linewidths=0.8,
                                                     hatch=HATCH if lined else None))
    if not polygon.all():
        others = [colours[i] for i in owner[~polygon]]
        gpd.GeoSeries(parts[~polygon]).plot(ax=ax, color=others, linewidth=0.8, markersize=6)


def _read_series(path: Path) -> pd.DataFrame | None:
    """The run's NDVI per parcel and date (``ndvi_series.parquet``); None when the folder has none."""
    if not path.is_file():
        return None
    with read_as_written(path):
        series = pd.read_parquet(path)
    # Its days (Arrow dates; an older run's midnight timestamps) as timestamps, which matplotlib places alike.
    return series.assign(date=pd.to_datetime(series["date"]))


def _ndvi_panel(ax: Axes, series: pd.DataFrame | None, parcels: gpd.GeoDataFrame, focus: pd.Series,
                record: dict) -> None:
    """The parcel's NDVI per date the run observed it on (``observed``) in ``series`` against the median and 10-90%
    band of the parcels its health was ranked among (on the dates each was observed), a date measured through partial
    cloud as a hollow marker apart from the line; a parcel not measured (status error) gets its reason instead of a
    series. The NDVI is what health ranked, over each parcel's cropland (``crop_ndvi_mean``); an older run's series
    without it is drawn over the whole outline (``ndvi_mean``)."""
    ax.set_title(f"NDVI over the season {_season(record)}", fontsize=10)
    if focus["status"] == "error":  # no imagery read: its empty series would draw as a season of cloud
        reason = focus.get("reason_text") if isinstance(focus.get("reason_text"), str) else ""
        ax.text(0.5, 0.5, textwrap.fill(f"not measured (status error, {focus.get('reason') or 'no reason'}): "
                                        f"{reason or 'no imagery was read for it'}", 60),
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    if series is None:
        ax.text(0.5, 0.5, "no ndvi_series.parquet in the results folder", ha="center", transform=ax.transAxes)
        return
    seen = _observed(series, record)
    ndvi, over = ("crop_ndvi_mean", "its cropland") if "crop_ndvi_mean" in series else ("ndvi_mean", "its outline")
    rating = _rating_peers(parcels, focus, record)
    if rating is None:
        reference = focus.get("health_reference") if isinstance(focus.get("health_reference"), str) else ""
        ax.text(0.98, 0.97, textwrap.fill(f"{reference or 'not rated: no health index'}; no peers drawn", 45),
                ha="right", va="top", fontsize=8, transform=ax.transAxes,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    else:
        peers, named = rating
        # Dates no peer saw clearly are left out, so the peers' line joins the dates around them.
        peer_ndvi = series[series["parcel_id"].isin(peers) & seen].pivot_table(
            index="date", columns="parcel_id", values=ndvi, dropna=False
        ).dropna(how="all")
        if len(peer_ndvi.columns):
            low, high = (np.nanpercentile(peer_ndvi.to_numpy(), q, axis=1) for q in PEER_BAND)
            ax.fill_between(peer_ndvi.index, low, high, color="#9ecae1", alpha=0.6,
                            label=f"peers {PEER_BAND[0]}-{PEER_BAND[1]}%")
            ax.plot(peer_ndvi.index, np.nanmedian(peer_ndvi.to_numpy(), axis=1), color="#3182bd", lw=2,
                    label=f"peers' median (the {named} its health is ranked among)")
    mine = series["parcel_id"] == focus["parcel_id"]
    clear = series[mine & seen].sort_values("date")
    partly = series[mine & ~seen & series[ndvi].notna()]
    ax.plot(clear["date"], clear[ndvi], color="black", lw=2, marker="o",
            label=f"parcel {focus['parcel_id']}: NDVI over {over}")
    if len(partly):  # measured through cloud: the decision did not take them, so they are not joined to the line
        ax.plot(partly["date"], partly[ndvi], linestyle="none", marker="o", markerfacecolor="none",
                markeredgecolor="black", label=f"partly clouded (not used: under {_min_clear_share(record):.0%} clear)")
    cloudy = series[mine & series[ndvi].isna()]
    if len(cloudy):
        ax.plot(cloudy["date"], np.full(len(cloudy), -0.15), linestyle="none", marker="x", color="#636363",
                label="no clear view of the parcel")
    ax.set_ylim(-0.2, 1.0)
    ax.set_ylabel(f"NDVI (mean of the clear pixels of {over})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.tick_params(labelsize=8)
    setp(ax.get_xticklabels(), rotation=30, ha="right")


def _observed(series: pd.DataFrame, record: dict) -> pd.Series:
    """Which rows of ``series`` the run took as observations, as its signals did: NDVI measured and at least
    ``imagery.min_clear_share`` of the parcel clear (the run's, from ``record``; today's default for a record without
    it)."""
    return series["ndvi_mean"].notna() & (series["clear_share"] >= _min_clear_share(record))


def _min_clear_share(record: dict) -> float:
    imagery = record.get("config", {}).get("values", {}).get("imagery", {})
    return imagery.get("min_clear_share", ImageryConfig().min_clear_share)


def _rating_peers(parcels: pd.DataFrame, focus: pd.Series, record: dict) -> tuple[pd.Series, str] | None:
    """The ids of the parcels ``focus``'s health was ranked among, itself included, and how to name them; None when
    it was not rated. As the run ranked them: the rated parcels priced as the same crop, or every rated parcel when
    fewer than ``agronomy.min_peers`` (from ``record``, the run's) were."""
    if pd.isna(focus.get("health_index")):
        return None
    rated = parcels["health_index"].notna()
    priced = parcels["priced_crop" if "priced_crop" in parcels else "crop"]
    same = rated & (priced == _priced_crop(focus))
    agronomy = record.get("config", {}).get("values", {}).get("agronomy", {})
    if same.sum() >= agronomy.get("min_peers", AgronomyConfig().min_peers):
        return parcels.loc[same, "parcel_id"], f"{same.sum()} {_priced_crop(focus)} parcels"
    return parcels.loc[rated, "parcel_id"], f"{rated.sum()} cropland parcels of every crop"


def _priced_crop(parcel: pd.Series) -> str | None:
    """The crop that prices (and ranks) ``parcel``: the one seen, or the declared one where the call was unsure."""
    priced = parcel.get("priced_crop", parcel.get("crop"))
    return priced if isinstance(priced, str) else None


def _true_colour(path: Path, bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, tuple, str] | None:
    """RGB in 0-1 over ``bounds`` (overviews when zoomed out), its extent and date; None if outside."""
    with read_as_written(path), open_raster(path) as src:
        try:
            window = from_bounds(*bounds, transform=src.transform).intersection(Window(0, 0, src.width, src.height))
        except WindowError:
            return None
        factor = max(1.0, max(window.width, window.height) / MAX_PREVIEW_PX)
        shape = (3, max(int(window.height / factor), 1), max(int(window.width / factor), 1))
        dn = src.read(window=window, out_shape=shape, resampling=Resampling.average).astype(np.float32)
        x0, y0, x1, y1 = src.window_bounds(window)
        acquired = src.tags().get("ACQUIRED", "")
    rgb = np.moveaxis(np.where(dn > 0, dn / TRUE_COLOUR_MAX, np.nan), 0, -1)
    # A fixed 0-0.3 reflectance stretch with gamma reads well for vegetation and soil alike.
    return np.nan_to_num(np.clip(rgb, 0, 1) ** 0.8, nan=1.0), (x0, x1, y0, y1), acquired


def _legend(parcels: pd.DataFrame) -> list[Patch]:
    assessed = parcels["status"] != "error"
    counts = parcels.loc[assessed, "decision"].value_counts().to_dict()
    counts["error"] = int((~assessed).sum())
    # Each swatch as the map draws its parcels: the fill over white, the outline, a decline's hatch.
    with _hatch_colour():
        return [Patch(facecolor=to_rgba(colour, FILL_ALPHA), edgecolor=colour, linewidth=0.8,
                      hatch=HATCH if value == HATCHED_DECISION else None, label=f"{label} ({counts.get(value, 0)})")
                for value, colour, label in DECISION_CLASSES]


def _hatch_colour() -> contextlib.AbstractContextManager:
    """Hatches made within drawn in ``HATCH_COLOUR``: a patch or collection takes it from the rcParams as it is made
    (``hatchcolor=``, which says it directly, is matplotlib 3.11's; the pin allows 3.8)."""
    return matplotlib.rc_context({"hatch.color": HATCH_COLOUR})


def map_parcels(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The parcels a map of the run spans: those assessed (all with a geometry when none was). One not assessed far
    off (outside the imagery, say) would shrink the others to a strip."""
    usable = parcels[parcels.geometry.notna() & ~parcels.geometry.is_empty]
    assessed = usable[usable["status"].ne("error")]
    return assessed if len(assessed) else usable


# Where a limit's arithmetic gives the decision that withholds it: " (refer: FEW_CLEAR_OBSERVATIONS)".
_WHY_DECIDED = re.compile(rf" \((?:{'|'.join(DECISIONS)}): ")


def _parcel_title(parcel: pd.Series, record: dict) -> str:
    currency = run_currency(record)
    health = parcel.get("health_index")
    health_text = f"health {health:.0f}/100" if pd.notna(health) else "no health index"
    crop = parcel.get("crop") if isinstance(parcel.get("crop"), str) else "crop unknown"
    # Priced, and its health ranked, as another crop (one not measured was seen as none).
    if _priced_crop(parcel) not in (None, parcel.get("crop")) and parcel["status"] != "error":
        crop = f"seen {crop}, priced as {_priced_crop(parcel)}"
    reason = f" - {parcel['reason']}" if isinstance(parcel.get("reason"), str) and parcel["reason"] else ""
    borrower = parcel.get("borrower_id")
    owner = f"borrower {borrower}" if pd.notna(borrower) and str(borrower) else "no borrower"
    # Without one worked out, why, as the arithmetic says it (too little clear imagery to grade its risk), not "0";
    # cut before the decision's own " (refer: ...)", not at a crop named in brackets ("the declared crop (tea) ...").
    arithmetic = parcel.get("limit_arithmetic")
    none = (_WHY_DECIDED.split(arithmetic, maxsplit=1)[0]
            if isinstance(arithmetic, str) and arithmetic.startswith("no limit: ") else "")
    limit = none or f"limit {money(parcel['loan_limit'])} {currency}"
    return f"parcel {parcel['parcel_id']} ({owner}): {parcel['decision']}, {limit}; {crop}, {health_text}{reason}"


def run_label(record: dict) -> str:
    """The run a picture was drawn from, as its audit record (``run.json``) names it: its ``run_id`` (as the credit
    report names it) and the code (version, the commit's first 7 digits, ``+changes`` when the checkout had uncommitted
    ones; else the source's hash).

    >>> run_label({"created": "2026-12-02T09:36:08+00:00", "config": {"hash": "bf78e9eea15bf87c"},
    ...            "code": {"farmcredit": "0.1.0", "git_commit": "92bbc942656e", "git_uncommitted_changes": False}})
    'run 20261202T093608Z-bf78e9ee (farmcredit 0.1.0 @92bbc94)'
    """
    if not record:
        return "no run.json: the run is not known"
    code = record.get("code", {})
    commit = code.get("git_commit")
    source = (f"@{commit[:7]}{'+changes' if code.get('git_uncommitted_changes') else ''}" if commit
              else f"source {str(code.get('source_sha256', '?'))[:8]}")
    return f"run {run_id(record)} (farmcredit {code.get('farmcredit', '?')} {source})"


def _season(record: dict) -> str:
    dates = record.get("season_dates") or ["?"]
    return f"{dates[0]} to {dates[-1]}"


def _map_crs(imagery: Path, parcels: gpd.GeoDataFrame) -> rasterio.crs.CRS:
    """The imagery's CRS (so it draws unwarped); a UTM zone for the parcels when there is none."""
    if imagery.is_file():
        with read_as_written(imagery), open_raster(imagery) as src:
            return src.crs
    usable = parcels.geometry.notna() & ~parcels.geometry.is_empty
    return rasterio.crs.CRS.from_user_input(parcels[usable].estimate_utm_crs() if usable.any() else "EPSG:3857")


@contextmanager
def read_as_written(path: Path) -> Iterator[None]:
    """Say which file of the results folder does not read (cut short, corrupt, not what its name says) as an
    InputError naming it."""
    try:
        yield
    except (DataSourceError, DataLayerError, RasterioError, OSError, ValueError) as exc:  # Arrow's and JSON's too
        detail = exc.__cause__ or exc  # rasterio's "Read failed" leaves GDAL's reason in the cause
        raise InputError(f"{path}: does not read as farmcredit wrote it ({detail}); copy or write the results folder "
                         "again") from exc


def _padded(bounds: np.ndarray, share: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in bounds)
    pad = share * max(x1 - x0, y1 - y0, 100.0)
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def _around(bounds: tuple[float, float, float, float], metres: float) -> tuple[float, float, float, float]:
    """A square view three times the parcel's size, at least PARCEL_VIEW_M of ground a side (``metres``: ground
    metres per map unit there)."""
    x0, y0, x1, y1 = bounds
    half = max(1.5 * max(x1 - x0, y1 - y0), PARCEL_VIEW_M / 2 / metres)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - half, cy - half, cx + half, cy + half


def _file_safe(text: str, ids: Iterable[str]) -> str:
    """The id as part of a file name: characters a file name cannot hold become ``_`` and a long id is cut (to
    ``MAX_NAME_BYTES`` of UTF-8); then, when that changed it, or when another of ``ids`` kept whole would read the
    same to a file system blind to case (macOS, Windows), a short hash of the id follows, so each id gets a file of
    its own."""
    def plain(name: str) -> str:
        # A letter's combining marks (Bengali and Devanagari vowel signs: দাগ) are part of it, not separators.
        safe = "".join(c if c.isalnum() or c in "-_." or unicodedata.category(c).startswith("M") else "_"
                       for c in name)
        return safe.encode()[:MAX_NAME_BYTES].decode(errors="ignore")

    safe = plain(text)
    clash = any(other != text and other.casefold() == safe.casefold() and plain(other) == other for other in ids)
    return safe if safe == text and not clash else f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _ground_metres(crs: rasterio.crs.CRS, bounds: tuple[float, float, float, float]) -> float:
    """Metres on the ground per map unit, east-west across the middle of ``bounds``: about 1 on a UTM grid, the
    cosine of the latitude on Web Mercator, 0.3048 on a grid in feet; 1 for a CRS with no place on the earth."""
    x0, y0, x1, y1 = bounds
    cx, cy, step = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 1e-6)
    if crs.is_geographic or pyproj.CRS(crs.to_wkt()).geodetic_crs is None:
        return 1.0
    lons, lats = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform([cx - step / 2, cx + step / 2],
                                                                                 [cy, cy])
    metres = Geod(ellps="WGS84").inv(lons[0], lats[0], lons[1], lats[1])[2] / step
    return metres if np.isfinite(metres) and metres > 0 else 1.0


def _scale_bar(ax: Axes, bounds: tuple[float, float, float, float], metres: float) -> None:
    """A bar of a round length of ground (``metres``: ground metres per map unit) at the lower right."""
    span = bounds[2] - bounds[0]
    ground = span * metres / 4
    length = 10 ** np.floor(np.log10(ground))
    length *= 5 if ground >= 5 * length else 2 if ground >= 2 * length else 1
    x = bounds[2] - 0.05 * span - length / metres
    y = bounds[1] + 0.04 * (bounds[3] - bounds[1])
    ax.plot([x, x + length / metres], [y, y], color="black", linewidth=4, solid_capstyle="butt")
    ax.plot([x, x + length / metres], [y, y], color="white", linewidth=2, solid_capstyle="butt")
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x + length / metres / 2, y + 0.01 * (bounds[3] - bounds[1]), label, ha="center", va="bottom",
            fontsize=9, bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
