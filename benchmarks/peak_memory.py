"""Peak resident memory of one process, as the benchmarks report it (Linux).

VmHWM from /proc/self/status, not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts at the high-water mark
of the process that started it (carried through fork and exec) and ``RUSAGE_CHILDREN`` is the largest of all
children's, so both count the driver's own peak. A child reports its own VmHWM instead: ``peak_rss_mib`` inside
it, or ``run_reporting_peak`` for a module run as ``python -m`` would.

    python benchmarks/peak_memory.py REPORT MODULE [ARGS...]   # runs MODULE, writes its peak (MiB) to REPORT
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started, or since ``reset_peak``, MiB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def reset_peak() -> None:
    """Start this process's peak afresh from its present resident memory (5 written to /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def run_reporting_peak(module_args: list[str], cwd: Path | None = None) -> float:
    """Run ``python -m MODULE ARGS...`` (``module_args``) in a child, in ``cwd``; return the child's own peak, MiB.

    Raises:
        subprocess.CalledProcessError: the module exited with a non-zero status.
    """
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "peak_mib"
        subprocess.run([sys.executable, __file__, str(report), *module_args], check=True, cwd=cwd)
        return float(report.read_text())


def _main(report: str, module: str, *args: str) -> None:
    """Run ``module`` as ``python -m`` would (the working folder first on the path), then write this peak."""
    sys.argv = [module, *args]
    sys.path[0] = os.getcwd()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        Path(report).write_text(str(peak_rss_mib()))


if __name__ == "__main__":
    _main(*sys.argv[1:])
