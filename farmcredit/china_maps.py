"""Longitude and latitude from Chinese web maps (GCJ-02, BD-09) back to WGS 84.

Maps served in mainland China (高德地图 Amap / Gaode, 腾讯地图 Tencent, the China tiles of Google Maps) draw and export
positions in GCJ-02: WGS 84 moved by a deliberate, smoothly varying offset of some 100 to 700 m. 百度地图 Baidu Maps
moves GCJ-02 once more (BD-09), in all some 0.5 to 1.5 km (天地图 Tianditu is CGCS2000, with no offset). A field
outlined on such a map and read as WGS 84 lies beside the field the imagery shows, so every measure of it is of a
neighbour's land. The forward offsets are the published GCJ-02 and
BD-09 formulas; they have no closed inverse, so they are inverted by fixed-point iteration (to well under a
millimetre). Outside the rectangle the formulas apply them in (``in_china``), positions are not moved; inside it they
are, in Korea, India or Viet Nam too, where the maps show WGS 84.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely

# How a parcel file's longitude and latitude were drawn: as GPS and Sentinel-2 give them, or on Chinese web maps.
DATUMS = ("wgs84", "gcj02", "bd09")
DATUM_NAMES = {"wgs84": "WGS 84", "gcj02": "GCJ-02 (高德 Amap / Gaode, 腾讯 Tencent)", "bd09": "BD-09 (百度 Baidu)"}
# Krasovsky 1940, the ellipsoid of the GCJ-02 formulas.
_SEMI_MAJOR_M = 6378245.0
_ECCENTRICITY_SQUARED = 0.00669342162296594323
_BD_FACTOR = np.pi * 3000.0 / 180.0
_BD_SHIFT = (0.0065, 0.006)
_INVERSE_STEPS = 30
_INVERSE_TOLERANCE_DEG = 1e-11


# The rectangle the published GCJ-02 formulas move positions in: China's, but also Korea's, western Japan's, most of
# India's and of South-East Asia's, where the same maps show WGS 84.
CHINA_RECTANGLE = "72.004-137.8347 E, 0.8293-55.8271 N"


# Boxes (W, S, E, N degrees) inside that rectangle but wholly outside mainland China, where Amap, Tencent and Baidu
# show WGS 84: each 0.23 degrees (some 25 km) or more clear of China as Natural Earth's 1:50m countries draw it (QGIS's
# world_map.gpkg). A coarse test of where the datum is surely wrong, not a border: Mongolia, Central Asia, Taiwan,
# Hong Kong, Macao, Borneo and the lands near the border lie in none.
WGS84_REGIONS = {
    "South-East Asia": (72.004, 0.8293, 107.5, 20.9),
    "northern Viet Nam": (103.0, 20.0, 107.0, 21.3),
    # East of the box above, south of Hainan (18.1 N) by more than a degree and west of the Paracels.
    "central Viet Nam": (107.5, 8.0, 109.6, 17.0),
    "South Asia": (72.004, 0.8293, 96.5, 26.0),
    "Nepal": (80.5, 25.0, 88.0, 27.3),
    "northern India": (72.004, 0.8293, 78.0, 31.0),
    "Pakistan": (72.004, 0.8293, 76.0, 34.0),
    "Korea": (124.9, 0.8293, 130.0, 39.5),
    "Japan": (129.0, 0.8293, 137.8347, 41.0),
    "the Philippines": (118.5, 0.8293, 137.8347, 19.0),
}


def wgs84_region(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Per position, the name of the ``WGS84_REGIONS`` box it lies in, "" where none."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    region = np.full(lon.shape, "", dtype=object)
    for name, (west, south, east, north) in reversed(WGS84_REGIONS.items()):  # the first box named wins
        region[(lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)] = name
    return region


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Where the formulas apply the GCJ-02 offset: the rectangle they use (``CHINA_RECTANGLE``)."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 longitude and latitude (degrees, arrays of one shape) as GCJ-02 maps show them."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    x, y = lon - 105.0, lat - 35.0
    waves = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    north = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
             + (waves + 20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)
                + 160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    east = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (waves + 20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)
               + 150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    phi = np.radians(lat)
    w = 1.0 - _ECCENTRICITY_SQUARED * np.sin(phi) ** 2
    d_lat = north * 180.0 / (_SEMI_MAJOR_M * (1.0 - _ECCENTRICITY_SQUARED) / (w * np.sqrt(w)) * np.pi)
    d_lon = east * 180.0 / (_SEMI_MAJOR_M / np.sqrt(w) * np.cos(phi) * np.pi)
    moved = in_china(lon, lat)
    return np.where(moved, lon + d_lon, lon), np.where(moved, lat + d_lat, lat)


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude and latitude back to WGS 84: the point ``wgs84_to_gcj02`` moves onto them."""
    return _inverse(wgs84_to_gcj02, lon, lat)


def gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude and latitude as Baidu maps show them (BD-09)."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    radius = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_FACTOR)
    angle = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_FACTOR)
    return radius * np.cos(angle) + _BD_SHIFT[0], radius * np.sin(angle) + _BD_SHIFT[1]


def bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 longitude and latitude back to GCJ-02: the point ``gcj02_to_bd09`` moves onto them (Baidu's published
    inverse is off by up to some 10 cm)."""
    return _inverse(gcj02_to_bd09, lon, lat)


def _inverse(forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]], lon: np.ndarray,
             lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The point ``forward`` moves onto ``lon``, ``lat``, by fixed-point iteration: the offsets change by far less
    than a metre over their own size, so each step cuts the miss many times over."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    x, y = lon, lat
    for _ in range(_INVERSE_STEPS):
        there_x, there_y = forward(x, y)
        miss_x, miss_y = there_x - lon, there_y - lat
        x, y = x - miss_x, y - miss_y
        if np.nanmax(np.abs(np.concatenate([np.ravel(miss_x), np.ravel(miss_y), [0.0]]))) < _INVERSE_TOLERANCE_DEG:
            break
    return x, y


def to_wgs84(geoms: np.ndarray, datum: str) -> np.ndarray:
    """Shapely geometries whose longitude and latitude were drawn in ``datum`` (one of ``DATUMS``), in WGS 84; heights
    (Z) kept as they are."""
    if datum == "wgs84":
        return geoms

    def back(coords: np.ndarray) -> np.ndarray:
        lon, lat = coords[:, 0], coords[:, 1]
        if datum == "bd09":
            lon, lat = np.where(in_china(lon, lat), bd09_to_gcj02(lon, lat), (lon, lat))
        return np.column_stack([*gcj02_to_wgs84(lon, lat), coords[:, 2:]])

    return shapely.transform(geoms, back, include_z=None)  # None: each geometry with its Z, where it has one
