"""Previews drawn from a results folder: the map, one parcel's season, and bad requests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from farmcredit.audit import run_id
from farmcredit.cli import main
from farmcredit.outputs import render_preview

PNG = b"\x89PNG\r\n\x1a\n"


def _farmcredit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run the CLI in this process (as the console script would); return its exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["farmcredit", *args])
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code
    return code, capsys.readouterr().err.replace("\n", "")


def test_preview_command_draws_the_map_and_one_parcels_season(outputs, assessed, tmp_path, monkeypatch,
                                                              capsys) -> None:
    parcel = assessed.parcels.loc[assessed.parcels["status"] == "ok", "parcel_id"].iloc[0]
    code, err = _farmcredit(monkeypatch, capsys, "preview", str(outputs / "results.gpkg"), "--parcel", parcel,
                            "--out", str(tmp_path / "new" / "p.png"))
    assert code == 0, err
    assert (tmp_path / "new" / "p.png").read_bytes()[:8] == PNG  # its folder made, as assess makes --out
    assert _farmcredit(monkeypatch, capsys, "preview", str(outputs))[0] == 0
    assert (outputs / "preview.png").read_bytes()[:8] == PNG
    image = matplotlib.image.imread(tmp_path / "new" / "p.png")
    assert image.shape[1] > 1.5 * image.shape[0]  # map and NDVI panel side by side


def test_unknown_parcel_or_folder_exits_2_naming_it(outputs, tmp_path, monkeypatch, capsys) -> None:
    code, err = _farmcredit(monkeypatch, capsys, "preview", str(outputs), "--parcel", "NO-SUCH-PARCEL")
    assert code == 2 and "NO-SUCH-PARCEL" in err and "Traceback" not in err
    code, err = _farmcredit(monkeypatch, capsys, "preview", str(tmp_path))
    assert code == 2 and "not a farmcredit results folder" in err
    code, err = _farmcredit(monkeypatch, capsys, "preview", str(outputs), "--out", str(tmp_path / "map.xyz"))
    assert code == 2 and "name a .png file" in err  # a matplotlib traceback, or "wrote" a file it had not
    for broken, text in (("run.json", '{"config": '), ("results.gpkg", "not a GeoPackage")):
        copy = tmp_path / broken
        shutil.copytree(outputs, copy)
        (copy / broken).write_text(text)
        code, err = _farmcredit(monkeypatch, capsys, "preview", str(copy), "--out", str(tmp_path / "m.png"))
        said = " ".join(err.split())
        assert code == 2, broken
        assert (f"{broken}: does not read as farmcredit wrote it" in said if broken == "run.json" else
                f"{broken} is of another format, not a GeoPackage file" in said and "results folder again" in said)


@pytest.mark.parametrize("broken", ["true_colour.tif", "ndvi_series.parquet"])
def test_an_image_or_series_cut_short_exits_2_naming_it(outputs, assessed, tmp_path, monkeypatch, capsys,
                                                         broken: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("preview*.png"))
    whole = (copy / broken).read_bytes()
    (copy / broken).write_bytes(whole[: len(whole) // 2])  # a copy that stopped half way
    parcel = assessed.parcels.loc[assessed.parcels["status"] == "ok", "parcel_id"].iloc[0]
    code, err = _farmcredit(monkeypatch, capsys, "preview", str(copy), "--parcel", parcel)
    said = " ".join(err.split())
    assert code == 2 and f"{broken}: does not read as farmcredit wrote it" in said and "Traceback" not in said
    assert not list(copy.glob("preview*.png"))


def test_ids_that_differ_only_in_characters_a_file_name_cannot_hold_get_files_of_their_own(outputs, tmp_path) -> None:
    import geopandas as gpd

    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    long = "田" * 100  # 300 bytes of UTF-8: over the 255 a file name may hold
    ids = ["A/1", "A_1", "A:1", "Field1", "field1", long, "P7"]
    parcels.loc[parcels.index[:len(ids)], "parcel_id"] = ids
    parcels.to_file(copy / "results.gpkg", layer="parcels")
    written = [render_preview(copy, parcel_id=parcel_id) for parcel_id in ids]
    assert written[1] == copy / "preview_A_1.png" and written[-1] == copy / "preview_P7.png"
    assert len({path.name.lower() for path in written}) == len(ids)  # apart even where case is not told apart
    assert all(path.read_bytes()[:8] == PNG for path in written)
    assert written[5].name.startswith("preview_" + "田" * 40) and len(written[5].name.encode()) < 255
    # A vowel sign is part of its letter: দাগ-১২৩ was written preview_দ_গ-১২৩-<hash>.png, unfindable by its id.
    from farmcredit.outputs.preview import _file_safe

    assert _file_safe("দাগ-১২৩", ["দাগ-১২৩"]) == "দাগ-১২৩" and _file_safe("खेत-१२", []) == "खेत-१२"


def test_an_id_as_results_csv_shows_it_is_the_parcels(outputs, tmp_path, monkeypatch, capsys) -> None:
    """results.csv writes 000001 as '000001, so a spreadsheet keeps its zeros; copied from there it was refused."""
    import geopandas as gpd

    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    parcels.loc[parcels.index[0], "parcel_id"] = "000001"
    parcels.to_file(copy / "results.gpkg", layer="parcels")
    code, err = _farmcredit(monkeypatch, capsys, "preview", str(copy), "--parcel", "'000001")
    assert code == 0 and (copy / "preview_000001.png").read_bytes()[:8] == PNG


