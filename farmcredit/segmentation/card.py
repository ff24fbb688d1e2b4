"""Model cards: the JSON beside a CNN's safetensors weights that says what the weights expect.

Torch-free, so the CLI and the pipeline can check a card (and pick a model) without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from farmcredit.errors import InputError
from farmcredit.hashing import canonical_hash
from farmcredit.imagery.naming import NDVI_BANDS, SURFACE_BANDS
from farmcredit.margins import MARGIN_KEYS, AreaMargins

# The network family training writes; cards of any family in ``UPSAMPLING`` load.
ARCHITECTURE = "farmcredit-cropland-unet-v3"
# How each family's decoder upsamples: v2 repeated each coarse pixel (4 px blocks with straight edges in real
# probability maps); v3 interpolates, so a coarse feature ramps over its pixels instead of stepping at the pooling grid.
# The family of training checkpoints written before they recorded one.
ARCHITECTURE_V2 = "farmcredit-cropland-unet-v2"
UPSAMPLING = {ARCHITECTURE_V2: "nearest", ARCHITECTURE: "bilinear"}
# The Sentinel-2 L2A bands the network knows, in its input order; any subset may be present.
MODEL_BANDS: tuple[str, ...] = SURFACE_BANDS
# Without red and NIR no band subset the network was trained on applies.
REQUIRED_BANDS = NDVI_BANDS
# Normalised differences (a - b) / (a + b) fed beside the bands, each where both bands are present:
# NDVI, NDWI (green/NIR), NDMI (NIR/SWIR1), the SWIR1/SWIR2 ratio and the red-edge NDRE. Ratios
# carry across sensors, atmospheres and regions better than raw reflectance.
INDICES: tuple[tuple[str, str], ...] = (("B08", "B04"), ("B03", "B08"), ("B08", "B11"), ("B11", "B12"), ("B8A", "B05"))
CLASSES: tuple[str, ...] = ("non_crop", "wheat", "maize", "rice", "soybean", "other_crop")
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = PACKAGE_DIR / "cropland_cnn_v2.safetensors"
# The share of parcels whose true cultivated area a calibrated interval holds (its ``mixed_margin`` is fitted so).
AREA_INTERVAL_LEVEL = 0.8
# The zero-width non-joiner and joiner: format characters that spell Persian, Devanagari and emoji (a card's name is
# its weights file's stem), kept in names as the console keeps them.
_SPELLING = frozenset("\u200c\u200d")


def uncalibrated() -> dict[str, float]:
    """The identity Platt scaling: probabilities straight from the network, no area margin."""
    return {"a": 1.0, "b": 0.0}

# What a calibration appends to the name of the model whose calibration it changes (``recalibrated_card``).
CALIBRATED_SUFFIX = re.compile(r"\+cal-[0-9a-f]{8}$")


@dataclass(frozen=True)
class ModelCard:
    """What a set of weights expects and how well it did.

    Attributes:
        name: model version, written into every result row (``model_version``).
        architecture: network family, one of ``UPSAMPLING`` (v2 and v3 differ in how the decoder upsamples).
        bands: input bands in network order (Sentinel-2 names).
        band_mean: per-band reflectance (0-1) mean used to normalise the input.
        band_std: per-band reflectance (0-1) standard deviation used to normalise the input.
        classes: output classes; index 0 is non-crop, the rest are crop classes.
        width: channels of the network's first level.
        calibration: Platt scaling ``{"a": ..., "b": ...}`` of the crop logit, and optionally the
            cultivated-area interval's ``mixed_margin``: one number, or one per parcel-size band of
            ``area_bands_ha`` (``farmcredit.margins``, ``pipeline.widened``).
        weights_sha256: hash of the safetensors file; a mismatch is refused.
        deciding_hash: hash of the fields that decide what the weights compute (``DECIDING_FIELDS``) with
            ``weights_sha256``, as saved (``sealed``); a card edited since is refused. Older cards have none.
        training: data, splits, hashes, seed and time of training.
        metrics: per evaluation set, its metrics.
        code_version: farmcredit version that trained it.
        untrained_bands: bands of ``bands`` that no training sample had (a model trained from
            scratch on, say, red, green, blue and NIR only); the model treats them as absent.
    """

    name: str
    bands: tuple[str, ...]
    band_mean: tuple[float, ...]
    band_std: tuple[float, ...]
    classes: tuple[str, ...] = CLASSES
    width: int = 32
    calibration: dict[str, float | list[float]] = field(default_factory=uncalibrated)
    weights_sha256: str = ""
    deciding_hash: str = ""
    architecture: str = ARCHITECTURE
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    code_version: str = ""
    untrained_bands: tuple[str, ...] = ()

    def to_json(self) -> str:
        """The card as indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @property
    def uncalibrated_name(self) -> str:
        """The name without the suffix a calibration appended (``CALIBRATED_SUFFIX``): the model's own."""
        return CALIBRATED_SUFFIX.sub("", self.name)

    @property
    def area_margins(self) -> AreaMargins:
        """The cultivated-area interval's margin by parcel size (none where the card has no ``mixed_margin``)."""
        return AreaMargins.read(self.calibration.get("mixed_margin", 0.0), self.calibration.get("area_bands_ha", ()))

    @property
    def has_scene_crop_types(self) -> bool:
        """Whether its classes are the crop types labelled scenes code (as ``CLASSES`` indices); a model with
        one "crop" class (trained on labels without types) learns and names none of them."""
        return self.classes == CLASSES


