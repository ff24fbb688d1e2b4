"""Shared fixtures: the real data folder (skipped when absent, failed under CI), small simulated seasons (and a
folder of two), a lock another process holds, the text of the figures saved."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _skip_or_fail_under_ci(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def not_installed() -> Callable[[str], NoReturn]:
    """``not_installed(message)`` skips a test for want of something CI provides (``message``: what, and how to get
    it); under CI, which sets CI=true (.ci/run) and provides it, it fails the test: a skip would hide a broken
    install."""
    return _skip_or_fail_under_ci


@pytest.fixture(scope="session")
def shared_data(not_installed: Callable[[str], NoReturn]) -> Path:
    """../shared/data beside the repository; tests using it skip when it is absent (fail under CI, which has it)."""
    if not SHARED_DATA.is_dir():
        not_installed(f"real Sentinel-2 data not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_season(tmp_path_factory: pytest.TempPathFactory):
    """A small simulated season (96 x 96 px, 8 dates) with its truth, made once per run."""
    from farmcredit.simulate import SimulationSpec, simulate_season

    root = tmp_path_factory.mktemp("season")
    return simulate_season(root, seed=3, spec=SimulationSpec(size_px=96, n_dates=8))


@pytest.fixture(scope="session")
def two_years(small_season, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One imagery folder of two seasons, as a fetch of two years writes it: small_season's scenes (2024) and the same
    scenes dated a year earlier."""
    folder = tmp_path_factory.mktemp("two_years") / "imagery"
    shutil.copytree(small_season.imagery_dir, folder)
    for scene in sorted(small_season.imagery_dir.iterdir()):
        earlier = scene.name.replace("_2024", "_2023")
        shutil.copytree(scene, folder / earlier)
        item = folder / earlier / f"{scene.name}.json"
        item.with_name(f"{earlier}.json").write_text(item.read_text().replace("2024", "2023"))
        item.unlink()
    return folder


@pytest.fixture
def lock_held_elsewhere() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """Holds a lock file (``farmcredit.locking``) in another process, as a running fetch or batch does; the process is
    killed at the end of the test (or by the test, which frees the lock)."""
    holders: list[subprocess.Popen] = []

    def hold(lock_file: Path) -> subprocess.Popen:
        ready = lock_file.with_name(f"{lock_file.name}.held")
        holders.append(holder := subprocess.Popen([sys.executable, "-c", (
            "import time; from pathlib import Path; from farmcredit.locking import folder_lock\n"
            f"with folder_lock(Path({str(lock_file)!r}), 'busy'):\n"
            f"    Path({str(ready)!r}).touch(); time.sleep(120)")]))
        deadline = time.monotonic() + 60
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the lock holder did not start"
        ready.unlink()
        return holder

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


def _script_font(script: str, install: str, not_installed: Callable[[str], NoReturn]) -> None:
    from farmcredit.fonts import SCRIPT_FAMILIES, font_families

    if not set(font_families()) & set(SCRIPT_FAMILIES[script]):
        not_installed(f"no font with {script} glyphs is installed ({install})")


@pytest.fixture
def cjk_font(not_installed: Callable[[str], NoReturn]) -> None:
    """Skip where no font with Chinese glyphs is installed; fail under CI, which installs one (.ci/run)."""
    _script_font("Chinese", "apt install fonts-wqy-microhei or fonts-noto-cjk", not_installed)


@pytest.fixture
def devanagari_font(not_installed: Callable[[str], NoReturn]) -> None:
    """Skip where no font with Devanagari (Hindi, Marathi) glyphs is installed; fail under CI, which installs one."""
    _script_font("Devanagari", "apt install fonts-lohit-deva or fonts-noto-core", not_installed)


@pytest.fixture
def drawn_text(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every figure saved during the test (titles, legends, tick labels), one string a Text; any text
    read as mathtext fails the test (a ``$`` in an id is the id's, not a formula's)."""
    from matplotlib.figure import Figure
    from matplotlib.mathtext import MathTextParser
    from matplotlib.text import Text

    texts: list[str] = []
    savefig = Figure.savefig

    def recording_savefig(fig: Figure, *args, **kwargs) -> None:
        savefig(fig, *args, **kwargs)
        texts.extend(text.get_text() for text in fig.findobj(Text) if text.get_text())

    def no_mathtext(parser: MathTextParser, s: str, *args, **kwargs) -> NoReturn:
        raise AssertionError(f"{s!r} was drawn as mathtext")

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    monkeypatch.setattr(MathTextParser, "parse", no_mathtext)
    return texts
