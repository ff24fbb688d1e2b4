"""Fetch from a STAC API (Earth Search by default): item search, then windowed COG reads over HTTP.

pystac-client searches the collection over the area's outline and season, every item whatever its
clouds (a reprocessing over the cloud limit still supersedes the processing under it; the limit is
applied here, after duplicates are dropped: ``choose_items``). rasterio then
reads only the windows around the parcels from each band's COG through GDAL's /vsicurl/ (HTTP
range requests), never whole files.

Of the items of one tile and time, newer processings supersede an older one their footprints cover
(``choose_items``); items that hold different parts of it (a date split between datastrips) are each kept. A scene
folder an earlier fetch wrote of a superseded item is set aside (hidden) once the newer items over it are fetched and
cover every window it held, so no parcel loses its date; until then it stays, read beside them.

One date can hold several items over a parcel (overlapping tiles, two UTM zones, two orbits): the parcel is fetched
from each, as a local folder of the whole items would hold it, and reading mosaics them into one scene (per pixel,
the first part that sees it clear), so it is never counted twice.

An item that lacks red or NIR, or whose band file is not on the server (404, 410) or does not
decode though its bytes arrive whole (a corrupt file), is left out with a warning and named with why
in the manifest's ``skipped``; the rest of the season is fetched, and a rerun tries the item again.
A server that does not give a file past the retries (5xx, 429, a timeout, a dropped connection, a
body cut short or sent a byte at a time) stops the fetch, its folder marked unfinished, as the
season would otherwise be fetched with holes and exit 0.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import geopandas as gpd
import numpy as np
import rasterio
import requests
import shapely
import shapely.geometry
import urllib3
from rasterio.errors import RasterioError
from rasterio.windows import Window
from requests.adapters import HTTPAdapter

from farmcredit.errors import ImageryError, InputError
from farmcredit.formats import open_raster
from farmcredit.imagery._gdal import DeferredInterrupt, gdal_http_env, gdal_message, interrupt_between_gdal_calls
from farmcredit.imagery.earthsearch import scene_from_item
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
    overlapping,
    pixel_box,
    public_url,
    rewritten_logs,
    scene_id_problem,
)
from farmcredit.imagery.naming import BASE_GRID_BANDS, NDVI_BANDS, SCL, processing_baseline
from farmcredit.imagery.scene import Scene

logger = logging.getLogger(__name__)

# Windows are planned per cell of the COG's block size (Earth Search: 1024 px, 10 km), so a window
# touches the blocks its parcels touch; clipped to a range that keeps reads small and few.
CELL_PX_RANGE = (256, 2048)
# Why a catalogue's item is left out when a newer processing of its tile and time is chosen.
SUPERSEDED = "superseded by"
# An item is superseded when newer processings of its tile and time cover this much of its footprint; less, it holds
# parts of the date they do not (a date split between datastrips, a reprocessing of one of them) and is kept.
SUPERSEDED_COVER = 0.9
# An old processing's folder is set aside once the newer ones fetched cover this much of each window it holds (where
# its own footprint has data): the rest is slack for footprints outlined a little differently.
WINDOW_COVER = 0.99
_HTTP_RETRY_STATUSES = (429, 500, 502, 503, 504)
# Most bytes of one STAC API response (a page of 100 Earth Search items is some 1-2 MB).
RESPONSE_MAX_BYTES = 64 * 2**20
# Most items one search may return, as RESPONSE_MAX_BYTES bounds a page but not the pages: a server that always links
# a next page held the fetch for ever, its memory growing. A tile has some 150-300 items a year (two or three
# satellites, two orbits over some tiles, reprocessings), so a province's portfolio (a hull over some 20 tiles) has
# some 6,000 a year: this is about three such years, some 2 GB of items in memory (about 100 KB each).
MAX_SEARCH_ITEMS = 20_000
# Items a search page is asked for (the API's ``limit``, only a recommendation to the server).
SEARCH_PAGE_ITEMS = 100
# The fewest items a page a server is expected to give: the STAC API's default ``limit``, where some servers cap it
# whatever is asked.
LEAST_PAGE_ITEMS = 10
# Most pages one search may read, as MAX_SEARCH_ITEMS bounds the items but not the requests: a server linking a next
# page of one item each time held the fetch for 20,000 requests. A server giving LEAST_PAGE_ITEMS a page passes the
# item bound (MAX_SEARCH_ITEMS + 1 items) on this last page, so it meets the item bound, never this one.
MAX_SEARCH_PAGES = MAX_SEARCH_ITEMS // LEAST_PAGE_ITEMS + 1
_READ_CHUNK_BYTES = 2**16
# Least a response's body must gain in each stretch of the timeout once its headers arrived (a shorter body: all of
# it). A Process answer of a 2048 px cell of 11 bands is some 90 MB, minutes on a slow link: a whole-body deadline of
# the timeout refused it, while this still fails a server sending a byte every few seconds (each socket wait within
# the timeout, so requests' own timeout never fires). 64 KiB a minute, the default timeout, is about 9 kbit/s.
BODY_PROGRESS_BYTES = 2**16
# A query string right after a URL or path in an error message ("/v1?token=..."), up to a quote,
# bracket, comma or space: signed and token URLs carry their secret there.
_QUERY_IN_TEXT = re.compile(r"(?<=[\w/.~%-])\?[^\s'\"()<>,]*")
_USERINFO_IN_TEXT = re.compile(r"//[^/@\s'\"]*@")
# requests turns a URL's user:password into a Basic Authorization header, which pystac-client logs.
_AUTHORIZATION_IN_TEXT = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+")
# The loggers that write the URLs (and headers) of the search's requests.
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry", "pystac_client.stac_api_io")
_COLLECTION_PATH = re.compile(r"(?P<root>.*)/collections/(?P<collection>[^/]+)/?")


def fetch_stac(
    area: gpd.GeoSeries,
    season: tuple[date, date],
    source: RemoteSource,
    out: Path,
    max_cloud: float,
    bands: Sequence[str],
    http: HttpSettings,
    progress: ProgressCallback | None,
) -> tuple[list[FetchedScene], list[tuple[str, str]]]:
    """Search the STAC API and fetch each chosen item's windows into ``out`` (see `fetch_imagery`).

    Args:
        area: Geometries in EPSG:4326.

    Returns:
        The scenes fetched or reused, and (item id, why) for items left out.
    """
    if source.url is None:
        raise ImageryError("a STAC source needs the URL of a STAC API")
    found = search_items(source, area, season, http)
    scenes, refused = [], []
    for item in found:
        # An id that is no plain folder name ("../x") would name a folder elsewhere: left out before any use.
        if (problem := scene_id_problem(item["id"])) is None:
            scenes.append((item, remote_scene(item, source)))
        else:
            logger.warning("STAC item %r is left out: %s", item["id"], problem)
            refused.append((str(item["id"]), problem))
    kept, skipped, superseded = choose_items(scenes, _searched(area), max_cloud)
    skipped = refused + skipped
    footprints = {item["id"]: _footprint(item) for item, _ in scenes}
    # Folders earlier fetches wrote of superseded processings: each newer one over them fetches their windows it
    # covers, and a folder is set aside once those fetched cover all its windows.
    older = _older_folders(out, superseded, {item["id"] for item, _ in kept})
    if not kept:
        raise ImageryError(
            f"{public_url(source.url)}: no {source.collection} scene over the area "
            f"{_bounds_text(area)} in {season[0]}/{season[1]} with cloud cover <= {max_cloud:g}%"
            + (f" ({len(skipped)} left out: {skipped[0][1]}, ...)" if skipped else "")
        )
    if SCL in bands and (unmasked := [item["id"] for item, scene in kept if SCL not in scene.band_paths]):
        logger.warning("STAC items %s have no scl asset: their clouds will not be masked (SCL is the cloud mask)",
                       ", ".join(unmasked))
    members = assign_geometries(area, kept)
    fetched: list[FetchedScene] = []
    failed: list[str] = []
    with interrupt_between_gdal_calls() as interrupt:
        for count, ((item, scene), indexes) in enumerate(zip(kept, members, strict=True)):
            if progress is not None:
                progress(item["id"], count, len(kept))
            # The windows of those folders that lie on this item: it is fetched over them.
            replaced = [held.windows_over(footprints[item["id"]]) for loser, held in older.items()
                        if item["id"] in superseded[loser]]
            replaced = [held for held in replaced if held.windows]
            if indexes.size == 0 and not replaced:
                skipped.append((item["id"], "no parcel needs it (outside it)"))
                continue
            try:
                result = _fetch_item(item, scene, area.iloc[indexes], out, bands, http, interrupt, replaced)
            except Unavailable:
                raise  # the server's outage, not the item's: later items would fail alike
            except ImageryError as error:  # the rest of the season is still fetched; a rerun tries the item again
                interrupt.check()  # a read cut short by Ctrl-C is not the item's failure
                logger.warning("%s; the scene is left out", error)
                skipped.append((item["id"], str(error)))
                failed.append(str(error))
                continue
            if result is None:
                skipped.append((item["id"], "no parcel lies within its rasters"))
                continue
            fetched.append(result)
            fetched_ids = {done.scene_id for done in fetched}
            for loser in [loser for loser in older if item["id"] in superseded[loser]]:
                # Only now: the newer processings fetched hold all its windows (one failed, or over the cloud
                # limit, or none where a window lies: the old folder stays, and its parcels keep the date).
                newer = [footprints[won] for won in superseded[loser] if won in fetched_ids]
                if _holds_windows(newer, older[loser], footprints[loser]):
                    older.pop(loser).set_aside()
    if not fetched and failed:
        raise ImageryError(f"no scene fetched: {len(failed)} left out, a band missing or unreadable "
                           f"({failed[0]}{', ...' if len(failed) > 1 else ''})")
    if progress is not None:
        progress("done", len(kept), len(kept))
    return fetched, skipped


def _older_folders(out: Path, superseded: Mapping[str, Sequence[str]], kept: set[str]) -> dict[str, LocalScene]:
    """The folders in ``out`` of superseded items that earlier fetches wrote, by item id.

    Raises:
        InputError: A superseded item's folder that no fetch wrote (downloaded by hand) while a newer processing is to
            be fetched: read beside it, its older pixels would be mosaicked with the new ones, and it is never set
            aside (as `fetch_scene` never replaces one).
    """
    older = {}
    for loser, newer in superseded.items():
        held = LocalScene.load(out, loser)
        if held is not None:
            older[loser] = held
        elif (out / loser).exists() and kept.intersection(newer):
            raise InputError(
                f"{out / loser}: a folder of scene {loser} that farmcredit fetch did not write (its item {loser}.json "
                f"is missing, unreadable or without farmcredit:grid), which {', '.join(newer)} supersedes (a newer "
                "processing of its tile and time): read beside it, its older pixels would be mosaicked with the new "
                "ones; move it elsewhere, or fetch into another --out"
            )
    return older


def search_items(
    source: RemoteSource, area: gpd.GeoSeries, season: tuple[date, date], http: HttpSettings
) -> list[dict[str, Any]]:
    """The collection's items over the area's convex hull in the season, as JSON with absolute hrefs (all of them,
    whatever their clouds: see ``choose_items``).

    Raises:
        InputError: The URL is not an http(s) URL, or names a STAC document other than an API root
            (a collection's URL, say).
        ImageryError: The API cannot be reached, answers with an error past the retries, is not
            a STAC API with item search, or finds over ``MAX_SEARCH_ITEMS`` items.
    """
    import pystac
    from pystac_client import Client
    from pystac_client.errors import ClientTypeError
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    url = str(source.url)
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, a broken IPv6 host
        usable = False
    if not usable:
        # pystac-client would open anything else as a local file.
        raise InputError(
            f"{_scrubbed(url, url)!r} is not the URL of a STAC API root: give its http(s) URL, "
            "e.g. https://earth-search.aws.element84.com/v1"
        )
    retry = Retry(
        total=max(0, http.attempts - 1), backoff_factor=http.retry_delay_s, status_forcelist=_HTTP_RETRY_STATUSES,
        allowed_methods=None, raise_on_status=False,
    )
    # urllib3 and pystac-client log the URLs they request (a retry at WARNING, each request at DEBUG).
    with rewritten_logs(_URL_LOGGERS, lambda text: _scrubbed(text, url)):
        try:
            # Client.open hands its own timeout to the StacApiIO, replacing the one given there.
            stac_io = StacApiIO(max_retries=None)
            for scheme in ("http://", "https://"):
                stac_io.session.mount(scheme, WholeResponseAdapter(max_retries=retry))
            client = Client.open(url, stac_io=stac_io, timeout=http.timeout_s)
            arguments: dict[str, Any] = {
                "collections": [source.collection],
                "intersects": shapely.geometry.mapping(_searched(area)),
                "datetime": f"{season[0].isoformat()}/{season[1].isoformat()}",
                "limit": SEARCH_PAGE_ITEMS,
            }
            # No cloud filter on the server: a reprocessing over the limit must still be seen to supersede the
            # processing under it (``choose_items`` drops duplicates first, then the clouded).
            search = client.search(**arguments, max_items=MAX_SEARCH_ITEMS + 1)
            items = [pystac.Item.from_dict(feature, root=client, preserve_dict=False)
                     for page in _pages_once(search.pages_as_dicts(), url) for feature in page["features"]]
        except ClientTypeError as error:
            found = re.search(r"found type=(\w+)", str(error))
            raise InputError(
                f"{public_url(url)} is a STAC {found.group(1) if found else 'document'}, not the root of a STAC API"
                + (_collection_hint(url) or " (the landing page that links to the item search)")
            ) from error
        except (APIError, requests.RequestException, pystac.STACError, NotImplementedError, ValueError) as error:
            text = _scrubbed(str(error).strip(), url)
            reason = text.splitlines()[0][:300] if text else type(error).__name__
            raise ImageryError(f"{public_url(url)}: STAC search failed ({reason}){_collection_hint(url)}") from error
    if len(items) > MAX_SEARCH_ITEMS:
        raise ImageryError(f"{public_url(url)}: the STAC search returned over {MAX_SEARCH_ITEMS:,} items: narrow "
                           "--season or the area (fetch the parcels in parts)")
    return [_absolute(item) for item in items]


def _pages_once(pages: Iterator[dict[str, Any]], url: str) -> Iterator[dict[str, Any]]:
    """A search's pages (JSON) up to one whose ``next`` link an earlier page gave: a server whose paging loops back
    would be followed round the loop, its items again each time, up to ``MAX_SEARCH_ITEMS``.

    Raises:
        ImageryError: The pages go on past ``MAX_SEARCH_PAGES`` (of the API at ``url``) before ``MAX_SEARCH_ITEMS``.
    """
    followed: set[str] = set()
    items = largest = 0
    for page in pages:
        yield page
        items += len(page["features"])
        largest = max(largest, len(page["features"]))
        if items > MAX_SEARCH_ITEMS:
            return  # past the item bound, which `search_items` tells of
        link = next((link for link in page.get("links") or [] if isinstance(link, dict) and link.get("rel") == "next"),
                    None)
        if link is None:
            return
        key = json.dumps(link, sort_keys=True, default=str)
        if key in followed:
            logger.warning("the STAC search's next page is one it already read: paging stopped there")
            return
        followed.add(key)
        if len(followed) >= MAX_SEARCH_PAGES:
            raise ImageryError(
                f"{public_url(url)}: the STAC search ran past {MAX_SEARCH_PAGES:,} pages ({items:,} items, the server "
                f"giving at most {largest} a page of the {SEARCH_PAGE_ITEMS} asked for): narrow --season or the area "
                "(fetch the parcels in parts)"
            )


class WholeResponseAdapter(HTTPAdapter):
    """requests' transport with each response's body read whole, gaining at least ``BODY_PROGRESS_BYTES`` in each
    stretch of the request's timeout after its headers' arrival, at most ``RESPONSE_MAX_BYTES`` (any size unless
    ``capped``: a Sentinel Hub Process answer may be larger).

    requests' timeout bounds each wait on the socket, so a server sending a byte at a time held a search for ever, and
    a search response of a GB took its size in memory, and more. urllib3 retries what comes before the headers (a
    timeout, a 5xx, Retry-After's wait), so the stretches start with them: counted from the first try, a retried
    search always failed. A body too slow fails the request (`_whole_body`); the adapter does not retry it.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "capped"]

    def __init__(self, *args: Any, capped: bool = True, **options: Any) -> None:
        self.capped = capped
        super().__init__(*args, **options)

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: float | None = None,
             **options: Any) -> requests.Response:
        response = super().send(request, stream=True, timeout=timeout, **options)
        if stream:
            return response
        try:
            response._content = _whole_body(response, time.monotonic(), timeout, capped=self.capped)
            response._content_consumed = True  # so closing it keeps the connection for the next request
        finally:
            response.close()
        return response


