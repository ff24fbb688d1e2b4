"""The package keeps to what it advertises: its source runs on the oldest Python that pyproject allows."""

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]


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