# The fields that decide what a card's weights compute: a card edited to another normalisation or other class names
# reads the same weights otherwise (every parcel declined, crop types mislabelled). Not calibration, which
# ``calibrate`` refits, nor metrics or training notes.
DECIDING_FIELDS = ("architecture", "bands", "band_mean", "band_std", "classes", "width", "untrained_bands")


def deciding_fields_hash(card: ModelCard) -> str:
    """The hash (16 hex) binding ``card``'s ``DECIDING_FIELDS`` to its ``weights_sha256``."""
    return canonical_hash({"weights_sha256": card.weights_sha256,
                           **{name: getattr(card, name) for name in DECIDING_FIELDS}})


def sealed(card: ModelCard, weights: Path) -> ModelCard:
    """``card`` for the weights file ``weights``: its SHA-256 and ``deciding_hash`` filled in."""
    card = replace(card, weights_sha256=file_sha256(weights))
    return replace(card, deciding_hash=deciding_fields_hash(card))


def write_card(card: ModelCard, weights: Path) -> ModelCard:
    """Write ``card``, ``sealed`` for ``weights``, beside them (``card_path``); returns the card written."""
    card = sealed(card, weights)
    card_path(weights).write_text(card.to_json())
    return card


def _value_problem(card: ModelCard) -> str:
    """What makes a card's bands, normalisation, calibration or width unusable ('' when nothing): the network
    reads ``MODEL_BANDS`` in that order, divides by each std and Platt-scales with a positive slope."""
    if card.bands != MODEL_BANDS:
        return f"bands {card.bands} must be {MODEL_BANDS} in this order (the network's input)"

    def finite(values) -> bool:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)

    if len(card.band_mean) != len(card.bands) or len(card.band_std) != len(card.bands) \
            or not finite(card.band_mean + card.band_std) or min(card.band_std) <= 0:
        return "band_mean and band_std need one finite number per band, every std above 0"
    calibration = card.calibration
    if not isinstance(calibration, dict) or not {"a", "b"} <= set(calibration) \
            or not finite((calibration["a"], calibration["b"])) or calibration["a"] <= 0:
        return "calibration must hold finite numbers a (above 0) and b"
    if unknown := sorted(set(calibration) - {"a", "b", *MARGIN_KEYS}):
        return f"calibration holds {', '.join(map(str, unknown))}, which no farmcredit reads"
    try:
        card.area_margins  # noqa: B018 (raises what makes them unusable)
    except ValueError as problem:
        return f"calibration: {problem}"
    if not isinstance(card.width, int) or isinstance(card.width, bool) or card.width < 1:
        return f"width must be a positive whole number, got {card.width!r}"
    return ""


