"""Fetch from Sentinel Hub (Copernicus Data Space Ecosystem by default) with the `sentinelhub` client.

Credentials come only from the environment (``SH_CLIENT_ID``, ``SH_CLIENT_SECRET``) or the
sentinelhub configuration file (profile from ``SH_PROFILE``); they are never logged or written.
Endpoints come from that configuration; when it names sentinelhub's built-in defaults, the
Copernicus Data Space Ecosystem (CDSE) endpoints are used instead.

Per date with catalogue scenes under the cloud limit, one Process API request per window (at most
2048 x 2048 px, within the service's 2500 px limit) returns the bands + SCL as uint16 at 10 m in
the area's UTM zone (a date the folder already holds keeps its zone); Sentinel Hub mosaics the date's tiles (least
cloudy first) and removes the processing-baseline offset (``harmonizeValues``), so the local files need no DN offset.
The local item records the catalogue's tiles and the cloud limit: a rerun under another limit, or with a tile over
the folder's windows published since, fetches the date again.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import affine
import geopandas as gpd
import numpy as np
import rasterio.crs
import requests
import shapely
import shapely.geometry
from oauthlib.oauth2 import BackendApplicationClient
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from requests_oauthlib import OAuth2Session
from sentinelhub import DownloadRequest, SentinelHubDownloadClient, SentinelHubSession, SHConstants
from sentinelhub.download.handlers import fail_user_errors, retry_temporary_errors

from farmcredit.errors import ImageryError, InputError
from farmcredit.imagery.fetch import (
    FetchedScene,
    HttpSettings,
    LocalScene,
    ProgressCallback,
    RemoteSource,
    SceneGrid,
    SceneInfo,
    SceneWriter,
    cached_scene,
    fetch_scene,
    footprint_wgs84,
    pixel_box,
    public_url,
    rewritten_logs,
    utm_crs,
)
from farmcredit.imagery.naming import SCL
from farmcredit.imagery.scene import parse_utc
from farmcredit.imagery.stac import WholeResponseAdapter

CDSE_BASE_URL = "https://sh.dataspace.copernicus.eu"
CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
CELL_PX = 2048
RESOLUTION_M = 10.0
# The Process API's own limit on either side of an image, pixels.
MAX_REQUEST_PX = 2500
CATALOG_COLLECTION = "sentinel-2-l2a"
# What a local item says built its mosaic: the catalogue's tiles and the cloud limit of the Process requests.
CATALOG_IDS_PROPERTY = "farmcredit:catalog_ids"
MAX_CLOUD_PROPERTY = "farmcredit:max_cloud"
CREDENTIALS_HELP = (
    "set SH_CLIENT_ID and SH_CLIENT_SECRET (an OAuth client; for CDSE, create one at "
    "https://shapps.dataspace.copernicus.eu/dashboard) or save them in a sentinelhub configuration profile"
)


def sentinelhub_config(source: RemoteSource, http: HttpSettings, config: Any = None) -> Any:
    """The ``SHConfig`` to use: credentials and endpoints from the environment or config file, our retries.

    Args:
        source: Its ``url``, when given, overrides the configuration's base URL.
        http: Timeouts and retries (429s too are retried at most ``http.attempts`` times).
        config: A ``SHConfig`` to start from instead of the environment's.

    Raises:
        InputError: The configuration profile does not exist or holds no credentials.
    """
    from sentinelhub import SHConfig

    if config is None:
        try:
            config = SHConfig()
        except KeyError as error:  # SH_PROFILE names a profile the file lacks
            raise InputError(f"sentinelhub configuration {SHConfig.get_config_location()}: {error}") from error
    config = config.copy()
    defaults = SHConfig(use_defaults=True)
    if source.url:
        config.sh_base_url = source.url
    elif (config.sh_base_url, config.sh_token_url) == (defaults.sh_base_url, defaults.sh_token_url):
        config.sh_base_url, config.sh_token_url = CDSE_BASE_URL, CDSE_TOKEN_URL
    if not (config.sh_client_id and config.sh_client_secret):
        raise InputError(f"no Sentinel Hub credentials for {public_url(config.sh_base_url)}: {CREDENTIALS_HELP}")
    config.max_download_attempts = http.attempts
    config.download_sleep_time = http.retry_delay_s
    config.download_timeout_seconds = http.timeout_s
    # Without a bound, sentinelhub retries 429 forever.
    config.max_retries = http.attempts
    return config


def fetch_sentinelhub(
    area: gpd.GeoSeries,
    season: tuple[date, date],
    source: RemoteSource,
    out: Path,
    max_cloud: float,
    bands: Sequence[str],
    http: HttpSettings,
    progress: ProgressCallback | None,
    config: Any = None,
) -> tuple[list[FetchedScene], list[tuple[str, str]]]:
    """Search the Catalog and fetch each date's windows with the Process API (see `fetch_imagery`).

    Args:
        area: Geometries in EPSG:4326.

    Returns:
        The scenes (one per date) fetched or reused, and (catalogue id, why) for scenes left out.
    """
    config = sentinelhub_config(source, http, config)
    with _secret_kept_out_of_logs(config.sh_client_secret):
        return _fetch(area, season, out, max_cloud, bands, http, progress, config)


def _fetch(
    area: gpd.GeoSeries,
    season: tuple[date, date],
    out: Path,
    max_cloud: float,
    bands: Sequence[str],
    http: HttpSettings,
    progress: ProgressCallback | None,
    config: Any,
) -> tuple[list[FetchedScene], list[tuple[str, str]]]:
    from sentinelhub import DownloadFailedException

    session = _session(config)
    client = _WholeResponseClient(session=session, config=config, default_retry_time=http.retry_delay_s)
    base_url = public_url(config.sh_base_url)
    try:
        found = _search(config, client, area, season, max_cloud)
    except DownloadFailedException as error:
        raise ImageryError(f"Sentinel Hub catalog at {base_url}: search failed ({_reason(error)})") from error
    # The search covers the area's bounding box; a date whose tiles miss every parcel costs no request.
    parcels = shapely.STRtree(area.to_numpy())
    features, skipped = [], []
    for feature in found:
        if parcels.query(shapely.geometry.shape(feature["geometry"]), predicate="intersects").size:
            features.append(feature)
        else:
            skipped.append((str(feature["id"]), "its footprint misses every parcel"))
    if not features:
        west, south, east, north = area.total_bounds
        raise ImageryError(
            f"Sentinel Hub catalog at {base_url}: no Sentinel-2 L2A scene over {west:.4f},{south:.4f},"
            f"{east:.4f},{north:.4f} in {season[0]}/{season[1]} with cloud cover <= {max_cloud:g}%"
        )
    by_date, found_by_date = _by_date(features), _by_date(found)

    area_crs = _area_crs(area)
    if not _grid(area_crs, bands).plan(area):
        raise InputError("the area has no extent to fetch (points or lines instead of parcels or a box?)")
    fetched: list[FetchedScene] = []
    for done, day in enumerate(sorted(by_date)):
        held = LocalScene.load(out, _scene_id(day))
        # A date the folder holds keeps its grid: another parcel set may lie mostly in another UTM zone, and the
        # windows held are numbers in their own CRS.
        grid = _grid(held.grid.crs if held is not None else area_crs, bands)
        needed = grid.plan(area)
        # The Process API mosaics every tile over the windows (a window's margin too): the folder records them all,
        # so a rerun finds none new of those that touch no parcel.
        windows = footprint_wgs84(needed, grid.crs)
        if held is not None:
            windows = windows.union(held.footprint())
        tiles = [f for f in found_by_date[day] if shapely.geometry.shape(f["geometry"]).intersects(windows)]
        outdated = held is not None and _outdated(held, tiles, max_cloud)
        info = _scene_info(day, tiles, max_cloud, None if outdated else held)
        if progress is not None:
            progress(info.scene_id, done, len(by_date))
        scene = None if outdated else cached_scene(out, info, area, bands)
        if scene is None:
            scene = fetch_scene(
                out, info, grid, bands, needed,
                lambda writer, windows, day=day, grid=grid: _process(config, client, grid, bands, day, max_cloud,
                                                                     writer, windows),
                outdated=outdated,
            )
        fetched.append(scene)
    if progress is not None:
        progress("done", len(by_date), len(by_date))
    return fetched, skipped


def _secret_kept_out_of_logs(secret: str) -> AbstractContextManager[None]:
    """requests-oauthlib logs the token request's body, client secret included, at DEBUG level: blank the secret
    out, as written and as URL-encoded in a request body or URL."""
    forms = {secret, quote_plus(secret), quote(secret), quote(secret, safe="")}
    # Longest first, so that no form is left half blanked by a shorter one inside it.
    ordered = sorted(forms - {""}, key=len, reverse=True)

    def blanked(text: str) -> str:
        for form in ordered:
            text = text.replace(form, "***")
        return text

    return rewritten_logs(("requests_oauthlib.oauth2_session",), blanked)


def _whole_responses(session: requests.Session) -> requests.Session:
    """``session`` with each answer's body read whole, whatever its size, gaining at least ``BODY_PROGRESS_BYTES`` in
    each stretch of the request's timeout after its headers (`WholeResponseAdapter`): requests' timeout bounds each
    wait on the socket, so a server sending a byte every few seconds held a fetch for ever, while a Process answer of
    some 90 MB may take minutes on a slow link. A body slower than that is a timeout, retried as sentinelhub retries
    one."""
    for scheme in ("http://", "https://"):
        session.mount(scheme, WholeResponseAdapter(capped=False))
    return session


class _WholeResponseClient(SentinelHubDownloadClient):
    """sentinelhub's download client (Catalog, Process), each answer's body read whole and kept arriving in each
    stretch of ``config.download_timeout_seconds`` after its headers (`_whole_responses`)."""

    def _do_download(self, request: DownloadRequest) -> requests.Response:
        with _whole_responses(requests.Session()) as session:
            return session.request(request.request_type.value, url=request.url, json=request.post_values,
                                   headers=self._prepare_headers(request),
                                   timeout=self.config.download_timeout_seconds)


class _TimedTokenSession(SentinelHubSession):
    """sentinelhub's session, its token request bounded by ``config.download_timeout_seconds``: each wait for the
    answer, and its body kept arriving after the headers (`_whole_responses`).

    sentinelhub 3.12 asks for the token without a timeout, so a token endpoint that never answers
    hangs the fetch. The request, its retries (``max_download_attempts``, on a timeout too) and its
    errors are otherwise sentinelhub's own; a renewed token goes through here as well.
    """

    @retry_temporary_errors
    @fail_user_errors
    def _fetch_token(self, request: DownloadRequest) -> dict[str, Any]:
        oauth_client = BackendApplicationClient(client_id=self.config.sh_client_id)
        with _whole_responses(OAuth2Session(client=oauth_client)) as oauth_session:
            oauth_session.register_compliance_hook("access_token_response", self._compliance_hook)
            return oauth_session.fetch_token(
                token_url=request.url,
                client_id=self.config.sh_client_id,
                client_secret=self.config.sh_client_secret,
                headers={**self.DEFAULT_HEADERS, **SHConstants.HEADERS},
                include_client_id=True,
                timeout=self.config.download_timeout_seconds,
            )


def _session(config: Any) -> SentinelHubSession:
    """A session of our own (sentinelhub caches sessions by client id and URL, not by secret)."""
    from oauthlib.oauth2 import InsecureTransportError, OAuth2Error
    from sentinelhub import DownloadFailedException

    token_url = public_url(config.sh_token_url)
    try:
        return _TimedTokenSession(config=config)
    except InsecureTransportError as error:
        raise InputError(f"Sentinel Hub token URL {token_url} is not https; OAuth refuses plain http") from error
    except OAuth2Error as error:
        # An error body of a busy endpoint (429, 5xx) reaches oauthlib as an OAuth error too.
        answer = error.error if isinstance(error.error, dict) else {}
        if answer.get("status") == 429 or str(answer.get("status", "")).startswith("5"):
            raise ImageryError(f"Sentinel Hub token endpoint {token_url} answered {answer['status']} "
                               f"({answer.get('message') or answer.get('reason') or 'no reason given'})") from error
        # oauthlib's own words (e.g. "unauthorized_client"); its status code is unreliable.
        raise InputError(
            f"Sentinel Hub at {token_url} refused the credentials of OAuth client {config.sh_client_id!r} "
            f"({error.error}): {CREDENTIALS_HELP}"
        ) from error
    except DownloadFailedException as error:
        raise ImageryError(f"Sentinel Hub token endpoint {token_url}: {_reason(error)}") from error


def _search(
    config: Any, client: Any, area: gpd.GeoSeries, season: tuple[date, date], max_cloud: float
) -> list[dict[str, Any]]:
    """Catalog features (id, datetime, cloud cover) of Sentinel-2 L2A over the area's bounds in the season."""
    from sentinelhub import CRS, BBox, SentinelHubCatalog

    catalog = SentinelHubCatalog(config=config)
    catalog.client = client  # our session, not the shared cache
    search = catalog.search(
        CATALOG_COLLECTION,
        bbox=BBox(tuple(area.total_bounds), crs=CRS.WGS84),
        time=(datetime.combine(season[0], time.min, timezone.utc), datetime.combine(season[1], time.max, timezone.utc)),
        filter=f"eo:cloud_cover <= {max_cloud:g}",
        fields={"include": ["id", "geometry", "properties.datetime", "properties.eo:cloud_cover"], "exclude": []},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _rate_limit_warning())
        return list(search)