def _whole_body(response: requests.Response, started: float, timeout: float | None, up_to: int | None = None, *,
                capped: bool = True) -> bytes:
    """The body of a streamed ``response`` whose headers arrived at ``started`` (``time.monotonic``): all of it, or
    with ``up_to``, its first ``up_to`` bytes (all of a shorter one).

    Raises:
        requests.exceptions.ReadTimeout: It gained under ``BODY_PROGRESS_BYTES`` in a stretch of ``timeout`` seconds
            (pro rata in a longer one): a body shorter than that must arrive whole within ``timeout``.
        requests.exceptions.ContentDecodingError: It is over ``RESPONSE_MAX_BYTES``, read whole and ``capped``.
    """
    most = RESPONSE_MAX_BYTES if capped and up_to is None else None
    declared = response.headers.get("Content-Length", "")
    if most is not None and declared.isdigit() and int(declared) > most:
        raise _too_large(response, int(declared))
    body = bytearray()
    stretch_started, stretch_from = started, 0  # when the current stretch began, and the bytes held then
    while up_to is None or len(body) < up_to:
        chunk = _read(response, _READ_CHUNK_BYTES if up_to is None else min(_READ_CHUNK_BYTES, up_to - len(body)))
        if not chunk:
            break
        body += chunk
        if most is not None and len(body) > most:
            raise _too_large(response, None)
        now = time.monotonic()
        if timeout is None or now - stretch_started < timeout:
            continue
        gained, required = len(body) - stretch_from, BODY_PROGRESS_BYTES * (now - stretch_started) / timeout
        if gained < required:
            raise requests.exceptions.ReadTimeout(
                f"{public_url(response.url)}: the answer is arriving too slowly: {len(body):,} bytes"
                f"{f' of {int(declared):,}' if declared.isdigit() else ''} in {now - started:.0f} s, {gained:,} in "
                f"the last {now - stretch_started:.0f} s, under the {required:,.0f} required there at "
                f"{BODY_PROGRESS_BYTES // 1024} KiB per --timeout (on a slow link, raise --timeout, now {timeout:g} s)",
                response=response)
        stretch_started, stretch_from = now, len(body)
    return bytes(body)


