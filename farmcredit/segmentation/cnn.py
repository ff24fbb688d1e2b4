"""``CnnCroplandModel``: the trained network behind the ``CroplandModel`` interface, with tiled inference."""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from farmcredit.errors import InputError
from farmcredit.hashing import canonical_hash
from farmcredit.imagery import SeasonCube
from farmcredit.segmentation.card import INDICES, ModelCard, read_card
from farmcredit.segmentation.network import ALIGN_PX, RECEPTIVE_RADIUS_PX, CroplandNet, crop_log_probability

# Without red and NIR no band subset the network was trained on applies.
REQUIRED_BANDS = ("B04", "B08")
MARGIN_PX = math.ceil(RECEPTIVE_RADIUS_PX / ALIGN_PX) * ALIGN_PX + ALIGN_PX


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` as asked (CUDA must exist)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA GPU")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


@dataclass(frozen=True)
class Prediction:
    """Per-pixel output of the network on one raster.

    Attributes:
        crop_probability: float32 (rows, cols) calibrated P(cropland); NaN where no clear date.
        crop_class: int16 (rows, cols) index into ``card.classes``; -1 where no clear date.
    """

    crop_probability: np.ndarray
    crop_class: np.ndarray


class CnnCroplandModel:
    """The cropland CNN: any number of dates, any subset of the card's bands, clouds masked per date.

    On CPU it runs float32 (deterministic); on CUDA bf16 autocast with channels_last. Rasters
    larger than ``chip_px`` are cut into chips overlapping by ``MARGIN_PX`` (more than the
    network's receptive radius) on a grid aligned to its pooling, and each chip keeps only its
    core: the result equals one pass over the whole raster whatever the chip size, so there are
    no seams to blend.

    Example:
        >>> model = CnnCroplandModel.from_file(DEFAULT_WEIGHTS)  # doctest: +SKIP
        >>> probability = model.predict_proba(cube, indices)  # doctest: +SKIP
    """

    def __init__(self, net: CroplandNet, card: ModelCard, device: str = "auto", chip_px: int = 512,
                 batch_size: int = 4) -> None:
        if chip_px < 2 * MARGIN_PX + ALIGN_PX:
            raise ValueError(f"chip_px={chip_px} must exceed twice the {MARGIN_PX} px margin")
        self.card = card
        self.name = card.name
        self.bands = card.bands
        self.device = resolve_device(device)
        self.chip_px = chip_px
        self.batch_size = batch_size
        self.net = net.to(self.device).eval()
        layout = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        self.net = self.net.to(memory_format=layout)
        self._mean = np.asarray(card.band_mean, dtype=np.float32)
        self._std = np.asarray(card.band_std, dtype=np.float32)

    @classmethod
    def from_file(cls, weights: str | Path, device: str = "auto", **options) -> CnnCroplandModel:
        """Load safetensors weights and the card beside them (see ``read_card`` for what is refused)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        weights = Path(weights)
        card = read_card(weights)
        net = CroplandNet(len(card.bands) + len(INDICES), len(card.classes), card.width)
        try:
            net.load_state_dict(load_file(weights))
        except (SafetensorError, RuntimeError) as exc:
            raise InputError(f"{weights}: weights do not fit the network its card describes ({exc})") from exc
        return cls(net, card, device, **options)

    def describe(self) -> dict:
        """Name, a hash of all that decides the output, and where and in what precision it runs.

        The hash covers the weights as loaded (hashed from the tensors, so a model trained in
        memory is covered too), the bands, normalisation, classes and calibration; not the card's
        metrics or training notes, which do not change a probability.
        """
        weights = hashlib.sha256()
        for key, tensor in self.net.state_dict().items():
            weights.update(key.encode())
            weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        card = self.card
        decides = [card.architecture, card.name, card.bands, card.band_mean, card.band_std, card.classes, card.width,
                   card.calibration, weights.hexdigest()]
        return {"name": self.name, "hash": canonical_hash(decides), "architecture": card.architecture,
                "weights_sha256": card.weights_sha256, "device": self.device.type,
                "precision": "bfloat16" if self.device.type == "cuda" else "float32"}

    @property
    def mixed_margin(self) -> float:
        """Widening of the cultivated-area interval per unit of edge-cell share, from the card's calibration."""
        return float(self.card.calibration.get("mixed_margin", 0.0))

    def on_device(self, device: str = "auto") -> CnnCroplandModel:
        """The same weights on another device (``auto``: CUDA when this process sees one)."""
        if resolve_device(device) == self.device:
            return self
        # A copy: moving a module is in place, and this model keeps its own device.
        return CnnCroplandModel(copy.deepcopy(self.net), self.card, device, self.chip_px, self.batch_size)

    def predict_proba(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return P(cropland) for the window (see ``CroplandModel``); uses the cube's reflectance."""
        return self.predict(cube.reflectance, cube.clear, cube.bands).crop_probability

    def predict(self, reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str]) -> Prediction:
        """Classify a season raster.

        Args:
            reflectance: (time, band, rows, cols) surface reflectance 0-1, NaN where no data.
            clear: bool (time, rows, cols); False where cloudy, shadowed or no data.
            bands: names along the band axis (any order; bands the model does not know are ignored).

        Raises:
            InputError: wrong band count for ``bands``, or red or NIR missing.
        """
        x, clear, available = self._prepare(np.asarray(reflectance), np.asarray(clear, dtype=bool), tuple(bands))
        rows, cols = clear.shape[1:]
        logits = np.zeros((len(self.card.classes), rows, cols), dtype=np.float32)
        for (r0, _, c0, _), (k0, k1, j0, j1), out in self._run_chips(x, clear, available):
            logits[:, k0:k1, j0:j1] = out[:, k0 - r0 : k1 - r0, j0 - c0 : j1 - c0]
        return self._finish(logits[None], clear.any(axis=0)[None], 0)

    def predict_patches(self, reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str]) -> Prediction:
        """Classify small independent patches (patch, time, band, rows, cols) in one batch each; 1x1 works.

        Returns:
            The prediction with a leading patch axis.
        """
        n, steps, n_bands, rows, cols = reflectance.shape
        # Preparation is per pixel: patches side by side along the rows prepare as one raster.
        flat = np.moveaxis(np.asarray(reflectance), 0, 2).reshape(steps, n_bands, n * rows, cols)
        flat_clear = np.moveaxis(np.asarray(clear, dtype=bool), 0, 1).reshape(steps, n * rows, cols)
        x, flat_clear, available = self._prepare(flat, flat_clear, tuple(bands))
        x = np.moveaxis(x.reshape(steps, x.shape[1], n, rows, cols), 2, 0)
        clear = np.moveaxis(flat_clear.reshape(steps, n, rows, cols), 1, 0)
        logits = np.concatenate([
            self._forward(x[i : i + 64], clear[i : i + 64], np.repeat(available[None], len(x[i : i + 64]), axis=0))
            for i in range(0, n, 64)
        ])
        return self._finish(logits, clear.any(axis=1), slice(None))

    def _finish(self, logits: np.ndarray, seen: np.ndarray, index: int | slice) -> Prediction:
        """Calibrated P(crop) and class from logits (patch, classes, rows, cols); NaN / -1 where unseen."""
        with torch.no_grad():
            log_crop, log_non = crop_log_probability(torch.from_numpy(logits))
            calibration = self.card.calibration
            probability = torch.sigmoid(calibration["a"] * (log_crop - log_non) + calibration["b"]).numpy()
        crop_class = np.where(seen, np.argmax(logits, axis=1), -1)
        return Prediction(
            np.where(seen, probability, np.nan).astype(np.float32)[index], crop_class.astype(np.int16)[index]
        )

    def _prepare(
        self, reflectance: np.ndarray, clear: np.ndarray, bands: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reflectance in network band order, normalised, zero where unavailable; clear also needs finite data."""
        if reflectance.ndim != 4 or reflectance.shape[1] != len(bands):
            raise InputError(
                f"reflectance has shape {reflectance.shape}; expected (time, {len(bands)} bands {bands}, rows, cols)"
            )
        if clear.shape != (reflectance.shape[0], *reflectance.shape[2:]):
            raise InputError(f"clear mask shape {clear.shape} does not match reflectance {reflectance.shape}")
        missing = [b for b in REQUIRED_BANDS if b not in bands]
        if missing:
            raise InputError(f"the cropland model {self.name} needs bands {REQUIRED_BANDS}; missing {missing}")
        x = np.full((reflectance.shape[0], len(self.bands), *reflectance.shape[2:]), np.nan, dtype=np.float32)
        for position, band in enumerate(self.bands):
            if band in bands:
                x[:, position] = reflectance[:, bands.index(band)]
        # A band with no finite value anywhere is absent (e.g. B8A in a product without it), not a mask.
        present = np.isfinite(x).any(axis=(0, 2, 3)) | np.isin(self.bands, REQUIRED_BANDS)
        available = (np.isin(self.bands, bands) & present).astype(np.float32)
        return normalise_season(x, clear, available, self._mean, self._std, self.bands)

    def _run_chips(self, x: np.ndarray, clear: np.ndarray, available: np.ndarray):
        """Yield (chip bounds, core bounds, chip logits) over the raster, chips of one shape batched."""
        chips: dict[tuple[int, int], list] = {}
        for bounds, core_bounds in chip_grid(*clear.shape[1:], self.chip_px):
            r0, r1, c0, c1 = bounds
            chips.setdefault((r1 - r0, c1 - c0), []).append((bounds, core_bounds))
        for group in chips.values():
            for start in range(0, len(group), self.batch_size):
                members = group[start : start + self.batch_size]
                batch_x = np.stack([x[:, :, r0:r1, c0:c1] for (r0, r1, c0, c1), _ in members])
                batch_clear = np.stack([clear[:, r0:r1, c0:c1] for (r0, r1, c0, c1), _ in members])
                out = self._forward(batch_x, batch_clear, np.repeat(available[None], len(members), axis=0))
                for (bounds, core_bounds), chip_logits in zip(members, out):
                    yield bounds, core_bounds, chip_logits

    def _forward(self, x: np.ndarray, clear: np.ndarray, available: np.ndarray) -> np.ndarray:
        """Logits (batch, classes, rows, cols) as float32 numpy; bf16 + channels_last on CUDA."""
        device = self.device
        with torch.no_grad():
            tx = torch.from_numpy(x).to(device)
            tc = torch.from_numpy(clear).to(device)
            ta = torch.from_numpy(available).to(device)
            if device.type == "cuda":
                # The weights are channels_last, so cuDNN runs every convolution in that layout.
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    logits = self.net(tx, tc, ta)
            else:
                logits = self.net(tx, tc, ta)
        return logits.float().cpu().numpy()


def chip_grid(rows: int, cols: int, chip_px: int) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Chips covering a raster: ((r0, r1, c0, c1) read, (k0, k1, j0, j1) kept) per chip.

    Cores tile the raster on a grid aligned to ``ALIGN_PX``; each chip adds ``MARGIN_PX`` around
    its core, clipped to the raster, so an output pixel never sees a chip edge that the raster lacks.
    """
    if rows <= chip_px and cols <= chip_px:
        return [((0, rows, 0, cols), (0, rows, 0, cols))]
    core = (chip_px - 2 * MARGIN_PX) // ALIGN_PX * ALIGN_PX
    grid = []
    for k0 in range(0, rows, core):
        for j0 in range(0, cols, core):
            k1, j1 = min(k0 + core, rows), min(j0 + core, cols)
            read = (max(k0 - MARGIN_PX, 0), min(k1 + MARGIN_PX, rows),
                    max(j0 - MARGIN_PX, 0), min(j1 + MARGIN_PX, cols))
            grid.append((read, (k0, k1, j0, j1)))
    return grid


def normalise_season(
    reflectance: np.ndarray,
    clear: np.ndarray,
    available: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    bands: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network input from reflectance in network band order: the bands, then the ``INDICES``.

    Args:
        reflectance: (..., time, band, rows, cols) reflectance 0-1, NaN where no data.
        clear: bool (..., time, rows, cols).
        available: (band,) 1.0 for bands to use.
        mean: (band,) normalisation mean.
        std: (band,) normalisation standard deviation.
        bands: names along the band axis.

    Returns:
        Normalised reflectance followed by the index channels (all zero where unavailable or not
        clear), the clear mask narrowed to pixels with finite data in every available band, and
        the availability (band + index,) as float32.
    """
    present = np.flatnonzero(available > 0)
    usable_band = {band: bool(available[i] > 0) for i, band in enumerate(bands)}
    n_bands = len(bands)
    # One output array filled in place, band by band: a season is large and numpy runs single-threaded.
    out = np.zeros((*reflectance.shape[:-3], n_bands + len(INDICES), *reflectance.shape[-2:]), dtype=np.float32)
    clear = np.array(clear, dtype=bool)
    for i in present:
        clear &= np.isfinite(reflectance[..., i, :, :])
    hidden = ~clear
    for i in present:
        channel = out[..., i, :, :]
        np.subtract(reflectance[..., i, :, :], mean[i], out=channel)
        channel /= std[i]
        channel[hidden] = 0.0
    index_available = []
    for k, (a, b) in enumerate(INDICES):
        usable = usable_band.get(a, False) and usable_band.get(b, False)
        index_available.append(float(usable))
        if usable:
            channel = out[..., n_bands + k, :, :]
            high, low = reflectance[..., bands.index(a), :, :], reflectance[..., bands.index(b), :, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                np.subtract(high, low, out=channel)
                channel /= high + low
            channel[hidden | ~np.isfinite(channel)] = 0.0
            np.clip(channel, -1.0, 1.0, out=channel)
    flags = np.concatenate([available.astype(np.float32), np.asarray(index_available, dtype=np.float32)])
    return out, clear, flags
