"""The risk committee's report: PSI, size bands, four-fifths screen, calibration, rendering, errors."""

import html
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import shapely

from farmcredit.credit import report
from farmcredit.credit.report import (
    PSI_EPSILON,
    borrower_changes,
    calibration_table,
    credit_report,
    fairness_table,
    load_results,
    parcel_changes,
    population_stability_index,
    psi_reading,
    size_band,
)
from farmcredit.errors import InputError
from farmcredit.reasons import REASONS


def _results(n: int = 60, seed: int = 0, **columns: object) -> pd.DataFrame:
    """A small results table as ``farmcredit assess`` writes it; ``columns`` override or add."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(0.05, 1.5, n)
    probability = rng.uniform(0.0, 0.3, n)
    table = pd.DataFrame(
        {
            "parcel_id": [f"P{k}" for k in range(n)],
            "borrower_id": [f"B{k // 2}" for k in range(n)],
            "status": "ok",
            "decision": "approve",
            "loan_limit": np.floor(area * 5000),
            "risk_grade": np.select([probability < 0.03, probability < 0.06, probability < 0.1, probability < 0.2],
                                    ["A", "B", "C", "D"], "E"),
            "polygon_area_ha": area,
            "cultivated_area_ha": area * 0.9,
            "crop": "wheat",
            "health_index": rng.uniform(0, 100, n),
            "clear_observations": 8,
            "yield_p10_t_ha": 4.0,
            "reason": rng.choice(["", "PARTLY_CULTIVATED", "AREA_OVERSTATED;LOW_HEALTH_VS_PEERS"], n),
            "probability_of_default": probability,
        }
    )
    for name, values in columns.items():
        table[name] = values
    return table


def test_psi_of_identical_distributions_is_zero_even_with_ties() -> None:
    values = np.r_[np.zeros(30), np.arange(70.0)]  # a point mass of zero limits, as declines give
    assert population_stability_index(values, values) == 0.0
    assert population_stability_index(values, values[::-1]) == 0.0


def test_psi_matches_a_hand_computation() -> None:
    reference = np.arange(1000.0)  # deciles put 100 values in each of 10 bins
    current = np.r_[reference, np.arange(100.0)]  # the first bin doubles: 200 of 1100
    expected = (2 / 11 - 0.1) * np.log((2 / 11) / 0.1) + 9 * (1 / 11 - 0.1) * np.log((1 / 11) / 0.1)
    assert population_stability_index(reference, current) == pytest.approx(expected, rel=1e-12)


def test_psi_counts_empty_bins_as_epsilon() -> None:
    reference = np.arange(1000.0)
    current = np.r_[np.zeros(500), np.full(500, 999.0)]  # half in the first bin, half in the last
    expected = 2 * (0.5 - 0.1) * np.log(0.5 / 0.1) + 8 * (PSI_EPSILON - 0.1) * np.log(PSI_EPSILON / 0.1)
    assert population_stability_index(reference, current) == pytest.approx(expected, rel=1e-12)
    assert psi_reading(population_stability_index(reference, current)) == "major shift"


def test_psi_gives_missing_values_a_bin_of_their_own() -> None:
    reference = np.arange(1000.0)
    current = np.r_[np.arange(0.0, 1000.0, 10 / 9), np.full(100, np.nan)]  # 900 spread evenly, 100 missing
    shares = np.histogram(current[:900], bins=[-np.inf, *np.quantile(reference, np.linspace(0.1, 0.9, 9)), np.inf])[0]
    actual = np.r_[shares / 1000, 0.1]
    expected_shares = np.r_[np.full(10, 0.1), PSI_EPSILON]
    expected = np.sum((actual - expected_shares) * np.log(actual / expected_shares))
    assert population_stability_index(reference, current) == pytest.approx(expected, rel=1e-12)


def test_psi_readings_follow_the_usual_thresholds() -> None:
    assert [psi_reading(v) for v in (0.0, 0.099, 0.1, 0.25, 0.26)] == [
        "stable", "stable", "moderate shift", "moderate shift", "major shift"]
    assert psi_reading(population_stability_index([np.nan], [1.0])) == "not computable"


def test_size_bands_include_their_lower_bound_at_0_1_ha_and_10_mu() -> None:
    bands = size_band([0.0999, 0.1, 0.6666, 10 / 15, 0.6667, 5.0, np.nan]).astype(str).tolist()
    assert bands == ["< 0.1 ha", "0.1-0.67 ha", "0.1-0.67 ha", ">= 0.67 ha", ">= 0.67 ha", ">= 0.67 ha", "unknown"]


def test_four_fifths_screen_flags_a_band_approved_below_80_percent_of_the_best() -> None:
    area = np.r_[np.full(10, 0.05), np.full(10, 0.3), np.full(10, 1.0)]
    # Small parcels approved 5/10, middle 10/10, large 8/10 (exactly 4/5 of the best: not flagged).
    decision = ["approve"] * 5 + ["refer"] * 5 + ["approve"] * 10 + ["approve"] * 8 + ["decline"] * 2
    table = _results(30, polygon_area_ha=area, decision=decision)
    bands = fairness_table(table)
    assert bands["parcels"].tolist() == [10, 10, 10]
    assert bands["approval_rate"].tolist() == [0.5, 1.0, 0.8]
    assert bands["refer_rate"].tolist() == [0.5, 0.0, 0.0]
    assert bands["impact_ratio"].tolist() == pytest.approx([0.5, 1.0, 0.8])
    assert bands["below_four_fifths"].tolist() == [True, False, False]


def test_fairness_by_region_and_limit_per_cultivated_ha() -> None:
    table = _results(4, region=["north", "north", "south", "south"],
                     decision=["approve", "decline", "approve", "approve"],
                     loan_limit=[1000.0, 0.0, 500.0, 700.0], cultivated_area_ha=[0.5, 0.4, 0.25, 0.35])
    regions = fairness_table(table, "region")
    assert regions.index.tolist() == ["north", "south"]
    assert regions["mean_approved_limit"].tolist() == [500.0, 600.0]
    # The declined parcel's area does not dilute the limit per hectare.
    assert regions["limit_per_cultivated_ha"].tolist() == pytest.approx([2000.0, 2000.0])
    assert regions["below_four_fifths"].tolist() == [True, False]


@pytest.mark.parametrize(("regions", "font"), [(["河南", "黑龙江", "湖南"], "cjk_font"),
                                              (["पुणे", "नाशिक", "Pune"], "devanagari_font")])
def test_region_names_are_drawn_in_a_font_that_has_their_glyphs(regions: list[str], font: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    """Chinese and Hindi region names: only DejaVu and a CJK font were drawn in, so Hindi showed as boxes."""
    import warnings

    request.getfixturevalue(font)  # skipped without the font, failed under CI, which installs it
    table = _results(region=regions * 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        credit_report(table, out=tmp_path / "report.html")
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_a_character_no_font_has_is_told_once_in_the_tools_words(tmp_path: Path, caplog) -> None:
    """matplotlib's raw "Glyph ... missing from font(s)" warnings, with source paths, reached the console."""
    import logging
    import warnings

    table = _results(region=["\U00013000", "\U00013001", "north"] * 20)  # hieroglyphs: no listed font has them
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="farmcredit"):
        warnings.simplefilter("always")
        credit_report(table, out=tmp_path / "report.md", fmt="md")
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert caplog.text.count("have no glyph for") == 1
    assert "have no glyph for '\U00013000' (U+13000), '\U00013001' (U+13001), drawn as a box" in caplog.text


@pytest.mark.parametrize(("currency", "band"), [("INR", "0.1 ha to 0.67 ha,"), ("CNY", "0.1 ha to 10 mu (0.67 ha),")])
def test_the_size_bands_are_worded_in_mu_in_a_cny_run_alone(tmp_path: Path, currency: str, band: str) -> None:
    """An INR report read "0.1 ha to 10 mu (0.67 ha)": mu is China's unit."""
    table = _results()
    table.attrs["currency"] = currency
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert band in text and ("mu" in text.split()) == (currency == "CNY")


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_dollar_signs_in_region_names_are_drawn_as_written(tmp_path: Path, drawn_text: list[str], fmt: str) -> None:
    """A region ``r$\\frac$`` stopped the whole report with a mathtext error; ``$x$`` drew an italic x."""
    regions = ["r$\\frac$", "$x$", "north"]
    credit_report(_results(region=regions * 20), out=tmp_path / f"report.{fmt}", fmt=fmt)
    assert set(regions) <= set(drawn_text)  # the fairness plot's ticks


def test_report_text_states_the_flag_is_a_screen_not_a_verdict(tmp_path: Path) -> None:
    area = np.r_[np.full(10, 0.05), np.full(10, 0.3)]
    table = _results(20, polygon_area_ha=area, decision=["decline"] * 6 + ["approve"] * 14)
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert "FLAG (screen, not a verdict): parcel size band &lt; 0.1 ha is approved at 40.0%" in text
    assert "This is a screen, not a verdict" in text
    assert "No region column" in text
    # assess writes a region column whether or not its input had one: empty, it is no region either.
    empty = credit_report(table.assign(region=None), out=tmp_path / "empty.md", fmt="md").read_text()
    assert "No region column" in empty and "no group was approved" not in empty
    half = credit_report(table.assign(region=[None] * 19 + ["north"]), out=tmp_path / "half.md", fmt="md").read_text()
    assert "No region column" not in half and "by region: no parcel of a known region" not in half
    # The only known region all declined, the approvals all of no region: none of a known region was approved.
    declined = table.assign(region=["north"] * 6 + [None] * 14)
    text = credit_report(declined, out=tmp_path / "declined.md", fmt="md").read_text()
    assert "by region: no parcel of a known region was approved, so there is nothing" in " ".join(text.split())


