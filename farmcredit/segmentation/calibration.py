"""Calibrate a CNN on a labelled scene it did not train on (what ``farmcredit calibrate`` does).

Two things are fitted and written into the weights' card (the weights are untouched): Platt
scaling of the crop probability, on the scene's labelled pixels, with a reliability table
before and after; and, where the scene holds parcels with their true cultivated area, the
cultivated-area interval's ``mixed_margin`` (split-conformal, ``evaluation.mixed_margin_for``).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from farmcredit.errors import InputError
from farmcredit.locking import can_write_in
from farmcredit.segmentation.card import AREA_INTERVAL_LEVEL, DEFAULT_WEIGHTS, ModelCard, card_path, uncalibrated
from farmcredit.segmentation.cnn import CnnCroplandModel
from farmcredit.segmentation.data import IMAGERY_NAMES, LabelledScene, load_labelled_scene
from farmcredit.segmentation.metrics import fit_calibration, reliability_table, scene_pixels
from farmcredit.segmentation.rule import CroplandModel

# A scene holding these (as ``farmcredit simulate`` writes) also gets the area interval's margin fitted.
PARCELS_FILE, TRUTH_FILE = "parcels.geojson", "truth.csv"
TRUTH_COLUMNS = ("parcel_id", "polygon_area_ha", "true_cultivated_area_ha")


def calibrate(
    weights: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    *,
    level: float = AREA_INTERVAL_LEVEL,
    band_layout: Sequence[tuple[date | None, str]] | None = None,
    dn_offset: float | None = None,
    device: str = "auto",
) -> ModelCard:
    """Fit ``weights``' calibration on the labelled scene ``data`` and write the card (returned).

    ``out``: a .safetensors file to write a calibrated copy to (the weights copied, the card beside);
    None rewrites the card beside ``weights``. The card's ``metrics["calibration"]`` records the
    scene, its imagery hash, the pixels and parcels used, the reliability tables and what the
    calibration replaced. Without ``parcels.geojson`` and ``truth.csv`` in ``data`` no area margin
    is fitted (warned): intervals then leave out the doubt of parcel-edge pixels.

    Raises:
        InputError: an ``out`` that is not a writable .safetensors file, the shipped weights rewritten in place,
            a ``level`` outside (0, 1), a scene the weights trained on, or a ``truth.csv`` without
            ``TRUTH_COLUMNS`` (and what ``from_file`` and ``load_labelled_scene`` refuse).
    """
    weights, data = Path(weights), Path(data)
    out = Path(out) if out is not None else weights
    if not 0 < level < 1:
        raise InputError(f"--level {level}: the share of parcels whose true area the interval holds, between 0 and 1")
    if out.suffix != ".safetensors" or out.is_dir() or card_path(out).is_dir():
        raise InputError(f"{out}: the calibrated weights go to a .safetensors file (its card .json beside it)")
    if out.resolve() == DEFAULT_WEIGHTS.resolve():
        raise InputError(f"{weights}: the shipped weights are not rewritten in place; give --out FILE for a "
                         "calibrated copy")
    can_write_in(out.absolute().parent)
    model = CnnCroplandModel.from_file(weights, device=device)
    scene = load_labelled_scene(data, band_layout, dn_offset)
    imagery_sha256 = scene.imagery_sha256()
    if imagery_sha256 in model.card.training.get("scene_imagery_sha256", ()):
        raise InputError(f"{data}: the model trained on this scene's imagery, where its probabilities are "
                         "over-confident; calibrate it on a labelled scene it did not train on")
    platt, record = _platt(model, scene)
    calibration = dict(platt)
    if not has_parcel_truth(data):
        warnings.warn(f"{data}: no {PARCELS_FILE} with {TRUTH_FILE} (parcels and their true cultivated area, as "
                      "`farmcredit simulate` writes), so no area-interval margin was fitted: cultivated-area "
                      "intervals leave out the doubt of parcel-edge pixels", stacklevel=2)
    else:
        calibration["mixed_margin"] = round(area_margin(_recalibrated(model, platt), data, level, band_layout,
                                                        dn_offset), 3)
        record.update(parcels=int(len(_truth(data))), level=level, mixed_margin=calibration["mixed_margin"])
    record = {"scene": str(data.resolve()), "imagery_sha256": imagery_sha256, **record,
              "replaced": model.card.calibration}
    card = replace(model.card, calibration=calibration, metrics={**model.card.metrics, "calibration": record})
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.resolve() != weights.resolve():
        shutil.copyfile(weights, out)
    card_path(out).write_text(card.to_json())
    return card


def _platt(model: CnnCroplandModel, scene: LabelledScene) -> tuple[dict[str, float], dict]:
    """Platt scaling fitted on the scene's labelled pixels, and its record: pixels, reliability before and after."""
    probability, cover = scene_pixels(_recalibrated(model, uncalibrated()), scene)
    if not probability.size:
        raise InputError(f"{scene.source}: no labelled pixel has a clear date to predict; nothing to calibrate on")
    platt = fit_calibration(probability, cover)
    p = np.clip(probability.astype(np.float64), 1e-6, 1 - 1e-6)
    after = 1.0 / (1.0 + np.exp(-(platt["a"] * np.log(p / (1 - p)) + platt["b"])))
    return platt, {"pixels": int(probability.size), "reliability_before": reliability_table(probability, cover),
                   "reliability_after": reliability_table(after, cover)}