def _area_crs(area: gpd.GeoSeries) -> rasterio.crs.CRS:
    """The UTM zone holding most geometries (ties: the smaller EPSG code)."""
    centroids = area.to_crs(area.estimate_utm_crs()).centroid.to_crs("EPSG:4326")
    zones = Counter(utm_crs(point.x, point.y).to_epsg() for point in centroids)
    return rasterio.crs.CRS.from_epsg(min(zones, key=lambda code: (-zones[code], code)))


def _grid(crs: rasterio.crs.CRS, bands: Sequence[str]) -> SceneGrid:
    """An unbounded 10 m grid in ``crs``, on Sentinel-2's own pixel lattice."""
    transform = affine.Affine(RESOLUTION_M, 0.0, 0.0, 0.0, -RESOLUTION_M, 0.0)
    return SceneGrid(
        crs=crs,
        base_transform=transform,
        base_shape=None,
        cell_px=CELL_PX,
        band_transforms={band: transform for band in bands},
        band_dtypes={band: "uint8" if band == SCL else "uint16" for band in bands},
    )


def _by_date(features: Sequence[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    """Catalogue features by acquisition date (UTC)."""
    return {day: [f for f in features if _acquired(f).date() == day] for day in {_acquired(f).date() for f in features}}


def _scene_id(day: date) -> str:
    """One local scene per date: Sentinel Hub mosaics that date's tiles."""
    return f"SH_S2L2A_{day:%Y%m%d}"


def _outdated(held: LocalScene, found: Sequence[dict[str, Any]], max_cloud: float) -> bool:
    """True when the date's folder was built otherwise than a fetch now builds it: under another cloud limit (or by
    a farmcredit that did not record it), or without a tile the catalogue now finds over its windows (published
    since). The Process API mosaics every tile of the date under the limit, so either changes its pixels.

    Args:
        held: The date's scene folder.
        found: The catalogue's tiles of the date under ``max_cloud``, over the area.
        max_cloud: This fetch's cloud limit, percent.
    """
    if held.properties.get(MAX_CLOUD_PROPERTY) != max_cloud:
        return True
    known = set(held.properties.get(CATALOG_IDS_PROPERTY) or ())
    footprint = held.footprint()
    return any(str(feature["id"]) not in known and shapely.geometry.shape(feature["geometry"]).intersects(footprint)
               for feature in found)


def _scene_info(day: date, features: Sequence[dict[str, Any]], max_cloud: float, held: LocalScene | None) -> SceneInfo:
    """The date's scene: its tiles over the parcels, with those of the folder's windows when its pixels are kept.

    Args:
        features: The catalogue's tiles of the date over the windows fetched and held.
        max_cloud: The cloud limit the Process API is asked with, percent.
        held: The date's scene folder when its pixels are kept (built under the same limit), else None.
    """
    covers = [float(cover) for f in features if (cover := f["properties"].get("eo:cloud_cover")) is not None]
    tiles = {str(feature["id"]) for feature in features}
    if held is not None:
        tiles |= set(held.properties.get(CATALOG_IDS_PROPERTY) or ())
        if (cover := held.properties.get("eo:cloud_cover")) is not None:
            covers.append(float(cover))
    return SceneInfo(
        scene_id=_scene_id(day),
        acquired=min(_acquired(feature) for feature in features),
        # The date's worst tile: what the cloud filter let through at most.
        cloud_cover=max(covers) if covers else None,
        tile=None,
        properties={"constellation": "sentinel-2", CATALOG_IDS_PROPERTY: sorted(tiles), MAX_CLOUD_PROPERTY: max_cloud,
                    "farmcredit:harmonized": True},
        dn_offset=0.0,
    )


def _process(
    config: Any, client: Any, grid: SceneGrid, bands: Sequence[str], day: date, max_cloud: float,
    writer: SceneWriter, windows: Sequence[tuple[float, float, float, float]],
) -> int:
    """One Process API request per window for the date, of its tiles under ``max_cloud`` (%) only, as the catalogue
    chose them; returns the response bytes received."""
    from sentinelhub import DownloadFailedException

    requests = [_request(config, grid, bands, day, max_cloud, bounds) for bounds in windows]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _rate_limit_warning())
            responses = client.download([r.download_list[0] for r in requests], max_threads=4, decode_data=False)
    except DownloadFailedException as error:
        raise ImageryError(f"Sentinel Hub process API at {public_url(config.sh_base_url)}: {_reason(error)}") from error
    received = 0
    for bounds, response in zip(windows, responses, strict=True):
        received += len(response.content)
        values, transform = _decode(response.content, bands, bounds, config.sh_base_url)
        for index, band in enumerate(bands):
            writer.write(band, values[index], transform)
    return received


def _request(config: Any, grid: SceneGrid, bands: Sequence[str], day: date, max_cloud: float,
             bounds: Sequence[float]) -> Any:
    from sentinelhub import CRS as SHCRS
    from sentinelhub import BBox, MimeType, MosaickingOrder, ResamplingType, SentinelHubRequest

    col0, row0, col1, row1 = pixel_box(np.array([bounds]), grid.base_transform)[0].tolist()
    size = (col1 - col0, row1 - row0)
    if max(size) > MAX_REQUEST_PX:
        raise ValueError(f"window of {size} px exceeds the Process API's {MAX_REQUEST_PX} px")
    return SentinelHubRequest(
        evalscript=_evalscript(bands),
        input_data=[
            SentinelHubRequest.input_data(
                data_collection=_collection(config.sh_base_url),
                time_interval=(
                    datetime.combine(day, time.min, timezone.utc),
                    datetime.combine(day, time.max, timezone.utc),
                ),
                mosaicking_order=MosaickingOrder.LEAST_CC,
                # A tile over the limit, beside one under it that date, is not mosaicked in. The API takes whole
                # percent (sentinelhub sends int(maxcc x 100): 0.29 x 100 is 28.99...): the catalogue's limit, up.
                maxcc=min((math.ceil(max_cloud) + 0.5) / 100, 1.0),
                upsampling=ResamplingType.NEAREST,
                # Remove the baseline 04.00+ offset server-side, whatever each tile's baseline.
                other_args={"processing": {"harmonizeValues": True}},
            )
        ],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=BBox(tuple(bounds), crs=SHCRS(grid.crs.to_epsg())),
        size=size,
        config=config,
    )


def _evalscript(bands: Sequence[str]) -> str:
    names = ", ".join(f'"{band}"' for band in bands)
    values = ", ".join(f"sample.{band}" for band in bands)
    return (
        "//VERSION=3\n"
        "function setup() {\n"
        f'  return {{input: [{{bands: [{names}], units: "DN"}}],\n'
        f'          output: {{id: "default", bands: {len(bands)}, sampleType: "UINT16"}}}};\n'
        "}\n"
        f"function evaluatePixel(sample) {{ return [{values}]; }}\n"
    )


def _collection(base_url: str) -> Any:
    """Sentinel-2 L2A at this deployment (the built-in one always targets services.sentinel-hub.com)."""
    from sentinelhub import DataCollection

    if base_url.rstrip("/") == DataCollection.SENTINEL2_L2A.service_url:
        return DataCollection.SENTINEL2_L2A
    # One name per URL: sentinelhub refuses a name reused with another URL.
    name = "FARMCREDIT_S2L2A_" + hashlib.sha1(base_url.rstrip("/").encode()).hexdigest()[:12].upper()
    return DataCollection.SENTINEL2_L2A.define_from(name, service_url=base_url.rstrip("/"))


def _decode(
    content: bytes, bands: Sequence[str], bounds: Sequence[float], base_url: str
) -> tuple[np.ndarray, affine.Affine]:
    """The response TIFF's (band, rows, cols) values and their transform (the window's)."""
    try:
        with MemoryFile(content) as memory, memory.open(driver="GTiff") as dataset:
            values = dataset.read()
    except RasterioError as error:
        raise ImageryError(
            f"Sentinel Hub process API at {public_url(base_url)}: the response for window {list(bounds)} is not a "
            f"readable TIFF ({len(content)} bytes; truncated?): {error}"
        ) from error
    if values.shape[0] != len(bands):
        raise ImageryError(
            f"Sentinel Hub process API at {public_url(base_url)}: {values.shape[0]} bands in the response, "
            f"{len(bands)} asked for"
        )
    height, width = values.shape[1:]
    transform = affine.Affine(
        (bounds[2] - bounds[0]) / width, 0.0, bounds[0], 0.0, -(bounds[3] - bounds[1]) / height, bounds[3]
    )
    return values, transform


def _acquired(feature: dict[str, Any]) -> datetime:
    return parse_utc(str(feature["properties"]["datetime"]))


def _reason(error: Exception) -> str:
    """sentinelhub's failure message on one line, without the request body."""
    return re.sub(r"\s+", " ", str(error)).strip()[:400]


def _rate_limit_warning() -> type[Warning]:
    from sentinelhub.exceptions import SHRateLimitWarning

    return SHRateLimitWarning
