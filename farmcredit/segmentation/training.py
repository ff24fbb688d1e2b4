"""Train or fine-tune the cropland CNN on labelled scenes, EuroSAT patches and DEA pixels.

Every random draw of step ``k`` comes from ``numpy.random.default_rng([seed, k])``, so a run is
reproducible (on the CPU, for a given thread count: ``_deterministic``) and a run resumed from a
checkpoint continues exactly as if never stopped. Chips of
partly labelled scenes are drawn around labelled pixels, so runs on such scenes by farmcredit
before that change (and their checkpoints) do not repeat; fully labelled scenes, EuroSAT patches
and DEA pixels draw as they always did.
Checkpoints and weights are safetensors (never unpickled). A card records the SHA-256 of the
training arrays (``training_data_sha256``) and the code that trained it; a checkpoint resumes
only on the same data.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import torch

from farmcredit.errors import InputError
from farmcredit.imagery.read import is_reflectance
from farmcredit.locking import can_write_in
from farmcredit.segmentation.card import (
    ARCHITECTURE,
    ARCHITECTURE_V2,
    CLASSES,
    INDICES,
    MODEL_BANDS,
    REQUIRED_BANDS,
    UPSAMPLING,
    ModelCard,
    card_path,
    name_problem,
    uncalibrated,
    write_card,
)
from farmcredit.segmentation.cnn import CnnCroplandModel, normalise_season, resolve_device, to_tensor
from farmcredit.segmentation.data import (
    DEA_REGIONS,
    EUROSAT_CLASSES,
    EUROSAT_CROP,
    LabelledPatches,
    LabelledScene,
    dea_row_fingerprints,
    pack_fingerprints,
    unpack_fingerprints,
)
from farmcredit.segmentation.network import CroplandNet, crop_log_probability, non_finite
from farmcredit.text import some
from farmcredit.version import card_code_version

# Band subsets users really have, drawn during training so the model works on each.
BAND_SUBSETS = {
    "all": MODEL_BANDS,
    "rgbn": ("B02", "B03", "B04", "B08"),
    "pipeline": ("B02", "B04", "B05", "B08", "B8A", "B11"),
}
# Centre wavelengths (nm) of the Sentinel-2 bands, for the spectral shape of a random atmosphere.
WAVELENGTH_NM = {"B02": 490, "B03": 560, "B04": 665, "B05": 705, "B06": 740, "B07": 783, "B08": 833, "B8A": 865,
                 "B11": 1610, "B12": 2190}
# The classes of a model trained from scratch on labels without crop types (0/1 rasters, polygons, EuroSAT, DEA).
BINARY_CLASSES = ("non_crop", "crop")
# Settings added after checkpoints were first written, with the value that reproduces training before them.
SETTINGS_ADDED = {"atmosphere": 0.0, "patch_crop_share": 0.5, "pixel_crop_share": 0.5, "narrow_nir_fill": 0.0}
# The licences of the third-party data weights learn from, by source, carried in their card (``data_licences``;
# NOTICE has the full credits): EuroSAT patches, DEA pixels, and the Sentinel-2 imagery every source is made of.
DATA_LICENCES = {"eurosat": "MIT (EuroSAT, Helber et al. 2019)", "dea": "Apache-2.0 (Digital Earth Africa crop-mask)",
                 "imagery": "Contains modified Copernicus Sentinel data"}
# The shipped model's DEA training regions: trained on by default where a DEA folder holds them all.
DEFAULT_DEA_REGIONS = ("central", "eastern", "sahel", "south_eastern")
# B8A / B08 of surface reflectance (L2A): about 0.95 (water, bright soil) to 1.1 (dense canopy).
NARROW_NIR_GAIN = (0.95, 1.10)
TrainProgress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings.

    Attributes:
        steps: optimiser steps.
        learning_rate: Adam learning rate (cosine decay to 5% of it).
        seed: seed of every random draw.
        width: network width (channels at full resolution).
        scene_batch: scene chips per step.
        chip_px: side of a scene chip (and of the crop taken from larger patches), pixels.
        max_dates: most dates drawn for one scene chip.
        patch_batch: EuroSAT patches per step.
        pixel_batch: DEA pixels per step.
        patch_weight: weight of the EuroSAT loss against the scene loss.
        pixel_weight: weight of the DEA loss against the scene loss.
        type_weight: weight of the crop-type loss against the crop/non-crop loss.
        checkpoint_every: steps between checkpoints.
        atmosphere: share of scene chips, EuroSAT patches and DEA pixels given a random atmosphere per
            date (``_atmosphere``): haze added to surface reflectance, taken off top-of-atmosphere
            reflectance, and band gains, so the network learns to care less which of L2A and L1C it
            reads. 0 trains on the reflectance as read.
        patch_crop_share: share of crop patches in each step's EuroSAT draw; None draws them at the
            labels' own share. 0.5 (balanced): EuroSAT's 20% crop is its design of ten equal classes.
        pixel_crop_share: the same for DEA pixels. None (default): drawn from all training regions
            pooled, so at the labels' crop share (42% over the four default regions), the nearest thing
            to a prior; drawing them half crop taught the network a 50% prior and made it call crop
            too often in regions with fewer fields.
        narrow_nir_fill: share of batches of patches or pixels without B8A (DEA's have none) given B8A
            as B08 times a random gain per sample (``NARROW_NIR_GAIN``). Without it only simulated
            scenes and EuroSAT teach inputs with all ten bands, and neither has bright bare land: the
            network then called a real desert tile cropland (``_narrow_nir``). It only helps where
            something teaches B8A (scenes, EuroSAT, starting weights): trained from scratch on DEA alone,
            B8A stays an untrained band. Above 0 every batch of patches or pixels draws whether to fill,
            so a run with it differs from one without even without DEA pixels (as v2.6 was trained).
    """

    steps: int = 16000
    learning_rate: float = 3e-3
    seed: int = 0
    width: int = 24
    scene_batch: int = 4
    chip_px: int = 32
    max_dates: int = 8
    patch_batch: int = 16
    pixel_batch: int = 256
    patch_weight: float = 2.0
    pixel_weight: float = 1.0
    type_weight: float = 0.3
    checkpoint_every: int = 100
    atmosphere: float = 0.25
    patch_crop_share: float | None = 0.5
    pixel_crop_share: float | None = None
    narrow_nir_fill: float = 0.5

    def __post_init__(self) -> None:
        for name in ("atmosphere", "narrow_nir_fill"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"{name} must be a share between 0 and 1")
        for name in ("patch_crop_share", "pixel_crop_share"):
            share = getattr(self, name)
            if share is not None and not 0 < share < 1:
                raise InputError(f"{name} must be between 0 and 1 (exclusive), or None for the labels' own share")


