"""Parcel tables as a loan office keeps them in Excel or WPS and saves as CSV: ids Excel turned into numbers, areas
typed with their unit, GBK text, rows left empty at the end."""

import logging
from pathlib import Path

import pytest

from farmcredit.errors import InputError
from farmcredit.parcels import read_parcels
from farmcredit.reasons import REASONS


def _square(k: int) -> str:
    """A WKT square of about 1 ha (EPSG:4326) in Henan, the k-th of a row of them."""
    x, y = 114.0 + 0.002 * k, 33.0
    return f'"POLYGON (({x} {y}, {x + 0.001} {y}, {x + 0.001} {y + 0.0009}, {x} {y + 0.0009}, {x} {y}))"'


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    """A CSV of ``header`` (its last column WKT) and ``rows`` (each given its own square), as Excel saves it."""
    path.write_text("\r\n".join([header, *(f"{row},{_square(k)}" for k, row in enumerate(rows))]) + "\r\n",
                    encoding="utf-8-sig")
    return path


def test_ids_excel_saved_in_scientific_notation_are_refused_naming_the_column_rows_and_fix(tmp_path: Path) -> None:
    """18-digit ID-card numbers typed into General cells are saved as 4.10102E+17: every farmer of a village read as
    one borrower."""
    path = _csv(tmp_path / "loans.csv", "parcel_id,borrower_id,WKT",
                ["P1,4.10102E+17", "P2,4.10102E+17", "P3,4.10103e+17", "P4,B7"])
    with pytest.raises(InputError, match=r"3 borrower_id values are in Excel's scientific notation \(row 1: "
                                         r"4\.10102E\+17, row 2: 4\.10102E\+17, row 3: 4\.10103e\+17\).*format the "
                                         r"borrower_id column as Text \(设置单元格格式 > 文本\), enter the ids again"):
        read_parcels(path, crs="EPSG:4326")
    path = _csv(tmp_path / "codes.csv", "parcel_id,borrower_id,WKT", ["4E+11,B1", "P2,B1"])
    with pytest.raises(InputError, match=r"1 parcel_id values are in Excel's scientific notation \(row 1: 4E\+11\)"):
        read_parcels(path, crs="EPSG:4326")


