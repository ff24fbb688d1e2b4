"""Labelled data for training and evaluating the cropland CNN, all as reflectance in ``MODEL_BANDS`` order.

Three kinds: a labelled scene (a ``farmcredit simulate`` folder with ``landcover.tif``, or your
own ``imagery/`` with a ``labels.tif`` on the imagery's grid coded 0 non-crop / 1 crop / the file's
nodata value (255 when it sets none) or its mask unknown, or with labelled polygons ``labels.gpkg`` /
``labels.geojson`` / ``labels.parquet`` whose ``crop`` column is 1 or 0), EuroSAT patches (one
date, a label per patch) and Digital Earth Africa pixels (two seasonal geomedians).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from affine import Affine
from pyogrio.errors import DataSourceError
from pyproj import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from farmcredit.errors import InputError
from farmcredit.formats import check_vector_file, open_raster
from farmcredit.parcels import repair_geometries
from farmcredit.segmentation.card import MODEL_BANDS
from farmcredit.simulate.render import CROP_CLASSES
from farmcredit.text import some

if TYPE_CHECKING:
    from farmcredit.imagery import Imagery
    from farmcredit.zonal import Coverage

EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake")
EUROSAT_CROP = ("AnnualCrop", "PermanentCrop")
# Class folder names as users spell them (any case), to the spelling above.
_EUROSAT_BY_LOWER = {name.lower(): name for name in EUROSAT_CLASSES}
# The order in the EuroSAT-MS GeoTIFFs: B8A is the 13th band, not the 9th (phelber/EuroSAT#7, fixed in
# torchgeo#2480; the spectra agree: band 9 is dark over vegetation as the water-vapour band is).
EUROSAT_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
DEA_BANDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir_1": "B11", "swir_2": "B12",
             "red_edge_1": "B05", "red_edge_2": "B06", "red_edge_3": "B07"}
DEA_REGIONS = ("central", "eastern", "northern", "sahel", "south_eastern", "southern")
LABEL_POLYGONS = ("labels.gpkg", "labels.geojson", "labels.parquet")
# The files that label a scene, one per folder: simulate's land cover, a label raster or labelled polygons.
LABEL_FILES = ("landcover.tif", "labels.tif", *LABEL_POLYGONS)
# Where a labelled scene's imagery is, beside its labels: scene folders, or one GeoTIFF stack.
IMAGERY_NAMES = ("imagery", "imagery.tif")
# The unknown code of a labels.tif that sets no nodata value.
LABELS_UNKNOWN = 255
# How deep and how widely ``nested_eurosat_hint`` looks for class folders: the official EuroSATallBands.zip unpacks
# them six levels down (ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>), one more in a folder of its own.
HINT_DEPTH = 7
HINT_FOLDERS = 2000
# Labels may sit off the imagery grid by this much (pixels) at their corners: float noise, not a shift.
GRID_TOLERANCE_PX = 0.01
# A crop and a non-crop polygon over more than this share of one cell is a layering or a mistake, not a border drawn
# twice by hand (slivers, averaged as the mixed cell they are).
CONFLICT_CELL_SHARE = 0.5


@dataclass(frozen=True)
class LabelledScene:
    """A season with per-pixel labels.

    Attributes:
        reflectance: float32 (time, band, rows, cols) in ``MODEL_BANDS`` order, NaN where absent.
        clear: bool (time, rows, cols).
        crop_cover: float32 (rows, cols) sown-crop share 0-1; NaN where unknown.
        crop_type: int8 (rows, cols) crop class index (1 wheat .. 4 soybean), 0 not a crop, -1 unknown.
        source: folder read.
    """

    reflectance: np.ndarray
    clear: np.ndarray
    crop_cover: np.ndarray
    crop_type: np.ndarray
    source: str

    def imagery_sha256(self) -> str:
        """SHA-256 of the imagery as read (reflectance and clear masks): the same whatever folder holds it."""
        return arrays_sha256(self.reflectance, self.clear)


def arrays_sha256(*arrays: np.ndarray) -> str:
    """One SHA-256 over each array's dtype, shape and values in turn: the same however the values were stored."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


@dataclass(frozen=True)
class LabelledPatches:
    """Patches or pixels with one crop label each.

    Attributes:
        reflectance: float32 (patch, time, band, rows, cols) in ``MODEL_BANDS`` order, NaN where absent.
        clear: bool (patch, time, rows, cols).
        is_crop: bool (patch,).
        group: per patch, its class (EuroSAT) or region (DEA).
        source: what was read.
        top_of_atmosphere: True for L1C reflectance (EuroSAT), False for surface reflectance (L2A).
        unreadable: the patch files skipped as unreadable (``load_eurosat``), in the order found.
        patch_sha256: EuroSAT: per patch, the SHA-256 of its 13 bands' values as read (``load_eurosat``), the same in
            any file, copy or encoding of them; None for DEA pixels.
    """

    reflectance: np.ndarray
    clear: np.ndarray
    is_crop: np.ndarray
    group: np.ndarray
    source: str
    top_of_atmosphere: bool = False
    unreadable: tuple[str, ...] = ()
    patch_sha256: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> LabelledPatches:
        """The patches where ``keep`` (bool or indices)."""
        return replace(self, reflectance=self.reflectance[keep], clear=self.clear[keep], is_crop=self.is_crop[keep],
                       group=self.group[keep],
                       patch_sha256=None if self.patch_sha256 is None else self.patch_sha256[keep])


