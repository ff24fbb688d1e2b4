"""Audit: the run record (``run.json``) and one record per decision (``decisions.jsonl``)."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from farmcredit.config import Config
from farmcredit.credit.borrowers import decides, reason_parcels
from farmcredit.credit.limit import DECISIONS, LIMIT_STEPS, STATUSES, amounts
from farmcredit.credit.overlap import LISTED_PARTNERS, Overlaps
from farmcredit.credit.risk import risk_features
from farmcredit.hashing import files_sha256, zip_member
from farmcredit.imagery import Imagery, Scene
from farmcredit.imagery.fetch import read_manifest
from farmcredit.margins import model_margins
from farmcredit.reasons import REASONS, RISK_FACTOR_CODES, sentence
from farmcredit.version import code_version

logger = logging.getLogger(__name__)

FULL_HASH_LIMIT = 64 * 1024 * 1024
HEADER_BYTES = 1024 * 1024


# A Shapefile's attributes, index, CRS and encoding live beside its .shp.
SHAPEFILE_SIDECARS = (".dbf", ".shx", ".prj", ".cpg")
# The run's season on every row of the results and borrowers tables (farmcredit.outputs), so that seasons stacked into
# one table can be told apart (credit report refuses such a stack).
SEASON_COLUMNS = ("season_start", "season_end")


def file_fingerprint(path: str | Path, known: dict[str, dict] | None = None) -> dict:
    """SHA-256 of a local file; for files over 64 MiB, of its first MiB plus its size. A Shapefile's hash covers its
    sidecars too (named in ``sidecars``; over 64 MiB in all, each one's first MiB), so a changed declaration in its
    .dbf changes it. A folder (of a Shapefile, an OpenFileGDB .gdb) hashes its files by relative path and contents
    (``files``: how many; over 64 MiB in all, each one's first MiB). A file inside a zip (GDAL's ``/vsizip/``: a SAFE
    product read in place) is recorded with its ``member`` path and the zip's fingerprint (``archive``).

    Local paths are recorded absolute; remote paths (URLs) as given, without a hash; a local file that cannot be read
    (no read permission) is warned of and recorded with the system's message (``error``) in place of its hash.
    ``known``: fingerprints taken
    so far, by absolute path, reused and added to (a stack's bands, a SAFE zip's members: one file hashed once).
    """
    path_text = str(path)
    if "://" in path_text:
        return {"path": path_text}
    archive = zip_member(path_text)
    if archive is not None:
        return {"path": path_text, "member": archive[1], "archive": file_fingerprint(archive[0], known)}
    local = Path(absolute_path(path_text))
    if known is not None and str(local) in known:
        return known[str(local)]
    try:
        record = _folder_fingerprint(local) if local.is_dir() else _local_fingerprint(local)
    except OSError as error:  # a band file GDAL could not open either (its parcels skip its date): the run goes on
        message = error.strerror or str(error)
        logger.warning("%s: cannot be read to hash it for run.json (%s): it is recorded with this error in place of "
                       "its sha256; give the user running farmcredit read permission on it", local, message)
        record = {"path": str(local), "error": message}
    if known is not None:
        known[str(local)] = record
    return record


def absolute_path(path: str | Path) -> str:
    """A local path made absolute against the working folder (which the audit record does not name); a URL or GDAL's
    virtual path (``/vsizip/...``) as given."""
    text = str(path)
    return text if "://" in text or text.startswith("/vsi") else os.path.abspath(text)


def _local_fingerprint(local: Path) -> dict:
    """``file_fingerprint`` of a local file (absolute; a Shapefile with its sidecars): only its path when missing."""
    if not local.is_file():
        return {"path": str(local)}
    sidecars = _sidecars(local)
    size = local.stat().st_size
    digest = hashlib.sha256()
    total = size + sum(member.stat().st_size for member in sidecars)
    kind = "sha256" if total <= FULL_HASH_LIMIT else "sha256-first-mib"
    for member in (local, *sidecars):
        if member != local:  # the .shp alone hashes as any file; each sidecar after its name
            digest.update(f"\0{member.suffix.lower()}\0".encode())
        with member.open("rb") as handle:
            if kind == "sha256":
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            else:
                digest.update(handle.read(HEADER_BYTES))
    record = {"path": str(local), "bytes": size, kind: digest.hexdigest()}
    return record | ({"sidecars": [member.name for member in sidecars]} if sidecars else {})


def _folder_fingerprint(folder: Path) -> dict:
    """``file_fingerprint`` of a folder (absolute): its files by relative path and contents, its bytes in all."""
    files = [member for member in folder.rglob("*") if member.is_file()]
    size = sum(member.stat().st_size for member in files)
    kind = "sha256" if size <= FULL_HASH_LIMIT else "sha256-first-mib"
    digest = files_sha256(folder, files, None if kind == "sha256" else HEADER_BYTES)
    return {"path": str(folder), "bytes": size, kind: digest, "files": len(files)}


def _sidecars(path: Path) -> list[Path]:
    """The sidecar files of a Shapefile (same stem, any case of the extension), in ``SHAPEFILE_SIDECARS`` order."""
    if path.suffix.lower() != ".shp":
        return []
    beside = {member.suffix.lower(): member for member in path.parent.glob(f"{glob.escape(path.stem)}.*")
              if member.is_file() and member.stem == path.stem}
    return [beside[suffix] for suffix in SHAPEFILE_SIDECARS if suffix in beside]


def build_run_record(
    parcels_fingerprint: dict | None,
    imagery: Imagery,
    config: Config,
    models: dict,
    parcels: pd.DataFrame,
    borrowers: pd.DataFrame,
    dates: Sequence[date],
    clear: np.ndarray,
    timings: dict[str, float],
    read_failures: Sequence[tuple[str, str, str, int]] = (),
    parcels_layer: str | None = None,
    scenes: list[dict] | None = None,
    season: tuple[date, date] | None = None,
    parcels_read_crs: CRS | None = None,
    parcels_crs: str | None = None,
    hazy_dates: Sequence[dict] = (),
    parcels_datum: str = "wgs84",
    *,
    snowed: np.ndarray | None = None,
    snow_called_clear: np.ndarray | None = None,
    datum_check: dict | None = None,
) -> dict:
    """Assemble the audit record of a run (JSON-serialisable); ``parcels_fingerprint``: the parcel file's
    ``file_fingerprint`` taken when it was read (None: an in-memory table); ``clear``: per parcel and date of ``dates``,
    whether the date was clear over it (``ParcelMeasurements.clear``, all False for a parcel in error), counted by
    date (``season_clear``), as are, alike, ``snowed``, whether snow is what hid it (``SeasonMeasurements.snowed``),
    and ``snow_called_clear``, whether pixels of it read as snow though the cloud mask called them clear (None: none
    did); ``read_failures``: the files that failed
    to decode where parcels were read (scene id, file, message, parcels that lost a clear observation to it: 0 where
    another product of the date made up for it); ``parcels_layer``: the layer read from a parcel file
    of several; ``scenes``: the scenes' ``scene_record`` taken when they were opened (else taken now); ``season``: the
    season asked for (``--season``; None: every date given), beside ``dates``, those read, which may be fewer;
    ``parcels_read_crs``: the CRS the parcels were read in, as declared or given; ``parcels_crs``: the CRS given for
    them (``--parcels-crs``), as given, if any. The same file read in two CRSs puts its parcels in two places, so the
    record names both; ``parcels_datum`` likewise: how their longitude and latitude were drawn (``--parcels-datum``:
    GCJ-02 and BD-09 outlines are moved back to WGS 84), and ``datum_check`` how well they fit the imagery in each datum
    (``DatumCheck.record``; None where not checked: no parcel in China). ``hazy_dates``: the imagery's dates that read
    hazy though their SCL called them clear (``HazyDate.record``: date, blue, season_blue), listed under the imagery."""
    known: dict[str, dict] = {}
    imagery_record = {
        "source": absolute_path(imagery.source),
        "crs": imagery.crs.to_string(),
        # Across and down at the grid's centre: the models expect Sentinel-2's 10 m (pipeline.check_ground_pixels).
        "ground_pixel_m": [round(size, 3) for size in imagery.ground_pixel_m()],
        "clouds_masked": imagery.has_scl,  # every scene has SCL (else see each scene's files)
        "scenes": scenes if scenes is not None else [scene_record(scene, known) for scene in imagery.scenes],
        "unopened_files": [{"scene_id": scene, "band": band, "file": absolute_path(path), "message": message}
                           for scene, band, path, message in imagery.unopened],
        "left_out_scenes": [{"scene_id": scene, "reason": why} for scene, why in imagery.left_out],
        "unread_folders": [{"folder": absolute_path(folder), "message": message}
                           for folder, message in imagery.unread_folders],
        "hazy_dates": list(hazy_dates),
    }
    manifest = read_manifest(imagery.source)
    if manifest is not None:
        # What `farmcredit fetch` downloaded into the folder: dates, ids, cloud cover, bytes.
        imagery_record["fetch"] = manifest
        unfinished = manifest.get("unfinished_fetch") if isinstance(manifest, dict) else None
        if isinstance(unfinished, dict):
            logger.warning("%s: %s (it began %s); run it again to finish it", imagery.source,
                           unfinished.get("note", "a fetch into this folder did not finish"),
                           unfinished.get("started", "at an unknown time"))
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code": code_version(),
        "inputs": {
            "parcels": {**(parcels_fingerprint or {"path": "<in-memory GeoDataFrame>"}),
                        **({"layer": parcels_layer} if parcels_layer else {}),
                        "crs": None if parcels_read_crs is None else crs_name(parcels_read_crs),
                        "parcels_crs": parcels_crs, "parcels_datum": parcels_datum, "datum_check": datum_check},
            "imagery": imagery_record,
        },
        "season_dates": [d.isoformat() for d in dates],
        "season_requested": None if season is None else f"{season[0].isoformat()}/{season[1].isoformat()}",
        "season_clear": _season_clear(dates, clear, int((parcels["status"] != "error").sum()),
                                      np.zeros_like(clear) if snowed is None else snowed,
                                      np.zeros_like(clear) if snow_called_clear is None else snow_called_clear),
        "models": models,
        "config": {"hash": config.config_hash(), "values": config.model_dump(mode="json")},
        "counts": {
            "parcels": len(parcels),
            # Every status and decision, a zero too, in a fixed order: value_counts left out a zero (an all-error run
            # had no "approve") and ordered them by frequency.
            "status": _counts(parcels["status"], STATUSES),
            "decision": _counts(parcels["decision"], DECISIONS),
            "borrowers": len(borrowers),
            # Apart: a referred borrower's limit is only offered once a person clears it.
            "approved_limit": _limit_total(borrowers, "approve"),
            "referred_limit": _limit_total(borrowers, "refer"),
        },
        "read_failures": [{"scene_id": scene, "file": absolute_path(path), "message": message, "cost_parcels": parcels}
                          for scene, path, message, parcels in read_failures],
        "timings_s": {name: round(seconds, 3) for name, seconds in timings.items()},
    }


def area_interval_record(model: object) -> dict:
    """The cultivated-area interval the cropland ``model`` applied (``pipeline.widened``), as run.json lists it beside
    the model: its margins (``mixed_margin``, one per parcel size of ``area_bands_ha``; ``sizes`` in words) and
    ``level``, the share of parcels they were fitted to hold, as its card says (null where it does not: the rule's are
    its config's, ``cropland_rule``; the packaged ones were fitted at 0.8). The config lists the rule's margins in any
    run; a CNN's are its card's, which it listed nowhere."""
    margins = model_margins(model)
    card = getattr(model, "card", None)
    metrics = card.metrics if card is not None else {}
    # A calibration's own record (``farmcredit calibrate``), else the packaged card's.
    level = next((fit["level"] for fit in (metrics.get("calibration"), metrics.get("area_interval"))
                  if isinstance(fit, dict) and "level" in fit), None)
    return {"level": level, **margins.written(), "sizes": margins.labels()}


def _season_clear(dates: Sequence[date], clear: np.ndarray, measured: int, snowed: np.ndarray,
                  snow_called_clear: np.ndarray) -> dict:
    """How many of the ``measured`` parcels (those not in error) each date was clear over (``clear``: per parcel and
    date), and what share of them (null where none was measured): a date clouded over the portfolio shows as 0; how
    many snow hid (``parcels_snow``, of ``snowed``), apart from cloud, and how many had snow their cloud mask called
    clear, masked as snow (``parcels_snow_called_clear``, of ``snow_called_clear``)."""
    counts = zip(dates, clear.sum(axis=0), snowed.sum(axis=0), snow_called_clear.sum(axis=0), strict=True)
    return {"parcels_measured": measured,
            "dates": [{"date": day.isoformat(), "parcels_clear": int(count),
                       "share": round(int(count) / measured, 4) if measured else None,
                       "parcels_snow": int(snow), "parcels_snow_called_clear": int(unmasked)}
                      for day, count, snow, unmasked in counts]}


def crs_name(crs: CRS) -> str:
    """``crs`` by its authority code (``"EPSG:4547"``) where one names it exactly, else as WKT."""
    authority = crs.to_authority(min_confidence=100)
    return ":".join(authority) if authority else crs.to_wkt()


def _counts(values: pd.Series, names: Sequence[str]) -> dict[str, int]:
    """How many of ``values`` are each of ``names``, in their order, 0 for those none is."""
    return {name: int((values == name).sum()) for name in names}


def _limit_total(borrowers: pd.DataFrame, decision: str) -> float:
    """The limits of the borrowers given ``decision`` (currency, whole cents) summed to the cent: added in floating
    point, limits of a ``rounding_step`` under 1 came to 264406.67000000004."""
    return round(math.fsum(borrowers["loan_limit"][borrowers["decision"] == decision]), 2)


def scene_record(scene: Scene, known: dict[str, dict] | None = None) -> dict:
    """A scene's id, date, cloud cover, offset and, per band, its file's fingerprint with the band's 1-based index in
    the file (``band_index``: a stack's ``--bands``); a mosaic lists its parts instead of files. ``known``: as
    ``file_fingerprint`` takes it (one for the scenes of a run: a stack's dates share its file)."""
    known = {} if known is None else known
    record = {
        "scene_id": scene.scene_id,
        "acquired": scene.acquired.isoformat(),
        "cloud_cover": scene.cloud_cover,
        "dn_offset": scene.dn_offset,
    }
    if scene.parts:
        return record | {"parts": [scene_record(part, known) for part in scene.parts]}
    return record | {"files": {band: {**file_fingerprint(path, known), "band_index": index}
                               for band, (path, index) in sorted(scene.band_paths.items())}}


SIGNAL_COLUMNS = (
    "cultivated_area_ha", "cultivated_area_low_ha", "cultivated_area_high_ha", "cultivated_fraction", "crop",
    "crop_confidence", "declared_crop_probability", "declared_crop_contradicted", "priced_crop", "ndvi_peak",
    "ndvi_peak_date", "ndvi_integral", "ndvi_uniformity", "health_index", "health_reference", "clear_observations",
    "yield_p10_t_ha", "yield_p50_t_ha", "relative_yield", "expected_revenue",
)
# Where a parcel's next limit_arithmetic step begins ("; name = "), not a "; " inside it (min(a; b)).
PARCEL_STEP_START = re.compile(f"; (?=(?:{'|'.join(LIMIT_STEPS)}) = )")


def decision_records(
    parcels: gpd.GeoDataFrame, record: dict, overlaps: Overlaps, products: np.ndarray, clear: np.ndarray,
    scenes: Sequence[Scene],
) -> Iterator[dict]:
    """One audit record per parcel decision: inputs, signals, risk features, arithmetic, reasons with what each took
    off the limit (``taken_off``, the parcel's ``reason_amounts``), provenance, and the imagery read over the parcel
    (``parcel_imagery``: not the run's, which run.json lists and a portfolio of many tiles makes long).

    ``overlaps``: which parcels overlap which (``Assessment.overlaps``): a record lists the first ``LISTED_PARTNERS``
    of its parcel's by id, in id order (not split from the tables' ``overlaps_parcels`` text, which an id holding
    ``;`` would cut), and counts them all (``overlaps_count``; the others of the same outline share its
    ``geometry_wkb_sha256``). ``products``: per parcel and date of ``scenes``, ``ParcelMeasurements.product``;
    ``clear``: alike, whether the date was clear over the parcel (``Assessment.clear``), listed as ``clear_dates``
    (ISO dates of ``record``'s ``season_dates``): the dates its signals rest on.
    Holds no timestamp, so the same inputs, config, models and code give identical records.
    """
    features = risk_features(parcels, record["models"]["risk"]["declared_slack_ha"])  # as the scorecard built them
    # The outline normalised (ring order and orientation, start vertex): the same land hashes alike from a Shapefile,
    # whose rings turn the other way, and from GeoJSON.
    geometry_hashes = [
        hashlib.sha256(shapely.to_wkb(shapely.normalize(_single(g)), hex=False)).hexdigest() if g is not None else None
        for g in parcels.geometry
    ]
    partners, n_partners = overlaps.listed_ids(parcels["parcel_id"], LISTED_PARTNERS), overlaps.counts()
    regions = parcels["region"] if "region" in parcels else pd.Series(None, index=parcels.index, dtype=object)
    # The area as the borrower declared it, where that was in mu (declared_area_ha is it converted).
    declared_mu = parcels["declared_area_mu"].tolist() if "declared_area_mu" in parcels else None
    feature_rows = features.itertuples(index=False)
    imagery = parcel_imagery(products, scenes)
    days = record["season_dates"]
    for k, row in enumerate(parcels.itertuples(index=False)):
        yield {
            "parcel_id": row.parcel_id,
            "borrower_id": row.borrower_id,
            "decision": row.decision,
            "status": row.status,
            "loan_limit": row.loan_limit,
            # What a review of its declaration can lend (its borrower's arithmetic cites it); null where none.
            "honest_limit": None if np.isnan(row.honest_limit) else row.honest_limit,
            "risk_grade": row.risk_grade,
            "probability_of_default": row.probability_of_default,
            "reasons": _reasons(row.reason_all, row.reason_amounts, row.risk_factors),
            "limit_arithmetic": PARCEL_STEP_START.split(row.limit_arithmetic),
            "overlaps_parcels": partners[k],
            "overlaps_count": int(n_partners[k]),
            "inputs": {
                "declared_crop": row.declared_crop,
                "declared_area_ha": row.declared_area_ha,
                **({"declared_area_mu": declared_mu[k]} if declared_mu is not None else {}),
                "region": regions.iloc[k],
                "geometry_wkb_sha256": geometry_hashes[k],
            },
            "signals": {name: getattr(row, name) for name in SIGNAL_COLUMNS},
            "risk_features": next(feature_rows)._asdict(),
            **_provenance(record),
            "imagery": next(imagery),
            "clear_dates": [days[t] for t in np.flatnonzero(clear[k])],
        }


def parcel_imagery(products: np.ndarray, scenes: Sequence[Scene]) -> Iterator[list[str]]:
    """Per parcel (row of ``products``, ``ParcelMeasurements.product``): ``id@date`` of the product each date of
    ``scenes`` was read from over it, by date; a date whose imagery does not cover it is left out."""
    labels = [[f"{part.scene_id}@{part.acquired.date().isoformat()}" for part in scene.parts or (scene,)]
              for scene in scenes]
    for row in products:
        yield [labels[t][int(row[t])] for t in np.flatnonzero(np.isfinite(row))]


def _single(geometry: shapely.Geometry) -> shapely.Geometry:
    """A one-part multi-geometry as its part: QGIS exports a parcel as a MultiPolygon, a Shapefile reads it back as a
    Polygon, and the land is the same."""
    parts = shapely.get_num_geometries(geometry)
    return shapely.get_geometry(geometry, 0) if parts == 1 and geometry.geom_type.startswith("Multi") else geometry


def borrower_decision_records(borrowers: gpd.GeoDataFrame, parcels: pd.DataFrame, record: dict) -> Iterator[dict]:
    """One audit record per borrower decision: its parcels, the limit's arithmetic, reasons, provenance (the
    parcels' own records, in ``decision_records``, name the imagery read over each). Holds no timestamp. Each reason
    says what it took off the borrower's limit (``taken_off``, the borrower's ``reason_amounts``: what it took off its
    parcels, summed, and what the cap and the minimum loan took).

    Parcel ids are listed from ``parcels`` (in id order, as ``aggregate_borrowers`` takes them), not split from the
    borrowers' ``;``-joined text, which an id holding ``;`` would cut. Each reason names the parcels it comes from
    (``reason_parcels``: none for the borrower's own, cap or minimum loan), as ``reason_text`` does where not all do.
    """
    taken = parcels[["parcel_id", "borrower_id", "decision", "reason_all"]].sort_values("parcel_id", kind="stable")
    # One pass over four columns: grouping the whole parcel frame took 10 s at 100,000 parcels (43,000 borrowers).
    members: dict[str, list[tuple[str, str, list[str]]]] = {}
    alone: list[tuple[str, str, list[str]]] = []
    for borrower, pid, decision, codes in zip(taken["borrower_id"], taken["parcel_id"], taken["decision"],
                                              taken["reason_all"], strict=True):
        parcel = (pid, decision, codes.split(";"))
        if pd.isna(borrower):
            alone.append(parcel)
        else:
            members.setdefault(borrower, []).append(parcel)
    # A parcel without a borrower id is a borrower of its own, after the others in parcel id order, as here.
    alone_in_order = iter(alone)
    for row in borrowers.itertuples(index=False):
        lent = members[row.borrower_id] if pd.notna(row.borrower_id) else [next(alone_in_order)]
        ids, decisions, codes = (list(column) for column in zip(*lent, strict=True))
        yield {
            "borrower_id": row.borrower_id,
            "parcel_ids": ids,
            "decision": row.decision,
            # Every parcel: no parcel's own decision is the borrower's (its total fell under the minimum loan).
            "decided_by": ids if row.decided_by == ";".join(ids) else [
                pid for pid, decision, parcel in zip(ids, decisions, codes, strict=True)
                if decides(decision, parcel, row.decision)],
            "loan_limit": row.loan_limit,
            "reasons": [{**reason, "parcel_ids": reason_parcels(reason["code"], ids, decisions, codes)}
                        for reason in _reasons(row.reason_all, row.reason_amounts)],
            # Steps split where the next begins, never inside the list of parcels.
            "limit_arithmetic": re.split(r"; (?=capped = |rounded = |declared honestly = |under the minimum loan)",
                                        row.limit_arithmetic),
            **_provenance(record),
        }


def _reasons(codes: str, amounts_taken: str, risk_factors: str = "") -> list[dict]:
    """Each code of a ``;``-joined list with its effect, sentence and what it took off the limit (``taken_off``, in the
    run's currency, to the cent, 0 where it took nothing), read from its row's ``reason_amounts`` (``amounts_taken``);
    a parcel's grade (``RISK_FACTOR_CODES``) with the features that raised its PD most (``factors``: feature, value as
    scored, log-odds points, and in words), read from its ``risk_factors``, its sentence naming them."""
    taken_off = amounts(amounts_taken)
    factors = json.loads(risk_factors) if isinstance(risk_factors, str) and risk_factors else []
    words = [factor["words"] for factor in factors]
    return [{"code": c, "effect": REASONS[c].effect, "sentence": sentence(c, words),
             "taken_off": float(taken_off.get(c, 0)), **({"factors": factors} if c in RISK_FACTOR_CODES else {})}
            for c in codes.split(";") if c]


def _provenance(record: dict) -> dict:
    """What every decision record names of its run: code, config and model hashes, parcel file (its hashes, layer and
    the CRS it was read in: a file without one read in another CRS is the same bytes, other parcels)."""
    return {
        "code": record["code"],
        "config_hash": record["config"]["hash"],
        # The cropland model with its devices and precisions; run.json alone lists its area interval and counts the
        # partitions of each (batch).
        "models": {"cropland": {k: v for k, v in record["models"]["cropland"].items()
                                if k not in ("inference", "area_interval")},
                   "risk_hash": record["models"]["risk"]["hash"]},
        "parcels_file_fingerprint": {k: v for k, v in record["inputs"]["parcels"].items()
                                     if k.startswith("sha256") or k in ("layer", "crs")},
    }


def run_currency(record: dict) -> str:
    """The currency of a run's money columns, from its audit record (``run.json``), upper-cased (a run before codes
    were read so may say ``cny``); empty when it does not say."""
    return str(record.get("config", {}).get("values", {}).get("credit", {}).get("currency", "")).strip().upper()


def run_id(record: dict) -> str:
    """A run's short id, as the credit report and the previews print it: when its audit record (``run.json``) was
    created, in UTC, and its configuration's first 8 hash digits, e.g. ``20261202T094759Z-bf78e9ee``; "undated" where
    ``created`` is no time with a zone.

    >>> run_id({"created": "2026-12-02T17:47:59+08:00", "config": {"hash": "bf78e9eea15bf87c"}})
    '20261202T094759Z-bf78e9ee'
    """
    try:
        made = datetime.fromisoformat(str(record.get("created") or ""))
    except ValueError:
        made = None
    stamp = made.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") if made and made.tzinfo else "undated"
    config = record.get("config")
    config_hash = re.sub(r"[^0-9A-Za-z]", "", str(config.get("hash") or "") if isinstance(config, dict) else "")
    return stamp + (f"-{config_hash[:8]}" if config_hash else "")


def write_decision_records(records: Iterable[dict], path: Path) -> Path:
    """Write decision records as JSON lines, UTF-8 (张三 as written, not escaped; NaN as null, dates as ISO text)."""
    with path.open("w", encoding="utf-8") as handle:
        for item in records:
            handle.write(json.dumps(_plain(item), sort_keys=True, ensure_ascii=False) + "\n")
    return path


def _plain(value: object) -> object:
    """JSON-safe copy: NaN/NaT -> None, numpy scalars -> Python, timestamps -> ISO dates."""
    # Most values are plain already: their exact types are told first (a subclass, np.float64 say, goes on below).
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if not pd.isna(value) else None
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NaT:
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return None if pd.isna(value) else str(value)
