"""benchmarks/peak_memory.py: a child's peak is its own, not its parent's; a reset peak starts afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from peak_memory import run_reporting_peak  # noqa: E402

MIB = 2**20
pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                                reason="peaks are read from Linux's /proc/self (VmHWM, clear_refs)")


def test_child_peak_leaves_out_the_parents_earlier_allocation(tmp_path: Path) -> None:
    (tmp_path / "allocate.py").write_text(f"import numpy\nnumpy.ones({100 * MIB // 8})\n")
    held = np.ones(600 * MIB // 8)  # resident in the parent while the child runs, as a benchmark's driver may be
    child = run_reporting_peak(["allocate"], cwd=tmp_path)
    assert held.sum() > 0
    assert 100 <= child < 400


def test_reset_peak_forgets_memory_freed_before_it(tmp_path: Path) -> None:
    """In a fresh process: pytest's own holds what earlier tests left resident, which a reset rightly keeps."""
    (tmp_path / "forget.py").write_text(
        "import numpy\nfrom peak_memory import peak_rss_mib, reset_peak\n"
        f"numpy.ones({600 * MIB // 8}).sum()\nbefore = peak_rss_mib()\nreset_peak()\n"
        "print(before, peak_rss_mib())\n")
    done = subprocess.run([sys.executable, str(tmp_path / "forget.py")], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(BENCHMARKS)})
    before, after = map(float, done.stdout.split())
    assert before >= 600 and after < 300
