"""A folder's lock (``farmcredit.locking``): one writer at a time, freed with its process."""

import os
from pathlib import Path
from types import SimpleNamespace

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


def test_an_out_that_is_a_link_to_nothing_is_named_so_not_file_exists(tmp_path: Path) -> None:
    from farmcredit.locking import can_write_in, writable_folder

    (tmp_path / "dangl").symlink_to(tmp_path / "gone")
    said = f"dangl is a link to {tmp_path / 'gone'}, which does not exist"
    for check in (can_write_in, writable_folder):
        with pytest.raises(InputError, match=said):
            check(tmp_path / "dangl")


def test_a_path_the_system_cannot_look_up_is_named_with_why(tmp_path: Path) -> None:
    """A name over 255 bytes, or a loop of links, raised OSError (or RuntimeError from resolve) as a traceback. A path
    of short names over 4096 bytes in all was said to have a name over 255 bytes."""
    from farmcredit.locking import can_write_in, looked_up

    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    (tmp_path / "file").write_text("")
    for path, said in ((tmp_path / ("田" * 90) / "o", "file name too long"),
                       (tmp_path.joinpath(*["a" * 200] * 21, "o"), r"path too long: its [\d,]+ bytes are over"),
                       (tmp_path / "loopA" / "o", "a loop of symbolic links")):
        with pytest.raises(InputError, match=f"parcel file {path}: {said}"):
            looked_up(path, "parcel file")
        with pytest.raises(InputError, match=f"folder {path}: {said}"):
            can_write_in(path)
    for fine in (tmp_path / "missing" / "o", tmp_path / "file" / "below", tmp_path / "file"):
        assert looked_up(fine, "folder") == fine  # missing, or below a file: each caller says so its own way


@pytest.mark.parametrize(("flag", "said"), [(os.ST_RDONLY, "read-only file system"), (0, "no write permission")])
def test_an_out_that_cannot_be_written_says_whether_its_disk_is_read_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: int, said: str) -> None:
    """It said "folder rom/prev cannot be written (rom/prev cannot be written)"."""
    from farmcredit.locking import can_write_in

    monkeypatch.setattr(os, "access", lambda *_, **__: False)
    monkeypatch.setattr(os, "statvfs", lambda _: SimpleNamespace(f_flag=flag))
    with pytest.raises(InputError, match=f"cannot be written \\({tmp_path}: {said}\\)"):
        can_write_in(tmp_path / "prev")


def test_a_killed_runs_scratch_folder_is_removed_by_the_next_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    """A run killed outright (SIGKILL, the OOM killer) left its per-pixel layers in TMPDIR for good: its folder's lock
    is free once it is gone, so the next run removes it; one whose run lives (another process, even another PID
    namespace sharing the folder) holds its lock and is kept, as is anything else there."""
    import signal
    import subprocess
    import sys

    from farmcredit.locking import SCRATCH_PREFIX, ScratchFolder, remove_orphans

    hold = ("import sys, time, tempfile; tempfile.tempdir = sys.argv[1]; from farmcredit.locking import ScratchFolder; "
            "folder = ScratchFolder('pixels'); print(folder.name, flush=True); time.sleep(60)")
    runs = [subprocess.Popen([sys.executable, "-c", hold, str(tmp_path)], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    killed, alive = (Path(run.stdout.readline().strip()) for run in runs)
    try:
        assert killed.name.startswith(f"{SCRATCH_PREFIX}pixels-") and killed.is_dir() and alive.is_dir()
        runs[0].send_signal(signal.SIGKILL)
        runs[0].wait(timeout=30)
        (tmp_path / f"{SCRATCH_PREFIX}not-ours").mkdir()  # no lock file: not one a run made
        (tmp_path / "other").mkdir()
        assert remove_orphans(tmp_path) == [killed]
        assert not killed.exists() and alive.is_dir()
        assert (tmp_path / f"{SCRATCH_PREFIX}not-ours").is_dir() and (tmp_path / "other").is_dir()
    finally:
        runs[1].kill()
        runs[1].wait(timeout=30)
    with ScratchFolder("rasters") as name:  # the next run's own: made, used, removed; the dead one's swept first
        assert Path(name).is_dir()
    assert not Path(name).exists()