def _read(response: requests.Response, size: int) -> bytes:
    """Up to ``size`` bytes more of a streamed ``response``'s body (none at its end), urllib3's errors raised as
    requests raises them reading a body itself (a body cut short: ``ChunkedEncodingError``)."""
    # urllib3 >= 2.3 returns what has arrived (read1); an older one waits for a whole chunk.
    read = getattr(response.raw, "read1", response.raw.read)
    try:
        return read(size, decode_content=True)
    except urllib3.exceptions.ProtocolError as error:
        raise requests.exceptions.ChunkedEncodingError(error) from error
    except urllib3.exceptions.DecodeError as error:
        raise requests.exceptions.ContentDecodingError(error) from error
    except urllib3.exceptions.ReadTimeoutError as error:
        raise requests.exceptions.ConnectionError(error) from error


def _too_large(response: requests.Response, size: int | None) -> requests.exceptions.ContentDecodingError:
    """The error of a response of ``size`` bytes (None: more than it reads) over ``RESPONSE_MAX_BYTES``."""
    return requests.exceptions.ContentDecodingError(
        f"{public_url(response.url)}: a response of {'more than ' if size is None else ''}"
        f"{RESPONSE_MAX_BYTES if size is None else size} bytes, over the {RESPONSE_MAX_BYTES / 2**20:g} MiB a STAC "
        "API's page of items may take", response=response)


