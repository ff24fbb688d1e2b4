"""CSV for spreadsheets: UTF-8 Excel reads as such, and no text run as a formula."""

from pathlib import Path

import pandas as pd

from farmcredit.spreadsheet import read_csv, write_csv


def test_formula_like_text_is_quoted_for_excel_and_read_back_as_written(tmp_path: Path) -> None:
    ids = ["=HYPERLINK(\"http://x\")", "+86 138 0000", "-1", "@me", "\tP1", "\rP1", "'=already quoted", "地块-001",
           "007", "a=b", "line\rbreak", None]
    frame = pd.DataFrame({"parcel_id": ids, "loan_limit": [-1.5] * len(ids)})
    path = tmp_path / "results.csv"
    write_csv(frame, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = raw[3:].decode("utf-8").split("\r\n")[1:]
    cells = [row.rpartition(",")[0] for row in rows]
    # A carriage return in a cell is quoted: a bare one ends the row, in Excel as in read_csv.
    assert cells[:7] == ["\"'=HYPERLINK(\"\"http://x\"\")\"", "'+86 138 0000", "'-1", "'@me", "'\tP1", "\"'\rP1\"",
                         "''=already quoted"]
    assert cells[7:11] == ["地块-001", "'007", "a=b", "\"line\rbreak\""]
    pd.testing.assert_frame_equal(read_csv(path, {"parcel_id": str}, "results file"),
                                  frame.fillna({"parcel_id": float("nan")}))


def test_text_a_spreadsheet_would_turn_into_a_number_or_date_is_quoted(tmp_path: Path) -> None:
    lossy = ["0042", "110101199001011234", "123456789012", "1E5", "2.5e3", "1E+05", "1.50", "12.10", "3-4",
             "1/2/2024", "05/2024", "4-Mar", "mar-4", "'0042"]
    kept = ["42", "12345678901", "P0042", "0", "1.5", "0.25", "11010119900101123X", "3-4-5-6", "E5", "12-345",
            "March-4", "4-Marsh",
            "১২৩/৪", "০১২৩", "१२/३"]  # Bengali and Devanagari digits: a spreadsheet reads none of them as a number
    frame = pd.DataFrame({"borrower_id": lossy + kept})
    path = tmp_path / "borrowers.csv"
    write_csv(frame, path)
    cells = path.read_bytes()[3:].decode("utf-8").split("\r\n")[1:-1]
    assert cells == [f"'{value}" for value in lossy] + kept
    pd.testing.assert_frame_equal(read_csv(path, {"borrower_id": str}, "results file"), frame)
