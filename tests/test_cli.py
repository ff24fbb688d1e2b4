"""The CLI: exit codes and messages are part of the interface."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import click
import geopandas as gpd
import pandas as pd
import pytest

from farmcredit.errors import Terminated

SAMPLE = Path(__file__).resolve().parents[1] / "sample_tiles"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farmcredit", *args], capture_output=True, text=True, timeout=600)


def test_assess_writes_results_and_says_where(small_season, tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = _run("assess", str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "results written to" in done.stderr and str(out) in done.stderr.replace("\n", "")
    assert (out / "results.gpkg").exists() and (out / "run.json").exists()
    # No --model: the shipped CNN, named in every row and described in the audit record.
    from farmcredit.segmentation import read_card
    from farmcredit.segmentation.card import DEFAULT_WEIGHTS

    cnn = read_card(DEFAULT_WEIGHTS)
    assert set(gpd.read_file(out / "results.gpkg", layer="parcels")["model_version"]) == {cnn.name}
    audit = json.loads((out / "run.json").read_text())["models"]["cropland"]
    assert audit["name"] == cnn.name and audit["weights_sha256"] == cnn.weights_sha256
    assert "no calibrated area interval" not in done.stderr and "phenology rule" not in done.stderr


def test_the_summary_and_run_json_give_approved_limits_apart_from_those_pending_review(small_season,
                                                                                      tmp_path: Path) -> None:
    """A referred borrower's limit is not money approved: the two totals are said apart (they used to be summed as
    'total limit', all of it a referred run's)."""
    from farmcredit.credit.limit import money

    out = tmp_path / "results"
    done = _run("assess", str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir), "--out", str(out),
                "--model", "rule")
    assert done.returncode == 0, done.stderr
    borrowers = gpd.read_file(out / "results.gpkg", layer="borrowers")
    approved, referred = (borrowers.loc[borrowers["decision"] == d, "loan_limit"].sum() for d in ("approve", "refer"))
    assert approved > 0 and referred > 0  # both kinds, so a sum of the two is not either
    counts = json.loads((out / "run.json").read_text())["counts"]
    assert (counts["approved_limit"], counts["referred_limit"]) == pytest.approx((approved, referred))
    assert "total_limit" not in counts
    said = " ".join(done.stderr.split())
    assert f"; approved {money(approved)} CNY; {money(referred)} CNY pending review" in said
    assert "total limit" not in said


def test_batch_ends_with_the_decision_counts_and_limit_totals_assess_prints(small_season, tmp_path: Path) -> None:
    """batch said only how many parcels and partitions it ran: its decisions and CNY totals could not be set beside
    assess's at a glance. It prints assess's summary line, then its partitions."""
    said = {}
    for command, extra in (("assess", ()), ("batch", ("--workers", "1"))):
        done = _run(command, str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir), "--model",
                    "rule", "--out", str(tmp_path / command), *extra)
        assert done.returncode == 0, done.stderr
        said[command] = " ".join(done.stderr.split())  # the console wraps lines
    summary = re.search(r"\d+ parcels: \d+ approve, .*? CNY pending review", said["assess"])
    assert summary is not None and summary[0] in said["batch"]
    # How clouded the season was, the same both ways.
    season = re.search(r"season: \d+ dates, \S+ to \S+; clear over half the parcels or more on \d+, over none on "
                       r"\d+.*?; a parcel's clear dates: median [\d.]+", said["assess"])
    assert season is not None and season[0] in said["batch"]
    assert " partitions (0 reused from an earlier run, 0 failed); results written to " in said["batch"]


def test_the_season_summary_says_how_clouded_the_season_was_over_the_parcels() -> None:
    """A monsoon clouding every parcel from July to October was told only as counts of parcels referred: the summary
    says how many dates were clear over half the parcels or more, which over none, and a parcel's median clear dates."""
    from types import SimpleNamespace

    from farmcredit.cli import _season_summary

    days = [{"date": f"2024-0{m}-01", "parcels_clear": n} for m, n in ((6, 10), (7, 0), (8, 0), (9, 4))]
    parcels = pd.DataFrame({"status": ["ok"] * 9 + ["error"], "clear_observations": [1, 1, 2, 2, 2, 2, 2, 2, 2, 0]})
    run = SimpleNamespace(record={"season_clear": {"parcels_measured": 10, "dates": days}}, parcels=parcels)
    assert _season_summary(run) == ("season: 4 dates, 2024-06-01 to 2024-09-01; clear over half the parcels or more "
                                    "on 1, over none on 2 (2024-07-01, 2024-08-01); a parcel's clear dates: median 2")
    run.record["season_clear"]["dates"] = []
    assert _season_summary(run) == ""


def test_the_summarys_limit_totals_show_their_cents() -> None:
    """Totals of a ``rounding_step`` under 1 CNY are said to the cent, not rounded to the yuan (264,407: more than
    lent)."""
    from farmcredit.cli import _limit_totals

    said = _limit_totals({"approved_limit": 264406.67, "referred_limit": 100.5}, "CNY")
    assert said == "; approved 264,406.67 CNY; 100.50 CNY pending review"
    assert _limit_totals({"approved_limit": 250700.0, "referred_limit": 0.0}, "CNY") == (
        "; approved 250,700 CNY; 0 CNY pending review")


def test_a_model_without_an_area_margin_is_run_with_a_warning_saying_how_to_fit_one(small_season,
                                                                                    tmp_path: Path) -> None:
    from farmcredit.segmentation.card import DEFAULT_WEIGHTS, card_path

    weights = tmp_path / "tuned.safetensors"
    weights.write_bytes(DEFAULT_WEIGHTS.read_bytes())
    card = json.loads(card_path(DEFAULT_WEIGHTS).read_text())
    card["calibration"] = {"a": 1.0, "b": 0.0}  # as `farmcredit train` leaves it
    card_path(weights).write_text(json.dumps(card))
    done = _run("assess", str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir),
                "--model", str(weights), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())  # the console wraps lines
    assert "has no calibrated area interval" in said and "`farmcredit calibrate WEIGHTS SCENE...`" in said
    assert said.count("has no calibrated area interval") == 1


@pytest.mark.parametrize(("season", "code", "warning"), [
    ("2024-03-01/2024-06-14", "SEASON_MISSES_CROP", "parcel(s) show no crop"),  # before the summer crops green
    ("2024-03-01/2024-07-25", "PEAK_NOT_OBSERVED", "parcel(s) have no clear image near their crop's peak"),  # green
])
def test_a_season_ending_before_the_summer_crops_are_judged_refers_them_with_a_warning(
        small_season, tmp_path: Path, season: str, code: str, warning: str) -> None:
    out = tmp_path / "short season"
    done = _run("assess", str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir), "--model", "rule",
                "--season", season, "--out", str(out))
    assert done.returncode == 0, done.stderr
    results = gpd.read_file(out / "results.gpkg", layer="parcels")
    referred = results["reason_all"].str.split(";").map(lambda codes: code in codes)
    assert referred.sum() >= 3 and set(results.loc[referred, "decision"]) == {"refer"}
    assert results.loc[referred, "health_index"].isna().all()
    assert " ".join(done.stderr.split()).count(f"warning: {referred.sum()} {warning}") == 1