def test_an_id_two_parcels_share_is_refused(outputs, tmp_path, monkeypatch, capsys) -> None:
    import geopandas as gpd

    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    parcels.loc[parcels.index[:2], "parcel_id"] = "dup"
    parcels.to_file(copy / "results.gpkg", layer="parcels")
    code, err = _farmcredit(monkeypatch, capsys, "preview", str(copy), "--parcel", "dup")
    assert code == 2 and "2 parcels have the id 'dup'" in err and not list(copy.glob("preview*.png"))


def test_a_chinese_parcel_id_is_drawn_in_a_font_that_has_its_glyphs(outputs, tmp_path, cjk_font) -> None:
    import warnings

    import geopandas as gpd

    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    parcels.loc[parcels.index[0], "parcel_id"] = "河南-地块-001"
    parcels.to_file(copy / "results.gpkg", layer="parcels")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_preview(copy, parcel_id="河南-地块-001")
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_a_hindi_parcel_id_is_drawn_in_a_font_that_has_its_glyphs(outputs, tmp_path, devanagari_font) -> None:
    """A Devanagari font installed was never drawn in: '101/3/ब' showed its last character as a box."""
    import warnings

    import geopandas as gpd

    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    parcels.loc[parcels.index[0], ["parcel_id", "borrower_id"]] = ["101/3/ब", "पाटील"]
    parcels.to_file(copy / "results.gpkg", layer="parcels")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_preview(copy, parcel_id="101/3/ब")
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_a_character_no_font_has_is_told_once_in_the_tools_words(outputs, tmp_path, caplog) -> None:
    """matplotlib's raw "Glyph ... missing from font(s)" warning reached the console, once a drawing of it."""
    import logging
    import warnings

    import geopandas as gpd

    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    parcels.loc[parcels.index[0], ["parcel_id", "borrower_id"]] = ["P\U00013000", "B\U00013000"]  # a hieroglyph
    parcels.to_file(copy / "results.gpkg", layer="parcels")
    for _ in range(2):  # each preview tells it, not the first of the process alone
        caplog.clear()
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="farmcredit"):
            warnings.simplefilter("always")
            render_preview(copy, parcel_id="P\U00013000")
        assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]
        assert caplog.text.count("have no glyph for") == 1
        assert "have no glyph for '\U00013000' (U+13000), drawn as a box" in caplog.text