def test_html_report_is_self_contained_and_deterministic(tmp_path: Path) -> None:
    table, reference = _results(seed=1), _results(seed=2)
    first = credit_report(table, reference, out=tmp_path / "a" / "report.html")
    second = credit_report(table, reference, out=tmp_path / "b" / "report.html")
    text = first.read_text()
    assert text.count("data:image/png;base64,") == 5
    assert "http" not in text and ".png" not in text
    assert sorted(p.name for p in first.parent.iterdir()) == ["report.html"]
    assert first.read_bytes() == second.read_bytes()
    assert "No reference run given" not in text and "probability_of_default" in text
    assert "The runs differ in" not in text  # scored alike
    refit = reference.assign(risk_model_hash="b" * 64, config_hash="c" * 64)
    text = credit_report(table.assign(risk_model_hash="a" * 64, config_hash="c" * 64), refit,
                         out=tmp_path / "c" / "report.md", fmt="md").read_text()
    assert "The runs differ in risk model: a shift below may be the models' or settings', not the portfolio's." \
        in " ".join(text.split())


@pytest.mark.parametrize("renamed", [False, True])
def test_a_cropland_model_retrained_under_the_same_name_is_said_to_differ(tmp_path: Path, renamed: bool) -> None:
    """Training names a model after its file: a retrained one may keep the name, and only its hash tells."""
    table = _results(seed=1, model_version="cropland-cnn-v2.6", model_hash="a" * 16)
    reference = _results(seed=2, model_version="cropland-cnn-v2.7" if renamed else "cropland-cnn-v2.6",
                         model_hash="b" * 16)
    text = " ".join(credit_report(table, reference, out=tmp_path / "report.md", fmt="md").read_text().split())
    assert "The runs differ in cropland model: a shift below may be the models' or settings', not the portfolio's." \
        in text


def test_markdown_report_writes_and_links_its_pngs(tmp_path: Path) -> None:
    out = credit_report(_results(), out=tmp_path / "report.md", fmt="md")
    text = out.read_text()
    pngs = sorted(tmp_path.glob("*.png"))
    names = ("calibration", "fairness", "reasons", "summary")  # no stability plot without a reference
    assert [p.name for p in pngs] == [f"report-{name}.png" for name in names]
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG") and f"](<{png.name}>)" in text
    assert "No reference run given" in text
    assert "| &lt; 0.1 ha |" in text and "## 4. Calibration" in text


def test_the_reason_codes_section_says_what_each_code_in_it_means(tmp_path: Path) -> None:
    """The codes were counted by name only: a committee reading DECLARED_AREA_RISK had no sentence saying what it is.
    Each code the report counts is glossed with its sentence, escaped as the report's other text; no other is. A code
    this version does not define (an older run's, a hand-edited file's) is said to be one: it was left unglossed."""
    reason = ["DECLARED_AREA_RISK", "IMPOSSIBLE_COORDINATES", "NOT_A_FARMCREDIT_CODE", ""] * 5
    table = _results(20, reason=reason)
    page = credit_report(table, out=tmp_path / "report.html").read_text()
    for code in ("DECLARED_AREA_RISK", "IMPOSSIBLE_COORDINATES"):
        assert f"<li>{code}: {html.escape(REASONS[code].sentence)}</li>" in page
    assert "&#x27;" in page  # IMPOSSIBLE_COORDINATES' "parcel's", escaped
    assert f"{REASONS['CAP_REACHED'].sentence}" not in page
    unknown = "NOT_A_FARMCREDIT_CODE: not a farmcredit reason code in this version"
    assert f"<li>{unknown}, so what it means is not known here" in page
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert f"- DECLARED_AREA_RISK: {REASONS['DECLARED_AREA_RISK'].sentence}\n" in text
    assert f"- IMPOSSIBLE_COORDINATES: {REASONS['IMPOSSIBLE_COORDINATES'].sentence}\n" in text
    assert f"- {unknown}" in text


def test_region_names_render_in_markdown_as_written_one_table_row_each(tmp_path: Path) -> None:
    """Only ``|`` was escaped: a region ``<img ... onerror=...>`` went into report.md as HTML, and one holding a line
    break split its row of the table, the rest of the name read as a row of its own."""
    from markdown_it import MarkdownIt

    regions = ["<img src=x onerror=alert(document.domain)>", "north\n| injected | 99.9% |",
               "*a* _b_ `c` [d](e) $f$ ~~g~~ h\\i &amp; PARTLY_CULTIVATED"]
    decisions = ["approve"] * 20 + ["decline"] * 10 + ["approve"] * 10 + ["approve"] * 20
    table = _results(region=[name for name in regions for _ in range(20)], decision=decisions)
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert "<img" not in text
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)
    assert not [token for token in tokens if token.type.startswith("html")]
    inline = [token for token in tokens if token.type == "inline"]
    marks = {child.type for token in inline for child in token.children} - {"text", "softbreak", "image"}
    assert marks == {"hardbreak", "strong_open", "strong_close"}  # the intro's line ends, the tables' captions
    said = ["".join(child.content for child in token.children) for token in inline]
    as_written = sorted(name.replace("\n", " ") for name in regions)
    caption = said.index("Parcel signals by region (not the credit decision)")
    rows = said[caption + 1:]
    rows = rows[:rows.index("Approval and refer rates")]  # the table's cells, the image's alt text after them
    # The header, then a row a region: it and its 9 measures.
    assert len(rows) == 10 * 4 and rows[::10] == ["region", *as_written]
    assert said[caption - 1].startswith(f"FLAG (screen, not a verdict): region {as_written[2]} is approved at 50.0%, "
                                        f"0.50 of the best region ({as_written[0]}, 100.0%).")
    assert "h\\\\i &amp;amp; PARTLY_CULTIVATED |" in text  # an underscore inside a word is left as it is


def test_markdown_images_of_a_report_named_with_a_space_render(tmp_path: Path) -> None:
    from markdown_it import MarkdownIt

    out = credit_report(_results(), out=tmp_path / "报告 (2).md", fmt="md")
    tokens = MarkdownIt().parse(out.read_text())
    images = [child.attrs["src"] for token in tokens if token.children for child in token.children
              if child.type == "image"]
    assert len(images) == 4 and all((tmp_path / unquote(src)).is_file() for src in images)


def test_a_markdown_report_leaves_no_image_of_an_earlier_one_beside_it(tmp_path: Path) -> None:
    credit_report(_results(), _results(seed=5), out=tmp_path / "report.md", fmt="md")
    assert (tmp_path / "report-stability.png").is_file()
    (tmp_path / "report-2-summary.png").write_bytes(b"another report's")  # by its pattern, not this report's
    credit_report(_results(), out=tmp_path / "report.md", fmt="md")  # no reference: no stability plot
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "report-2-summary.png", "report-calibration.png", "report-fairness.png", "report-reasons.png",
        "report-summary.png"]


def test_calibration_with_observed_defaults() -> None:
    table = _results(6, risk_grade=["A", "A", "B", "B", "B", "E"], status=["ok"] * 5 + ["error"],
                     probability_of_default=[0.02, 0.04, 0.05, 0.05, 0.08, np.nan], defaulted=[0, 1, 0, 0, 1, 0])
    grades = calibration_table(table)
    assert grades.index.tolist() == ["A", "B"]  # the error row's rule-set grade E is left out
    assert grades["parcels"].tolist() == [2, 3]
    assert grades["mean_pd"].tolist() == pytest.approx([0.03, 0.06])
    assert grades["default_rate"].tolist() == pytest.approx([0.5, 1 / 3])
    deciles = calibration_table(table, "pd_decile")
    assert deciles["parcels"].sum() == 5 and deciles["defaults"].sum() == 2
    assert deciles["pd_min"].is_monotonic_increasing
    assert deciles.index.tolist() == list(range(1, len(deciles) + 1))  # tied deciles merge without gaps


def test_the_calibration_section_counts_the_parcels_without_a_grade_by_why(tmp_path: Path) -> None:
    """Errors, parcels referred for too few clear images (cultivated or not: no health, yield or PD), parcels whose
    clear images, however many, missed their crop's green or peak weeks, parcels mostly off the imagery, parcels with
    nothing cultivated, each counted under the first that applies. A perennial the cropland models cannot measure
    was counted as missing its green weeks, and an unsure call on an unpriced declaration (health and yield measured,
    the grade withheld) as having no health or yield measured: each is counted as what it is."""
    table = _results()
    table.loc[:2, "status"], table.loc[3:11, "risk_grade"] = "error", None
    table.loc[3:4, "reason"] = ["NO_CLEAR_OBSERVATIONS;AREA_OVERSTATED", "FEW_CLEAR_OBSERVATIONS;NOT_CULTIVATED"]
    table.loc[4:6, "crop"], table.loc[5:6, "reason"] = "fallow", "NOT_CULTIVATED"
    table.loc[7:11, "reason"] = ["PARTLY_CULTIVATED", "PEAK_NOT_OBSERVED;AREA_OVERSTATED",
                                 "MOSTLY_OUTSIDE_IMAGERY;CROP_MISMATCH", "PERENNIAL_NOT_MEASURED",
                                 "UNDETERMINED_DECLARED_CROP;LOW_HEALTH_VS_PEERS"]
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert (f"Left out: 12 of {len(table)} parcels without a risk grade: 3 not assessed, status error; "
            "2 referred, too few clear images to grade their risk; 1 referred, mostly off the imagery; "
            "1 referred, their declared crop never drops to bare land, so the imagery cannot measure it; "
            "1 referred, declaring a crop the configuration does not price over an unsure call of what grows there; "
            "1 referred, no clear image reading their crop's green weeks bare, or its peak; "
            "2 with nothing cultivated to lend on; "
            "1 with no health or yield measured.") in " ".join(text.split())


def test_land_declared_fallow_under_an_unsure_call_is_counted_as_such_not_as_unmeasured(tmp_path: Path) -> None:
    """A parcel declared fallow (休耕) whose crop call is unsure has its grade withheld (CROP_MISMATCH, no
    UNDETERMINED_DECLARED_CROP): it was counted as having no health or yield measured. Under its run's
    ``crop_min_confidence`` (0.6 here) it is counted as what it is; over it (0.65), or declared a priced crop, not."""
    table = _results(8, declared_crop="wheat", crop_confidence=0.9)
    table.loc[:2, "risk_grade"], table.loc[:2, "reason"] = None, "CROP_MISMATCH"
    table.loc[:2, "declared_crop"], table.loc[:2, "crop"] = ["休耕", "fallow", "fallow"], "maize"
    table.loc[:2, "crop_confidence"] = [0.55, 0.51, 0.65]
    table.attrs["crop_min_confidence"] = 0.6
    text = " ".join(credit_report(table, out=tmp_path / "report.md", fmt="md").read_text().split())
    assert ("Left out: 3 of 8 parcels without a risk grade: 2 referred, declared fallow over an unsure call of a "
            "crop; 1 with no health or yield measured.") in text