@dataclass
class TrainingData:
    """What to train on; any of the three may be empty."""

    scenes: list[LabelledScene] = field(default_factory=list)
    patches: LabelledPatches | None = None
    pixels: LabelledPatches | None = None


def training_data_sha256(data: TrainingData) -> str:
    """One SHA-256 over the training arrays with their dtypes and shapes: each scene's reflectance, clear,
    crop cover and crop type in order, then the EuroSAT patches' and the DEA pixels' reflectance, clear
    and labels."""
    sources = [("scene", (s.reflectance, s.clear, s.crop_cover, s.crop_type)) for s in data.scenes]
    sources += [(kind, (source.reflectance, source.clear, source.is_crop))
                for kind, source in (("patches", data.patches), ("pixels", data.pixels)) if source is not None]
    digest = hashlib.sha256()
    for kind, arrays in sources:
        digest.update(kind.encode())
        for array in arrays:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def band_statistics(data: TrainingData) -> tuple[tuple[float, ...], tuple[float, ...], tuple[str, ...]]:
    """Per-band mean and standard deviation of clear reflectance (0-1) over all the training data,
    and the bands no sample has (mean 0, standard deviation 1: the model treats them as absent).

    Only values that could be reflectance count (``is_reflectance``): fill values and the like, which the network
    never sees (``normalise_season``), would otherwise move the statistics it is normalised by.

    Raises:
        InputError: no sample has red (B04) or NIR (B08), which every band subset the network learns needs.
    """
    samples = [np.moveaxis(s.reflectance, 1, -1)[s.clear] for s in data.scenes]
    for source in (data.patches, data.pixels):
        if source is not None:
            samples.append(np.moveaxis(source.reflectance, 2, -1)[source.clear])
    values = np.concatenate([s.reshape(-1, len(MODEL_BANDS)) for s in samples])
    values[~is_reflectance(values)] = np.nan  # in place: the concatenation is a copy, and may be GBs
    seen = np.isfinite(values).any(axis=0)
    untrained = tuple(band for band, has in zip(MODEL_BANDS, seen) if not has)
    if set(REQUIRED_BANDS) & set(untrained):
        raise InputError(f"the training data has no clear red (B04) or NIR (B08) value; it has {untrained} missing")
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the untrained bands' all-NaN columns
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    mean, std = np.where(seen, mean, 0.0), np.where(seen, np.maximum(std, 1e-3), 1.0)
    return tuple(round(float(v), 5) for v in mean), tuple(round(float(v), 5) for v in std), untrained


