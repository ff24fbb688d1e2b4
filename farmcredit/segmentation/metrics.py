"""Scores of a cropland model on labelled data: accuracy, F1, IoU, confusion, reliability, calibration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np

from farmcredit.errors import InputError
from farmcredit.evaluation import NO_PARCEL_TO_SCORE, coverage_text, scored_text
from farmcredit.imagery.level import one_warning_per_source
from farmcredit.segmentation.cnn import CnnCroplandModel
from farmcredit.segmentation.data import (
    LABEL_FILES,
    LABEL_POLYGONS,
    EurosatFolder,
    LabelledPatches,
    LabelledScene,
    dea_row_fingerprints,
    eurosat_sha256,
    is_dea_folder,
    is_eurosat_folder,
    load_dea,
    load_eurosat,
    load_labelled_scene,
    nested_eurosat_hint,
    split_eurosat,
    unpack_fingerprints,
)
from farmcredit.segmentation.rule import PhenologyRule
from farmcredit.text import some

# Pixels of patches predicted per call in ``patch_probability`` (1,024 EuroSAT patches; every DEA pixel we hold).
PIXELS_PER_CALL = 1 << 22
# What one labelled item of each patch kind is, in messages.
UNITS = {"eurosat": "patch", "dea": "pixel", "scene": "pixel"}
# Called with (what is being done, items done, items in all) as patches are read and scored.
EvaluateProgress = Callable[[str, int, int], None]
# Why the CNN leaves an item unscored (the rule's reason is in its report: ``evaluate_scene``).
NO_OBSERVATION = "without a usable observation (red and NIR on a clear date)"


def binary_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Accuracy, crop precision/recall/F1, crop IoU and the confusion matrix [[TN, FP], [FN, TP]].

    Also ``balanced_accuracy`` (mean of the crop and non-crop recalls, of the classes present) and
    ``majority_accuracy`` (what always answering the commoner class scores): on an unbalanced set
    accuracy alone flatters a model.
    """
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp, fp = int(np.sum(predicted & truth)), int(np.sum(predicted & ~truth))
    fn, tn = int(np.sum(~predicted & truth)), int(np.sum(~predicted & ~truth))
    n = max(tp + fp + fn + tn, 1)
    recalls = [right / total for right, total in ((tp, tp + fn), (tn, tn + fp)) if total]
    return {
        "n": tp + fp + fn + tn,
        "accuracy": round((tp + tn) / n, 4),
        "balanced_accuracy": round(sum(recalls) / len(recalls), 4) if recalls else 0.0,
        "majority_accuracy": round(max(tp + fn, tn + fp) / n, 4),
        "precision": round(tp / max(tp + fp, 1), 4),
        "recall": round(tp / max(tp + fn, 1), 4),
        "f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
        "iou": round(tp / max(tp + fp + fn, 1), 4),
        "confusion": [[tn, fp], [fn, tp]],
    }


def reliability_table(probability: np.ndarray, observed: np.ndarray, bins: int = 10) -> list[dict]:
    """Per probability bin: pixels, mean predicted P(crop) and observed crop share (0-1)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges) - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        members = which == b
        if members.any():
            table.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(members.sum()),
                          "predicted": round(float(probability[members].mean()), 3),
                          "observed": round(float(observed[members].mean()), 3)})
    return table


def fit_calibration(probability: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    """Platt scaling (a, b) of the crop logit minimising log loss against observed shares 0-1."""
    import torch

    p = np.clip(probability.astype(np.float64), 1e-6, 1 - 1e-6)
    logit = torch.from_numpy(np.log(p / (1 - p)))
    target = torch.from_numpy(observed.astype(np.float64))
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([params], max_iter=100)

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(params[0] * logit + params[1], target)
        loss.backward()
        return loss

    optimiser.step(closure)
    return {"a": round(float(params[0].detach()), 4), "b": round(float(params[1].detach()), 4)}


def scene_pixels(model: CnnCroplandModel | PhenologyRule, scene: LabelledScene) -> tuple[np.ndarray, np.ndarray]:
    """P(crop) and the true crop cover (0-1) of every pixel with a prediction and a label."""
    probability, cover, _ = _labelled_pixels(model, scene)
    return probability, cover


def _labelled_pixels(model: CnnCroplandModel | PhenologyRule,
                     scene: LabelledScene) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``scene_pixels`` and the CNN's class map over the whole scene (None for the rule)."""
    probability, crop_class = _scene_prediction(model, scene)
    known = np.isfinite(probability) & np.isfinite(scene.crop_cover)
    return probability[known], scene.crop_cover[known], crop_class