def remote_scene(item: Mapping[str, Any], source: RemoteSource) -> Scene:
    """The scene of a remote item: /vsicurl/ band paths, date, cloud cover and DN offset."""
    return scene_from_item(_item_label(item, source), dict(item))


def _searched(area: gpd.GeoSeries) -> shapely.Geometry:
    """The region searched for items: the convex hull of the area's geometries (EPSG:4326)."""
    return shapely.convex_hull(shapely.union_all(area.to_numpy()))


def choose_items(
    scenes: Sequence[tuple[dict[str, Any], Scene]], searched: shapely.Geometry, max_cloud: float
) -> tuple[list[tuple[dict[str, Any], Scene]], list[tuple[str, str]], dict[str, list[str]]]:
    """Leave out older processings of one tile and time (reprocessing), then items over the cloud limit.

    Items of one tile and time are ranked newest first (baseline, then ``s2:sequence``, then id). An item is superseded
    by the newer ones kept whose footprints overlap its own when together they cover it within the ``searched`` region
    (``SUPERSEDED_COVER``), whatever its clouds and theirs: an older processing less clouded is not used in their
    place (nor, once its folder is set aside, mosaicked with them by a fetch at another limit). An item they cover only
    in part holds parcels they do not (a date split between datastrips, one of them reprocessed) and is kept beside
    them.

    Returns:
        Kept (item, scene) pairs in date then id order; (item id, why) for the others; and per superseded item id, the
        ids of the newer processings that supersede it (kept, or over the cloud limit).
    """
    skipped: list[tuple[str, str]] = []
    superseded: dict[str, list[str]] = {}
    groups: dict[tuple[str, str], list[tuple[dict[str, Any], Scene]]] = {}
    for item, scene in scenes:
        groups.setdefault((_tile(item) or item["id"], scene.acquired.isoformat(timespec="seconds")), []).append(
            (item, scene))
    best: list[tuple[dict[str, Any], Scene]] = []
    for group in groups.values():
        winners: list[tuple[dict[str, Any], Scene]] = []
        for item, scene in sorted(group, key=lambda pair: _processing_rank(pair[0]), reverse=True):
            footprint = _footprint(item)
            newer = [won for won, _ in winners if overlapping(_footprint(won), footprint)]
            if newer and _covered(footprint & searched, [_footprint(won) for won in newer]):
                superseded[item["id"]] = [won["id"] for won in newer]
                skipped.append((item["id"], f"{SUPERSEDED} {', '.join(superseded[item['id']])} (same tile and time)"))
            else:
                winners.append((item, scene))
        best += winners
    kept = []
    for item, scene in sorted(best, key=lambda pair: (pair[1].acquired, pair[0]["id"])):
        if scene.cloud_cover is not None and scene.cloud_cover > max_cloud:
            skipped.append((item["id"], f"cloud cover {scene.cloud_cover:.1f}% above {max_cloud:g}%"))
        else:
            kept.append((item, scene))
    return kept, skipped, superseded


