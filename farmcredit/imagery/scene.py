"""What `open_imagery` returns: acquisitions (`Scene`), a season of them on one grid (`Imagery`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone

import affine
import numpy as np
import rasterio.crs
from pyproj import CRS, Transformer

from farmcredit.errors import ImageryError
from farmcredit.imagery.naming import NDVI_BANDS


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time (``2024-03-15T03:15:21.12Z``, as STAC items and SAFE metadata write them) as an aware UTC
    datetime; a time without an offset is UTC, as STAC says.

    Python 3.10's ``fromisoformat`` takes neither ``Z`` nor fractions of a second other than 3 or 6 digits, so
    both are written as it reads them first (a fraction to microseconds).

    Raises:
        ValueError: text that is no ISO 8601 time.

    Example:
        >>> parse_utc("2024-03-15T03:15:21.12Z")
        datetime.datetime(2024, 3, 15, 3, 15, 21, 120000, tzinfo=datetime.timezone.utc)
    """
    text = re.sub(r"[Zz]$", "+00:00", text.strip())
    text = re.sub(r"\.(\d+)", lambda fraction: "." + fraction[1][:6].ljust(6, "0"), text, count=1)
    acquired = datetime.fromisoformat(text)
    return acquired.replace(tzinfo=timezone.utc) if acquired.tzinfo is None else acquired.astimezone(timezone.utc)


@dataclass(frozen=True)
class Scene:
    """One Sentinel-2 acquisition: where each band's pixels are and how DNs become reflectance.

    Reflectance (0-1) = (DN + dn_offset) * dn_scale; DN 0 is no data.

    Attributes:
        scene_id: Product id (STAC item id, folder name, or "<stack name>_<YYYYMMDD>").
        acquired: Acquisition time, UTC (midnight when only the date is known).
        band_paths: Band name ("B02".."B12", "B8A", "SCL") -> (GDAL path, 1-based band index).
        dn_offset: Added to the DN before scaling, DN (-1000: baseline >= 04.00, not yet applied).
        dn_scale: Reflectance per DN (1e-4 for L2A integers, 1 for float reflectance).
        cloud_cover: Scene cloud cover from metadata, percent; None when unknown.
        parts: For a date seen by several products (tiles, UTM zones, orbits): those products in
            priority order; each pixel comes from the first part that sees it clear, else the first
            that has data. Empty for a single product. A mosaic's own band_paths, offset and scale
            are its first part's.
        level: The processing level its metadata gives ("L2A": a STAC item or SAFE product, Level-1C ones being
            refused); None where nothing says (a stack, a scene folder without an item). A mosaic's is its first
            part's.
    """

    scene_id: str
    acquired: datetime
    band_paths: Mapping[str, tuple[str, int]]
    dn_offset: float
    dn_scale: float
    cloud_cover: float | None
    parts: tuple[Scene, ...] = ()
    level: str | None = None


@dataclass(frozen=True)
class Imagery:
    """A season of co-registered scenes on one grid (the grid of the finest of B02/B03/B04/B08).

    Attributes:
        source: The folder or stack file the scenes came from.
        scenes: Scenes sorted by acquisition time.
        crs: CRS of every scene.
        transform: Affine transform of the base (10 m) grid, metres.
        shape: (height, width) of the base grid, pixels.
        bands: Reflectance bands present in every scene, in wavelength order (SCL excluded).
        has_scl: True when every scene has a scene classification (SCL) layer.
        unopened: (scene id, band, path, GDAL's message) of each local band file GDAL could not open (missing,
            empty, not a raster).
        left_out: (scene id, why) of each scene of the season left out of it (no 10 m band file opens; no red or
            NIR file where most scenes have one).
        unread_folders: (folder, the system's message) of each folder under a source folder that could not be listed
            (no read or search permission): any scene in it is not read.
        band_layout: the band layout it was opened with (a stack's), to open it again for a narrower season.
        dn_offset: the DN offset it was opened with, likewise.
    """

    source: str
    scenes: tuple[Scene, ...]
    crs: rasterio.crs.CRS
    transform: affine.Affine
    shape: tuple[int, int]
    bands: tuple[str, ...]
    has_scl: bool
    unopened: tuple[tuple[str, str, str, str], ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()
    unread_folders: tuple[tuple[str, str], ...] = ()
    band_layout: tuple[tuple[date | str | None, str], ...] | None = None
    dn_offset: float | None = None

    def require_ndvi_bands(self) -> None:
        """Refuse imagery without red (B04) or NIR (B08) in every scene: every statistic starts from NDVI, and the
        cropland model needs both (without them each pixel would read as never clear).

        Raises:
            ImageryError: naming the missing bands, the bands every scene has, and why GDAL could not open a
                missing band's file where that is why.
        """
        missing = [band for band in NDVI_BANDS if band not in self.bands]
        if missing:
            unopened = next((f"; GDAL cannot open {path} ({message})" for _, band, path, message in self.unopened
                             if band in missing), "")
            raise ImageryError(f"imagery {self.source} lacks {', '.join(missing)} in some or all scenes (bands in "
                               f"every scene: {', '.join(self.bands) or 'none'}); NDVI needs red (B04) and NIR "
                               f"(B08){unopened}")

    def centre_lonlat(self) -> tuple[float, float] | None:
        """Longitude and latitude (degrees) of the grid's centre; None in a CRS with no place on the earth (an
        engineering CRS) or where the centre is off the globe."""
        crs = CRS.from_user_input(self.crs.to_wkt())
        if crs.geodetic_crs is None:
            return None
        centre_x, centre_y = self.transform @ (self.shape[1] / 2, self.shape[0] / 2)
        lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(centre_x, centre_y,
                                                                                     errcheck=False)
        return (float(lon), float(lat)) if np.isfinite(lon) and abs(lat) <= 90 else None

    def ground_pixel_m(self) -> tuple[float, float]:
        """Width and height of a pixel on the ground at the grid's centre, metres: the geodesic length of one pixel
        across and one down, so a CRS's scale (Web Mercator's 1/cos(latitude): 10 units are 6.7 m at 48 degrees N)
        and unit (US feet) count. Planar, in metres of the CRS's unit, where the CRS or the centre has no place on
        the earth."""
        crs = CRS.from_user_input(self.crs.to_wkt())
        across, down = abs(self.transform.a), abs(self.transform.e)
        planar = (across * crs.axis_info[0].unit_conversion_factor, down * crs.axis_info[1].unit_conversion_factor)
        if crs.geodetic_crs is None:
            return planar
        centre_x, centre_y = self.transform @ (self.shape[1] / 2, self.shape[0] / 2)
        xs = np.array([centre_x - across / 2, centre_x + across / 2, centre_x, centre_x])
        ys = np.array([centre_y, centre_y, centre_y - down / 2, centre_y + down / 2])
        lons, lats = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(xs, ys, errcheck=False)
        if not (np.isfinite(lons).all() and np.isfinite(lats).all()):
            return planar
        _, _, lengths = crs.get_geod().inv(lons[[0, 2]], lats[[0, 2]], lons[[1, 3]], lats[[1, 3]])
        return float(lengths[0]), float(lengths[1])