def load_labelled_scene(folder: str | Path, band_layout: Sequence[tuple[date | None, str]] | None = None,
                        dn_offset: float | None = None) -> LabelledScene:
    """Read a scene's imagery whole and its labels (``landcover.tif``, ``labels.tif`` or labelled polygons).

    The imagery is ``folder/imagery`` (scene folders or SAFE products), a GeoTIFF stack
    ``folder/imagery.tif`` (``band_layout`` as in ``open_imagery`` when its bands carry no
    descriptions), or else ``folder`` itself; ``dn_offset`` as in ``open_imagery``.

    ``labels.tif`` must share the imagery's CRS, transform and size, and hold 0 (non-crop), 1 (crop)
    or its nodata value (unknown; 255 when the file sets none); pixels its mask or alpha band leaves out are
    unknown too.

    Raises:
        ImageryError: imagery without red (B04) or NIR (B08) in every scene (``Imagery.require_ndvi_bands``).
        InputError: no imagery, no labels or labels in more than one file, unreadable labels, labels on
            another grid, a ``labels.tif`` with other codes, polygons in several layers, without a 0/1
            ``crop`` or of both classes over one cell (``polygon_crop_cover``), or no pixel labelled at all.

    Labels of one class only (every labelled pixel crop, or none) are warned of: they teach nothing of the other;
    so is imagery of unknown level that looks top-of-atmosphere (Level-1C) around the labelled pixels, as ``assess``
    warns of it (``warn_if_top_of_atmosphere``).
    """
    from farmcredit.imagery import CLEAR_SCL_CLASSES, open_imagery, read_window
    from farmcredit.imagery.level import warn_if_top_of_atmosphere

    folder = Path(folder)
    labels = [folder / name for name in LABEL_FILES if (folder / name).is_file()]
    if not labels:
        raise InputError(f"{folder}: no landcover.tif, labels.tif or {'/'.join(LABEL_POLYGONS)} beside the imagery")
    if len(labels) > 1:
        raise InputError(f"{folder}: labels in {' and '.join(path.name for path in labels)}; keep the one to use "
                         "(which is meant cannot be told)")
    source = next((folder / name for name in IMAGERY_NAMES if (folder / name).exists()), folder)
    # A layout names a stack's bands: refused on folders.
    imagery = open_imagery(source, band_layout=band_layout, dn_offset=dn_offset)
    imagery.require_ndvi_bands()  # else every pixel reads as never clear, and nothing is trained or scored
    rows, cols = imagery.shape
    cube = read_window(imagery, Window(0, 0, cols, rows), [b for b in MODEL_BANDS if b in imagery.bands])
    reflectance = np.full((cube.reflectance.shape[0], len(MODEL_BANDS), rows, cols), np.nan, dtype=np.float32)
    for position, band in enumerate(cube.bands):
        reflectance[:, MODEL_BANDS.index(band)] = cube.reflectance[:, position]
    check_labelled_reflectance(reflectance, cube.clear, folder)
    if labels[0].name == "landcover.tif":
        (classes, cover), _, _ = _read_raster(labels[0], imagery, bands=(1, 2))
        crop_cover = cover.astype(np.float32) / 100.0
        # A sown crop's land-cover code is its index in CLASSES (simulate.render.landcover_classes).
        crop_type = np.where(np.isin(classes, CROP_CLASSES) & (crop_cover >= 0.5), classes, 0).astype(np.int8)
    else:
        crop_cover = (_read_label_codes(labels[0], imagery) if labels[0].name == "labels.tif"
                      else polygon_crop_cover(labels[0], imagery.crs, imagery.transform, (rows, cols)))
        crop_type = np.where(crop_cover == 0, 0, -1).astype(np.int8)
    known = crop_cover[np.isfinite(crop_cover)]
    if not known.size:
        raise InputError(f"{folder}: no pixel is labelled 0 (non-crop) or 1 (crop); nothing to train or score on")
    labelled_rows, labelled_cols = np.nonzero(np.isfinite(crop_cover))
    centres = np.column_stack(imagery.transform @ (labelled_cols + 0.5, labelled_rows + 0.5))
    warn_if_top_of_atmosphere(imagery, centres, CLEAR_SCL_CLASSES)
    if (known >= 0.5).all() or (known < 0.5).all():
        one, other = ("crop", "non-crop") if known[0] >= 0.5 else ("non-crop", "crop")
        warnings.warn(f"{folder}: all {known.size} labelled pixels are {one}: a model learns nothing of {other} from "
                      f"this scene, and its scores are those of one class; label some {other} pixels too", stacklevel=2)
    return LabelledScene(reflectance, cube.clear, crop_cover, crop_type, str(folder))