def test_dollar_signs_in_ids_and_the_folder_name_are_drawn_as_written(outputs, tmp_path, monkeypatch, capsys,
                                                                     drawn_text) -> None:
    """Matplotlib read text between two ``$`` as a formula: ``P$x$`` drew an italic x, ``$\\frac$`` stopped the
    preview with a mathtext error."""
    import geopandas as gpd

    copy = tmp_path / "run $\\frac$"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    parcels.loc[parcels.index[:2], ["parcel_id", "borrower_id"]] = [["P$\\bogus{$1", "B$\\frac$"], ["P$x$", "B$x$"]]
    parcels.to_file(copy / "results.gpkg", layer="parcels")
    for parcel in ("P$\\bogus{$1", "P$x$"):
        code, err = _farmcredit(monkeypatch, capsys, "preview", str(copy), "--parcel", parcel,
                                "--out", str(tmp_path / "p.png"))
        assert code == 0, err
    assert _farmcredit(monkeypatch, capsys, "preview", str(copy))[0] == 0
    legend = {f"parcel {parcel}: NDVI over its cropland" for parcel in ("P$\\bogus{$1", "P$x$")}
    assert legend <= set(drawn_text)  # the season's legend
    titles = [text for text in drawn_text if text.startswith("parcel ")]
    assert any(title.startswith("parcel P$\\bogus{$1 (borrower B$\\frac$): ") for title in titles)
    assert any(title.startswith("parcel P$x$ (borrower B$x$): ") for title in titles)
    assert sum(text.startswith("farmcredit results run $\\frac$/: run ") for text in drawn_text) == 3


def test_a_copied_folder_without_imagery_still_previews(outputs, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy, ignore=shutil.ignore_patterns("*.tif", "preview*.png"))
    written = render_preview(copy, parcel_id=None)
    assert written == copy / "preview.png" and written.read_bytes()[:8] == PNG


def test_a_parcel_not_assessed_far_off_does_not_shrink_the_map(outputs, tmp_path) -> None:
    import geopandas as gpd
    import shapely

    copy = tmp_path / "copy"
    shutil.copytree(outputs, copy)
    parcels = gpd.read_file(copy / "results.gpkg", layer="parcels")
    far = parcels.iloc[[0]].copy()
    far["parcel_id"], far["status"] = "FAR", "error"
    far["geometry"] = shapely.affinity.translate(far.geometry.iloc[0], 20_000, 0)
    pd.concat([parcels, far]).to_file(copy / "results.gpkg", layer="parcels")
    written = matplotlib.image.imread(render_preview(copy, out=tmp_path / "far.png"))
    assert written.shape == matplotlib.image.imread(outputs / "preview.png").shape


def test_a_parcel_off_the_imagery_does_not_widen_the_projects_first_view(small_season, tmp_path) -> None:
    """QGIS opened project.qgs spanning every parcel, so one far off shrank the others to specks."""
    import xml.etree.ElementTree as ET

    import geopandas as gpd
    import shapely

    from farmcredit.pipeline import assess

    parcels = gpd.read_file(small_season.parcels_path).head(5)
    far = parcels.iloc[[0]].assign(parcel_id="FAR")
    far["geometry"] = shapely.affinity.translate(far.geometry.iloc[0], 0.5, 0)  # degrees: about 50 km east
    pd.concat([parcels, far]).to_file(tmp_path / "parcels.gpkg")
    results = assess(tmp_path / "parcels.gpkg", small_season.imagery_dir, model="rule", out=tmp_path / "out")
    assert results.set_index("parcel_id").loc["FAR", "reason"] == "OUTSIDE_IMAGERY"
    extent = ET.parse(tmp_path / "out" / "project.qgs").find("mapcanvas/extent")
    xmin, ymin, xmax, ymax = (float(extent.find(tag).text) for tag in ("xmin", "ymin", "xmax", "ymax"))
    assert max(xmax - xmin, ymax - ymin) < 1_000  # the small season is 960 m across


def test_a_results_folder_named_like_a_geopackage_is_a_folder(outputs, tmp_path) -> None:
    folder = tmp_path / "run.gpkg"
    shutil.copytree(outputs, folder)
    assert render_preview(folder) == folder / "preview.png"


def test_a_new_run_leaves_no_preview_of_the_last_one(assessed, tmp_path) -> None:
    from farmcredit.outputs import write_outputs

    out = tmp_path / "out"
    out.mkdir()
    earlier = [out / "preview_P00003.png", out / "preview_GONE.png"]  # a parcel this run has too, and one it has not
    for path in earlier:
        path.write_bytes(PNG)
    (out / "mine.png").write_bytes(PNG)
    write_outputs(out, assessed)
    assert not [path for path in earlier if path.exists()] and (out / "mine.png").exists()


