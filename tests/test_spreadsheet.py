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
    assert cells[7:11] == ["地块-001", "007", "a=b", "\"line\rbreak\""]
    pd.testing.assert_frame_equal(read_csv(path, {"parcel_id": str}), frame.fillna({"parcel_id": float("nan")}))