def _scene_prediction(model: CnnCroplandModel | PhenologyRule,
                      scene: LabelledScene) -> tuple[np.ndarray, np.ndarray | None]:
    """P(crop) over the scene and, for the CNN, its class map (the rule has none).

    The rule reads the scene's clear NDVI (B08, B04), as in ``assess``.
    """
    from farmcredit.segmentation.card import MODEL_BANDS

    if isinstance(model, PhenologyRule):
        nir, red = (scene.reflectance[:, MODEL_BANDS.index(b)] for b in ("B08", "B04"))
        with np.errstate(invalid="ignore", divide="ignore"):
            return model.probability_from_ndvi(np.where(scene.clear, (nir - red) / (nir + red), np.nan)), None
    prediction = model.predict(scene.reflectance, scene.clear, MODEL_BANDS)
    return prediction.crop_probability, prediction.crop_class


def crop_type_scores(crop_class: np.ndarray, crop_type: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Crop-type accuracy on pixels whose true crop type is known and that the model calls crop."""
    typed = (crop_type > 0) & (crop_class > 0)
    if not typed.any():
        return {}
    truth, called = crop_type[typed], crop_class[typed]
    per_class = {classes[k]: round(float(np.mean(called[truth == k] == k)), 4) for k in np.unique(truth)}
    return {"n": int(typed.sum()), "accuracy": round(float(np.mean(called == truth)), 4),
            "accuracy_per_class": per_class}


def patch_probability(model: CnnCroplandModel, patches: LabelledPatches,
                      progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Mean P(crop) over each patch's seen pixels (a pixel for DEA); NaN for a patch with none seen.

    Patches are predicted ``PIXELS_PER_CALL`` pixels at a time, so memory does not grow with their number;
    ``progress`` is called with (patches predicted, patches in all) after each such call.
    """
    from farmcredit.segmentation.card import MODEL_BANDS

    step = max(1, PIXELS_PER_CALL // int(np.prod(patches.reflectance.shape[-2:])))
    means = []
    for start in range(0, len(patches.is_crop), step):
        chunk = np.s_[start : start + step]
        try:
            prediction = model.predict_patches(patches.reflectance[chunk], patches.clear[chunk], MODEL_BANDS)
        except InputError as exc:  # name the labels read, not just what was found in them
            raise InputError(f"{patches.source}: {exc}") from exc
        pixels = prediction.crop_probability.reshape(len(prediction.crop_probability), -1)
        seen = np.isfinite(pixels)
        total, count = np.where(seen, pixels, 0.0).sum(axis=1), seen.sum(axis=1)
        means.append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
        if progress is not None:
            progress(min(start + step, len(patches.is_crop)), len(patches.is_crop))
    return np.concatenate(means)


def evaluate_scene(model: CnnCroplandModel | PhenologyRule, scene: LabelledScene) -> dict:
    """Pixel metrics (crop = cover >= 50%), reliability table and (CNN, typed labels) crop-type accuracy.

    Labelled pixels without a prediction are left out and counted in ``unscored``: for the CNN those without a
    clear date, for the rule those with fewer clear dates than it needs (``unscored_reason`` says so).

    Raises:
        InputError: no pixel has both a label and a clear date.
    """
    probability, cover, crop_class = _labelled_pixels(model, scene)
    if not len(cover):
        most = int(scene.clear.sum(axis=0).max()) if scene.clear.size else 0
        short = (f" (the phenology rule needs {model.config.min_clear_dates} clear dates at a pixel; this scene has "
                 f"at most {most})" if isinstance(model, PhenologyRule) and most < model.config.min_clear_dates else "")
        raise InputError(f"{scene.source}: no pixel has both a label (0 or 1) and a clear date{short}; nothing to "
                         "score")
    report = {"kind": "scene", "pixels": binary_metrics(probability >= 0.5, cover >= 0.5),
              "reliability": reliability_table(probability, cover)}
    named = crop_class is not None and model.card.has_scene_crop_types
    types = crop_type_scores(crop_class, scene.crop_type, model.card.classes) if named else {}
    unscored = int(np.isfinite(scene.crop_cover).sum()) - len(cover)
    if unscored and isinstance(model, PhenologyRule):
        report["unscored_reason"] = (f"with fewer than {model.config.min_clear_dates} clear dates (what the phenology "
                                     "rule needs)")
    return {**report, **({"crop_types": types} if types else {}), **({"unscored": unscored} if unscored else {})}


def evaluate_patches(model: CnnCroplandModel, patches: LabelledPatches, kind: str,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Patch (EuroSAT) or pixel (DEA) metrics, overall and per group, and the reliability of P(crop); ``progress`` as
    in ``patch_probability``.

    Patches without a usable observation (red and NIR on a clear date) get no probability: they are
    left out of every metric and counted in ``unscored``; patch files that could not be read are listed in
    ``unreadable``.

    Raises:
        InputError: no patches, or none with a usable observation.
    """
    if not len(patches.is_crop):
        raise InputError(f"{patches.source}: no {kind} patches to score")
    return _patch_report(patch_probability(model, patches, progress), patches.is_crop, patches.group, kind,
                         patches.source, patches.unreadable)


def _patch_report(probability: np.ndarray, is_crop: np.ndarray, group: np.ndarray, kind: str, source: str,
                  unreadable: Sequence[str]) -> dict:
    """``evaluate_patches``' report from each patch's P(crop) (NaN: unscored), label and group.

    Raises:
        InputError: no patch has a probability.
    """
    scored = np.isfinite(probability)
    if not scored.any():
        raise InputError(f"{source}: no {kind} {UNITS[kind]} has a usable observation (red and NIR on a "
                         f"clear date); nothing to score")
    probability, is_crop, group = probability[scored], is_crop[scored], group[scored]
    predicted = probability >= 0.5
    per_group = {g: binary_metrics(predicted[group == g], is_crop[group == g])["accuracy"] for g in np.unique(group)}
    report = {"kind": kind, "overall": binary_metrics(predicted, is_crop), "accuracy_per_group": per_group,
              "reliability": reliability_table(probability, is_crop.astype(float))}
    unscored = {"unscored": int((~scored).sum())} if not scored.all() else {}
    return {**report, **unscored, **({"unreadable": list(unreadable)} if unreadable else {})}


@one_warning_per_source()  # a labelled scene's imagery is read for its labels, then for its parcels
def evaluate_path(model: CnnCroplandModel | PhenologyRule, data: str | Path, all_patches: bool = False,
                  band_layout: Sequence[tuple[date | None, str]] | None = None, dn_offset: float | None = None,
                  progress: EvaluateProgress | None = None) -> dict:
    """Evaluate on a folder of any supported kind: a labelled scene, EuroSAT classes, DEA regions or one region.

    EuroSAT patches and DEA pixels the model trained on are left out unless ``all_patches``, matched by their band
    values where its card records each one (``eurosat_trained_sha256``, ``dea_trained_rows``: ``_held_out``); on
    older cards, EuroSAT patches held out by ``eurosat_split`` (same files) are the only ones scored, and DEA regions
    are matched by name. The report's ``note`` says what was left out, or that the model trained on (or its card does
    not name) these patches, on a DEA region scored, or on the scene (or was calibrated on it).
    ``band_layout`` names the bands of a scene's GeoTIFF stack and ``dn_offset`` the offset of its or its scene
    folders' DNs (``load_labelled_scene``). ``progress`` hears of EuroSAT patches read and of patches (pixels) scored.

    Raises:
        InputError: not a labelled folder, or the rule on patches (one or two dates: it needs a season).
    """
    data = Path(data).resolve()  # older cards name the scenes they trained on by absolute path
    if any((data / name).is_file() for name in LABEL_FILES):
        scene = load_labelled_scene(data, band_layout, dn_offset)
        report = evaluate_scene(model, scene)
        training = model.card.training if isinstance(model, CnnCroplandModel) else {}
        # By the imagery's hash where the card keeps them (a folder simulated anew under the same name is new data);
        # by the folder's path on older cards.
        hashes, imagery_sha256 = training.get("scene_imagery_sha256"), scene.imagery_sha256()  # hashed once
        trained_on = (imagery_sha256 in hashes if hashes is not None
                      else str(data) in training.get("scenes", ()))
        # One hash on cards calibrated on one scene before several could be pooled.
        calibrated = model.card.metrics.get("calibration", {}).get("imagery_sha256", ()) \
            if isinstance(model, CnnCroplandModel) else ()
        calibrated_on = imagery_sha256 in ([calibrated] if isinstance(calibrated, str) else calibrated)
        note = ("the model trained on this scene: not a held-out score" if trained_on else
                "the model was calibrated on this scene: its reliability and area interval here are in-sample"
                if calibrated_on else "")
        from farmcredit.segmentation.calibration import has_parcel_truth, scene_area_report  # it imports this module

        if has_parcel_truth(data):  # parcels with their true cultivated area: the area and its interval too
            try:
                report["area"] = scene_area_report(model, data, band_layout, dn_offset)
            except InputError as unscored:  # a truth.csv of another kind: the pixels' scores still stand
                report["area_unscored"] = str(unscored)
        return {**report, "note": note} if note else report
    regions = tuple(sorted(p.parent.name for p in data.glob("*/training_data.txt")))
    is_dea = is_dea_folder(data)
    is_eurosat = is_eurosat_folder(data)
    if not (is_dea or is_eurosat):
        raise InputError(f"{data}: not a labelled scene (imagery with landcover.tif, labels.tif or labelled "
                         f"polygons {'/'.join(LABEL_POLYGONS)}), EuroSAT folder (<Class>/*.tif) or Digital Earth "
                         f"Africa folder (<region>/training_data.txt){nested_eurosat_hint(data)}")
    if isinstance(model, PhenologyRule):
        raise InputError(f"{data}: the phenology rule scores labelled scenes only; EuroSAT and DEA give one or two "
                         f"dates per pixel, fewer than the {model.config.min_clear_dates} clear dates it needs")
    training = model.card.training
    if is_dea:
        root, regions = (data.parent, (data.name,)) if not regions else (data, regions)
        pixels, note = _held_out_dea(load_dea(root, regions), regions, training, all_patches)
        report = evaluate_patches(model, pixels, "dea", _stage(progress, "scoring DEA pixels"))
    else:
        report, note = _evaluate_eurosat(model, data, training, all_patches, progress)
    return {**report, "note": note} if note else report


def _evaluate_eurosat(model: CnnCroplandModel, data: Path, training: dict, all_patches: bool,
                      progress: EvaluateProgress | None) -> tuple[dict, str]:
    """``evaluate_patches`` of the EuroSAT folder ``data``, read a chunk of ``PIXELS_PER_CALL`` pixels at a time and
    scored as it is read (memory holds one chunk, not the 27,000 patches of EuroSAT-MS), leaving out the patches the
    card lists as trained on (``eurosat_trained_sha256``; all scored with ``all_patches``, or where the model never saw
    EuroSAT), and the note ``_left_out`` gives. An older card, which names the patches it trained on by its split of
    the very files (``_held_out_by_older_card``), has them all read first.

    Raises:
        InputError: as ``load_eurosat``; no patch held out; none with a usable observation.
    """
    saw_eurosat = training.get("eurosat") is not None or "eurosat_sha256" in training
    if saw_eurosat and "eurosat_trained_sha256" not in training:  # an older card: its split of the very files
        patches = load_eurosat(data, _stage(progress, "reading EuroSAT patch files"))
        patches, note = _held_out_by_older_card(patches, data, training, all_patches)
        return evaluate_patches(model, patches, "eurosat", _stage(progress, "scoring EuroSAT patches")), note
    folder = EurosatFolder.of(data)
    patches_per_chunk = max(1, PIXELS_PER_CALL // max(1, folder.shape[0] * folder.shape[1]))
    probability, is_crop, group = [], [], []
    trained = patches = 0
    for chunk in folder.chunks(patches_per_chunk, _stage(progress, "reading and scoring EuroSAT patches")):
        known = trained_mask(chunk, "eurosat", training)
        keep = np.ones(len(chunk.is_crop), dtype=bool) if known is None or all_patches else ~known
        trained, patches = trained + (0 if known is None else int(known.sum())), patches + len(keep)
        if keep.any():
            kept = chunk.subset(keep)
            probability.append(patch_probability(model, kept))
            is_crop.append(kept.is_crop)
            group.append(kept.group)
    note = (_left_out(trained, patches, all_patches, "patches", "their band values", str(data))
            if "eurosat_trained_sha256" in training else "")
    report = _patch_report(np.concatenate(probability), np.concatenate(is_crop), np.concatenate(group), "eurosat",
                           str(data), folder.unreadable_in_order())
    return report, note


def _stage(progress: EvaluateProgress | None, doing: str) -> Callable[[int, int], None] | None:
    """``progress`` of one stage (what it does, e.g. ``"scoring EuroSAT patches"``), called with (done, in all)."""
    return None if progress is None else lambda done, total: progress(doing, done, total)


def _held_out_dea(pixels: LabelledPatches, regions: tuple[str, ...], training: dict,
                  all_patches: bool) -> tuple[LabelledPatches, str]:
    """The DEA pixels of ``regions`` the model did not train on (all with ``all_patches``), and a note.

    Matched by each row's band values (``dea_trained_rows``), whatever its file or folder is called; on older cards
    by region name (ignoring case), all pixels kept.
    """
    if (trained := trained_mask(pixels, "dea", training)) is not None:
        return _held_out(pixels, trained, all_patches, "pixels", "their band values")
    # Older cards from `farmcredit train` list dea_regions even without DEA data.
    trained = training.get("dea_train_regions") or (training.get("dea_regions", ()) if training.get("dea") else ())
    named = {region.lower() for region in trained}
    seen = sorted(region for region in regions if region.lower() in named)
    return pixels, f"the model trained on {', '.join(seen)}: not an out-of-region score" if seen else ""


def trained_mask(patches: LabelledPatches, kind: str, training: dict) -> np.ndarray | None:
    """Per patch (``kind`` "eurosat") or pixel ("dea"), whether a card's ``training`` record lists it as trained on,
    by its band values as read (``eurosat_trained_sha256``, ``dea_trained_rows``); None where the card keeps no such
    record.
    """
    if kind == "eurosat":
        trained = training.get("eurosat_trained_sha256")
        return None if trained is None else np.isin(patches.patch_sha256, trained)
    if "dea_trained_rows" not in training:
        return None
    return np.isin(dea_row_fingerprints(patches), unpack_fingerprints(training["dea_trained_rows"]))


def _held_out(patches: LabelledPatches, trained: np.ndarray, all_patches: bool, items: str,
              matched_by: str) -> tuple[LabelledPatches, str]:
    """``patches`` without those the model ``trained`` on (bool per patch; all kept with ``all_patches``), and a note
    saying how many were (``items``: "patches" or "pixels", matched by ``matched_by``).

    Raises:
        InputError: the model trained on every one of them, and ``all_patches`` is not set.
    """
    note = _left_out(int(trained.sum()), len(trained), all_patches, items, matched_by, patches.source)
    return (patches if all_patches else patches.subset(~trained)), note


def _left_out(count: int, total: int, all_patches: bool, items: str, matched_by: str, source: str) -> str:
    """The note saying how many of ``total`` ``items`` the model trained on (``count``, matched by ``matched_by``) were
    left out, or scored too with ``all_patches``.

    Raises:
        InputError: the model trained on every one of them, and ``all_patches`` is not set.
    """
    how = f"(matched by {matched_by})"
    if not count:
        return f"none of these {items} is one the model trained on {how}"
    if all_patches:
        return f"all {items}, {count} of which the model trained on {how}: not a held-out score"
    if count == total:
        raise InputError(f"{source}: the model trained on all {count} of these {items} {how}, so none is "
                         "held out to score; --all-patches scores them anyway (not a held-out score)")
    return f"{count} {items} the model trained on left out {how}; --all-patches scores them too"


def _held_out_by_older_card(patches: LabelledPatches, data: Path, training: dict,
                            all_patches: bool) -> tuple[LabelledPatches, str]:
    """The EuroSAT patches a model whose card keeps no ``eurosat_trained_sha256`` did not train on, and a note: those
    the card's ``eurosat_split`` held out when the card names these files; the note also says when the model's
    starting weights trained on these files, or on other EuroSAT files (``eurosat_base_sha256``), which may include
    some of these.
    """
    sha256 = eurosat_sha256(data)
    base_files = training.get("eurosat_base_sha256", ())
    if sha256 in base_files:
        return patches, ("the model's starting weights trained on these files (its card keeps no split of them): "
                         "not a held-out score")
    if training.get("eurosat_sha256") != sha256:
        return patches, "the model's card does not name these files: if it trained on them, this score flatters it"
    split = training.get("eurosat_split")
    if split is None:
        return patches, "the model trained on all of these patches: not a held-out score"
    overlap = ("; its starting weights trained on other EuroSAT files, which may include some of these"
               if base_files else "")
    if all_patches:
        return patches, f"all patches, {split['train_patches']} of which the model trained on{overlap}"
    _, test = split_eurosat(patches, split["test_share"], seed=split["seed"])
    return patches.subset(test), (f"the {len(test)} of {len(patches.is_crop)} patches the model's card held out of "
                                  f"training (--all-patches scores all){overlap}")


def format_report(report: dict) -> str:
    """The evaluation as plain text: metrics, confusion matrix and (for scenes) the reliability table."""
    metrics = report.get("pixels") or report["overall"]
    (tn, fp), (fn, tp) = metrics["confusion"]
    lines = [
        f"{report['kind']}: n={metrics['n']} accuracy={metrics['accuracy']:.4f} F1={metrics['f1']:.4f} "
        f"IoU={metrics['iou']:.4f} precision={metrics['precision']:.4f} recall={metrics['recall']:.4f}",
        f"  balanced accuracy={metrics['balanced_accuracy']:.4f} "
        f"(always the commoner class: accuracy {metrics['majority_accuracy']:.4f})",
        "confusion (rows truth, columns predicted):",
        f"            non-crop  crop\n  non-crop  {tn:8d} {fp:5d}\n  crop      {fn:8d} {tp:5d}",
    ]
    for group, accuracy in report.get("accuracy_per_group", {}).items():
        lines.append(f"  {group}: accuracy {accuracy:.4f}")
    if types := report.get("crop_types"):
        lines.append(f"crop type, on {types['n']} truly typed pixels called crop: accuracy {types['accuracy']:.4f}")
        lines += [f"  {name}: {accuracy:.4f}" for name, accuracy in types["accuracy_per_class"].items()]
    if "reliability" in report:
        lines.append("reliability (P(crop) bin, count, mean predicted, observed crop share):")
        lines += [f"  {r['bin']}  {r['n']:7d}  {r['predicted']:.3f}  {r['observed']:.3f}"
                  for r in report["reliability"]]
    if area := report.get("area"):
        if area["parcels_scored"]:
            error = scored_text(area["area_median_abs_error"], ".2%", area["parcels_scored"],
                                area["parcels_cultivated"])
            lines.append(f"cultivated area, {area['parcels_scored']} parcels of 0.1 ha and more (parcels.geojson "
                         f"against truth.csv): within 10% of truth {area['area_within_10pct']:.1%}, median relative "
                         f"error {error}, truth inside the low-high interval "
                         f"{coverage_text(area['interval_coverage'], area['parcels_scored'])}")
        else:
            lines.append(f"cultivated area: {NO_PARCEL_TO_SCORE}")
        lines += [f"  truth inside the interval, parcels {label}: {coverage_text(share, n)}"
                  for label, (n, share) in area["interval_coverage_by_area"].items() if n]
    if "area_unscored" in report:
        lines.append(f"cultivated area not scored: {report['area_unscored']}")
    if report.get("unscored"):
        lines.append(f"unscored: {report['unscored']} {UNITS[report['kind']]}(s) "
                     f"{report.get('unscored_reason', NO_OBSERVATION)}, left out of every figure above")
    if unreadable := report.get("unreadable"):
        lines.append(f"unscored: {len(unreadable)} unreadable patch file(s): {some(unreadable, limit=5)}")
    if report.get("note"):
        lines.append(f"note: {report['note']}")
    return "\n".join(lines)