def test_series_table_has_every_parcel_and_date(outputs, assessed) -> None:
    series = pd.read_parquet(outputs / "ndvi_series.parquet")
    assert list(series.columns) == ["parcel_id", "date", "clear_share", "ndvi_mean", "ndvi_std", "crop_ndvi_mean",
                                    "crop_ndvi_std"]
    assert len(series) == len(assessed.parcels) * len(assessed.imagery.scenes)
    assert series["ndvi_mean"].dropna().between(-1, 1).all()
    assert set(series["parcel_id"]) == set(assessed.parcels["parcel_id"])
    assert (outputs / "run.json").read_text().count("ndvi_series.parquet") == 1


@pytest.mark.parametrize(("epsg", "lon", "lat", "metres"), [(32650, 117.0, 30.0, 0.9996), (3857, 10.0, 50.0, 0.644),
                                                            (2263, -73.9, 40.7, 0.3048)])
def test_the_scale_bar_measures_ground_whatever_the_maps_unit(epsg: int, lon: float, lat: float,
                                                              metres: float) -> None:
    """On Web Mercator at 50 N a map unit is 0.64 m of ground, on a grid in feet 0.30 m: the bar said map units were
    metres, 1.6 and 3.3 times the ground it spans."""
    import matplotlib.pyplot as plt
    from pyproj import Transformer
    from rasterio.crs import CRS

    from farmcredit.outputs.preview import _ground_metres, _scale_bar

    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    bounds = (x - 1000.0, y - 1000.0, x + 1000.0, y + 1000.0)
    ground = _ground_metres(CRS.from_epsg(epsg), bounds)
    assert ground == pytest.approx(metres, rel=1e-3)
    fig, ax = plt.subplots()
    try:
        _scale_bar(ax, bounds, ground)
        (x0, x1), label = ax.lines[0].get_xdata(), ax.texts[0].get_text()
    finally:
        plt.close(fig)
    value, unit = label.split()
    assert (x1 - x0) * ground == pytest.approx(float(value) * (1000 if unit == "km" else 1))


def _panel_says(outputs, parcel_id: str, **changes) -> tuple[list[str], list[str], list[str]]:
    """Draw ``parcel_id``'s NDVI panel from ``outputs`` (its row changed by ``changes``, its series blanked when it is
    made an error); return the panel's legend labels, texts and the figure title drawn for that row."""
    import geopandas as gpd
    import matplotlib.pyplot as plt

    from farmcredit.outputs.preview import _ndvi_panel, _parcel_title

    parcels = gpd.read_file(outputs / "results.gpkg", layer="parcels")
    series = pd.read_parquet(outputs / "ndvi_series.parquet")
    row = parcels.index[parcels["parcel_id"] == parcel_id][0]
    for column, value in changes.items():
        parcels.loc[row, column] = value
    if changes.get("status") == "error":  # as the run leaves a parcel it read no imagery for
        series.loc[series["parcel_id"] == parcel_id, series.columns[2:]] = float("nan")
    fig, ax = plt.subplots()
    try:
        _ndvi_panel(ax, series, parcels, parcels.loc[row], {})
        legend = ax.get_legend()
        labels = [text.get_text() for text in legend.get_texts()] if legend else []
        texts = [" ".join(text.get_text().split()) for text in ax.texts]
    finally:
        plt.close(fig)
    return labels, texts, [_parcel_title(parcels.loc[row], {})]


@pytest.mark.parametrize(("older", "over"), [(False, "its cropland"), (True, "its outline")])
def test_a_parcels_season_is_drawn_over_its_cropland_as_its_health_ranked_it(outputs, older: bool, over: str) -> None:
    """Health and yield rank the NDVI over a parcel's cropland pixels; the panel drew the whole outline's, bare part
    included (sample_tiles P00142, wheat on half its outline, 'health 96/100': its line peaked at 0.52, under its
    peers' band, where its ndvi_peak read 0.77). An older run's series, without it, is drawn over the outline."""
    import geopandas as gpd
    import matplotlib.pyplot as plt

    from farmcredit.outputs.preview import _ndvi_panel, _observed

    parcels = gpd.read_file(outputs / "results.gpkg", layer="parcels")
    series = pd.read_parquet(outputs / "ndvi_series.parquet")
    seen = series[_observed(series, {}) & series["parcel_id"].isin(parcels.loc[parcels["health_index"].notna(),
                                                                                  "parcel_id"])]
    differs = (seen["crop_ndvi_mean"] - seen["ndvi_mean"]).abs()
    assert differs.max() > 0.05  # the two lines are told apart
    parcel_id = seen.loc[differs.idxmax(), "parcel_id"]
    column = "ndvi_mean" if older else "crop_ndvi_mean"
    fig, ax = plt.subplots()
    try:
        _ndvi_panel(ax, series.drop(columns=["crop_ndvi_mean", "crop_ndvi_std"]) if older else series, parcels,
                    parcels[parcels["parcel_id"] == parcel_id].iloc[0], {})
        (line,) = (line for line in ax.get_lines() if line.get_label().startswith(f"parcel {parcel_id}"))
        label, drawn = line.get_label(), line.get_ydata()
    finally:
        plt.close(fig)
    assert label == f"parcel {parcel_id}: NDVI over {over}"
    assert drawn.tolist() == seen[seen["parcel_id"] == parcel_id].sort_values("date")[column].tolist()