def train(
    data: TrainingData,
    config: TrainingConfig,
    *,
    device: str = "auto",
    checkpoint: Path | None = None,
    init: CnnCroplandModel | None = None,
    init_path: Path | None = None,
    progress: TrainProgress | None = None,
) -> tuple[CroplandNet, ModelCard, list[float]]:
    """Train (or fine-tune ``init``) and return the network, a card without metrics, and the loss per step.

    The card's ``training.init`` records the starting weights (``starting_weights``), with ``init_path``, where they
    were read from, when given.

    With ``checkpoint``, state is saved there every ``config.checkpoint_every`` steps and, if the
    file exists, training resumes from it (its settings, starting weights and training data must match).

    Raises:
        InputError: no data, no labelled pixel with a clear date of red and NIR (``_check_something_to_learn``),
            a scene smaller than a chip, a checkpoint of another run, a step whose loss is not finite, or no step
            (of this run and those it resumed) that drew such a pixel (then nothing is returned to save).
    """
    if not (data.scenes or data.patches is not None or data.pixels is not None):
        raise InputError("no training data: give labelled scenes, EuroSAT patches or DEA pixels")
    for scene in data.scenes:
        rows, cols = scene.crop_cover.shape
        if min(rows, cols) < config.chip_px:
            raise InputError(f"{scene.source}: {rows} x {cols} px, smaller than the {config.chip_px} x "
                             f"{config.chip_px} px chips training draws; give a larger labelled scene")
    _check_crop_shares(data, config)
    _check_something_to_learn(data)
    data_sha256 = training_data_sha256(data)
    labelled = [_labelled_pixels(scene) for scene in data.scenes]
    torch.manual_seed(config.seed)
    target = resolve_device(device)
    start_from = init.describe()["hash"] if init is not None else ""  # a checkpoint resumes only its own start
    if init is not None:
        # New weights: the starting model's calibration (Platt, area margin) no longer applies. They are of the
        # current family (a v2 start's weights fit v3 and learn its bilinear upsampling), trained in a copy: the
        # starting model computes as its card says, whatever this run does.
        card = replace(init.card, metrics={}, training={}, calibration=uncalibrated(), weights_sha256="",
                       deciding_hash="", architecture=ARCHITECTURE)
        net = copy.deepcopy(init.net)
        net.upsample = UPSAMPLING[ARCHITECTURE]
        config = replace(config, width=init.card.width)
    else:
        mean, std, untrained = band_statistics(data)
        # Crop classes only where some label names a crop type; else one "crop" class, never untrained names.
        typed = any((scene.crop_type > 0).any() for scene in data.scenes)
        classes = CLASSES if typed else BINARY_CLASSES
        card = ModelCard(name="cropland-cnn", bands=MODEL_BANDS, band_mean=mean, band_std=std, classes=classes,
                         width=config.width, untrained_bands=untrained)
        net = CroplandNet(len(MODEL_BANDS) + len(INDICES), len(classes), config.width)
    net = net.to(target).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    start, losses, earlier_seconds, schedules = 0, [], 0.0, [config.steps]
    if checkpoint is not None and checkpoint.is_file():
        start, losses, earlier_seconds, schedules = _load_checkpoint(checkpoint, net, optimiser, config, start_from,
                                                                     data_sha256, card.architecture)
    type_weight = config.type_weight if card.has_scene_crop_types else 0.0
    trained = (~np.isin(card.bands, card.untrained_bands)).astype(np.float32)
    mean = np.asarray(card.band_mean, dtype=np.float32)
    std = np.asarray(card.band_std, dtype=np.float32)
    began = time.perf_counter()
    with _deterministic(target):
        for step in range(start, config.steps):
            rng = np.random.default_rng([config.seed, step])
            haze = np.random.default_rng([config.seed, step, 1])  # its own stream: it never moves the batches' draws
            terms = []
            for batch, loss_fn, top_of_atmosphere in _batches(data, labelled, config, type_weight, rng):
                if config.atmosphere > 0:
                    batch = (_atmosphere(batch[0], haze, config.atmosphere, top_of_atmosphere), *batch[1:])
                # Bands the starting weights never learnt stay unused, as at inference.
                x, clear, available = _network_inputs(*(to_tensor(a, target) for a in batch[:2]), batch[2] * trained,
                                                      mean, std, card.bands)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=target.type == "cuda"):
                    logits = net(x, clear, available)
                term = loss_fn(logits, *[torch.from_numpy(a).to(target) for a in batch[3:]], clear)
                if term is not None:
                    terms.append(term)
            if not terms:
                # Nothing labelled was seen: Adam would still move the weights on its momentum, so no optimiser
                # step; the loss is NaN, left out of final_loss.
                losses.append(float("nan"))
            else:
                loss = sum(terms)
                losses.append(float(loss.detach()))
                if not np.isfinite(losses[-1]):
                    raise InputError(f"step {step + 1}: the training loss is {losses[-1]}, so training stopped and "
                                     f"wrote no weights; likely the learning rate ({config.learning_rate}) is too "
                                     "high for this data or some reflectance is extreme (check the imagery's scaling "
                                     "to 0-1)")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                for group in optimiser.param_groups:
                    group["lr"] = _learning_rate(config, step)
                optimiser.step()
            if progress is not None:
                progress(step + 1, config.steps, losses[-1])
            if checkpoint is not None and ((step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps):
                _save_checkpoint(checkpoint, net, optimiser, step + 1, losses, config, schedules, start_from,
                                 data_sha256, card.architecture, earlier_seconds + time.perf_counter() - began)
    idle = sum(not np.isfinite(loss) for loss in losses)
    if idle == len(losses):
        raise InputError(f"none of the {idle} training steps drew a labelled pixel with a clear date of red (B04) and "
                         "NIR (B08), so the weights are as they started and none were written; label more of the "
                         "scenes' clear pixels, or train longer (--steps)")
    # Seconds of every run that trained these steps; a resumed run says from which step (a checkpoint
    # written before checkpoints kept their seconds adds none for the steps before it).
    recent = [loss for loss in losses[-50:] if np.isfinite(loss)]
    training = {"config": asdict(config), "device": str(target),
                "seconds": round(earlier_seconds + time.perf_counter() - began, 1),
                "final_loss": float(np.mean(recent)) if recent else None, "data_sha256": data_sha256}
    if idle:
        training["steps_without_labels"] = idle
        warnings.warn(f"{idle} of {len(losses)} training steps drew no labelled pixel with a clear date and left the "
                      "weights as they were (steps_without_labels in the card); label more of the scenes' clear "
                      "pixels, or train longer", stacklevel=2)
    if start:
        training["resumed_from_step"] = start
    if len(schedules) > 1:  # each run of the chain set the learning rate for its own total of steps
        training["schedule_steps"] = schedules
    if init is not None:
        training["init"] = starting_weights(init.card, init_path)
    return net.cpu().eval(), replace(card, training=training, code_version=card_code_version()), losses


def starting_weights(card: ModelCard, path: Path | None = None) -> dict:
    """What a fine-tune's card records of the weights it started from (their card ``card``): where they were read
    from (``path``, when given), their name, network family, SHA-256 and training data's hash (None where their card
    has none) and, where they were fine-tuned too, their own ``init`` nested as their card has it, so a fine-tune of a
    fine-tune keeps its lineage back to weights trained from scratch or shipped."""
    record = {**({"path": str(path)} if path is not None else {}), "name": card.name,
              "architecture": card.architecture, "weights_sha256": card.weights_sha256,
              "data_sha256": card.training.get("data_sha256")}
    if card.training.get("init") is not None:
        record["init"] = card.training["init"]
    return record


def _check_crop_shares(data: TrainingData, config: TrainingConfig) -> None:
    """Refuse EuroSAT patches or DEA pixels all of one class where each step draws a share of crop from them.

    Raises:
        InputError: naming the patches or pixels and how to give the other class.
    """
    patches, pixels = data.patches, data.pixels
    if patches is not None and config.patch_crop_share is not None and len(np.unique(patches.is_crop)) < 2:
        crop = bool(patches.is_crop[0])
        missing = [name for name in EUROSAT_CLASSES if (name in EUROSAT_CROP) != crop]
        raise InputError(f"{patches.source}: every EuroSAT patch is {'crop' if crop else 'non-crop'} (class "
                         f"{', '.join(np.unique(patches.group))}), and each step draws "
                         f"{config.patch_crop_share:.0%} crop patches; add class folders of the other class "
                         f"({some(missing, limit=8)}) to the folder given with --eurosat")
    if pixels is not None and config.pixel_crop_share is not None and len(np.unique(pixels.is_crop)) < 2:
        crop = bool(pixels.is_crop[0])
        raise InputError(f"{pixels.source}: every DEA pixel is {'crop' if crop else 'non-crop'}, and --dea-crop-share "
                         f"{config.pixel_crop_share:g} draws both classes; leave it out to draw the pixels as they "
                         f"come, or add regions with {'non-crop' if crop else 'crop'} pixels (--dea-regions)")


def _check_something_to_learn(data: TrainingData) -> None:
    """Refuse training data in which no labelled pixel has a clear date with red and NIR reflectance: every step
    would draw nothing to learn from and leave the weights as they started (the network sees a date only with
    both, as at inference).

    Raises:
        InputError: naming the data.
    """
    if any((_clear_red_nir(s.reflectance, s.clear).any(axis=0) & np.isfinite(s.crop_cover)).any()
           for s in data.scenes):
        return
    sources = [source for source in (data.patches, data.pixels) if source is not None]
    if any(_clear_red_nir(source.reflectance, source.clear).any() for source in sources):
        return
    names = [scene.source for scene in data.scenes] + [source.source for source in sources]
    raise InputError(f"nothing to train on: no labelled pixel of {some(names, limit=5)} has a clear date with red "
                     "(B04) and NIR (B08) reflectance, so no training step would learn anything; give imagery "
                     "with both bands on the labelled pixels' clear dates")


def _clear_red_nir(reflectance: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """``clear`` (..., time, rows, cols) where red and NIR are reflectance too, of ``reflectance`` (..., time, band,
    rows, cols) in ``MODEL_BANDS`` order."""
    red, nir = (is_reflectance(reflectance[..., MODEL_BANDS.index(band), :, :]) for band in REQUIRED_BANDS)
    return clear & red & nir


def _learning_rate(config: TrainingConfig, step: int) -> float:
    """The learning rate of step ``step`` (from 0): cosine decay from ``config.learning_rate`` to 5% of it over
    ``config.steps``. A function of the step alone, so a resumed run and steps that learn nothing keep it in step
    (a torch scheduler stepped without its optimiser warns, and would need its state saved)."""
    return float(config.learning_rate * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(step / config.steps, 1.0)))))


@contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """On CUDA, deterministic kernels while training, so a seed gives the same run (restored after).

    Measured on an H200: two runs of 150 steps differed from their second step on (losses up to 5%
    apart) with cuDNN's default kernels and were identical with these; no op of the training
    lacked a deterministic kernel. On the CPU a run is reproducible for a given number of torch
    threads only: one thread and two gave other weights from the first step (losses 1e-7 apart).
    """
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def _labelled_pixels(scene: LabelledScene) -> np.ndarray | None:
    """Flat indices of the labelled pixels of a partly labelled scene; None when every pixel is labelled."""
    known = np.isfinite(scene.crop_cover).ravel()
    return None if known.all() else np.flatnonzero(known)


