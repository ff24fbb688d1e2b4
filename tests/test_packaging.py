"""The package keeps to what it advertises: its source runs on the oldest Python that pyproject allows."""

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
# What .gitignore keeps out of the repository, and git's own folder.
IGNORED = (".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".hypothesis", "results", "build",
           "dist", ".cache", ".device")


def test_source_needs_no_python_newer_than_requires_python(not_installed: Callable[[str], NoReturn]) -> None:
    """vermin reads the source for syntax and standard-library names (``datetime.UTC`` is 3.11+) newer than the
    floor. It cannot see behaviour that changed between versions, nor what the dependencies need."""
    if importlib.util.find_spec("vermin") is None:
        not_installed("vermin is not installed (pip install -e '.[test]')")
    # tomllib is itself 3.11+: a pattern reads the one line.
    floor = re.search(r'^requires-python = ">=(\d+\.\d+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert floor, 'pyproject.toml is expected to say requires-python = ">=X.Y"'
    folders = [str(REPO / name) for name in ("farmcredit", "scripts", "benchmarks", "tests")]
    found = subprocess.run(
        [sys.executable, "-c", "import sys; from vermin import main; sys.exit(main())",
         f"--target={floor[1]}-", "--violations", "--no-tips", "--eval-annotations", *folders],
        capture_output=True, text=True, check=False,
    )
    assert found.returncode == 0, found.stdout + found.stderr



def _sdist_members(tmp_path: Path) -> list[str]:
    """Build the sdist of a copy of the working tree (less what git ignores) with setuptools; its paths, less the
    ``farmcredit-X.Y.Z/`` folder."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
    subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])",
         str(tmp_path)],
        cwd=source, capture_output=True, check=True,
    )
    (sdist,) = tmp_path.glob("farmcredit-*.tar.gz")
    with tarfile.open(sdist) as archive:
        return [member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile()]


@pytest.mark.slow
def test_sdist_holds_the_package_and_no_part_of_the_tests(tmp_path: Path) -> None:
    """The tests need conftest.py, sample_tiles/ and ../shared/data: a part of them in the sdist would not run."""
    members = _sdist_members(tmp_path)
    assert "farmcredit/default_config.yaml" in members  # the link into configs/, as a file
    assert "farmcredit/segmentation/cropland_cnn_v2.safetensors" in members
    assert not [name for name in members if name.split("/")[0] in ("tests", "scripts", "benchmarks", "sample_tiles")]