def test_a_parcels_season_is_drawn_against_the_parcels_its_health_was_ranked_among(outputs) -> None:
    """Health ranks a parcel among the rated parcels of the crop that prices it; the panel drew those of the crop
    seen, rated or not (a maize priced as soybean against every maize)."""
    import geopandas as gpd

    parcels = gpd.read_file(outputs / "results.gpkg", layer="parcels")
    other = parcels[(parcels["crop"] != parcels["priced_crop"]) & parcels["health_index"].notna()].iloc[0]
    ranked_among = other["health_reference"].split(" among ")[1].removesuffix(" in this run")  # "17 soybean parcels"
    labels, texts, (title,) = _panel_says(outputs, other["parcel_id"])
    assert f"peers' median (the {ranked_among} its health is ranked among)" in labels
    assert f"seen {other['crop']}, priced as {other['priced_crop']}, health" in title
    unrated = parcels[parcels["health_index"].isna() & parcels["health_reference"].str.startswith("not rated")].iloc[0]
    labels, texts, _ = _panel_says(outputs, unrated["parcel_id"])
    assert not [label for label in labels if label.startswith("peers")]
    assert texts == [f"{unrated['health_reference']}; no peers drawn"]


def test_a_parcel_not_measured_says_why_rather_than_drawing_a_season_of_cloud(outputs, assessed) -> None:
    parcel = assessed.parcels.loc[assessed.parcels["status"] == "ok", "parcel_id"].iloc[0]
    labels, texts, (title,) = _panel_says(outputs, parcel, status="error", reason="OUTSIDE_IMAGERY", crop="unknown",
                                          priced_crop="maize", health_index=float("nan"),
                                          reason_text="The parcel lies outside the imagery for this season.")
    assert labels == []  # no series, no "no clear view of the parcel" markers
    assert texts == ["not measured (status error, OUTSIDE_IMAGERY): The parcel lies outside the imagery for this "
                     "season."]
    assert "seen" not in title and "unknown, no health index - OUTSIDE_IMAGERY" in title


def test_a_parcel_without_a_limit_worked_out_is_titled_with_why(outputs, assessed) -> None:
    """Referred on too little imagery, it read "refer, limit 0 CNY", as if a limit of 0 had been worked out."""
    parcel = assessed.parcels.loc[assessed.parcels["status"] == "ok", "parcel_id"].iloc[0]
    *_, (title,) = _panel_says(outputs, parcel, decision="refer", loan_limit=0.0, reason="FEW_CLEAR_OBSERVATIONS",
                               limit_arithmetic="no limit: too little clear imagery to grade its risk (refer: "
                                                "FEW_CLEAR_OBSERVATIONS)")
    assert ": refer, no limit: too little clear imagery to grade its risk; " in title and "limit 0" not in title


def test_a_title_without_a_limit_keeps_a_crop_named_in_brackets(outputs, assessed) -> None:
    """Cut at its first " (", "the declared crop (tea) never drops ..." read "no limit: the declared crop; tea, ..."."""
    parcel = assessed.parcels.loc[assessed.parcels["status"] == "ok", "parcel_id"].iloc[0]
    missing = "the declared crop (tea) never drops to bare land, so the imagery cannot measure it"
    *_, (title,) = _panel_says(outputs, parcel, decision="refer", loan_limit=0.0, reason="PERENNIAL_NOT_MEASURED",
                               limit_arithmetic=f"no limit: {missing} (refer: PERENNIAL_NOT_MEASURED)")
    assert f": refer, no limit: {missing}; " in title


