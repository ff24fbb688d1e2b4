"""``CnnCroplandModel``: the trained network behind the ``CroplandModel`` interface, with tiled inference."""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from farmcredit.errors import InputError
from farmcredit.hashing import canonical_hash
from farmcredit.imagery import SeasonCube
from farmcredit.imagery.read import HIGH_REFLECTANCE, is_reflectance
from farmcredit.margins import AreaMargins, without_margins
from farmcredit.segmentation.card import INDICES, REQUIRED_BANDS, UPSAMPLING, ModelCard, read_card
from farmcredit.segmentation.network import (
    ALIGN_PX,
    RECEPTIVE_RADIUS_PX,
    CroplandNet,
    crop_log_probability,
    non_finite,
)
from farmcredit.text import some

MARGIN_PX = math.ceil(RECEPTIVE_RADIUS_PX / ALIGN_PX) * ALIGN_PX + ALIGN_PX
# Reflectance 0-1 exceeds 1 only on bright cloud, snow or glint (up to about 2) and saturated pixels
# (65535 DN, 6.55): more than half the values above 2, or any above 100, means another scale.
# Values per strip, all bands scanned together, when scanning the input (a few MB of temporaries).
SCAN_VALUES = 1 << 20
# Red and NIR swapped: no land surface is bright in red (>= SWAP_RED), with NIR under SWAP_NIR_RATIO of it
# (NDVI < -0.5; a turbid river reaches about -0.4 at red 0.16) and red over SWAP_GREEN_RATIO x green (B03, where
# given: shallow water on a bright bottom, brine or slush keep red near green), but vegetation read with the two
# bands swapped is. Measured share of clear pixels so: 0 on sample_tiles, FTW Austria, EuroSAT, DEA and a desert
# L2A tile as named; 0.19-0.60 on the vegetated ones with the two swapped (sample_tiles 0.21; 0.02-0.53 per date).
# Above SWAP_SHARE the input is refused. Checked per call: ``assess`` checks each window it reads.
SWAP_RED = 0.2
SWAP_NIR_RATIO = 1 / 3
SWAP_GREEN_RATIO = 2.0
SWAP_SHARE = 0.1
# Red and blue swapped: bare soil brightens from blue through green to red, NIR above red (L2A, and L1C, whose haze
# lifts blue), so soil read with the two swapped falls from a bright "blue" (>= SOIL_BRIGHT, over SOIL_RATIO x "red"
# and by SOIL_STEP at least) through green, with NIR from 1 to SOIL_NIR_RATIO x "blue" (water and vegetation fall
# outside; haze and thin cloud, which lift blue less than 1.5x over red, too). Measured share of clear pixels read
# so: at most 0.02% on every real set as named (0 on L2A: sample_tiles, FTW Austria, DEA, the desert tile; EuroSAT
# L1C), 0.12% and 0.07% on the eo-learn Slovenia km2's two cloudy dates left unmasked (5.7% and 15% at a ratio of 1.2);
# with red and blue swapped, sample_tiles 50%, FTW Austria 4.7% (two summer dates, mostly vegetation), the desert
# 99.7%, DEA 13-81% per region (EuroSAT L1C 0.9%: not caught), the soil read the right way round then 0.02% at
# most. Refused above BLUE_SWAP_SHARE when also over BLUE_SWAP_DOMINANCE x the soil read the right way round (bright
# blue roofs in a window with some soil in it are not soil swapped). A season of vegetation alone cannot tell.
SOIL_BRIGHT = 0.16
SOIL_RATIO = 1.5
SOIL_STEP = 0.03
SOIL_NIR_RATIO = 2.5
BLUE_SWAP_SHARE = 0.03
BLUE_SWAP_DOMINANCE = 4.0
# Other pairs swapped, each told by vegetation read through the swap as no surface reflects: per pair, the bands it
# needs, the test of one pixel (those bands, in that order) and what it sees, in the order checked (a swap can read as
# another: blue and green as green and red on DEA). Refused when over SPECTRUM_SHARE of clear pixels and at least
# SPECTRUM_PIXELS are so (one odd field in a small window is not a swapped band). Measured per date or patch, whole
# and in every 16, 32 and 64 px window (8 px on EuroSAT; DEA in runs of 256, 1024, 4096 pixels), on sample_tiles,
# FTW Austria, the Slovenia km2 (cloudy dates unmasked), all 200 EuroSAT patches, DEA's six regions and the desert
# tile as named: at most 0.74% (sample_tiles, red-SWIR1, 16 px) and 4 pixels (sample_tiles, NIR-SWIR1, a whole
# date) flagged in any; with the pair swapped, whole images refused (EuroSAT patches, FTW and Slovenia dates,
# sample_tiles dates, DEA region-seasons): green-NIR 89%, 2/2, 4/5, 94%, 12/12; red-SWIR1 74%, -, 4/5, 88%, 11/12;
# NIR-SWIR1 46%, -, 3/5, 44%, 6/12; blue-green 0%, 2/2, 0/5 (top of atmosphere: haze lifts blue over green), 56%,
# 7/12. Green and red swapped are not checked: senescent vegetation (FTW's late-September fields, green 0.7x red,
# NIR 3.4x it) reads as vegetation does through that swap. The desert tile, without vegetation, cannot tell.
SPECTRUM_SHARE = 0.03
SPECTRUM_PIXELS = 50
# A DN offset taken off twice (-1000 off DNs that had it off already) leaves every band 0.1 low: vegetation's blue,
# green and red, under 0.1, fall below 0, which also reads as bands swapped. Water and shadow in L2A dip a little
# below 0 in one band or two, never over a fifth of clear pixels in several bands.
NEGATIVE_SHARE = 0.2
NEGATIVE_BANDS = 2
IMPLAUSIBLE_SPECTRA: tuple[tuple[tuple[str, ...], Callable[..., np.ndarray], str], ...] = (
    (("B03", "B04", "B08"), lambda green, red, nir: (green >= 0.15) & (green >= 2 * red) & (nir < green),
     'green (B03) and NIR (B08) swapped ("green" bright, at least 0.15 and twice red, over "NIR")'),
    # "red" of 0.14 at least, over water's: turbid water with floating vegetation (EuroSAT SeaLake_15, red 0.10)
    # read with its SWIR2 as SWIR1 flags 3.2% of the patch at 0.1, 2 pixels at 0.14.
    (("B04", "B08", "B11"), lambda red, nir, swir: (red >= 0.14) & (swir < 0.5 * red) & (nir > 1.2 * red),
     'red (B04) and SWIR1 (B11) swapped ("SWIR1" under half a "red" of at least 0.14, NIR over 1.2x it)'),
    (("B04", "B08", "B11"), lambda red, nir, swir: (nir >= 3 * red) & (swir > 1.5 * nir),
     'NIR (B08) and SWIR1 (B11) swapped ("SWIR1" over 1.5x "NIR", which is over 3x red)'),
    (("B02", "B03", "B04", "B08"), lambda blue, green, red, nir: (blue >= 1.7 * green) & (nir >= 3 * red),
     'blue (B02) and green (B03) swapped ("blue" over 1.7x "green", NIR over 3x red)'),
)
# Pixels with no clear date (persistent cloud, no data) take their nearest seen pixel's data before the network
# runs and are masked after it, so the network sees past them as it sees past a raster edge (its convolutions
# replicate the edge) instead of a hole of zeros that moves the probabilities around it. A seen pixel depends on
# input within RECEPTIVE_RADIUS_PX (a square), whose nearest seen pixel is at most that times sqrt(2) away: a
# chip filled from a window wider by this has the fill of the whole raster.
FILL_CONTEXT_PX = math.ceil(RECEPTIVE_RADIUS_PX * math.sqrt(2))
# The lines of torch's refusal of a state dict that name a tensor (after its "Error(s) in loading" heading).
STATE_DICT_PROBLEMS = ("size mismatch", "Missing key", "Unexpected key")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` as asked (CUDA must exist)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda (device= in Python) asked for, but torch sees no CUDA GPU")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


def to_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A numpy array on ``device``; one torch refuses (a negative stride, as flipped views have, or a byte order not the
    machine's) copied first."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    elif any(stride < 0 for stride in array.strides):
        array = array.copy()
    return torch.from_numpy(array).to(device)


@dataclass(frozen=True)
class Prediction:
    """Per-pixel output of the network on one raster.

    Attributes:
        crop_probability: float32 (rows, cols) calibrated P(cropland); NaN where no clear date.
        crop_class: int16 (rows, cols) index into ``card.classes``, consistent with the probability:
            0 (non-crop) where P(cropland) < 0.5, else the most likely crop class; -1 where the probability is NaN.
    """

    crop_probability: np.ndarray
    crop_class: np.ndarray


@dataclass(frozen=True)
class ChipBatch:
    """Chips of one shape, filled and in the network's band order, to be normalised where the network runs.

    Attributes:
        chips: ((r0, r1, c0, c1) read, (k0, k1, j0, j1) kept) per chip, as ``chip_grid``.
        seen: bool (chip, rows, cols), pixels with a clear date with finite data in every available band;
            the output is masked elsewhere.
        reflectance: float32 (chip, time, band, rows, cols) in the card's band order, NaN where no data or the
            band is not given; pixels not seen hold their nearest seen pixel's data (``FILL_CONTEXT_PX``).
        clear: bool (chip, time, rows, cols), filled as ``reflectance``.
        available: float32 (band,) 1.0 for bands the network may use.
        interior: no chip touches the raster's edge (the network pads them with zeros: ``CroplandNet.forward``).
    """

    chips: list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]
    seen: np.ndarray
    reflectance: np.ndarray
    clear: np.ndarray
    available: np.ndarray
    interior: bool = False


class CnnCroplandModel:
    """The cropland CNN: any number of dates, any subset of the card's bands, clouds masked per date.

    On CPU it runs float32 (deterministic); on CUDA bf16 autocast, in the default (NCHW) layout:
    channels_last measured 1.68x slower on an H200 (a tile of 8-chip batches of 1024 px, 4 dates,
    in 1.39 s vs 0.83 s), as the edge-replicating padding and the concatenations convert layouts. Rasters
    larger than ``chip_px`` are cut into chips overlapping by ``MARGIN_PX`` (more than the
    network's receptive radius) on a grid aligned to its pooling, and each chip keeps only its
    core: the result equals one pass over the whole raster whatever the chip size (to float32
    rounding of the convolutions, under 1e-6), so there are no seams to blend. Each batch of chips
    is prepared (normalised) on its own and its cores' calibrated crop logits and classes written
    out at once (the sigmoid runs once at the end), so memory beyond the input, the two output
    rasters and a boolean map of the pixels seen is that of one batch of chips. Pixels with no
    clear date take their nearest seen pixel's data before the network and are NaN after it
    (``FILL_CONTEXT_PX``).

    Example:
        >>> model = CnnCroplandModel.from_file(DEFAULT_WEIGHTS)  # doctest: +SKIP
        >>> probability = model.predict_proba(cube, indices)  # doctest: +SKIP
    """

    # What ``assess`` reads around a window (margin, alignment of its origin; ``farmcredit.pipeline.context_window``):
    # every pixel the window's outputs depend on, with what their no-data fill looks at, on the pooling grid of a
    # pass over the whole raster.
    read_context = (MARGIN_PX + math.ceil(FILL_CONTEXT_PX / ALIGN_PX) * ALIGN_PX, ALIGN_PX)

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
        self._mean = np.asarray(card.band_mean, dtype=np.float32)
        self._std = np.asarray(card.band_std, dtype=np.float32)

    @classmethod
    def from_file(cls, weights: str | Path, device: str = "auto", **options) -> CnnCroplandModel:
        """Load safetensors weights and the card beside them (see ``read_card`` for what is refused)."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        weights = Path(weights)
        card = read_card(weights)
        shape = (len(card.bands) + len(INDICES), len(card.classes), card.width, UPSAMPLING[card.architecture])
        try:
            # The card's shape checked against the file's header first, on the meta device: a card edited to a width
            # of 3,000 built 6.7 GB of network (100,000: a failed 40 GB allocation) before the weights were found not
            # to fit.
            with safe_open(weights, "pt") as header, torch.device("meta"):
                CroplandNet(*shape).load_state_dict(
                    {name: torch.empty(header.get_slice(name).get_shape()) for name in header.keys()})
            net = CroplandNet(*shape)
            tensors = load_file(weights)
            net.load_state_dict(tensors)
        except (SafetensorError, RuntimeError) as exc:  # torch lists every mismatched tensor: name the first
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            first = next((line for line in lines if line.startswith(STATE_DICT_PROBLEMS)), lines[0])
            raise InputError(f"{weights}: weights do not fit the network its card describes ({len(card.classes)} "
                             f"classes, width {card.width}): {first}") from exc
        if broken := non_finite(tensors):  # every pixel would score NaN: no parcel could be assessed
            raise InputError(f"{weights}: weights hold numbers that are not finite (NaN or infinite) in {some(broken)} "
                             "(a damaged file or a training that diverged); restore or retrain them")
        return cls(net, card, device, **options)

    def describe(self) -> dict:
        """Name, a hash of the model, and where and in what precision it runs.

        The hash covers the weights as loaded (hashed from the tensors, so a model trained in
        memory is covered too), the bands, normalisation, classes and calibration; not the card's
        metrics or training notes, which do not change a probability. The code that runs it is
        pinned beside it in the audit record (``code_version``: the package's source hash).
        """
        card = self.card
        return {"name": self.name, "hash": self._hash(card.name, card.calibration), "architecture": card.architecture,
                "weights_sha256": card.weights_sha256, "device": self.device.type,
                "precision": "bfloat16" if self.device.type == "cuda" else "float32"}

    def measuring_hash(self) -> str:
        """The hash of what decides its measurements: ``describe``'s without the interval's margins, applied after,
        nor the name's calibration suffix, which a margin recalibrated alone changes too (a Platt fit changes the
        hash through the calibration's values)."""
        return self._hash(self.card.uncalibrated_name, without_margins(self.card.calibration))

    def _hash(self, name: str, calibration: Mapping) -> str:
        """The hash of the weights as loaded, the card's fields that decide a probability, ``name`` and
        ``calibration``."""
        weights = hashlib.sha256()
        for key, tensor in self.net.state_dict().items():
            weights.update(key.encode())
            weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        card = self.card
        decides = [card.architecture, name, card.bands, card.band_mean, card.band_std, card.classes, card.width,
                   calibration, weights.hexdigest()]
        if card.untrained_bands:  # cards before the field hash as they did
            decides.append(card.untrained_bands)
        return canonical_hash(decides)

    @property
    def area_margins(self) -> AreaMargins:
        """Widening of the cultivated-area interval per unit of edge-cell share by parcel size, from the card."""
        return self.card.area_margins

    def on_device(self, device: str = "auto") -> CnnCroplandModel:
        """The same weights on another device (``auto``: CUDA when this process sees one)."""
        if resolve_device(device) == self.device:
            return self
        # A copy: moving a module is in place, and this model keeps its own device.
        return CnnCroplandModel(copy.deepcopy(self.net), self.card, device, self.chip_px, self.batch_size)

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names of ``Prediction.crop_class`` (index 0 non-crop)."""
        return self.card.classes

    def predict_proba(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return P(cropland) for the window (see ``CroplandModel``); uses the cube's reflectance."""
        return self.classify(cube, indices).crop_probability

    def classify(self, cube: SeasonCube, indices: Mapping[str, np.ndarray]) -> Prediction:
        """P(cropland) and the class map (see ``classes``) of the window, in one pass."""
        return self.predict(cube.reflectance, cube.clear, cube.bands)

    def predict(self, reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str]) -> Prediction:
        """Classify a season raster.

        Args:
            reflectance: (time, band, rows, cols) surface reflectance 0-1, NaN where no data.
            clear: bool (time, rows, cols); False where cloudy, shadowed or no data.
            bands: names along the band axis, each once (any order; bands the model does not know are ignored).

        Raises:
            InputError: wrong band count for ``bands``, a band named twice, red or NIR missing,
                values that are not reflectance 0-1 (e.g. Sentinel-2 digital numbers), or red and
                NIR, red and blue or another pair that read as swapped (``SWAP_RED``, ``SOIL_BRIGHT``,
                ``IMPLAUSIBLE_SPECTRA``).
        """
        batches = self.chip_batches(reflectance, clear, bands)
        crop_logit = np.empty(np.shape(clear)[1:], dtype=np.float32)
        crop_class = np.empty(np.shape(clear)[1:], dtype=np.int16)
        for batch in batches:
            chip_logit, chip_class = self._score(
                self._forward(batch.reflectance, batch.clear, batch.available, batch.interior), batch.seen)
            for ((r0, _, c0, _), (k0, k1, j0, j1)), logit, kind in zip(batch.chips, chip_logit, chip_class):
                core = np.s_[k0 - r0 : k1 - r0, j0 - c0 : j1 - c0]
                crop_logit[k0:k1, j0:j1], crop_class[k0:k1, j0:j1] = logit[core], kind[core]
        # Run chip by chip, a raster larger than one chip can differ from one pass by float32 rounding (convolutions
        # of other sizes round otherwise; under 1e-6 measured); a raster within one chip is scored whole.
        return _finish(crop_logit, crop_class)

    def predict_patches(self, reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str]) -> Prediction:
        """Classify small independent patches (patch, time, band, rows, cols) in one batch each; 1x1 works.

        Returns:
            The prediction with a leading patch axis.
        """
        reflectance, clear, bands, available = self._checked(reflectance, clear, bands, "patch, time")
        logits, seen = [], []
        whole = (0, reflectance.shape[-2], 0, reflectance.shape[-1])
        for i in range(0, len(reflectance), 64):
            group = reflectance[i : i + 64], clear[i : i + 64]
            patches = [fill_window(*patch, whole) for patch in zip(*group, self._seen(*group, bands, available))]
            x = self._in_network_order(np.stack([p[0] for p in patches]), bands)
            logits.append(self._forward(x, np.stack([p[1] for p in patches]), available).float().cpu())
            seen.append(np.stack([p[2] for p in patches]))
        # Scored together, as the card's metrics were: torch's kernels round a few elements at the
        # end of a call differently, so scoring batch by batch would move some probabilities by 1 ulp.
        return _finish(*self._score(torch.cat(logits), np.concatenate(seen)))

    def chip_batches(self, reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str]) -> Iterator[ChipBatch]:
        """Check a season raster now (raises as ``predict``); then its chips, filled batch by batch (``ChipBatch``;
        ``network_inputs`` normalises one where the network runs).

        Batches as ``batch_plan``.
        """
        reflectance, clear, bands, available = self._checked(reflectance, clear, bands, "time")
        seen = self._seen(reflectance, clear, bands, available)
        return (self._chip_batch(members, interior, reflectance, clear, seen, bands, available)
                for members, interior in batch_plan(*clear.shape[1:], self.chip_px, self.batch_size))

    def _chip_batch(self, members: list, interior: bool, reflectance: np.ndarray, clear: np.ndarray,
                    seen: np.ndarray, bands: tuple[str, ...], available: np.ndarray) -> ChipBatch:
        """The chips ``members`` (as ``chip_grid``) of a checked season raster, filled, in the card's band order."""
        chips = [fill_window(reflectance, clear, seen, bounds) for bounds, _ in members]
        return ChipBatch(members, np.stack([c[2] for c in chips]), self._in_network_order(
            np.stack([c[0] for c in chips]), bands), np.stack([c[1] for c in chips]), available, interior)

    def network_inputs(self, reflectance: np.ndarray, clear: np.ndarray,
                       available: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The arguments of ``logits`` for chips given as in a ``ChipBatch``: moved to this model's device and
        normalised there (``normalise_season``)."""
        tensors = [to_tensor(array, self.device) for array in (reflectance, clear)]
        return normalise_season(*tensors, available, self._mean, self._std, self.bands)

    def logits(self, network_input: torch.Tensor, clear: torch.Tensor, flags: torch.Tensor,
               interior: bool = False) -> torch.Tensor:
        """Class logits for prepared tensors already on this model's device; bf16 autocast on CUDA.

        Args:
            network_input: (chip, time, band + index, rows, cols) as ``normalise_season`` gives.
            clear: bool (chip, time, rows, cols), narrowed as ``normalise_season`` gives.
            flags: (band + index,) for every chip, or (chip, band + index).
            interior: as ``ChipBatch.interior``.
        """
        with torch.no_grad():
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return self.net(network_input, clear, flags, interior)
            return self.net(network_input, clear, flags, interior)

    def _forward(self, reflectance: np.ndarray, clear: np.ndarray, available: np.ndarray,
                 interior: bool = False) -> torch.Tensor:
        """Logits (chip, classes, rows, cols), on this model's device, of chips as ``ChipBatch``."""
        return self.logits(*self.network_inputs(reflectance, clear, available), interior)

    def _score(self, logits: torch.Tensor, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated crop logit (NaN where unseen) and most likely crop class (-1 where unseen) per pixel.

        Computed where the logits are: from the GPU, only these two come back (6 bytes a pixel, not 4 per class).

        Args:
            logits: (chip, classes, rows, cols).
            seen: bool (chip, rows, cols), pixels with a clear date.
        """
        with torch.no_grad():
            log_crop, log_non = crop_log_probability(logits)
            calibration = self.card.calibration
            crop_logit = (calibration["a"] * (log_crop - log_non) + calibration["b"]).cpu().numpy()
            crop_class = (torch.argmax(logits[:, 1:], dim=1) + 1).to(torch.int16).cpu().numpy()
        return np.where(seen, crop_logit, np.nan).astype(np.float32), np.where(seen, crop_class, -1).astype(np.int16)

    def _checked(
        self, reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str], leading: str
    ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
        """Validated arrays and band names, and the availability (network band,) as float32.

        A band counts as available when given and with a finite value somewhere in the whole
        input (red and NIR always): a band with none is absent (e.g. B8A in a product without
        it), not a mask; so is a band the card lists as untrained. The whole input is scanned a
        strip at a time, never copied.

        Raises:
            InputError: wrong or empty shapes, a band named twice, red or NIR missing, values not reflectance
                0-1, or red and NIR, red and blue or another pair that read as swapped (``SWAP_RED``,
                ``SOIL_BRIGHT``, ``IMPLAUSIBLE_SPECTRA``).
        """
        reflectance, clear, bands = np.asarray(reflectance), np.asarray(clear, dtype=bool), tuple(bands)
        axes = leading.count(",") + 4
        if reflectance.ndim != axes or reflectance.shape[-3] != len(bands):
            raise InputError(
                f"reflectance has shape {reflectance.shape}; "
                f"expected ({leading}, {len(bands)} bands {bands}, rows, cols)"
            )
        if clear.shape != reflectance.shape[:-3] + reflectance.shape[-2:]:
            raise InputError(f"clear mask shape {clear.shape} does not match reflectance {reflectance.shape}")
        if reflectance.size == 0:
            raise InputError(f"reflectance has shape {reflectance.shape} ({leading}, band, rows, cols): nothing to "
                             "classify; give at least one date of at least one pixel")
        repeated = sorted({b for b in bands if bands.count(b) > 1})
        if repeated:
            raise InputError(f"bands {bands} name {repeated} more than once; each band of the raster needs its own")
        missing = [b for b in REQUIRED_BANDS if b not in bands]
        if missing:
            raise InputError(f"the cropland model {self.name} needs bands {REQUIRED_BANDS}; missing {missing}")
        counts = check_reflectance(reflectance, clear, bands, self.bands)
        available = [b in counts and (counts[b][0].any() or b in REQUIRED_BANDS) and b not in self.card.untrained_bands
                     for b in self.bands]
        return reflectance, clear, bands, np.asarray(available, dtype=np.float32)

    def _seen(self, reflectance: np.ndarray, clear: np.ndarray, bands: tuple[str, ...],
              available: np.ndarray) -> np.ndarray:
        """bool (..., rows, cols) of (..., time, band, rows, cols): a clear date with reflectance (finite, no fill
        value) in every available band (what ``normalise_season`` keeps), scanned a strip of rows at a time."""
        used = [reflectance[..., bands.index(band), :, :] for band, use in zip(self.bands, available) if use]
        return np.concatenate([np.logical_and.reduce([mask, *map(is_reflectance, strips)]).any(axis=-3)
                               for mask, *strips in _clear_strips(clear, *used)], axis=-2)

    def _in_network_order(self, reflectance: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
        """float32 (..., time, band, rows, cols) given in ``bands`` order put in the card's, NaN for bands not given
        (the array itself when already so)."""
        if bands == self.bands and reflectance.dtype == np.float32:
            return reflectance
        x = np.empty((*reflectance.shape[:-3], len(self.bands), *reflectance.shape[-2:]), dtype=np.float32)
        for position, band in enumerate(self.bands):
            x[..., position, :, :] = reflectance[..., bands.index(band), :, :] if band in bands else np.nan
        return x


def _finish(crop_logit: np.ndarray, crop_class: np.ndarray) -> Prediction:
    """The prediction from calibrated crop logits (NaN where unseen) and most likely crop classes, both in place.

    The sigmoid runs once over the whole output: torch computes a few elements at the end of
    each thread's range another way (1 ulp apart), so per-chip calls would change some bits.
    """
    probability = torch.sigmoid_(torch.from_numpy(crop_logit)).numpy()
    crop_class[probability < 0.5] = 0
    crop_class[np.isnan(probability)] = -1  # no probability, no class (unseen, or logits the network made NaN)
    return Prediction(probability, crop_class)


def fill_window(reflectance: np.ndarray, clear: np.ndarray, seen: np.ndarray,
                bounds: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reflectance (time, band, ...), clear (time, ...) and seen of the window ``bounds`` (r0, r1, c0, c1) of a
    season raster whose ``seen`` map is given, each pixel not seen holding its nearest seen pixel's data.

    The nearest is found within ``FILL_CONTEXT_PX`` around the window (Euclidean, ties as scipy's
    ``distance_transform_edt``); a window all seen, or with nothing seen (all masked anyway), is returned as is.
    """
    r0, r1, c0, c1 = bounds
    inside = seen[r0:r1, c0:c1]
    if inside.all() or not inside.any():
        return reflectance[:, :, r0:r1, c0:c1], clear[:, r0:r1, c0:c1], inside
    e0, f0 = max(r0 - FILL_CONTEXT_PX, 0), max(c0 - FILL_CONTEXT_PX, 0)
    context = seen[e0 : r1 + FILL_CONTEXT_PX, f0 : c1 + FILL_CONTEXT_PX]
    rows, cols = ndimage.distance_transform_edt(~context, return_distances=False, return_indices=True)
    window, hole = np.s_[r0 - e0 : r1 - e0, c0 - f0 : c1 - f0], ~inside
    rows, cols = rows[window][hole] + e0, cols[window][hole] + f0
    filled, filled_clear = reflectance[:, :, r0:r1, c0:c1].copy(), clear[:, r0:r1, c0:c1].copy()
    filled[:, :, hole], filled_clear[:, hole] = reflectance[:, :, rows, cols], clear[:, rows, cols]
    return filled, filled_clear, inside



def check_reflectance(reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str],
                      read: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """Refuse what is not Sentinel-2 reflectance as named: values not 0-1, red and NIR or red and blue that read as
    swapped (``SWAP_RED``, ``SOIL_BRIGHT``), or a pair of ``IMPLAUSIBLE_SPECTRA``. Shared by prediction and training,
    so a model is never trained on what it would refuse to score.

    Args:
        reflectance: (..., band, rows, cols) in ``bands`` order, containing red and NIR; clear: (..., rows, cols).
        read: the bands whose values are judged (a model's).

    Returns:
        Per band of ``read`` given, its value counts over clear pixels (``_value_counts``).

    Raises:
        InputError: digital numbers, reflectance below 0 in several bands (a DN offset applied twice), or red and
            NIR, red and blue or a pair of ``IMPLAUSIBLE_SPECTRA`` that read as swapped.
    """
    counts = {b: _value_counts(reflectance[..., bands.index(b), :, :], clear) for b in read if b in bands}
    # Judged per band of each date: one band or date in digital numbers is as wrong as all of them, while a few such
    # values are fill or saturation, left out (normalise_season).
    scaled = {b: high > 0.5 * finite for b, (finite, high) in counts.items()}
    wrong = sorted(b for b, layers in scaled.items() if layers.any())
    if wrong:
        layers = sum(int(scaled[b].sum()) for b in wrong)
        raise InputError(
            f"reflectance must be 0-1, but most values of {layers} band-date(s) ({', '.join(wrong)}) exceed "
            f"{HIGH_REFLECTANCE:g}: Sentinel-2 digital numbers must be divided by 10000 (after adding the product's "
            "offset, -1000 since processing baseline 04.00)"
        )
    negative = [b for b in read if b in bands and _negative_share(reflectance[..., bands.index(b), :, :], clear)
                > NEGATIVE_SHARE]
    if len(negative) >= NEGATIVE_BANDS:
        raise InputError(
            f"reflectance is below 0 on over {NEGATIVE_SHARE:.0%} of clear pixels in {len(negative)} bands "
            f"({', '.join(negative)}): the DN offset looks applied twice or wrongly (-1000 taken off DNs that already "
            "had it off), not the band order; check where the scenes' DN offsets come from (a STAC item's "
            "earthsearch:boa_offset_applied or raster:bands, a SAFE's BOA_ADD_OFFSET, band files' GDAL offset tags) "
            "and --dn-offset (dn_offset= in Python)"
        )
    red, nir = (reflectance[..., bands.index(b), :, :] for b in REQUIRED_BANDS)
    green = reflectance[..., bands.index("B03"), :, :] if "B03" in bands else None
    swapped = _swapped_share(red, nir, green, clear)
    if swapped > SWAP_SHARE:
        raise InputError(
            f"bands look mislabelled: on {swapped:.0%} of clear pixels {REQUIRED_BANDS[0]} (red) is bright "
            f"(>= {SWAP_RED:g}, over twice green) and {REQUIRED_BANDS[1]} (NIR) under a third of it, as "
            "vegetation reads with red and NIR swapped and no land surface does; check the band order (--bands, "
            "band_layout= in Python) or band descriptions"
        )
    if "B02" in bands and green is not None:
        blue = reflectance[..., bands.index("B02"), :, :]
        swapped, right = _soil_shares(red, green, blue, nir, clear)
        if swapped > BLUE_SWAP_SHARE and swapped > BLUE_SWAP_DOMINANCE * right:
            raise InputError(
                f"bands look mislabelled: {swapped:.1%} of clear pixels read as bare soil with red (B04) and blue "
                f"(B02) swapped (\"blue\" bright, over {SOIL_RATIO:g}x \"red\", falling through green; {right:.1%} "
                "read as soil the right way round); check the band order (a stack's --bands, band_layout= in Python, "
                "or band descriptions)"
            )
    for need, implausible, swap in IMPLAUSIBLE_SPECTRA:
        if set(need) <= set(bands):
            odd, seen = _implausible_count([reflectance[..., bands.index(b), :, :] for b in need], clear, implausible)
            if odd > SPECTRUM_SHARE * seen and odd >= SPECTRUM_PIXELS:
                raise InputError(f"bands look mislabelled: {odd / seen:.1%} of clear pixels ({odd}) read as no land "
                                 f"surface does, as vegetation does with {swap}; check the band order (a stack's "
                                 "--bands, band_layout= in Python, or band descriptions; another pair of these bands "
                                 "may be the one swapped)")
    return counts


def _negative_share(band: np.ndarray, clear: np.ndarray) -> float:
    """Share of a band's clear pixels with data whose reflectance is below 0."""
    seen = clear & np.isfinite(band)
    return float(np.count_nonzero(seen & (band < 0)) / max(np.count_nonzero(seen), 1))


def _value_counts(band: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per layer (leading index: date, patch) of one band, its clear pixels' finite values and values above
    ``HIGH_REFLECTANCE`` (saturated cloud, masked, says nothing of the scale); ``band`` and ``clear`` of one shape.

    A strip of rows at a time (``_clear_strips``).
    """
    finite = high = np.zeros(band.shape[:-2], dtype=np.int64)
    for mask, strip in _clear_strips(clear, band):
        finite = finite + np.count_nonzero(np.isfinite(strip) & mask, axis=(-2, -1))
        high = high + np.count_nonzero((strip > HIGH_REFLECTANCE) & mask, axis=(-2, -1))
    return finite, high


def _swapped_share(red: np.ndarray, nir: np.ndarray, green: np.ndarray | None, clear: np.ndarray) -> float:
    """Share of clear pixels with red and NIR whose red is bright, NIR under a third of it and red over twice
    green where green is given (``SWAP_RED``); a pixel without green is judged on red and NIR."""
    seen = odd = 0
    for mask, r, n, *g in _clear_strips(clear, red, nir, *([] if green is None else [green])):
        both = np.isfinite(r) & np.isfinite(n) & mask
        seen += np.count_nonzero(both)
        odd_pixel = both & (r >= SWAP_RED) & (n < SWAP_NIR_RATIO * r)
        if g:
            odd_pixel &= ~(g[0] * SWAP_GREEN_RATIO >= r)  # NaN green: not ruled out
        odd += np.count_nonzero(odd_pixel)
    return odd / max(seen, 1)


def _implausible_count(layers: list[np.ndarray], clear: np.ndarray,
                       implausible: Callable[..., np.ndarray]) -> tuple[int, int]:
    """Clear pixels with every band of ``layers`` finite that ``implausible`` flags, and all such pixels."""
    seen = odd = 0
    for mask, *strips in _clear_strips(clear, *layers):
        usable = np.logical_and.reduce([np.isfinite(strip) for strip in strips]) & mask
        seen += np.count_nonzero(usable)
        odd += np.count_nonzero(implausible(*strips) & usable)
    return odd, seen


def _soil_shares(red: np.ndarray, green: np.ndarray, blue: np.ndarray, nir: np.ndarray,
                 clear: np.ndarray) -> tuple[float, float]:
    """Shares of clear pixels with all four bands that read as bare soil with red and blue swapped, and the right
    way round (``SOIL_BRIGHT``)."""
    seen = swapped = right = 0
    for mask, r, g, b, n in _clear_strips(clear, red, green, blue, nir):
        seen += np.count_nonzero(np.isfinite(r) & np.isfinite(g) & np.isfinite(b) & np.isfinite(n) & mask)
        swapped += np.count_nonzero(_soil(b, g, r, n) & mask)
        right += np.count_nonzero(_soil(r, g, b, n) & mask)
    return swapped / max(seen, 1), right / max(seen, 1)


def _soil(high: np.ndarray, middle: np.ndarray, low: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Bare soil's visible slope, ``high`` band bright over ``middle`` over ``low``, NIR from 1 to ``SOIL_NIR_RATIO``
    x ``high`` (False where any is NaN)."""
    return ((high >= SOIL_BRIGHT) & (high > middle) & (middle > low) & (high >= SOIL_RATIO * low)
            & (high - low >= SOIL_STEP) & (nir >= high) & (nir < SOIL_NIR_RATIO * high))


def _clear_strips(clear: np.ndarray, *bands: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Strips of rows of ``clear`` and of ``bands`` (each of its shape), views: about ``SCAN_VALUES`` values in
    all per strip whatever the raster size (one row of each band at least)."""
    step = max(1, SCAN_VALUES // max(1, len(bands) * bands[0][..., :1, :].size))
    for r0 in range(0, bands[0].shape[-2], step):
        yield clear[..., r0 : r0 + step, :], *(band[..., r0 : r0 + step, :] for band in bands)


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


def batch_plan(rows: int, cols: int, chip_px: int, batch_size: int) -> list[tuple[list, bool]]:
    """The chips of ``chip_grid`` in batches of up to ``batch_size`` of one shape, each all inside the raster or all
    touching its edge: (chips, inside) per batch."""
    groups: dict[tuple[int, int, bool], list] = {}
    for bounds, core_bounds in chip_grid(rows, cols, chip_px):
        r0, r1, c0, c1 = bounds
        interior = r0 > 0 and c0 > 0 and r1 < rows and c1 < cols
        groups.setdefault((r1 - r0, c1 - c0, interior), []).append((bounds, core_bounds))
    return [(group[start : start + batch_size], interior) for (*_, interior), group in groups.items()
            for start in range(0, len(group), batch_size)]


def normalise_season(
    reflectance: torch.Tensor,
    clear: torch.Tensor,
    available: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    bands: tuple[str, ...],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network input from reflectance in network band order: the bands, then the ``INDICES``.

    Runs where the tensors are (on the GPU when the network runs there, bitwise equal to the CPU's
    result on an H200), with torch's threads, in float32 arithmetic that rounds as numpy's would.

    Args:
        reflectance: float32 (..., time, band, rows, cols) reflectance 0-1, NaN where no data.
        clear: bool (..., time, rows, cols).
        available: (band,) 1.0 for bands to use.
        mean: (band,) normalisation mean.
        std: (band,) normalisation standard deviation.
        bands: names along the band axis.

    Returns:
        Normalised reflectance followed by the index channels (all zero where unavailable or not
        clear), the clear mask narrowed to pixels with finite data in every available band, and
        the availability (band + index,) as float32, all on the input's device.
    """
    device = reflectance.device
    present = np.flatnonzero(available > 0)
    usable_band = {band: bool(available[i] > 0) for i, band in enumerate(bands)}
    n_bands = len(bands)
    # Divisors as tensors on the device: CUDA divides by a scalar as a product with its reciprocal, which rounds
    # otherwise.
    mean, std = (torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for v in (mean, std))
    out = torch.zeros((*reflectance.shape[:-3], n_bands + len(INDICES), *reflectance.shape[-2:]),
                      dtype=torch.float32, device=device)
    clear = clear.to(torch.bool, copy=True)
    for i in present:  # finite and within what land reflects: a fill value (-9999, 65535) is no data
        band = reflectance[..., i, :, :]
        clear &= is_reflectance(band)
    hidden = ~clear
    for i in present:
        channel = out[..., i, :, :]
        torch.sub(reflectance[..., i, :, :], mean[i], out=channel)
        channel.div_(std[i]).masked_fill_(hidden, 0.0)
    index_available = []
    for k, (a, b) in enumerate(INDICES):
        usable = usable_band.get(a, False) and usable_band.get(b, False)
        index_available.append(float(usable))
        if usable:
            channel = out[..., n_bands + k, :, :]
            high, low = reflectance[..., bands.index(a), :, :], reflectance[..., bands.index(b), :, :]
            torch.sub(high, low, out=channel)
            channel.div_(high + low)
            channel.masked_fill_(hidden | ~torch.isfinite(channel), 0.0).clamp_(-1.0, 1.0)
    flags = np.concatenate([np.asarray(available, dtype=np.float32), np.asarray(index_available, dtype=np.float32)])
    return out, clear, torch.from_numpy(flags).to(device)
