"""STAC items shaped like Earth Search v1 ``sentinel-2-l2a`` items, with relative asset hrefs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np
from pyproj import Transformer
from shapely.geometry import Polygon

from farmcredit.simulate.grid import SceneGrid
from farmcredit.simulate.spectra import BANDS

PROCESSING_BASELINE = "05.10"
RELATIVE_ORBIT = 32
STAC_EXTENSIONS: tuple[str, ...] = (
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
)
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
# Launch dates and orbits per day (14 3/10), to give plausible absolute orbit numbers.
_LAUNCH: Mapping[str, datetime] = MappingProxyType({"S2A": datetime(2015, 6, 23), "S2B": datetime(2017, 3, 7)})
_ORBITS_PER_DAY = 14.3
_SCL_PERCENTAGES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "s2:saturated_defective_pixel_percentage": (1,),
        "s2:dark_features_percentage": (2,),
        "s2:cloud_shadow_percentage": (3,),
        "s2:vegetation_percentage": (4,),
        "s2:not_vegetated_percentage": (5,),
        "s2:water_percentage": (6,),
        "s2:unclassified_percentage": (7,),
        "s2:medium_proba_clouds_percentage": (8,),
        "s2:high_proba_clouds_percentage": (9,),
        "s2:thin_cirrus_percentage": (10,),
        "s2:snow_ice_percentage": (11,),
    }
)


def mgrs_tile(lon: float, lat: float, epsg: int, easting: float, northing: float) -> str:
    """MGRS grid square of a point, as Sentinel-2 names tiles (zone, band, 100 km square).

    Example:
        >>> mgrs_tile(116.4, 39.9, 32650, 449_000.0, 4_417_000.0)
        '50SMK'
    """
    zone = epsg - 32600
    band = "CDEFGHJKLMNPQRSTUVWX"[min(int((lat + 80) // 8), 19)]
    column = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3][int(easting // 100_000) - 1]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(northing // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone}{band}{column}{row}"


# The names ``item_id`` gives.
ITEM_ID = re.compile(r"S2[AB]_\d{2}[C-X][A-Z]{2}_\d{8}_0_L2A")


def item_id(satellite: str, tile: str, acquired: datetime) -> str:
    """Earth Search item id, e.g. "S2B_50SKB_20240315_0_L2A"."""
    return f"{satellite}_{tile}_{acquired:%Y%m%d}_0_L2A"


def build_item(
    *,
    identifier: str,
    satellite: str,
    tile: str,
    acquired: datetime,
    grid: SceneGrid,
    footprint: Polygon,
    scl: np.ndarray,
    sun_azimuth: float,
    sun_elevation: float,
) -> dict[str, Any]:
    """A STAC item for one simulated scene, keyed and described like an Earth Search v1 item.

    Args:
        identifier: Item id (also the folder name).
        satellite: "S2A" or "S2B".
        tile: MGRS tile, e.g. "50SKB".
        acquired: Acquisition time, UTC.
        grid: Scene grid.
        footprint: Valid-data footprint, metres in the grid's CRS.
        scl: The 20 m scene classification (its class shares fill the s2:*_percentage fields).
        sun_azimuth: Degrees clockwise from north.
        sun_elevation: Degrees.
    """
    generated = acquired.replace(microsecond=0) + timedelta(hours=3, minutes=41, seconds=17)
    orbit = int((acquired - _LAUNCH[satellite]).total_seconds() / 86400 * _ORBITS_PER_DAY)
    stamp, gen_stamp = f"{acquired:%Y%m%dT%H%M%S}", f"{generated:%Y%m%dT%H%M%S}"
    # Names spell the baseline as N0510 (product) or N05.10 (datatake, datastrip, granule).
    short, dotted = "N" + PROCESSING_BASELINE.replace(".", ""), "N" + PROCESSING_BASELINE
    centre_ground = f"2{satellite[-1]}PS"  # ESA's processing-centre code in OPER names
    to_wgs84 = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    ring = [tuple(round(v, 9) for v in to_wgs84.transform(x, y)) for x, y in footprint.exterior.coords]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    shares = _scl_shares(scl)
    # Sen2Cor's cloud cover: medium and high probability clouds plus cirrus, of the valid pixels.
    cloud = sum(
        shares[k]
        for k in ("s2:medium_proba_clouds_percentage", "s2:high_proba_clouds_percentage", "s2:thin_cirrus_percentage")
    )
    properties: dict[str, Any] = {
        "created": _iso(generated),
        "platform": "sentinel-2" + satellite[-1].lower(),
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": round(cloud, 6),
        "proj:epsg": grid.epsg,
        "mgrs:utm_zone": int(tile[:2]),
        "mgrs:latitude_band": tile[2],
        "mgrs:grid_square": tile[3:],
        "grid:code": f"MGRS-{tile}",
        "view:sun_azimuth": round(sun_azimuth, 6),
        "view:sun_elevation": round(sun_elevation, 6),
        "s2:degraded_msi_data_percentage": 0,
        **{key: round(value, 6) for key, value in shares.items()},
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": PROCESSING_BASELINE,
        "s2:product_uri": f"{satellite}_MSIL2A_{stamp}_{short}_R{RELATIVE_ORBIT:03d}_T{tile}_{gen_stamp}.SAFE",
        "s2:generation_time": _iso(generated),
        "s2:datatake_id": f"G{satellite}_{stamp}_{orbit:06d}_{dotted}",
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": f"{satellite}_OPER_MSI_L2A_DS_{centre_ground}_{gen_stamp}_S{stamp}_{dotted}",
        "s2:granule_id": f"{satellite}_OPER_MSI_L2A_TL_{centre_ground}_{gen_stamp}_A{orbit:06d}_T{tile}_{dotted}",
        "s2:reflectance_conversion_factor": round(_sun_distance_factor(acquired), 12),
        "datetime": _iso(acquired),
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": False,
        "processing:software": {"farmcredit-simulate": "0.1.0"},
        "farmcredit:synthetic": True,
        "updated": _iso(generated),
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": identifier,
        "properties": properties,
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
        "links": [],
        "assets": _assets(grid),
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "stac_extensions": list(STAC_EXTENSIONS),
        "collection": "sentinel-2-l2a",
    }


def _assets(grid: SceneGrid) -> dict[str, Any]:
    assets: dict[str, Any] = {}
    for band in BANDS:
        assets[band.asset] = {
            "href": f"./{band.name}.tif",
            "type": COG_TYPE,
            "title": band.title,
            "eo:bands": [
                {
                    "name": band.asset,
                    "common_name": band.common_name,
                    "description": band.description,
                    "center_wavelength": band.centre_um,
                    "full_width_half_max": band.fwhm_um,
                }
            ],
            "gsd": band.resolution_m,
            **_projection(grid, band.resolution_m),
            # raster:bands maps DN to reflectance: DN * 0.0001 - 0.1 (the BOA offset, not applied).
            "raster:bands": [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "bits_per_sample": 15,
                    "spatial_resolution": band.resolution_m,
                    "scale": 0.0001,
                    "offset": -0.1,
                }
            ],
            "roles": ["data", "reflectance"],
        }
    assets["scl"] = {
        "href": "./SCL.tif",
        "type": COG_TYPE,
        "title": "Scene classification map (SCL)",
        **_projection(grid, 20),
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "roles": ["data", "reflectance"],
    }
    return assets


def _projection(grid: SceneGrid, resolution_m: int) -> dict[str, Any]:
    transform = grid.transform(resolution_m)
    return {
        "proj:shape": list(grid.shape(resolution_m)),
        "proj:transform": [
            _number(v) for v in (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
        ],
    }


def _scl_shares(scl: np.ndarray) -> dict[str, float]:
    """Percentages of SCL classes: no data of all pixels, the others of valid pixels."""
    counts = np.bincount(scl.ravel(), minlength=12).astype(float)
    valid = counts[1:].sum()
    shares = {"s2:nodata_pixel_percentage": 100.0 * counts[0] / counts.sum()}
    for key, classes in _SCL_PERCENTAGES.items():
        shares[key] = 100.0 * counts[list(classes)].sum() / valid if valid else 0.0
    return shares


def _sun_distance_factor(when: datetime) -> float:
    """Earth-Sun distance correction of the solar irradiance, (1 / d^2), as in the L2A metadata."""
    day = when.timetuple().tm_yday
    return 1.0 / (1.0 - 0.01673 * np.cos(0.0172 * (day - 4))) ** 2


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: float) -> int | float:
    """Whole numbers as ints, as Earth Search writes transforms."""
    return int(value) if float(value).is_integer() else float(value)