def _batches(data: TrainingData, labelled: list[np.ndarray | None], config: TrainingConfig, type_weight: float,
             rng: np.random.Generator):
    """(reflectance, clear, available, *targets), its loss function and whether it is L1C, per source present.

    ``labelled``: per scene, ``_labelled_pixels``; ``type_weight``: the scenes' crop-type loss weight (``_scene_loss``).
    """
    if data.scenes:
        yield _scene_batch(data.scenes, labelled, config, rng), _scene_loss(type_weight), False
    for source, size, weight, share in (
        (data.patches, config.patch_batch, config.patch_weight, config.patch_crop_share),
        (data.pixels, config.pixel_batch, config.pixel_weight, config.pixel_crop_share),
    ):
        if source is not None:
            pick = _draw(source.is_crop, size, share, rng)
            rows, cols = source.reflectance.shape[-2:]
            r0, c0 = rng.integers(max(rows - config.chip_px, 0) + 1), rng.integers(max(cols - config.chip_px, 0) + 1)
            window = (slice(r0, r0 + config.chip_px), slice(c0, c0 + config.chip_px))
            reflectance = source.reflectance[pick][..., window[0], window[1]]
            if config.narrow_nir_fill and rng.random() < config.narrow_nir_fill:
                reflectance = _narrow_nir(reflectance, rng)
            clear = source.clear[pick][..., window[0], window[1]].copy()
            if clear.shape[1] > 1 and rng.random() < 0.25:
                clear[:, rng.integers(clear.shape[1])] = False
            flips = _flips(rng)
            reflectance, clear = _augment(reflectance, flips), _augment(clear, flips)
            available = _band_mask(rng, reflectance)
            yield ((reflectance, clear, available, source.is_crop[pick].astype(np.float32)), _patch_loss(weight),
                   source.top_of_atmosphere)


