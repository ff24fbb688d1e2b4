"""Writing a run's outputs (``write_outputs``) through the public functions of ``farmcredit.outputs``."""

from __future__ import annotations

from pathlib import Path

from farmcredit.outputs import output_folder, render_preview, write_outputs, write_rasters
from farmcredit.pipeline import Assessment


def test_folders_and_files_named_as_text_are_taken_as_paths(assessed: Assessment, tmp_path: Path) -> None:
    """Each stopped with AttributeError ('str' object has no attribute ...) on a folder named as text."""
    out = tmp_path / "results"
    assert output_folder(str(out), create=False) == out and not out.exists()
    files = write_outputs(str(out), assessed)
    assert all(path.parent == out and path.is_file() for path in files.values())
    assert write_rasters(str(out), assessed) == {kind: files[kind] for kind in write_rasters(out, assessed)}
    assert render_preview(str(out)) == files["preview"]
    parcel_id = str(assessed.parcels["parcel_id"].iloc[0])
    drawn = render_preview(str(out / "results.gpkg"), out=str(tmp_path / "one.png"), parcel_id=parcel_id)
    assert drawn == tmp_path / "one.png" and drawn.is_file()
