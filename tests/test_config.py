"""Configuration is validated at load time and hashed deterministically."""

import codecs
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from farmcredit.config import (
    ISO_4217,
    ISO_4217_NOT_LENT,
    LOCAL_CURRENCY_NAMES,
    UNMODELLED_SEASONS,
    load_config,
    packaged_config_text,
)
from farmcredit.errors import ConfigError

DEFAULT = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(DEFAULT.read_text())
    mutate(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_packaged_default_is_the_repository_config() -> None:
    assert load_config() == load_config(DEFAULT)
    assert set(load_config().crops) >= {"rice", "wheat", "maize", "soybean"}
    assert load_config().parcels.max_part_gap_m == 100.0  # PARTS_APART: a field cut by a road is tens of metres


def test_the_packaged_config_states_its_sources_and_points_to_no_document_it_lacks() -> None:
    """Its comments, printed by `farmcredit config`, pointed to AGRONOMY.md, which neither the package nor a
    checkout has: the crop calendars are written out instead."""
    text = packaged_config_text()
    assert re.findall(r"[\w./-]+\.md\b", text) == []
    # A wheel install has no scripts/: each script named is said to be a checkout's.
    assert text.count("scripts/") == len(re.findall(r"in a checkout of farmcredit's repository:\s+#\s+scripts/",
                                                    text)) > 0
    assert "winter wheat sown early-mid October" in text
    # A price per 斤 (0.5 kg) is half the price per kg: given so, every crop would lend on half its revenue.
    assert text.count("CNY per kg (1 斤 = 0.5 kg: double a price per 斤") == 2
    # The seasons it says not to alias are those the unknown-crop warning offers no close crop for.
    assert f"no names of seasons the templates do not model ({', '.join(UNMODELLED_SEASONS)})" in " ".join(
        text.replace("#", "").split())


def test_one_margin_for_every_parcel_size_is_still_read(tmp_path: Path) -> None:
    # A config written before margins by size: one number, no bands.
    uniform = _write(tmp_path, lambda raw: (raw["cropland_rule"].update(mixed_margin=0.067),
                                            raw["cropland_rule"].pop("area_bands_ha")))
    assert load_config(uniform).cropland_rule.area_margins.at(np.array([0.05, 3.0])).tolist() == [0.067, 0.067]
    assert load_config().cropland_rule.area_margins.bands_ha == (0.1, 0.2, 0.4)


def test_hash_is_stable_and_changes_with_any_value(tmp_path: Path) -> None:
    assert load_config().config_hash() == load_config(DEFAULT).config_hash()
    changed = _write(tmp_path, lambda raw: raw["credit"].update(advance_rate=0.4))
    assert load_config(changed).config_hash() != load_config().config_hash()


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda raw: raw["crops"]["wheat"].update(price=-1), "crops.wheat.price"),
        (lambda raw: raw["credit"].update(parcel_cap=-5), "credit.parcel_cap"),
        (lambda raw: raw["credit"].update(unknown_knob=3), "credit.unknown_knob"),
        (lambda raw: raw["crops"]["rice"].update(yield_curve=[[0.3, 5.0], [0.8, 2.0]]), "crops.rice.yield_curve"),
        (lambda raw: raw["credit"].update(declared_area_band=[1.1, 1.2]), "credit"),
        (lambda raw: raw.update(regions={"henan": {"crops": {"barley": {"price": 2.0}}}}),
         "yaml: regions.henan.crops"),  # the file, then the key: nothing (no "Value error, ") before it
        (lambda raw: raw["credit"]["grades"][0].update(multiplier=0.1), "grades"),
        (lambda raw: raw["crops"]["maize"].update(other_cost_per_ha=-10), "crops.maize.other_cost_per_ha"),
        (lambda raw: raw.update(crops={}), "crops"),
        (lambda raw: raw["crops"].update(fallow=raw["crops"].pop("soybean")), "crops: fallow names what a parcel is"),
        (lambda raw: raw["imagery"].update(clear_scl_classes=[]), "imagery.clear_scl_classes"),
        (lambda raw: raw["imagery"].update(clear_scl_classes=[4, 5, 99]), "imagery.clear_scl_classes.2"),
        (lambda raw: raw["credit"].update(parcel_cap=float("inf"), borrower_cap=float("inf")), "credit.parcel_cap"),
        (lambda raw: raw["credit"].update(min_loan=10**9), "min_loan 1,000,000,000 is above borrower_cap 200,000"),
        # Every borrower's total is capped at 1,099, then rounded down to 1,000: all would be declined under 1,050.
        (lambda raw: raw["credit"].update(parcel_cap=1000, borrower_cap=1099, min_loan=1050),
         r"credit: min_loan 1,050 is above borrower_cap 1,099 rounded down to a multiple of rounding_step "
         r"100 \(1,000\), the most any borrower can be offered: every borrower would be declined LIMIT_BELOW_MINIMUM"),
        (lambda raw: raw["credit"].update(borrower_cap=150, parcel_cap=150, rounding_step=200, min_loan=200),
         r"rounding_step 200 exceeds borrower_cap 150: every limit would round down to 0"),
        (lambda raw: raw["credit"].update(min_loan=0), "min_loan must be at least rounding_step"),
        (lambda raw: raw["credit"]["grades"][1].update(grade="A"), "each grade needs its own name"),
        # A start after the end wraps the new year; over half the year, it is more likely the two swapped.
        (lambda raw: raw["agronomy"].update(flood_window_doy=[185, 135]),
         r"agronomy.flood_window_doy: flood_window_doy \[185, 135\] wraps the new year \(its start is "
         r"after its end\), so it spans 316 days; transplanting takes weeks: give \[135, 185\] if the two are swapped"),
        (lambda raw: raw["crops"]["wheat"].update(ndvi_template=[[60, 0.2], [400, 1.5]]), "crops.wheat.ndvi_template"),
        (lambda raw: raw["crops"]["rice"].update(ndvi_template=[[60, -0.2], [200, 0.0]]), "a peak NDVI above 0"),
        (lambda raw: raw["crops"]["soybean"].update(yield_curve=[[0.3, 0.0], [0.8, 0.0], [0.9, 2.0]]),
         "a yield above 0 at the template's peak NDVI 0.75"),
        (lambda raw: raw["crops"]["soybean"].update(aliases=["大豆", "玉米"]), "crops.soybean.aliases: '玉米' also "
                                                                              "names maize"),
        (lambda raw: raw["crops"]["soybean"].update(aliases=["Maize"]), "'Maize' also names maize"),
        (lambda raw: raw["crops"]["rice"].update(aliases=["Fallow"]), "'Fallow' also names what a parcel is"),
        (lambda raw: raw["crops"]["rice"].update(aliases=["休耕"]), "'休耕' also names what a parcel is"),  # fallow
        (lambda raw: raw["crops"]["rice"].update(aliases=["不详"]), "'不详' also names what a parcel is"),  # unknown
        (lambda raw: raw["crops"].update({"未知": raw["crops"].pop("soybean")}), "crops: 未知 names what a parcel is"),
        (lambda raw: raw["crops"]["rice"].update(aliases=["  "]), "crops.rice.aliases.0"),
        # A southern season written in its own order, November to April, falls back at the new year.
        (lambda raw: raw["crops"]["maize"].update(ndvi_template=[[305, 0.2], [335, 0.4], [15, 0.75], [45, 0.85],
                                                                 [80, 0.6], [120, 0.25]]),
         r"crops.maize.ndvi_template: needs days of the year in increasing order; a season across the "
         r"new year: sort by day and add points on day 1 and 366 \(its NDVI on 1 January\) so the template goes "
         r"round the calendar$"),
        (lambda raw: raw["crops"]["maize"].update(ndvi_template=[[305, 0.2], [15, 0.75], [200, 0.8], [45, 0.85]]),
         "crops.maize.ndvi_template: needs at least two points, their day of the year \\(the first number of each\\) "
         "strictly increasing: point 2's, 15, is not above point 1's, 305$"),
        (lambda raw: raw["crops"]["maize"].update(ndvi_template=[[123, 0.8]]),
         "crops.maize.ndvi_template: needs at least two points, their day of the year"),
        # A range error names the point outside it.
        (lambda raw: raw["crops"]["maize"].update(ndvi_template=[[1, 0.2], [150, 0.8], [400, 0.2]]),
         r"crops.maize.ndvi_template: needs \(day of the year 1-366, NDVI -1..1\) points: point 3, \[400, 0.2\], is "
         "outside them$"),
        (lambda raw: raw["crops"]["maize"].update(ndvi_template=[[0, 0.2], [150, 0.8]]),
         r"point 1, \[0, 0.2\], is outside them$"),
        (lambda raw: raw["crops"]["maize"].update(yield_curve=[[0.6, 1.8], [0.3, 0.6]]),
         "crops.maize.yield_curve: needs at least two points, their peak NDVI \\(the first number of each\\) strictly "
         "increasing: point 2's, 0.3, is not above point 1's, 0.6$"),
        (lambda raw: raw.update(regions={"河南": {"crops": {"小麦": {"price": 2.0}, "Wheat": {"price": 2.1}}}}),
         "regions.河南.crops: 'Wheat' and '小麦' name the same crop"),
        (lambda raw: raw["crops"]["wheat"].update(price=2360),
         "crops.wheat: a typical harvest sells for 760 times"),
        (lambda raw: raw["crops"]["maize"].update(yield_curve=[[0.3, 100.0], [0.9, 500.0]]),
         "yield_curve in t/ha \\(not kg/mu or 斤/mu\\)"),
        # A price per 斤 (0.5 kg), as Chinese markets quote it, halves revenue: every message on a price in CNY says so.
        (lambda raw: raw["crops"]["wheat"].update(price=2360),
         r"give price in CNY per kg \(1 斤 = 0.5 kg: double a price per 斤\), not per tonne"),
        (lambda raw: raw["crops"]["rice"].update(yield_curve=[[0.3, 0.1], [0.95, 0.55]]),
         r"price in CNY per kg \(1 斤 = 0.5 kg: double a price per 斤\) and cost_per_ha per ha"),
        # Prices in euros are per kg in euros, not in CNY, and no market quotes them per 斤.
        (lambda raw: (raw["credit"].update(currency="EUR"), raw["crops"]["wheat"].update(price=236)),
         r"crops.wheat: a typical harvest sells for 76 times cost_per_ha \(5.8 t/ha x 1000 kg/t x 236 EUR per kg = "
         r"1,368,800 EUR per ha against 18,000 EUR; field crops sell for 1/5 to 5 times their costs\): give price in "
         r"EUR per kg, not per bag \(50/90 kg\), quintal \(100 kg\) or tonne, yield_curve in t/ha \(not kg/ha, "
         r"bags/ha or quintals/ha\) and cost_per_ha per ha, not per acre \(1 acre = 0.4047 ha\)$"),
        # An Indian minimum support price per quintal (100 kg), as it is published: 2,275 INR for wheat.
        (lambda raw: (raw["credit"].update(currency="INR"), raw["crops"]["wheat"].update(price=2275)),
         r"crops.wheat: a typical harvest sells for \S+ times cost_per_ha \([^)]+\): give price in INR per kg, not per "
         r"bag \(50/90 kg\), quintal \(100 kg\) or tonne"),
        # A Kenyan price per 90 kg bag: the message gives the shillings, and no mu.
        (lambda raw: (raw["credit"].update(currency="KES"), raw["crops"]["maize"].update(price=3600)),
         r"crops.maize: a typical harvest sells for 1,376 times cost_per_ha \(6.5 t/ha x 1000 kg/t x 3600 KES per kg "
         r"= 23,400,000 KES per ha against 17,000 KES; [^)]+\): give price in KES per kg, not per bag \(50/90 kg\), "
         r"quintal"),
        (lambda raw: (raw["credit"].update(currency="EUR"), raw.update(regions={"NL": {"crops": {"maize": {
            "cost_per_ha": 100_000}}}})),
         r"regions.NL.crops.maize: a typical harvest sells for 0.14 times cost_per_ha \([^)]+\): give yield_curve in "
         r"t/ha \(not t/acre: 1 acre = 0.4047 ha\), price in EUR per kg and cost_per_ha per ha$"),
        (lambda raw: raw.update(regions={"河南": {"crops": {"玉米": {"price": 2200}}}}),
         "regions.河南.crops.玉米: a typical harvest sells for"),
        (lambda raw: raw["agronomy"].update(min_clear_observations=2), "agronomy.min_clear_observations"),
        (lambda raw: raw["agronomy"].update(min_share_on_imagery=50), "agronomy.min_share_on_imagery"),
        # Costs per mu (1/15 ha): every crop's harvest would sell for 11-14 times its cost.
        (lambda raw: [spec.update(cost_per_ha=spec["cost_per_ha"] / 15) for spec in raw["crops"].values()],
         r"crops.maize: a typical harvest sells for 13 times cost_per_ha \(6.5 t/ha x 1000 kg/t x 2.2 "
         "CNY per kg = 14,300 CNY per ha against 1,133 CNY; field crops"),
        (lambda raw: raw["crops"]["soybean"].update(cost_per_ha=800), r"cost_per_ha per ha \(not per mu: a mu is 1/15"),
        (lambda raw: raw["crops"]["wheat"].update(yield_curve=[[x, y / 15] for x, y in raw["crops"]["wheat"]
                                                               ["yield_curve"]]),
         "crops.wheat: a typical harvest sells for 0.051 times cost_per_ha"),
        (lambda raw: raw["crops"]["rice"].update(yield_curve=[[0.3, 0.1], [0.95, 0.55]]),
         r"give yield_curve in t/ha \(not t/mu: a mu is 1/15 ha\)"),
        (lambda raw: raw.update(regions={"henan": {"crops": {"wheat": {"cost_per_ha": 1200}}}}),
         "regions.henan.crops.wheat: a typical harvest sells for 11 times"),
        (lambda raw: raw["crops"]["rice"].update(yield_curve=[[30, 1.5], [60, 4.6], [85, 7.1], [95, 8.2]]),
         r"crops.rice.yield_curve: needs \(peak NDVI -1..1, yield t/ha\) points: point 1, \[30, 1.5\], is outside "
         r"them; give NDVI as a fraction \(0.85, not 85\)$"),
        (lambda raw: raw["credit"].update(currency=""), "credit.currency: '' is not an ISO 4217 currency"),
        (lambda raw: raw["credit"].update(currency="yuan"),
         "credit.currency: 'yuan' is a local name of CNY: give its ISO 4217 code, CNY"),
        # Three letters that name no currency, and the local spellings a Kenyan or Ghanaian lender writes.
        (lambda raw: raw["credit"].update(currency="ABC"), "credit.currency: 'ABC' is not an ISO 4217"),
        (lambda raw: raw["credit"].update(currency="KSh"), "'KSh' is a local name of KES: give its ISO 4217 code, KES"),
        (lambda raw: raw["credit"].update(currency="Kshs."), "'Kshs.' is a local name of KES"),
        (lambda raw: raw["credit"].update(currency="RMB"), "'RMB' is a local name of CNY"),
        (lambda raw: raw["credit"].update(currency="GH¢"), "'GH¢' is a local name of GHS"),
        (lambda raw: raw["credit"].update(currency="GHC"), "'GHC' is a local name of GHS"),
        (lambda raw: raw["credit"].update(currency="TSh"), "'TSh' is a local name of TZS"),
        (lambda raw: raw["credit"].update(currency="USh"), "'USh' is a local name of UGX"),
        (lambda raw: raw["credit"].update(currency="C1Y"), "credit.currency"),
        # ISO 4217 codes of no currency lent in (gold, a fund, testing) loaded as one.
        (lambda raw: raw["credit"].update(currency="XAU"),
         "credit.currency: 'XAU' is an ISO 4217 code of a precious metal, fund, accounting or testing unit, not a "
         "currency to lend in"),
        (lambda raw: raw["credit"].update(currency="clf"), "'clf' is an ISO 4217 code of a precious metal"),
        (lambda raw: raw["credit"].update(currency="XXX"), "not a currency to lend in"),
        (lambda raw: raw["credit"].update(currency=156), "credit.currency"),
        (lambda raw: raw["crops"]["wheat"].update(price=True), "crops.wheat.price: Input should be a valid number"),
        (lambda raw: raw["crops"]["wheat"].update(price="2.36"), "crops.wheat.price: Input should be a valid number"),
        (lambda raw: raw["credit"].update(max_reasons=True), "credit.max_reasons: Input should be a valid integer"),
        (lambda raw: raw["credit"].update(lend_on_area="lower"),
         "credit.lend_on_area: Input should be 'estimate' or 'low'"),
        (lambda raw: raw["agronomy"].update(min_peers="5"), "agronomy.min_peers: Input should be a valid integer"),
        (lambda raw: raw["imagery"].update(clear_scl_classes=[4, True]), "imagery.clear_scl_classes.1"),
        (lambda raw: raw["crops"]["rice"].update(flooded="no"), "crops.rice.flooded"),
        (lambda raw: raw["cropland_rule"].update(mixed_margin=[0.1, 0.05]),
         "cropland_rule: mixed_margin needs one margin per parcel-size band, 4 for area_bands_ha"),
        (lambda raw: raw["cropland_rule"].update(area_bands_ha=[0.4, 0.2, 0.1]), "area_bands_ha must rise"),
        (lambda raw: raw["cropland_rule"].update(mixed_margin=[0.1, -0.1, 0.1, 0.1]),
         "cropland_rule: mixed_margin must be a finite number 0 or more"),
        (lambda raw: raw["cropland_rule"].update(mixed_margin="0.067"),
         "cropland_rule.mixed_margin.0: Input should be a valid number"),
        (lambda raw: (raw["cropland_rule"].pop("mixed_margin"), raw["cropland_rule"].update(area_bands_ha=[0.5, 1, 2])),
         r"area_bands_ha needs its own mixed_margin, one per band \(the default margins were fitted for the default "
         r"bands; fit them with the script in a checkout of farmcredit's repository: "
         r"scripts/calibrate_area_interval.py\)"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(tmp_path: Path, mutate, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(_write(tmp_path, mutate))


def test_currencies_of_iso_4217_load_as_do_the_shipped_configs() -> None:
    """credit.currency is one of ISO 4217's codes (three letters were enough: KSH and ABC loaded)."""
    assert {"CNY", "KES", "GHS", "NGN", "TZS", "UGX", "ZMW", "EUR", "USD"} <= ISO_4217
    assert all(len(code) == 3 and code.isupper() for code in ISO_4217)
    assert not set(LOCAL_CURRENCY_NAMES) & ISO_4217 and set(LOCAL_CURRENCY_NAMES.values()) <= ISO_4217
    assert {"XAF", "XOF", "XCD", "XPF", "XCG"} <= ISO_4217 and not ISO_4217 & ISO_4217_NOT_LENT
    for path in Path(__file__).parents[1].glob("configs/*.yaml"):
        assert load_config(path).credit.currency in ISO_4217


@pytest.mark.parametrize(("written", "meant"), [("R$", "BRL"), ("reais", "BRL"), ("Real", "BRL"), ("Gs.", "PYG"),
                                               ("₲", "PYG"), ("guaraníes", "PYG"), ("AR$", "ARS")])
def test_a_south_american_currency_s_local_name_is_told_its_iso_code(
        tmp_path: Path, written: str, meant: str) -> None:
    """R$, reais and Gs. were told only "not an ISO 4217 currency code"."""
    with pytest.raises(ConfigError, match=re.escape(f"{written!r} is a local name of {meant}: give its ISO 4217 code, "
                                                    f"{meant}")):
        load_config(_write(tmp_path, lambda raw: raw["credit"].update(currency=written)))


def test_currency_is_read_as_its_upper_case_code(tmp_path: Path) -> None:
    """A run in 'cny' is a run in CNY: `credit report` compares runs by the code."""
    config = load_config(_write(tmp_path, lambda raw: raw["credit"].update(currency=" cny")))
    assert config.credit.currency == "CNY" and config.config_hash() == load_config().config_hash()


def test_numbers_keep_yaml_integers_and_exponents(tmp_path: Path) -> None:
    """Strict numbers still take an integer where a float is meant, and 1e5 (text to YAML 1.1) as 100000."""
    path = tmp_path / "numbers.yaml"
    path.write_text("credit:\n  currency: CNY\n  parcel_cap: 1e5\n  borrower_cap: 2.5e+5\ncrops:\n  wheat:\n"
                    "    ndvi_template: [[60, 0], [115, 1]]\n    yield_curve: [[0, 1], [1, 6]]\n    price: 3\n"
                    "    cost_per_ha: 18000\n")
    config = load_config(path)
    assert (config.credit.parcel_cap, config.credit.borrower_cap, config.crops["wheat"].price) == (1e5, 2.5e5, 3.0)
    assert config.crops["wheat"].yield_curve == ((0.0, 1.0), (1.0, 6.0))


def test_lists_whose_order_means_nothing_hash_alike(tmp_path: Path) -> None:
    """SCL classes and aliases are sets: reordered or repeated, the same settings and hash; a template is ordered."""
    def reorder(raw: dict) -> None:
        raw["imagery"]["clear_scl_classes"] = [6, 5, 4, 4]
        raw["crops"]["maize"]["aliases"] = list(reversed(raw["crops"]["maize"]["aliases"])) + ["corn"]

    default, reordered = load_config(), load_config(_write(tmp_path, reorder))
    assert reordered == default and reordered.config_hash() == default.config_hash()
    assert reordered.imagery.clear_scl_classes == (4, 5, 6)


def test_the_same_settings_written_another_way_hash_alike(tmp_path: Path) -> None:
    """A region's crop named by an alias is the crop, and aliases match folded: 小麦: or wheat:, Milho or milho (or a
    crop's own name as an alias) price and match the same parcels, so `credit report` must not call the runs' configs
    different; another alias or another price still does."""
    def written(wheat: str, maize_aliases: list[str], price: float = 2.5) -> str:
        def mutate(raw: dict) -> None:
            raw["crops"]["maize"]["aliases"] = maize_aliases
            raw["regions"] = {"410100": {"crops": {wheat: {"price": price}, "soy": {"price": 4.75}}}}
        folder = tmp_path / f"{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        return load_config(_write(folder, mutate)).config_hash()

    first = written("小麦", ["玉米", "Milho", "corn"])
    assert written("wheat", ["corn", "milho", "玉米"]) == first
    assert written(" Ｗheat", ["玉米", "MILHO ", "Corn", "maize"]) == first
    assert written("小麦", ["玉米", "Milho", "corn", "mais"]) != first  # matches other parcels
    assert written("小麦", ["玉米", "Milho", "corn"], price=2.6) != first
    assert written("maize", ["玉米", "Milho", "corn"]) != first  # another crop's regional price


def test_missing_or_non_yaml_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("crops: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_settings_a_config_leaves_out_take_the_packaged_defaults() -> None:
    """A regional config may give only what differs: every built-in default is the packaged YAML's value."""
    default = load_config()
    for section in ("imagery", "cropland_rule", "agronomy", "credit"):
        assert type(getattr(default, section))() == getattr(default, section), section


def test_a_config_of_one_setting_takes_the_packaged_crops(tmp_path: Path) -> None:
    path = tmp_path / "cap.yaml"
    path.write_text("credit:\n  parcel_cap: 1500\n")
    config, default = load_config(path), load_config()
    assert config.credit.parcel_cap == 1500 and config.crops == default.crops and config.imagery == default.imagery


def test_another_currency_with_the_packaged_crops_is_refused_naming_what_to_set(tmp_path: Path) -> None:
    """A Zambian lender's `credit: {currency: ZMW}` ran on the packaged crops' CNY prices and costs, and the CNY caps,
    all read as kwacha ("approved 240,900 ZMW"), with no word."""
    path = tmp_path / "zambia.yaml"
    path.write_text("credit:\n  currency: zmw\n")
    with pytest.raises(ConfigError, match=re.escape(
            f"invalid config {path}: credit.currency is ZMW but the crops' prices and costs are the packaged CNY ones: "
            "give a crops section in ZMW (farmcredit config --out mine.yaml writes one to edit)")):
        load_config(path)


def test_crops_of_ones_own_without_a_currency_are_refused_naming_the_line_to_add(tmp_path: Path) -> None:
    """A Zambian config with its crops priced in kwacha and no currency line lent in CNY, the packaged currency, under
    the yuan caps and minimum ("approved 902,600 CNY"), with no word: a file's crops section needs credit.currency, in
    a file or a mapping as a file's YAML reads; a Config built in Python is not refused (its currency is set)."""
    raw = yaml.safe_load(DEFAULT.read_text())
    raw["crops"]["maize"].update(price=8.5, cost_per_ha=12_000, other_cost_per_ha=1200)
    raw["credit"] = {"parcel_cap": 80_000, "borrower_cap": 160_000, "min_loan": 500}
    path = tmp_path / "zambia.yaml"
    path.write_text(yaml.safe_dump(raw))
    told = ("it gives a crops section of its own but no credit.currency, which would lend in CNY whatever currency its "
            "prices and costs are in: add `currency: CNY` under `credit:` (a `credit:` section of its own where the "
            "file has none) where they are in yuan (as `farmcredit config --out FILE` writes it), or the ISO 4217 "
            "code of theirs (e.g. ZMW, KES, INR)")
    with pytest.raises(ConfigError, match=re.escape(f"invalid config {path}: {told}")):
        load_config(path)
    with pytest.raises(ConfigError, match=re.escape(f"invalid config config= (a mapping): {told}")):
        load_config(raw)
    raw["credit"]["currency"] = "ZMW"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    assert config.credit.currency == "ZMW" and config.crops["maize"].price == 8.5
    assert load_config(config.model_copy(update={"credit": config.credit.model_copy(update={"currency": "CNY"})}))


@pytest.mark.parametrize(
    ("credit", "copied", "warned"),
    [
        ({}, True, None),  # in CNY the packaged amounts are the config's own
        ({"currency": "EUR", "parcel_cap": 15_000, "borrower_cap": 30_000, "min_loan": 150, "rounding_step": 10}, True,
         None),
        ({"currency": "EUR"}, True, "credit.parcel_cap, credit.borrower_cap, credit.min_loan, credit.rounding_step are "
                                    "the packaged values in CNY (100,000, 200,000, 1,000, 100): give them in EUR"),
        ({"currency": "EUR"}, False, "credit.parcel_cap, credit.borrower_cap, credit.min_loan, credit.rounding_step "
                                     "are the packaged values in CNY (100,000, 200,000, 1,000, 100): give them in EUR"),
        ({"currency": "EUR", "parcel_cap": 15_000, "borrower_cap": 30_000}, False,
         "credit.min_loan, credit.rounding_step are the packaged values in CNY (1,000, 100): give them in EUR"),
        ({"currency": "EUR", "parcel_cap": 15_000, "borrower_cap": 30_000, "min_loan": 150}, False,
         "credit.rounding_step is the packaged value in CNY (100): give it in EUR"),
        # rounding_step 100 set deliberately was warned of on every run, "credit.rounding_step keep the packaged ..."
        ({"currency": "EUR", "parcel_cap": 15_000, "borrower_cap": 30_000, "min_loan": 150, "rounding_step": 100},
         False, None),
        ({"currency": "EUR", "parcel_cap": 15_000, "borrower_cap": 30_000}, True,
         "credit.min_loan is the packaged value in CNY (1,000): give it in EUR"),
        # A copied config with one cap edited: the other cap and the minimum loan were silenced by it, in yuan figures.
        ({"currency": "EUR", "borrower_cap": 500_000}, True, "credit.parcel_cap, credit.min_loan are the packaged "
                                                             "values in CNY (100,000, 1,000): give them in EUR"),
    ],
)
def test_amounts_of_money_left_at_the_packaged_values_in_another_currency_are_warned_of(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, credit: dict, copied: bool, warned: str | None) -> None:
    """A config in EUR with its own crops loads; caps and the minimum loan still in yuan figures are named, whether the
    file leaves them out or gives them (``copied``: the packaged credit section, edited); beside an amount of its own,
    a rounding_step it gives at its packaged value is meant, the caps and the minimum loan never."""
    def edit(raw: dict) -> None:
        raw["credit"] = {**raw["credit"], **credit} if copied else credit

    path = _write(tmp_path, edit)  # a crops section given (the packaged one)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        config = load_config(path)
    assert load_config(config) == config  # checked again as assess checks a Config: not refused there either
    assert config.credit.currency == credit.get("currency", "CNY")
    logged = [record.getMessage() for record in caplog.records if "the packaged value" in record.getMessage()]
    assert logged == ([] if warned is None else [
        f"{path}: credit.currency is EUR but {warned} (a rounding_step given at its packaged value is taken as meant "
        "where the file gives another amount of money in EUR)"])


def test_yaml_merge_keys_reuse_a_crop(tmp_path: Path) -> None:
    """``<<: *anchor`` reuses a mapping (not a key given twice): a spring wheat as wheat at another price."""
    lines = DEFAULT.read_text().replace("\n  wheat:\n", "\n  wheat: &wheat\n").splitlines()
    end_of_crops = next(i for i, line in enumerate(lines) if i > lines.index("crops:") and line[:1].isalpha())
    lines[end_of_crops:end_of_crops] = ["  spring_wheat:", "    <<: *wheat", "    aliases: [春小麦]", "    price: 2.5"]
    path = tmp_path / "merged.yaml"
    path.write_text("\n".join(lines) + "\n")
    config = load_config(path)
    assert config.crops["spring_wheat"].price == 2.5
    assert config.crops["spring_wheat"].yield_curve == config.crops["wheat"].yield_curve
    assert [config.crop_named(name) for name in ("春小麦", "小麦", " ＷＨＥＡＴ", "barley", None, pd.NA, np.nan)] == [
        "spring_wheat", "wheat", "wheat", "barley", None, None, None]  # a missing value of any kind is none
    barley_only = config.model_copy(update={"crops": {"barley": config.crops["wheat"].model_copy(update={
        "aliases": ("大麦",)})}})
    assert [barley_only.crop_named(name) for name in ("小麦", "大麦")] == ["小麦", "barley"]  # not the copied config's
    lines.remove("    aliases: [春小麦]")  # wheat's aliases, copied with it, would name two crops
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="'冬小麦' also names wheat; a name may mean one crop .*<<: keeps the alias"):
        load_config(path)


def test_a_crop_of_ones_own_must_give_its_other_costs(tmp_path: Path) -> None:
    """Cotton added with ndvi_template, yield_curve, price and cost_per_ha got 0 other costs and lent on its whole
    revenue, 23% more than at the packaged crops' 10% of cost_per_ha, silently: a crop the packaged config does not
    define must give other_cost_per_ha (0 where there truly is none), named with the share the packaged crops take; a
    packaged crop, by its name or an alias, may leave it out (it is 0, as before)."""
    cotton = {"ndvi_template": [[60, 0.18], [160, 0.35], [225, 0.85], [304, 0.25]],
              "yield_curve": [[0.3, 1.0], [0.85, 4.5]], "price": 7.0, "cost_per_ha": 30000}
    own = _write(tmp_path, lambda raw: raw["crops"].update(cotton=cotton))
    with pytest.raises(ConfigError, match=r"crops.cotton: other_cost_per_ha missing, which a crop the packaged config "
                                          r"does not define must give: the cash.*\(CNY per ha.*the packaged crops take "
                                          r"10% of their cost_per_ha \(3,000 here\); give 0 if there truly is none$"):
        load_config(own)
    for other in (0, 3000):
        given = _write(tmp_path, lambda raw, other=other: raw["crops"].update(cotton={**cotton,
                                                                                     "other_cost_per_ha": other}))
        assert load_config(given).crops["cotton"].other_cost_per_ha == other

    def packaged_without(raw: dict) -> None:  # wheat as itself, maize under its alias corn, soybean aliased 黄豆
        for spec in raw["crops"].values():
            spec.pop("other_cost_per_ha")
        raw["crops"]["corn"] = {**raw["crops"].pop("maize"), "aliases": []}
        raw["crops"]["beans"] = {**raw["crops"].pop("soybean"), "aliases": ["黄豆"]}
    config = load_config(_write(tmp_path, packaged_without))
    assert {crop: spec.other_cost_per_ha for crop, spec in config.crops.items()} == {
        "wheat": 0, "rice": 0, "corn": 0, "beans": 0}
    assert "A crop of your own (not one\n  # of these four, by name or alias) must give it" in packaged_config_text()


def test_region_overrides_name_crops_as_parcels_may(tmp_path: Path) -> None:
    """A Henan config written in Chinese overrides wheat under 小麦, as its parcels declare it."""
    henan = {"河南": {"crops": {"小麦": {"price": 2.9}}}}
    config = load_config(_write(tmp_path, lambda raw: raw.update(regions=henan)))
    assert config.crop("wheat", "河南").price == 2.9
    assert config.crop("wheat").price == config.crop("wheat", "山东").price == load_config().crops["wheat"].price
    assert config.crop("maize", "河南") == config.crops["maize"]


@pytest.mark.parametrize(
    ("mutate", "warned"),
    [
        (lambda raw: None, None),  # the packaged config, as `farmcredit config --out` writes it
        (lambda raw: raw["crops"]["maize"].update(price=2.2 * 0.85), None),  # a region honestly lower
        (lambda raw: raw.update(regions={"河南": {"crops": {"玉米": {"price": 2.0}}}}), None),
        # Prices in another currency are not held to the packaged CNY prices (a review: every EUR config was told to
        # double its prices).
        (lambda raw: (raw["credit"].update(currency="EUR", parcel_cap=15_000, borrower_cap=30_000, min_loan=150,
                                           rounding_step=10), raw["crops"]["maize"].update(price=1.1)), None),
        # Chinese loan officers quote 元/斤 (1 斤 = 0.5 kg): half the price per kg, half the revenue and limit.
        (lambda raw: raw["crops"]["maize"].update(price=1.1), "crops.maize.price 1.1 (packaged maize: 2.2)"),
        (lambda raw: raw.update(regions={"河南": {"crops": {"玉米": {"price": 1.1}}}}),
         "regions.河南.crops.玉米.price 1.1 (packaged maize: 2.2)"),
        # A crop renamed is matched to the packaged one by its aliases.
        (lambda raw: raw["crops"].update({"corn": {**raw["crops"].pop("maize"), "aliases": ["玉米"], "price": 1.1}}),
         "crops.corn.price 1.1 (packaged maize: 2.2)"),
    ],
)
def test_a_price_per_jin_is_warned_of_once_naming_crop_price_and_packaged_price(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, mutate, warned: str | None) -> None:
    """A price per 斤 is within the revenue-to-cost band (17 of 24 borrowers were declined LIMIT_BELOW_MINIMUM in
    silence): one far below the packaged price of its crop is warned of; an honestly lower one is not."""
    path = _write(tmp_path, mutate)
    with caplog.at_level(logging.WARNING, logger="farmcredit"):
        load_config(path)
    logged = [record.getMessage() for record in caplog.records]
    if warned is None:
        assert logged == []
        return
    [message] = logged
    assert message.startswith(f"{path}: price(s) under 0.65 times the packaged price of their crop: {warned}; ")
    assert "prices are CNY per kg; a price per 斤 (500 g) is half of it: double it" in message


def test_keys_are_read_as_written_though_yaml_would_read_them_as_numbers_or_booleans(tmp_path: Path) -> None:
    """Region codes ON (Ontario), 0101 (a FIPS code) and 410100 (Zhengzhou): YAML 1.1 read them as true, 65 and a
    number, refused under keys never written (regions.1, regions.65); a crop named 2024 likewise."""
    path = tmp_path / "regions.yaml"
    regions = "\n".join(f"  {code}:\n    crops:\n      wheat:\n        price: {price}"
                         for code, price in (("ON", 2.9), ("0101", 2.8), ("410100", 2.7), ("no", 2.6)))
    path.write_text(f"regions:\n{regions}\n", encoding="utf-8")
    config = load_config(path)
    assert [config.crop("wheat", code).price for code in ("ON", "0101", "410100", "no")] == [2.9, 2.8, 2.7, 2.6]
    assert set(config.regions) == {"ON", "0101", "410100", "no"}
    # A merge may build an anchored mapping before its own turn: its keys are text too, not 1 and True "given twice".
    path.write_text("regions:\n  a: {notes: {deep: &x {1: {price: 2.9}, ON: {price: 2.8}}}}\n"
                    "  b: {crops: {<<: *x, 2: {price: 2.7}}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:  # notes is no key of a region's, and crops 1, 2 and ON are unknown
        load_config(path)
    assert "given twice" not in str(refused.value) and "regions.a.notes" in str(refused.value)


def test_a_key_given_twice_or_a_file_not_in_utf8_is_a_config_error(tmp_path: Path) -> None:
    twice = tmp_path / "twice.yaml"
    twice.write_text(DEFAULT.read_text() + "\ncredit:\n  currency: KES\n")  # a second credit section
    with pytest.raises(ConfigError, match="credit given twice"):
        load_config(twice)
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(DEFAULT.read_text().replace("regions: {}", "").encode() + "\nregions: {河南: {}}\n".encode("gbk"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(gbk)


def test_config_command_prints_the_packaged_default_to_copy_for_config(tmp_path: Path) -> None:
    """A package install has no configs/ folder: `farmcredit config > region.yaml` gives the file to edit."""
    from click.testing import CliRunner

    from farmcredit.cli import cli

    done = CliRunner().invoke(cli, ["config"])
    assert done.exit_code == 0, done.output
    assert done.stdout == DEFAULT.read_text(encoding="utf-8")
    copy = tmp_path / "region.yaml"
    copy.write_text(done.stdout, encoding="utf-8")
    assert load_config(copy) == load_config()


def test_the_config_printed_is_utf8_whatever_the_consoles_code_page_and_read_back_with_a_bom(tmp_path: Path) -> None:
    """On Windows `>` wrote the console's code page: cp1252 stopped at 小麦 (a traceback, half a file), GBK wrote a file
    --config refused as not UTF-8; --out writes UTF-8, and --config reads one with a byte-order mark (Notepad's).
    PowerShell 5's `>` writes UTF-16 of what it read in the console's code page (小麦 as 灏忛害): refused, not read as
    unknown crops."""
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    printed = subprocess.run([sys.executable, "-m", "farmcredit", "config"], capture_output=True, env=env, timeout=120)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == DEFAULT.read_bytes()
    written = subprocess.run([sys.executable, "-m", "farmcredit", "config", "--out", str(tmp_path / "region.yaml")],
                             capture_output=True, env=env, timeout=120)
    assert written.returncode == 0 and (tmp_path / "region.yaml").read_bytes() == DEFAULT.read_bytes()
    again = subprocess.run([sys.executable, "-m", "farmcredit", "config", "--out", str(tmp_path / "region.yaml")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 2 and "exists" in again.stderr
    text = DEFAULT.read_text(encoding="utf-8")
    (tmp_path / "bom.yaml").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert load_config(tmp_path / "bom.yaml") == load_config()
    garbled = text.encode("utf-8").decode("gbk", errors="replace")  # as PowerShell 5 reads a native command's output
    (tmp_path / "ps5.yaml").write_bytes(garbled.encode("utf-16"))
    with pytest.raises(ConfigError, match="ps5.yaml is UTF-16 text .*farmcredit config --out FILE"):
        load_config(tmp_path / "ps5.yaml")


def test_a_config_given_as_a_mapping_is_read_as_a_file_of_those_sections_and_another_type_is_refused() -> None:
    """``config={"credit": {"min_loan": 500}}`` (a notebook's one setting) raised pathlib's TypeError; it is read as a
    file holding those sections is (the others packaged), and any other type is refused naming config=."""
    import numpy as np

    config = load_config({"credit": {"min_loan": np.float64(500)}})
    assert config.credit.min_loan == 500 and config.crops == load_config().crops
    with pytest.raises(ConfigError, match=r"invalid config config= \(a mapping\): credit.min_loan"):
        load_config({"credit": {"min_loan": -5}})
    with pytest.raises(ConfigError, match="config= is a YAML file's path, a mapping of its sections or a Config, "
                                          "not int"):
        load_config(5)


def test_a_config_made_in_python_is_checked_as_a_mapping_is_and_a_valid_one_kept_as_it_is() -> None:
    """``model_copy`` checks nothing: a Config given with a rounding step of 0.001 ran where a file of it is refused.
    A valid Config comes back as it was, its hash unchanged."""
    default = load_config()
    bad = default.model_copy(update={"credit": default.credit.model_copy(update={"min_loan": 10**9})})
    with pytest.raises(ConfigError, match=r"invalid config config= \(a Config\): credit: min_loan 1,000,000,000 is "
                                          "above borrower_cap"):
        load_config(bad)
    henan = load_config({"regions": {"河南": {"crops": {"小麦": {"price": 2.9}}}}})
    for config in (default, henan, load_config({"credit": {"currency": "EUR", "min_loan": 150}, "crops": {
            "wheat": {**default.crops["wheat"].model_dump(), "aliases": ["Weizen", "wheat"]}}})):
        assert load_config(config) == config and load_config(config).config_hash() == config.config_hash()