def test_parcels_are_drawn_in_their_colours_holes_open_every_part_and_a_kept_line_too() -> None:
    """All polygons go in one collection of paths (geopandas made a patch each: 17-29 s of a 100,016 parcels'
    preview, now 5-6 s): a hole stays open whichever way its ring turns, each part of a multipolygon takes its
    parcel's colour, and a line an erroneous parcel kept is drawn too."""
    import matplotlib.pyplot as plt
    import numpy as np
    from shapely.geometry import LineString, MultiPolygon, Polygon, box

    from farmcredit.outputs.preview import _draw_parcels

    shell = box(0, 0, 10, 10).exterior.coords
    holed = Polygon(shell, [box(3, 3, 7, 7).exterior.coords])  # the hole turns as its shell does
    assert holed.exterior.is_ccw == holed.interiors[0].is_ccw
    parts = MultiPolygon([box(12, 0, 16, 4), box(12, 6, 16, 10)])
    geometry = np.array([holed, parts, LineString([(20, 0), (20, 10)])], dtype=object)
    fig = plt.figure(figsize=(2.4, 1.0), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    try:
        _draw_parcels(ax, geometry, ["#ff0000", "#00a000", "#0000ff"], np.zeros(3, dtype=bool))
        ax.set_xlim(0, 24)
        ax.set_ylim(0, 10)
        ax.set_axis_off()
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)

        def at(x: float, y: float) -> np.ndarray:
            column, row = ax.transData.transform((x, y))
            return pixels[pixels.shape[0] - 1 - int(row), int(column)]
    finally:
        plt.close(fig)
    assert (at(5, 5) == 255).all()  # the hole
    red = at(1.5, 5)
    assert red[0] > 240 and red[1] < 90 and red[2] < 90
    for y in (2, 8):  # both parts of the multipolygon
        green = at(14, y)
        assert green[1] > green[0] + 60 and green[1] > green[2] + 60
    assert (at(14, 5) == 255).all()  # between them
    line = pixels[:, int(ax.transData.transform((20, 5))[0]) - 1 : int(ax.transData.transform((20, 5))[0]) + 2]
    assert (line[..., 2] - line[..., 0]).max() > 100  # the line, blue


