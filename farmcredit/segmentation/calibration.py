"""Calibrate a CNN on a labelled scene it did not train on (what ``farmcredit calibrate`` does).

Two things are fitted and written into the weights' card (the weights are untouched): Platt
scaling of the crop probability, on the scene's labelled pixels, with a reliability table
uncalibrated and calibrated; and, on the scene's parcels with their true cultivated area, the
cultivated-area interval's ``mixed_margin`` by parcel size (split-conformal per size band,
``evaluation.mixed_margin_for``).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from farmcredit.errors import InputError
from farmcredit.evaluation import area_report, fits_alone, mixed_margin_for
from farmcredit.imagery.level import one_warning_per_source
from farmcredit.locking import can_write_in
from farmcredit.margins import AreaMargins
from farmcredit.segmentation.card import (
    AREA_INTERVAL_LEVEL,
    DEFAULT_WEIGHTS,
    ModelCard,
    card_path,
    file_sha256,
    uncalibrated,
    write_card,
)
from farmcredit.segmentation.cnn import CnnCroplandModel
from farmcredit.segmentation.data import IMAGERY_NAMES, LabelledScene, load_labelled_scene
from farmcredit.segmentation.metrics import fit_calibration, reliability_table, scene_pixels
from farmcredit.segmentation.rule import CroplandModel
from farmcredit.spreadsheet import read_utf8_csv
from farmcredit.text import some

# A scene holding these (as ``farmcredit simulate`` writes) also gets the area interval's margin fitted.
PARCELS_FILE, TRUTH_FILE = "parcels.geojson", "truth.csv"
TRUTH_COLUMNS = ("parcel_id", "polygon_area_ha", "true_cultivated_area_ha")
# Labelled pixels of each class a Platt fit needs (of one class only, it fits any probability best at 0 or 1).
MIN_CLASS_PIXELS = 100
# The slopes a Platt fit may scale the crop logit by: past them labels and model disagree beyond calibrating.
PLATT_SLOPES = (0.05, 20.0)


@one_warning_per_source()  # each scene's imagery is read for its pixels, then for its parcels
def calibrate(
    weights: str | Path,
    data: str | Path | Sequence[str | Path],
    out: str | Path | None = None,
    *,
    level: float = AREA_INTERVAL_LEVEL,
    platt_only: bool = False,
    band_layout: Sequence[tuple[date | None, str]] | None = None,
    dn_offset: float | None = None,
    device: str = "auto",
) -> ModelCard:
    """Fit ``weights``' calibration on the labelled scene ``data`` (or several, pooled) and write the card (returned).

    One scene's conditions (clouds, haze, its fields) move the margin it fits: on simulated seasons the
    margin for parcels under 0.1 ha ran 0.065-0.108 from scene to scene, and the shipped model calibrated
    on one scene held 72% of another's parcels; pool scenes for a margin that holds across them.
    ``out``: a .safetensors file to write a calibrated copy to (the weights copied, the card beside; over nothing or
    the same weights); None rewrites the card beside ``weights``. The card's ``metrics["calibration"]`` records the
    scenes, their imagery hashes, the pixels and parcels used, the reliability tables and the model calibrated from
    (its name and calibration); its other metrics, measured with that calibration, move under
    ``metrics["before_calibration"]``, and a model whose calibration changes is renamed (``recalibrated_card``). Each
    scene must hold ``parcels.geojson`` and ``truth.csv`` for the area margin, unless ``platt_only``: then the card has
    no margin (any it had is dropped: it was fitted with the former probabilities), and its intervals leave out the
    doubt of parcel-edge pixels.

    Raises:
        InputError: an ``out`` that is not a writable .safetensors file or holds other weights, the shipped weights
            rewritten in place, a ``level`` outside (0, 1), a scene the weights trained on, labelled pixels with
            fewer than ``MIN_CLASS_PIXELS`` of a class, a Platt fit out of bounds, no parcel truth (unless
            ``platt_only``) or truth unfit to score (``_truth``, ``evaluation.mixed_margin_for``); and what
            ``from_file`` and ``load_labelled_scene`` refuse.
    """
    weights = Path(weights)
    scenes = [Path(data)] if isinstance(data, (str, Path)) else [Path(folder) for folder in data]
    if len({folder.resolve() for folder in scenes}) < len(scenes) or not scenes:
        raise InputError(f"scenes {', '.join(map(str, scenes)) or '(none)'}: give each scene once")
    out = Path(out) if out is not None else weights
    if not 0 < level < 1:
        raise InputError(f"--level {level}: the share of parcels whose true area the interval holds, between 0 and 1")
    if out.suffix != ".safetensors" or out.is_dir() or card_path(out).is_dir():
        raise InputError(f"{out}: the calibrated weights go to a .safetensors file (its card .json beside it)")
    if out.resolve() == DEFAULT_WEIGHTS.resolve():
        raise InputError(f"{weights}: the shipped weights are not rewritten in place; give --out FILE for a "
                         "calibrated copy")
    if out.is_file() and weights.is_file() and file_sha256(out) != file_sha256(weights):
        raise InputError(f"{out}: holds other weights, which a copy of {weights.name} would replace; give --out a new "
                         "file, or remove it first")
    can_write_in(out.absolute().parent)
    for folder in scenes:
        if not (platt_only or has_parcel_truth(folder)):
            raise InputError(f"{folder}: no {PARCELS_FILE} with {TRUTH_FILE} (parcels and their true cultivated "
                             "area, as `farmcredit simulate` writes) to fit the area interval's margin on; give "
                             "scenes with them, or --platt-only (platt_only= in Python) to fit the probabilities "
                             "alone, leaving the model no area margin (its intervals then leave out the doubt of "
                             "parcel-edge pixels, and assess warns)")
    truths = None if platt_only else [_truth(folder) for folder in scenes]  # checked before the work
    model = CnnCroplandModel.from_file(weights, device=device)
    labelled = [load_labelled_scene(folder, band_layout, dn_offset) for folder in scenes]
    hashes = [scene.imagery_sha256() for scene in labelled]
    if len(set(hashes)) < len(hashes):
        twice = [str(folder) for folder, h in zip(scenes, hashes) if hashes.count(h) > 1]
        raise InputError(f"{', '.join(twice)}: the same imagery; give each scene once (pooled twice, it would count "
                         "twice)")
    for folder, imagery_sha256 in zip(scenes, hashes):
        if imagery_sha256 in model.card.training.get("scene_imagery_sha256", ()):
            raise InputError(f"{folder}: the model trained on this scene's imagery, where its probabilities are "
                             "over-confident; calibrate it on a labelled scene it did not train on")
    platt, record = _platt(model, labelled)
    calibration = dict(platt)
    named = ", ".join(map(str, scenes))  # as the warnings name them
    if truths is not None:
        margins, scored = area_margin(_recalibrated(model, platt), scenes, level, band_layout, dn_offset, truths)
        margins = margins.rounded()
        calibration.update(margins.written())
        record.update(parcels=sum(scored), parcels_by_area=list(scored), level=level, **margins.written())
        if thin := [label for label, n in zip(margins.labels(), scored) if not fits_alone(n, level)]:
            record["widest_margin_for"] = thin  # too few parcels to fit alone
        if empty := [label for label, n in zip(margins.labels(), scored) if not n]:
            warnings.warn(f"{named}: no parcels {', '.join(empty)} in the truth: the margin there is the widest of "
                          "the other sizes', which no parcel of that size checked; calibrate on a scene with parcels "
                          "of every size", stacklevel=2)
        if max(margins.margins) > 1:
            warnings.warn(f"{named}: an area margin fitted, {max(margins.margins):.3g}, is over 1 (intervals wider "
                          "than every parcel-edge cell's whole share): a few parcels' truth decides it; check their "
                          "truth", stacklevel=2)
    record = {"scenes": [str(folder.resolve()) for folder in scenes], "imagery_sha256": hashes, **record,
              "calibrated_from": {"name": model.card.name, "calibration": model.card.calibration}}
    card = recalibrated_card(model.card, calibration, record)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.resolve() != weights.resolve():
        shutil.copyfile(weights, out)
    return write_card(card, out)


def recalibrated_card(card: ModelCard, calibration: dict[str, float | list[float]], record: dict) -> ModelCard:
    """``card`` with ``calibration`` and its fit's ``record`` (``metrics["calibration"]``).

    Its metrics were measured with the calibration replaced, whose Platt scaling moved the 0.5 calls and whose margins
    the intervals: they move, whole (an earlier ``before_calibration`` nested in them), under
    ``metrics["before_calibration"]`` with a note, so no figure at the top describes a calibration the model no longer
    has. A card whose calibration this changes (an uncalibrated one, as ``farmcredit train`` leaves it, too) is renamed
    ``<name>+cal-<8 hex of the new calibration>`` (an earlier such suffix replaced), so results (``model_version``) and
    audits tell the model before and after apart; one given the calibration it had keeps its name.
    """
    metrics: dict = {"calibration": record}
    if card.metrics:
        metrics["before_calibration"] = {
            "note": "measured with the calibration this one replaced (metrics.calibration.calibrated_from: Platt a/b "
                    "and area margins), not with the card's: `farmcredit evaluate` the model for its own",
            **card.metrics}
    name = card.name
    if calibration != card.calibration:
        digest = hashlib.sha256(json.dumps(calibration, sort_keys=True).encode()).hexdigest()[:8]
        name = f"{card.uncalibrated_name}+cal-{digest}"
    return replace(card, name=name, calibration=calibration, metrics=metrics)


def _platt(model: CnnCroplandModel, scenes: list[LabelledScene]) -> tuple[dict[str, float], dict]:
    """Platt scaling fitted on the scenes' labelled pixels, pooled, and its record: pixels, reliability uncalibrated
    (the network's own probabilities) and calibrated.

    Raises:
        InputError: fewer than ``MIN_CLASS_PIXELS`` labelled pixels of crop or of non-crop, or a fit whose slope
            is outside ``PLATT_SLOPES`` (the labels and the model disagree past calibrating).
    """
    raw = _recalibrated(model, uncalibrated())
    pixels = [scene_pixels(raw, scene) for scene in scenes]
    probability, cover = (np.concatenate(part) for part in zip(*pixels))
    source = ", ".join(str(scene.source) for scene in scenes)
    crop = int((cover >= 0.5).sum())
    if min(crop, cover.size - crop) < MIN_CLASS_PIXELS:
        raise InputError(f"{source}: {crop} labelled crop and {cover.size - crop} non-crop pixels with a clear "
                         f"date: calibrating needs at least {MIN_CLASS_PIXELS} of each (with one class only, any "
                         "probability fits it best at 0 or 1)")
    platt = fit_calibration(probability, cover)
    if not (PLATT_SLOPES[0] <= platt["a"] <= PLATT_SLOPES[1] and math.isfinite(platt["b"])):
        raise InputError(f"{source}: the Platt fit (a={platt['a']:.4g}, b={platt['b']:.4g}) scales the model's "
                         f"crop logit by more than {PLATT_SLOPES[1]:g} or less than {PLATT_SLOPES[0]:g}: its "
                         "probabilities and these labels disagree past calibrating (labels of another kind, or imagery "
                         "the model cannot read?)")
    p = np.clip(probability.astype(np.float64), 1e-6, 1 - 1e-6)
    calibrated = 1.0 / (1.0 + np.exp(-(platt["a"] * np.log(p / (1 - p)) + platt["b"])))
    return platt, {"pixels": int(probability.size),
                   "reliability_uncalibrated": reliability_table(probability, cover),
                   "reliability_calibrated": reliability_table(calibrated, cover)}


def _recalibrated(model: CnnCroplandModel, calibration: dict[str, float]) -> CnnCroplandModel:
    """``model`` with its card's calibration replaced (the same network and device)."""
    return CnnCroplandModel(model.net, replace(model.card, calibration=calibration), device=str(model.device))


def has_parcel_truth(data: Path) -> bool:
    """Whether the scene folder holds parcels and their true cultivated area, for an area margin."""
    return (data / PARCELS_FILE).is_file() and (data / TRUTH_FILE).is_file()


def _truth(data: Path) -> pd.DataFrame:
    """The scene's parcels' truth (``truth.csv``), its areas numbers.

    Raises:
        InputError: it cannot be read, a column of ``TRUTH_COLUMNS`` is missing, or an area is blank or not a number.
    """
    path = data / TRUTH_FILE
    try:
        truth = read_utf8_csv(path, "truth file", {"parcel_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV table ({exc})") from exc
    if missing := [column for column in TRUTH_COLUMNS if column not in truth.columns]:
        raise InputError(f"{path}: no column {', '.join(missing)} (it needs {', '.join(TRUTH_COLUMNS)})")
    for column in TRUTH_COLUMNS[1:]:
        truth[column] = pd.to_numeric(truth[column], errors="coerce")
        if (blank := truth[column].isna() | (truth[column] < 0)).any():
            raise InputError(f"{path}: {column} is blank, negative or not a number for {int(blank.sum())} parcel(s) "
                             f"({some(truth['parcel_id'][blank].astype(str).tolist())}); give each its area in ha, "
                             "or leave the parcel out of the file")
    if "broken_geometry" not in truth.columns:
        truth["broken_geometry"] = False
    return truth


def area_margin(
    model: CroplandModel, data: Path | Sequence[Path], level: float = AREA_INTERVAL_LEVEL,
    band_layout: Sequence[tuple[date | None, str]] | None = None, dn_offset: float | None = None,
    truths: Sequence[pd.DataFrame] | None = None,
) -> tuple[AreaMargins, tuple[int, ...]]:
    """The margins by parcel size that put the true cultivated area of ``level`` of each size band of the parcels of
    a scene, or of several pooled (``PARCELS_FILE``; ``truths``, one per scene, read from ``TRUTH_FILE`` when None),
    inside the interval, from an assessment of them with ``model``, which must carry no margin; and how many parcels
    each band scored (``evaluation.mixed_margin_for``)."""
    scenes = [data] if isinstance(data, Path) else list(data)
    truths = [_truth(folder) for folder in scenes] if truths is None else truths
    results, mixed, truth = [], [], []
    for i, (folder, scene_truth) in enumerate(zip(scenes, truths, strict=True)):
        assessed, edge = _assessed_scene(model, folder, band_layout, dn_offset)
        scene_truth = _known_truth(folder, assessed, scene_truth)
        # Ids are the scene's own: pooled, each takes its scene's number.
        results.append(assessed.assign(parcel_id=f"{i}/" + assessed["parcel_id"].astype(str)))
        truth.append(scene_truth.assign(parcel_id=f"{i}/" + scene_truth["parcel_id"].astype(str)))
        mixed.append(edge)
    return mixed_margin_for(pd.concat(results, ignore_index=True), pd.concat(truth, ignore_index=True),
                            np.concatenate(mixed), level)


@one_warning_per_source()  # load_inputs opens the imagery, and run_assessment checks it again
def scene_area_report(model: CroplandModel, data: Path, band_layout: Sequence[tuple[date | None, str]] | None = None,
                      dn_offset: float | None = None) -> dict:
    """How an assessment of a scene's parcels with ``model`` meets their truth (``evaluation.area_report``): the
    share within 10% of the true cultivated area, and the interval's coverage overall and by parcel size.

    Raises:
        InputError: truth unfit to score (``_truth``), and what ``load_inputs`` refuses.
    """
    truth = _truth(data)
    results = _assessed_scene(model, data, band_layout, dn_offset)[0]
    return area_report(results, _known_truth(data, results, truth))


def _known_truth(data: Path, results: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The rows of a scene's truth whose parcels the scene's ``results`` hold, warning of the others (ids that
    differ: an export that changed their case, say), which would count as misses.

    Raises:
        InputError: no row's parcel is among the results.
    """
    known = truth["parcel_id"].astype(str).isin(set(results["parcel_id"].astype(str)))
    if not known.any():
        raise InputError(f"{data}: none of the {len(truth)} parcel ids of its {TRUTH_FILE} is in its {PARCELS_FILE} "
                         f"({some(truth['parcel_id'].astype(str).tolist())}); give the truth of these parcels")
    if not known.all():
        warnings.warn(f"{data}: {int((~known).sum())} parcel ids of its {TRUTH_FILE} are not in its {PARCELS_FILE} "
                      f"({some(truth['parcel_id'][~known].astype(str).tolist())}): left out", stacklevel=3)
    return truth[known]


def _assessed_scene(model: CroplandModel, data: Path, band_layout: Sequence[tuple[date | None, str]] | None,
                    dn_offset: float | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The scene's parcels (``PARCELS_FILE``) assessed with ``model``, and each one's ``mixed_cell_share``."""
    from farmcredit.pipeline import load_inputs, mixed_cell_share, run_assessment
    from farmcredit.zonal import coverage_fractions

    parcels = data / PARCELS_FILE
    imagery = next((data / name for name in IMAGERY_NAMES if (data / name).exists()), data)
    inputs = load_inputs(parcels, imagery, band_layout=band_layout, dn_offset=dn_offset)
    mixed = mixed_cell_share(coverage_fractions(inputs.geoms, inputs.imagery.transform, inputs.imagery.shape))
    return run_assessment(parcels, inputs.imagery, model=model).parcels, mixed  # the imagery as opened above