def _covered(footprint: shapely.Geometry, newer: Sequence[shapely.Geometry]) -> bool:
    """Whether the ``newer`` footprints together cover the footprint (all but ``1 - SUPERSEDED_COVER`` of it)."""
    if footprint.area == 0:
        return True
    return shapely.intersection(footprint, shapely.union_all(newer)).area / footprint.area > SUPERSEDED_COVER


def _holds_windows(newer: Sequence[shapely.Geometry], held: LocalScene, footprint: shapely.Geometry) -> bool:
    """Whether the ``newer`` footprints (of items fetched) cover each window of the ``held`` folder where its item's
    ``footprint`` has data (``WINDOW_COVER``)."""
    if not newer:
        return False
    parts = shapely.intersection(held.outlines(), footprint)
    uncovered = shapely.difference(parts, shapely.union_all(newer))
    return bool(np.all(shapely.area(uncovered) <= (1 - WINDOW_COVER) * shapely.area(parts)))


def assign_geometries(
    area: gpd.GeoSeries, scenes: Sequence[tuple[dict[str, Any], Scene]]
) -> list[np.ndarray]:
    """Which geometries to fetch from each item: those its footprint overlaps.

    A geometry that several items of a date cover (overlapping tiles, two UTM zones, two orbits) is fetched from each,
    as a local folder of the whole items holds it: reading mosaics them (per pixel, the first part that sees it clear),
    so the clouds of one are filled from the other.

    Args:
        area: Geometries in EPSG:4326.
        scenes: (item, scene) pairs.

    Returns:
        Per item, the indexes of its geometries into ``area``.
    """
    geoms = area.to_numpy()
    members = []
    for item, _ in scenes:
        footprint = _footprint(item)
        members.append(np.flatnonzero(overlapping(geoms, footprint)))
    return members