def test_long_numeric_ids_ending_in_000_are_warned_of_as_excel_zeroed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Excel keeps 15 digits of a number and zeroes the rest: 410102199001011234 comes back 410102199001011000."""
    path = _csv(tmp_path / "loans.csv", "parcel_id,borrower_id,WKT",
                ["P1,410102199001011000", "P2,410102199001012000", "P3,410102199001011234", "P4,B7"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        parcels = read_parcels(path, crs="EPSG:4326")
    assert list(parcels["borrower_id"])[:2] == ["410102199001011000", "410102199001012000"]
    assert "2 distinct borrower_id values are numbers of 16 to 19 digits ending in 000" in caplog.text
    assert "format the borrower_id column as Text" in caplog.text


def test_resident_id_numbers_ending_in_000_with_their_check_character_are_not_warned_of(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """410102199001016000 is a resident ID number whose check character (ISO 7064 MOD 11-2) is its last 0: it was
    warned of as Excel-zeroed, and a borrower's id on two parcels counted twice. It is spared where the column shows
    ids kept whole; in a column of ids all ending in 000 it is what Excel makes of 410102199001016012 or ...028 (one
    zeroed id in 11 passes the check), so two farmers may read as one: warned of."""
    path = _csv(tmp_path / "loans.csv", "parcel_id,borrower_id,WKT",
                ["P1,410102199001016000", "P2,410102199001016000", "P3,410102199001011234"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        read_parcels(path, crs="EPSG:4326")
    assert "ending in 000" not in caplog.text
    path = _csv(tmp_path / "zeroed.csv", "parcel_id,borrower_id,WKT",
                ["P1,410102199001011000", "P2,410102199001011000", "P3,410102199001016000"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        read_parcels(path, crs="EPSG:4326")
    assert "2 distinct borrower_id values are numbers of 16 to 19 digits ending in 000" in caplog.text
    caplog.clear()
    path = _csv(tmp_path / "merged.csv", "parcel_id,borrower_id,WKT",
                ["P1,410102199001016000", "P2,410102199001016000"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        read_parcels(path, crs="EPSG:4326")
    assert "1 distinct borrower_id values are numbers of 16 to 19 digits ending in 000" in caplog.text


def test_a_text_id_written_as_a_whole_number_with_point_zero_is_that_number(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """101.0 (a number cell exported) beside 101 split one borrower in two; 00123 beside 123 may be two borrowers, or
    one whose zeros a spreadsheet dropped: kept apart, and warned of."""
    path = _csv(tmp_path / "loans.csv", "parcel_id,borrower_id,WKT",
                ["1.0,101", "2,101.0", "3,101.00", "4,00123", "5,123", "6,B1.0"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        parcels = read_parcels(path, crs="EPSG:4326")
    assert list(parcels["parcel_id"]) == ["1", "2", "3", "4", "5", "6"]
    assert list(parcels["borrower_id"]) == ["101", "101", "101", "00123", "123", "B1.0"]
    assert ("1 group of borrower_id values differs only in case, width, Unicode form, blanks, invisible characters "
            "(a zero-width space), look-alike letters (Cyrillic or Greek for Latin), digits of another script or a "
            "number's leading zeros ('00123' / '123'); they are kept apart as written") in caplog.text


@pytest.mark.parametrize(("column", "given", "read"), [
    ("declared_area_mu", ["30亩", "1.2 亩", "30mu", "2 MU", "３０亩", "4.5"], [30.0, 1.2, 30.0, 2.0, 30.0, 4.5]),
    ("declared_area_ha", ["0.5ha", "0.5 公顷", "1.5 hectares", "0.25"], [0.5, 0.5, 1.5, 0.25])])
def test_a_declared_area_typed_with_its_columns_unit_is_its_number(
        tmp_path: Path, column: str, given: list[str], read: list[float]) -> None:
    """30亩 in declared_area_mu was INVALID_DECLARED_AREA, and the parcel approved as if it declared nothing."""
    path = _csv(tmp_path / "areas.csv", f"parcel_id,borrower_id,{column},WKT",
                [f"P{k},B1,{area}" for k, area in enumerate(given)])
    parcels = read_parcels(path, crs="EPSG:4326")
    assert parcels[column].tolist() == read
    assert not any("INVALID_DECLARED_AREA" in codes for codes in parcels["reasons"])


def test_a_declared_area_in_the_other_columns_unit_is_referred_and_told_where_it_goes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """0.11ha in declared_area_mu (or 30亩 in declared_area_ha) is not read as either unit: a declaration that cannot be
    checked is referred, not approved as if none were made."""
    mu = _csv(tmp_path / "mu.csv", "parcel_id,borrower_id,declared_area_mu,WKT", ["P1,B1,0.11ha", "P2,B1,3"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        parcels = read_parcels(mu, crs="EPSG:4326")
    assert list(parcels["reasons"]) == [["INVALID_DECLARED_AREA"], []]
    assert "(P1: '0.11ha') (1 亩 = 1/15 ha: areas in hectares go in declared_area_ha)" in caplog.text
    assert "flagged INVALID_DECLARED_AREA and referred" in caplog.text
    ha = _csv(tmp_path / "ha.csv", "parcel_id,borrower_id,declared_area_ha,WKT", ["P1,B1,30亩"])
    assert list(read_parcels(ha, crs="EPSG:4326")["reasons"]) == [["INVALID_DECLARED_AREA"]]
    assert REASONS["INVALID_DECLARED_AREA"].effect == "refer"


def test_a_gbk_csv_with_chinese_column_names_is_told_to_be_saved_as_utf8(tmp_path: Path) -> None:
    """GDAL's CSV driver raises a bare UnicodeDecodeError for a GBK header: the run said only "'utf-8' codec can't
    decode byte 0xb5"."""
    path = tmp_path / "贷款.csv"
    path.write_bytes(f"地块编号,借款人,WKT\r\nP1,张三,{_square(0)}\r\n".encode("gbk"))
    with pytest.raises(InputError, match=r"贷款\.csv: a column name \(b'.*'\) is not UTF-8 text .*; save it as UTF-8 "
                                         r"\(Excel on Chinese Windows saves GBK: choose \"CSV UTF-8 \(逗号分隔\)"):
        read_parcels(path, crs="EPSG:4326")


