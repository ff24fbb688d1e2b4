"""A folder's lock (``farmcredit.locking``): one writer at a time, freed with its process."""

from pathlib import Path

import pytest

from farmcredit.errors import InputError
from farmcredit.locking import folder_lock


def test_a_held_lock_is_refused_at_once_and_freed_when_its_holder_dies(tmp_path: Path, lock_held_elsewhere) -> None:
    holder = lock_held_elsewhere(tmp_path / ".lock")
    with pytest.raises(InputError, match="^busy here$"), folder_lock(tmp_path / ".lock", "busy here"):
        pass
    holder.kill()
    holder.wait()
    with folder_lock(tmp_path / ".lock", "busy here"):
        with pytest.raises(InputError, match="busy again"), folder_lock(tmp_path / ".lock", "busy again"):
            pass  # within one process a second open of the file is another lock too: no run nests in itself


def test_a_lock_where_nothing_can_be_written_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot be written"), folder_lock(tmp_path / "file" / ".lock", "busy"):
        pass


def test_a_folder_is_checked_writable_without_being_made(tmp_path: Path) -> None:
    from farmcredit.locking import can_write_in

    can_write_in(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="file/below cannot be written .*file is a file"):
        can_write_in(tmp_path / "file" / "below")
