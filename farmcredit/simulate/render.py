"""Render land cover to endmember-fraction rasters at 10, 20 and 60 m.

Objects are burnt into sub-pixel cells (2 m by default); a coarse pixel's fractions are the mean
of its cells, so edge pixels are true mixtures. Mixing is linear, so averaging fractions first and
mixing spectra after gives the same reflectance as mixing every cell, for a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from rasterio import features
from shapely.geometry import Polygon

from farmcredit.simulate.grid import BASE_M, SceneGrid
from farmcredit.simulate.landscape import CROPS, FALLOW, LandObject
from farmcredit.simulate.phenology import CHANNEL, cover_fractions
from farmcredit.simulate.randomfields import gaussian_field

# Within-field texture: patches of uneven growth a few tens of metres across.
TEXTURE_CORRELATION_M = 15.0
# The covers after the crops in landcover.tif's classes, in code order; a track is drawn as road.
OTHER_CLASSES = (FALLOW, "forest", "grass", "water", "village", "road")


def landcover_classes(crops: Sequence[str]) -> Mapping[str, int]:
    """landcover.tif's class codes: the crops from 1 in their order (so each is its index in the CNN's classes,
    ``segmentation.card.CLASSES``), then ``OTHER_CLASSES``; ``"track"`` has road's."""
    codes = {name: code for code, name in enumerate((*crops, *OTHER_CLASSES), start=1)}
    return MappingProxyType({**codes, "track": codes["road"]})


LANDCOVER_CLASSES = landcover_classes(CROPS)
# The codes of the sown crops, in CROPS order.
CROP_CLASSES = tuple(LANDCOVER_CLASSES[crop] for crop in CROPS)
# Cells no object covers (slivers lost in overlay snapping) render as field-margin grass.
_MARGIN = LandObject(Polygon(), "grass", vigour=0.8, patchiness=0.3)


@dataclass(frozen=True)
class SceneCells:
    """The season-constant part of a rendering: which object fills each sub-pixel cell.

    Attributes:
        objects: Land-cover objects; the last one is the margin fill.
        labels: int32 object index per cell, (rows, cols) on the rendered 60 m extent.
        cells_per_pixel: Cells per 10 m pixel side.
        green_scale: Per-cell multiplier on green cover (within-object texture), float32.
        soil_brightness: Per-cell multiplier on the soil endmember, float32.
    """

    objects: tuple[LandObject, ...]
    labels: np.ndarray
    cells_per_pixel: int
    green_scale: np.ndarray
    soil_brightness: np.ndarray


def burn_cells(
    objects: Sequence[LandObject], grid: SceneGrid, cells_per_pixel: int, rng: np.random.Generator
) -> SceneCells:
    """Rasterize objects to sub-pixel cells and draw the within-object texture.

    Args:
        objects: Non-overlapping land-cover objects, metres.
        grid: Scene grid; the whole 60 m extent is rendered.
        cells_per_pixel: Cells per 10 m pixel side (5 -> 2 m cells).
        rng: Random generator for the texture.
    """
    every = (*objects, _MARGIN)
    side = grid.render_px * cells_per_pixel
    cell_m = BASE_M / cells_per_pixel
    labels = features.rasterize(
        ((o.geometry, i) for i, o in enumerate(objects) if not o.geometry.is_empty),
        out_shape=(side, side),
        transform=grid.transform(cell_m),
        fill=len(objects),
        dtype="int32",
    )
    patchiness = np.array([o.patchiness for o in every], np.float32)
    texture = gaussian_field((side, side), TEXTURE_CORRELATION_M / cell_m, rng)
    green_scale = np.clip(1.0 + patchiness[labels] * texture, 0.0, 2.0)
    brightness = np.array([o.soil_brightness for o in every], np.float32)[labels]
    return SceneCells(every, labels, cells_per_pixel, green_scale, brightness)


def surface_fractions(cells: SceneCells, day_of_year: float) -> np.ndarray:
    """Endmember fractions of every 10 m pixel of the rendered extent on one day.

    Returns:
        float32 (len(ENDMEMBERS), rows, cols); the soil channel is scaled by soil brightness.
    """
    table = cover_fractions(cells.objects, day_of_year)
    soil = table[:, CHANNEL["soil"]][cells.labels]
    out = []
    for channel in range(table.shape[1]):
        if channel == CHANNEL["soil"]:
            continue
        cover = table[:, channel][cells.labels]
        if channel in (CHANNEL["gv_grass"], CHANNEL["gv_broadleaf"]):
            # Texture moves cover between green canopy and the soil beneath it.
            textured = np.minimum(cover * cells.green_scale, cover + soil)
            soil = soil + cover - textured
            cover = textured
        out.append((channel, block_mean(cover, cells.cells_per_pixel)))
    out.append((CHANNEL["soil"], block_mean(soil * cells.soil_brightness, cells.cells_per_pixel)))
    return np.stack([fractions for _, fractions in sorted(out, key=lambda pair: pair[0])])


def landcover(cells: SceneCells) -> tuple[np.ndarray, np.ndarray]:
    """(class, cropland percent) per 10 m pixel of the rendered extent, both uint8.

    The class is the one covering most of the pixel (codes in LANDCOVER_CLASSES); the cropland
    percentage counts sown crop cells only (not fallow or abandoned land).
    """
    codes = np.array([LANDCOVER_CLASSES[o.crop if o.cover == "crop" else o.cover] for o in cells.objects], np.uint8)[
        cells.labels
    ]
    k = cells.cells_per_pixel
    classes = range(1, max(LANDCOVER_CLASSES.values()) + 1)
    counts = np.stack([block_mean((codes == code).astype(np.float32), k) for code in classes])
    majority = (np.argmax(counts, axis=0) + 1).astype(np.uint8)
    cropland = np.isin(codes, CROP_CLASSES).astype(np.float32)
    percent = np.round(block_mean(cropland, k) * 100.0).astype(np.uint8)
    return majority, percent


def block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean over non-overlapping factor x factor blocks of the last two axes (sides divisible)."""
    *lead, rows, cols = array.shape
    blocks = array.reshape(*lead, rows // factor, factor, cols // factor, factor)
    return blocks.mean(axis=(-3, -1), dtype=np.float32)
