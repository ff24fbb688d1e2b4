"""Loopback look-alikes of the imagery services, for tests with the real clients.

- `StacServer`: a STAC API (landing page, POST /search with paging, intersects, datetime and the
  query extension) plus a file server with HTTP Range and HEAD, so pystac-client searches it and
  GDAL's /vsicurl/ range-reads its COGs.
- `SentinelHubServer`: an OAuth token endpoint, the Catalog search and the Process API, answering
  with real GeoTIFF bodies cut from local rasters, so the real `sentinelhub` client talks to it.

Both bind to 127.0.0.1 on a free port, run in a daemon thread, record every request (when it came,
and whether the client gave up on a hang), and can be told to fail (`Fault`): a status (with
Retry-After), a hang, or a truncated body. Use them as context managers: leaving stops them,
releasing any hanging handler, and waits for those handlers to record how their hang ended.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.transform
import rasterio.warp
import shapely
import shapely.geometry
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.warp import reproject

HANG_LIMIT_S = 30.0


@dataclass
class Fault:
    """How to answer one request instead of normally.

    Attributes:
        status: Answer with this HTTP status and a JSON error body.
        retry_after: Retry-After header value to send with the status.
        hang: Never answer: wait until the client closes the connection, the server stops or HANG_LIMIT_S pass
            (a safety net: a client that times out closes long before).
        truncate: Send the normal headers but only half the body, then close the connection.
        drip_s: Send the normal headers, then the body a byte (``drip_bytes``) at a time, one every this many
            seconds, until the client closes the connection, the server stops or HANG_LIMIT_S pass.
        drip_bytes: The bytes of each piece ``drip_s`` sends (a slow link, rather than a broken server).
    """

    status: int | None = None
    retry_after: str | None = None
    hang: bool = False
    truncate: bool = False
    drip_s: float | None = None
    drip_bytes: int = 1


@dataclass
class Record:
    """One request the server saw: ``received`` is its ``time.monotonic()`` on arrival; ``abandoned`` says the client
    closed the connection while the server hung (it timed out), not the server stopping."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received: float = field(default_factory=time.monotonic)
    status: int = 0
    bytes_sent: int = 0
    abandoned: bool = False


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 whose subclasses answer in `respond`."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.faults: dict[str, list[Fault]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._hanging: list[threading.Thread] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        for handler in self._hanging:
            handler.join(timeout=5)

    def fail(self, path_prefix: str, *faults: Fault) -> None:
        """Answer the next requests whose path starts with ``path_prefix`` with these faults, in order."""
        self.faults.setdefault(path_prefix, []).extend(faults)

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[Record]:
        return [r for r in self.records if r.path.startswith(path_prefix) and method in (None, r.method)]

    def respond(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
                body: bytes) -> Response:
        raise NotImplementedError

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for prefix, queue in self.faults.items():
                if path.startswith(prefix) and queue:
                    return queue.pop(0)
        return None


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm on, the client's delayed ACK held each
        # answer some 40 ms (a search of 2,000 pages took minutes).
        disable_nagle_algorithm = True

        def log_message(self, *_: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            record = Record(method, parts.path, dict(self.headers.items()), body)
            with server._lock:
                server.records.append(record)
            fault = server._next_fault(parts.path)
            if fault is not None and fault.hang:
                with server._lock:
                    server._hanging.append(threading.current_thread())
                record.abandoned = _client_leaves(self.connection, server._stop)
                self.close_connection = True
                return
            if fault is not None and fault.status is not None:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                error = {"error": {"status": fault.status, "reason": "injected fault", "message": "try later"}}
                response = Response(fault.status, json.dumps(error).encode(), headers=extra)
            else:
                try:
                    response = server.respond(method, parts.path, urllib.parse.parse_qs(parts.query),
                                              self.headers, body)
                except Exception as exc:  # a bug in a look-alike must show as a 500, not a hung client
                    response = Response(500, json.dumps({"error": repr(exc)}).encode())
            record.status = response.status
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method == "HEAD":
                return
            if fault is not None and fault.drip_s is not None:
                with server._lock:
                    server._hanging.append(threading.current_thread())
                record.abandoned = _drip(self.wfile, response.body, fault.drip_s, fault.drip_bytes, server._stop)
                self.close_connection = True
                return
            sent = response.body[: len(response.body) // 2] if fault is not None and fault.truncate else response.body
            self.wfile.write(sent)
            record.bytes_sent = len(sent)
            if len(sent) < len(response.body):
                self.wfile.flush()
                self.close_connection = True

    return Handler


def _client_leaves(connection: socket.socket, stop: threading.Event) -> bool:
    """Answer nothing until the client closes ``connection`` (True: it gave up), or ``stop`` is set or HANG_LIMIT_S
    pass with the connection still open (False)."""
    deadline = time.monotonic() + HANG_LIMIT_S
    while not _closed_by_client(connection):
        if stop.wait(0.05) or time.monotonic() > deadline:
            return _closed_by_client(connection)
    return True


def _drip(stream: Any, body: bytes, interval_s: float, piece_bytes: int, stop: threading.Event) -> bool:
    """Send ``body`` ``piece_bytes`` every ``interval_s`` until the client closes the connection (True: it gave up), or
    ``stop`` is set, HANG_LIMIT_S pass or it is all sent (False)."""
    deadline = time.monotonic() + HANG_LIMIT_S
    for index in range(0, len(body), piece_bytes):
        try:
            stream.write(body[index : index + piece_bytes])
            stream.flush()
        except ConnectionError:
            return True
        if stop.wait(interval_s) or time.monotonic() > deadline:
            break
    return False


def _closed_by_client(connection: socket.socket) -> bool:
    """Whether the client closed its end: readable with nothing to read (it sends nothing while awaiting an answer)."""
    if not select.select([connection], [], [], 0)[0]:
        return False
    try:
        return not connection.recv(1, socket.MSG_PEEK)
    except ConnectionError:
        return True


def _json(document: Any, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(document).encode(), content_type)


def _file_response(path: Path, headers: Mapping[str, str]) -> Response:
    """The file, or the single byte range asked for (206), as GDAL's /vsicurl/ expects."""
    data = path.read_bytes()
    spec = headers.get("Range")
    if not spec:
        return Response(200, data, "image/tiff", {"Accept-Ranges": "bytes"})
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", spec.strip())
    if match is None:
        return Response(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
    start = int(match.group(1))
    end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
    if start >= len(data):
        return Response(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
    return Response(206, data[start : end + 1], "image/tiff",
                    {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{len(data)}"})


STAC_CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
)


class StacServer(LoopbackServer):
    """A STAC API with one collection and a file server for its assets.

    Args:
        items: Item JSON documents; an asset href "file:NAME" is served from ``files[NAME]`` and
            rewritten to this server's URL (a "file://" URL is served as it is).
        files: File name -> local path.
        collection: The collection id.
        page_size: Most items per search page (a smaller value exercises paging).
    """

    def __init__(self, items: Sequence[dict[str, Any]], files: Mapping[str, Path],
                 collection: str = "sentinel-2-l2a", page_size: int = 100) -> None:
        super().__init__()
        self.collection = collection
        self.page_size = page_size
        self.files = dict(files)
        # GDAL caches what it read by URL for the whole process, and a later server may get the same
        # port: a path of its own keeps each server's files apart.
        self.files_path = f"/files/{uuid.uuid4().hex[:12]}/"
        self._items = [json.loads(json.dumps(item)) for item in items]

    def items(self) -> list[dict[str, Any]]:
        """The items as served (hrefs pointing at this server)."""
        served = []
        for source in self._items:
            item = json.loads(json.dumps(source))
            item["collection"] = self.collection
            item["links"] = [
                {"rel": "self", "href": f"{self.url}/collections/{self.collection}/items/{item['id']}",
                 "type": "application/geo+json"},
                {"rel": "collection", "href": f"{self.url}/collections/{self.collection}"},
                {"rel": "root", "href": f"{self.url}/"},
            ]
            for asset in item["assets"].values():
                if asset["href"].startswith("file:") and not asset["href"].startswith("file://"):
                    asset["href"] = f"{self.url}{self.files_path}{asset['href'].removeprefix('file:')}"
            served.append(item)
        return served

    def respond(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
                body: bytes) -> Response:
        if path in ("/", ""):
            return _json(self._landing())
        if path == "/conformance":
            return _json({"conformsTo": list(STAC_CONFORMANCE)})
        if path == f"/collections/{self.collection}":
            return _json({"type": "Collection", "id": self.collection, "stac_version": "1.0.0",
                          "description": "loopback", "license": "proprietary", "links": [],
                          "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                     "temporal": {"interval": [[None, None]]}}})
        if path == "/search" and method == "POST":
            return self._search(json.loads(body or b"{}"))
        if path.startswith(self.files_path) and path.removeprefix(self.files_path) in self.files:
            return _file_response(self.files[path.removeprefix(self.files_path)], headers)
        return _json({"code": "NotFound", "description": f"{path} not found"}, 404)

    def _landing(self) -> dict[str, Any]:
        return {
            "type": "Catalog", "id": "loopback", "stac_version": "1.0.0", "description": "loopback STAC API",
            "conformsTo": list(STAC_CONFORMANCE),
            "links": [
                {"rel": "self", "href": f"{self.url}/", "type": "application/json"},
                {"rel": "root", "href": f"{self.url}/", "type": "application/json"},
                {"rel": "conformance", "href": f"{self.url}/conformance"},
                {"rel": "data", "href": f"{self.url}/collections"},
                {"rel": "search", "href": f"{self.url}/search", "method": "POST", "type": "application/geo+json"},
            ],
        }

    def _search(self, request: dict[str, Any]) -> Response:
        matches = [item for item in self.items() if _matches(item, request)]
        start = int(request.get("next") or 0)
        limit = int(request.get("limit") or self.page_size)
        page = matches[start : start + min(limit, self.page_size)]
        links = []
        if start + len(page) < len(matches):
            links.append({"rel": "next", "href": f"{self.url}/search", "method": "POST",
                          "body": {**request, "next": str(start + len(page))}, "merge": False,
                          "type": "application/geo+json"})
        return _json({"type": "FeatureCollection", "features": page, "links": links,
                      "numberMatched": len(matches), "numberReturned": len(page)}, content_type="application/geo+json")


def _matches(item: dict[str, Any], request: dict[str, Any]) -> bool:
    """Collections, intersects / bbox, datetime interval and eo:cloud_cover query, as Earth Search does."""
    if request.get("collections") and item.get("collection") not in request["collections"]:
        return False
    footprint = shapely.geometry.shape(item["geometry"])
    if request.get("intersects") and not footprint.intersects(shapely.geometry.shape(request["intersects"])):
        return False
    if request.get("bbox") and not footprint.intersects(shapely.box(*request["bbox"])):
        return False
    if request.get("datetime"):
        start, _, end = request["datetime"].partition("/")
        when = _parse_time(item["properties"]["datetime"])
        if start not in ("", "..") and when < _parse_time(start):
            return False
        if end not in ("", "..") and when > _parse_time(end):
            return False
    for name, tests in (request.get("query") or {}).items():
        value = item["properties"].get(name)
        for op, limit in tests.items():
            if value is None or not {"lt": value < limit, "lte": value <= limit, "gt": value > limit,
                                     "gte": value >= limit, "eq": value == limit}[op]:
                return False
    return True


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SentinelHubServer(LoopbackServer):
    """Sentinel Hub's OAuth token endpoint, Catalog search and Process API, on loopback.

    Args:
        client_id: The only accepted client id.
        client_secret: Its secret.
        features: Catalog features (id, properties.datetime, properties.eo:cloud_cover, geometry).
        rasters: Band name -> a local single-band raster the Process API cuts its answers from
            (resampled, nearest neighbour, to the requested box, CRS and size; 0 outside).
    """

    TOKEN_PATH = "/oauth/token"

    def __init__(self, client_id: str, client_secret: str, features: Sequence[dict[str, Any]],
                 rasters: Mapping[str, Path]) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.features = list(features)
        self.rasters = dict(rasters)
        self.tokens: list[str] = []

    @property
    def token_url(self) -> str:
        return f"{self.url}{self.TOKEN_PATH}"

    def respond(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
                body: bytes) -> Response:
        if path == self.TOKEN_PATH and method == "POST":
            return self._token(urllib.parse.parse_qs(body.decode()))
        if not self._authorised(headers):
            return _json({"error": {"status": 401, "reason": "Unauthorized", "message": "bad token"}}, 401)
        if path == "/api/v1/catalog/1.0.0/search" and method == "POST":
            return self._catalog(json.loads(body))
        if path == "/api/v1/process" and method == "POST":
            return self._process(json.loads(body), headers)
        return _json({"error": {"status": 404, "message": f"{path} not found"}}, 404)

    def _token(self, form: dict[str, list[str]]) -> Response:
        if form.get("client_id", [""])[0] != self.client_id or form.get("client_secret", [""])[0] != self.client_secret:
            # Keycloak (CDSE) answers a wrong secret like this.
            return _json({"error": "unauthorized_client", "error_description": "Invalid client secret"}, 401)
        token = f"token-{len(self.tokens)}"
        self.tokens.append(token)
        return _json({"access_token": token, "expires_in": 600, "token_type": "Bearer",
                      "refresh_expires_in": 0, "not-before-policy": 0, "scope": "profile email"})

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        return headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    def _catalog(self, request: dict[str, Any]) -> Response:
        start, _, end = request["datetime"].partition("/")
        area = shapely.box(*request["bbox"]) if request.get("bbox") else shapely.geometry.shape(request["intersects"])
        limit = re.search(r"eo:cloud_cover\s*<=?\s*([\d.]+)", request.get("filter") or "")
        found = [
            feature for feature in self.features
            if _parse_time(start) <= _parse_time(feature["properties"]["datetime"]) <= _parse_time(end)
            and shapely.geometry.shape(feature["geometry"]).intersects(area)
            and (limit is None or feature["properties"]["eo:cloud_cover"] <= float(limit.group(1)))
        ]
        offset = int(request.get("next") or 0)
        page = found[offset : offset + int(request.get("limit", 100))]
        following = offset + len(page) if offset + len(page) < len(found) else None
        context = {"limit": request.get("limit", 100), "returned": len(page)} | (
            {"next": following} if following is not None else {})
        return _json({"type": "FeatureCollection", "features": page, "links": [], "context": context})

    def _process(self, request: dict[str, Any], headers: Mapping[str, str]) -> Response:
        bounds = request["input"]["bounds"]
        crs = bounds["properties"]["crs"].rsplit("/", 1)[-1]
        width, height = request["output"]["width"], request["output"]["height"]
        if max(width, height) > 2500:
            return _json({"error": {"status": 400, "reason": "Bad Request",
                                    "message": "The request image width or height exceeds the limit 2500 px"}}, 400)
        names = re.search(r"bands\s*:\s*\[([^\]]*)\]", request["evalscript"]).group(1)
        bands = re.findall(r"\"(\w+)\"", names)
        transform = from_bounds(*bounds["bbox"], width, height)
        stack = np.zeros((len(bands), height, width), dtype=np.uint16)
        for index, band in enumerate(bands):
            with rasterio.open(self.rasters[band]) as source:
                reproject(rasterio.band(source, 1), stack[index], dst_transform=transform,
                          dst_crs=f"EPSG:{crs}", resampling=Resampling.nearest, dst_nodata=0)
        with MemoryFile() as memory:
            with memory.open(driver="GTiff", width=width, height=height, count=len(bands), dtype="uint16",
                             crs=f"EPSG:{crs}", transform=transform) as dataset:
                dataset.write(stack)
            body = memory.read()
        return Response(200, body, "image/tiff")


# Band -> (resolution m, Earth Search asset key) of every band fetch reads; a band's DNs are coded by its place here.
TILE_BANDS: dict[str, tuple[int, str]] = {
    "B02": (10, "blue"), "B03": (10, "green"), "B04": (10, "red"), "B05": (20, "rededge1"),
    "B08": (10, "nir"), "B8A": (20, "nir08"), "B11": (20, "swir16"), "SCL": (20, "scl"),
    "B01": (60, "coastal"), "B06": (20, "rededge2"), "B07": (20, "rededge3"), "B12": (20, "swir22"),
}
# A tile's bands unless told otherwise: those of every index and the CNN, few files to write.
FEW_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B08", "B8A", "B11", "SCL")


def tile_dns(band: str, size_px: int, shift: int = 0) -> np.ndarray:
    """Position-coded DNs of a band on its own grid: 1000 x the band's place in TILE_BANDS plus the pixel's index
    modulo 1000 (reflectance under 1.4 on large tiles), plus ``shift``. Unshifted, no two bands share a value, nor two
    pixels of a band within a thousand."""
    resolution = TILE_BANDS[band][0]
    size = size_px * 10 // resolution
    rows, cols = np.indices((size, size))
    return (1000 * (list(TILE_BANDS).index(band) + 1) + (rows * size + cols) % 1000 + shift).astype(np.uint16)


def tile_item(
    folder: Path, item_id: str, *, crs: str, origin: tuple[float, float], acquired: str, size_px: int = 12,
    cloud: float = 10.0, baseline: str = "05.10", offset_applied: bool | None = False,
    raster_offset: float | None = -0.1, shift: int = 0, scl: int = 4, bands: Sequence[str] = FEW_BANDS,
    pixel_m: int = 10, band_file_names: bool = False, rows: tuple[float, float] = (0.0, 1.0),
) -> tuple[dict[str, Any], dict[str, Path]]:
    """A small Earth Search-like item with COG assets written into ``folder`` (hrefs "file:NAME").

    Args:
        folder: Where the COGs go, named ``<item_id>_<band>.tif`` (``<band>.tif`` with ``band_file_names``, as in
            an Earth Search folder of one item).
        item_id: The id, e.g. "S2A_50SKA_20240315_0_L2A".
        crs: The tile's CRS.
        origin: (west, north) in metres.
        acquired: ISO datetime.
        size_px: Side in pixels of the 10 m bands.
        cloud: eo:cloud_cover, percent.
        baseline: s2:processing_baseline.
        offset_applied: earthsearch:boa_offset_applied (None: absent).
        raster_offset: raster:bands offset of reflectance bands (None: no raster:bands at all).
        shift: Added to every DN (tells tiles apart).
        scl: The SCL class everywhere.
        bands: Which of TILE_BANDS it has.
        pixel_m: Pixel size of the 10 m bands; the 20 m and 60 m bands' scale alike (100: ../shared's COGs, 10 times
            coarser than Earth Search's).
        band_file_names: Name the COGs ``<band>.tif``.
        rows: (first, last) of the tile's rows, as fractions from the north, that hold data: the footprint, no-data
            elsewhere (the part of a date one datastrip holds).

    Returns:
        The item and its files by name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files, assets = {}, {}
    for band in bands:
        resolution, key = TILE_BANDS[band]
        values = tile_dns(band, size_px, shift) if band != "SCL" else np.full(
            (size_px * 10 // resolution,) * 2, scl, dtype=np.uint8)
        values[: round(rows[0] * len(values))] = values[round(rows[1] * len(values)):] = 0
        name = f"{band}.tif" if band_file_names else f"{item_id}_{band}.tif"
        pixel = resolution * pixel_m / 10
        with rasterio.open(folder / name, "w", driver="COG", width=values.shape[1], height=values.shape[0], count=1,
                           dtype=values.dtype, crs=crs, nodata=0,
                           transform=rasterio.transform.from_origin(*origin, pixel, pixel)) as dataset:
            dataset.write(values, 1)
        files[name] = folder / name
        asset: dict[str, Any] = {"href": f"file:{name}", "type": "image/tiff; application=geotiff"}
        if raster_offset is not None:
            asset["raster:bands"] = [{"nodata": 0, "data_type": str(values.dtype)}
                                     | ({} if band == "SCL" else {"scale": 0.0001, "offset": raster_offset})]
        assets[key] = asset
    west, north = origin
    side = size_px * pixel_m
    footprint = shapely.box(west, north - rows[1] * side, west + side, north - rows[0] * side)
    wgs84 = shapely.geometry.shape(
        rasterio.warp.transform_geom(crs, "EPSG:4326", shapely.geometry.mapping(footprint), precision=9))
    properties: dict[str, Any] = {"datetime": acquired, "eo:cloud_cover": cloud, "s2:processing_baseline": baseline,
                                  "proj:epsg": int(crs.split(":")[1])}
    if offset_applied is not None:
        properties["earthsearch:boa_offset_applied"] = offset_applied
    item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "properties": properties,
            "geometry": shapely.geometry.mapping(wgs84), "bbox": list(wgs84.bounds), "links": [], "assets": assets}
    return item, files


def earthsearch_item(folder: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """The real Earth Search item of ../shared/data/s2/earthsearch-29RKH-2020, its band COGs served locally.

    Assets without a local file (JP2 on s3, metadata, thumbnail) are dropped.
    """
    item = json.loads((folder / "S2A_29RKH_20200219_0_L2A.json").read_text())
    files, assets = {}, {}
    for key, asset in item["assets"].items():
        name = asset["href"].rsplit("/", 1)[-1]
        if asset["href"].startswith("https://") and (folder / name).is_file():
            assets[key] = asset | {"href": f"file:{name}"}
            files[name] = folder / name
    return item | {"assets": assets}, files


# A field inside the tile dated_items writes (EPSG:32650).
DATED_FIELD = shapely.box(500_020, 3_999_900, 500_100, 3_999_960)


def dated_items(folder: Path, days: Sequence[str], clouds: Sequence[float] | None = None
                ) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """``tile_item``'s tile of UTM 50 (S2A_50SKA) on each of ``days`` (ISO dates; ``clouds``: each one's cloud
    cover), COGs in ``folder``: the items and all their files."""
    items, files = [], {}
    for k, day in enumerate(days):
        cloud = {} if clouds is None else {"cloud": clouds[k]}
        item, item_files = tile_item(folder, f"S2A_50SKA_{day.replace('-', '')}_0_L2A", crs="EPSG:32650",
                                     origin=(500_000.0, 4_000_000.0), acquired=f"{day}T03:20:00Z", **cloud)
        items.append(item)
        files |= item_files
    return items, files
