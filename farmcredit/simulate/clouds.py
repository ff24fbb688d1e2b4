"""Weather and acquisition geometry of each date: clouds, their shadows, cirrus, swath edges.

Sen2Cor's scene classification (SCL) is reproduced from the same fields, with its usual blind
spot: the faint edges of clouds are left labelled as clear ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon, box
from shapely.geometry.polygon import orient

from farmcredit.simulate.grid import BASE_M, SceneGrid
from farmcredit.simulate.phenology import CHANNEL
from farmcredit.simulate.randomfields import gaussian_field
from farmcredit.simulate.render import block_mean
from farmcredit.simulate.spectra import CIRRUS_SPECTRUM, CLOUD_SPECTRUM, SHADOW_DEPTH, band_index, mix

# SCL classes of the Sen2Cor scene classification (Sentinel-2 L2A).
SCL_NO_DATA, SCL_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10
# Opacity and darkening at which Sen2Cor starts to flag a pixel.
CLOUD_MEDIUM_OPACITY = 0.2
CLOUD_HIGH_OPACITY = 0.5
CIRRUS_OPACITY = 0.03
SHADOW_STRENGTH = 0.25
# Sen2Cor's vegetation test is roughly NDVI above 0.4.
VEGETATION_NDVI = 0.4


@dataclass(frozen=True)
class SkyPlan:
    """What one date's sky is like, before the fields are drawn.

    Attributes:
        cloud_cover: Share of the scene under cloud, 0-1 (1: overcast).
        cirrus: True when a thin cirrus veil lies over part of the scene.
        swath_edge: True when part of the scene lies beyond the orbit's swath (no data).
    """

    cloud_cover: float
    cirrus: bool
    swath_edge: bool


@dataclass(frozen=True)
class Sky:
    """One date's atmosphere on the 10 m rendered extent.

    Attributes:
        cloud: Thick-cloud opacity, 0-1.
        cirrus: Cirrus opacity, 0-1.
        shadow: Cloud-shadow darkening strength, 0-1.
        swath: Swath edge as (easting, northing) of a point on it, heading (radians clockwise from
            north) and the side beyond it (+1 east, -1 west); None when the scene is all inside.
    """

    cloud: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray
    swath: tuple[float, float, float, float] | None

    def at(self, factor: int) -> Sky:
        """The sky averaged to pixels ``factor`` times coarser."""
        return Sky(
            block_mean(self.cloud, factor), block_mean(self.cirrus, factor), block_mean(self.shadow, factor), self.swath
        )


def plan_skies(
    n_dates: int, clear_fraction: float, n_overcast: int, n_swath_edge: int, rng: np.random.Generator
) -> tuple[SkyPlan, ...]:
    """Skies of a season: some clear dates, some overcast, the rest partly cloudy.

    Args:
        n_dates: Acquisition dates.
        clear_fraction: Share of dates without cloud.
        n_overcast: Dates under thick cloud everywhere.
        n_swath_edge: Dates (never overcast) with a no-data wedge.
        rng: Random generator.
    """
    order = rng.permutation(n_dates)
    overcast = set(order[:n_overcast].tolist())
    n_clear = min(round(clear_fraction * n_dates), n_dates - n_overcast)
    clear = set(order[n_overcast : n_overcast + n_clear].tolist())
    usable = [i for i in range(n_dates) if i not in overcast]
    edges = set(rng.choice(usable, size=min(n_swath_edge, len(usable)), replace=False).tolist())
    plans = []
    for i in range(n_dates):
        if i in overcast:
            plans.append(SkyPlan(1.0, False, False))
        elif i in clear:
            plans.append(SkyPlan(0.0, False, i in edges))
        else:
            plans.append(SkyPlan(float(rng.uniform(0.05, 0.5)), bool(rng.random() < 0.35), i in edges))
    return tuple(plans)


def draw_sky(plan: SkyPlan, grid: SceneGrid, sun_azimuth: float, sun_elevation: float, rng: np.random.Generator) -> Sky:
    """Draw cloud, shadow and cirrus fields for one date.

    Clouds are drawn over a margin around the scene so that clouds outside it cast shadows in.

    Args:
        plan: The date's sky plan.
        grid: Scene grid.
        sun_azimuth: Degrees clockwise from north.
        sun_elevation: Degrees above the horizon.
        rng: Random generator.
    """
    side = grid.render_px
    zeros = np.zeros((side, side), np.float32)
    swath = None
    if plan.swath_edge:
        west, south, east, north = grid.bounds()
        # The edge runs along the (near-polar, descending) ground track, slightly east of north;
        # side +1 loses the east of the scene, -1 the west.
        side_sign = float(rng.choice([-1.0, 1.0]))
        easting = west + (east - west) * (0.5 + side_sign * rng.uniform(0.2, 0.35))
        swath = (easting, (south + north) / 2, math.radians(rng.uniform(8.0, 14.0)), side_sign)
    if plan.cloud_cover == 0.0 and not plan.cirrus:
        return Sky(zeros, zeros, zeros, swath)

    height_m = rng.uniform(800.0, 2000.0)
    reach_px = height_m / math.tan(math.radians(max(sun_elevation, 20.0))) / BASE_M
    azimuth = math.radians(sun_azimuth)
    # Shadows fall away from the sun: towards the north-west in a morning overpass.
    d_row, d_col = round(math.cos(azimuth) * reach_px), round(-math.sin(azimuth) * reach_px)
    margin = max(abs(d_row), abs(d_col)) + 1
    deck = gaussian_field((side + 2 * margin, side + 2 * margin), rng.uniform(12.0, 30.0), rng)
    if plan.cloud_cover >= 1.0:
        opacity = np.clip(0.8 + 0.1 * deck, 0.6, 1.0)
    elif plan.cloud_cover > 0.0:
        threshold = np.quantile(deck[margin:-margin, margin:-margin], 1.0 - plan.cloud_cover)
        opacity = np.sqrt(np.clip((deck - threshold) / 0.7, 0.0, 1.0)) * rng.uniform(0.85, 1.0)
    else:
        opacity = np.zeros_like(deck)
    cloud = opacity[margin : margin + side, margin : margin + side]
    shadow = 0.9 * opacity[margin - d_row : margin - d_row + side, margin - d_col : margin - d_col + side]
    cirrus = zeros
    if plan.cirrus:
        veil = gaussian_field((side, side), rng.uniform(40.0, 80.0), rng)
        cirrus = np.clip(0.05 * (veil + 0.3), 0.0, 0.12).astype(np.float32)
    return Sky(cloud.astype(np.float32), cirrus, shadow.astype(np.float32), swath)


def valid_mask(sky: Sky, grid: SceneGrid, resolution_m: int) -> np.ndarray:
    """True where a pixel's centre lies inside the swath, on the grid at one resolution."""
    rows, cols = grid.shape(resolution_m)
    if sky.swath is None:
        return np.ones((rows, cols), bool)
    easting, northing, heading, side = sky.swath
    x = grid.west + (np.arange(cols) + 0.5) * resolution_m
    y = grid.north - (np.arange(rows) + 0.5) * resolution_m
    across = (x[None, :] - easting) * math.cos(heading) - (y[:, None] - northing) * math.sin(heading)
    return across * side < 0