def _recalibrated(model: CnnCroplandModel, calibration: dict[str, float]) -> CnnCroplandModel:
    """``model`` with its card's calibration replaced (the same network and device)."""
    return CnnCroplandModel(model.net, replace(model.card, calibration=calibration), device=str(model.device))


def has_parcel_truth(data: Path) -> bool:
    """Whether the scene folder holds parcels and their true cultivated area, for an area margin."""
    return (data / PARCELS_FILE).is_file() and (data / TRUTH_FILE).is_file()


def _truth(data: Path) -> pd.DataFrame:
    """The scene's parcels' truth (``truth.csv``).

    Raises:
        InputError: a column of ``TRUTH_COLUMNS`` is missing.
    """
    truth = pd.read_csv(data / TRUTH_FILE, dtype={"parcel_id": str})
    if missing := [column for column in TRUTH_COLUMNS if column not in truth.columns]:
        raise InputError(f"{data / TRUTH_FILE}: no column {', '.join(missing)} (it needs {', '.join(TRUTH_COLUMNS)})")
    if "broken_geometry" not in truth.columns:
        truth["broken_geometry"] = False
    return truth


def area_margin(model: CroplandModel, data: Path, level: float = AREA_INTERVAL_LEVEL,
                band_layout: Sequence[tuple[date | None, str]] | None = None,
                dn_offset: float | None = None) -> float:
    """The ``mixed_margin`` that puts the true cultivated area of ``level`` of a scene's parcels (``PARCELS_FILE``,
    ``TRUTH_FILE``) inside the interval, from an assessment of them with ``model``, which must carry no margin."""
    from farmcredit.evaluation import mixed_margin_for
    from farmcredit.pipeline import load_inputs, mixed_cell_share, run_assessment
    from farmcredit.zonal import coverage_fractions

    parcels = data / PARCELS_FILE
    imagery = next((data / name for name in IMAGERY_NAMES if (data / name).exists()), data)
    options = {"band_layout": band_layout, "dn_offset": dn_offset}
    inputs = load_inputs(parcels, imagery, **options)
    mixed = mixed_cell_share(coverage_fractions(inputs.geoms, inputs.imagery.transform, inputs.imagery.shape))
    results = run_assessment(parcels, imagery, model=model, **options).parcels
    return mixed_margin_for(results, _truth(data), mixed, level)
