"""Per-pixel cropland probability behind the ``CroplandModel`` interface: the cropland CNN
(default; ``cnn.CnnCroplandModel``, imported lazily with torch) or the v1 phenology rule."""

from farmcredit.segmentation.card import DEFAULT_WEIGHTS, ModelCard, read_card
from farmcredit.segmentation.registry import CNN, DEFAULT_MODEL, RULE, load_cropland_model
from farmcredit.segmentation.rule import CroplandClassifier, CroplandModel, PhenologyRule

__all__ = [
    "CNN", "DEFAULT_MODEL", "DEFAULT_WEIGHTS", "RULE", "CroplandClassifier", "CroplandModel", "ModelCard",
    "PhenologyRule", "load_cropland_model", "read_card",
]