def test_calibration_without_outcomes_reports_predicted_pd_only(tmp_path: Path) -> None:
    table = _results()
    grades = calibration_table(table)
    assert "default_rate" not in grades and grades["parcels"].sum() == len(table)
    assert len(calibration_table(table, "pd_decile")) == 10
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert "No defaulted column (not a back-test): predictions only" in text
    assert "observed default rate" not in text


def test_without_pd_the_report_uses_grades_and_health_index(tmp_path: Path) -> None:
    table = _results().drop(columns="probability_of_default")
    with pytest.raises(InputError, match="probability_of_default"):
        calibration_table(table, "pd_decile")
    text = credit_report(table, _results(seed=5), out=tmp_path / "report.md", fmt="md").read_text()
    assert "predicted PD is not available" in text
    assert "| health_index |" in text and "health_index stands in" in text


def test_a_run_with_no_parcel_graded_keeps_pd_for_stability_and_says_why_nothing_is_calibrated(
        tmp_path: Path) -> None:
    """Every parcel referred for too little imagery: PD is still the column compared (all missing, in the missing
    bin), and the calibration section says no parcel was graded instead of drawing an empty table and chart."""
    ungraded = _results(risk_grade=None, probability_of_default=np.nan, health_index=np.nan, decision="refer",
                        loan_limit=0.0, reason="FEW_CLEAR_OBSERVATIONS")
    text = " ".join(credit_report(ungraded, _results(seed=5), out=tmp_path / "report.md", fmt="md").read_text()
                    .split())
    assert "stands in" not in text and "| probability_of_default | " in text and "| health_index |" not in text
    assert (f"No parcel was graded: {len(ungraded)} referred, too few clear images to grade their risk. "
            "There is nothing to calibrate.") in text
    assert "By risk grade" not in text and "counts by grade only" not in text
    assert not (tmp_path / "report-calibration.png").exists()


def test_missing_columns_and_empty_tables_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"results table lacks required column\(s\): risk_grade, reason"):
        credit_report(_results().drop(columns=["risk_grade", "reason"]), out=tmp_path / "r.html")
    with pytest.raises(InputError, match="reference table lacks required column"):
        credit_report(_results(), _results().drop(columns="loan_limit"), out=tmp_path / "r.html")
    with pytest.raises(InputError, match="no parcels"):
        credit_report(_results().iloc[:0], out=tmp_path / "r.html")
    with pytest.raises(InputError, match="'defaulted' must be 0 or 1"):
        credit_report(_results(defaulted=2), out=tmp_path / "r.html")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    for fmt, out in (("html", tmp_path / "folder"), ("html", tmp_path / "file" / "r.html"),
                     ("md", tmp_path / "file" / "r.md")):
        with pytest.raises(InputError, match=f"cannot write the report to {out}") as refused:
            credit_report(_results(), out=out, fmt=fmt)
        assert out.parent.name != "file" or f"{tmp_path / 'file'} is a file, not a folder" in str(refused.value)


def test_the_report_names_each_runs_season(tmp_path: Path) -> None:
    """Two runs of different seasons were compared with no hint of either: the header gives each run's first and last
    imagery date, and the season asked for where its run.json records one."""
    runs = {"2024": {"season_dates": ["2024-03-15", "2024-10-20"], "season_requested": "2024-03-01/2024-10-31"},
            "2023": {"season_dates": ["2023-04-02", "2023-09-30"], "season_requested": None}}
    for name, record in runs.items():
        (tmp_path / name).mkdir()
        _results().to_parquet(tmp_path / name / "results.parquet", index=False)
        (tmp_path / name / "run.json").write_text(json.dumps(record))
    results, reference = load_results(tmp_path / "2024"), load_results(tmp_path / "2023")
    for fmt in ("md", "html"):
        text = credit_report(results, reference, out=tmp_path / f"report.{fmt}", fmt=fmt).read_text()
        assert "imagery 2024-03-15 to 2024-10-20, season asked for: 2024-03-01/2024-10-31" in text
        assert "imagery 2023-04-02 to 2023-09-30, season asked for: none (all dates)" in text


def test_load_results_reads_a_folder_and_csv(tmp_path: Path) -> None:
    from farmcredit.spreadsheet import write_csv

    # Ids as assess writes them to results.csv: formula-like ones after a spreadsheet's quote mark.
    table = _results(parcel_id=["=X", "+86 138 0000", *(f"{k:03d}" for k in range(2, 60))],
                     borrower_id=["-B0", *(f"B{k // 2}" for k in range(1, 60))])
    table.to_parquet(tmp_path / "results.parquet", index=False)
    write_csv(table, tmp_path / "results.csv")
    from_folder = load_results(tmp_path)
    from_csv = load_results(tmp_path / "results.csv")
    assert from_folder.attrs["source"] == str(tmp_path / "results.parquet")
    assert from_csv["parcel_id"].tolist() == table["parcel_id"].tolist()  # the mark taken off; "002" stays a string
    assert from_csv["borrower_id"].tolist() == table["borrower_id"].tolist()
    assert from_csv["reason"].fillna("").tolist() == table["reason"].tolist()
    text = credit_report(from_folder, from_csv, out=tmp_path / "report.md", fmt="md").read_text()
    assert str(tmp_path / "results.parquet") in text and "| loan_limit | 0.0000 | stable |" in text


def test_load_results_names_the_file_it_cannot_use(tmp_path: Path) -> None:
    broken = tmp_path / "results.parquet"
    broken.write_bytes(b"not a parquet file")
    with pytest.raises(InputError, match=f"cannot read results file {broken}"):
        load_results(broken)
    with pytest.raises(InputError, match="does not exist"):
        load_results(tmp_path / "missing.csv")
    (tmp_path / "results.txt").write_text("parcel_id\n")
    with pytest.raises(InputError, match="expected an output folder"):
        load_results(tmp_path / "results.txt")
    partial = tmp_path / "partial.csv"
    _results().drop(columns="decision").to_csv(partial, index=False)
    with pytest.raises(InputError, match=f"results file {partial} lacks required column\\(s\\): decision"):
        load_results(partial)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=f"{tmp_path / 'empty' / 'results.parquet'} does not exist$"):
        load_results(tmp_path / "empty")
    # A folder of the CSV copies alone (results.parquet not copied) was refused for lacking the Parquet file, not
    # saying the CSV beside it reads: it is named to give instead.
    _results().to_csv(tmp_path / "empty" / "results.csv", index=False)
    with pytest.raises(InputError, match=re.escape(
            f"results file {tmp_path / 'empty' / 'results.parquet'} does not exist; {tmp_path / 'empty'} holds "
            f"{tmp_path / 'empty' / 'results.csv'}: give that file instead")):
        load_results(tmp_path / "empty")
    assert len(load_results(tmp_path / "empty" / "results.csv")) == len(_results())
    from click.testing import CliRunner

    from farmcredit.cli import cli
    usage = " ".join(CliRunner().invoke(cli, ["credit", "report", "--help"]).output.split())
    assert "RESULTS is an assess or batch output folder (its results.parquet is read) or a results file: " \
           "results.parquet, results.csv or results.gpkg" in usage
    gbk = tmp_path / "gbk.csv"  # as Excel saves a CSV on Chinese Windows
    _results(borrower_id="张三").to_csv(gbk, index=False, encoding="gbk")
    with pytest.raises(InputError, match=f'results file {gbk} is not UTF-8 text .*; save it in Excel as "CSV UTF-8 '
                                         r'\(逗号分隔\)\(\*\.csv\)"'):
        load_results(gbk)


def test_results_cut_short_are_refused_naming_the_file(tmp_path: Path) -> None:
    """A results.csv cut at half its bytes was reported on: half the parcels, its last row half empty and counted. A
    CSV not ending in a line break or with a row short of fields is refused, and so are results whose rows are not
    the parcels the run.json beside them counts (a CSV cut at a row's end, or a table edited)."""
    from farmcredit.spreadsheet import write_csv

    write_csv(_results(), tmp_path / "whole.csv")
    text = (tmp_path / "whole.csv").read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(text[: len(text) // 2])
    with pytest.raises(InputError, match=f"results file {cut} does not end with a line break: it was cut short"):
        load_results(cut)
    lines = text.split(b"\r\n")
    short = tmp_path / "short.csv"
    short.write_bytes(b"\r\n".join([*lines[:3], lines[3].rsplit(b",", 5)[0], *lines[4:]]))
    with pytest.raises(InputError, match=f"results file {short} has 9 fields on line 4 where its header has 14"):
        load_results(short)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"counts": {"parcels": 60}}))
    _results(40).to_parquet(tmp_path / "run" / "results.parquet", index=False)
    (tmp_path / "run" / "results.csv").write_bytes(b"\r\n".join(lines[:41]) + b"\r\n")
    for name in ("results.parquet", "results.csv"):
        file = tmp_path / "run" / name
        with pytest.raises(InputError, match=f"results file {file} holds 40 rows where the run wrote 60"):
            load_results(file)
    assert len(load_results(tmp_path / "whole.csv")) == 60  # no run.json beside it: nothing to count against


