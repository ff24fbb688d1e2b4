"""Tiny Earth Search-layout scenes written into tmp_path (120 m x 120 m tiles with known DNs), and a synthetic
stand-in for the real Earth Search scene of ../shared/data that the fetch tests serve."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from servers import TILE_BANDS, tile_item

CRS = "EPSG:32650"
ORIGIN = (500_000.0, 4_000_000.0)
TILE_M = 120
# Band -> (resolution m, Earth Search asset key); 10 m bands are 12x12 px, 20 m 6x6, 60 m 2x2.
BANDS: dict[str, tuple[int, str]] = {
    "B01": (60, "coastal"),
    "B02": (10, "blue"),
    "B03": (10, "green"),
    "B04": (10, "red"),
    "B05": (20, "rededge1"),
    "B08": (10, "nir"),
    "B8A": (20, "nir08"),
    "B11": (20, "swir16"),
    "SCL": (20, "scl"),
}
# SCL on the 6x6 20 m grid: clear (4, 5, 6) except a cloud, a medium cloud, a shadow and no data.
SCL_CLASSES = np.array(
    [
        [9, 8, 4, 4, 5, 5],
        [3, 4, 4, 4, 5, 5],
        [4, 4, 4, 4, 6, 6],
        [4, 4, 4, 4, 6, 6],
        [4, 4, 5, 5, 4, 4],
        [4, 4, 5, 5, 4, 0],
    ],
    dtype=np.uint8,
)
NODATA_PIXEL_B04 = (11, 0)  # one 10 m pixel of B04 holds DN 0 (no data)


def band_dns(band: str, shift: int) -> np.ndarray:
    """Position-coded DNs: every pixel of every band differs, so misalignment shows."""
    size = TILE_M // BANDS[band][0]
    rows, cols = np.indices((size, size))
    dns = 1000 * (list(BANDS).index(band) + 1) + rows * size + cols + shift
    if band == "B04":
        dns[NODATA_PIXEL_B04] = 0
    return dns.astype(np.uint16)


def write_raster(
    path: Path,
    values: np.ndarray,
    resolution: float,
    *,
    crs: str = CRS,
    origin: tuple[float, float] = ORIGIN,
    **profile: Any,
) -> Path:
    """Write a single-band GeoTIFF (extra profile keys, e.g. driver="COG", pass through)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "driver": "GTiff",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": values.dtype,
        "crs": crs,
        "transform": from_origin(*origin, resolution, resolution),
        "nodata": 0,
    } | profile
    with rasterio.open(path, "w", **options) as dataset:
        dataset.write(values, 1)
    return path


@pytest.fixture
def write_scene() -> Callable[..., Path]:
    """Factory: write one scene folder (band files + optional STAC item); returns the folder."""

    def write(
        folder: Path,
        *,
        acquired: datetime,
        baseline: str = "05.10",
        offset_applied: bool | None = False,
        raster_offset: float | None = None,
        cloud_cover: float = 12.5,
        shift: int = 0,
        with_item: bool = True,
        file_names: str = "band",
        crs: str = CRS,
        origin: tuple[float, float] = ORIGIN,
        bands: tuple[str, ...] = tuple(BANDS),
    ) -> Path:
        assets = {}
        for band in bands:
            resolution, asset_key = BANDS[band]
            values = SCL_CLASSES if band == "SCL" else band_dns(band, shift)
            file_name = f"{band if file_names == 'band' else asset_key}.tif"
            write_raster(folder / file_name, values, resolution, crs=crs, origin=origin)
            asset: dict[str, Any] = {"href": f"./{file_name}", "type": "image/tiff"}
            if raster_offset is not None and band != "SCL":
                asset["raster:bands"] = [{"nodata": 0, "scale": 0.0001, "offset": raster_offset}]
            assets[asset_key] = asset
        if with_item:
            properties: dict[str, Any] = {
                "datetime": acquired.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "eo:cloud_cover": cloud_cover,
                "s2:processing_baseline": baseline,
            }
            if offset_applied is not None:
                properties["earthsearch:boa_offset_applied"] = offset_applied
            item = {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": folder.name,
                "properties": properties,
                "geometry": None,
                "links": [],
                "assets": assets,
            }
            (folder / f"{folder.name}.json").write_text(json.dumps(item), encoding="utf-8")
        return folder

    return write


@pytest.fixture
def season_folder(tmp_path: Path, write_scene: Callable[..., Path]) -> Path:
    """Three scenes in nested folders, written out of date order.

    2024-03-15 baseline 05.10, offset not applied (-1000 DN); 2020-06-10 baseline 02.14 (0);
    2023-08-01 baseline 05.09 with earthsearch:boa_offset_applied true (0).
    """
    root = tmp_path / "season"
    write_scene(
        root / "2024" / "S2B_50SKA_20240315_0_L2A",
        acquired=datetime(2024, 3, 15, 3, 20, 11),
        baseline="05.10",
        offset_applied=False,
        shift=0,
    )
    write_scene(
        root / "2020" / "S2A_50SKA_20200610_0_L2A",
        acquired=datetime(2020, 6, 10, 3, 10, 2),
        baseline="02.14",
        offset_applied=False,
        shift=7,
    )
    write_scene(
        root / "2023" / "S2A_50SKA_20230801_0_L2A",
        acquired=datetime(2023, 8, 1, 3, 15, 40),
        baseline="05.09",
        offset_applied=True,
        shift=13,
    )
    return root


@pytest.fixture(scope="session")
def synthetic_29rkh(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Path]]:
    """The Earth Search item S2A_29RKH_20200219_0_L2A as ../shared/data/s2/earthsearch-29RKH-2020 holds it (id, time,
    cloud cover, baseline, offset, UTM zone, footprint; COGs 10 times coarser than Earth Search's: 100, 200 and 600 m),
    with every band fetch reads made of position-coded DNs (``tile_dns``) and SCL all vegetation: for tests of how
    fetch talks to a server, which need no real pixels. Returns the item (hrefs "file:B04.tif" ...) and its files by
    name; shared by the session, so read only."""
    return tile_item(tmp_path_factory.mktemp("earthsearch-29RKH-2020"), "S2A_29RKH_20200219_0_L2A", crs="EPSG:32629",
                     origin=(199_980.0, 2_800_020.0), acquired="2020-02-19T11:34:25.405000Z", size_px=1098,
                     pixel_m=100, cloud=4.051854, baseline="02.14", offset_applied=False, raster_offset=0.0,
                     bands=tuple(TILE_BANDS), band_file_names=True)


def vrt_of(source: Path) -> str:
    """A GDAL VRT (XML) whose one band is ``source``'s: what GDAL would read in its place, whatever the VRT's name."""
    with rasterio.open(source) as src:
        t, crs, (h, w), dtype = src.transform, src.crs.to_wkt(), src.shape, src.dtypes[0]
    return (f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{crs.replace(chr(34), "&quot;")}</SRS>'
            f"<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>"
            f'<VRTRasterBand dataType="{dtype.capitalize()}" band="1"><SimpleSource>'
            f'<SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand></SimpleSource>'
            "</VRTRasterBand></VRTDataset>")

