"""Picking the cropland model a run uses by name: the built-in names as written by hand, and a name that is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from farmcredit.errors import InputError
from farmcredit.segmentation import load_cropland_model, read_card
from farmcredit.segmentation.card import DEFAULT_WEIGHTS


@pytest.mark.parametrize(("given", "model"), [
    ("Rule", "phenology-rule-v1"), (" rule ", "phenology-rule-v1"), ("Phenology-Rule-V1", "phenology-rule-v1"),
    (" cnn", read_card(DEFAULT_WEIGHTS).name), ("CNN", read_card(DEFAULT_WEIGHTS).name),
    (read_card(DEFAULT_WEIGHTS).name.upper(), read_card(DEFAULT_WEIGHTS).name),  # as model_version names it
])
def test_a_built_in_model_is_named_in_any_case_with_spaces_around_or_by_the_name_its_results_carry(
        given: str, model: str) -> None:
    assert load_cropland_model(given, device="cpu").name == model


@pytest.mark.parametrize("given", ["cnnn", "rules", "models/mine.safetensors"])
def test_a_model_that_is_no_built_in_name_nor_a_file_is_refused_saying_what_a_model_is(given: str) -> None:
    with pytest.raises(InputError) as refused:
        load_cropland_model(given)
    assert str(refused.value) == ("the model (--model, or MODEL of evaluate and calibrate; model= in Python) is 'cnn', "
                                  "'rule' or a .safetensors weights file with its .json card; "
                                  f"{given!r} is none of these (no such file)")


def test_a_folder_given_as_the_model_is_refused_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"is none of these \(a folder\)$"):
        load_cropland_model(tmp_path)


def test_a_model_file_under_the_home_folder_may_be_named_with_a_tilde(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """README: a path given to any command may start with ~; --model '~/m.safetensors' was "none of these"."""
    import shutil

    from farmcredit.segmentation.card import card_path

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copy(DEFAULT_WEIGHTS, tmp_path / "m.safetensors")
    shutil.copy(card_path(DEFAULT_WEIGHTS), card_path(tmp_path / "m.safetensors"))
    assert load_cropland_model("~/m.safetensors", device="cpu").name == read_card(DEFAULT_WEIGHTS).name
