"""The ``assess`` job: parcels + a season of imagery -> per-parcel and per-borrower credit.

Parcels are grouped into windows of about ``imagery.chunk_px`` pixels; each window is read
once, so memory is bounded by the window size, not by the tile or the number of parcels.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError, ProjError
from rasterio.transform import array_bounds
from rasterio.windows import Window, union

from farmcredit.agronomy import (
    ParcelMeasurements,
    days_of_year_text,
    derive_signals,
    green_ndvi,
    near_peak_runs,
    peak_days,
    season_days,
)
from farmcredit.audit import area_interval_record, build_run_record, file_fingerprint, scene_record
from farmcredit.config import Config, CropConfig, load_config
from farmcredit.credit import Overlaps, RiskModel, aggregate_borrowers, assign_limits, find_overlaps, load_risk_model
from farmcredit.credit.risk import chance_warning
from farmcredit.dates import as_season, day_of_year, day_of_year_clash
from farmcredit.datum_check import DatumCheck, check_datum
from farmcredit.errors import ImageryError, InputError
from farmcredit.imagery import Imagery, open_imagery, read_window, spectral_indices, within_season
from farmcredit.imagery.fetch import (
    DEFAULT_COLLECTION,
    DEFAULT_MAX_CLOUD,
    EARTH_SEARCH_URL,
    FETCH_BANDS,
    RemoteSource,
    public_url,
    read_manifest,
)
from farmcredit.imagery.level import HazyDate, check_atmosphere
from farmcredit.margins import AreaMargins, model_margins
from farmcredit.outputs.rasters import PixelRasters
from farmcredit.parcels import (
    flag_parts_apart,
    map_only,
    parcels_from_frame,
    read_parcels,
    usable_geometries,
    utm_area_m2,
    utm_zone_epsg,
    warn_off_imagery,
)
from farmcredit.reasons import REASONS
from farmcredit.segmentation import CroplandClassifier, CroplandModel, PhenologyRule, load_cropland_model
from farmcredit.text import some
from farmcredit.zonal import Coverage, coverage_fractions, zonal_stats

logger = logging.getLogger(__name__)

# What the measurements read (NDVI, NDMI, EVI, the snow test's green; red edge only for a model whose card lists it): a
# band read and not used would cost its parcels the date where its file fails.
READ_BANDS = ("B02", "B03", "B04", "B08", "B8A", "B11")
CROPLAND_CUT = 0.5
M2_PER_HA = 10_000.0
# The models were built on Sentinel-2's 10 m pixels and judge shapes and windows in pixels, so other ground pixels
# shift cultivated areas: FTW Austria's stack resampled (nearest) to 9, 9.5, 10.5, 11, 12 and 15 m moved 300 random
# parcels' total by +5.5%, +1.9%, -2.1%, -1.2%, -9% and -18%; 8 m +12%, 20 m (bilinear) -15%, EPSG:3857 at 10 units
# (6.7 m on the ground at 48 N) +56%. So 9-11 m passes (a shift of about 5% at most, below the +29% of resampling
# the 10 m grid itself by half a pixel, bilinear): a UTM grid's scale is within 0.5% of 1 even well into the
# neighbouring zone, and Web Mercator's within 1.5% of its centre's across a 110 km tile south of 60 degrees. The
# 6.7 m stack warped back to the 10 m UTM grid came within +11% (-r near -tap), +23% (average), +27% (bilinear):
# the advice given.
MODEL_PIXEL_M = 10.0
PIXEL_SIZE_TOLERANCE = 0.1

ProgressCallback = Callable[[int, int], None]
# Called with the name of each stage after measuring as it starts (a console says it: the measuring bar has ended).
StageCallback = Callable[[str], None]
PORTFOLIO_STAGES = "portfolio-wide stages (health among peers, overlaps, limits, borrowers)"
# Called with each window and its per-pixel layers (name -> float32 rows x cols on the window).
PixelCallback = Callable[[Window, Mapping[str, np.ndarray]], None]
# What the warnings advise where snow, not cloud, hid parcels: more winter dates are more snow.
SNOW_ADVICE = ("snow is normal in winter over a winter crop, which is judged from its spring green-up: assess a season "
               "reaching past the thaw (--season; season= in Python), not more winter dates")


@dataclass(frozen=True)
class Assessment:
    """The result of one run: parcel and borrower tables and the audit record.

    Attributes:
        parcels: one row per input parcel, in input order, with the input GeoDataFrame's index (a RangeIndex for a
            file).
        borrowers: one row per borrower.
        record: the audit record (``run.json``).
        config: the run configuration (``record`` holds its values).
        imagery: the season read.
        series: per parcel and date: ``parcel_id``, ``date``, ``clear_share`` (0-1), the
            ``ndvi_mean`` / ``ndvi_std`` of its clear pixels (weighted by coverage squared; NaN when none) and
            ``crop_ndvi_mean`` / ``crop_ndvi_std`` of those called cropland (its whole outline's where none is),
            which its health and yield read.
        overlaps: which parcels overlap which (``find_overlaps``), for the audit records
            (the tables join their ids with ';', which an id may hold).
        products: per parcel and date, the product of the date's scene read over it
            (``ParcelMeasurements.product``), for the audit records.
        clear: per parcel and date, whether the date was clear over it (``ParcelMeasurements.clear``; all False for
            a parcel in error): the dates its signals rest on, for the audit records.
        snowed: per parcel and date, whether snow is what hid it that date (``SeasonMeasurements.snowed``; all False
            for a parcel in error), for the warnings.
        grid_window: the window of the imagery grid holding every parcel that overlaps it (None
            when none does); the raster outputs cover it.
        pixels: per-pixel layers of the run (cropland probability, peak NDVI) when it kept them.
    """

    parcels: gpd.GeoDataFrame
    borrowers: gpd.GeoDataFrame
    record: dict
    config: Config
    imagery: Imagery
    series: pd.DataFrame
    overlaps: Overlaps
    products: np.ndarray
    clear: np.ndarray
    snowed: np.ndarray
    grid_window: Window | None = None
    pixels: PixelRasters | None = None

    def __repr__(self) -> str:
        """A line a notebook can show (the dataclass's ran to 80,000 characters: the record, every band file)."""
        counts = self.record.get("counts", {})
        return (f"Assessment({len(self.parcels)} parcels, {len(self.borrowers)} borrowers, "
                f"decisions {counts.get('decision', {})}, dates {len(self.record.get('season_dates', []))}, "
                f"model {self.record.get('models', {}).get('cropland', {}).get('name')!r})")


def assess(
    parcels: str | Path | gpd.GeoDataFrame,
    imagery: str | Path | Imagery,
    *,
    season: str | Sequence[date | str] | None = None,
    out: str | Path | None = None,
    config: str | Path | Config | Mapping[str, Any] | None = None,
    parcels_crs: str | int | CRS | None = None,
    parcels_datum: str = "wgs84",
    parcels_layer: str | None = None,
    risk_model: str | Path | RiskModel | None = None,
    model: str | Path | CroplandModel | None = None,
    band_layout: Sequence[tuple[date | str | None, str]] | None = None,
    dn_offset: float | None = None,
    device: str = "auto",
) -> gpd.GeoDataFrame:
    """Assess parcels against a season of imagery; optionally write every output to ``out``.

    Example:
        >>> results = assess("sample_tiles/parcels.geojson", "sample_tiles/imagery")  # doctest: +SKIP
        >>> results[["parcel_id", "cultivated_area_ha", "loan_limit", "decision"]].head()  # doctest: +SKIP

    Args:
        parcels: a parcel file (``read_parcels``) or a GeoDataFrame of parcels, checked alike.
        imagery: a folder of scenes, a SAFE product or a stack file (``open_imagery``), or an ``Imagery`` opened.
        season: first and last day, as ``"2024-03-01/2024-10-31"`` or a pair of dates (or ISO strings); of imagery
            opened already (an ``Imagery``), the scenes acquired within it are read.
        out: a folder to write every output to (``outputs.write_outputs``); None writes nothing.
        config: a YAML file, a mapping of its sections or a ``Config`` (``load_config``; default: the packaged one).
        parcels_crs: the CRS of parcels (a file or a GeoDataFrame) that declare none: ``"EPSG:4547"``, ``4547`` or a
            ``pyproj.CRS``.
        parcels_datum: how the parcels' longitude and latitude were drawn (``china_maps.DATUMS``): ``"gcj02"`` (Amap /
            Gaode, Tencent maps) or ``"bd09"`` (Baidu maps) are moved back to WGS 84 first (``read_parcels``).
        parcels_layer: the layer of a parcel file of several (see ``read_parcels``).
        risk_model: the scorecard giving each parcel's PD: its JSON file or a loaded ``RiskModel``
            (``load_risk_model``; default: the packaged one).
        model: the cropland model: ``"cnn"``, ``"rule"``, a weights file or a loaded model
            (default: ``segmentation.DEFAULT_MODEL``).
        band_layout, dn_offset: as ``open_imagery`` takes them (the CLI's ``--bands`` and ``--dn-offset``), for a
            stack without band descriptions and scene folders without a STAC item; only with imagery as a path.
        device: where a model named here runs (``auto``, ``cpu``, ``cuda``: the CLI's ``--device``).

    Returns:
        One row per input parcel, in input order, with every per-parcel column; indexed as ``parcels`` when it is a
        GeoDataFrame (its labels sorted, filtered or repeated: ``g["loan_limit"] = results["loan_limit"]`` lines
        up), a RangeIndex for a file. Parcels only: a borrower's limit and decision are ``run_assessment``'s
        ``borrowers`` (``borrowers.parquet``), never a sum of its parcels' limits, which the borrower cap, the
        rounding and the minimum loan change.

    Warns (the ``farmcredit`` logger) of the phenology rule (a baseline), a CNN without a calibrated area interval,
    an ``out`` holding a batch run's partitions, image files that could not be read and parcels the season could
    not judge, as the CLI does.

    Raises:
        InputError: ``out`` is a file or cannot be made a folder (``output_folder``), before anything is measured;
            the parcels, their CRS, the risk model or an argument of another type (``load_inputs``).
        ConfigError: ``config`` refused (``load_config``).
        ImageryError: no imagery in the season, or imagery the models cannot read (``load_inputs``).
    """
    if out is not None:
        from farmcredit.outputs import output_folder

        # Before the run: an out= that cannot be a folder, or where it would overwrite an input, fails now.
        output_folder(out, create=False, inputs={"parcels": parcels, "config": config, "risk_model": risk_model})
        warn_batch_partitions(Path(out))
    config = load_config(config)
    model = cropland_model(model, config, device)
    warn_of_model(model)
    result = run_assessment(
        parcels, imagery, season=season, config=config, parcels_crs=parcels_crs, parcels_datum=parcels_datum,
        parcels_layer=parcels_layer, risk_model=risk_model, model=model, pixel_layers=out is not None,
        band_layout=band_layout,
        dn_offset=dn_offset, device=device,
    )
    warn_of_findings(result)
    if out is not None:
        from farmcredit.outputs import write_outputs

        write_outputs(Path(out), result)
    return result.parcels


def run_assessment(
    parcels: str | Path | gpd.GeoDataFrame,
    imagery: str | Path | Imagery,
    *,
    season: str | Sequence[date | str] | None = None,
    config: str | Path | Config | Mapping[str, Any] | None = None,
    parcels_crs: str | int | CRS | None = None,
    parcels_datum: str = "wgs84",
    parcels_layer: str | None = None,
    model: str | Path | CroplandModel | None = None,
    risk_model: str | Path | RiskModel | None = None,
    progress: ProgressCallback | None = None,
    pixel_layers: bool = False,
    band_layout: Sequence[tuple[date | str | None, str]] | None = None,
    dn_offset: float | None = None,
    device: str = "auto",
    stage: StageCallback | None = None,
) -> Assessment:
    """Run every stage and return the parcels, the borrowers and the audit record: ``assess``'s arguments (but
    ``out``), its parcels, and what the CLI writes beside them.

    Args:
        parcels, imagery, season, config, parcels_crs, parcels_datum, parcels_layer, model, risk_model, band_layout,
            dn_offset, device: as for ``assess``.
        progress: called with (windows measured, windows in all).
        pixel_layers: keep the per-pixel layers for ``write_outputs``' rasters (below).
        stage: called with ``PORTFOLIO_STAGES`` as the stages after measuring start.

    Example:
        >>> result = run_assessment("sample_tiles/parcels.geojson", "sample_tiles/imagery")  # doctest: +SKIP
        >>> result.borrowers[["borrower_id", "loan_limit", "decision", "reason"]].head()  # doctest: +SKIP

    With ``pixel_layers``, the per-pixel cropland probability (and class map, CNN) and peak NDVI
    of every window read are kept (in a temporary folder) for the raster outputs of ``write_outputs``
    (``farmcredit.outputs.write_outputs(out, result)`` writes what ``assess``'s ``out`` does).

    Returns:
        An ``Assessment``: ``parcels`` as ``assess`` returns them; ``borrowers``, one row per borrower with its loan
        limit and decision, as ``borrowers.parquet`` holds them (the only borrower limits: the cap, the rounding and
        the minimum loan apply to a borrower's total, so summing its parcels' limits gives another); ``record``, the
        audit record (``run.json``, but its ``outputs``). It warns of nothing: ``warn_of_findings(result)`` logs
        what ``assess`` warns of in its results (unreadable image files, parcels the season could not judge).

    Raises:
        InputError, ConfigError, ImageryError: as ``assess`` raises them (but ``out``'s).
    """
    started = time.perf_counter()
    inputs = load_inputs(parcels, imagery, season=as_season(season), config=config, parcels_crs=parcels_crs,
                         parcels_datum=parcels_datum, parcels_layer=parcels_layer, risk_model=risk_model,
                         band_layout=band_layout, dn_offset=dn_offset)
    timings = {"open": time.perf_counter() - started}
    model = cropland_model(model, inputs.config, device)
    stack, geoms = inputs.imagery, inputs.geoms
    extent = output_extent(geoms, stack)
    pixels = None
    if pixel_layers and extent is not None:
        pixels = PixelRasters(stack, extent, model.classes if isinstance(model, CroplandClassifier) else ())
    tick = time.perf_counter()
    measurements, outside = measure_parcels(geoms, stack, inputs.config, model, progress,
                                            pixels.add if pixels else None)
    timings["measure"] = time.perf_counter() - tick
    if stage is not None:
        stage(PORTFOLIO_STAGES)
    return finish_assessment(inputs, model, measurements, outside, timings, started,
                             extent=extent, pixels=pixels)


def cropland_model(model: str | Path | CroplandModel | None, config: Config, device: str = "auto") -> CroplandModel:
    """``model`` when loaded already, else the model it names as ``assess`` takes it (``load_cropland_model``): the rule
    with ``config``'s thresholds, a CNN on ``device``."""
    if model is None or isinstance(model, (str, Path)):
        return load_cropland_model(model, config.cropland_rule, device=device)
    return model


# The warnings of a run, logged on the ``farmcredit`` logger, which the CLI prints: ``assess``, ``run_batch`` and the
# CLI give them, not ``run_assessment``, which ``calibrate`` runs with a model it strips of its margin.
def warn_of_model(model: CroplandModel) -> None:
    """Say when the model is the phenology rule, a baseline that calls real forest and grassland cultivated, or a CNN
    whose card has no area margin (weights from ``train`` until calibrated): intervals too narrow."""
    if isinstance(model, PhenologyRule):
        logger.warning("the phenology rule (%s) is a baseline, measured on simulated seasons: on a real season "
                       "(Slovenia, 2017) it called deciduous forest, grassland and shrubland cultivated and approved "
                       "loans on them; decide on the CNN, the default (--model cnn, model=\"cnn\" in Python)",
                       model.name)
    card = getattr(model, "card", None)
    if card is not None and "mixed_margin" not in card.calibration:
        logger.warning("model %s has no calibrated area interval (its card has no mixed_margin, as weights from "
                       "`farmcredit train` or `calibrate --platt-only` have none): cultivated-area intervals leave out "
                       "the doubt of parcel-edge pixels and over-declaration flags are too quick; fit one with "
                       "`farmcredit calibrate WEIGHTS "
                       "SCENE...` on labelled scenes with parcels the weights did not train on (e.g. from "
                       "`farmcredit simulate --seed 201`, 202, ...)", card.name)


def warn_batch_partitions(out: Path) -> None:
    """Say when ``assess`` writes into a folder holding a batch run's partitions, which stay (a rerun of that batch
    reuses them) but are not this run's."""
    from farmcredit.batch.partitions import MANIFEST  # not at the top: farmcredit.batch imports this module

    if (out / "partitions" / MANIFEST).is_file():
        logger.warning("%s holds a batch run's partitions, which are not this run's results (a rerun of that batch "
                       "reuses them); write assess's results to another --out (out= in Python) to keep the two apart",
                       out / "partitions")


def warn_of_findings(result: Assessment) -> None:
    """Say what a run found that its results alone do not tell at a glance: image files that could not be read
    (``_warn_read_failures``), snow the cloud mask called clear (``_warn_snow_called_clear``), parcels clouds, snow or
    the season left unjudged (``_warn_clouds``, ``_warn_season``), crop calendars whose peak the season's dates miss
    (``_warn_calendars``; none where no parcel has a clear date)."""
    codes = result.parcels["reason_all"].str.split(";")
    _warn_read_failures(result.record["read_failures"], codes)
    _warn_snow_called_clear(result.record["season_clear"]["dates"])
    # A parcel snow hid on at least half the dates it was hidden on is told of snow, not cloud.
    snowy = result.snowed.any(axis=1) & (2 * result.snowed.sum(axis=1) >= (~result.clear).sum(axis=1))
    all_clouded = _warn_clouds(codes, result.parcels["clear_observations"], len(result.record["season_dates"]),
                               result.record["config"]["values"]["agronomy"]["min_clear_observations"],
                               bool(result.record["read_failures"]), snowy)
    # No date seen anywhere says nothing of any crop calendar: the dates' peaks are not missed, they are clouded.
    dates = [] if all_clouded else [date.fromisoformat(day) for day in result.record["season_dates"]]
    _warn_season(codes, _warn_calendars(result.config, result.parcels, result.series, codes, dates))
    risk = result.record["models"]["risk"]
    if warning := chance_warning(risk["metrics"] or {}):
        logger.warning("risk model %s: %s; this run's PDs, grades and decisions rest on it", risk["source"], warning)


def _warn_calendars(config: Config, parcels: pd.DataFrame, series: pd.DataFrame, codes: pd.Series,
                    dates: Sequence[date]) -> np.ndarray:
    """Warn once of each crop the ``parcels`` declare or are priced at whose peak none of the season's ``dates`` can
    see (``peak_days``), naming its calendar's near-peak days and two fixes: a --season reaching them, or the crop's
    ``ndvi_template``, which sets its calendar. The calendar comes first where its referred parcels mostly show the
    crop green away from it (``_green_off_calendar``, the packaged Chinese calendars on a southern season), the
    --season otherwise (a season cut short, or ending before the crop grows); a crop none of whose parcels it refers
    is not warned of. Returns which parcels (``codes``: each one's reason codes) that told of: those referred
    PEAK_NOT_OBSERVED as a crop whose whole season (``season_days``) the dates miss."""
    told = np.zeros(len(codes), dtype=bool)
    if not dates:
        return told
    doy = np.array([day_of_year(day) for day in dates])
    first_year, shift = min(dates).year, config.agronomy.template_shift_days
    named = {config.crop_named(crop) for crop in parcels["declared_crop"]} | set(parcels["priced_crop"])
    peak_unseen = codes.map(lambda c: "PEAK_NOT_OBSERVED" in c).to_numpy()
    highest = None  # per parcel its highest clear NDVI and its date: read from the series only for a crop missed
    for crop, spec in config.crops.items():
        if crop not in named or peak_days(spec, shift)[doy].any():
            continue
        unseen = peak_unseen & (parcels["priced_crop"] == crop).to_numpy()
        if not unseen.any():
            continue
        if highest is None:
            clear = series[(series["clear_share"] >= config.imagery.min_clear_share) & series["ndvi_mean"].notna()]
            highest = clear.loc[clear.groupby("parcel_id")["ndvi_mean"].idxmax()].set_index("parcel_id")
        peak = days_of_year_text(near_peak_runs(spec), first_year)
        calendar = (f"its ndvi_template in --config (crops.{crop}.ndvi_template) sets its calendar: where {crop} grows "
                    "in other months (a southern season), give one peaking then (a crop green across the new year: "
                    "points on day 1 and 366)")
        unseen_ids = parcels["parcel_id"].to_numpy()[unseen]
        fixes = (f"{calendar}; else a --season (season= in Python) reaching its peak rates them"
                 if _green_off_calendar(spec, highest.reindex(unseen_ids))
                 else f"a --season (season= in Python) reaching its peak rates them, or {calendar}")
        logger.warning("none of the season's %d date(s), %s to %s, falls near %s's peak as its crop calendar has it, "
                       "%s, give or take the %d days a parcel's season may shift: %d parcel(s) priced as %s are "
                       "referred PEAK_NOT_OBSERVED (health and yield not rated); %s", len(dates), min(dates),
                       max(dates), crop, peak, shift, unseen.sum(), crop, fixes)
        if not season_days(spec)[doy].any():
            told |= unseen
    return told


def _green_off_calendar(spec: CropConfig, highest: pd.DataFrame) -> bool:
    """Whether a crop's parcels show it green away from its calendar: of those with a clear reading (``highest``: per
    parcel its highest clear NDVI, ``ndvi_mean``, and its ``date``; NaN where none), at least half read green
    (``green_ndvi``) outside the crop's own season (``season_days``). A season ending before the crop grows shows it
    bare, and a season cut short shows it green in its season."""
    seen = highest.dropna(subset=["ndvi_mean"])
    doy = np.array([day_of_year(day) for day in pd.to_datetime(seen["date"]).dt.date], dtype=int)
    green_off = (seen["ndvi_mean"].to_numpy() >= green_ndvi(spec)) & ~season_days(spec)[doy]
    return bool(len(seen)) and 2 * int(green_off.sum()) >= len(seen)


def _warn_clouds(codes: pd.Series, clear: pd.Series, dates: int, needed: int, failures: bool,
                 snowy: np.ndarray) -> bool:
    """Say how many parcels (``codes``: each one's reason codes) are referred for fewer than ``needed`` clear images of
    the season's ``dates`` (clouds, dates without data over them, a short band file), leaving out, when any file
    failed to read (``failures``), those flagged IMAGERY_READ_ERROR, which the read failures' warning counts; a
    season of fewer dates than ``needed`` is warned of as such before measuring. Where no parcel has a clear date
    (``clear``: each one's clear observations), one line says so instead: no crop was judged anywhere. Parcels snow
    hid (``snowy``, per parcel) are told of snow, with advice of their own (``SNOW_ADVICE``). Returns whether no
    parcel had a clear date."""
    blind = codes.map(lambda c: "NO_CLEAR_OBSERVATIONS" in c).to_numpy()
    if blind.any() and not clear.fillna(0).any():
        under_snow = int((blind & snowy).sum())
        if under_snow == blind.sum():
            logger.warning("no clear image over any parcel on any of the season's %d date(s): snow (SCL 11, or read "
                           "as snow) covers every parcel; all %d parcel(s) measured are referred "
                           "NO_CLEAR_OBSERVATIONS, none of their crops judged; %s", dates, under_snow, SNOW_ADVICE)
            return True
        snow = f"; snow, not cloud, hid {under_snow} of them: {SNOW_ADVICE}" if under_snow else ""
        logger.warning("no clear image over any parcel on any of the season's %d date(s): clouds or their shadows "
                       "(SCL) cover every parcel on each, or it has no data or no readable file there; all %d "
                       "parcel(s) measured are referred NO_CLEAR_OBSERVATIONS, none of their crops judged; check the "
                       "imagery's cloud mask and dates, or assess a season with clear dates%s", dates, blind.sum(),
                       snow)
        return True
    few = codes.map(lambda c: ("FEW_CLEAR_OBSERVATIONS" in c or "NO_CLEAR_OBSERVATIONS" in c)
                    and not (failures and "IMAGERY_READ_ERROR" in c)).to_numpy()
    if dates < needed:
        return False
    if clouded := int((few & ~snowy).sum()):
        logger.warning("%d parcel(s) have fewer than %d clear images of the season's %d dates (FEW_CLEAR_OBSERVATIONS, "
                       "NO_CLEAR_OBSERVATIONS: referred): clouds or their shadows hide them on the others, or those "
                       "dates have no data over them (a swath's edge); a longer --season (season= in Python), or more "
                       "dates in it, judges them", clouded, needed, dates)
    if under_snow := int((few & snowy).sum()):
        logger.warning("%d parcel(s) have fewer than %d clear images of the season's %d dates (FEW_CLEAR_OBSERVATIONS, "
                       "NO_CLEAR_OBSERVATIONS: referred): snow (SCL 11, or read as snow) hides them on most of the "
                       "others; %s", under_snow, needed, dates, SNOW_ADVICE)
    return False


def _warn_snow_called_clear(days: Sequence[Mapping[str, Any]]) -> None:
    """Name the dates (``run.json``'s ``season_clear`` dates) on which pixels of parcels read as snow though their
    cloud mask called them clear (``parcels_snow_called_clear``): masked as snow, as SCL 11 is."""
    snowed = [f"{day['date']}: {day['parcels_snow_called_clear']} parcel(s)" for day in days
              if day.get("parcels_snow_called_clear")]
    if snowed:
        logger.warning("%d date(s) had snow over parcels that their cloud mask called clear: masked as snow (%s); a "
                       "cloud mask of one's own (written as SCL 4 clear, 9 masked) must mask snow too", len(snowed),
                       "; ".join(snowed[:10]) + (f"; and {len(snowed) - 10} more" if len(snowed) > 10 else ""))


def _warn_read_failures(failures: Sequence[Mapping[str, str]], codes: pd.Series) -> None:
    """Name the image files that failed to decode where parcels were read (``run.json``'s ``read_failures``), and how
    many parcels (``codes``: each one's reason codes) skip a date for it (``IMAGERY_READ_ERROR``: on pixels no other
    product of the date supplied), and of them how many are left too few clear dates (referred; ``_warn_clouds``
    counts the others)."""
    files = sorted({failure["file"] for failure in failures})
    if files:
        hit = codes.map(lambda c: "IMAGERY_READ_ERROR" in c).sum()
        short = codes.map(lambda c: "IMAGERY_READ_ERROR" in c and any(code in c for code in (
            "FEW_CLEAR_OBSERVATIONS", "NO_CLEAR_OBSERVATIONS"))).sum()
        referred = (f", {short} of them left with too few clear dates (FEW_CLEAR_OBSERVATIONS, NO_CLEAR_OBSERVATIONS: "
                    "referred)" if short else "")
        lost = (f"{hit} parcel(s) on the pixels they left without data skip that date (IMAGERY_READ_ERROR){referred}"
                if hit else "no parcel lost a date to them")
        logger.warning("%d image file(s) could not be read (whole or in part): %s; %s; parcels on blocks that read, or "
                       "whose pixels another product of the same date supplied, keep the date, and where a file "
                       "failed only in the CNN's context around them, they are measured without that context; "
                       "run.json has GDAL's message", len(files), some(files), lost)


def _warn_season(codes: pd.Series, told: np.ndarray) -> None:
    """Say how many parcels (``codes``: each one's reason codes) the season could not judge for want of images in
    their crop's weeks (referred; leaving out those ``told`` of their crop calendar by ``_warn_calendars``), and how
    many the run could not rate the health of for want of peers."""
    if missed := codes.map(lambda c: "SEASON_MISSES_CROP" in c).sum():
        logger.warning("%d parcel(s) show no crop, but no clear image of theirs reads them bare while their crop is "
                       "green (none falls then, or those that do read a crop; SEASON_MISSES_CROP: referred, not "
                       "declined); a --season (season= in Python) covering their crops' growing weeks, or clear images "
                       "there, judges them", missed)
    if unseen := (codes.map(lambda c: "PEAK_NOT_OBSERVED" in c).to_numpy() & ~told).sum():
        logger.warning("%d parcel(s) have no clear image near their crop's peak (PEAK_NOT_OBSERVED: referred, health "
                       "and yield not rated); a --season (season= in Python) covering the peak, or clear images "
                       "there, rates them", unseen)
    if unrated := codes.map(lambda c: "FEW_PEERS" in c).sum():
        logger.warning("%d parcel(s) have too few cropland parcels beside them in this run to rate their health "
                       "(FEW_PEERS): their risk grade takes it as average, whatever it is; assess them with their "
                       "season's portfolio (batch for a large one) to rate it", unrated)


@dataclass(frozen=True)
class AssessmentInputs:
    """Everything a run reads before measuring: config, risk model, parcels and imagery.

    Attributes:
        config: the run configuration.
        risk: the risk model.
        table: validated parcels (with their ``reasons``), in input order and CRS, on a RangeIndex: the run reads
            them by position.
        source: the parcel file (None for an in-memory table).
        imagery: the season.
        geoms: the parcel polygons in the imagery CRS, those measured (None where unusable or ``map_only``).
        index: the index the results take: an input GeoDataFrame's (its labels may repeat), else the table's.
        layer: the layer read from a parcel file of several.
        fingerprint: the parcel file's ``file_fingerprint`` as it was read (the audit vouches for the file read, not
            for the file as it is when a long run ends); None for an in-memory table.
        scenes: each scene's ``scene_record`` (its band files' fingerprints) as it was opened, likewise.
        season: the season asked for (first and last day); None when none was (every date given is read).
        parcels_crs: the CRS given for a parcel file that declares none (``--parcels-crs``), if any.
        parcels_datum: how the parcels' longitude and latitude were drawn (``--parcels-datum``), moved back to WGS 84
            in ``table``.
        hazy_dates: the dates whose blue over the parcels' surroundings reads hazy though clear
            (``check_atmosphere``), warned of and recorded, not masked.
        datum_check: how well parcels in China fit the imagery in each datum (``check_datum``), warned of and
            recorded, never applied; None where none lies in China.
    """

    config: Config
    risk: RiskModel
    table: gpd.GeoDataFrame
    source: Path | None
    imagery: Imagery
    geoms: np.ndarray
    index: pd.Index
    layer: str | None = None
    fingerprint: dict | None = None
    scenes: list[dict] | None = None
    season: tuple[date, date] | None = None
    parcels_crs: str | None = None
    parcels_datum: str = "wgs84"
    hazy_dates: tuple[HazyDate, ...] = ()
    datum_check: DatumCheck | None = None


def load_inputs(
    parcels: str | Path | gpd.GeoDataFrame,
    imagery: str | Path | Imagery,
    *,
    season: str | Sequence[date | str] | None = None,
    config: str | Path | Config | Mapping[str, Any] | None = None,
    parcels_crs: str | int | CRS | None = None,
    parcels_datum: str = "wgs84",
    parcels_layer: str | None = None,
    risk_model: str | Path | RiskModel | None = None,
    band_layout: Sequence[tuple[date | str | None, str]] | None = None,
    dn_offset: float | None = None,
) -> AssessmentInputs:
    """Read and validate the config, risk model, parcels and imagery of a run (see ``assess``; ``season`` as
    ``as_season`` takes it).

    Raises:
        ImageryError: no imagery in the season, dates of more than one season (over ``MAX_SEASON_DAYS`` from first
            to last), red or NIR missing from a scene, imagery in a geographic CRS or of pixels not 10 m on the
            ground (``check_ground_pixels``).
        InputError: a season over ``MAX_SEASON_DAYS`` long, the parcels (``read_parcels``), their CRS cannot be
            transformed to the imagery's, or ``band_layout`` or ``dn_offset`` given with imagery opened already (an
            ``Imagery``, which ``season`` narrows: ``within_season``); ``parcels`` or ``imagery`` of another type
            (``check_source_types``); ``parcels_crs`` neither a string nor a CRS (``parcels_crs_text``).
    """
    check_source_types(parcels, imagery)
    parcels_crs = parcels_crs_text(parcels_crs)
    season = as_season(season)
    cfg = load_config(config)
    risk = risk_model if isinstance(risk_model, RiskModel) else load_risk_model(risk_model)
    fingerprint = None
    if isinstance(parcels, gpd.GeoDataFrame):
        table = parcels_from_frame(parcels, crs=parcels_crs, currency=cfg.credit.currency, datum=parcels_datum)
        parcels_source, index = None, parcels.index
    else:
        table = read_parcels(parcels, crs=parcels_crs, layer=parcels_layer, currency=cfg.credit.currency,
                             datum=parcels_datum)
        parcels_source = Path(parcels)
        fingerprint, index = file_fingerprint(parcels_source), table.index
    table = flag_parts_apart(table, cfg.parcels.max_part_gap_m,
                             "the parcels' GeoDataFrame" if parcels_source is None else str(parcels_source))
    if not isinstance(imagery, Imagery):
        # A season after the scenes is told to be fetched over the parcels read as they are here (with their datum).
        reading = fetch_parcel_words(str(parcels_source or "PARCELS"), parcels_crs, parcels_layer, parcels_datum)
        stack = open_imagery(imagery, season, band_layout=band_layout, dn_offset=dn_offset,
                             fetch_parcels=_command_line(reading))
    elif band_layout is not None or dn_offset is not None:
        raise InputError("band_layout= and dn_offset= say how to open imagery, so they apply when imagery is a path; "
                         "give them to open_imagery, or pass the path")
    else:
        stack = imagery if season is None else within_season(imagery, season)
    if not stack.scenes:
        raise ImageryError(f"no imagery in {stack.source} for season {season}")
    dates = [scene.acquired.date() for scene in stack.scenes]
    first, last = min(dates), max(dates)
    if day_of_year_clash(first, last):
        raise ImageryError(f"imagery {stack.source} holds dates from {first} to {last}, more than one season: the crop "
                           "calendars are days of one year, so dates a year apart would be read as one season; pass "
                           "--season START/END (season= in Python) of at most a year, no day of the year in it twice")
    stack.require_ndvi_bands()
    if len(stack.scenes) < cfg.agronomy.min_clear_observations:
        logger.warning("the season holds %d date(s) of imagery, fewer than the %d clear dates a parcel needs "
                       "(agronomy.min_clear_observations): every parcel will be referred FEW_CLEAR_OBSERVATIONS, "
                       "however clear its dates; widen --season (season= in Python) or add the season's other dates",
                       len(stack.scenes), cfg.agronomy.min_clear_observations)
    if stack.crs.is_geographic:
        # Areas and pixel sizes would be in square degrees: refuse rather than lend on them.
        raise ImageryError(f"imagery {stack.source} is in a geographic CRS ({stack.crs}); "
                           "use imagery in a projected CRS such as its UTM zone")
    check_ground_pixels(stack)
    try:
        local = table.to_crs(stack.crs) if table.crs != stack.crs else table
    except ProjError as exc:  # a local engineering CRS, say: no transformation to the imagery's
        raise InputError(f"the parcels' coordinate reference system ({table.crs.name}) cannot be transformed to the "
                         f"imagery's ({stack.crs.to_string()}): {exc}") from exc
    geoms = local.geometry.to_numpy().copy()
    geoms[map_only(table["reasons"])] = None  # kept in the table for the map, never measured
    measured = geoms[~shapely.is_missing(geoms)]
    hazy = check_atmosphere(stack, shapely.get_coordinates(shapely.centroid(measured)), cfg.imagery.clear_scl_classes)
    drawn = table.geometry.to_numpy().copy()
    drawn[shapely.is_missing(geoms)] = None
    datum = check_datum(gpd.GeoSeries(drawn, crs=table.crs), stack, parcels_datum, cfg.imagery.clear_scl_classes)
    known: dict[str, dict] = {}  # a stack's dates share its file: hashed once
    scenes = [scene_record(scene, known) for scene in stack.scenes]
    return AssessmentInputs(cfg, risk, table, parcels_source, stack, geoms, index, table.attrs.get("layer"),
                            fingerprint, scenes, season, parcels_crs, parcels_datum, hazy, datum)


def check_source_types(parcels: object, imagery: object) -> None:
    """Refuse ``parcels`` and ``imagery`` of a type ``load_inputs`` does not take, naming the argument: else ``Path``
    or geopandas fails on them deep inside, in words of its own.

    Raises:
        InputError: ``parcels`` is no path nor a GeoDataFrame, or one with no active geometry column; ``imagery`` is
            no path nor an ``Imagery``.
    """
    if isinstance(parcels, gpd.GeoDataFrame):
        if parcels.active_geometry_name not in parcels.columns:
            raise InputError("parcels= GeoDataFrame has no active geometry column: set one with set_geometry")
    elif not isinstance(parcels, str | os.PathLike):
        make = ""
        if isinstance(parcels, pd.DataFrame):
            make = ": make one with geopandas.GeoDataFrame(df, geometry=..., crs=...)"
        raise InputError(f"parcels= takes a parcel file path or a GeoDataFrame (got {_type_name(parcels)}{make})")
    if not isinstance(imagery, str | os.PathLike | Imagery):
        raise InputError("imagery= takes the path of a folder of scenes, a SAFE product or a stack file, or an "
                         f"Imagery open_imagery opened (got {_type_name(imagery)})")


def parcels_crs_text(crs: str | int | CRS | None) -> str | None:
    """``parcels_crs`` as a ``--parcels-crs`` takes it, for the printed fetch command and the audit record: a string as
    given (``read_parcels`` reads it), else the CRS's authority code (``EPSG:4547``) or, wanting one, its WKT
    (or PROJ text, as given).

    Raises:
        InputError: ``crs`` is no string and not a CRS ``pyproj.CRS.from_user_input`` reads.
    """
    if crs is None or isinstance(crs, str):
        return crs
    try:
        return CRS.from_user_input(crs).to_string()
    except CRSError as exc:
        raise InputError(f"parcels_crs= takes a CRS (an EPSG code as 4547, a string as 'EPSG:4547', or a pyproj CRS), "
                         f"not {crs!r}: {exc}") from exc


def _type_name(value: object) -> str:
    """How a refusal names what it got: None, or the value's type."""
    return "None" if value is None else type(value).__name__


def check_ground_pixels(imagery: Imagery) -> None:
    """Refuse a grid whose pixels are not Sentinel-2's 10 m on the ground (``MODEL_PIXEL_M``, within
    ``PIXEL_SIZE_TOLERANCE``), measured at its centre (``Imagery.ground_pixel_m``).

    Raises:
        ImageryError: pixels of another size (a 20 m export, Web Mercator at 10 units: 6.7 m at 48 N), with the
            size measured and the command that reprojects the imagery onto its UTM zone's 10 m grid.
    """
    across, down = imagery.ground_pixel_m()
    if all(abs(size / MODEL_PIXEL_M - 1) <= PIXEL_SIZE_TOLERANCE for size in (across, down)):
        return
    own, centre = imagery.crs.to_epsg(), imagery.centre_lonlat()
    if own is not None and (32601 <= own <= 32660 or 32701 <= own <= 32760):
        zone = f"EPSG:{own}"  # already in a UTM zone: keep it
    else:
        zone = f"EPSG:{int(utm_zone_epsg(*centre))}" if centre is not None else "EPSG:326zz (its UTM zone)"
    raise ImageryError(
        f"imagery {imagery.source}: its pixels are {across:.2f} x {down:.2f} m on the ground (at the grid's centre, "
        f"in {imagery.crs.to_string()}), but the cropland models were built for Sentinel-2's {MODEL_PIXEL_M:g} m "
        f"pixels (within {PIXEL_SIZE_TOLERANCE:.0%}): other sizes shift cultivated areas (20 m by -15%, 6.7 m by "
        f"+56% on a test tile); fetch the scenes on their own grid (farmcredit fetch), or reproject it onto its UTM "
        f"zone's {MODEL_PIXEL_M:g} m grid, e.g. gdalwarp -t_srs {zone} -tr 10 10 -tap -r near IN.tif OUT.tif "
        "(nearest: a bilinear or average warp blurs the fields)")


def finish_assessment(
    inputs: AssessmentInputs,
    model: CroplandModel,
    measurements: SeasonMeasurements,
    outside: np.ndarray,
    timings: dict[str, float],
    started: float,
    *,
    failed: np.ndarray | None = None,
    extent: Window | None = None,
    pixels: PixelRasters | None = None,
    inference: list[dict] | None = None,
) -> Assessment:
    """The portfolio-wide stages over every parcel's measurements: signals, overlaps, limits, borrowers.

    Health is a percentile among same-crop peers, overlaps and borrower totals span parcels, so
    these run once over the whole run however the measurement was split.

    Args:
        inputs: what ``load_inputs`` read.
        model: the cropland model that measured (named in each row, described in the audit record).
        measurements: every parcel's measurements, in input order.
        outside: mask of parcels wholly outside the imagery.
        timings: seconds per stage so far (``credit`` and ``total`` are added).
        started: ``time.perf_counter()`` when the run started.
        failed: mask of parcels whose measurement failed (``MEASUREMENT_FAILED``), if any.
        extent: the window the raster outputs cover.
        pixels: the per-pixel layers kept, if any.
        inference: where and in what precision the model ran, when not where ``model`` is (``batch``'s workers):
            device, precision and partitions per kind; the audit record's model description says so.
    """
    tick = time.perf_counter()
    table, geoms, cfg, risk = inputs.table, inputs.geoms, inputs.config, inputs.risk
    failed = np.zeros(len(table), dtype=bool) if failed is None else failed
    reasons = [list(r) for r in table["reasons"]]
    for i in np.flatnonzero(failed):
        reasons[i].append("MEASUREMENT_FAILED")
    for i in np.flatnonzero(outside & ~failed):
        reasons[i].append("OUTSIDE_IMAGERY")
    usable = usable_geometries(geoms)
    # A failed partition's parcels lie on the imagery (partitions hold only parcels whose windows do): counted as on
    # it, so a run whose partitions all failed does not call its one stray parcel "1 of 1" and the CRS mislabelled.
    off_imagery = (outside & ~failed)[usable]
    warn_off_imagery(table.geometry[usable], off_imagery, inputs.imagery.crs,
                     array_bounds(*inputs.imagery.shape, inputs.imagery.transform),
                     f"parcel file {inputs.source}" if inputs.source else "the parcels' GeoDataFrame",
                     _refetch_command(inputs) if off_imagery.any() else None,  # read only for parcels it would add
                     inputs.datum_check.off_imagery_hint() if inputs.datum_check else None)
    share = measurements.inside_share
    for i in np.flatnonzero(usable & ~outside & ~failed & (share < 0.999)):
        too_little = share[i] < cfg.agronomy.min_share_on_imagery
        reasons[i].append("MOSTLY_OUTSIDE_IMAGERY" if too_little else "PARTLY_OUTSIDE_IMAGERY")
    assessable = np.array([not _has_error(r) for r in reasons])
    clear = measurements.clear(cfg.imagery.min_clear_share) & assessable[:, None]
    snowed = measurements.snowed(cfg.imagery.min_clear_share) & assessable[:, None]
    snow_called_clear = (np.nan_to_num(measurements.snow_unmasked_share) > 0) & assessable[:, None]
    signals, signal_reasons = derive_signals(
        measurements, table["declared_crop"].to_numpy(), assessable, cfg
    )
    frame = pd.concat([table.drop(columns=["reasons", "geometry"]).reset_index(drop=True), signals], axis=1)
    frame["reasons"] = [r + s for r, s in zip(reasons, signal_reasons)]
    overlaps = find_overlaps(geoms, cfg.credit.overlap_share, cfg.credit.overlap_sliver_m)
    credit = assign_limits(frame, cfg, risk, overlaps, geoms)
    cropland = {**model.describe(), "area_interval": area_interval_record(model)}
    credit["model_version"] = model.name
    credit["model_hash"] = cropland["hash"]  # a model retrained under the same name is another model
    credit["risk_model_hash"] = risk.model_hash
    credit["config_hash"] = cfg.config_hash()
    result = gpd.GeoDataFrame(
        credit.drop(columns=["reasons"]), geometry=table.geometry.to_numpy(), crs=table.crs
    )
    result = result[_column_order(result)]
    borrowers = aggregate_borrowers(result, cfg)
    timings["credit"] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - started
    if inference is not None:
        cropland = {**cropland, **joined_kinds(inference), "inference": inference}
    record = build_run_record(
        inputs.fingerprint, inputs.imagery, cfg, {"cropland": cropland, "risk": risk.describe()}, result, borrowers,
        measurements.dates, clear, timings, measurements.read_failures, inputs.layer, inputs.scenes, inputs.season,
        table.crs, inputs.parcels_crs, [day.record() for day in inputs.hazy_dates], inputs.parcels_datum,
        snowed=snowed, snow_called_clear=snow_called_clear,
        datum_check=None if inputs.datum_check is None else inputs.datum_check.record(),
    )
    series = _season_series(result["parcel_id"], measurements)
    # Only now the caller's labels: every stage above, and the outputs, work by position.
    return Assessment(result.set_axis(inputs.index), borrowers, record, cfg, inputs.imagery, series, overlaps,
                      measurements.product, clear, snowed, extent, pixels)


def fetch_parcel_words(parcels: str, crs: str | None, layer: str | None, datum: str) -> list[str]:
    """The parcels as a ``farmcredit fetch`` command names them: the file, then the --parcels-crs, --parcels-datum and
    --parcels-layer the run read it with, where given, so that the fetch reads them where the run does."""
    words = [parcels]
    words += ["--parcels-crs", crs] if crs else []
    words += ["--parcels-datum", datum] if datum != "wgs84" else []
    words += ["--parcels-layer", layer] if layer else []
    return words


def fetch_source_words(source: RemoteSource) -> list[str]:
    """``source`` as a ``farmcredit fetch`` command names it: --source sentinelhub, or a STAC API's --stac-url (without
    credentials or query string) and --collection where they are not fetch's defaults (Earth Search's L2A)."""
    if source.kind == "sentinelhub":
        return ["--source", "sentinelhub"]
    url = public_url(source.url or EARTH_SEARCH_URL)
    return (["--stac-url", url] if url != EARTH_SEARCH_URL else []) + (
        ["--collection", source.collection] if source.collection != DEFAULT_COLLECTION else [])


def _refetch_command(inputs: AssessmentInputs) -> str | None:
    """The ``farmcredit fetch`` command that adds the parcels' windows to their imagery folder, when ``farmcredit
    fetch`` wrote it (its ``manifest.json`` names the season fetched); None for other imagery.

    It names the parcel file (``PARCELS`` for a GeoDataFrame), its layer and the CRS given for it, the season assessed
    (else the one fetched) and the folder, and the fetch's source, cloud limit and bands where they are not fetch's
    defaults; a rerun into the folder downloads nothing already there.
    """
    manifest = read_manifest(inputs.imagery.source)
    if not isinstance(manifest, dict) or not isinstance(fetched := manifest.get("season"), list) or len(fetched) != 2:
        return None
    start, end = inputs.season or fetched
    words = ["farmcredit", "fetch", *fetch_parcel_words(str(inputs.source or "PARCELS"), inputs.parcels_crs,
                                                         inputs.layer, inputs.parcels_datum)]
    words += ["--season", f"{start}/{end}", "--out", inputs.imagery.source]
    # The manifest names its source as ``RemoteSource.describe`` words it: kind, URL, (collection).
    if source := re.fullmatch(r"(\S+) (.+) \((.*)\)", str(manifest.get("source"))):
        words += fetch_source_words(RemoteSource(*source.groups()))
    if isinstance(max_cloud := manifest.get("max_cloud"), int | float) and max_cloud != DEFAULT_MAX_CLOUD:
        words += ["--max-cloud", f"{max_cloud:g}"]
    if isinstance(bands := manifest.get("bands"), list) and bands and set(map(str, bands)) != set(FETCH_BANDS):
        words += ["--bands", ",".join(map(str, bands))]
    return _command_line(words)


def _command_line(words: Sequence[str]) -> str:
    """``words`` quoted as this system's shell reads them: cmd.exe's quoting on Windows (``subprocess.list2cmdline``:
    shlex's single quotes are no quotes there), a POSIX shell's elsewhere."""
    return subprocess.list2cmdline(words) if os.name == "nt" else shlex.join(words)


def joined_kinds(kinds: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """``device`` and ``precision`` of kinds of inference (``batch``'s ``inference_used``), each the distinct values
    joined by `` + `` (``none`` for no kind)."""
    return {key: " + ".join(sorted({str(kind[key]) for kind in kinds})) or "none" for key in ("device", "precision")}


def measure_parcels(
    geoms: np.ndarray,
    imagery: Imagery,
    config: Config,
    model: CroplandModel,
    progress: ProgressCallback | None = None,
    pixels: PixelCallback | None = None,
) -> tuple[SeasonMeasurements, np.ndarray]:
    """Zonal statistics of every parcel, window by window.

    Args:
        geoms: parcel polygons in the imagery CRS (None where unusable).
        imagery: the season to read.
        config: run configuration.
        model: the cropland model.
        progress: called with (windows done, windows total).
        pixels: called with each window and its ``cropland_probability``, ``ndvi_peak`` (the
            highest clear-sky NDVI of the season) and, for a model with classes, ``cropland_class``
            (index into its ``classes``, NaN where no clear date) per pixel.

    Returns:
        The measurements and a mask of parcels wholly outside the imagery.
    """
    windows = plan_windows(geoms, imagery, config.imagery.chunk_px)
    stats = measure_windows(geoms, imagery, config, model, windows, progress, pixels)
    return assemble_measurements(geoms, imagery, stats, model_margins(model))


@dataclass(frozen=True, kw_only=True)
class SeasonMeasurements(ParcelMeasurements):
    """``ParcelMeasurements`` with the snow the run reports (the agronomy stage reads none of it).

    Attributes:
        snow_share: share of the parcel's in-imagery area under snow on each date (SCL 11, or read as snow:
            ``SeasonCube.snow``), which is not clear.
        snow_unmasked_share: the share of it read as snow where the cloud mask called it clear.
    """

    snow_share: np.ndarray
    snow_unmasked_share: np.ndarray

    def snowed(self, min_clear_share: float) -> np.ndarray:
        """Per parcel and date: whether snow is what hid the parcel: the date is not clear over it (``clear``) and
        snow covers at least half of what was not clear (cloud, shadow or no data the rest)."""
        hidden = 1.0 - np.nan_to_num(self.clear_share, nan=0.0)
        snow = np.nan_to_num(self.snow_share, nan=0.0)
        return ~self.clear(min_clear_share) & (snow > 0) & (2 * snow >= hidden)


PER_DATE_STATS = ("clear", "ndvi", "std", "crop", "crop_std", "ndmi", "evi", "product", "snow", "snow_unmasked")
PER_PARCEL_STATS = ("inside", "frac", "low", "high", "mixed")


def measure_windows(
    geoms: np.ndarray,
    imagery: Imagery,
    config: Config,
    model: CroplandModel,
    windows: list[tuple[Window, np.ndarray]],
    progress: ProgressCallback | None = None,
    pixels: PixelCallback | None = None,
) -> dict[str, np.ndarray]:
    """Raw zonal statistics of the parcels of ``windows`` (see ``measure_parcels``); NaN elsewhere.

    Returns:
        ``PER_DATE_STATS`` as (n, t) arrays (``snow``: the share of the parcel's cells under snow,
        ``SeasonCube.snow``; ``snow_unmasked``: of those read as snow where the cloud mask called them clear),
        ``PER_PARCEL_STATS`` as (n,) arrays (``inside`` is the
        in-imagery area, in cells of the grid with data on some date (``SeasonCube.imaged``), over the polygon
        area), ``read_error`` (n,) bool, True for parcels on pixels a read failure, or a band file short of its
        scene's extent, left without data on a date (``SeasonCube.lost``, ``SeasonCube.uncovered``), ``read_failed``
        (n,) bool, True for those of them a read failure so left (a short file's are so on every read of it),
        ``context_failed`` (n,) bool, True for the parcels of a window where a read failure left pixels the model read
        without data (in its context too: the window is then measured without it; anywhere in the window for a
        per-pixel model), and
        ``read_failures`` (k, 4), the files that failed to decode where the parcels were read (``failure_table``),
        whether or not another product of the date stood in for them, each with how many parcels it left without a
        clear observation (0 where another product of the date supplied the pixels, or they were in a CNN's context
        alone; each file's own, ``SeasonCube.error_lost``).
    """
    # Planar in the imagery's CRS, in its unit: the covered cells' area over the polygon's is the inside share.
    cell_area = abs(imagery.transform.a * imagery.transform.e)
    polygon_area = np.where(shapely.is_missing(geoms), 0.0, shapely.area(geoms))
    stats = empty_stats(len(geoms), len(imagery.scenes))
    failures: list[tuple[str, str, str, int]] = []
    for done, (window, members) in enumerate(windows, start=1):
        # The rule needs READ_BANDS only; a CNN also gets the bands its card lists (when present).
        bands = (*READ_BANDS, *getattr(model, "bands", ()))
        read = context_window(window, model, imagery.shape)
        cube = read_window(imagery, read, bands, config.imagery.clear_scl_classes)
        stats["context_failed"][members] = cube.lost.any()
        if cube.lost.any() and read != window:  # pixels lost in the context cost the context, not the date
            alone = read_window(imagery, window, bands, config.imagery.clear_scl_classes)
            if not alone.lost.any():  # else the window loses those pixels either way: keep the context
                # Named still (warned of, in run.json, and measured again by a batch rerun), though no parcel of the
                # window loses a date to it: the window is measured without its context.
                failures.extend((*failure, 0) for failure in cube.read_errors)
                read, cube = window, alone
        indices = spectral_indices(cube)
        # A model with classes (the CNN) gives its class map in the same pass; the rule has none.
        prediction = model.classify(cube, indices) if isinstance(model, CroplandClassifier) else None
        probability = model.predict_proba(cube, indices) if prediction is None else prediction.crop_probability
        crop_class = None if prediction is None else prediction.crop_class
        if read != window:  # the model's context around the window: the rest measures the window alone
            inner = Window(window.col_off - read.col_off, window.row_off - read.row_off, window.width, window.height)
            part = inner.toslices()
            cube, probability = cube.crop(inner), probability[part]
            indices = {name: values[(..., *part)] for name, values in indices.items()}
            crop_class = None if crop_class is None else crop_class[part]
        if pixels is not None:
            layers = {"cropland_probability": probability, "ndvi_peak": np.fmax.reduce(indices["ndvi"], axis=0)}
            if crop_class is not None:
                layers["cropland_class"] = np.where(crop_class >= 0, crop_class, np.nan)
            pixels(window, layers)
        # A cell without data on any date (a swath's edge) is off the imagery as a cell off the grid is: the parcel
        # is measured, and its clear shares taken, over the rest.
        coverage = coverage_fractions(geoms[members], cube.transform,
                                      (int(window.height), int(window.width))).within(cube.imaged())
        # The spectral statistics (NDVI mean and spread, over the parcel and its cropland, NDMI, EVI) weigh a cell by
        # its coverage squared, as cultivated_fractions does: a 10 m cell the outline cuts holds mostly the neighbour's
        # crop or the road beside it, and at plain coverage those cells pulled an outline drawn to the field's real
        # edge below the same field drawn 3 m inside (sample_tiles, whole file 3 m inside vs as drawn, outline grown to
        # the field: 40 limits fell, 14 approvals lost; squared 22 and 10; cells >= 0.5 covered, else all, 25 and 8
        # but their peak jumps more, 0.023 vs 0.018 mean, and a date clear over the parcel may have none clear). The
        # areas, clear share and inside share stay exact (weight_power applies to the values' statistics alone).
        ndvi = zonal_stats(coverage, indices["ndvi"], cell_area=cell_area, percentiles=(), weight_power=2)
        crop_pixels = probability[None] >= CROPLAND_CUT
        crop_ndvi = np.where(crop_pixels, indices["ndvi"], np.nan)
        stats["clear"][members] = ndvi["valid_fraction"]
        for name, snow in (("snow", cube.snow), ("snow_unmasked", cube.snow_unmasked)):
            stats[name][members] = zonal_stats(coverage, snow.astype(np.float32), cell_area=cell_area,
                                               percentiles=())["mean"]
        stats["ndvi"][members] = ndvi["mean"]
        stats["std"][members] = ndvi["std"]
        crop = zonal_stats(coverage, crop_ndvi, cell_area=cell_area, percentiles=(), weight_power=2)
        stats["crop"][members], stats["crop_std"][members] = crop["mean"], crop["std"]
        for name in ("ndmi", "evi"):  # over cropland, as the flooding check compares them (not a pond beside it)
            on_crop = np.where(crop_pixels, indices[name], np.nan)
            stats[name][members] = zonal_stats(coverage, on_crop, cell_area=cell_area, percentiles=(),
                                               weight_power=2)["mean"]
        stats["product"][members] = supplying_products(coverage, cube.source, cell_area)
        inside_area = ndvi["coverage_area"][:, 0] if ndvi["coverage_area"].ndim == 2 else ndvi["coverage_area"]
        stats["inside"][members] = inside_area / np.maximum(polygon_area[members], 1e-9)
        fractions = cultivated_fractions(coverage, probability, config.cropland_rule.interval_thresholds)
        for name, values in zip(("frac", "low", "high"), fractions):
            stats[name][members] = values
        stats["mixed"][members] = mixed_cell_share(coverage)  # the model's margin widens by it (``widened``)
        # Only the parcels on pixels a failure or a short band file left without data: another product of the date
        # may have supplied them.
        for name, missing in (("read_error", cube.lost | cube.uncovered), ("read_failed", cube.lost)):
            on_missing = missing.any(axis=0)[coverage.row, coverage.col]
            stats[name][members] |= np.bincount(coverage.parcel[on_missing], minlength=len(members)) > 0
        for (scene_id, path, message), file_lost in zip(cube.read_errors, cube.error_lost, strict=True):
            on_lost = file_lost[coverage.row, coverage.col]
            failures.append((scene_id, path, message, len(np.unique(coverage.parcel[on_lost]))))
        if progress is not None:
            progress(done, len(windows))
    stats["read_failures"] = failure_table(failures)
    return stats


def supplying_products(coverage: Coverage, source: np.ndarray, cell_area: float) -> np.ndarray:
    """(parcels, dates): the index, in the date's scene's ``parts``, of the product that supplied the most of each
    parcel's covered cells with data (``SeasonCube.source``; the first of a tie); NaN where no cell had data."""
    has_data = source >= 0
    shares = np.stack([
        zonal_stats(coverage, (source == k).astype(np.float32), has_data, cell_area=cell_area, percentiles=())["mean"]
        for k in range(max(int(source.max(initial=0)), 0) + 1)
    ])
    return np.where(np.isnan(shares[0]), np.nan, np.argmax(np.nan_to_num(shares, nan=-1.0), axis=0))


def model_read_context(model: CroplandModel) -> tuple[int, int]:
    """The (margin, alignment) pixels ``model`` reads around a window (its ``read_context``); (0, 1), the window
    alone, for a per-pixel model, which has none.

    Example:
        >>> model_read_context(object())
        (0, 1)
    """
    margin, align = getattr(model, "read_context", (0, 1))
    return margin, align


def context_window(window: Window, model: CroplandModel, shape: tuple[int, int]) -> Window:
    """What to read for ``model`` to measure ``window``: grown by the margin of the model's ``read_context``
    (margin, alignment), its origin on a multiple of the alignment, clipped to the grid of ``shape``; the window
    itself for a per-pixel model.

    A CNN so reads what one pass over the whole grid would show its window's pixels, and gives them the same
    probabilities (to float32 rounding) whatever window their parcels were grouped into (``imagery.chunk_px``, the
    rest of the portfolio). ``window``: whole pixels inside the grid, as ``plan_windows`` gives.
    """
    margin, align = model_read_context(model)
    if margin == 0:
        return window
    (r0, r1), (c0, c1) = window.toranges()
    r0, c0 = (max((start - margin) // align * align, 0) for start in (r0, c0))
    r1, c1 = min(r1 + margin, shape[0]), min(c1 + margin, shape[1])
    return Window(c0, r0, c1 - c0, r1 - r0)


def empty_stats(n: int, t: int) -> dict[str, np.ndarray]:
    """Raw statistics (see ``measure_windows``) of ``n`` parcels and ``t`` dates before any is measured."""
    stats = {name: np.full((n, t), np.nan) for name in PER_DATE_STATS}
    stats.update({name: np.full(n, np.nan) for name in PER_PARCEL_STATS})
    stats["read_error"] = np.zeros(n, dtype=bool)
    stats["read_failed"] = np.zeros(n, dtype=bool)
    stats["context_failed"] = np.zeros(n, dtype=bool)
    stats["read_failures"] = failure_table(())
    return stats


def failure_table(failures: Iterable[Sequence[str | int]]) -> np.ndarray:
    """Read failures (scene id, file, message, parcels that lost a clear observation to it) as ``measure_windows``'
    ``read_failures``: one per scene and file (the first message in sort order: GDAL's words differ by the block that
    failed; the parcels summed over the windows, each of which holds its own parcels), sorted."""
    merged: dict[tuple[str, str], list] = {}
    for scene, path, message, parcels in sorted((*map(str, f[:3]), int(f[3])) for f in failures):
        merged.setdefault((scene, path), [message, 0])[1] += parcels
    return np.array([(*key, message, parcels) for key, (message, parcels) in merged.items()],
                    dtype=object).reshape(-1, 4)


def assemble_measurements(
    geoms: np.ndarray, imagery: Imagery, stats: Mapping[str, np.ndarray], margins: AreaMargins
) -> tuple[SeasonMeasurements, np.ndarray]:
    """Every parcel's ``SeasonMeasurements`` from the raw statistics of ``measure_windows``; polygon areas planar in
    each parcel's own UTM zone (``utm_area_m2``), whatever the imagery's CRS; cultivated-area intervals widened by
    the model's ``margins`` for each parcel's area (``widened``).

    Returns:
        The measurements and a mask of parcels wholly outside the imagery.
    """
    area_m2 = utm_area_m2(geoms, imagery.crs)
    area_ha = np.where(usable_geometries(geoms), area_m2 / M2_PER_HA, np.nan)  # no outline read: no area
    low, high = widened(stats["frac"], stats["low"], stats["high"], margins.at(area_ha) * stats["mixed"])
    inside = np.nan_to_num(stats["inside"], nan=0.0)
    outside = (inside <= 0.0) & usable_geometries(geoms)
    measurements = SeasonMeasurements(
        dates=tuple(scene.acquired.date() for scene in imagery.scenes),
        polygon_area_ha=area_ha,
        inside_share=np.clip(inside, 0.0, 1.0),
        clear_share=stats["clear"],
        ndvi_mean=stats["ndvi"],
        ndvi_std=stats["std"],
        crop_ndvi_mean=stats["crop"],
        crop_ndvi_std=stats["crop_std"],
        ndmi_mean=stats["ndmi"],
        evi_mean=stats["evi"],
        cultivated_fraction=stats["frac"],
        cultivated_fraction_low=low,
        cultivated_fraction_high=high,
        product=stats["product"],
        read_error=stats["read_error"],
        read_failures=tuple(tuple(failure) for failure in stats["read_failures"]),
        snow_share=stats["snow"],
        snow_unmasked_share=stats["snow_unmasked"],
    )
    return measurements, outside


def plan_windows(geoms: np.ndarray, imagery: Imagery, chunk_px: int) -> list[tuple[Window, np.ndarray]]:
    """Group parcels by the chunk their centre falls in; one window per group.

    Each window is the union of its parcels' pixel bounding boxes, clipped to the grid, so a
    parcel always lies whole in its window; only a model's context (``context_window``) is read beyond it.
    """
    height, width = imagery.shape
    usable = usable_geometries(geoms)
    index = np.flatnonzero(usable)
    if index.size == 0:
        return []
    bounds = shapely.bounds(geoms[index])
    inverse = ~imagery.transform
    cols_a, rows_a = inverse @ (bounds[:, 0], bounds[:, 1])
    cols_b, rows_b = inverse @ (bounds[:, 2], bounds[:, 3])
    row0 = np.floor(np.minimum(rows_a, rows_b)).astype(np.int64)
    row1 = np.ceil(np.maximum(rows_a, rows_b)).astype(np.int64)
    col0 = np.floor(np.minimum(cols_a, cols_b)).astype(np.int64)
    col1 = np.ceil(np.maximum(cols_a, cols_b)).astype(np.int64)
    overlaps = (row1 > 0) & (row0 < height) & (col1 > 0) & (col0 < width)
    index, row0, row1, col0, col1 = (a[overlaps] for a in (index, row0, row1, col0, col1))
    # The (row, column) chunk pair, not one flattened number: a centre off the grid (a parcel partly outside it) has
    # a column chunk below 0 or past the last, which a flattened key would carry into another row's chunks.
    chunk = np.column_stack(((row0 + row1) // 2 // chunk_px, (col0 + col1) // 2 // chunk_px))
    order = np.lexsort((chunk[:, 1], chunk[:, 0]))
    windows = []
    for group in np.split(order, np.flatnonzero(np.any(np.diff(chunk[order], axis=0) != 0, axis=1)) + 1):
        if group.size == 0:
            continue
        r0, c0 = max(int(row0[group].min()), 0), max(int(col0[group].min()), 0)
        r1, c1 = min(int(row1[group].max()), height), min(int(col1[group].max()), width)
        windows.append((Window(c0, r0, c1 - c0, r1 - r0), index[group]))
    return windows


def output_extent(geoms: np.ndarray, imagery: Imagery) -> Window | None:
    """The window of the grid the raster outputs cover: every parcel's, None when no parcel overlaps."""
    # One chunk as large as the grid: (nearly always) one window holding every parcel.
    windows = [window for window, _ in plan_windows(geoms, imagery, max(imagery.shape))]
    return union(*windows) if windows else None


def cultivated_fractions(
    coverage: Coverage, probability: np.ndarray, thresholds: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cultivated share of each parcel: the estimate and a (low, high) interval before the model's margin
    (``widened``).

    The estimate is the weighted share of cells the model calls cropland (p >= 0.5), cells
    weighted by the square of their coverage fraction: a cell mostly inside the parcel speaks
    for it, an edge cell is mostly the neighbour's land mixed in. The interval spans the same
    share at the stricter cut thresholds[1] and the looser cut thresholds[0] (the model's
    doubt) and the share with plain coverage weights (the doubt about mixed edge cells), within 0-1.
    Its top reaches the share of cells without a probability (never seen clear): unseen, they may all be crop, as
    the part of a parcel off the imagery may (``derive_signals``).
    """
    p = probability[coverage.row, coverage.col].astype(np.float64)
    known = np.isfinite(p)
    p = np.where(known, p, 0.0)

    def share(cut: float, power: int) -> np.ndarray:
        weight = np.where(known, coverage.fraction**power, 0.0)
        n = coverage.n_parcels
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(coverage.parcel, weight * (p >= cut), minlength=n) / np.bincount(
                coverage.parcel, weight, minlength=n
            )

    estimate, plain = share(CROPLAND_CUT, 2), share(CROPLAND_CUT, 1)
    low = np.clip(np.fmin(share(thresholds[1], 2), np.fmin(plain, estimate)), 0.0, 1.0)
    high = np.clip(np.fmax(share(thresholds[0], 2), np.fmax(plain, estimate)), 0.0, 1.0)
    # A parcel clouded on every date but a few cells was called bare at 1.0 on those, its interval 0-0.02 of a wheat
    # field: the cells never seen clear are as unseen as cells off the imagery.
    with np.errstate(invalid="ignore", divide="ignore"):
        seen = np.bincount(coverage.parcel, np.where(known, coverage.fraction, 0.0), minlength=coverage.n_parcels) / (
            np.bincount(coverage.parcel, coverage.fraction, minlength=coverage.n_parcels))
    return estimate, low, high * seen + (1.0 - seen)


def widened(estimate: np.ndarray, low: np.ndarray, high: np.ndarray,
            margin: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An interval of ``cultivated_fractions`` widened to the estimate -/+ ``margin`` within 0-1: the model's margin
    for the parcel's size (calibrated per model on a held-out scene: ``farmcredit.margins``) x its
    ``mixed_cell_share``, the doubt of its edge cells the probability cuts leave out. Apart from measuring: it needs
    the parcel's area in its UTM zone, which ``assemble_measurements`` works out, and a batch's partitions, whose ids
    leave the margins out (``batch.partitions.measuring_key``), outlive a margin calibrated anew."""
    return (np.clip(np.fmin(low, estimate - margin), 0.0, 1.0), np.clip(np.fmax(high, estimate + margin), 0.0, 1.0))


def mixed_cell_share(coverage: Coverage) -> np.ndarray:
    """Per parcel, the share of its area that lies in cells it only partly covers (its edge cells)."""
    n = coverage.n_parcels
    edge = np.where(coverage.fraction < 1.0 - 1e-9, coverage.fraction, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(coverage.parcel, edge, minlength=n) / np.bincount(coverage.parcel, coverage.fraction,
                                                                             minlength=n)


def _season_series(parcel_ids: pd.Series, measurements: ParcelMeasurements) -> pd.DataFrame:
    """Per parcel and date (long format, parcel-major): clear share, NDVI mean and spread over the parcel, and over its
    cropland (``ParcelMeasurements.cropland_ndvi``: the parcel's where none was clear), which health and yield read.
    Parcels sharing an id (``DUPLICATE_PARCEL_ID``) are left out: under one id, their series could not be told
    apart."""
    n, t = measurements.ndvi_mean.shape
    crop_ndvi_mean, crop_ndvi_std = measurements.cropland_ndvi()
    series = pd.DataFrame({
        "parcel_id": np.repeat(parcel_ids.to_numpy(), t),
        "date": pd.to_datetime(np.tile(np.array(measurements.dates, dtype="datetime64[D]"), n)),
        "clear_share": measurements.clear_share.ravel(),
        "ndvi_mean": measurements.ndvi_mean.ravel(),
        "ndvi_std": measurements.ndvi_std.ravel(),
        "crop_ndvi_mean": crop_ndvi_mean.ravel(),
        "crop_ndvi_std": crop_ndvi_std.ravel(),
    })
    return series[~np.repeat(parcel_ids.duplicated(keep=False).to_numpy(), t)].reset_index(drop=True)


def _has_error(codes: list[str]) -> bool:
    return any(REASONS[c].effect == "error" for c in codes)


def _column_order(frame: pd.DataFrame) -> list[str]:
    first = [
        "parcel_id", "borrower_id", "status", "decision", "loan_limit", "risk_grade", "reason",
        "declared_crop", "crop", "crop_confidence", "declared_crop_probability", "declared_crop_contradicted",
        "priced_crop", "declared_area_ha", "polygon_area_ha", "cultivated_area_ha", "cultivated_area_low_ha",
        "cultivated_area_high_ha",
        "cultivated_fraction",
    ]
    rest = [c for c in frame.columns if c not in first and c != "geometry"]
    return first + rest + ["geometry"]