def _classes_problem(classes: tuple) -> str:
    """What makes a card's classes unusable ('' when nothing): the network scores non-crop (index 0) against the
    crop classes after it, so it needs at least one, the rasters' metadata lists them joined by commas, and the QGIS
    project and class style (XML) name them."""
    named = all(isinstance(name, str) and name and "," not in name for name in classes)
    if not named or len(set(classes)) != len(classes) or len(classes) < 2 or classes[0] != "non_crop":
        return (f"classes must be 'non_crop' then at least one crop class, each a distinct name without commas, "
                f"got {list(classes)}")
    return next((f"classes: {problem}" for name in classes if (problem := _hidden_character_problem(name))), "")


def _hidden_character_problem(text: str) -> str:
    """What makes ``text`` unfit for a name in the results ('' when nothing): a character of Unicode's C categories
    (control, format, private use, unassigned, surrogate), which XML (the QGIS project, the class style) cannot hold
    or a reader cannot see."""
    hidden = next((char for char in text if unicodedata.category(char)[0] == "C" and char not in _SPELLING), None)
    if hidden is None:
        return ""
    return (f"{text!r} holds U+{ord(hidden):04X}, a {unicodedata.category(hidden)} character (control, format, "
            "private use or unassigned), which the QGIS project cannot hold or a reader cannot see")


def name_problem(name: str) -> str:
    """What makes ``name`` unfit for a card's name, the model version in every result row, or its code_version (''
    when nothing): blank, or a hidden character (``_hidden_character_problem``), either of which ``read_card``
    refuses."""
    return f"{name!r} is blank" if not name.strip() else _hidden_character_problem(name)


def _names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _name_or_null(value: object) -> bool:
    return value is None or isinstance(value, str)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _eurosat_split(value: object) -> bool:
    if value is None:
        return True
    share = value.get("test_share") if isinstance(value, dict) else None
    return (isinstance(share, (int, float)) and not isinstance(share, bool) and 0 < share < 1
            and _whole(value.get("seed")) and _whole(value.get("train_patches")))


def _packed_fingerprints(value: object) -> bool:
    """Whether ``value`` unpacks as ``pack_fingerprints`` writes them (checked when the card is read, not when used)."""
    from farmcredit.segmentation.data import unpack_fingerprints  # data imports this module

    try:
        unpack_fingerprints(value)
    except InputError:
        return False
    return True


# The training fields that fine-tuning and evaluation read, with what each must be where a card has it
# (older cards lack some).
TRAINING_FIELDS = {
    "scenes": (_names, "a list of scene folders"),
    "scene_imagery_sha256": (_names, "a list of SHA-256s"),
    "dea": (_name_or_null, "a folder or null"),
    "dea_regions": (_names, "a list of region names"),
    "dea_train_regions": (_names, "a list of region names"),
    "eurosat": (_name_or_null, "a folder or null"),
    "eurosat_sha256": (_name_or_null, "a SHA-256 or null"),
    "eurosat_base_sha256": (_names, "a list of SHA-256s"),
    "eurosat_trained_sha256": (_names, "a list of SHA-256s"),
    "dea_trained_rows": (_packed_fingerprints, "base64 text of 8-byte fingerprints"),
    "eurosat_split": (_eurosat_split, "null or a mapping of seed and train_patches (whole numbers) and "
                                      "test_share (between 0 and 1)"),
}


def _training_problem(training: object) -> str:
    """What makes a card's ``training`` unreadable ('' when nothing): not a mapping, or a field of
    ``TRAINING_FIELDS`` of another type."""
    if not isinstance(training, dict):
        return f"training must be a mapping, got {training!r}"
    for name, (valid, wanted) in TRAINING_FIELDS.items():
        if name in training and not valid(training[name]):
            return f"training.{name} must be {wanted}, got {training[name]!r}"
    return ""


