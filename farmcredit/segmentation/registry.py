"""Pick the cropland model a run uses: the shipped CNN, the phenology rule, or a weights file."""

from __future__ import annotations

from pathlib import Path

from farmcredit.config import CroplandRuleConfig
from farmcredit.errors import InputError
from farmcredit.segmentation.card import DEFAULT_WEIGHTS
from farmcredit.segmentation.rule import CroplandModel, PhenologyRule

RULE = "rule"
CNN = "cnn"
# What a run uses when no model is named. The CNN: on held-out simulated scenes it puts as many
# parcels within 10% of their cultivated area as the rule on clear seasons and far more when clouds
# hide the peak of the season, and wrongly flags far fewer honest parcels as over-declared (it misses
# a few more); it reads seasons of one or two dates, which the rule refuses, and real L1C patches
# (EuroSAT) well. Neither transfers well to unseen
# African regions (DEA, in its card). The rule stays available: 2-4x cheaper on small jobs, 10-25x
# on dense full tiles on a CPU (README).
DEFAULT_MODEL = CNN


def load_cropland_model(
    model: str | Path | None = None, rule_config: CroplandRuleConfig | None = None, device: str = "auto"
) -> CroplandModel:
    """The cropland model named by ``model``.

    Args:
        model: ``None`` (``DEFAULT_MODEL``), ``"cnn"`` (the shipped CNN), ``"rule"`` (the v1
            phenology rule), or a safetensors weights file with its card beside it.
        rule_config: thresholds of the rule (default: packaged ones).
        device: ``auto``, ``cpu`` or ``cuda`` for the CNN.

    Raises:
        InputError: a weights file that is missing, corrupted, or does not match its card.

    Example:
        >>> load_cropland_model("rule").name
        'phenology-rule-v1'
    """
    model = DEFAULT_MODEL if model is None else model
    if str(model) == RULE:
        return PhenologyRule(rule_config or CroplandRuleConfig())
    # torch is imported only when a CNN is really asked for.
    from farmcredit.segmentation.cnn import CnnCroplandModel

    return CnnCroplandModel.from_file(cnn_weights(model), device=device)


def cnn_weights(model: str | Path) -> Path:
    """The weights file a CNN's name means: ``"cnn"`` the shipped weights, else the file named.

    Raises:
        InputError: ``"rule"``, which has no weights.

    Example:
        >>> cnn_weights("cnn") == DEFAULT_WEIGHTS
        True
    """
    if str(model) == RULE:
        raise InputError("the phenology rule ('rule') has no weights: name 'cnn' (the shipped model) or a "
                         ".safetensors weights file")
    return DEFAULT_WEIGHTS if str(model) == CNN else Path(model)
