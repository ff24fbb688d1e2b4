"""Pick the cropland model a run uses: the shipped CNN, the phenology rule, or a weights file."""

from __future__ import annotations

import os
from pathlib import Path

from farmcredit.config import CroplandRuleConfig
from farmcredit.errors import InputError
from farmcredit.segmentation.card import DEFAULT_WEIGHTS, read_card
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
            phenology rule), either by the name its results carry (``builtin_model``), or a safetensors weights file
            with its card beside it.
        rule_config: thresholds of the rule (default: packaged ones).
        device: ``auto``, ``cpu`` or ``cuda`` for the CNN.

    Raises:
        InputError: none of these (no such file), or a weights file that is corrupted or does not match its card.

    Example:
        >>> load_cropland_model("rule").name
        'phenology-rule-v1'
    """
    model = DEFAULT_MODEL if model is None else model
    if builtin_model(model) == RULE:
        return PhenologyRule(rule_config or CroplandRuleConfig())
    weights = weights_file(model)
    # torch is imported only when a CNN is really asked for.
    from farmcredit.segmentation.cnn import CnnCroplandModel

    return CnnCroplandModel.from_file(weights, device=device)


def weights_file(model: str | Path) -> Path:
    """``cnn_weights``, a file that is there.

    Raises:
        InputError: ``"rule"``, or a name that is no built-in model nor a file (a mistyped name, said as one, not as
            the weights of a CNN gone missing).
    """
    weights = cnn_weights(model)
    if not weights.is_file():
        found = "a folder" if weights.is_dir() else "no such file"
        raise InputError(f"the model (--model, or MODEL of evaluate and calibrate; model= in Python) is 'cnn', 'rule' "
                         f"or a .safetensors weights file with its .json card; {str(model)!r} is none of these "
                         f"({found})")
    return weights


def builtin_model(model: str | Path) -> str | None:
    """``RULE`` or ``CNN`` where ``model`` names a built-in model, case aside and outer spaces trimmed: by its short
    name or by the name its results carry (``model_version``: ``phenology-rule-v1``, the shipped CNN's card name,
    unless a file is so named); else None.

    Example:
        >>> builtin_model(" CNN "), builtin_model("Phenology-Rule-V1"), builtin_model("model.safetensors")
        ('cnn', 'rule', None)
    """
    name = str(model).strip().casefold()
    if name in (RULE, PhenologyRule.name):
        return RULE
    if name == CNN or (not Path(model).exists() and name == read_card(DEFAULT_WEIGHTS).name.casefold()):
        return CNN
    return None


def cnn_weights(model: str | Path) -> Path:
    """The weights file a CNN's name means: ``"cnn"`` (``builtin_model``) the shipped weights, else the file named
    (a leading ``~`` is the home folder, as in every path the CLI takes).

    Raises:
        InputError: ``"rule"``, which has no weights.

    Example:
        >>> cnn_weights("cnn") == DEFAULT_WEIGHTS
        True
    """
    builtin = builtin_model(model)
    if builtin == RULE:
        raise InputError("the phenology rule ('rule') has no weights: name 'cnn' (the shipped model) or a "
                         ".safetensors weights file")
    return DEFAULT_WEIGHTS if builtin == CNN else Path(os.path.expanduser(model))  # ~/m.safetensors, as paths take