def test_parcel_ids_and_column_names_are_quoted_with_their_control_characters_written_out(small_season,
                                                                                          tmp_path: Path) -> None:
    """An id holding a terminal escape sequence cleared the screen and printed 'all parcels approved' in green, and one
    holding a newline forged a warning line of its own; they are quoted as \\x1b and \\n, in warnings and errors."""
    parcels = gpd.read_file(small_season.parcels_path)
    parcels["declared_area_ha"] = parcels["declared_area_ha"].astype(object)
    parcels.loc[:1, "parcel_id"] = ["P1\x1b[2J\x1b[H\x1b[32mall parcels approved", "P2\nwarning: fake line"]
    parcels.loc[:1, "declared_area_ha"] = ["abc", "-1"]
    parcels.to_file(tmp_path / "fields.geojson")
    done = _run("assess", str(tmp_path / "fields.geojson"), "--imagery", str(small_season.imagery_dir), "--model",
                "rule", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and not any(line.startswith("warning: fake") for line in done.stderr.splitlines())
    said = " ".join(done.stderr.split())
    assert "(P1\\x1b[2J\\x1b[H\\x1b[32mall parcels approved: 'abc', P2\\nwarning: fake line: '-1')" in said
    parcels.rename(columns={"parcel_id": "id\x1b[2J"}).to_file(tmp_path / "no ids.geojson")
    done = _run("assess", str(tmp_path / "no ids.geojson"), "--imagery", str(small_season.imagery_dir), "--out",
                str(tmp_path / "o"))
    assert done.returncode == 2 and "\x1b" not in done.stderr
    assert "has no 'parcel_id' column (columns: id\\x1b[2J, " in " ".join(done.stderr.split())


def test_a_parcel_file_that_is_not_vector_data_exits_2_naming_it(small_season, tmp_path: Path) -> None:
    bogus = tmp_path / "fields.geojson"
    bogus.write_bytes(b"\x00\x01 definitely not a vector file")
    done = _run("assess", str(bogus), "--imagery", str(small_season.imagery_dir), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "fields.geojson" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["assess", "batch"])
def test_a_parcel_file_of_several_layers_needs_one_named_and_the_audit_names_it(small_season, tmp_path: Path,
                                                                                command: str) -> None:
    parcels = gpd.read_file(small_season.parcels_path).head(4)
    path = tmp_path / "fields.gpkg"
    parcels.head(1).to_file(path, layer="last_year")
    parcels.to_file(path, layer="this_year")
    base = [command, str(path), "--imagery", str(small_season.imagery_dir), "--model", "rule", "--quiet"]
    done = _run(*base, "--out", str(tmp_path / "refused"))
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "has 2 layers (last_year (1 features" in message and "--parcels-layer" in message
    done = _run(*base, "--out", str(tmp_path / "o"), "--parcels-layer", "this_year")
    # --quiet: not even matplotlib's font notes (CJK lacks bold); only that the rule is a baseline, once, what the
    # season could not judge and the parcels too few peers rate (4 parcels assessed alone) are said
    said = " ".join(done.stderr.split())
    assert said.count("warning: the phenology rule (phenology-rule-v1) is a baseline") == 1
    for warning in (r"the phenology rule.*?in Python\)", r"\d+ parcel\(s\) show no crop.*?judges them",
                    r"\d+ parcel\(s\) have too few cropland parcels beside them.*?to rate it"):
        said = re.sub(f"warning: {warning}", "", said)
    assert done.returncode == 0 and said.strip() == ""
    assert json.loads((tmp_path / "o" / "run.json").read_text())["inputs"]["parcels"]["layer"] == "this_year"
    assert len(gpd.read_file(tmp_path / "o" / "results.gpkg", layer="parcels")) == 4


@pytest.mark.parametrize("command", ["assess", "batch"])
def test_parcels_crs_is_taken_for_a_file_that_declares_none(small_season, tmp_path: Path, command: str) -> None:
    parcels = gpd.read_file(small_season.parcels_path).head(4)
    path = tmp_path / "fields.gpkg"
    with pytest.warns(UserWarning, match="'crs' was not provided"):  # as the file meant
        parcels.set_crs(None, allow_override=True).to_file(path)
    base = [command, str(path), "--imagery", str(small_season.imagery_dir), "--model", "rule", "--quiet"]
    done = _run(*base, "--out", str(tmp_path / "refused"))
    assert done.returncode == 2 and "declares no coordinate reference system" in done.stderr
    done = _run(*base, "--out", str(tmp_path / "o"), "--parcels-crs", parcels.crs.to_string())
    assert done.returncode == 0, done.stderr
    results = gpd.read_parquet(tmp_path / "o" / "results.parquet")
    assert results.crs == parcels.crs and results["cultivated_area_ha"].notna().all()  # on the imagery, measured


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--imagery", "{missing}"], "does not exist"),
        (["--imagery", "{imagery}", "--season", "2024-13-01/2024-10-01"], "START/END"),
        (["--imagery", "{imagery}", "--season", "2023-03-01/2024-10-31"], "is 611 days long"),
        (["--imagery", "{imagery}", "--config", "{missing}"], "cannot read config"),
    ],
)
@pytest.mark.parametrize("command", ["assess", "batch"])
def test_unusable_inputs_exit_2_with_a_message(small_season, tmp_path: Path, args: list[str], expected: str,
                                               command: str) -> None:
    filled = [a.format(missing=tmp_path / "nowhere", imagery=small_season.imagery_dir) for a in args]
    done = _run(command, str(small_season.parcels_path), *filled, "--model", "rule", "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()  # a run refused leaves no output folder behind
    done = _run(command, str(tmp_path / "nowhere.gpkg"), "--imagery", str(small_season.imagery_dir), "--model", "rule",
                "--out", str(tmp_path / "o" / "season" / "2024"))
    assert done.returncode == 2 and "nowhere.gpkg" in done.stderr and not (tmp_path / "o").exists()
    (tmp_path / "mine").mkdir()  # an --out that was there: left as it was, no partitions/.lock in it
    done = _run(command, str(tmp_path / "nowhere.gpkg"), "--imagery", str(small_season.imagery_dir), "--model", "rule",
                "--out", str(tmp_path / "mine"))
    assert done.returncode == 2 and not list((tmp_path / "mine").iterdir())


@pytest.mark.parametrize("command", ["assess", "batch"])
def test_imagery_of_20m_pixels_exits_2_saying_the_models_need_10m(small_season, tmp_path: Path, command: str) -> None:
    """Every band file exported at twice its pixel size (a 20 m stack: FTW Austria's read 11% less cultivated
    area) was assessed without a word."""
    import shutil

    import rasterio
    from affine import Affine

    coarse = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, coarse)
    for path in coarse.glob("*/*.tif"):
        with rasterio.open(path) as source:
            profile, values = source.profile, source.read()
        with rasterio.open(path, "w", **(profile | {"driver": "GTiff", "transform": profile["transform"] *
                                                    Affine.scale(2)})) as target:
            target.write(values)
    done = _run(command, str(small_season.parcels_path), "--imagery", str(coarse), "--model", "rule",
                "--out", str(tmp_path / "o"))
    said = " ".join(done.stderr.split())  # the console wraps lines
    assert done.returncode == 2 and "Traceback" not in said
    assert "its pixels are 19.99 x 19.99 m on the ground" in said and "built for Sentinel-2's 10 m pixels" in said
    assert "gdalwarp -t_srs EPSG:32650 -tr 10 10" in said and not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["assess", "batch"])
