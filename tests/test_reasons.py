"""Reason codes: each is documented, and each sentence says what happened to the parcel."""

import re
from pathlib import Path

from farmcredit.reasons import REASONS

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_reason_code_is_named_in_the_readme() -> None:
    """MISSING_PARCEL_ID and MISSING_BORROWER_ID were emitted but named nowhere in README (nor the row-N stand-in id),
    OUTSIDE_IMAGERY and CAP_REACHED only in other words: a loan officer reading a code finds it there."""
    unnamed = [code for code in REASONS if not re.search(rf"\b{code}\b", README)]
    assert unnamed == []
    assert "`row-N`" in README


def test_a_parcel_without_an_id_is_told_it_was_not_assessed_and_what_to_do() -> None:
    """The sentence said only that a row number stands in for the id, hiding that such a parcel is not assessed
    (status error, nothing measured, no limit)."""
    sentence = REASONS["MISSING_PARCEL_ID"].sentence
    assert REASONS["MISSING_PARCEL_ID"].effect == "error"
    assert "not assessed" in sentence and "(row-5)" in sentence and "give it its parcel id" in sentence
    assert "row-N" not in sentence  # a placeholder where the row's own stand-in id is printed beside it


def test_a_parcel_without_a_borrower_id_is_told_it_is_lent_alone_and_what_to_do() -> None:
    sentence = REASONS["MISSING_BORROWER_ID"].sentence
    assert "borrower of its own" in sentence and "give it its borrower's id" in sentence