def test_a_run_json_cut_short_is_refused_naming_it_and_results_without_one_still_load(tmp_path: Path) -> None:
    """A run.json cut short by a copy that did not finish was read as none: results cut to 40 of 60 rows were reported
    (exit 0, the currency and season lost) where the whole run.json refused them. It is refused naming it, as preview
    refuses it; results copied without one still load."""
    record = json.dumps({"counts": {"parcels": 60}, "config": {"hash": "c1", "values": {}}}, indent=2)
    _results(40).to_parquet(tmp_path / "results.parquet", index=False)
    (tmp_path / "run.json").write_text(record[: len(record) // 2])
    with pytest.raises(InputError, match=f"{tmp_path / 'run.json'}: does not read as farmcredit wrote it"):
        load_results(tmp_path)
    (tmp_path / "run.json").write_text("[1, 2]")  # JSON, but not an audit record
    with pytest.raises(InputError, match="not an object"):
        load_results(tmp_path)
    (tmp_path / "run.json").unlink()
    assert len(load_results(tmp_path)) == 40


def _assess(small_season, out: Path, season: str) -> None:
    done = subprocess.run([sys.executable, "-m", "farmcredit", "assess", str(small_season.parcels_path), "--imagery",
                           str(small_season.imagery_dir), "--model", "rule", "--season", season, "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def _report(results: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farmcredit", "credit", "report", str(results), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)


def test_a_folder_holding_two_runs_tables_is_refused_naming_them(small_season, tmp_path: Path) -> None:
    """A write killed just after results.parquet was rewritten (a full-season rerun over a spring one), its folder
    copied without the unfinished marker, was reported as one run: parcels of the new run, borrowers of the old. The
    borrowers table, and run.json, must name the run the parcels do (models, configuration, season), or exit 2 naming
    both files; a whole folder, and results copied without run.json, still report."""
    spring, full = tmp_path / "spring", tmp_path / "full"
    _assess(small_season, spring, "2024-03-01/2024-06-30")
    _assess(small_season, full, "2024-03-01/2024-10-31")
    assert _report(full, tmp_path / "whole.html").returncode == 0
    mixed = tmp_path / "mixed"
    shutil.copytree(full, mixed)
    shutil.copy(spring / "borrowers.parquet", mixed / "borrowers.parquet")
    (mixed / "run.json").unlink()  # the write removes it first and writes it last
    done = _report(mixed, tmp_path / "mixed.html")
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert (f"results file {mixed / 'results.parquet'} and {mixed / 'borrowers.parquet'} are not of one run "
            "(season_end 2024-10-31 against 2024-06-30)") in said
    shutil.copy(spring / "run.json", mixed / "run.json")
    shutil.copy(full / "borrowers.parquet", mixed / "borrowers.parquet")
    done = _report(mixed, tmp_path / "mixed.html")
    assert done.returncode == 2, done.stderr
    assert "and the run.json beside it are not of one run (season_end 2024-10-31 against 2024-06-30)" in " ".join(
        done.stderr.split())
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in ("results.csv", "borrowers.csv"):
        shutil.copy(full / name, copied / name)
    assert _report(copied / "results.csv", tmp_path / "copied.html").returncode == 0
    shutil.copy(spring / "borrowers.csv", copied / "borrowers.csv")
    done = _report(copied / "results.csv", tmp_path / "copied.html")
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and f"and {copied / 'borrowers.csv'} are not of one run" in said


def test_limits_are_labelled_in_the_currency_of_their_run(tmp_path: Path) -> None:
    """The currency comes from the run.json beside the results; a reference in another currency is refused."""
    import json

    for name, currency in (("usd", "USD"), ("cny", "CNY"), ("bare", None), ("older", " cny")):
        (tmp_path / name).mkdir()
        _results().to_csv(tmp_path / name / "results.csv", index=False)
        if currency:
            run = {"config": {"values": {"credit": {"currency": currency}}}}
            (tmp_path / name / "run.json").write_text(json.dumps(run))
    usd, cny, bare = (load_results(tmp_path / name / "results.csv") for name in ("usd", "cny", "bare"))
    text = credit_report(usd, out=tmp_path / "usd.md", fmt="md").read_text()
    assert "Limits are in USD" in text and "mean approved limit (USD)" in text and "CNY" not in text
    assert "Limits are in the run's currency" in credit_report(bare, out=tmp_path / "bare.md", fmt="md").read_text()
    assert "total of parcel limits (USD)" in credit_report(usd, bare, out=tmp_path / "u.md", fmt="md").read_text()
    with pytest.raises(InputError, match="in USD, the reference run's in CNY"):
        credit_report(usd, cny, out=tmp_path / "mixed.md", fmt="md")
    older = load_results(tmp_path / "older" / "results.csv")  # written before codes were read upper-cased
    assert "total of parcel limits (CNY)" in credit_report(cny, older, out=tmp_path / "o.md", fmt="md").read_text()


def test_a_run_lent_on_the_low_end_of_the_area_interval_says_so(tmp_path: Path) -> None:
    """Its limits were not worked from the cultivated area the tables show: the report says from what."""
    import json

    for name, lend_on in (("low", "low"), ("estimate", "estimate")):
        (tmp_path / name).mkdir()
        _results().to_csv(tmp_path / name / "results.csv", index=False)
        run = {"config": {"values": {"credit": {"currency": "CNY", "lend_on_area": lend_on}}}}
        (tmp_path / name / "run.json").write_text(json.dumps(run))
    low, estimate = (load_results(tmp_path / name / "results.csv") for name in ("low", "estimate"))
    said = "lent on the low end of each parcel's cultivated area interval (credit.lend_on_area: low)"
    assert f"This run {said}" in credit_report(low, estimate, out=tmp_path / "low.md", fmt="md").read_text()
    text = credit_report(estimate, low, out=tmp_path / "estimate.md", fmt="md").read_text()
    assert f"The reference run {said}" in text and f"This run {said}" not in text


def test_predicted_defaults_are_counted_over_the_parcels_whose_outcome_is_known(tmp_path: Path) -> None:
    """The back-test set expected defaults over every graded parcel against defaults over those with an outcome: a
    grade whose riskiest parcels had no outcome yet showed more expected than observed (29.9 against 27, where over
    the 85 with one it was 26.2)."""
    table = _results(4, risk_grade="E", probability_of_default=[0.2, 0.3, 0.4, 0.9], defaulted=[0, 1, 1, np.nan])
    grade = calibration_table(table).loc["E"]
    assert (grade["parcels"], grade["with_outcome"], grade["defaults"]) == (4, 3, 2)
    assert grade["expected_defaults"] == pytest.approx(0.9) and grade["mean_pd"] == pytest.approx(0.3)
    assert grade["mean_pd_all_graded"] == pytest.approx(0.45)
    decile = calibration_table(table, "pd_decile")
    assert decile["expected_defaults"].sum() == pytest.approx(0.9) and decile["mean_pd"].isna().sum() == 1
    # A decile with no outcome has no observed defaults either (n/a), not 0 beside its n/a expected ones.
    assert decile.loc[decile["with_outcome"] == 0, "defaults"].isna().all()
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert "| E | 4 | 45.0% | 30.0% | 0.9 | 3 | 2 | 66.7% |" in " ".join(text.split())


@pytest.fixture
def predicted_bars(monkeypatch: pytest.MonkeyPatch) -> list[list[float]]:
    """The heights of every bar series labelled 'predicted' drawn during the test (the calibration plot's)."""
    from matplotlib.axes import Axes

    drawn: list[list[float]] = []
    bar = Axes.bar

    def recording_bar(axis: Axes, x, height, *args, **kwargs):
        if kwargs.get("label") == "predicted":
            drawn.append([float(h) for h in height])
        return bar(axis, x, height, *args, **kwargs)

    monkeypatch.setattr(Axes, "bar", recording_bar)
    return drawn


def test_a_back_test_with_no_outcome_yet_shows_predictions_over_all_graded_parcels(
        tmp_path: Path, predicted_bars: list[list[float]]) -> None:
    """A defaulted column blank everywhere (loans not yet ended) showed every grade's and decile's mean predicted PD
    and expected defaults as n/a, and a calibration plot without bars."""
    table = _results(defaulted=np.nan)
    text = credit_report(table, out=tmp_path / "report.md", fmt="md").read_text()
    assert "No parcel has an outcome yet (defaulted is blank)" in text
    calibration = text.split("## 4. Calibration")[1].split("## 5.")[0]
    assert "n/a" not in calibration
    assert "mean predicted PD |" in calibration and "expected defaults |" in calibration
    assert len(predicted_bars) == 2 and all(h > 0 for bars in predicted_bars for h in bars)


def test_the_calibration_plot_shows_the_predicted_pd_of_a_grade_with_no_outcome_yet(
        tmp_path: Path, predicted_bars: list[list[float]]) -> None:
    table = _results()
    table["defaulted"] = np.where(table["risk_grade"].eq("A"), np.nan, table.index % 2)
    credit_report(table, out=tmp_path / "report.md", fmt="md")
    by_grade = predicted_bars[0]
    assert by_grade[0] == pytest.approx(table.loc[table["risk_grade"].eq("A"), "probability_of_default"].mean())


def _plot(k: int, shrink_m: float = 0.0) -> shapely.Polygon:
    """Plot ``k``: a 50 m square in UTM 50N, its east side moved in by ``shrink_m``."""
    west = 500_000 + 100 * k
    return shapely.box(west, 3_650_000, west + 50 - shrink_m, 3_650_050)


def _season(folder: Path, parcels: dict[str, tuple], borrowers: dict[str, tuple], crs: str = "EPSG:32650",
            **columns: list) -> Path:
    """A results folder as ``farmcredit assess`` writes it, cut to what the changes section reads: parcels
    ``{id: (borrower, declared ha, decision, limit, grade, outline in UTM 50N)}`` with ``columns`` besides (their
    values in the parcels' order), written in ``crs``, borrowers ``{id: (decision, limit, cultivated ha)}``."""
    import geopandas as gpd

    folder.mkdir()
    ids = list(parcels)
    borrower, declared, decision, limit, grade, outline = (list(column) for column in zip(*parcels.values()))
    table = _results(len(ids), parcel_id=ids, borrower_id=borrower, declared_area_ha=declared, decision=decision,
                     loan_limit=limit, risk_grade=grade, **columns)
    gpd.GeoDataFrame(table, geometry=outline, crs="EPSG:32650").to_crs(crs).to_parquet(folder / "results.parquet")
    pd.DataFrame({"borrower_id": list(borrowers), "decision": [b[0] for b in borrowers.values()],
                  "loan_limit": [b[1] for b in borrowers.values()],
                  "cultivated_area_ha": [b[2] for b in borrowers.values()]}).to_parquet(folder / "borrowers.parquet")
    return folder


@pytest.fixture
def two_seasons(tmp_path: Path) -> tuple[Path, Path]:
    """Last season and this: B1's approved limit falls 40%, B3 goes approve -> decline and gains P3 from B2 (gone),
    B4 goes approve -> refer; P1's declared area rises 0.2 -> 0.3 ha, P2 is redrawn (a side 4 m shorter), P5
    dropped, P6 added. Last season's outlines were exported in longitude and latitude: the same, not redrawn."""
    last = _season(tmp_path / "last", {
        "P1": ("B1", 0.2, "approve", 500.0, "A", _plot(1)), "P2": ("B1", 0.3, "approve", 500.0, "B", _plot(2)),
        "P3": ("B2", 0.4, "refer", 500.0, "C", _plot(3)), "P4": ("B3", 0.5, "approve", 800.0, "D", _plot(4)),
        "P5": ("B4", 0.1, "approve", 300.0, "E", _plot(5))},
        {"B1": ("approve", 1000.0, 1.0), "B2": ("refer", 500.0, 0.5), "B3": ("approve", 800.0, 0.8),
         "B4": ("approve", 300.0, 0.3)}, crs="EPSG:4326")
    this = _season(tmp_path / "this", {
        "P1": ("B1", 0.3, "approve", 300.0, "A", _plot(1)),
        "P2": ("B1", 0.3, "approve", 300.0, "C", _plot(2, shrink_m=4)),
        "P3": ("B3", 0.4, "decline", 0.0, None, _plot(3)), "P4": ("B3", 0.5, "decline", 0.0, "D", _plot(4)),
        "P6": ("B4", 0.2, "refer", 200.0, "B", _plot(6))},
        {"B1": ("approve", 600.0, 1.0), "B3": ("decline", 0.0, 1.3), "B4": ("refer", 200.0, 0.2)})
    return this, last


def test_borrower_changes_list_worse_decisions_and_falls_beyond_the_share(two_seasons: tuple[Path, Path]) -> None:
    this, last = (pd.read_parquet(folder / "borrowers.parquet") for folder in two_seasons)
    changes = borrower_changes(this, last)
    assert changes.loc["B1", "approved_limit_change"] == pytest.approx(-0.4)
    assert changes["change"].to_dict() == {
        "B1": "approved limit -40.0%", "B2": "", "B3": "decision approve -> decline; approved limit -100.0%",
        "B4": "decision approve -> refer; approved limit -100.0%; cultivated area -33.3%"}
    assert pd.isna(changes.loc["B2", "decision"])  # gone this season: counted in the matrix, not listed


def test_parcel_changes_find_added_dropped_moved_redrawn_and_redeclared(two_seasons: tuple[Path, Path]) -> None:
    this, last = (load_results(folder) for folder in two_seasons)
    outlines = [report._outlines_beside(folder / "results.parquet") for folder in two_seasons]
    changes = parcel_changes(this, last, *outlines)
    assert changes["change"].to_dict() == {"P1": "declared area changed", "P2": "redrawn",
                                           "P3": "moved to another borrower", "P5": "dropped", "P6": "added"}
    assert changes.loc["P3", ["reference_borrower_id", "borrower_id"]].tolist() == ["B2", "B3"]
    # Without outlines a redrawn parcel cannot be told.
    assert "P2" not in parcel_changes(this, last).index


def test_the_report_shows_changes_against_the_reference_run(two_seasons: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    """--reference gave PSI alone: a borrower gone from approve 4,400 to decline 0 read as "stable", never named."""
    this, last = (load_results(folder) for folder in two_seasons)
    out = credit_report(this, last, out=tmp_path / "report.md", fmt="md")
    text = out.read_text()
    changes = text.split("## 3.1 Changes against the reference run")[1].split("## 4.")[0]
    assert "| approve | 1 | 1 | 1 | 0 |" in changes and "| refer | 0 | 0 | 0 | 1 |" in changes  # decisions
    assert "| reference run | approve | refer | decline | (not in this run) |" in changes
    assert "| A | 1 | 0 | 0 | 0 | 0 | 0 | 0 |" in changes and "| C | 0 | 0 | 0 | 0 | 0 | 1 | 0 |" in changes  # grades
    assert "| E | 0 | 0 | 0 | 0 | 0 | 0 | 1 |" in changes
    assert "| (not in reference) | 0 | 1 | 0 | 0 | 0 | 0 | 0 |" in changes
    assert ("| B3 | decision approve -> decline; approved limit -100.0% | approve -> decline | 800 -> 0 | 800 -> 0 "
            "| 0.800 -> 1.300 | P3: moved to another borrower from B2 to B3 |") in changes
    assert "| B1 | approved limit -40.0% | approve -> approve | 1,000 -> 600 | 1,000 -> 600 | 1.000 -> 1.000 | P1: " \
           "declared area 0.200 -> 0.300 ha; P2: redrawn |" in changes
    assert "1 added, 1 dropped, 1 moved to another borrower, 1 redrawn, 1 declared area changed" in changes
    assert "| P3 | moved to another borrower | B2 -> B3 | 0.400 -> 0.400 | - -> - | refer -> decline |" in changes
    # The summary summed referred borrowers' limits, pending review, with the approved as 'limits offered'.
    summary = text.split("## 2.")[0]
    assert "| approved limits (the run's currency) | 600 | 2,100 |" in summary
    assert "| pending review: referred borrowers' limits (the run's currency) | 200 | 500 |" in summary
    assert "offered" not in summary
    stability = text.split("## 3. Stability")[1].split("## 3.1")[0]
    assert "| approved limits (the run's currency) | 2,100 | 600 | -71.4% |" in stability
    assert "| borrowers approved | 3 | 1 | -66.7% |" in stability
    assert "| pending review: referred borrowers' limits (the run's currency) | 500 | 200 | -60.0% |" in stability
    listed = pd.read_csv(tmp_path / "report-borrower-changes.csv", encoding="utf-8-sig")
    assert listed["borrower_id"].tolist() == ["B3", "B1", "B4"]  # the largest fall of approved limit first
    assert len(pd.read_csv(tmp_path / "report-parcel-changes.csv", encoding="utf-8-sig")) == 5
    credit_report(this, out=tmp_path / "report.md", fmt="md")  # no reference: no lists of another comparison
    assert not list(tmp_path.glob("*changes.csv"))


@pytest.mark.parametrize(("currency", "tolerance"), [
    ("ZMW", "(by more than 0.005 ha)"), (None, "(by more than 0.005 ha)"),
    ("CNY", "(by more than 0.005 ha, or 0.005 mu)")])
def test_the_declared_area_tolerance_names_the_mu_in_a_cny_run_alone(two_seasons: tuple[Path, Path], tmp_path: Path,
                                                                      currency: str | None, tolerance: str) -> None:
    """A ZMW run against a ZMW reference read "declared area changed (by more than 0.005 ha, or 0.005 mu)": mu is
    China's unit, named elsewhere only where both runs declare areas in mu (the appeal's runs, in no currency)."""
    this, last = (load_results(folder) for folder in two_seasons)
    for run in (this, last):
        run.attrs["currency"] = currency
    text = credit_report(this, last, out=tmp_path / "report.md", fmt="md").read_text()
    assert f"1 declared area changed {tolerance}," in text and ("mu" in text.split()) == (currency == "CNY")


def test_long_change_lists_are_cut_in_the_report_and_whole_in_the_csv(
        two_seasons: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "MAX_LISTED", 2)
    this, last = (load_results(folder) for folder in two_seasons)
    text = credit_report(this, last, out=tmp_path / "report.html").read_text()
    assert "The first 2 are shown; 1 more are in the CSV." in text and "The first 2 are shown; 3 more" in text
    assert "<td>B4</td>" not in text and "<td>P6</td>" not in text
    assert len(pd.read_csv(tmp_path / "report-borrower-changes.csv", encoding="utf-8-sig")) == 3


@pytest.fixture
def appeal(tmp_path: Path) -> tuple[Path, Path]:
    """A run before farmers' appeals and the run after: P1's declared crop maize -> rice takes B1 refer 500 ->
    approve 900; P3's 6 mu declared as 6.05 (0.0033 ha more) lifts B2's pending limit 400 -> 450; P5's region North
    -> South takes B4 decline -> refer; B3, nothing of it changed, falls 800 -> 700 with the run; B5 stays."""
    def run(name: str, crops: tuple[str, str], mu: float, region: str, decisions: tuple[str, ...],
            borrowers: dict[str, tuple]) -> Path:
        ids, owners = ["P1", "P2", "P3", "P4", "P5", "P6"], ["B1", "B1", "B2", "B3", "B4", "B5"]
        parcels = {parcel: (owner, area, decision, 100.0, "C", _plot(k))
                   for k, (parcel, owner, area, decision) in enumerate(zip(ids, owners, [0.2, 0.3, mu / 15, 0.5, 0.1,
                                                                                        0.4], decisions))}
        return _season(tmp_path / name, parcels, borrowers, declared_crop=[*crops, "wheat", "wheat", "wheat", "rice"],
                       declared_area_mu=[np.nan, np.nan, mu, np.nan, np.nan, np.nan],
                       region=["North", "North", "North", "North", region, "North"])

    last = run("before", ("maize", "rice"), 6.0, "North", ("refer", "refer", "refer", "approve", "decline", "refer"),
               {"B1": ("refer", 500.0, 0.5), "B2": ("refer", 400.0, 0.4), "B3": ("approve", 800.0, 0.5),
                "B4": ("decline", 0.0, 0.1), "B5": ("refer", 1000.0, 0.4)})
    this = run("after", ("rice", "rice"), 6.05, "South", ("approve", "approve", "refer", "approve", "refer", "refer"),
               {"B1": ("approve", 900.0, 0.5), "B2": ("refer", 450.0, 0.4), "B3": ("approve", 700.0, 0.5),
                "B4": ("refer", 0.0, 0.1), "B5": ("refer", 1000.0, 0.4)})
    return this, last


def test_parcel_changes_find_a_declared_crop_region_or_area_in_mu_changed(appeal: tuple[Path, Path]) -> None:
    """An appeal's corrected crop (maize -> rice, refer -> approve) was listed nowhere; nor a region, nor a declared
    mu within the hectares' tolerance."""
    this, last = (load_results(folder) for folder in appeal)
    changes = parcel_changes(this, last)
    assert changes["change"].to_dict() == {"P1": "declared crop changed", "P3": "declared area changed",
                                           "P5": "region changed"}
    assert changes["inputs_changed"].to_dict() == {"P1": "declared crop maize -> rice",
                                                   "P3": "declared area 6 -> 6.05 mu", "P5": "region North -> South"}
    assert changes.loc["P1", ["reference_declared_crop", "declared_crop"]].tolist() == ["maize", "rice"]


def test_borrower_changes_say_which_way_each_moved_and_what_its_parcels_declared_differently(
        appeal: tuple[Path, Path]) -> None:
    """Borrowers decided better, or whose limit moved less than the fall the report lists, were in no list."""
    this, last = (load_results(folder) for folder in appeal)
    lent = [pd.read_parquet(folder / "borrowers.parquet") for folder in appeal]
    changes = borrower_changes(*lent, parcel_changes(this, last))
    assert changes["direction"].to_dict() == {"B1": "better", "B2": "better", "B3": "lower", "B4": "better", "B5": ""}
    assert changes["change"].to_dict() == {"B1": "decision refer -> approve; limit +80.0%", "B2": "limit +12.5%",
                                           "B3": "limit -12.5%", "B4": "decision decline -> refer", "B5": ""}
    assert changes["parcel_inputs_changed"].to_dict() == {
        "B1": "P1: declared crop maize -> rice", "B2": "P3: declared area 6 -> 6.05 mu", "B3": "none",
        "B4": "P5: region North -> South", "B5": "none"}
    assert "parcel_inputs_changed" not in borrower_changes(*lent)


def test_the_report_lists_borrowers_decided_better_and_writes_every_changed_one_to_the_csv(
        appeal: tuple[Path, Path], tmp_path: Path) -> None:
    """An appeals run whose corrections each lifted a borrower showed them as counts in the decision matrix alone, and
    wrote no borrower CSV, as none was decided worse."""
    this, last = (load_results(folder) for folder in appeal)
    text = credit_report(this, last, out=tmp_path / "report.md", fmt="md").read_text()
    changes = text.split("## 3.1 Changes against the reference run")[1].split("## 4.")[0]
    assert "fell by more than 30%: 0." in changes
    assert ("Borrowers in both runs decided better or whose limit rose: 3. 1 more, decided the same with a lower "
            "limit (short of the falls listed above), are in the CSV alone.") in changes
    assert ("| B1 | decision refer -> approve; limit +80.0% | refer -> approve | 500 -> 900 | 0 -> 900 | 0.500 -> "
            "0.500 | P1: declared crop maize -> rice |") in changes
    assert "1 declared area changed (by more than 0.005 ha, or 0.005 mu), 1 declared crop changed, 1 region changed" \
        in changes
    assert "| P1 | declared crop changed | B1 -> B1 | 0.200 -> 0.200 | maize -> rice | refer -> approve |" in changes
    listed = pd.read_csv(tmp_path / "report-borrower-changes.csv", encoding="utf-8-sig")
    assert listed[["borrower_id", "direction"]].values.tolist() == [["B3", "lower"], ["B1", "better"],
                                                                    ["B2", "better"], ["B4", "better"]]
    assert listed["parcel_inputs_changed"].tolist() == ["none", "P1: declared crop maize -> rice",
                                                        "P3: declared area 6 -> 6.05 mu", "P5: region North -> South"]


def test_a_referred_borrowers_pending_limit_falling_past_the_share_is_listed_as_worse(tmp_path: Path) -> None:
    """A referral's pending limit falling 1,700 -> 0 read 'lower', 'short of the falls listed above', and was in the CSV
    alone: only its approved limit, 0 in both runs, was judged, while a pending limit that rose read 'better'."""
    def run(name: str, limits: tuple[float, float]) -> Path:
        parcels = {parcel: (borrower, 0.4, "refer", limit, "C", _plot(k))
                   for k, (parcel, borrower, limit) in enumerate(zip(("P1", "P2"), ("B1", "B2"), limits))}
        return _season(tmp_path / name, parcels, {borrower: ("refer", limit, 0.4)
                                                  for borrower, limit in zip(("B1", "B2"), limits)})

    this, last = run("this", (0.0, 900.0)), run("last", (1700.0, 1000.0))
    changes = borrower_changes(*(pd.read_parquet(folder / "borrowers.parquet") for folder in (this, last)))
    assert changes["direction"].to_dict() == {"B1": "worse", "B2": "lower"}
    assert changes["change"].to_dict() == {"B1": "limit -100.0%", "B2": "limit -10.0%"}
    assert changes["limit_change"].tolist() == pytest.approx([-1.0, -0.1])
    text = credit_report(load_results(this), load_results(last), out=tmp_path / "report.md", fmt="md").read_text()
    assert "decided worse or whose limit or cultivated area fell by more than 30%: 1." in text
    assert "| B1 | limit -100.0% | refer -> refer | 1,700 -> 0 | 0 -> 0 | 0.400 -> 0.400 | none |" in text
    assert "1 more, decided the same with a lower limit (short of the falls listed above), are in the CSV alone" in text
    # Approved at less than it had pending: decided better, its fall said.
    before = pd.DataFrame({"borrower_id": ["B1", "B2"], "decision": ["refer", "refer"], "loan_limit": [5000.0, 5000.0],
                           "cultivated_area_ha": [1.0, 1.0], "parcel_ids": ["P1", "P2"]})
    after = before.assign(decision=["approve", "approve"], loan_limit=[3000.0, 4000.0])
    approved = borrower_changes(after, before)
    assert approved["direction"].to_dict() == {"B1": "better", "B2": "better"}
    assert approved.loc["B1", "change"] == "decision refer -> approve; limit -40.0%"
    # Referred where it was declined, on 40% less cultivated area: decided better, the fall said.
    declined = before.assign(decision=["decline", "decline"], loan_limit=[0.0, 0.0])
    referred = declined.assign(decision=["refer", "refer"], cultivated_area_ha=[0.6, 1.0])
    lifted = borrower_changes(referred, declined)
    assert lifted["direction"].to_dict() == {"B1": "better", "B2": "better"}
    assert "cultivated area -40.0%" in lifted.loc["B1", "change"]


def test_borrowers_without_an_id_are_joined_on_their_parcel_and_a_run_compared_with_itself_changes_nothing(
        tmp_path: Path) -> None:
    """Parcels lent to alone, without a borrower id, were all joined to each other on the text 'nan' (or 'None'): a
    run compared with itself listed them as decided worse and counted 2 x 2 in its decision matrix."""
    from farmcredit.spreadsheet import write_csv

    def run(name: str, declared: float) -> Path:
        parcels = {"P1": ("B1", 0.3, "approve", 900.0, "B", _plot(1)),
                   "007": (None, 0.2, "approve", 600.0, "B", _plot(2)),
                   "P3": (None, declared, "decline", 0.0, None, _plot(3))}
        folder = _season(tmp_path / name, parcels, {"B1": ("approve", 900.0, 0.3)})
        pd.DataFrame({"borrower_id": ["B1", None, None], "parcel_ids": ["P1", "007", "P3"],
                      "decision": ["approve", "approve", "decline"], "loan_limit": [900.0, 600.0, 0.0],
                      "cultivated_area_ha": [0.3, 0.2, 0.0]}).to_parquet(folder / "borrowers.parquet")
        for table in ("results", "borrowers"):
            write_csv(pd.read_parquet(folder / f"{table}.parquet").drop(columns="geometry", errors="ignore"),
                      folder / f"{table}.csv")
        return folder

    this = run("this", 0.5)
    itself = borrower_changes(*(pd.read_parquet(this / "borrowers.parquet"),) * 2)
    assert itself.index.tolist() == ["(no borrower id: 007)", "(no borrower id: P3)", "B1"]
    assert itself["direction"].eq("").all()
    # Its CSV copy (ids read as text: 007, not 7) beside the Parquet it was written from.
    text = credit_report(load_results(this), load_results(this / "results.csv"), out=tmp_path / "report.md",
                         fmt="md").read_text()
    assert "| approve | 2 | 0 |" in text and "| decline | 0 | 1 |" in text
    assert "fell by more than 30%: 0." in text and "decided better or whose limit rose: 0." in text
    # The parcel's own declaration changed: said of the borrower it is, alone.
    last = run("last", 0.4)
    lent = [pd.read_parquet(folder / "borrowers.parquet") for folder in (this, last)]
    changes = borrower_changes(*lent, parcel_changes(load_results(this), load_results(last)))
    assert changes["parcel_inputs_changed"].to_dict() == {
        "(no borrower id: 007)": "none", "(no borrower id: P3)": "P3: declared area 0.400 -> 0.500 ha", "B1": "none"}


def test_frames_from_no_file_compare_parcels_and_say_what_was_not_compared(tmp_path: Path) -> None:
    reference = _results(seed=0)
    text = credit_report(_results(seed=1), reference.iloc[:-2], out=tmp_path / "report.md", fmt="md").read_text()
    assert "Borrowers not compared: no borrowers table of these borrowers beside the results of this run and of the " \
           "reference run." in text
    assert "Outlines not compared" in text and "2 added, 0 dropped" in text


def test_results_stacked_from_two_seasons_are_refused_and_one_runs_repeated_ids_are_not(tmp_path: Path) -> None:
    """Two seasons' results appended into one table (every parcel_id twice) were reported as one portfolio: twice the
    parcels, and the parcel limits per borrower doubled, without a word. Ids repeated within one season (a run's
    DUPLICATE_PARCEL_ID rows) are reported as before."""
    from datetime import date

    from farmcredit.spreadsheet import write_csv

    seasons = [_results(season_start=date(year, 3, 1), season_end=date(year, 10, 31)) for year in (2024, 2023)]
    stacked = pd.concat(seasons, ignore_index=True)
    stacked.to_parquet(tmp_path / "stacked.parquet", index=False)
    write_csv(stacked, tmp_path / "stacked.csv")
    refusal = (r"holds the results of 2 seasons \(2023-03-01\.\.2023-10-31, 2024-03-01\.\.2024-10-31\), its parcel "
               r"ids repeated .* report each season on its own \(its rows of one season_start and season_end\), "
               r"giving an earlier one as --reference")
    for name in ("stacked.parquet", "stacked.csv"):
        with pytest.raises(InputError, match=f"results file {tmp_path / name} {refusal}"):
            load_results(tmp_path / name)
    with pytest.raises(InputError, match=refusal):
        credit_report(stacked, out=tmp_path / "r.md", fmt="md")
    # One season appended twice (a rerun into an archive table) is refused too; a run's own repeated id is not.
    with pytest.raises(InputError, match="repeats parcel ids on rows that are not DUPLICATE_PARCEL_ID .* report each "
                                         "run from its own results folder"):
        credit_report(pd.concat([seasons[0]] * 2, ignore_index=True), out=tmp_path / "r.md", fmt="md")
    one_season = seasons[0].assign(parcel_id=["P0", *seasons[0]["parcel_id"][1:-1], "P0"])
    one_season.loc[[0, 59], ["status", "decision", "reason"]] = ["error", "refer", "DUPLICATE_PARCEL_ID"]
    one_season.to_parquet(tmp_path / "one.parquet", index=False)
    credit_report(load_results(tmp_path / "one.parquet"), out=tmp_path / "one.md", fmt="md")
    assert "| parcels | 60 |" in (tmp_path / "one.md").read_text()


def test_the_report_screens_and_counts_borrowers_whose_decision_is_the_credit_decision(tmp_path: Path) -> None:
    """The screen measured parcel decisions alone: on the sample parcels under 0.1 ha were 60% approved, unflagged,
    while the borrowers under 0.1 ha drawn were 0 of 12 approved, LIMIT_BELOW_MINIMUM (86 of 100 declines) was never
    named, and no borrower decision was counted. Here every parcel is approved; the borrowers of small farms (two
    parcels of 0.04 ha) are declined under the minimum loan."""
    folder = tmp_path / "run"
    folder.mkdir()
    small, large = [0.04] * 20, [0.5] * 20
    results = _results(40, polygon_area_ha=small + large, cultivated_area_ha=small + large,
                       loan_limit=[150.0] * 20 + [1800.0] * 20, reason="RISK_GRADE")
    results.to_parquet(folder / "results.parquet")
    borrowers = pd.DataFrame({"borrower_id": [f"B{k}" for k in range(20)],
                              "decision": ["decline"] * 10 + ["approve"] * 10,
                              "loan_limit": [0.0] * 10 + [3600.0] * 10, "cultivated_area_ha": [0.08] * 10 + [1.0] * 10,
                              "polygon_area_ha": [0.08] * 10 + [1.0] * 10,
                              "reason": ["LIMIT_BELOW_MINIMUM;RISK_GRADE"] * 10 + ["RISK_GRADE"] * 10})
    borrowers.to_parquet(folder / "borrowers.parquet")
    text = credit_report(load_results(folder), out=tmp_path / "report.md", fmt="md").read_text()
    summary = text.split("## 2.")[0]
    assert "| borrowers approved | 10 (50.0%) |" in summary and "| borrowers declined | 10 (50.0%) |" in summary
    assert "| approved limits (the run's currency) | 36,000 |" in summary
    fairness = text.split("## 2.")[1].split("## 3.")[0]
    assert "FLAG (screen, not a verdict): borrower area band &lt; 0.1 ha is approved at 0.0%" in fairness
    assert "| &lt; 0.1 ha | 10 | 0.0% | 0.0% | 100.0% | 0 | 0 | n/a | 0.00 | FLAG |" in fairness
    assert "Parcel signals by size band (not the credit decision)" in fairness
    reasons = text.split("## 5.")[1]
    assert "| LIMIT_BELOW_MINIMUM | decline | 10 | 50.0% | 100.0% |" in reasons
    # Without the borrowers table (results from no file, or a table from before it had the columns), it says so.
    text = credit_report(results, out=tmp_path / "bare.md", fmt="md").read_text()
    assert "| borrowers declined | n/a |" in text and "Borrowers not screened: no borrowers table" in text
    borrowers.drop(columns=["polygon_area_ha", "reason"]).to_parquet(folder / "borrowers.parquet")
    text = credit_report(load_results(folder), out=tmp_path / "old.md", fmt="md").read_text()
    assert "Borrowers not screened: the borrowers table beside the results lacks polygon_area_ha, reason" in text
    assert "| borrowers declined | 10 (50.0%) |" in text


def test_the_report_says_so_where_no_borrower_carries_a_reason_code(tmp_path: Path) -> None:
    """Section 5 printed the borrowers' table header with no row under it."""
    folder = tmp_path / "run"
    folder.mkdir()
    _results(4).to_parquet(folder / "results.parquet")
    pd.DataFrame({"borrower_id": ["B0", "B1"], "decision": ["approve"] * 2, "loan_limit": [900.0, 700.0],
                  "cultivated_area_ha": [0.5, 0.4], "polygon_area_ha": [0.6, 0.5], "reason": ["", ""]}
                 ).to_parquet(folder / "borrowers.parquet")
    reasons = credit_report(load_results(folder), out=tmp_path / "report.md", fmt="md").read_text().split("## 5.")[1]
    assert "No borrower carries a reason code." in reasons
    assert "Top borrower reason codes" not in reasons


def test_no_plot_legend_covers_a_tick_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fairness plot's legend, three across inside each of its three panels, covered the panels' top tick label
    ("1.2")."""
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    savefig = Figure.savefig

    def keeping_savefig(fig: Figure, *args, **kwargs) -> None:
        savefig(fig, *args, **kwargs)
        saved.append(fig)

    folder = _season(tmp_path / "run", {f"P{k}": (f"B{k}", 0.3, "approve", 300.0, "A", _plot(k)) for k in range(1, 4)},
                     {f"B{k}": ("approve", 300.0, 0.3) for k in range(1, 4)})
    borrowers = pd.read_parquet(folder / "borrowers.parquet")
    borrowers.assign(polygon_area_ha=0.3, reason="").to_parquet(folder / "borrowers.parquet")
    monkeypatch.setattr(Figure, "savefig", keeping_savefig)
    credit_report(load_results(folder), out=tmp_path / "report.md", fmt="md")
    assert any(len(fig.axes) == 3 for fig in saved)  # the fairness plot, borrowers' panel and all
    for fig in saved:
        renderer = fig.canvas.get_renderer()
        legends = [*fig.legends, *(axis.get_legend() for axis in fig.axes if axis.get_legend())]
        # The tick labels drawn: those at a value the axis shows (matplotlib keeps one or two beyond it).
        drawn = [label for axis in fig.axes for labels, limits, at in ((axis.get_xticklabels(), axis.get_xlim(), 0),
                                                                         (axis.get_yticklabels(), axis.get_ylim(), 1))
                 for label in labels if label.get_text() and min(limits) <= label.get_position()[at] <= max(limits)]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            covered = [label.get_text() for label in drawn if box.overlaps(label.get_window_extent(renderer))]
            assert not covered, f"{fig.axes[0].get_title()!r}: the legend covers {covered}"


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_referred_borrowers_limits_pending_review_are_broken_down_by_every_refer_code(tmp_path: Path,
                                                                                         fmt: str) -> None:
    """Section 5 listed the ten most frequent borrower codes, taken by info codes (RISK_GRADE, PARTLY_CULTIVATED...),
    so PARCEL_OVERLAP (6 referred borrowers, 4,900 pending), BORROWER_ID_VARIANT and PARTS_APART appeared nowhere and
    the summary's pending review total had no breakdown. Here 11 info codes on every borrower crowd out rare refer
    codes, one of them behind the leading codes (reason_all alone holds it)."""
    folder = tmp_path / "run"
    folder.mkdir()
    _results(12).to_parquet(folder / "results.parquet")
    info = ";".join(code for code, reason in REASONS.items() if reason.effect == "info")
    overlap, variant, apart = "PARCEL_OVERLAP", "BORROWER_ID_VARIANT", "PARTS_APART"
    codes = [f"{overlap};{info}", f"{overlap};{variant};{info}", f"{variant};{info}", f"{info};{apart}",
             f"AREA_OVERSTATED;{info}", info]
    pd.DataFrame({"borrower_id": [f"B{k}" for k in range(6)], "decision": ["refer"] * 5 + ["approve"],
                  "loan_limit": [1000.0, 2500.0, 700.0, 0.0, 300.0, 900.0], "cultivated_area_ha": 0.5,
                  "polygon_area_ha": 0.6, "reason": [";".join(text.split(";")[:3]) for text in codes],
                  "reason_all": codes}).to_parquet(folder / "borrowers.parquet")
    text = credit_report(load_results(folder), out=tmp_path / f"report.{fmt}", fmt=fmt).read_text()
    reasons = text.split("5. Reason codes")[1]
    if fmt == "html":
        reasons = html.unescape(reasons.replace("</td><td>", " | ").replace("</th><td>", " | "))
    assert "5 borrowers are referred to a person, their limits of 4,500 the run's currency pending review" in reasons
    assert "counted, with its limit, under each, so the rows may sum to more than these totals" in reasons
    assert f"{overlap} | 2 | 3,500 | {REASONS[overlap].sentence}" in reasons
    assert f"{variant} | 2 | 3,200 | {REASONS[variant].sentence}" in reasons
    assert f"{apart} | 1 | 0 | {REASONS[apart].sentence}" in reasons
    assert "AREA_OVERSTATED | 1 | 300 |" in reasons
    assert "RISK_GRADE | 5 |" not in reasons  # an info code is no referral
    if fmt == "md":  # an older borrowers table, without reason_all: its leading codes, said so
        borrowers = pd.read_parquet(folder / "borrowers.parquet")
        borrowers.drop(columns="reason_all").to_parquet(folder / "borrowers.parquet")
        reasons = credit_report(load_results(folder), out=tmp_path / "old.md", fmt="md").read_text().split("## 5.")[1]
        assert "this older borrowers table has no reason_all" in reasons and f"| {overlap} | 2 | 3,500 |" in reasons
        assert f"| {apart} |" not in reasons and "1 of the referred borrowers carry no refer code" in reasons


def _run_record(currency: str = "CNY", min_loan: float = 1000.0) -> dict:
    """A run.json as assess writes it, what the report's Run block reads of it."""
    return {"created": "2026-12-02T09:36:08+00:00",
            "code": {"farmcredit": "0.1.0", "git_commit": "92bbc942656e3b61243b64fc2ee61d19a4c0bcdd"},
            "inputs": {"parcels": {"path": "/data/parcels.geojson", "sha256": "852b1032c840b04225cd3b4762cba26f"}},
            "models": {"cropland": {"name": "cropland-cnn-v2.7", "hash": "cf68d4dfa46e7023"},
                       "risk": {"source": "/x/default_risk_model.json", "hash": "9d0fda8bb98bd8b8"}},
            "config": {"hash": "bf78e9eea15bf87c",
                       "values": {"credit": {"currency": currency, "min_loan": min_loan, "borrower_cap": 5_000_000.0,
                                             "parcel_cap": 100_000.0, "rounding_step": 100.0}}}}


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_the_report_names_its_run_and_policy_from_run_json_and_says_when_it_has_none(tmp_path: Path, fmt: str) -> None:
    """Reports of a min_loan 500 run and a 1000 run read alike, nothing leading back to an audit record: each run is
    named (id in the HTML title), with when it was made, its code, models, parcels file and lending policy."""
    for name, min_loan in (("run", 500.0), ("reference", 1000.0)):
        (tmp_path / name).mkdir()
        _results().to_parquet(tmp_path / name / "results.parquet", index=False)
        (tmp_path / name / "run.json").write_text(json.dumps(_run_record(min_loan=min_loan)))
    (tmp_path / "bare").mkdir()
    _results().to_parquet(tmp_path / "bare" / "results.parquet", index=False)
    results, reference = load_results(tmp_path / "run"), load_results(tmp_path / "reference")
    text = " ".join(credit_report(results, reference, out=tmp_path / f"r.{fmt}", fmt=fmt).read_text().split())
    for said in ("Run 20261202T093608Z-bf78e9ee:", "Reference run 20261202T093608Z-bf78e9ee:",
                 f"audit record: {tmp_path / 'run' / 'run.json'}", "created 2026-12-02T09:36:08+00:00 (UTC)",
                 "code: farmcredit 0.1.0, commit 92bbc942656e", "configuration hash bf78e9eea15bf87c",
                 "cropland model cropland-cnn-v2.7, hash cf68d4dfa46e7023",
                 "risk model default_risk_model.json, hash 9d0fda8bb98bd8b8",
                 "parcels file parcels.geojson, SHA-256 852b1032c840", "policy: minimum loan 500 CNY; borrower cap "
                 "5,000,000 CNY; parcel cap 100,000 CNY; borrower limits rounded down to steps of 100 CNY",
                 "policy: minimum loan 1,000 CNY", "imagery dates are UTC days"):
        assert said in text, said
    if fmt == "html":
        assert "<title>farmcredit credit report, run 20261202T093608Z-bf78e9ee</title>" in text
    bare = credit_report(load_results(tmp_path / "bare"), out=tmp_path / f"bare.{fmt}", fmt=fmt).read_text()
    assert f"Run: no run.json beside {tmp_path / 'bare' / 'results.parquet'}" in " ".join(bare.split())
    unfiled = credit_report(_results(), out=tmp_path / f"unfiled.{fmt}", fmt=fmt).read_text()
    assert "Run: a results table from no file; no run.json names the run that wrote it." in " ".join(unfiled.split())


def test_a_printed_html_report_repeats_table_headers_and_splits_no_row(tmp_path: Path) -> None:
    """Printed, rows were cut across pages and continued tables had no header row: each table's header is a thead
    (browsers repeat it on each page), columns and row labels are headers with a scope, and print rules keep rows,
    images and headings whole."""
    text = credit_report(_results(seed=1), _results(seed=2), out=tmp_path / "report.html").read_text()
    tables = text.count("<table>")
    assert tables > 5 and text.count("<thead><tr>") == tables and text.count("</tbody></table>") == tables
    assert "<td>" in text and "<th>" not in text and '<th scope="col">' in text and '<th scope="row">' in text
    assert '<tr><th scope="row">&lt; 0.1 ha</th>' in text
    assert "@media print{" in text and "tr,img{break-inside:avoid}" in text and "h1,h2,h3,caption{break-after:avoid}" \
        in text
    assert "<h3>3.1 Changes against the reference run</h3>" in text and "<h2>3.1" not in text
    markdown = credit_report(_results(seed=1), out=tmp_path / "report.md", fmt="md").read_text()
    assert "\n### 3.1 Changes against the reference run\n" in markdown


def _grey(colour: str) -> float:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * red + 0.587 * green + 0.114 * blue


def test_the_reason_chart_tells_size_bands_apart_in_grey_and_draws_them_in_legend_order() -> None:
    """Printed in greyscale the three bands read 121, 121 and 114, and the horizontal bars put the first band at the
    bottom of each group while the legend lists it at the top: bands now differ in lightness (or hatch) and the
    first band's bar is the top one of each group."""
    for (a, hatch_a), (b, hatch_b) in itertools.combinations(zip(report.BAND_COLOURS, report.BAND_HATCHES), 2):
        assert abs(_grey(a) - _grey(b)) >= 40 or hatch_a != hatch_b, (a, b)
    fig, axes = report._figure(1)
    shares = pd.DataFrame({"< 0.1 ha": [0.2, 0.3], "0.1-0.67 ha": [0.1, 0.4], ">= 0.67 ha": [0.5, 0.6]},
                          index=["A", "B"])
    report._grouped_bars(axes[0], shares, dict(zip(shares, report.BAND_COLOURS)), horizontal=True,
                         hatches=dict(zip(shares, report.BAND_HATCHES)))
    legend = axes[0].legend()
    bars = {container.get_label(): container for container in axes[0].containers}
    for row in range(len(shares)):
        tops = [bars[band][row].get_y() for band in shares]
        assert tops == sorted(tops, reverse=True)  # first column on top, as the legend lists it
    assert [label.get_text() for label in legend.get_texts()] == list(shares)
    assert [bars[band][0].get_hatch() or "" for band in shares] == list(report.BAND_HATCHES[:3])


def test_the_report_draws_on_matplotlib_3_10_its_hatches_white_inside_black_outlines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reason chart's bars were drawn with ``hatchcolor=``, which only matplotlib 3.11 takes: on 3.10 (the pin
    allows 3.8.4) ``farmcredit credit report`` stopped with AttributeError. Bars now refuse it as 3.10's do, and a
    hatched band's pattern is still drawn white on its colour."""
    from matplotlib.patches import Rectangle

    update = Rectangle._internal_update

    def as_before_3_11(patch: Rectangle, kwargs: dict) -> object:
        if "hatchcolor" in kwargs:
            raise AttributeError("Rectangle.set() got an unexpected keyword argument 'hatchcolor'")
        return update(patch, kwargs)

    monkeypatch.setattr(Rectangle, "_internal_update", as_before_3_11)
    assert "Top parcel reason codes" in credit_report(_results(), out=tmp_path / "report.md", fmt="md").read_text()
    fig, axes = report._figure(1, width=2.0, height=2.0)
    report._grouped_bars(axes[0], pd.DataFrame({"band": [1.0]}), {"band": report.BAND_COLOURS[2]},
                         hatches={"band": report.BAND_HATCHES[2]})
    axes[0].set_axis_off()
    fig.canvas.draw()
    inside = np.asarray(fig.canvas.buffer_rgba())[50:150, 50:150, :3].reshape(-1, 3).astype(int)
    white = (inside > 240).all(axis=1)
    assert white.any() and white.mean() < 0.5  # the dots, white on the purple that fills the rest


def test_fairness_tables_keep_referred_limits_pending_apart_from_approved_ones(tmp_path: Path) -> None:
    """The mean limit counted referred borrowers' pending limits as lent (58% of one band's): approved and pending
    are now means of their own, each over the whole group."""
    table = _results(4, region=["north"] * 4, decision=["approve", "refer", "decline", "approve"],
                     loan_limit=[1000.0, 3000.0, 0.0, 600.0])
    north = fairness_table(table, "region").loc["north"]
    assert north["mean_approved_limit"] == 400.0 and north["mean_pending_limit"] == 750.0
    assert "mean_limit" not in fairness_table(table, "region")
    text = " ".join(credit_report(table, out=tmp_path / "r.md", fmt="md").read_text().split())
    assert "| mean approved limit (the run's currency) | mean pending review limit (the run's currency) |" in text
    assert "| north | 4 | 50.0% | 25.0% | 25.0% | 400 | 750 |" in text
    assert "mean pending review limit is the referred ones' limits, which wait on a person's review" in text


@pytest.mark.parametrize(("currency", "written"), [("INR", "55,45,340"), ("CNY", "5,545,340"), ("USD", "5,545,340")])
def test_money_is_grouped_as_its_currency_s_readers_group_it(currency: str, written: str) -> None:
    assert report._money(5_545_340.4, currency) == written
    assert report._money(-1_234_567.891, currency, 2) == ("-12,34,567.89" if currency == "INR" else "-1,234,567.89")
    assert report._money(999, currency) == "999" and report._money(np.nan, currency) == "n/a"


def test_an_inr_report_groups_in_lakh_and_writes_limit_bins_and_the_calibration_image_as_what_they_are(
        tmp_path: Path) -> None:
    """INR read 5,545,340 where Indian readers expect 55,45,340; PSI bins of limits read '1074 to 1584', no separator
    nor currency; the calibration image said 'Predicted and observed default' when only predictions were drawn."""
    for name, seed in (("run", 1), ("reference", 2)):
        (tmp_path / name).mkdir()
        _results(seed=seed, loan_limit=np.full(60, 150_000.0) * np.arange(1, 61)).to_parquet(
            tmp_path / name / "results.parquet", index=False)
        (tmp_path / name / "run.json").write_text(json.dumps(_run_record("INR")))
    results, reference = load_results(tmp_path / "run"), load_results(tmp_path / "reference")
    text = credit_report(results, reference, out=tmp_path / "r.html").read_text()
    assert "<td>27,45,00,000</td>" in text  # the total of parcel limits: 150,000 x 1,830
    assert "&lt;= 10,35,000 INR; 10,35,000 INR to 19,20,000 INR;" in text
    assert 'alt="Mean predicted PD (predictions only: no outcomes drawn), by risk grade and by PD decile"' in text
    observed = credit_report(_results(defaulted=[0, 1] * 30), out=tmp_path / "o.html").read_text()
    assert 'alt="Mean predicted PD against observed default rate, by risk grade and by PD decile"' in observed
