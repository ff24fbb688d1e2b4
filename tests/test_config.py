"""Configuration is validated at load time and hashed deterministically."""

from pathlib import Path

import pytest
import yaml

from farmcredit.config import load_config
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
        (lambda raw: raw.update(regions={"henan": {"crops": {"barley": {"price": 2.0}}}}), "regions.henan.crops"),
        (lambda raw: raw["credit"]["grades"][0].update(multiplier=0.1), "grades"),
        (lambda raw: raw["crops"]["maize"].update(other_cost_per_ha=-10), "crops.maize.other_cost_per_ha"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(tmp_path: Path, mutate, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(_write(tmp_path, mutate))


def test_missing_or_non_yaml_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("crops: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