def check_labelled_reflectance(reflectance: np.ndarray, clear: np.ndarray, source: str | Path) -> None:
    """``check_reflectance`` of labelled data (..., band, rows, cols) in ``MODEL_BANDS`` order, its refusal naming
    ``source``: what a model would refuse to score (digital numbers, swapped bands) it is not trained on either."""
    from farmcredit.segmentation.cnn import check_reflectance

    try:
        check_reflectance(reflectance, clear, MODEL_BANDS, MODEL_BANDS)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from exc


def polygon_crop_cover(path: Path, crs: CRS, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """Crop share (0-1) of each cell from labelled polygons, by exact cell coverage.

    The polygons are the file's one layer (a file of several is refused, naming them: which is meant cannot be
    told), each with its ``crop`` 1 (crop) or 0 (not). A cell's share is its crop-polygon coverage
    over its labelled coverage; cells less than half covered by labelled polygons are NaN (unknown).
    Invalid polygons are repaired as parcels are (a self-crossing outline labels both its lobes). Polygons off the
    imagery, rows without a geometry and geometries that are not polygons are counted in a warning.

    Raises:
        InputError: as said above, or crop and non-crop polygons overlapping over more than ``CONFLICT_CELL_SHARE``
            of a cell (fields drawn over a non-crop background, say): which one is meant cannot be told, and no row
            order says it (GIS tools neither keep nor show one reliably).
    """
    from farmcredit.zonal import coverage_fractions

    read_at = check_vector_file(path, "labels file")
    try:
        # Layers of geometry: a table without (QGIS's layer_styles, saved in the file) labels nothing.
        layers = [] if path.suffix == ".parquet" else [
            str(name) for name, kind in pyogrio.list_layers(read_at) if kind is not None]
        if len(layers) > 1:  # the others would label nothing
            raise InputError(f"{path}: holds {len(layers)} layers ({some(layers, limit=10)}); labels are read from "
                             "one: put every labelled polygon in one layer, each with its crop 1 or 0, and remove the "
                             "others")
        frame = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(
            read_at, layer=layers[0] if layers else None)
    except (DataSourceError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable vector file ({exc})") from exc
    if "crop" not in frame.columns or frame.crs is None:
        raise InputError(f"{path}: labelled polygons need a CRS and a 'crop' column (1 crop, 0 non-crop)")
    crop = pd.to_numeric(frame["crop"], errors="coerce").to_numpy()
    if (bad := ~np.isin(crop, (0, 1))).any():
        values = some([repr(value) for value in pd.unique(frame["crop"][bad]).tolist()], limit=10)
        raise InputError(f"{path}: 'crop' must be 1 (crop) or 0 (non-crop) in every row; {int(bad.sum())} row(s) hold "
                         f"{values}, first at row {int(np.flatnonzero(bad)[0]) + 1} (counting from 1)")
    placed = frame.to_crs(crs).geometry.to_numpy()
    # Coordinates the imagery's CRS cannot hold (a latitude of 95: metres in a file that says degrees).
    unplaceable = np.array([g is not None and not np.isfinite(shapely.get_coordinates(g)).all() for g in placed])
    geometry, problems = repair_geometries(np.where(unplaceable, None, placed))
    unusable = Counter(code for i, code in problems if code != "GEOMETRY_REPAIRED" and not unplaceable[i])
    coverage = coverage_fractions(geometry, transform, shape)
    _refuse_conflicting_classes(path, geometry, crop, coverage, transform, shape)
    off = len(frame) - len(np.unique(coverage.parcel)) - unusable.total() - int(unplaceable.sum())
    counts = ((off, "lies off the imagery", "lie off the imagery"),
              (int(unplaceable.sum()), "cannot be placed in the imagery's CRS (is the file's CRS right?)",
               "cannot be placed in the imagery's CRS (is the file's CRS right?)"),
              (unusable["EMPTY_GEOMETRY"], "has no area", "have no area"),
              (unusable["NOT_A_POLYGON"], "is not a polygon", "are not polygons"))
    if lost := [f"{count} {one if count == 1 else many}" for count, one, many in counts if count]:
        warnings.warn(f"{path}: of {len(frame)} labelled rows, {' and '.join(lost)}: they label nothing",
                      stacklevel=2)
    cell = coverage.row * shape[1] + coverage.col
    labelled = np.bincount(cell, coverage.fraction, minlength=shape[0] * shape[1])
    cropped = np.bincount(cell, coverage.fraction * crop[coverage.parcel], minlength=shape[0] * shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.clip(cropped / labelled, 0.0, 1.0)
    return np.where(labelled >= 0.5, share, np.nan).reshape(shape).astype(np.float32)


def _refuse_conflicting_classes(path: Path, geometry: np.ndarray, crop: np.ndarray, coverage: Coverage,
                                transform: Affine, shape: tuple[int, int]) -> None:
    """Refuse crop and non-crop polygons (``crop`` 1 and 0; ``coverage`` theirs) that overlap over more than
    ``CONFLICT_CELL_SHARE`` of a cell, naming how many cells and the rows that cover them."""
    from farmcredit.zonal import coverage_fractions

    both = shapely.intersection(shapely.union_all(geometry[crop == 1]), shapely.union_all(geometry[crop == 0]))
    parts = coverage_fractions(shapely.get_parts(both), transform, shape)  # lines where they only touch: no cells
    doubled = np.bincount(parts.row * shape[1] + parts.col, parts.fraction, minlength=shape[0] * shape[1])
    conflict = doubled > CONFLICT_CELL_SHARE
    if not conflict.any():
        return
    rows = np.unique(coverage.parcel[conflict[coverage.row * shape[1] + coverage.col]])
    crop_rows, other_rows = ([str(row + 1) for row in rows if crop[row] == label] for label in (1, 0))
    raise InputError(f"{path}: {int(conflict.sum())} cell(s) are more than half inside both a crop and a non-crop "
                     f"polygon (crop rows {some(crop_rows, limit=5)}; non-crop rows {some(other_rows, limit=5)}; "
                     "counting from 1), so their label cannot be told; cut the crop polygons out of the non-crop ones "
                     "(QGIS: Vector > Geoprocessing Tools > Difference), or delete the polygon whose class is wrong")


def _read_label_codes(path: Path, imagery: Imagery) -> np.ndarray:
    """Crop cover (rows, cols) of a ``labels.tif``: 0.0, 1.0, or NaN where its nodata (or 255), NaN or its mask (an
    alpha or mask band, as GIS tools write for pixels left out) says unknown."""
    (labels,), data, nodata = _read_raster(path, imagery, bands=(1,))
    unknown_code = LABELS_UNKNOWN if nodata is None else nodata
    if unknown_code in (0, 1):
        raise InputError(f"{path}: its nodata value is {nodata:g}, which is also a label code (0 non-crop, 1 crop); "
                         f"set nodata to {LABELS_UNKNOWN} or another code for unknown pixels")
    unknown = np.isnan(labels) | (labels == unknown_code) | ~data
    other = ~(unknown | np.isin(labels, (0, 1)))
    if other.any():
        codes = np.unique(labels[other])
        listed = some([f"{c:g}" for c in codes], limit=10)
        raise InputError(f"{path}: codes {listed} are not labels; code each pixel 0 (non-crop), 1 (crop) or "
                         f"{unknown_code:g} (unknown, the file's nodata value or {LABELS_UNKNOWN} when it sets none)")
    return np.where(unknown, np.nan, labels).astype(np.float32)


@contextmanager
def _open_raster(path: Path) -> Iterator[rasterio.DatasetReader]:
    """``rasterio.open(path)``, a GDAL failure opening or reading it an ``InputError`` naming the file."""
    try:
        with open_raster(path) as src:
            yield src
    except RasterioError as exc:
        raise InputError(f"{path}: not a readable raster, corrupt, truncated or not a GeoTIFF ({exc})") from exc


def _read_raster(path: Path, imagery: Imagery,
                 bands: tuple[int, ...]) -> tuple[list[np.ndarray], np.ndarray, float | None]:
    """The ``bands`` of a raster on the imagery's grid, where the first has data by GDAL's mask of it (bool: its
    nodata value, an alpha or a mask band), and its nodata value.

    Raises:
        InputError: the raster is unreadable, has fewer bands, or its size, CRS or transform differs from the imagery's.
    """
    rows, cols = imagery.shape
    with _open_raster(path) as src:
        if src.count < max(bands):
            raise InputError(f"{path}: {src.count} band(s), {max(bands)} expected")
        if src.crs is None or CRS.from_user_input(src.crs) != CRS.from_user_input(imagery.crs):
            raise InputError(f"{path}: CRS {src.crs}, the imagery's is {imagery.crs}; "
                             "reproject it onto the imagery grid")
        if (src.height, src.width) != (rows, cols):
            raise InputError(f"{path}: {src.height} x {src.width} px, the imagery grid is {rows} x {cols}")
        # The raster's corners in imagery pixels: off by more than float noise is another grid.
        corners = np.array([(0, 0), (cols, 0), (0, rows)], dtype=float)
        placed = np.array([~imagery.transform @ (src.transform @ (c, r)) for c, r in corners])
        if np.abs(placed - corners).max() > GRID_TOLERANCE_PX:
            raise InputError(f"{path}: transform {tuple(src.transform)[:6]}, the imagery's is "
                             f"{tuple(imagery.transform)[:6]}; reproject it onto the imagery grid")
        return [src.read(band) for band in bands], src.read_masks(bands[0]) > 0, src.nodata


def files_sha256(paths: list[Path], root: Path) -> str:
    """One SHA-256 over the files' names relative to ``root`` and their bytes, in sorted order.

    Example: ``files_sha256([labels / "deafrica-cropmask" / "central" / "training_data.txt"], labels)``.
    """
    return _named_files_sha256((str(path.relative_to(root)), path) for path in sorted(paths))


def eurosat_sha256(root: str | Path) -> str:
    """One SHA-256 naming a EuroSAT folder's patches (``eurosat_files``): each one's path under ``root``, its class
    folder spelt as in ``EUROSAT_CLASSES``, then its bytes, in the order of those paths.

    Neither the folder's own name nor the case of its class folders counts, as neither changes what is read: a
    renamed copy is the same data. Example: ``eurosat_sha256("labels/eurosat") == eurosat_sha256("copy/EuroSAT_MS")``.
    """
    root = Path(root)
    return _named_files_sha256(sorted((Path(name, *path.relative_to(root).parts[1:]).as_posix(), path)
                                      for path, name in eurosat_files(root)))


def _named_files_sha256(named: Iterable[tuple[str, Path]]) -> str:
    """One SHA-256 over each (name, file) in turn: the name, then the file's bytes."""
    digest = hashlib.sha256()
    for name, path in named:
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def dea_row_fingerprints(pixels: LabelledPatches) -> np.ndarray:
    """A 64-bit fingerprint (BLAKE2b) of each DEA pixel's reflectance as read: float32, ``MODEL_BANDS`` order, S1 then
    S2 (``load_dea``). A row keeps it in any file, region folder, column order or separator; uint64 (pixel,)."""
    rows = np.ascontiguousarray(pixels.reflectance.reshape(len(pixels.reflectance), -1))
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in rows)
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def pack_fingerprints(fingerprints: np.ndarray) -> str:
    """Fingerprints (``dea_row_fingerprints``), distinct and sorted, as base64 of their big-endian bytes: 8 bytes a row
    in a JSON card, where decimal numbers would take about 20."""
    return base64.b64encode(np.unique(fingerprints).astype(">u8").tobytes()).decode("ascii")


def unpack_fingerprints(packed: str) -> np.ndarray:
    """The fingerprints ``pack_fingerprints`` wrote, uint64.

    Raises:
        InputError: ``packed`` is not such base64 text.
    """
    try:
        raw = base64.b64decode(packed, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise InputError(f"the DEA row fingerprints are not base64 text ({exc})") from exc
    if len(raw) % 8:
        raise InputError(f"the DEA row fingerprints are {len(raw)} bytes, not a whole number of 8-byte fingerprints")
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def eurosat_files(root: str | Path) -> list[tuple[Path, str]]:
    """The EuroSAT patch files under ``root/<Class>/``, at any depth (``.tif``/``.tiff``, hidden files skipped), and
    their class.

    Class folders are matched to ``EUROSAT_CLASSES`` ignoring case; the class is returned as spelt there.

    Raises:
        InputError: a folder holding patches is not a EuroSAT class (its patches would be scored as
            non-crop), or no patch is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of EuroSAT class folders (<Class>/*.tif)")
    files, strays = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = _EUROSAT_BY_LOWER.get(folder.name.lower())
        # A class's patches in its folder or below it (a year's subfolder, say); hidden files and folders skipped.
        patches = sorted(f for f in (folder.iterdir() if name is None else folder.rglob("*"))
                         if f.suffix.lower() in (".tif", ".tiff") and f.is_file()
                         and not any(part.startswith(".") for part in f.relative_to(folder).parts))
        if patches and name is None:
            strays.append(folder.name)
        elif patches:
            files += [(patch, name) for patch in patches]
    if strays:
        raise InputError(f"{root}: folder(s) {', '.join(strays)} hold patches but are not EuroSAT classes "
                         f"({', '.join(EUROSAT_CLASSES)}); their patches have no crop label: move them out")
    if not files:
        raise InputError(f"{root}: no EuroSAT patches (<Class>/*.tif, classes {', '.join(EUROSAT_CLASSES)})"
                         f"{nested_eurosat_hint(root)}")
    return files


def nested_eurosat_hint(folder: Path) -> str:
    """``"; the EuroSAT class folders are in X: give that folder"`` when a folder X up to ``HINT_DEPTH`` levels below
    ``folder`` holds EuroSAT classes (the shallowest, first by name), else ``""``: two or more folders named as
    classes holding ``.tif``/``.tiff`` files, not one folder that happens to be named so (``photos/River`` of JPEGs).

    Folders are looked in level by level, hidden ones skipped, ``HINT_FOLDERS`` at most: a huge tree is not walked.
    """
    level, looked = [folder], 0
    for depth in range(HINT_DEPTH + 1):
        below = []
        for parent in level:
            try:
                children = sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:  # not a folder, or not ours to read
                continue
            if depth and sum(child.name.lower() in _EUROSAT_BY_LOWER and _holds_tiff(child) for child in children) > 1:
                return f"; the EuroSAT class folders are in {parent}: give that folder"
            looked += 1
            if looked >= HINT_FOLDERS:
                return ""
            below += children
        level = below
    return ""


def _holds_tiff(folder: Path) -> bool:
    """Whether ``folder`` holds a ``.tif``/``.tiff`` file (not looking below it)."""
    try:
        return any(path.suffix.lower() in (".tif", ".tiff") and path.is_file() for path in folder.iterdir())
    except OSError:  # not ours to read
        return False


def is_eurosat_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a EuroSAT class folder (names matched ignoring case)."""
    return folder.is_dir() and any(p.is_dir() and p.name.lower() in _EUROSAT_BY_LOWER for p in folder.iterdir())


def is_dea_folder(folder: Path) -> bool:
    """Whether ``folder`` is a Digital Earth Africa folder of regions (``<region>/training_data.txt``) or a region's."""
    return (folder / "training_data.txt").is_file() or any(folder.glob("*/training_data.txt"))


def load_eurosat(root: str | Path, progress: Callable[[int, int], None] | None = None) -> LabelledPatches:
    """EuroSAT-MS patches under ``root/<Class>/`` (13-band L1C x 10000) as one-date patches (``eurosat_files``);
    ``progress`` is called with (files read, files in all) as each is. Each patch's ``patch_sha256`` is that of its
    13 bands as stored (``arrays_sha256``): a copy renamed, moved, re-compressed or read among other patches keeps it.

    Pixels that are 0 in every band, or the file's nodata value in any band the model reads, are no data
    (not clear, NaN). Patch files that cannot be read (corrupt, truncated, not a GeoTIFF), or are not of 13 bands
    or of the commonest size among the 13-band files (their headers are read first), are skipped and listed in
    ``unreadable``: one bad file among thousands does not end a run, wherever it sorts. ``EurosatFolder.chunks``
    reads them a chunk at a time.

    Raises:
        InputError: as ``eurosat_files``, no patch readable, or patches that are not reflectance 0-1 of the bands
            as named once scaled (``check_labelled_reflectance``).
    """
    folder = EurosatFolder.of(root)
    # Filled in place: a list of patches and its stack would hold them twice.
    reflectance = np.empty((folder.readable, 1, len(MODEL_BANDS), *folder.shape), dtype=np.float32)
    clear = np.empty((folder.readable, 1, *folder.shape), dtype=bool)
    read: list[str] = []  # the class of each patch read, in order
    sha256: list[str] = []  # and the hash of its values
    for name, values, seen, digest in folder.patches(progress):
        reflectance[len(read), 0], clear[len(read), 0] = values, seen
        read.append(name)
        sha256.append(digest)
    folder.refuse_if_none_read(len(read))
    # Views: the rows of files found unreadable once read stay unused.
    patches = folder.labelled(reflectance[: len(read)], clear[: len(read)], read, sha256)
    return replace(patches, unreadable=folder.unreadable_in_order())


@dataclass
class EurosatFolder:
    """A EuroSAT folder's patch files (``eurosat_files``), the size they share (the commonest among the 13-band
    files) and those skipped so far (path: why), found first by reading their headers, then as they are read."""

    root: str | Path
    files: list[tuple[Path, str]]
    shape: tuple[int, int]
    unreadable: dict[str, str]

    @classmethod
    def of(cls, root: str | Path) -> EurosatFolder:
        """The folder ``root``, each file's header read.

        Raises:
            InputError: as ``eurosat_files``.
        """
        files = eurosat_files(root)
        unreadable: dict[str, str] = {}
        sizes: dict[Path, tuple[int, int]] = {}  # (rows, cols) of each 13-band file
        for path, _ in files:
            try:
                sizes[path] = _eurosat_patch_size(path)
            except InputError as exc:
                unreadable[str(path)] = str(exc)
        shape = Counter(sizes.values()).most_common(1)[0][0] if sizes else (0, 0)
        for path, size in sizes.items():
            if size != shape:
                unreadable[str(path)] = (f"{path}: {size[0]} x {size[1]} px, the commonest size among the patches is "
                                         f"{shape[0]} x {shape[1]}")
        return cls(root, files, shape, unreadable)

    @property
    def readable(self) -> int:
        """Files the header pass kept (a few may still fail to read)."""
        return len(self.files) - len(self.unreadable)

    def patches(self, progress: Callable[[int, int], None] | None = None
                ) -> Iterator[tuple[str, np.ndarray, np.ndarray, str]]:
        """Each readable patch in file order: its class, reflectance (band, rows, cols) in ``MODEL_BANDS`` order, NaN
        where no data, its clear mask and the SHA-256 of its 13 bands as stored; a file failing to read is added to
        ``unreadable``. ``progress`` hears of every file, read or skipped."""
        order = [EUROSAT_BANDS.index(b) for b in MODEL_BANDS]
        for done, (path, name) in enumerate(self.files, 1):
            if progress is not None:
                progress(done, len(self.files))
            if str(path) in self.unreadable:
                continue
            try:
                values, nodata = _read_eurosat_patch(path, self.shape)
            except InputError as exc:
                self.unreadable[str(path)] = str(exc)
                continue
            digest = arrays_sha256(values)
            values = values[order]
            missing = (values == 0).all(axis=0) | ((values == nodata).any(axis=0) if nodata is not None else False)
            yield name, np.where(missing, np.nan, values.astype(np.float32) / 10_000.0), ~missing, digest

    def chunks(self, patches_per_chunk: int,
               progress: Callable[[int, int], None] | None = None) -> Iterator[LabelledPatches]:
        """The readable patches, ``patches_per_chunk`` at a time (the last chunk fewer), so memory holds one chunk
        however many files there are; the files skipped are listed by ``unreadable_in_order`` once all are read.

        Raises:
            InputError: no patch readable at all (after the last file), or a chunk's patches are not reflectance.
        """
        chunk: list[tuple[str, np.ndarray, np.ndarray, str]] = []
        read = 0
        for patch in self.patches(progress):
            chunk.append(patch)
            read += 1
            if len(chunk) == patches_per_chunk:
                yield self._stacked(chunk)
                chunk = []
        if chunk:
            yield self._stacked(chunk)
        self.refuse_if_none_read(read)

    def _stacked(self, chunk: list[tuple[str, np.ndarray, np.ndarray, str]]) -> LabelledPatches:
        """``labelled`` of patches as ``patches`` yields them."""
        names, values, seen, digests = zip(*chunk, strict=True)
        return self.labelled(np.stack(values)[:, None], np.stack(seen)[:, None], list(names), list(digests))

    def refuse_if_none_read(self, read: int) -> None:
        """Raise InputError, naming why, when no patch file (``read`` of them) could be read."""
        if not read:
            raise InputError(f"{self.root}: none of its {len(self.files)} EuroSAT patch files can be read "
                             f"({_unreadable_reasons(self.unreadable)})")

    def labelled(self, reflectance: np.ndarray, clear: np.ndarray, read: list[str],
                 sha256: list[str]) -> LabelledPatches:
        """``LabelledPatches`` of patches read (class ``read``, hash ``sha256`` each), its ``unreadable`` left empty.

        Raises:
            InputError: the patches are not reflectance (``check_labelled_reflectance``).
        """
        check_labelled_reflectance(reflectance, clear, self.root)
        group = np.array(read)
        return LabelledPatches(reflectance, clear, np.isin(group, EUROSAT_CROP), group, str(self.root),
                               top_of_atmosphere=True, patch_sha256=np.array(sha256))

    def unreadable_in_order(self) -> tuple[str, ...]:
        """The files skipped so far, in file order."""
        return tuple(str(path) for path, _ in self.files if str(path) in self.unreadable)


def _unreadable_reasons(unreadable: dict[str, str]) -> str:
    """Why the files of ``unreadable`` (path: why, each naming its file) cannot be read: the first's reason, and
    "and likewise the others" only where each other file's reason, its path aside, is the same."""
    first, *others = unreadable.values()
    reasons = {why.removeprefix(f"{path}: ") for path, why in unreadable.items()}
    if not others:
        return first
    if len(reasons) == 1:
        return f"{first}, and likewise the others"
    return f"{first}; {some(others, limit=2)}"


def _eurosat_patch_size(path: Path) -> tuple[int, int]:
    """A EuroSAT-MS patch file's size (rows, cols), from its header.

    Raises:
        InputError: the file is unreadable or not of 13 bands.
    """
    with _open_raster(path) as src:
        if src.count != len(EUROSAT_BANDS):
            raise InputError(f"{path}: {src.count} bands, EuroSAT-MS has {len(EUROSAT_BANDS)}")
        return src.height, src.width


def _read_eurosat_patch(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, float | None]:
    """A EuroSAT-MS patch's 13 bands (band, rows, cols) as stored, and its nodata value.

    Raises:
        InputError: the file is unreadable, or not of 13 bands and ``shape`` (rows, cols).
    """
    with _open_raster(path) as src:
        if (src.count, src.height, src.width) != (len(EUROSAT_BANDS), *shape):
            raise InputError(f"{path}: {src.count} bands of {src.height} x {src.width} px, its header read "
                             f"{len(EUROSAT_BANDS)} of {shape[0]} x {shape[1]}")
        return src.read(), src.nodata


def load_dea(root: str | Path, regions: tuple[str, ...] = DEA_REGIONS) -> LabelledPatches:
    """Digital Earth Africa crop-mask pixels of ``regions`` as 1x1 patches of two dates (seasons S1, S2).

    Raises:
        InputError: a region's table is unreadable (``read_dea_table``) or not reflectance 0-1 of the bands as named
            (``check_labelled_reflectance``).
    """
    tables, groups = [], []
    for region in regions:
        columns = read_dea_table(root, region)
        pixel = np.full((len(columns["Class"]), 2, len(MODEL_BANDS), 1, 1), np.nan, dtype=np.float32)
        for season in (0, 1):
            for name, band in DEA_BANDS.items():
                pixel[:, season, MODEL_BANDS.index(band), 0, 0] = columns[f"{name}_S{season + 1}"]
        check_labelled_reflectance(pixel, np.ones((len(pixel), 2, 1, 1), dtype=bool),
                                   Path(root) / region / "training_data.txt")
        tables.append((pixel, columns["Class"] == 1))
        groups += [region] * len(pixel)
    reflectance = np.concatenate([t[0] for t in tables])
    clear = np.ones((len(reflectance), 2, 1, 1), dtype=bool)
    files = ", ".join(str(Path(root) / region / "training_data.txt") for region in regions)
    return LabelledPatches(reflectance, clear, np.concatenate([t[1] for t in tables]), np.array(groups), files)


def read_dea_table(root: str | Path, region: str) -> dict[str, np.ndarray]:
    """Every column of a Digital Earth Africa region's ``training_data.txt`` (``Class``, bands, MADs, rain, ...).

    The file is rows of numbers separated by spaces, tabs or commas under a header: the last ``#``
    line before the first row names the columns. ``Class`` is 1 (crop) or 0 (non-crop) on every row.

    Raises:
        InputError: the region's table is missing, not rows of numbers, one per column of its ``#`` header,
            lacks ``Class`` or a band column of ``DEA_BANDS`` (``<name>_S1``, ``<name>_S2``), or has
            a ``Class`` other than 0 or 1.
    """
    path = Path(root) / region / "training_data.txt"
    if not path.is_file():
        raise InputError(f"{path}: Digital Earth Africa region {region!r} not found")
    try:
        with open(path) as handle:
            above = [line for line in takewhile(lambda line: line.lstrip().startswith("#") or not line.strip(), handle)
                     if line.strip()]
        if not above:
            raise InputError(f"{path}: no '#' header line naming the columns above its rows")
        delimiter = "," if "," in above[-1] else None
        header = [name.strip() for name in above[-1].lstrip().lstrip("#").split(delimiter)]
        table = np.loadtxt(path, comments="#", ndmin=2, delimiter=delimiter)
    except ValueError as exc:  # also a file that is not text (UnicodeDecodeError)
        raise InputError(f"{path}: not a table of numbers (separated by spaces, tabs or commas) under a '#' "
                         f"header ({exc})") from exc
    if not len(table) or table.shape[1] != len(header):
        raise InputError(f"{path}: needs rows of {len(header)} numbers, one per column its header names; "
                         f"it has {len(table)} rows of {table.shape[1]}")
    needed = ["Class"] + [f"{name}_S{season}" for season in (1, 2) for name in DEA_BANDS]
    if missing := [name for name in needed if name not in header]:
        raise InputError(f"{path}: no column {', '.join(missing)} in its header")
    columns = {name: table[:, i] for i, name in enumerate(header)}
    if not (unlabelled := ~np.isin(columns["Class"], (0, 1))).any():
        return columns
    row = int(np.flatnonzero(unlabelled)[0])
    raise InputError(f"{path}: Class must be 1 (crop) or 0 (non-crop); data row {row + 1} has "
                     f"{columns['Class'][row]:g} ({int(unlabelled.sum())} such rows)")


def split_eurosat(patches: LabelledPatches, test_share: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, stratified by EuroSAT class, seeded."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for name in np.unique(patches.group):
        members = rng.permutation(np.flatnonzero(patches.group == name))
        n_test = int(round(test_share * len(members)))
        test += list(members[:n_test])
        train += list(members[n_test:])
    return np.sort(train), np.sort(test)
