"""Simulate a whole season: landscape, portfolio, and one Earth Search-layout scene per date."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from pyproj import Transformer

from farmcredit.errors import InputError
from farmcredit.locking import SIMULATING, WRITE_ERRNOS, writable_folder
from farmcredit.simulate.clouds import (
    Sky,
    SkyPlan,
    draw_sky,
    footprint,
    observe,
    plan_skies,
    scene_classification,
    valid_mask,
)
from farmcredit.simulate.grid import SceneGrid, scene_grid
from farmcredit.simulate.landscape import build_landscape
from farmcredit.simulate.portfolio import build_portfolio, write_parcels, write_truth
from farmcredit.simulate.render import (
    LANDCOVER_CLASSES,
    SceneCells,
    block_mean,
    burn_cells,
    landcover,
    surface_fractions,
)
from farmcredit.simulate.spec import REVISIT_DAYS, SimulationResult, SimulationSpec
from farmcredit.simulate.spectra import BANDS, RESOLUTIONS_M, band_indices, mix
from farmcredit.simulate.stac import ITEM_ID, build_item, item_id, mgrs_tile
from farmcredit.simulate.sun import solar_angles
from farmcredit.simulate.writer import reflectance_to_dn, write_cog, write_file

# Independent random streams, so changing one part of a spec leaves the others as they were.
_LANDSCAPE, _PORTFOLIO, _TEXTURE, _SKY_PLAN, _SKY, _SENSOR = range(6)
# Sentinel-2's descending node crosses at 10:30 local mean solar time.
_OVERPASS_SOLAR_HOURS = 10.5
DEFAULT_SPEC = SimulationSpec()
# What a simulation writes beside imagery/: its parcels, their truth, the land cover.
OUTPUT_FILES = ("parcels.geojson", "truth.csv", "landcover.tif")


def simulate_season(out_dir: Path, seed: int = 0, spec: SimulationSpec = DEFAULT_SPEC) -> SimulationResult:
    """Write a synthetic Sentinel-2 L2A season with exact per-parcel ground truth.

    Writes ``imagery/<item id>/`` (one COG per band, ``SCL.tif`` and a STAC item per date),
    ``parcels.geojson``, ``truth.csv`` and ``landcover.tif`` under ``out_dir``. The same seed and
    spec give byte-identical files. While it writes, ``imagery/`` holds ``SIMULATING`` (an earlier
    season's files are removed first): a folder left with it is unfinished, refused by
    `farmcredit.imagery.open_imagery` and replaced whole by the next simulation.

    Args:
        out_dir: Output folder (created; earlier simulator output in it, finished or not, is replaced).
        seed: Random seed.
        spec: What to simulate.

    Returns:
        Paths and facts of what was written.

    Raises:
        InputError: ``out_dir`` cannot be written (a file in the way, a full disk: the message names the file), or
            holds folders it did not write.

    Example:
        >>> spec = SimulationSpec(size_px=96, n_dates=6)
        >>> result = simulate_season(Path("season"), seed=1, spec=spec)  # doctest: +SKIP
        >>> len(result.dates), result.crs  # doctest: +SKIP
        (6, 'EPSG:32650')
    """
    if seed < 0:
        raise InputError(f"seed {seed}: a seed is 0 or more")
    out_dir = writable_folder(Path(out_dir))  # before the work: a file in the way fails now
    earlier = _earlier_output(out_dir)
    grid = scene_grid(spec.centre_lon, spec.centre_lat, spec.size_px)
    landscape = build_landscape(grid, _rng(seed, _LANDSCAPE))
    parcels = build_portfolio(landscape, grid, spec, _rng(seed, _PORTFOLIO))
    cells = burn_cells(landscape.objects, grid, spec.subpixel, _rng(seed, _TEXTURE))
    dates = acquisition_dates(spec)
    skies = plan_skies(
        len(dates), spec.clear_date_fraction, spec.n_overcast_dates, spec.n_swath_edge_dates, _rng(seed, _SKY_PLAN)
    )

    imagery_dir = out_dir / "imagery"
    result = SimulationResult(
        root=out_dir,
        imagery_dir=imagery_dir,
        parcels_path=out_dir / OUTPUT_FILES[0],
        truth_path=out_dir / OUTPUT_FILES[1],
        dates=dates,
        crs=grid.crs,
        n_parcels=len(parcels),
        landcover_path=out_dir / OUTPUT_FILES[2],
    )
    marker = imagery_dir / SIMULATING
    try:
        imagery_dir.mkdir(exist_ok=True)
        write_file(marker, "farmcredit simulate is writing this folder; while this file is here the season in it is "
                           "unfinished: run the simulation again\n")
        for path in earlier:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        for index, (day, plan) in enumerate(zip(dates, skies)):
            _write_scene(imagery_dir, cells, grid, spec, day, plan, _rng(seed, _SKY, index),
                         _rng(seed, _SENSOR, index))
        write_parcels(parcels, result.parcels_path)
        write_truth(parcels, result.truth_path)
        _write_landcover(result.landcover_path, cells, grid)
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise InputError(f"simulating into {out_dir} stopped: {exc.filename} could not be written ({exc.strerror}); "
                         f"the folder holds an unfinished season ({marker}): make room and run the simulation "
                         "again") from exc
    marker.unlink()
    return result


def acquisition_dates(spec: SimulationSpec) -> tuple[date, ...]:
    """Dates spread evenly over the season, on the 5-day revisit cycle from its first day.

    Example:
        >>> acquisition_dates(SimulationSpec(n_dates=3))
        (datetime.date(2024, 3, 1), datetime.date(2024, 6, 29), datetime.date(2024, 10, 27))
    """
    slots = (spec.season_end - spec.season_start).days // REVISIT_DAYS
    # floor(x + 0.5), not banker's rounding: picks at least one slot apart stay distinct.
    picks = np.floor(np.linspace(0, slots, spec.n_dates) + 0.5).astype(int)
    return tuple(spec.season_start + timedelta(days=int(p) * REVISIT_DAYS) for p in picks)


def _write_scene(
    imagery_dir: Path,
    cells: SceneCells,
    grid: SceneGrid,
    spec: SimulationSpec,
    day: date,
    plan: SkyPlan,
    sky_rng: np.random.Generator,
    sensor_rng: np.random.Generator,
) -> None:
    """Write one date's scene folder: band COGs, SCL and the STAC item."""
    west, south, east, north = grid.bounds()
    easting, northing = (west + east) / 2, (south + north) / 2
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(easting, northing)
    # The two satellites fly half a 10-day cycle apart, so they alternate on the 5-day grid.
    satellite = "S2A" if (day - spec.season_start).days // REVISIT_DAYS % 2 == 0 else "S2B"
    overpass = timedelta(hours=_OVERPASS_SOLAR_HOURS - lon / 15.0, seconds=float(sky_rng.uniform(-40.0, 40.0)))
    # The pass in the UTC day ``day``: east of 157.5 E the 10:30 pass of local ``day`` is in the UTC day before.
    acquired = datetime(day.year, day.month, day.day) + overpass % timedelta(days=1)
    acquired = acquired.replace(microsecond=acquired.microsecond // 1000 * 1000)
    azimuth, elevation = solar_angles(lon, lat, acquired)
    sky = draw_sky(plan, grid, azimuth, elevation, sky_rng)
    tile = mgrs_tile(lon, lat, grid.epsg, easting, northing)
    identifier = item_id(satellite, tile, acquired)
    folder = imagery_dir / identifier
    folder.mkdir()
    scl = _write_bands(folder, cells, grid, day, sky, spec.noise_reflectance, sensor_rng)
    item = build_item(
        identifier=identifier,
        satellite=satellite,
        tile=tile,
        acquired=acquired,
        grid=grid,
        footprint=footprint(sky, grid),
        scl=scl,
        sun_azimuth=azimuth,
        sun_elevation=elevation,
    )
    # Compact, as Earth Search serves its items.
    write_file(folder / f"{identifier}.json", json.dumps(item, separators=(",", ":")) + "\n")


def _write_bands(
    folder: Path,
    cells: SceneCells,
    grid: SceneGrid,
    day: date,
    sky: Sky,
    noise_reflectance: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Write the 12 band COGs and SCL.tif of one date; returns the SCL array."""
    day_of_year = day.timetuple().tm_yday
    fractions = surface_fractions(cells, day_of_year)
    # Residual error of the atmospheric correction: a small gain common to all bands of a date.
    gain = 1.0 + rng.normal(0.0, 0.01)
    scl = np.zeros(grid.shape(20), np.uint8)
    for resolution in RESOLUTIONS_M:
        factor = resolution // 10
        rows, cols = grid.shape(resolution)
        coarse = fractions if factor == 1 else block_mean(fractions, factor)
        coarse_sky = sky if factor == 1 else sky.at(factor)
        positions = band_indices(resolution)
        seen = observe(mix(coarse, positions) * gain, positions, coarse_sky)[:, :rows, :cols]
        # Photon noise grows with the square root of the signal: noise_reflectance at 0.25.
        sigma = noise_reflectance * np.sqrt(np.abs(seen) / 0.25 + 0.05)
        seen += rng.standard_normal(seen.shape, dtype=np.float32) * sigma
        valid = valid_mask(sky, grid, resolution)
        for position, layer in zip(positions, seen):
            write_cog(
                folder / f"{BANDS[position].name}.tif",
                reflectance_to_dn(layer, valid),
                grid.transform(resolution),
                grid.crs,
            )
        if resolution == 20:
            cropped = Sky(
                coarse_sky.cloud[:rows, :cols],
                coarse_sky.cirrus[:rows, :cols],
                coarse_sky.shadow[:rows, :cols],
                sky.swath,
            )
            scl = scene_classification(coarse[:, :rows, :cols], cropped, valid)
            write_cog(folder / "SCL.tif", scl, grid.transform(20), grid.crs)
    return scl


def _write_landcover(path: Path, cells: SceneCells, grid: SceneGrid) -> None:
    classes, cropland = landcover(cells)
    rows, cols = grid.shape(10)
    names: dict[int, list[str]] = {}
    for name, code in LANDCOVER_CLASSES.items():
        names.setdefault(code, []).append(name)
    legend = ",".join(f"{code}={' or '.join(same)}" for code, same in names.items())
    write_cog(
        path,
        np.stack([classes[:rows, :cols], cropland[:rows, :cols]]),
        grid.transform(10),
        grid.crs,
        nodata=None,
        descriptions=("landcover", "cropland_percent"),
        tags={"LANDCOVER_CLASSES": legend},
    )


def _earlier_output(out_dir: Path) -> list[Path]:
    """What an earlier simulation wrote in ``out_dir``, to be replaced: its scene folders and ``OUTPUT_FILES``
    (hidden files such as .DS_Store aside). After a simulation that did not finish (``SIMULATING`` left in
    ``imagery/``), a folder named as its scenes are is its own, with or without its item.

    Raises:
        InputError: ``imagery/`` holds anything else, or the files are there without the simulator's scenes.
    """
    imagery_dir = out_dir / "imagery"
    unfinished = (imagery_dir / SIMULATING).is_file()
    scenes = []
    for child in sorted(imagery_dir.iterdir()) if imagery_dir.is_dir() else ():
        if child.name.startswith("."):
            continue
        if not (_is_simulated_scene(child) or unfinished and child.is_dir() and ITEM_ID.fullmatch(child.name)):
            raise InputError(f"{child} was not written by the simulator; choose an empty output folder or remove it")
        scenes.append(child)
    files = [out_dir / name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if files and not (scenes or unfinished):
        raise InputError(f"{files[0]} was not written by the simulator (no simulated scenes beside it); choose an "
                         "empty output folder or remove it")
    return scenes + files


def _is_simulated_scene(folder: Path) -> bool:
    """True when ``folder`` holds the simulator's STAC item (``farmcredit:synthetic``)."""
    try:
        item = json.loads((folder / f"{folder.name}.json").read_text(encoding="utf-8"))
        return item["properties"]["farmcredit:synthetic"] is True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])
