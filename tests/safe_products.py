"""A tiny synthetic Sentinel-2 L2A SAFE product (JP2 at 10/20/60 m, MTD_MSIL2A.xml), as a folder or a .zip, for the
tests of reading it (imagery/test_safe.py) and of recording it (test_audit.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

CRS = "EPSG:32650"
ORIGIN = (399_960.0, 4_000_020.0)
SIZE_M = 120
PRODUCT = "S2B_MSIL2A_20240315T031521_N0510_R118_T50SKB_20240315T064513"
GRANULE = "GRANULE/L2A_T50SKB_A036651_20240315T031516/IMG_DATA"
# (band, resolution m); the product also holds coarser copies of the 10 m bands, which must not be used.
FILES = [("B02", 10), ("B03", 10), ("B04", 10), ("B08", 10), ("B02", 20), ("B04", 20), ("B05", 20),
         ("B8A", 20), ("B11", 20), ("SCL", 20), ("B01", 60), ("B04", 60)]


def safe_dns(band: str, resolution: int) -> np.ndarray:
    """Position-coded DNs; a band's coarser copy gets other values, so reading it would show."""
    size = SIZE_M // resolution
    if band == "SCL":
        scl = np.full((size, size), 4, dtype=np.uint8)
        scl[0, 0] = 9  # a cloud in the north-west 20 m pixel
        return scl
    rows, cols = np.indices((size, size))
    return (1500 + 100 * int(band[1:].replace("8A", "85")) + rows * size + cols + resolution).astype(np.uint16)


def _metadata(name: str, baseline: str, offsets: bool, cloud: float) -> str:
    image_files = "\n".join(
        f"<IMAGE_FILE>{GRANULE}/R{res}m/T50SKB_20240315T031521_{band}_{res}m</IMAGE_FILE>" for band, res in FILES
    )
    offset_list = "<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(
        f'<BOA_ADD_OFFSET band_id="{k}">-1000</BOA_ADD_OFFSET>' for k in range(13)
    ) + "</BOA_ADD_OFFSET_VALUES_LIST>" if offsets else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>2024-03-15T03:15:21.024Z</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>2024-03-15T03:15:21.024Z</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <Product_Organisation><Granule_List><Granule granuleIdentifier="x" imageFormat="JPEG2000">
        {image_files}
      </Granule></Granule_List></Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
      {offset_list}
    </Product_Image_Characteristics>
  </n1:General_Info>
  <n1:Quality_Indicators_Info>
    <Cloud_Coverage_Assessment>{cloud}</Cloud_Coverage_Assessment>
  </n1:Quality_Indicators_Info>
</n1:Level-2A_User_Product>
"""


def write_safe(root: Path, *, baseline: str = "05.10", offsets: bool = True, cloud: float = 12.3,
               name: str = PRODUCT) -> Path:
    """A .SAFE folder under root: JP2 bands (lossless) and MTD_MSIL2A.xml, laid out like the real product."""
    safe = root / f"{name}.SAFE"
    for band, resolution in FILES:
        path = safe / GRANULE / f"R{resolution}m" / f"T50SKB_20240315T031521_{band}_{resolution}m.jp2"
        path.parent.mkdir(parents=True, exist_ok=True)
        values = safe_dns(band, resolution)
        with rasterio.open(path, "w", driver="JP2OpenJPEG", width=values.shape[1], height=values.shape[0], count=1,
                           dtype=values.dtype, crs=CRS, transform=from_origin(*ORIGIN, resolution, resolution),
                           nodata=0, QUALITY=100, REVERSIBLE="YES") as dataset:
            dataset.write(values, 1)
    (safe / "MTD_MSIL2A.xml").write_text(_metadata(name, baseline, offsets, cloud))
    return safe


def zip_safe(safe: Path) -> Path:
    """The product zipped like a Copernicus Browser download: the .SAFE folder at the top of the zip."""
    archive = safe.parent / f"{safe.stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        for path in sorted(safe.rglob("*")):
            handle.write(path, path.relative_to(safe.parent).as_posix())
    return archive
