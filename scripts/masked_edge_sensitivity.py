"""How far a cropland CNN's calls move next to pixels with no clear date (persistent cloud, no data).

On real imagery read as ``assess`` reads it (sample_tiles; FTW Austria from ../shared/data when
present) it masks, in every date, either ragged persistent clouds (seeded) or the right half of the
raster (no data), and prints per distance from the masked pixels the share of seen pixels whose crop
call differs from the run without the mask, and the largest probability change. The baseline is the
right half cut off (a raster edge): what losing that context costs any network with padding.

Usage: python scripts/masked_edge_sensitivity.py [WEIGHTS]   (default: the shipped model)
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
from rasterio.windows import Window
from scipy import ndimage

from farmcredit.imagery import open_imagery, read_window
from farmcredit.segmentation import DEFAULT_WEIGHTS
from farmcredit.segmentation.card import MODEL_BANDS
from farmcredit.segmentation.cnn import CnnCroplandModel

REPO = Path(__file__).resolve().parents[1]
AUSTRIA = REPO.parent / "shared" / "data" / "s2" / "ftw-austria-2021" / "inference-img.tif"
RINGS = ((0, 3), (3, 8), (8, 16), (16, 30))


def persistent_clouds(shape: tuple[int, int], seed: int = 1) -> np.ndarray:
    """bool (rows, cols): ragged clouds of about 17 px across over about a fifth of the raster."""
    rng = np.random.default_rng(seed)
    return ndimage.binary_dilation(rng.random(shape) < 0.0005, iterations=8)


def rings(full: np.ndarray, other: np.ndarray, distance: np.ndarray) -> str:
    """Crop calls changed and the largest probability change, per ring of ``distance`` (NaN: not compared)."""
    parts = []
    for near, far in RINGS:
        ring = (distance >= near) & (distance < far) & np.isfinite(other) & np.isfinite(full)
        moved = np.abs(other[ring] - full[ring])
        changed = np.mean((other[ring] >= 0.5) != (full[ring] >= 0.5))
        parts.append(f"{near}-{far} px: {changed:6.2%} changed, max {moved.max():.2f}")
    return "; ".join(parts)


def main(weights: Path) -> None:
    model = CnnCroplandModel.from_file(weights, device="cpu")
    found = {"sample_tiles": open_imagery(REPO / "sample_tiles" / "imagery")}
    if AUSTRIA.exists():
        days = (date(2021, 6, 17), date(2021, 9, 25))
        layout = [(day, band) for day in days for band in ("B04", "B03", "B02", "B08")]
        found["FTW Austria"] = open_imagery(AUSTRIA, band_layout=layout)
    print(f"{model.name}: crop calls changed against the unmasked run, by distance from the masked pixels")
    for name, imagery in found.items():
        cube = read_window(imagery, Window(0, 0, imagery.shape[1], imagery.shape[0]), MODEL_BANDS)
        reflectance, clear = cube.reflectance, cube.clear
        full = model.predict(reflectance, clear, cube.bands).crop_probability
        clouds = persistent_clouds(full.shape)
        masked = model.predict(reflectance, clear & ~clouds, cube.bands).crop_probability
        from_clouds = ndimage.distance_transform_edt(~clouds)
        print(f"{name}, persistent clouds: {rings(full, np.where(clouds, np.nan, masked), from_clouds)}")
        half = full.shape[1] // 2
        to_edge = np.broadcast_to(half - 1 - np.arange(full.shape[1]), full.shape)
        blank = clear.copy()
        blank[..., half:] = False
        masked = model.predict(reflectance, blank, cube.bands).crop_probability
        print(f"{name}, right half no data: {rings(full, masked, to_edge)}")
        cut = np.full_like(full, np.nan)
        cut[:, :half] = model.predict(reflectance[..., :half], clear[..., :half], cube.bands).crop_probability
        print(f"{name}, right half cut off: {rings(full, cut, to_edge)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_WEIGHTS)
