"""Per-pixel cropland probability. v1: a transparent phenology rule; the CNN replaces it behind
the same ``CroplandModel`` interface."""

from farmcredit.segmentation.rule import CroplandModel, PhenologyRule

__all__ = ["CroplandModel", "PhenologyRule"]