def card_path(weights: Path) -> Path:
    """The card file beside ``weights`` (``model.safetensors`` -> ``model.json``)."""
    return weights.with_suffix(".json")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(weights: Path) -> ModelCard:
    """Read and check the card beside ``weights``.

    Raises:
        InputError: the card is missing, unreadable, of another architecture, inconsistent, has no name or
            code_version, a name, code_version or class holding a control, format, private-use or unassigned
            character, classes the network cannot score (``_classes_problem``), a training field of another type
            (``TRAINING_FIELDS``), its ``weights_sha256`` is missing or does not
            match the weights file (truncated, corrupted, or the card of another model), or its ``DECIDING_FIELDS``
            are not those saved with the weights (``deciding_hash``; a card without one is not checked so).
    """
    path = card_path(weights)
    if not weights.is_file():
        raise InputError(f"{weights}: model weights not found")
    if path == weights:
        raise InputError(f"{weights} is a model card; give the weights beside it "
                         f"({weights.with_suffix('.safetensors').name})")
    if not path.is_file():
        raise InputError(f"{weights}: no model card {path.name} beside the weights")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8-sig"))  # a byte-order mark, as Windows editors write, is UTF-8
        tuples = ("bands", "band_mean", "band_std", "classes", "untrained_bands")
        card = ModelCard(**{**raw, **{k: tuple(raw[k]) for k in tuples if k in raw}})
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, RecursionError) as exc:
        raise InputError(f"{path}: not a farmcredit model card ({exc})") from exc
    for text in ("weights_sha256", "deciding_hash"):
        if not isinstance(getattr(card, text), str):
            raise InputError(f"{path}: not a farmcredit model card: {text} must be a hash as text")
    if not card.weights_sha256:  # nothing to check the weights against
        raise InputError(f"{path}: the card has no weights_sha256 (not written by farmcredit train or calibrate, or "
                         "edited by hand); restore it from the card written with these weights")
    for text, meaning in (("name", "the model version written into every result row"),
                          ("code_version", "the farmcredit version that trained it")):
        value = getattr(card, text)
        if not isinstance(value, str):
            raise InputError(f"{path}: not a farmcredit model card: {text} must be {meaning}, as text, got {value!r}")
        if problem := name_problem(value):
            raise InputError(f"{path}: not a farmcredit model card: {text} {problem}")
    if problem := _training_problem(card.training):
        raise InputError(f"{path}: not a farmcredit model card: {problem}")
    if card.architecture not in UPSAMPLING:
        raise InputError(f"{path}: architecture {card.architecture!r}, this farmcredit runs "
                         f"{' or '.join(map(repr, UPSAMPLING))}")
    problem = _value_problem(card)
    if problem:
        raise InputError(f"{path}: {problem}")
    named = all(isinstance(band, str) for band in card.untrained_bands)
    if not named or not set(card.untrained_bands) <= set(card.bands) - set(REQUIRED_BANDS):
        raise InputError(f"{path}: untrained_bands {card.untrained_bands} must be among its bands, never red or NIR")
    if problem := _classes_problem(card.classes):
        raise InputError(f"{path}: {problem}")
    actual = file_sha256(weights)
    if card.weights_sha256 != actual:
        raise InputError(
            f"{weights}: its SHA-256 {actual[:12]}... does not match the card's {card.weights_sha256[:12]}... "
            "(a truncated or corrupted file, or the card of a different model)"
        )
    if card.deciding_hash and card.deciding_hash != deciding_fields_hash(card):
        raise InputError(f"{path}: the card's normalisation/classes are not those these weights were saved with: one "
                         f"of {', '.join(DECIDING_FIELDS)} was edited since (deciding_hash no longer matches); "
                         "restore the card written with these weights, or train or fine-tune for what you need")
    return card