def _fetch_item(
    item: dict[str, Any], scene: Scene, area: gpd.GeoSeries, out: Path, bands: Sequence[str], http: HttpSettings,
    interrupt: DeferredInterrupt, older: Sequence[LocalScene] = (),
) -> FetchedScene | None:
    """Fetch one item's windows around the geometries and those the ``older`` folders hold (or reuse them); None when
    none lies on its rasters.

    ``interrupt`` is checked after each GDAL open and read (see `interrupt_between_gdal_calls`).

    A remote band file that does not decode is read again (GDAL's retries cover HTTP errors, not a body cut short or
    sent a byte at a time, which it decodes as it came), up to the attempts; then it is corrupt only if its bytes
    arrive whole.

    Raises:
        Unavailable: A band file was not given past the retries (the server's outage, not the item's fault).
        ImageryError: The item lacks red or NIR (asked for: assess reads them on every date) or every 10 m band, or a
            band file is missing (404, 410) or corrupt.
    """
    here = [band for band in bands if band in scene.band_paths]
    lacking = [band for band in NDVI_BANDS if band in bands and band not in here]
    if lacking:
        raise ImageryError(f"STAC item {item['id']} has no {' or '.join(lacking)} asset, which assess needs on every "
                           "date (NDVI)")
    if not set(here) & set(BASE_GRID_BANDS):
        raise ImageryError(f"STAC item {item['id']} has none of the 10 m bands {BASE_GRID_BANDS} among its assets")
    info = SceneInfo(
        scene_id=item["id"],
        acquired=scene.acquired,
        cloud_cover=scene.cloud_cover,
        tile=_tile(item),
        properties=dict(item.get("properties") or {}),
        dn_offset=scene.dn_offset,
        dn_scale=scene.dn_scale,
        links=tuple(
            {"rel": "derived_from", "href": public_url(link["href"]), "type": "application/geo+json"}
            for link in item.get("links", []) if link.get("rel") == "self"
        ),
    )
    cached = cached_scene(out, info, area, here, older)
    if cached is not None:
        return cached
    paths = {band: scene.band_paths[band][0] for band in here}
    tries = 1  # a file that did not decode is read again, up to the attempts, before it is judged
    while True:
        try:
            return _read_item(info, paths, area, out, http, interrupt, older, afresh=tries > 1)
        except _Undecoded as failure:
            if tries >= http.attempts:
                raise _judged(failure, http.timeout_s) from failure
        time.sleep(http.retry_delay_s * 2 ** (tries - 1))
        interrupt.check()
        tries += 1


def _read_item(
    info: SceneInfo, paths: Mapping[str, str], area: gpd.GeoSeries, out: Path, http: HttpSettings,
    interrupt: DeferredInterrupt, older: Sequence[LocalScene], afresh: bool,
) -> FetchedScene | None:
    """One try at `_fetch_item`'s reads from the band files at ``paths`` (by band); ``afresh``: none from GDAL's
    cache."""
    with gdal_http_env(http.timeout_s, http.attempts, http.retry_delay_s, afresh), ExitStack() as stack:
        datasets = {}
        for band, path in paths.items():
            datasets[band] = stack.enter_context(_open_band(info.scene_id, band, path))
            interrupt.check()
        grid = _scene_grid(info.scene_id, datasets)
        needed = grid.plan(area, older)
        if not needed:
            return None
        return fetch_scene(
            out, info, grid, list(paths), needed,
            lambda writer, windows: _read_windows(datasets, writer, windows, interrupt),
        )


class Unavailable(ImageryError):
    """The server did not give a band file past the retries (5xx, 429, a timeout, a dropped connection, a body cut
    short or sent too slowly)."""


class _Undecoded(ImageryError):
    """A remote band file's bytes did not decode: a corrupt file, or a body cut short or timed out, which GDAL keeps
    and decodes as it came, telling nothing of the transfer.

    Attributes:
        path: The file's /vsicurl/ path.
        byte_range: (first, last) byte whose transfer tells which: the header's, or the block's that failed.
    """

    def __init__(self, message: str, path: str, byte_range: tuple[int, int]) -> None:
        super().__init__(message)
        self.path = path
        self.byte_range = byte_range


# GDAL's words for a transfer that failed, not a file that is missing (404, 410) or does not decode.
# GDAL's "HTTP error code" is its retry of a read (0: no answer), logged, not in the read's exception.
_TRANSIENT = re.compile(r"HTTP response code: (?:429|5\d\d)|HTTP error code|timed? ?out|connect|empty reply|"
                        r"resolve host|curl error|SSL", re.IGNORECASE)
# The server's own answer (a 404, a 403): the file is not given, whatever a retry does.
_ANSWERED = re.compile(r"HTTP response code: \d+")
# GDAL reads a COG's header from its first 16 KiB.
_HEADER_BYTES = (0, 2**14 - 1)
_FAILED_BLOCK = re.compile(r"IReadBlock failed at X offset (\d+), Y offset (\d+)")