def _narrow_nir(reflectance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``reflectance`` (sample, time, band, rows, cols) with B8A, where no sample has any, as B08 times a gain
    per sample drawn from ``NARROW_NIR_GAIN``; unchanged where B8A is given or B08 is not."""
    narrow, broad = MODEL_BANDS.index("B8A"), MODEL_BANDS.index("B08")
    if np.isfinite(reflectance[:, :, narrow]).any() or not np.isfinite(reflectance[:, :, broad]).any():
        return reflectance
    gain = rng.uniform(*NARROW_NIR_GAIN, size=len(reflectance)).astype(reflectance.dtype)
    filled = reflectance.copy()
    filled[:, :, narrow] = reflectance[:, :, broad] * gain[:, None, None, None]
    return filled


def _draw(is_crop: np.ndarray, size: int, crop_share: float | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` labelled samples, ``int(crop_share * size)`` of them crop (None: as they come; else
    ``is_crop`` must hold both classes, ``_check_crop_shares``)."""
    if crop_share is None:
        return rng.choice(len(is_crop), size)
    crop, other = np.flatnonzero(is_crop), np.flatnonzero(~is_crop)
    n_crop = int(crop_share * size)
    return np.concatenate([rng.choice(crop, n_crop), rng.choice(other, size - n_crop)])


def _scene_batch(scenes: list[LabelledScene], labelled: list[np.ndarray | None], config: TrainingConfig,
                 rng: np.random.Generator) -> tuple:
    """Random chips of the labelled scenes, each with a random subset of dates and flips.

    A chip of a partly labelled scene (``labelled``: its ``_labelled_pixels``) holds a random labelled pixel.
    """
    size = config.chip_px
    reflectance, clear, cover, crop_type = [], [], [], []
    for _ in range(config.scene_batch):
        index = rng.integers(len(scenes))
        scene = scenes[index]
        steps, _, rows, cols = scene.reflectance.shape
        if labelled[index] is None:
            r0, c0 = rng.integers(rows - size + 1), rng.integers(cols - size + 1)
        else:
            row, col = divmod(int(rng.choice(labelled[index])), cols)
            r0 = rng.integers(max(row - size + 1, 0), min(row, rows - size) + 1)
            c0 = rng.integers(max(col - size + 1, 0), min(col, cols - size) + 1)
        most = min(steps, config.max_dates)
        # A quarter single dates (users with one image), half whole seasons.
        n_dates = int(rng.choice([1, rng.integers(1, most + 1), most, most]))
        dates = np.sort(rng.choice(steps, n_dates, replace=False))
        reflectance.append(scene.reflectance[dates, :, r0 : r0 + size, c0 : c0 + size])
        clear.append(scene.clear[dates, r0 : r0 + size, c0 : c0 + size])
        cover.append(scene.crop_cover[r0 : r0 + size, c0 : c0 + size])
        crop_type.append(scene.crop_type[r0 : r0 + size, c0 : c0 + size])
    # Pad to a common length with dates of no data (NaN, not clear), which the network ignores.
    steps = max(len(c) for c in clear)
    reflectance = np.stack([np.pad(r, ((0, steps - len(r)),) + ((0, 0),) * 3, constant_values=np.nan)
                            for r in reflectance])
    clear = np.stack([np.pad(c, ((0, steps - len(c)), (0, 0), (0, 0))) for c in clear])
    flips = _flips(rng)
    available = _band_mask(rng, reflectance)
    return (_augment(reflectance, flips), _augment(clear, flips), available,
            _augment(np.stack(cover), flips), _augment(np.stack(crop_type).astype(np.int64), flips))


def _flips(rng: np.random.Generator) -> tuple[bool, bool, int]:
    return bool(rng.random() < 0.5), bool(rng.random() < 0.5), int(rng.integers(4))


def _augment(array: np.ndarray, flips: tuple[bool, bool, int]) -> np.ndarray:
    """Flip and rotate the last two axes (square only), the same way for every array given the same ``flips``."""
    up_down, left_right, turns = flips
    if array.shape[-1] != array.shape[-2]:
        return array
    out = array[..., ::-1, :] if up_down else array
    out = out[..., ::-1] if left_right else out
    return np.ascontiguousarray(np.rot90(out, turns, axes=(-2, -1)))


def _atmosphere(reflectance: np.ndarray, rng: np.random.Generator, share: float,
                top_of_atmosphere: bool) -> np.ndarray:
    """``reflectance`` (sample, time, band, rows, cols) in ``MODEL_BANDS`` order, a random atmosphere on ``share``.

    Per sample and date: the reflectance times a gain per band (log-normal, 5%) on one common gain
    (10%), plus a path radiance ``a * (wavelength / 490 nm) ** -k``, ``k`` from 1 (aerosol-like) to
    4 (Rayleigh-like): added to surface reflectance (``a`` from -0.01 to 0.06) or taken off
    top-of-atmosphere reflectance (``a`` from -0.06 to 0.01); Sentinel-2 L1C over L2A is about
    +0.05 at 490 nm. NaN stays NaN.
    """
    samples, dates = reflectance.shape[:2]
    wavelength = np.array([WAVELENGTH_NM[b] for b in MODEL_BANDS], dtype=np.float32) / 490.0
    low, high = (-0.06, 0.01) if top_of_atmosphere else (-0.01, 0.06)
    offset = rng.uniform(low, high, (samples, dates, 1)) * wavelength ** -rng.uniform(1.0, 4.0, (samples, dates, 1))
    gain = np.exp(rng.normal(0.0, 0.05, (samples, dates, len(MODEL_BANDS))) + rng.normal(0.0, 0.1, (samples, dates, 1)))
    hit = (rng.random(samples) < share)[:, None, None]
    offset, gain = np.where(hit, offset, 0.0), np.where(hit, gain, 1.0)
    return (reflectance * gain[..., None, None] + offset[..., None, None]).astype(np.float32)


def _band_mask(rng: np.random.Generator, reflectance: np.ndarray) -> np.ndarray:
    """Availability (sample, band) of one random realistic band subset drawn for the batch ``reflectance`` (sample,
    time, band, rows, cols), within the bands each sample has: a value somewhere in it, and red and NIR always (as at
    inference, where a sample lacks them its pixels are not clear)."""
    name = rng.choice(["all", "all", "rgbn", "pipeline"])
    wanted = np.isin(MODEL_BANDS, BAND_SUBSETS[name])
    present = np.isfinite(reflectance).any(axis=(1, 3, 4)) | np.isin(MODEL_BANDS, REQUIRED_BANDS)
    return (present & wanted).astype(np.float32)


def _network_inputs(reflectance: torch.Tensor, clear: torch.Tensor, available: np.ndarray, mean: np.ndarray,
                    std: np.ndarray, bands: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``normalise_season`` of a batch whose samples have their own band availability (sample, band).

    Samples of one availability are normalised together. The flags are (band + index,) where every
    sample has the same, as at inference, else (sample, band + index), which the network also takes.
    """
    kinds, which = np.unique(available, axis=0, return_inverse=True)
    which = which.reshape(-1)
    if len(kinds) == 1:
        return normalise_season(reflectance, clear, kinds[0], mean, std, bands)
    groups = [np.flatnonzero(which == kind) for kind in range(len(kinds))]
    parts = []
    for kind, members in zip(kinds, groups):
        index = torch.from_numpy(members).to(reflectance.device)
        x, seen, flags = normalise_season(reflectance[index], clear[index], kind, mean, std, bands)
        parts.append((x, seen, flags.expand(len(members), -1)))
    order = torch.from_numpy(np.argsort(np.concatenate(groups))).to(reflectance.device)
    x, seen, flags = (torch.cat(tensors)[order] for tensors in zip(*parts))
    return x, seen, flags


def _scene_loss(type_weight: float):
    def loss(logits, cover, crop_type, clear):
        """Pixel BCE over labelled clear pixels (plus the crop-type loss, unless ``type_weight`` is 0); None when
        there are none."""
        log_crop, log_non = crop_log_probability(logits)
        known = torch.isfinite(cover) & clear.any(dim=1)
        if not bool(known.any()):
            return None
        target = torch.nan_to_num(cover)
        binary = -(target * log_crop + (1 - target) * log_non)[known].mean()
        typed = known & (crop_type > 0)
        if type_weight == 0 or not bool(typed.any()):
            return binary
        crop_logits = logits.float()[:, 1:].permute(0, 2, 3, 1)[typed]
        return binary + type_weight * torch.nn.functional.cross_entropy(crop_logits, crop_type[typed] - 1)

    return loss


def _patch_loss(weight: float):
    def loss(logits, is_crop, clear):
        """BCE of the patch's mean P(crop) against its label (a patch label says what most of it is), over the
        patches with a clear pixel; None when none has one."""
        log_crop, _ = crop_log_probability(logits)
        seen = clear.any(dim=1).float()
        share = (log_crop.exp() * seen).sum(dim=(1, 2)) / seen.sum(dim=(1, 2)).clamp(min=1)
        share = share.clamp(1e-5, 1 - 1e-5)
        has = seen.flatten(1).any(dim=1)
        if not bool(has.any()):
            return None
        return weight * torch.nn.functional.binary_cross_entropy(share[has], is_crop[has])

    return loss


def _save_checkpoint(path: Path, net, optimiser, step: int, losses: list[float], config: TrainingConfig,
                     schedules: list[int], start_from: str, data_sha256: str, architecture: str,
                     seconds: float) -> None:
    """Save the training state at ``step``; ``schedules``: the total steps of each run of the chain of resumes
    that changed it (each set the learning rate's schedule for its own steps)."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    for i, state in optimiser.state_dict()["state"].items():  # by parameter: none before Adam's first step
        for key, value in state.items():
            tensors[f"adam.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    metadata = {"step": str(step), "losses": json.dumps(losses), "config": json.dumps(asdict(config)),
                "start_from": start_from, "data_sha256": data_sha256, "architecture": architecture,
                "seconds": repr(seconds),
                "schedule_steps": json.dumps(schedules)}
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_safetensors(tensors, path, metadata)


def _load_checkpoint(path: Path, net, optimiser, config: TrainingConfig, start_from: str,
                     data_sha256: str, architecture: str) -> tuple[int, list[float], float, list[int]]:
    """Load a checkpoint into ``net`` and ``optimiser``; returns its step, losses, training seconds and the total
    steps each run of its chain scheduled the learning rate for, this one's last.

    Parameters without Adam state in it (all, in one saved before any step learnt from a label) start without.

    A checkpoint written before it recorded its training data's hash resumes on any data; one written
    before it recorded its seconds gives 0, and one before it recorded its network family was of v2 (refused
    where this run trains another). One of a run of other steps resumes, with a warning: the learning rate
    follows the total steps, so it trains otherwise than a run of these steps from the start.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata()
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{path}: unreadable checkpoint ({exc})") from exc
    broken = non_finite(tensors)
    if broken:  # a damaged file: resumed, it would read as a learning rate too high
        raise InputError(f"{path}: checkpoint is damaged (not finite numbers in {some(broken)}); delete it")
    if not {"step", "losses", "config"} <= set(metadata or {}):
        raise InputError(f"{path}: is not a farmcredit training checkpoint (no checkpoint metadata, e.g. a model's "
                         "weights); give --checkpoint a file of its own")
    saved = {**SETTINGS_ADDED, **json.loads(metadata["config"])}
    differ = sorted(k for k, v in asdict(config).items() if k != "steps" and saved.get(k) != v)
    if differ:
        found = ", ".join(f"{k}={saved.get(k)} (now {getattr(config, k)})" for k in differ)
        raise InputError(f"{path}: checkpoint was trained with other settings: {found}; delete it or match them")
    if (trained_as := metadata.get("architecture", ARCHITECTURE_V2)) != architecture:
        upsampling = UPSAMPLING.get(trained_as, "unknown")
        raise InputError(f"{path}: checkpoint was trained as {trained_as} ({upsampling} upsampling), this run trains "
                         f"{architecture}; delete it")
    if metadata.get("start_from", "") != start_from:
        raise InputError(f"{path}: checkpoint fine-tunes other starting weights; delete it or start from the same")
    if metadata.get("data_sha256", data_sha256) != data_sha256:
        raise InputError(f"{path}: checkpoint was trained on other data (SHA-256 {metadata['data_sha256'][:12]}..., "
                         f"now {data_sha256[:12]}...); delete it or train on the same data")
    try:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as exc:  # e.g. a checkpoint from before untyped labels trained a one-crop-class network
        raise InputError(f"{path}: checkpoint holds another network than this run builds ({exc}); delete it") from exc
    state = optimiser.state_dict()
    for i in range(len(state["param_groups"][0]["params"])):
        if f"adam.{i}.step" in tensors:
            state["state"][i] = {key: tensors[f"adam.{i}.{key}"] for key in ("step", "exp_avg", "exp_avg_sq")}
    optimiser.load_state_dict(state)
    step = int(metadata["step"])
    if step > config.steps:
        raise InputError(f"{path}: checkpoint is at step {step}, past the {config.steps} steps asked; ask for at "
                         f"least {step} steps or delete it")
    earlier = [int(steps) for steps in json.loads(metadata.get("schedule_steps", json.dumps([saved["steps"]])))]
    schedules = earlier if earlier[-1] == config.steps else [*earlier, config.steps]
    if len(schedules) > 1:
        warnings.warn(f"{path}: the runs of this checkpoint scheduled the learning rate for {schedules} steps in turn "
                      f"(it follows the total steps), so the weights differ from a {config.steps}-step run from the "
                      "start; the card records it as schedule_steps", stacklevel=3)
    return step, json.loads(metadata["losses"]), float(metadata.get("seconds", 0.0)), schedules


def _write_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` to ``path`` as safetensors through a new file beside it that then replaces it whole: never
    half-written, and readable as the umask allows, whatever the mode of a file it replaces (safetensors'
    ``save_file`` makes a file 0600, which other accounts, e.g. a service running ``assess``, cannot read, and
    writing into such a file kept it 0600)."""
    from safetensors.torch import save

    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(partial, "xb") as handle:  # a file of its own, created 0666 less the umask
            handle.write(save(tensors, metadata=metadata))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # left only where writing or replacing failed


def save_model(net: CroplandNet, card: ModelCard, weights: Path) -> Path:
    """Write ``weights`` (safetensors) and its card (``sealed``: hashes filled in) beside it; returns the card path."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    _write_safetensors({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, weights)
    write_card(card, weights)
    return card_path(weights)


def train_from_folders(
    scenes: tuple[Path, ...],
    out: Path,
    config: TrainingConfig,
    *,
    eurosat: Path | None = None,
    eurosat_test_share: float = 0.0,
    band_layout: Sequence[tuple[date | None, str]] | None = None,
    dn_offset: float | None = None,
    dea: Path | None = None,
    dea_regions: tuple[str, ...] = (),
    init: Path | None = None,
    device: str = "auto",
    checkpoint: Path | None = None,
    progress: TrainProgress | None = None,
) -> ModelCard:
    """Load the labelled data from disk, train, and write ``out`` with its card (what ``farmcredit train`` does).

    With ``eurosat_test_share`` > 0, that share of each EuroSAT class is held out of training
    (``split_eurosat``, seed 0) and the card records the split, as the shipped model's does, so
    ``evaluate`` can score the held-out patches alone; it records the EuroSAT files' hash whenever
    they are used. A fine-tune keeps the split as ``with_starting_exposure`` says, warning when it
    drops it. Held-out patches its starting weights trained on (listed in their card's
    ``eurosat_trained_sha256``) are left out of the scores with a note; where an older card lists
    none and they trained on other EuroSAT files, a warning says these may include held-out
    patches, and the held-out score carries that note. ``dea`` is a folder of regions
    (``<region>/training_data.txt``) or one region's folder; ``dea_regions`` are the regions to
    train on (blank names ignored; none: ``DEFAULT_DEA_REGIONS`` where the folder holds them all,
    else every region it holds).
    ``band_layout`` names the bands of scenes given as GeoTIFF stacks and ``dn_offset`` the offset of their
    or their scene folders' DNs (``load_labelled_scene``).
    The card's paths are absolute; its metrics are those on the held-out EuroSAT patches and on
    the DEA folder's regions that neither this run nor its starting weights trained on
    (``held_out_metrics``): with neither, none, and a warning says how to get some; a warning also names a kind held
    out whose every patch or pixel the weights trained on (none of it is scored). The card also records each
    EuroSAT patch and DEA row the weights trained on (``trained_on``), by which ``evaluate`` leaves them out of any
    copy of the data.
    """
    from farmcredit.segmentation.data import (
        LABEL_FILES,
        eurosat_sha256,
        is_dea_folder,
        is_eurosat_folder,
        load_dea,
        load_eurosat,
        load_labelled_scene,
        split_eurosat,
    )

    out = Path(out)
    if out.suffix != ".safetensors" or out.is_dir():
        raise InputError(f"{out}: the weights go to a .safetensors file (its card .json beside it)")
    if card_path(out).is_dir():
        raise InputError(f"{card_path(out)}: is a folder, where the weights' card goes; write them to another file")
    if problem := name_problem(out.stem):
        raise InputError(f"{str(out)!r}: the model is named after its file (the model version in every result row), "
                         f"and {problem}; give the weights another file name")
    if init is not None and not Path(init).is_file():
        raise InputError(f"{init}: starting weights (--init) not found")
    if init is not None and out.resolve() == Path(init).resolve():
        raise InputError(f"{out}: is the starting weights (--init); write the fine-tuned model to another file")
    if checkpoint is not None and Path(checkpoint).is_dir():
        raise InputError(f"{checkpoint}: is a folder; --checkpoint names the file to save and resume training in")
    if checkpoint is not None and Path(checkpoint).resolve() in (out.resolve(), card_path(out).resolve()):
        raise InputError(f"{checkpoint}: is also where the weights or their card go, which would overwrite it; "
                         "give the checkpoint a file of its own")
    for path in (out, *([Path(checkpoint)] if checkpoint is not None else [])):
        can_write_in(path.absolute().parent)  # now, not after the training whose weights it would lose
    if not 0 <= eurosat_test_share < 1 or (eurosat_test_share > 0 and eurosat is None):
        raise InputError(f"--eurosat-test-share {eurosat_test_share}: give EuroSAT patches (--eurosat) and a share "
                         "from 0 (train on all) up to, not including, 1")
    scenes = tuple(Path(folder).resolve() for folder in scenes)
    for folder in scenes:  # told before anything is read
        kind = "EuroSAT" if is_eurosat_folder(folder) else "Digital Earth Africa" if is_dea_folder(folder) else ""
        if kind and not any((folder / name).is_file() for name in LABEL_FILES):
            option = "--eurosat" if kind == "EuroSAT" else "--dea"
            raise InputError(f"{folder}: a {kind} folder, not a labelled scene (imagery with its labels); give it "
                             f"with {option}")
    eurosat, dea, init = (Path(path).resolve() if path else None for path in (eurosat, dea, init))
    dea_root, dea_held = dea_folder_regions(dea) if dea else (None, ())
    dea_regions = _dea_training_regions(dea, dea_held, dea_regions) if dea else dea_regions
    record: dict = {"scenes": [str(folder) for folder in scenes], "eurosat": str(eurosat) if eurosat else None,
                    "dea": str(dea_root) if dea else None, **({"dea_regions": dea_regions} if dea else {}),
                    **({} if init else {"init": None}),  # a fine-tune's is written by train (starting_weights)
                    "data_licences": {source: licence for source, licence in DATA_LICENCES.items()
                                      if source == "imagery" or {"eurosat": eurosat, "dea": dea}[source]}}
    patches = load_eurosat(eurosat) if eurosat else None
    if patches is not None and patches.unreadable:
        warnings.warn(f"{eurosat}: {len(patches.unreadable)} of {len(patches.unreadable) + len(patches.is_crop)} "
                      f"EuroSAT patch files cannot be read (corrupt, truncated, not a GeoTIFF, not of 13 bands or of "
                      f"another size) and are left out of training: {some(list(patches.unreadable), limit=10)}",
                      stacklevel=2)
    held_out_patches = None
    if patches is not None and eurosat_test_share > 0:
        kept, held_out = split_eurosat(patches, eurosat_test_share, seed=0)
        if not (len(kept) and len(held_out)):
            raise InputError(f"--eurosat-test-share {eurosat_test_share} of {len(patches.is_crop)} patches holds "
                             f"{len(held_out)} out and keeps {len(kept)}: choose a share that leaves some of each")
        patches, held_out_patches = patches.subset(kept), patches.subset(held_out)
        record["eurosat_split"] = {"seed": 0, "test_share": eurosat_test_share, "train_patches": len(kept),
                                   "test_patches": len(held_out)}
    if eurosat is not None:
        record["eurosat_sha256"] = eurosat_sha256(eurosat)
    data = TrainingData(
        [load_labelled_scene(folder, band_layout, dn_offset) for folder in scenes], patches,
        load_dea(dea_root, dea_regions) if dea else None,
    )
    record["scene_imagery_sha256"] = [scene.imagery_sha256() for scene in data.scenes]
    record.update(trained_on(patches, data.pixels))
    start = CnnCroplandModel.from_file(init, device="cpu") if init else None
    caveat = ""
    if start is not None:
        record = with_starting_exposure(record, start.card.training)
        if held_out_patches is not None and "eurosat_split" not in record:
            warnings.warn(f"--eurosat-test-share {eurosat_test_share} dropped: the starting weights trained on these "
                          "EuroSAT files split another way (or on EuroSAT files their card does not name), so patches "
                          "held out here may have trained them; the card holds none out", stacklevel=2)
            held_out_patches = None
        # Where the base's card lists its patches, those among these are left out of the scores (held_out_metrics).
        elif (held_out_patches is not None and record.get("eurosat_base_sha256")
              and "eurosat_trained_sha256" not in record):
            caveat = ("held out of this fine-tune only: its starting weights trained on other EuroSAT files "
                      "(eurosat_base_sha256), which may include some of these patches")
            warnings.warn(f"the {len(held_out_patches.is_crop)} EuroSAT patches are {caveat}", stacklevel=2)
    net, card, _ = train(data, config, device=device, checkpoint=checkpoint, init=start, init_path=init,
                         progress=progress)
    # DEA regions in the folder that neither this run nor its starting weights trained on are scored into the card.
    seen = set(dea_regions) | set(record.get("dea_train_regions", ()))
    unseen = tuple(region for region in dea_held if region not in seen)
    if unseen:
        record["dea_test_regions"] = unseen
    card = replace(card, name=out.stem, training={**card.training, **record})
    held_out_pixels = load_dea(dea_root, unseen) if unseen else None
    metrics = held_out_metrics(CnnCroplandModel(net, card, device="cpu"), held_out_patches, held_out_pixels)
    if caveat:
        metrics["eurosat_test"]["note"] = caveat
    held_out = (("eurosat_test", held_out_patches, "eurosat"), ("dea_unseen_regions", held_out_pixels, "dea"))
    for key, data, kind in held_out:
        if data is not None and key not in metrics:  # the weights trained on every one of them (held_out_metrics)
            why = _trained_on_all(data, kind, start)
            warnings.warn(f"{card_path(out).name}: the card holds no {key} metric: {why}", stacklevel=2)
    if all(data is None for _, data, _ in held_out):
        warnings.warn(f"{card_path(out).name}: the card holds no held-out metrics (its metrics are empty): nothing "
                      "this run read was held out of training; give --eurosat with --eurosat-test-share, or --dea "
                      "with a folder holding regions left out of --dea-regions, or score scenes it did not train on "
                      f"with `farmcredit evaluate {out} SCENE`", stacklevel=2)
    card = replace(card, metrics=metrics)
    save_model(net, card, out)
    return card


def _trained_on_all(data: LabelledPatches, kind: str, start: CnnCroplandModel | None) -> str:
    """Why held-out ``data`` (``kind`` "eurosat" or "dea") has no score when the weights trained on every patch or
    pixel of it (``held_out_metrics``), ``start`` being the starting weights, and what to give instead."""
    from farmcredit.segmentation.metrics import trained_mask

    items, option = ("EuroSAT patches", "--eurosat patches") if kind == "eurosat" else ("DEA pixels", "--dea regions")
    by_start = trained_mask(data, kind, start.card.training) if start is not None else None
    who = ("the starting weights" if by_start is not None and by_start.all()
           else "this run or its starting weights" if start is not None
           else "this run (copies of them are among its training data)")
    return (f"{who} trained on all {len(data.is_crop)} held-out {items} (matched by their band values), so none is "
            f"scored; give {option} they did not train on")


def dea_folder_regions(folder: Path) -> tuple[Path, tuple[str, ...]]:
    """A Digital Earth Africa folder's root and the regions it holds: ``folder`` and each ``<region>`` with a
    ``<region>/training_data.txt``, or, for one region's folder (``training_data.txt`` itself), its parent and name.

    Raises:
        InputError: the folder holds no region.
    """
    regions = tuple(sorted(path.parent.name for path in folder.glob("*/training_data.txt")))
    if regions:
        return folder, regions
    if (folder / "training_data.txt").is_file():
        return folder.parent, (folder.name,)
    raise InputError(f"{folder}: not a Digital Earth Africa folder of regions (<region>/training_data.txt) "
                     "or a region's folder (training_data.txt)")


def _dea_training_regions(folder: Path, held: tuple[str, ...], asked: tuple[str, ...]) -> tuple[str, ...]:
    """The regions of DEA ``folder`` to train on: those ``asked`` (blank names ignored), or when none are,
    ``DEFAULT_DEA_REGIONS`` where it holds them all, else every region it holds (``held``).

    Raises:
        InputError: a region asked is not among those the folder holds.
    """
    asked = tuple(name for name in (region.strip() for region in asked) if name)
    if not asked:
        return DEFAULT_DEA_REGIONS if set(DEFAULT_DEA_REGIONS) <= set(held) else held
    if missing := [region for region in asked if region not in held]:
        raise InputError(f"{folder}: holds no Digital Earth Africa region {', '.join(missing)}; it holds "
                         f"{', '.join(held)}: choose the regions to train on among them with --dea-regions")
    return asked


def trained_on(patches: LabelledPatches | None, pixels: LabelledPatches | None) -> dict:
    """The training record of each EuroSAT patch and DEA row the weights train on.

    ``eurosat_trained_sha256``: the sorted, distinct SHA-256s of the training ``patches``' values as read
    (``load_eurosat``'s ``patch_sha256``). ``dea_trained_rows``: the training ``pixels``' fingerprints
    (``dea_row_fingerprints``, packed by ``pack_fingerprints``). Each only where that data is given.
    """
    record = {}
    if patches is not None:
        record["eurosat_trained_sha256"] = sorted(set(patches.patch_sha256.tolist()))
    if pixels is not None:
        record["dea_trained_rows"] = pack_fingerprints(dea_row_fingerprints(pixels))
    return record


def with_starting_exposure(record: dict, base: dict) -> dict:
    """A fine-tune's training record with what its starting weights (card training ``base``) saw added.

    The base's labelled scenes join ``scenes`` (each once), its ``data_licences`` this run's. DEA regions the
    base trained on join ``dea_train_regions`` (all regions when its card does not say which). EuroSAT: the
    base's files, split and ``eurosat_base_sha256`` carry over when this run reads none. When both read EuroSAT,
    ``eurosat_base_sha256`` lists the hash of each other set of files the base trained on, and this
    run's split stands if the base split the same files the same way, or trained on other files
    only (its held-out patches are then held out of this run, though the base's files may include
    some of them: only whole sets are hashed). Else (these files split another way, or files its
    card does not name) its held-out patches may be ones the base trained on, and the split is dropped.
    The base's EuroSAT patches and DEA rows (``trained_on``) join this run's; where the base trained on
    such data but its card keeps no such record, this run's is dropped (it would not be all of them).
    """
    record = dict(record)
    record["data_licences"] = {**base.get("data_licences", {}), **record.get("data_licences", {})}
    for key in ("scenes", "scene_imagery_sha256"):
        record[key] = list(dict.fromkeys([*base.get(key, ()), *record.get(key, ())]))
    base_regions = base.get("dea_train_regions") or (base.get("dea_regions", DEA_REGIONS) if base.get("dea") else ())
    if base_regions or record.get("dea"):
        record["dea_train_regions"] = sorted(set(base_regions) | set(record.get("dea_regions", ())))
    if base_regions and "dea_trained_rows" in base:
        rows = [unpack_fingerprints(source.get("dea_trained_rows", "")) for source in (base, record)]
        record["dea_trained_rows"] = pack_fingerprints(np.concatenate(rows))
    elif base_regions:
        record.pop("dea_trained_rows", None)
    if base.get("eurosat") is None and "eurosat_sha256" not in base:
        return record
    if "eurosat_trained_sha256" in base:
        record["eurosat_trained_sha256"] = sorted({*base["eurosat_trained_sha256"],
                                                   *record.get("eurosat_trained_sha256", ())})
    else:
        record.pop("eurosat_trained_sha256", None)
    base_files = [base.get("eurosat_sha256"), *base.get("eurosat_base_sha256", ())]
    if "eurosat_sha256" not in record:  # this run reads no EuroSAT (None: the base's files are not named)
        record["eurosat_sha256"] = base_files[0]
        record.update({key: base[key] for key in ("eurosat_split", "eurosat_base_sha256") if base.get(key)})
        return record
    others = [sha for sha in dict.fromkeys(base_files) if sha not in (None, record["eurosat_sha256"])]
    if others:
        record["eurosat_base_sha256"] = others
    if "eurosat_split" in record:
        mine, theirs = record["eurosat_split"], base.get("eurosat_split") or {}
        if base_files[0] == record["eurosat_sha256"]:
            stands = (theirs.get("seed"), theirs.get("test_share")) == (mine["seed"], mine["test_share"])
        else:
            stands = base_files[0] is not None and record["eurosat_sha256"] not in base_files
        if not stands:
            del record["eurosat_split"]
    return record


def held_out_metrics(model: CnnCroplandModel, eurosat: LabelledPatches | None, dea: LabelledPatches | None) -> dict:
    """The card's metrics on what training left out: held-out EuroSAT patches, DEA regions not trained on.

    Patches and pixels the card records as trained on (a fine-tune's starting weights', a copy of a training patch:
    ``trained_mask``) are left out, as ``evaluate`` leaves them out, and a ``note`` says how many; a kind all of whose
    items were trained on is not scored.
    """
    from farmcredit.segmentation.metrics import evaluate_patches, trained_mask

    metrics = {}
    for key, data, kind in (("eurosat_test", eurosat, "eurosat"), ("dea_unseen_regions", dea, "dea")):
        trained = trained_mask(data, kind, model.card.training) if data is not None else None
        if data is None or (trained is not None and trained.all()):
            continue
        if trained is None or not trained.any():
            metrics[key] = evaluate_patches(model, data, kind)
            continue
        items = "patches" if kind == "eurosat" else "pixels"
        note = (f"{int(trained.sum())} of the {len(trained)} held-out {items} left out: the weights trained on them "
                "(matched by their band values)")
        metrics[key] = {**evaluate_patches(model, data.subset(~trained), kind), "note": note}
    return metrics