def test_imagery_of_two_years_without_a_season_exits_2_naming_its_dates(small_season, two_years, tmp_path: Path,
                                                                        command: str) -> None:
    """Read as one season, the second year's dates were more clear dates of the first (the limits rose, unwarned)."""
    done = _run(command, str(small_season.parcels_path), "--imagery", str(two_years), "--model", "rule", "--out",
                str(tmp_path / "o"))
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and "holds dates from 2023-03-01 to 2024-10-27, more than one season" in said
    assert "pass --season START/END (season= in Python) of at most a year, no day of the year in it twice" in said
    assert "Traceback" not in said
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args", [["assess", "p.gpkg", "--imagery", "s2"], ["batch", "p.gpkg", "--imagery", "s2"],
                                  ["fetch", "--bbox", "1,2,3,4", "--season", "2024-03-01/2024-04-01"], ["simulate"],
                                  ["train", "--eurosat", "."], ["preview", "."], ["credit", "fit", "h.csv"],
                                  ["credit", "report", "."]])
def test_an_empty_out_is_refused_not_taken_for_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   args: list[str]) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli

    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(cli, [*args, "--out", ""])
    assert done.exit_code == 2 and "'--out': an empty path names no file or folder" in done.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["assess", "p.gpkg", "--imagery", ".", "--bands", "2021-06-17:B04,B03,B02,B08", "--model", "rule", "--out",
          "o"], "a band layout, --bands (band_layout= in Python), applies to a GeoTIFF stack"),
        (["train", ".", "--eurosat-test-share", "0.5", "--out", "m.safetensors"],
         "--eurosat-test-share 0.5: give EuroSAT patches (--eurosat)"),
        (["simulate", "--out", "taken"], "folder taken cannot be written (taken is a file, not a folder)"),
        (["assess", "p.gpkg", "--imagery", ".", "--config", "bad.yaml", "--out", "o"],
         "bad.yaml is not valid YAML: line 2:8: expected ',' or ']', but got '<stream end>' (while parsing a flow "
         "sequence)"),
        (["assess", "p.gpkg", "--imagery", ".", "--config", "control.yaml", "--out", "o"],
         "control.yaml is not valid YAML: line 2:13: character #x0001: special characters are not allowed"),
        (["assess", "p.gpkg", "--imagery", ".", "--config", "deep.yaml", "--out", "o"],
         "deep.yaml is not valid YAML: nested too deeply"),  # not a RecursionError's 3,000-line traceback
    ],
)
def test_messages_name_the_options_and_say_where_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             args: list[str], expected: str) -> None:
    from click.testing import CliRunner

    from farmcredit.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("a file in the way")
    (tmp_path / "bad.yaml").write_text("crops: [wheat,\n  maize")
    (tmp_path / "control.yaml").write_text("credit:\n  currency: \x01\n")
    (tmp_path / "deep.yaml").write_text("imagery: " + "[" * 20_000 + "]" * 20_000)
    done = CliRunner().invoke(cli, args)
    message = str(done.exception)
    assert expected in message and "\n" not in message  # the entry point prints it, exit 2
    cli_words = re.sub(r"\w+= in Python", "", message)  # the Python name beside an option's is for API callers
    assert "band_layout" not in cli_words and "eurosat_test_share" not in cli_words and "File exists" not in message


@pytest.mark.parametrize(("source", "season", "fetch"), [
    ("stac", "2024-03-01/2024-10-31", "--season 2024-03-01/2024-10-31 --out DIR"),
    ("https://earth-search.aws.element84.com/v1", None, "--season START/END --out DIR"),
    ("sentinelhub", "2024-03-01/2024-10-31", "--season 2024-03-01/2024-10-31 --source sentinelhub --out DIR"),
    ("stac://user:pw@stac.example.org/v1?collection=s2c", "2024-03-01/2024-10-31",
     "--season 2024-03-01/2024-10-31 --stac-url https://stac.example.org/v1 --collection s2c --out DIR"),
])
def test_batch_asks_for_a_remote_source_to_be_fetched_first(small_season, tmp_path: Path, source: str,
                                                            season: str | None, fetch: str) -> None:
    """The fetch it told of read `--source ... --season START/END` whatever the user had given: it names the source
    (a STAC API's URL without its credentials, as the error names --imagery too: it printed the password) and the
    season given, as assess's refetch command does; assess without a season names it so."""
    from farmcredit.imagery.fetch import public_url

    done = _run("batch", str(small_season.parcels_path), "--imagery", source,
                *(["--season", season] if season else []), "--model", "rule", "--out", str(tmp_path / "o"))
    said = " ".join(done.stderr.split())
    assert done.returncode == 2
    assert f"--imagery {public_url(source)}: batch reads imagery its workers open as files" in said
    assert f"(farmcredit fetch {small_season.parcels_path} {fetch}) and give --imagery DIR" in said
    assert "pw" not in said and not (tmp_path / "o").exists()
    if season is not None:
        done = _run("assess", str(small_season.parcels_path), "--imagery", source, "--out", str(tmp_path / "o"))
        assert done.returncode == 2 and "fetches imagery, so it needs --season START/END" in done.stderr
        assert "pw" not in done.stderr


def test_assess_whose_fetch_fails_leaves_no_out_folder(small_season, tmp_path: Path) -> None:
    # No Sentinel Hub credentials, wherever the tests run: none in the environment, no configuration file.
    env = {name: value for name, value in os.environ.items() if not name.startswith("SH_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "farmcredit", "assess", str(small_season.parcels_path), "--imagery",
                           "sentinelhub", "--season", "2024-03-01/2024-04-01", "--model", "rule", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 2 and "no Sentinel Hub credentials" in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["assess", "batch"])
def test_an_out_that_cannot_be_a_folder_exits_2_before_the_run(small_season, tmp_path: Path, command: str) -> None:
    taken = tmp_path / "results"
    taken.write_text("a file in the way")
    for out, expected in ((taken, "is a file, not a folder"), (taken / "below", "not a folder that can be made")):
        done = _run(command, str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir),
                    "--model", "rule", "--out", str(out))
        message = " ".join(done.stderr.split())
        assert done.returncode == 2 and expected in message and "Traceback" not in message
        assert "windows" not in message and "partitions" not in message  # refused before any work


@pytest.mark.parametrize(("command", "option", "name"), [("assess", None, "results.gpkg"),
                                                         ("batch", "--config", "run.json")])