def _band_error(
    message: str, what: str, path: str, byte_range: tuple[int, int] = _HEADER_BYTES, heard: Sequence[str] = ()
) -> ImageryError:
    """``what`` failed with GDAL's ``message`` (and ``heard``, what GDAL logged meanwhile) on the band file at
    ``path``: ``Unavailable`` when the transfer failed, `_Undecoded` when a remote file did not decode (``byte_range``
    of it tells whether it arrived whole), else the item's error."""
    if _TRANSIENT.search(message):
        return Unavailable(f"{what} ({message})")
    told = next((text for text in heard if _TRANSIENT.search(text)), None)
    if told:
        return Unavailable(f"{what} ({message}; {told})")
    if path.startswith("/vsicurl/") and not _ANSWERED.search(message):
        return _Undecoded(f"{what} ({message})", path, byte_range)
    return ImageryError(f"{what} ({message})")


def _judged(failure: _Undecoded, timeout_s: float) -> ImageryError:
    """A file that failed to decode on every try: ``Unavailable`` when its bytes do not arrive whole (a server
    cutting bodies short, or sending them too slowly for ``timeout_s``: `_whole_body`), else corrupt, the item's
    error."""
    problem = _transfer_problem(failure.path.removeprefix("/vsicurl/"), failure.byte_range, timeout_s)
    if problem is not None:
        return Unavailable(f"{failure}; {problem}")
    return ImageryError(f"{failure}; its bytes arrive whole: the file is corrupt")


def _transfer_problem(url: str, byte_range: tuple[int, int], timeout_s: float) -> str | None:
    """How the server's answer for ``byte_range`` of ``url`` fell short of the bytes it declares (None: whole, fast
    enough for ``timeout_s``, or not to be judged: a server ignoring the range sends the whole file, of which only the
    bytes up to the range's end are read, and none where that is past ``RESPONSE_MAX_BYTES``)."""
    first, last = byte_range
    try:
        with requests.get(url, headers={"Range": f"bytes={first}-{last}"}, stream=True, timeout=timeout_s) as answer:
            if answer.status_code == 429 or answer.status_code >= 500:
                return f"the server answers HTTP {answer.status_code}"
            wanted = last - first + 1 if answer.status_code == 206 else last + 1
            declared = answer.headers.get("Content-Length", "")
            if declared.isdigit():  # a file ending before the range: its end is all there is
                wanted = min(wanted, int(declared))
            if answer.status_code not in (200, 206) or wanted >= RESPONSE_MAX_BYTES:
                return None
            received = len(_whole_body(answer, time.monotonic(), timeout_s, up_to=wanted))
    except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
        return f"its bytes do not arrive whole ({_scrubbed(str(error), url)})"
    return None if received >= wanted else f"{received} of its {wanted} bytes arrive"


class _Heard(logging.Handler):
    """Keeps the messages GDAL logs through rasterio (``_gdal_heard``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _gdal_heard() -> Iterator[list[str]]:
    """The messages GDAL logs meanwhile: a read that failed past GDAL's retries raises only that a block did not
    read, its HTTP errors told in these."""
    logger, heard = logging.getLogger("rasterio._err"), _Heard()
    level = logger.level
    logger.setLevel(min(logger.getEffectiveLevel(), logging.WARNING))
    logger.addHandler(heard)
    try:
        yield heard.messages
    finally:
        logger.removeHandler(heard)
        logger.setLevel(level)


def _open_band(item_id: str, band: str, path: str) -> rasterio.DatasetReader:
    try:
        return open_raster(path)
    except RasterioError as error:
        raise _band_error(_redacted(gdal_message(error), path),
                          f"{_public_path(path)}: cannot open band {band} of STAC item {item_id}", path) from error


def _block_bytes(dataset: rasterio.DatasetReader, message: str) -> tuple[int, int]:
    """The (first, last) byte of the block GDAL's ``message`` says failed to read (the header's when it names none)."""
    block = _FAILED_BLOCK.search(message)
    if block is None:
        return _HEADER_BYTES
    col, row = block.groups()
    offset = dataset.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1)
    size = dataset.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1)
    if not (offset and size and offset.isdigit() and size.isdigit() and int(size) > 0):
        return _HEADER_BYTES
    return int(offset), int(offset) + int(size) - 1


def _scene_grid(item_id: str, datasets: Mapping[str, rasterio.DatasetReader]) -> SceneGrid:
    """The scene's grids from its band headers; the finest 10 m band is the base."""
    base = min(
        (band for band in BASE_GRID_BANDS if band in datasets), key=lambda band: abs(datasets[band].transform.a)
    )
    crs = datasets[base].crs
    for band, dataset in datasets.items():
        if dataset.crs != crs:
            raise ImageryError(f"STAC item {item_id}: band {band} is not in {crs.to_string()} like {base}")
    block = max(datasets[base].block_shapes[0])
    return SceneGrid(
        crs=crs,
        base_transform=datasets[base].transform,
        base_shape=(datasets[base].height, datasets[base].width),
        cell_px=int(np.clip(block, *CELL_PX_RANGE)),
        band_transforms={band: dataset.transform for band, dataset in datasets.items()},
        band_dtypes={band: dataset.dtypes[0] for band, dataset in datasets.items()},
    )


