"""``preview.png``: parcels coloured by decision over a true-colour image of a clear date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.windows import from_bounds  # noqa: E402

from farmcredit.imagery import Imagery, Scene  # noqa: E402

if TYPE_CHECKING:
    from farmcredit.pipeline import Assessment

DECISION_COLOURS = {"approve": "#1a9850", "refer": "#fdae61", "decline": "#d73027"}
ERROR_COLOUR = "#7f7f7f"
MAX_PREVIEW_PX = 1600
TRUE_COLOUR = ("B04", "B03", "B02")


def render_preview(assessment: Assessment, path: Path) -> None:
    """Draw the parcels over imagery with a legend, scale bar and north arrow; save as PNG."""
    parcels = assessment.parcels.to_crs(assessment.imagery.crs)
    usable = parcels[parcels.geometry.notna() & ~parcels.geometry.is_empty]
    bounds = _padded_bounds(usable.total_bounds) if len(usable) else (0.0, 0.0, 1.0, 1.0)
    aspect = (bounds[3] - bounds[1]) / (bounds[2] - bounds[0])
    fig, ax = plt.subplots(figsize=(10, float(np.clip(10 * aspect + 1.2, 4, 14))), dpi=110)
    if len(usable):
        scene = _clearest_scene(assessment.imagery)
        image = _true_colour(assessment.imagery, scene, bounds)
        if image is not None:
            ax.imshow(image, extent=(bounds[0], bounds[2], bounds[1], bounds[3]), interpolation="nearest")
        colours = [
            ERROR_COLOUR if status == "error" else DECISION_COLOURS[decision]
            for status, decision in zip(usable["status"], usable["decision"])
        ]
        usable.plot(ax=ax, facecolor=colours, edgecolor="white", linewidth=0.4, alpha=0.55)
        usable.boundary.plot(ax=ax, color=colours, linewidth=0.8)
        ax.set_xlim(bounds[0], bounds[2])
        ax.set_ylim(bounds[1], bounds[3])
        _scale_bar(ax, bounds)
        season = f"{assessment.record['season_dates'][0]} to {assessment.record['season_dates'][-1]}"
        subtitle = f"imagery {scene.acquired.date().isoformat()} (true colour)"
    else:
        season, subtitle = "no usable parcels", ""
    counts = assessment.parcels["decision"].value_counts()
    handles = [
        Patch(facecolor=colour, edgecolor="black", label=f"{decision} ({counts.get(decision, 0)})")
        for decision, colour in DECISION_COLOURS.items()
    ]
    handles.append(Patch(facecolor=ERROR_COLOUR, edgecolor="black", label="not assessed (error)"))
    ax.legend(handles=handles, loc="lower left", title="decision", framealpha=0.9)
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center",
                fontsize=14, fontweight="bold", arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 2})
    ax.set_title(f"farmcredit: {len(assessment.parcels)} parcels, season {season}\n{subtitle}")
    ax.set_xlabel(f"{assessment.imagery.crs.to_string()} easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(useOffset=False, style="plain")
    fig.text(0.01, 0.005, f"Imagery: {assessment.imagery.source}", fontsize=7, color="#444444")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _padded_bounds(bounds: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in bounds)
    pad = 0.03 * max(x1 - x0, y1 - y0, 100.0)
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def _clearest_scene(imagery: Imagery) -> Scene:
    """The least cloudy scene (metadata cloud cover); ties go to the middle of the season."""
    middle = len(imagery.scenes) // 2
    return min(
        enumerate(imagery.scenes),
        key=lambda item: (item[1].cloud_cover if item[1].cloud_cover is not None else 50.0, abs(item[0] - middle)),
    )[1]


def _true_colour(imagery: Imagery, scene: Scene, bounds: tuple[float, float, float, float]) -> np.ndarray | None:
    """RGB (rows, cols, 3) in 0-1, decimated to at most MAX_PREVIEW_PX a side; None if absent."""
    if not all(band in scene.band_paths for band in TRUE_COLOUR):
        return None
    width_px = (bounds[2] - bounds[0]) / imagery.transform.a
    height_px = (bounds[3] - bounds[1]) / -imagery.transform.e
    factor = max(1.0, max(width_px, height_px) / MAX_PREVIEW_PX)
    shape = (max(int(height_px / factor), 1), max(int(width_px / factor), 1))
    channels = []
    for band in TRUE_COLOUR:
        path, index = scene.band_paths[band]
        with rasterio.open(path) as src:
            window = from_bounds(*bounds, transform=src.transform)
            dn = src.read(index, window=window, out_shape=shape, boundless=True, fill_value=0,
                          resampling=Resampling.average).astype(np.float32)
        channels.append(np.where(dn > 0, (dn + scene.dn_offset) * scene.dn_scale, np.nan))
    rgb = np.dstack(channels)
    # A fixed 0-0.3 reflectance stretch with gamma reads well for vegetation and soil alike.
    return np.nan_to_num(np.clip(rgb / 0.3, 0, 1) ** 0.8, nan=1.0)


def _scale_bar(ax: plt.Axes, bounds: tuple[float, float, float, float]) -> None:
    span = bounds[2] - bounds[0]
    length = 10 ** np.floor(np.log10(span / 4))
    length *= 5 if span / 4 >= 5 * length else 2 if span / 4 >= 2 * length else 1
    x = bounds[2] - 0.05 * span - length
    y = bounds[1] + 0.04 * (bounds[3] - bounds[1])
    ax.plot([x, x + length], [y, y], color="black", linewidth=4, solid_capstyle="butt")
    ax.plot([x, x + length], [y, y], color="white", linewidth=2, solid_capstyle="butt")
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x + length / 2, y + 0.01 * (bounds[3] - bounds[1]), label, ha="center", va="bottom",
            fontsize=9, bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