def test_declines_are_hatched_and_filled_as_the_legend_shows_them() -> None:
    """Colour was the only cue, and at fill alpha 0.55 over imagery a deuteranope saw approve and decline 6.7 apart
    (CIEDE2000): declines are hatched on the map and in the legend, and each swatch is the parcels' own fill."""
    import matplotlib.pyplot as plt
    import numpy as np
    from shapely.geometry import box

    from farmcredit.outputs.preview import FILL_ALPHA, _draw_parcels, _legend
    from farmcredit.outputs.styles import DECISION_COLOURS

    fig = plt.figure(figsize=(2.0, 1.0), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    try:
        _draw_parcels(ax, np.array([box(0, 0, 9, 10), box(11, 0, 20, 10)], dtype=object),
                      [DECISION_COLOURS["approve"], DECISION_COLOURS["decline"]], np.array([False, True]))
        ax.set_xlim(0, 20)
        ax.set_ylim(0, 10)
        ax.set_axis_off()
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    finally:
        plt.close(fig)
    inside = pixels[20:80]
    plain, hatched = inside[:, 10:80], inside[:, 120:190]
    assert len(np.unique(plain.reshape(-1, 3), axis=0)) == 1  # a flat fill
    assert np.ptp(hatched.sum(axis=2)) > 60  # fill and hatch lines
    legend = _legend(pd.DataFrame({"decision": ["approve", "decline", "refer"], "status": ["ok", "ok", "error"]}))
    assert [patch.get_label() for patch in legend] == ["approve (1)", "refer to a loan officer (0)", "decline (1)",
                                                       "not assessed (error) (1)"]
    assert [patch.get_hatch() for patch in legend] == [None, None, "///", None]
    assert all(patch.get_facecolor()[3] == pytest.approx(FILL_ALPHA) for patch in legend)


def test_a_partly_clouded_date_is_drawn_hollow_apart_from_the_dates_the_decision_used(outputs, assessed) -> None:
    """A date under ``imagery.min_clear_share`` clear was drawn as a solid point of the parcel's line: a 0.74 peak on
    a 62%-clear date beside PEAK_NOT_OBSERVED. The run's own threshold (run.json) says which dates it used."""
    import geopandas as gpd
    import matplotlib.pyplot as plt

    from farmcredit.outputs.preview import _ndvi_panel

    parcels = gpd.read_file(outputs / "results.gpkg", layer="parcels")
    series = pd.read_parquet(outputs / "ndvi_series.parquet")
    focus = parcels[parcels["status"] == "ok"].iloc[0]
    mine = series.index[(series["parcel_id"] == focus["parcel_id"]) & series["ndvi_mean"].notna()]
    series.loc[mine[0], "clear_share"] = 0.62
    partial_day = pd.Timestamp(series.loc[mine[0], "date"])

    def drawn(min_clear_share: float) -> dict[str, list[pd.Timestamp]]:
        record = {"config": {"values": {"imagery": {"min_clear_share": min_clear_share}}}}
        fig, ax = plt.subplots()
        try:
            _ndvi_panel(ax, series, parcels, focus, record)
            return {line.get_label(): [pd.Timestamp(day) for day in line.get_xdata()] for line in ax.get_lines()}
        finally:
            plt.close(fig)

    line = f"parcel {focus['parcel_id']}: NDVI over its cropland"
    lines = drawn(0.8)
    assert partial_day not in lines[line]
    assert lines["partly clouded (not used: under 80% clear)"] == [partial_day]
    lines = drawn(0.6)  # a run that took 60% clear as a view used it
    assert partial_day in lines[line]
    assert not [label for label in lines if label.startswith("partly clouded")]


def test_the_footer_names_the_run_and_says_dates_are_utc_days(outputs, tmp_path, monkeypatch) -> None:
    """The footer said only "farmcredit results: run/": a printed preview could not be traced to its run.json."""
    import json

    from farmcredit.outputs import preview

    record = json.loads((outputs / "run.json").read_text(encoding="utf-8"))
    footers = []
    save = preview.Figure.savefig
    monkeypatch.setattr(preview.Figure, "savefig",
                        lambda fig, *args, **kwargs: (footers.extend(t.get_text() for t in fig.texts),
                                                      save(fig, *args, **kwargs)))
    render_preview(outputs, tmp_path / "p.png")
    (footer,) = [text for text in footers if text.startswith("farmcredit results")]
    assert f"run {run_id(record)} (farmcredit {record['code']['farmcredit']} " in footer
    assert run_id(record).endswith(f"-{record['config']['hash'][:8]}")  # as the credit report names the run
    assert "imagery dates are UTC days" in footer


def test_drawing_a_preview_leaves_the_callers_matplotlib_backend_and_figures_alone(outputs, tmp_path) -> None:
    """Importing the outputs switched matplotlib to Agg (``matplotlib.use`` at import), and the previews were pyplot
    figures: in a notebook, inline plots stopped showing after ``write_outputs``."""
    script = f"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import farmcredit.batch, farmcredit.credit.report
from farmcredit.outputs import render_preview
render_preview({str(outputs)!r}, {str(tmp_path / "p.png")!r})
print(matplotlib.get_backend(), plt.get_fignums())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "svg []"
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG


def test_a_results_file_that_is_a_gdal_vrt_is_refused_before_gdal_reads_what_it_names(outputs: Path,
                                                                                        tmp_path: Path) -> None:
    """A results folder handed back with results.gpkg swapped for a GDAL VRT (XML naming another file or a URL) made
    preview read what it named: it is refused by content, as parcels and band files are."""
    from farmcredit.errors import InputError

    handed = tmp_path / "handed"
    shutil.copytree(outputs, handed)
    elsewhere = tmp_path / "elsewhere.gpkg"
    shutil.move(handed / "results.gpkg", elsewhere)
    (handed / "results.gpkg").write_text(
        f'<OGRVRTDataSource><OGRVRTLayer name="parcels"><SrcDataSource>{elsewhere}</SrcDataSource>'
        "<SrcLayer>parcels</SrcLayer></OGRVRTLayer></OGRVRTDataSource>")
    with pytest.raises(InputError, match=r"results.gpkg is a GDAL VRT .*, not a GeoPackage file"):
        render_preview(handed, tmp_path / "preview.png")