def _read_windows(
    datasets: Mapping[str, rasterio.DatasetReader],
    writer: SceneWriter,
    windows: Sequence[tuple[float, float, float, float]],
    interrupt: DeferredInterrupt,
) -> None:
    """Range-read each window of each band into the writer (bytes received: GDAL does not say), checking
    ``interrupt`` after each read."""
    for band, dataset in datasets.items():
        boxes = pixel_box(np.array(windows), dataset.transform)
        for col0, row0, col1, row1 in boxes.tolist():
            col0, row0 = max(col0, 0), max(row0, 0)
            col1, row1 = min(col1, dataset.width), min(row1, dataset.height)
            if col1 <= col0 or row1 <= row0:
                continue
            window = Window(col0, row0, col1 - col0, row1 - row0)
            with _gdal_heard() as heard:
                try:
                    values = dataset.read(1, window=window)
                except RasterioError as error:
                    message = gdal_message(error)
                    raise _band_error(_redacted(message, dataset.name),
                                      f"{_public_path(dataset.name)}: reading band {band} failed", dataset.name,
                                      _block_bytes(dataset, message),
                                      [_redacted(text, dataset.name) for text in heard]) from error
            interrupt.check()
            writer.write(band, values, dataset.window_transform(window))


def _absolute(item: Any) -> dict[str, Any]:
    """A pystac item as JSON, every asset href absolute (resolved against the item's own URL)."""
    document = item.to_dict(include_self_link=True, transform_hrefs=False)
    for key, asset in item.assets.items():
        document["assets"][key]["href"] = asset.get_absolute_href() or asset.href
    return document


def _item_label(item: Mapping[str, Any], source: RemoteSource) -> str:
    for link in item.get("links", []):
        if link.get("rel") == "self" and str(link.get("href", "")).startswith(("http://", "https://")):
            return public_url(link["href"])
    return f"{public_url(str(source.url))} item {item['id']}"


def _footprint(item: Mapping[str, Any]) -> shapely.Geometry:
    if item.get("geometry"):
        return shapely.geometry.shape(item["geometry"])
    if item.get("bbox"):
        return shapely.box(*item["bbox"][:2], *item["bbox"][-2:])
    raise ImageryError(f"STAC item {item['id']} has neither a geometry nor a bbox")


def _tile(item: Mapping[str, Any]) -> str | None:
    """The MGRS tile of an item ("29RKH"), from grid:code, the mgrs fields or the id."""
    properties = item.get("properties") or {}
    code = properties.get("grid:code")
    if isinstance(code, str) and code.startswith("MGRS-"):
        return code.removeprefix("MGRS-")
    if {"mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square"} <= properties.keys():
        zone, band, square = (properties[f"mgrs:{key}"] for key in ("utm_zone", "latitude_band", "grid_square"))
        return f"{int(zone):02d}{band}{square}"
    match = re.search(r"(?:^|_)T?(\d{2}[C-X][A-Z]{2})(?:_|$)", str(item["id"]))
    return match.group(1) if match else None


def _baseline(item: Mapping[str, Any]) -> tuple[int, int]:
    """The item's processing baseline, (0, 0) when it names none."""
    return processing_baseline((item.get("properties") or {}).get("s2:processing_baseline")) or (0, 0)


def _processing_rank(item: Mapping[str, Any]) -> tuple[tuple[int, int], int, str]:
    sequence = str((item.get("properties") or {}).get("s2:sequence", "0"))
    return _baseline(item), int(sequence) if sequence.isdigit() else 0, str(item["id"])


def _public_path(path: str) -> str:
    return public_url(path.removeprefix("/vsicurl/"))


def _redacted(message: str, path: str) -> str:
    return _scrubbed(message, path.removeprefix("/vsicurl/"))


def _scrubbed(text: str, url: str) -> str:
    """Text about ``url`` (an error, a log line) without query strings, its password or an Authorization header.

    >>> _scrubbed("Max retries exceeded with url: /v1?token=s3cret (Caused by ...)", "http://h/v1?token=s3cret")
    'Max retries exceeded with url: /v1 (Caused by ...)'
    """
    try:
        text, password = text.replace(url, public_url(url)), urlsplit(url).password
    except ValueError:  # not even a URL (a bad port or IPv6 host): the patterns below still apply
        password = None
    text = _USERINFO_IN_TEXT.sub("//", _QUERY_IN_TEXT.sub("", text))
    text = _AUTHORIZATION_IN_TEXT.sub(r"\g<1>***", text)
    for secret in {password, quote(password or "", safe="")} - {None, ""}:
        text = text.replace(secret, "***")
    return text


def _collection_hint(url: str) -> str:
    """For a collection's URL pasted as the API root: the root and collection to give instead, else ""."""
    parts = urlsplit(url)
    match = _COLLECTION_PATH.fullmatch(parts.path)
    if match is None:
        return ""
    root = public_url(urlunsplit((parts.scheme, parts.netloc, match["root"] or "/", "", "")))
    collection = match["collection"]
    return (
        f"; it looks like the URL of collection {collection!r}: give the API root and the collection apart "
        f"(fetch --stac-url {root} --collection {collection})"
    )


def _bounds_text(area: gpd.GeoSeries) -> str:
    west, south, east, north = area.total_bounds
    return f"{west:.4f},{south:.4f},{east:.4f},{north:.4f}"