def test_an_input_that_is_one_of_the_outputs_in_out_exits_2_before_the_run_and_is_left_as_it_was(
        small_season, tmp_path: Path, command: str, option: str | None, name: str) -> None:
    """`assess RG/results.gpkg --out RG` overwrote its parcels, and run.json fingerprinted a file that was gone."""
    out = tmp_path / "RG"
    out.mkdir()
    clash = out / name
    clash.write_bytes(small_season.parcels_path.read_bytes())
    parcels = clash if option is None else small_season.parcels_path
    given = () if option is None else (option, str(out / ".." / out.name / name))  # the same file, spelled otherwise
    done = _run(command, str(parcels), "--imagery", str(small_season.imagery_dir), "--model", "rule", *given,
                "--out", str(out))
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in message, message
    assert f"is {name}, one of the files this run writes in --out {out}" in message and "give another --out" in message
    assert clash.read_bytes() == small_season.parcels_path.read_bytes()
    assert sorted(path.name for path in out.iterdir()) == [name]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_reader_of_the_messages_that_goes_away_costs_the_run_nothing(small_season, tmp_path: Path,
                                                                       stream: str) -> None:
    """`farmcredit assess ... 2>&1 | head -1` stopped at its next message, exit 1, with no outputs written."""
    out = tmp_path / "o"
    messages = {"stdout": subprocess.STDOUT, "stderr": subprocess.PIPE}
    run = subprocess.Popen([sys.executable, "-m", "farmcredit", "assess", str(small_season.parcels_path), "--imagery",
                            str(small_season.imagery_dir), "--model", "rule", "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=messages[stream])
    reader = getattr(run, stream)
    reader.readline()  # as `head -1`: the first line, then the pipe is closed with more to come
    reader.close()
    assert run.wait(timeout=600) == 0
    assert (out / "run.json").is_file() and (out / "results.gpkg").is_file()


@pytest.mark.parametrize("closed", [1, 2])
def test_a_run_started_with_its_stdout_or_stderr_closed_writes_its_outputs(small_season, tmp_path: Path,
                                                                           closed: int) -> None:
    """A cron job closing its streams (`2>&-`): Python sets the stream to None, which the wrapper then called."""
    import os

    out = tmp_path / "o"
    done = subprocess.run([sys.executable, "-m", "farmcredit", "assess", str(small_season.parcels_path), "--imagery",
                           str(small_season.imagery_dir), "--model", "rule", "--out", str(out)],
                          preexec_fn=lambda: os.close(closed), timeout=600,
                          **{("stderr" if closed == 1 else "stdout"): subprocess.PIPE})
    assert done.returncode == 0 and (out / "run.json").is_file()


def test_a_band_file_gdal_cannot_open_is_a_warning_and_exit_2_only_when_no_scene_opens_it(
    small_season, tmp_path: Path
) -> None:
    import shutil

    imagery = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, imagery)
    first, *rest = sorted(imagery.glob("*/B04.tif"))
    first.write_bytes(b"garbage, not a GeoTIFF")
    command = ("assess", str(small_season.parcels_path), "--imagery", str(imagery), "--model", "rule")
    done = _run(*command, "--out", str(tmp_path / "o"))
    message = done.stderr.replace("\n", "")
    assert done.returncode == 0, done.stderr
    assert "warning: band B04: GDAL cannot open its file in 1 scene(s)" in " ".join(done.stderr.split())
    assert str(first) in message and "IMAGERY_READ_ERROR" in message
    for band in rest:
        band.write_bytes(b"garbage, not a GeoTIFF")
    done = _run(*command, "--out", str(tmp_path / "p"))
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "error: imagery" in message and "lacks B04" in message
    assert "B04: GDAL can open its file in no scene" in message and "Traceback" not in message


def test_a_corrupt_band_costs_its_parcels_that_date_not_the_run_and_is_named(
        small_season, tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """A season of one date whose red file was cut short: the run finishes and names the file (console, run.json);
    the true colour, which has no other date to fall back on, is left out. The warning is the library's: Python's
    ``assess`` gives it too (it said nothing), and the console prints it once, in the same words."""
    import logging
    import shutil

    from farmcredit import assess

    imagery = tmp_path / "imagery"
    shutil.copytree(small_season.imagery_dir, imagery)
    band = sorted(imagery.glob("*/B04.tif"))[3]
    band.write_bytes(band.read_bytes()[: band.stat().st_size * 2 // 3])  # a download cut short
    day = json.loads(next(band.parent.glob("*.json")).read_text())["properties"]["datetime"][:10]
    out = tmp_path / "out"
    done = _run("assess", str(small_season.parcels_path), "--imagery", str(imagery), "--season", f"{day}/{day}",
                "--model", "rule", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "1 image file(s) could not be read" in done.stderr and "B04.tif" in done.stderr.replace("\n", "")
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        assess(small_season.parcels_path, imagery, season=f"{day}/{day}", model="rule")
    [logged] = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert str(band) in logged and "parcel(s) on the pixels they left without data skip that date" in logged
    said = " ".join(done.stderr.split())
    assert said.count("could not be read") == 1 and f"warning: {' '.join(logged.split())}" in said
    [failure] = json.loads((out / "run.json").read_text())["read_failures"]
    assert failure["file"] == str(band) and failure["scene_id"] in str(band) and failure["message"]
    results = gpd.read_file(out / "results.gpkg", layer="parcels")
    assert results["reason_all"].str.contains("IMAGERY_READ_ERROR").any()
    assert (out / "cropland_probability.tif").exists() and not (out / "true_colour.tif").exists()


@pytest.mark.parametrize("value", ["auto", "4GiB", "1500MB", "0.5", "1", "0"])
def test_memory_limits_dask_reads_are_taken_as_given(value: str) -> None:
    from farmcredit.cli import _memory_limit

    assert _memory_limit(value) == value


def test_batch_refuses_a_memory_limit_it_cannot_read_and_a_scheduler_that_does_not_answer(small_season,
                                                                                          tmp_path: Path) -> None:
    import os

    args = [sys.executable, "-m", "farmcredit", "batch", str(small_season.parcels_path), "--imagery",
            str(small_season.imagery_dir), "--model", "rule", "--out", str(tmp_path / "out")]
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    for extra, expected in ((["--memory-limit", "lots"], "'lots' is not a size of 1GiB or more"),
                            (["--memory-limit", "1.5"], "'1.5' is not a size of 1GiB or more"),
                            (["--memory-limit", "384MiB"], "'384MiB' is not a size of 1GiB or more"),
                            (["--memory-limit", "1e-9"], "1e-9 of this machine's memory is under 1GiB"),
                            (["--scheduler", "tcp://127.0.0.1:1"], "tcp://127.0.0.1:1: no Dask scheduler answered"),
                            (["--scheduler", "localhost"], "localhost: no Dask scheduler answered"),
                            # Dask's own workers' limits count there: it was ignored, unsaid.
                            (["--scheduler", "tcp://127.0.0.1:1", "--memory-limit", "4GiB"],
                             "--workers, --gpu-workers and --memory-limit size a local cluster")):
        done = subprocess.run([*args, *extra], capture_output=True, text=True, timeout=120, env=env)
        message = " ".join(done.stderr.split())
        assert done.returncode == 2 and expected in message and "Traceback" not in message


@pytest.mark.parametrize("greeting", [b"", b"SSH-2.0-OpenSSH_9.6\r\n"], ids=["silent", "ssh-banner"])
def test_batch_refuses_a_scheduler_address_where_something_else_listens(small_season, tmp_path: Path,
                                                                        greeting: bytes) -> None:
    """A port that accepts but never speaks Dask (the dashboard's, an HTTP server's) waited for ever; one that
    speaks first (SSH) was read as a message of exabytes: both exit 2, leaving no folder behind."""
    import os
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            connection.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    out = tmp_path / "new" / "out"
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    try:
        done = subprocess.run([sys.executable, "-m", "farmcredit", "batch", str(small_season.parcels_path),
                               "--imagery", str(small_season.imagery_dir), "--model", "rule", "--out", str(out),
                               "--scheduler", f"tcp://127.0.0.1:{listener.getsockname()[1]}"],
                              capture_output=True, text=True, timeout=120, env=env)
    finally:
        listener.close()
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "no Dask scheduler answered" in message and "Traceback" not in message, message
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("text", ["2024-13-01/2024-10-01", "2023-03-01/2024-10-31"])
def test_a_season_refused_is_said_of_the_season_option(text: str) -> None:
    """assess, batch and fetch said "Error: Invalid value: season '...'", naming no option."""
    from farmcredit.cli import parse_season

    with pytest.raises(click.BadParameter) as refused:
        parse_season(text)
    assert refused.value.format_message().startswith("Invalid value for --season: season '")


@pytest.mark.parametrize("text", ["2021-06-17:B04,B08;", "2021-06-17:B04,,B08", "2021-13-01:B04,B08",
                                  "20210617:B04,B08", "2021-W24-4:B04,B08"])  # the last two: read by Python 3.11 only
def test_a_band_layout_with_an_empty_band_or_a_bad_date_is_refused(text: str) -> None:
    import click

    from farmcredit.cli import parse_band_layout

    with pytest.raises(click.BadParameter, match="is not DATE:BAND"):
        parse_band_layout(text)
    day = date(2021, 6, 17)
    assert parse_band_layout("2021-06-17:b04, B08") == [(day, "B04"), (day, "B08")]


def test_help_has_examples() -> None:
    done = _run("assess", "--help")
    assert done.returncode == 0 and "Examples:" in done.stdout


def test_version_is_the_code_version_that_run_json_and_model_cards_record() -> None:
    """--version said "0.1.0", which every edit of the code shares, where run.json and model cards record
    0.1.0+src.<source hash>.git.<commit>."""
    from farmcredit.version import card_code_version

    done = _run("--version")
    assert done.returncode == 0 and done.stdout == f"farmcredit, version {card_code_version()}\n"
    assert re.fullmatch(r"farmcredit, version \d+\.\d+\.\d+\+src\.[0-9a-f]{12}.*\n", done.stdout)


def test_trains_example_holds_eurosat_patches_out_and_says_what_a_step_costs() -> None:
    """The example trained on every EuroSAT patch, so its card had no held-out scores (a warning said to give
    --eurosat-test-share), and gave no hint that its 500 steps take minutes on a CPU."""
    from click.testing import CliRunner

    from farmcredit.cli import cli

    shown = CliRunner().invoke(cli, ["train", "--help"]).stdout
    example = " ".join(shown.split("Example:")[1].split("Options:")[0].split())
    assert "farmcredit train sim1 --eurosat ../shared/data/labels/eurosat --eurosat-test-share 0.2 \\ --out" in example
    assert "a step of the example below takes" in " ".join(shown.split())


def test_device_is_explained_in_every_command_that_has_it() -> None:
    """evaluate, train and calibrate listed --device [auto|cpu|cuda] with no word of what it does."""
    from farmcredit.cli import cli

    devices = {name: param for name, command in cli.commands.items() for param in command.params
               if param.name == "device"}
    assert devices.keys() == {"assess", "batch", "evaluate", "train", "calibrate"}
    assert all(isinstance(param, click.Option) and param.help for param in devices.values())


def test_train_prints_its_held_out_scores_to_standard_output(tmp_path: Path) -> None:
    """`farmcredit train ... > metrics.txt` captured nothing: the scores of what training left out (an unseen DEA
    region here) went to standard error with the progress, where evaluate prints its report to standard output."""
    import numpy as np
    from click.testing import CliRunner

    from farmcredit.cli import cli
    from farmcredit.segmentation.data import DEA_BANDS

    rng = np.random.default_rng(2)
    columns = ["Class"] + [f"{name}_S{season}" for season in (1, 2) for name in DEA_BANDS]
    for region, count in (("central", 60), ("northern", 25)):
        (tmp_path / "dea" / region).mkdir(parents=True)
        table = np.column_stack([rng.integers(0, 2, count), 0.05 + rng.random((count, len(columns) - 1)) * 0.3])
        np.savetxt(tmp_path / "dea" / region / "training_data.txt", table, header=" ".join(columns))
    done = CliRunner().invoke(cli, ["train", "--dea", str(tmp_path / "dea"), "--dea-regions", "central", "--out",
                                    str(tmp_path / "m.safetensors"), "--steps", "2", "--device", "cpu"])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("  dea_unseen_regions: n=25 accuracy=") and "accuracy=" not in done.stderr
    assert "wrote" in done.stderr and "wrote" not in done.stdout


def test_real_stack_with_band_layout_runs(shared_data: Path, tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    stack = shared_data / "s2" / "ftw-austria-2021" / "inference-img.tif"
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["A", "B"], "borrower_id": ["X", "X"]},
        geometry=[shapely.box(360000, 5350000, 360080, 5350060), shapely.box(361000, 5350500, 361050, 5350600)],
        crs="EPSG:32633",
    )
    path = tmp_path / "fields.shp"
    parcels.to_file(path)
    layout = "2021-06-17:B04,B03,B02,B08;2021-09-25:B04,B03,B02,B08"
    out = tmp_path / "o"
    done = _run("assess", str(path), "--imagery", str(stack), "--bands", layout, "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    results = gpd.read_parquet(out / "results.parquet")
    assert list(results["borrower_id"]) == ["X", "X"]  # the shapefile's cut name "borrower_i" is understood
    assert results["ndvi_peak"].between(-1, 1).all()
    assert (results["clear_observations"] == 2).all()
    assert results["reason"].str.contains("FEW_CLEAR_OBSERVATIONS").all()
    # The same stack as DNs of processing baseline 04.00+ (offset +1000 not taken off): --dn-offset takes it off.
    import numpy as np
    import rasterio

    with rasterio.open(stack) as source:
        profile, dns = source.profile, source.read()
    with rasterio.open(tmp_path / "offset.tif", "w", **profile) as shifted:
        shifted.write(np.where(dns > 0, dns + 1000, 0).astype(dns.dtype))
    again = _run("assess", str(path), "--imagery", str(tmp_path / "offset.tif"), "--bands", layout, "--dn-offset",
                 "-1000", "--out", str(tmp_path / "o2"), "--quiet")
    assert again.returncode == 0, again.stderr
    np.testing.assert_allclose(gpd.read_parquet(tmp_path / "o2" / "results.parquet")["ndvi_peak"],
                               results["ndvi_peak"], atol=1e-6)
    # batch takes both too, and gives assess's rows.
    done = _run("batch", str(path), "--imagery", str(tmp_path / "offset.tif"), "--bands", layout, "--dn-offset",
                "-1000", "--out", str(tmp_path / "b"), "--workers", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    import pandas as pd

    pd.testing.assert_frame_equal(gpd.read_parquet(tmp_path / "b" / "results.parquet"),
                                  gpd.read_parquet(tmp_path / "o2" / "results.parquet"))


def test_credit_fit_then_assess_and_batch_with_it_then_report(small_season, tmp_path: Path) -> None:
    """The fitted model scores both runs (its hash in rows and run.json, its PDs, not the shipped model's), fitted
    with the --l2 asked for."""
    import numpy as np

    from farmcredit.credit import load_risk_model
    from farmcredit.credit.portfolio import synthetic_history

    history = tmp_path / "loans.csv"
    synthetic_history(loans_per_season=300, seed=9).to_csv(history, index=False)
    model = tmp_path / "model.json"
    done = _run("credit", "fit", str(history), "--out", str(model), "--as-of", "2026-01-01", "--l2", "5")
    assert done.returncode == 0, done.stderr
    assert "out-of-time AUC" in done.stdout and "out-of-time AUC" not in done.stderr and model.exists()
    assert json.loads(model.read_text())["model"]["l2"] == 5
    fitted, shipped = load_risk_model(model), load_risk_model()
    for command, extra in (("assess", ()), ("batch", ("--workers", "1"))):
        out = tmp_path / command
        done = _run(command, str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir), "--model",
                    "rule", "--risk-model", str(model), "--out", str(out), "--quiet", *extra)
        assert done.returncode == 0, done.stderr
        results = gpd.read_parquet(out / "results.parquet")
        assert set(results["risk_model_hash"]) == {fitted.model_hash} != {shipped.model_hash}
        assert json.loads((out / "run.json").read_text())["models"]["risk"]["hash"] == fitted.model_hash
        scored = results["probability_of_default"].notna()
        assert scored.sum() >= 10
        np.testing.assert_allclose(results["probability_of_default"],
                                   fitted.probability_of_default(results), equal_nan=True)
        assert not np.allclose(results["probability_of_default"][scored],
                               shipped.probability_of_default(results)[scored])
    report = tmp_path / "report.html"
    done = _run("credit", "report", str(tmp_path / "assess"), "--reference", str(tmp_path / "batch"), "--out",
                str(report))
    assert done.returncode == 0, done.stderr
    assert "data:image/png;base64" in report.read_text()


def test_credit_fit_refuses_a_leaky_history_with_exit_2(tmp_path: Path) -> None:
    from farmcredit.credit.portfolio import synthetic_history

    history = tmp_path / "loans.csv"
    synthetic_history(loans_per_season=300, seed=9).to_csv(history, index=False)
    done = _run("credit", "fit", str(history), "--out", str(tmp_path / "m.json"), "--as-of", "2023-06-30")
    assert done.returncode == 2 and "leak" in done.stderr and "Traceback" not in done.stderr


def test_credit_fit_with_one_outcome_in_the_later_seasons_is_refused(tmp_path: Path) -> None:
    """Its calibration would learn from repaid loans alone: a model giving every applicant PD 0 (all grade A)."""
    from farmcredit.credit.portfolio import synthetic_history

    history = synthetic_history(loans_per_season=300, seed=5)
    history.loc[history["season"] != history["season"].min(), "defaulted"] = 0  # defaults in the first season only
    history.to_csv(tmp_path / "loans.csv", index=False)
    done = _run("credit", "fit", str(tmp_path / "loans.csv"), "--out", str(tmp_path / "m.json"), "--as-of",
                "2026-01-01")
    assert done.returncode == 2 and "the out-of-time calibration needs at least 10 of each" in " ".join(
        done.stderr.split())
    assert not (tmp_path / "m.json").exists()


def test_credit_fit_says_which_seasons_train_without_being_predicted(tmp_path: Path) -> None:
    """A first season whose loans all repaid cannot predict the second: the second only trains the scorecard."""
    from farmcredit.credit.portfolio import synthetic_history

    history = synthetic_history(loans_per_season=300, seed=5)
    history.loc[history["season"] == history["season"].min(), "defaulted"] = 0
    history.to_csv(tmp_path / "loans.csv", index=False)
    done = _run("credit", "fit", str(tmp_path / "loans.csv"), "--out", str(tmp_path / "m.json"), "--as-of",
                "2026-01-01")
    assert done.returncode == 0 and "season(s) 2020 train the scorecard but are not predicted out of time" in " ".join(
        done.stderr.split())
    assert json.loads((tmp_path / "m.json").read_text())["card"]["metrics"]["out_of_time_seasons"][0] == "2021"


def test_credit_fit_takes_a_history_without_declared_areas_and_says_the_feature_weighs_nothing(tmp_path) -> None:
    """A lender that never records declared areas: refused as 'the model needs it', though a blank declaration scores
    as an honest one."""
    from farmcredit.credit.portfolio import synthetic_history

    synthetic_history(loans_per_season=300, seed=9).assign(declared_area_ha=None).to_csv(tmp_path / "loans.csv",
                                                                                         index=False)
    done = _run("credit", "fit", str(tmp_path / "loans.csv"), "--out", str(tmp_path / "m.json"), "--as-of",
                "2026-01-01")
    assert done.returncode == 0, done.stderr
    assert "declared_over_high: 1 on every loan: it ranks none and weighs nothing" in " ".join(done.stderr.split())


def test_the_failure_summary_counts_like_failures_together() -> None:
    from farmcredit.cli import _reason_kind

    killed = ("KilledWorker: Attempted to run task 'measure_partition-{}' on 3 different workers, but all those "
              "workers died while running it. The last worker that attempt to run the task was tcp://127.0.0.1:{}.")
    keys = ("0a1f", str(uuid.uuid4()), str(uuid.uuid4()))  # a token; a uuid4, as Client.submit(pure=False) names
    kinds = {_reason_kind(killed.format(key, port)) for key, port in zip(keys, (38373, 41001, 41002))}
    assert kinds == {killed.format("x", 1).replace("'measure_partition-x'", "<task>").replace("tcp://127.0.0.1:1",
                                                                                             "<worker>")}
    # Each partition's own file: twelve failures were listed one by one.
    unwritten = "FileNotFoundError: [Errno 2] No such file or directory: '/out/partitions/{}'"
    files = (f".part-7299e3377c3a8c82.parquet.{uuid.uuid4().hex}.tmp", "part-0123456789abcdef.parquet")
    assert {_reason_kind(unwritten.format(name)) for name in files} == {unwritten.format("<partition file>")}
    denied = "OSError: /vsicurl/https://bucket/x/B04.tif: HTTP 403"  # which file failed is the news
    assert _reason_kind(denied) == denied


def test_a_progress_count_whose_total_is_not_yet_known_reads_a_question_mark() -> None:
    """The batch bar read "0/None parcels" while its inputs loaded (and fetch's "0/None scenes" while searching)."""
    from rich.progress import Progress

    from farmcredit.cli import _CountColumn

    column = _CountColumn("parcels")
    with Progress(column, disable=True) as progress:
        task = progress.add_task("reading parcels", total=None)
        assert str(column.render(progress.tasks[task])) == "0/? parcels"
        progress.update(task, completed=40, total=752)
        assert str(column.render(progress.tasks[task])) == "40/752 parcels"


def test_paths_with_brackets_are_printed_as_written_and_bad_seeds_refused(tmp_path: Path) -> None:
    """A path like bad[/x] is text, not console markup (it crashed the error handler; lab[red] lost its brackets)."""
    for name in ("bad[/x]", "lab[red]"):
        done = _run("evaluate", "rule", str(tmp_path / name))
        assert done.returncode == 2 and name in done.stderr and "Traceback" not in done.stderr, done.stderr
    for seed in ("-1", str(2**64)):  # numpy's generators take 0 .. 2**32 - 1 here: refused before any work
        done = _run("train", str(tmp_path), "--out", str(tmp_path / "m.safetensors"), "--seed", seed)
        assert done.returncode == 2 and "--seed" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_interrupts_bad_offsets_report_names_and_long_paths_exit_as_documented(small_season, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    import farmcredit.cli

    def abort(cause: BaseException) -> None:
        try:
            raise cause
        except BaseException as exc:
            raise click.exceptions.Abort() from exc

    # Ctrl-C and SIGTERM as a shell reports them; input ended
    for cause, code in ((KeyboardInterrupt(), 130), (Terminated(), 143), (EOFError(), 1)):
        monkeypatch.setattr(farmcredit.cli.cli, "main", lambda cause=cause, **_: abort(cause))
        with pytest.raises(SystemExit) as stopped:
            farmcredit.cli.main()
        assert stopped.value.code == code
    base = ["assess", str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir), "--model", "rule"]
    for offset in ("nan", "inf"):
        done = _run(*base, "--dn-offset", offset, "--out", str(tmp_path / "o"))
        assert done.returncode == 2 and f"{offset} is not a finite number" in done.stderr
    done = _run(*base, "--out", str(tmp_path / ("x" * 300) / "o"))
    assert done.returncode == 2 and "o: file name too long: a name in a path may be at most 255 bytes" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o").exists()
    done = _run("credit", "report", str(tmp_path), "--out", str(tmp_path / "report.pdf"))
    assert done.returncode == 2 and "name a .html or .md file" in done.stderr and not (tmp_path / "report.pdf").exists()
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(b"loan_id,season\n" + b"1,2023\n" * 500)[:60])
    done = _run("credit", "fit", str(tmp_path / "cut.csv.gz"), "--out", str(tmp_path / "m.json"))
    assert done.returncode == 2 and "cannot read history file" in done.stderr  # not 'aborted', as if interrupted
    (tmp_path / "stac").symlink_to(small_season.imagery_dir)  # a local folder named as a remote source is read
    done = subprocess.run([sys.executable, "-m", "farmcredit", "assess", str(small_season.parcels_path), "--imagery",
                           "stac", "--model", "rule", "--out", "o", "--quiet"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", ["assess", "batch"])
def test_the_measuring_bar_ends_with_measuring_and_each_later_stage_is_said(small_season, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            command: str) -> None:
    """The bar stayed up, N/N at 0 parcels/s with 0:00:00 remaining, through the portfolio-wide stages and the writing
    (55 of 90 s at 32,000 parcels); it ends as measuring does, and a line says each stage after."""
    from click.testing import CliRunner
    from rich.progress import Progress

    import farmcredit.batch.runner
    import farmcredit.outputs
    import farmcredit.pipeline
    from farmcredit.cli import WRITING_OUTPUTS, cli, console
    from farmcredit.pipeline import PORTFOLIO_STAGES

    events: list[str] = []

    def recorded(event: str, function: Callable) -> Callable:
        def run(*args: object, **kwargs: object) -> object:
            events.append(event)
            return function(*args, **kwargs)
        return run

    monkeypatch.setattr(Progress, "stop", recorded("bar ends", Progress.stop))
    for module in (farmcredit.pipeline, farmcredit.batch.runner):
        monkeypatch.setattr(module, "finish_assessment", recorded("finishing", module.finish_assessment))
    monkeypatch.setattr(farmcredit.outputs, "write_outputs", recorded("writing", farmcredit.outputs.write_outputs))
    said = console.print
    monkeypatch.setattr(console, "print", lambda text="", *a, **kw: (events.append(str(text)), said(text, *a, **kw)))
    extra = ["--workers", "1"] if command == "batch" else []
    done = CliRunner().invoke(cli, [command, str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir),
                                    "--model", "rule", "--out", str(tmp_path / "out"), *extra])
    assert done.exit_code == 0, done.output
    steps = [event for event in events if event in ("bar ends", "finishing", "writing") or event.endswith("...")]
    assert steps == ["bar ends", f"{PORTFOLIO_STAGES}...", "finishing", f"{WRITING_OUTPUTS}...", "writing"]


def test_joiners_are_spelling_and_shown_while_bidi_controls_are_escaped() -> None:
    """Escaping every format character wrote Persian کشت‌زار (its zero-width non-joiner) and emoji sequences as
    ``\\u200c`` and ``\\u200d``, an id no longer the one in the user's sheet; a bidi override reorders the line."""
    from farmcredit.cli import _shown

    for text in ("کشت\u200cزار-۱۲", "ग्राम\u200cपंचायत", "farm \U0001F468\u200d\U0001F33E 12", "地块-001"):
        assert _shown(text) == text
    assert _shown("P1\u202e10.0") == "P1\\u202e10.0" and _shown("P\u2066x\u2069") == "P\\u2066x\\u2069"
    assert _shown("P1\u200b") == "P1\\u200b" and _shown("\ufeffcredit") == "\\ufeffcredit"  # else printed as P1, credit


def test_a_second_run_into_a_folder_being_written_is_refused_and_changes_nothing(
        small_season, tmp_path: Path, lock_held_elsewhere) -> None:
    """Two assess runs into one --out left one's run.json (752 parcels) beside the other's tables (100)."""
    from farmcredit.batch.partitions import MANIFEST
    from farmcredit.locking import RESULTS_LOCK

    base = ["--imagery", str(small_season.imagery_dir), "--model", "rule", "--quiet", "--out"]
    out = tmp_path / "out"
    first = _run("assess", str(small_season.parcels_path), *base, str(out))
    assert first.returncode == 0, first.stderr
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    holder = lock_held_elsewhere(out / RESULTS_LOCK)
    for command in ("assess", "batch"):
        done = _run(command, str(small_season.parcels_path), *base, str(out))
        said = " ".join(done.stderr.split())
        assert done.returncode == 2 and "another farmcredit run is writing its results there" in said, said
        assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before
    unmade = tmp_path / "unmade"
    holder.kill()
    holder.wait()
    (out / "partitions").mkdir()
    (out / "partitions" / MANIFEST).write_text("{}")
    again = _run("assess", str(small_season.parcels_path), *base, str(out))
    assert again.returncode == 0 and " ".join(again.stderr.split()).count("holds a batch run's partitions") == 1
    failed = _run("assess", str(tmp_path / "missing.geojson"), *base, str(unmade))
    assert failed.returncode == 2 and not unmade.exists()  # no folder left holding only its lock


def test_sigterm_stops_a_run_as_ctrl_c_does_removing_its_temporary_files(tmp_path: Path) -> None:
    """Kubernetes, Airflow and `docker stop` send SIGTERM: it left the run's temporary pixel layers behind (and a
    container's PID 1 ignored it)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "farmcredit", "assess", str(SAMPLE / "parcels.geojson"), "--imagery",
                            str(SAMPLE / "imagery"), "--model", "rule", "--out", str(tmp_path / "out")],
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)})
    deadline = time.monotonic() + 120
    while not any(temp.glob("farmcredit-scratch-pixels-*")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before it was stopped"
    run.send_signal(signal.SIGTERM)
    stderr = run.communicate(timeout=120)[1]
    assert run.returncode == 143 and "terminated" in stderr and "Traceback" not in stderr, stderr
    assert not any(temp.iterdir())


def test_the_cli_loads_no_imagery_or_array_library_until_a_command_runs() -> None:
    """`farmcredit --help` stays fast: importing the CLI loaded rasterio and numpy (4x slower) once a module-level
    import reached the segmentation package."""
    import farmcredit.cli
    from farmcredit.china_maps import DATUMS
    from farmcredit.segmentation.card import AREA_INTERVAL_LEVEL

    loaded = subprocess.run([sys.executable, "-c", "import sys, farmcredit.cli; print(sorted(m for m in ('rasterio', "
                             "'numpy', 'torch', 'pandas') if m in sys.modules))"], capture_output=True, text=True,
                            check=True)
    assert loaded.stdout.strip() == "[]"
    level = next(p for p in farmcredit.cli.calibrate.params if p.name == "level")
    assert level.default == AREA_INTERVAL_LEVEL  # the CLI's copy of the library's default
    datum = next(p for p in farmcredit.cli.assess.params if p.name == "parcels_datum")
    assert tuple(datum.type.choices) == DATUMS  # and of the datums china_maps moves back


def test_python_gives_the_borrowers_the_cli_writes_not_a_sum_of_parcel_limits(tmp_path: Path) -> None:
    """``farmcredit.run_assessment`` gives each borrower's limit and decision as ``borrowers.parquet`` holds them;
    summing the parcels' limits (all ``assess`` returns) misses the cap, the rounding and the minimum loan."""
    import farmcredit

    out = tmp_path / "out"
    done = _run("assess", str(SAMPLE / "parcels.geojson"), "--imagery", str(SAMPLE / "imagery"), "--model", "rule",
                "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    written = pd.read_parquet(out / "borrowers.parquet")
    result = farmcredit.run_assessment(SAMPLE / "parcels.geojson", SAMPLE / "imagery", model="rule")
    columns = ["borrower_id", "decision", "loan_limit"]
    pd.testing.assert_frame_equal(pd.DataFrame(result.borrowers[columns]), written[columns])
    assert result.record["counts"] == json.loads((out / "run.json").read_text())["counts"]
    summed = result.parcels.groupby("borrower_id")["loan_limit"].sum()
    limits = written.set_index("borrower_id")["loan_limit"]
    assert (summed.reindex(limits.index) != limits).any()


def test_a_mistyped_model_exits_2_saying_what_a_model_is_and_a_built_in_name_in_capitals_runs(tmp_path: Path) -> None:
    """``--model cnnn`` said "CNN: model weights not found"; ``--model Rule`` was taken for a missing weights file;
    ``evaluate cnnn`` was told of ``model= (--model)``, an option it has not."""
    parcels, imagery = str(SAMPLE / "parcels.geojson"), str(SAMPLE / "imagery")
    done = _run("assess", parcels, "--imagery", imagery, "--model", "cnnn", "--out", str(tmp_path / "bad"))
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    what = ("the model (--model, or MODEL of evaluate and calibrate; model= in Python) is 'cnn', 'rule' or a "
            ".safetensors weights file with its .json card; 'cnnn' is none of these (no such file)")
    assert what in said and "weights not found" not in said
    for command in ("evaluate", "calibrate"):  # MODEL, a positional argument there, named as such
        done = _run(command, "cnnn", imagery)  # calibrate said "cnnn: the calibrated weights go to a .safetensors file"
        assert done.returncode == 2 and what in " ".join(done.stderr.split()), command
    done = _run("assess", parcels, "--imagery", imagery, "--model", " Rule", "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert set(pd.read_parquet(tmp_path / "out" / "results.parquet")["model_version"]) == {"phenology-rule-v1"}


def test_credit_fit_on_random_defaults_prints_the_auc_interval_and_warns(tmp_path: Path) -> None:
    """Defaults at random fitted and shipped a scorecard saying only "out-of-time AUC 0.532"."""
    import numpy as np

    from farmcredit.credit.portfolio import synthetic_history

    history = synthetic_history(loans_per_season=300, seed=9)
    history.assign(defaulted=np.random.default_rng(1).permutation(history["defaulted"].to_numpy())).to_csv(
        tmp_path / "loans.csv", index=False)
    done = _run("credit", "fit", str(tmp_path / "loans.csv"), "--out", str(tmp_path / "m.json"), "--as-of",
                "2026-01-01")
    assert done.returncode == 0 and "(95% CI 0." in done.stdout and " defaults in " in done.stdout  # `> fit.txt`
    said = " ".join(done.stderr.split())
    assert "warning: the scorecard ranks loans no better than chance" in said and "its grades would be noise" in said
    assert json.loads((tmp_path / "m.json").read_text())["card"]["as_of"] == "2026-01-01"  # the leakage check's date


def test_an_out_under_the_home_folder_written_as_tilde_gets_every_output(small_season, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell leaves --out=~/x (or a quoted '~/x', or a scheduler's argument) as it is: the lock, marker and rasters
    went to ./~/x while pandas wrote the tables over $HOME/x's, another run's."""
    from click.testing import CliRunner

    from farmcredit.cli import cli

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(cli, ["assess", str(small_season.parcels_path), "--imagery",
                                    str(small_season.imagery_dir), "--model", "rule", "--out", "~/x", "--quiet"])
    assert done.exit_code == 0, done.output
    written = json.loads((tmp_path / "home" / "x" / "run.json").read_text())["outputs"].values()
    assert all((tmp_path / "home" / "x" / name).is_file() for name in written)
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize(("name", "said"), [("田" * 90, "file name too long"), ("loopA", "a loop of symbolic links")])
@pytest.mark.parametrize("where", ["PARCELS", "--imagery", "--out", "credit report --out"])
def test_a_path_the_system_cannot_look_up_exits_2_naming_it_and_why(small_season, tmp_path: Path, name: str,
                                                                     said: str, where: str) -> None:
    """A name over 255 bytes, or a loop of symbolic links, ended in a traceback (exit 1) or 'does not exist'."""
    from click.testing import CliRunner

    from farmcredit.cli import cli

    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    bad = tmp_path / name / "o.md"
    args = {"PARCELS": [str(bad), "--imagery", str(small_season.imagery_dir), "--out", str(tmp_path / "o")],
            "--imagery": [str(small_season.parcels_path), "--imagery", str(bad), "--out", str(tmp_path / "o")],
            "--out": [str(small_season.parcels_path), "--imagery", str(small_season.imagery_dir), "--out", str(bad)]}
    command = ["credit", "report", str(tmp_path), "--out", str(bad)] if where.startswith("credit") else [
        "assess", *args[where], "--model", "rule", "--quiet"]
    done = CliRunner().invoke(cli, command)
    message = " ".join(done.output.split())
    assert done.exit_code == 2 and f"'{where.split()[-1]}': path {bad}: {said}" in message, done.output
    assert not (tmp_path / "o").exists()
