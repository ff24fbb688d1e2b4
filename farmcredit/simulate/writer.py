"""Write rasters the way Earth Search serves Sentinel-2 L2A: one DEFLATE Cloud-Optimized GeoTIFF per band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.io import MemoryFile

# Processing baseline >= 04.00 stores DN = reflectance * 10000 + 1000 (BOA_ADD_OFFSET = -1000).
BOA_OFFSET_DN = 1000
REFLECTANCE_SCALE = 10_000
NODATA = 0


def reflectance_to_dn(reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """L2A digital numbers: round(reflectance * 10000) + 1000, clipped to 1..65535; 0 outside the swath.

    Example:
        >>> reflectance_to_dn(np.array([0.2, -0.05, 0.2]), np.array([True, True, False]))
        array([3000,  500,    0], dtype=uint16)
    """
    dn = np.clip(np.round(reflectance * REFLECTANCE_SCALE) + BOA_OFFSET_DN, 1, 65535)
    return np.where(valid, dn, NODATA).astype(np.uint16)


def write_cog(
    path: Path,
    array: np.ndarray,
    transform: Affine,
    crs: str,
    nodata: int | None = NODATA,
    descriptions: tuple[str, ...] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Write a (bands, rows, cols) or (rows, cols) array as a DEFLATE COG.

    The GeoTIFF holds no timestamps, so the same array always gives the same bytes. It is made in memory and then
    written with ``write_file``, so a full disk is an ``OSError`` naming the file, not a GDAL error naming none.

    Args:
        path: Output file.
        array: uint8 or uint16 pixels.
        transform: Affine transform, metres.
        crs: e.g. "EPSG:32650".
        nodata: No-data value, or None.
        descriptions: Per-band descriptions.
        tags: Dataset metadata items.
    """
    stack = array[None] if array.ndim == 2 else array
    with MemoryFile() as memory:
        with memory.open(
            driver="COG",
            width=stack.shape[2],
            height=stack.shape[1],
            count=stack.shape[0],
            dtype=stack.dtype,
            crs=crs,
            transform=transform,
            nodata=nodata,
            compress="DEFLATE",
            level=9,
            predictor=2,
            blocksize=256,
            # The scenes are a few hundred pixels: overviews would add a quarter to the size for nothing.
            overviews="NONE",
        ) as dataset:
            dataset.write(stack)
            if descriptions:
                for index, description in enumerate(descriptions, start=1):
                    dataset.set_band_description(index, description)
            if tags:
                dataset.update_tags(**tags)
        # The COG driver makes the file when the dataset closes.
        write_file(path, memory.read())


def write_file(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8, newlines as they are) to ``path``.

    Raises:
        OSError: It could not be written, naming ``path`` (a full disk's error names no file).
    """
    try:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