def footprint(sky: Sky, grid: SceneGrid) -> Polygon:
    """The part of the 10 m scene extent inside the swath, metres, counter-clockwise (RFC 7946)."""
    scene = box(*grid.bounds())
    if sky.swath is None:
        return orient(scene, sign=1.0)
    easting, northing, heading, side = sky.swath
    reach = 4 * grid.size_px * BASE_M
    along = np.array([math.sin(heading), math.cos(heading)])
    inward = -side * np.array([math.cos(heading), -math.sin(heading)])
    point = np.array([easting, northing])
    inside = Polygon(
        [
            point - reach * along,
            point + reach * along,
            point + reach * along + reach * inward,
            point - reach * along + reach * inward,
        ]
    )
    return orient(scene.intersection(inside), sign=1.0)


def observe(surface: np.ndarray, band_positions: list[int], sky: Sky) -> np.ndarray:
    """Reflectance seen through the sky: shadowed ground under semi-transparent cloud and cirrus.

    Args:
        surface: (bands, rows, cols) surface reflectance.
        band_positions: Positions in BANDS of the surface's bands.
        sky: The sky at the surface's resolution.
    """
    depth = SHADOW_DEPTH[band_positions][:, None, None]
    cloud = CLOUD_SPECTRUM[band_positions][:, None, None]
    cirrus = CIRRUS_SPECTRUM[band_positions][:, None, None]
    seen = (1 - sky.cloud) * surface * (1 - sky.shadow * depth) + sky.cloud * cloud
    return ((1 - sky.cirrus) * seen + sky.cirrus * cirrus).astype(np.float32)


def scene_classification(fractions_20m: np.ndarray, sky_20m: Sky, valid: np.ndarray) -> np.ndarray:
    """SCL at 20 m from surface cover fractions and the sky.

    Args:
        fractions_20m: (endmembers, rows, cols) surface fractions at 20 m.
        sky_20m: The sky at 20 m.
        valid: True inside the swath.

    Returns:
        uint8 SCL classes.
    """
    red, nir = mix(fractions_20m, [band_index("B04"), band_index("B08")])
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.where(ndvi >= VEGETATION_NDVI, SCL_VEGETATION, SCL_NOT_VEGETATED).astype(np.uint8)
    scl[fractions_20m[CHANNEL["water"]] >= 0.5] = SCL_WATER
    clear_of_cloud = sky_20m.cloud < CLOUD_MEDIUM_OPACITY
    scl[(sky_20m.shadow > SHADOW_STRENGTH) & clear_of_cloud] = SCL_SHADOW
    scl[(sky_20m.cirrus > CIRRUS_OPACITY) & clear_of_cloud] = SCL_CIRRUS
    scl[~clear_of_cloud] = SCL_CLOUD_MEDIUM
    scl[sky_20m.cloud >= CLOUD_HIGH_OPACITY] = SCL_CLOUD_HIGH
    scl[~valid] = SCL_NO_DATA
    return scl