def test_parcels_sharing_an_id_are_warned_of_once_with_the_ids(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Ids a spreadsheet reduced to a few (filled down, or cut) left many parcels DUPLICATE_PARCEL_ID, told of only
    in their results' rows."""
    path = _csv(tmp_path / "loans.csv", "parcel_id,borrower_id,WKT",
                ["D1,B1", "D1,B1", "D1,B2", "D2,B3", "D2,B3", "P9,B4", "D3,B5", "D3,B5", "D4,B6", "D4,B6"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        parcels = read_parcels(path, crs="EPSG:4326")
    assert sum("DUPLICATE_PARCEL_ID" in codes for codes in parcels["reasons"]) == 9
    assert caplog.text.count("DUPLICATE_PARCEL_ID") == 1
    assert ("loans.csv: 9 parcels share 4 parcel_id values ('D1': 3 parcels, 'D2': 2 parcels, 'D3': 2 parcels and 1 "
            "more); they are flagged DUPLICATE_PARCEL_ID and not assessed; give each parcel its own id") in caplog.text


def test_rows_left_empty_are_left_out_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Excel saves rows once used as ,,,: each read as a parcel without id, outline or borrower, a phantom borrower
    referred in the results. A row with a cell given (an id, a WKT) is still a parcel. The line saying so was info,
    which the run does not show."""
    path = tmp_path / "loans.csv"
    path.write_text(f"parcel_id,borrower_id,declared_area_ha,WKT\r\nP1,B1,1,{_square(0)}\r\n,,,\r\n"
                    f"P2,B1,,{_square(1)}\r\n , ,,\r\nP3,,,\r\n,,,\r\n", encoding="utf-8-sig")
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        parcels = read_parcels(path, crs="EPSG:4326")
    assert list(parcels["parcel_id"]) == ["P1", "P2", "P3"]
    assert list(parcels["reasons"]) == [[], [], ["MISSING_BORROWER_ID", "EMPTY_GEOMETRY"]]
    assert "loans.csv: 3 rows hold nothing, every cell and the outline empty (rows 2, 4, 6)" in caplog.text
    path.write_text("parcel_id,borrower_id,WKT\r\n,,\r\n", encoding="utf-8-sig")
    with pytest.raises(InputError, match="contains no parcels"):
        read_parcels(path, crs="EPSG:4326")


def test_rows_after_empty_rows_are_named_by_their_row_in_the_file(tmp_path: Path) -> None:
    """Leaving out empty rows renumbered those after them: an id in scientific notation on the file's row 5 was named
    row 3, and a parcel without an id on row 5 read as row-3, matching no row of the file."""
    path = tmp_path / "loans.csv"
    path.write_text(f"parcel_id,borrower_id,WKT\r\nP1,B1,{_square(0)}\r\n,,\r\n,,\r\n,B2,{_square(1)}\r\n"
                    f"P3,4.10102E+17,{_square(2)}\r\n", encoding="utf-8-sig")
    with pytest.raises(InputError, match=r"\(row 5: 4\.10102E\+17\)"):
        read_parcels(path, crs="EPSG:4326")
    path.write_text(path.read_text(encoding="utf-8-sig").replace("4.10102E+17", "B3"), encoding="utf-8-sig")
    assert list(read_parcels(path, crs="EPSG:4326")["parcel_id"]) == ["P1", "row-4", "P3"]


def test_ids_read_as_one_are_named_in_the_duplicate_warning_as_the_file_writes_them(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """1.0 beside 1 reads as one id: the warning said only '1': 2 parcels, which the file's rows, 1.0 and 1, do not
    show."""
    path = _csv(tmp_path / "loans.csv", "parcel_id,borrower_id,WKT", ["1.0,B1", "1,B1", "D,B2", "D,B2", "2,B3"])
    with caplog.at_level(logging.WARNING, logger="farmcredit.parcels"):
        read_parcels(path, crs="EPSG:4326")
    assert "4 parcels share 2 parcel_id values ('1': 2 parcels (written '1.0', '1'), 'D': 2 parcels)" in caplog.text
