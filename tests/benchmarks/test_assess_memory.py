"""benchmarks/assess_memory.py: its synthetic seasons of any number of dates are real dates farmcredit reads."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from farmcredit.imagery import open_imagery

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import assess_memory  # noqa: E402


@pytest.mark.parametrize("dates", [8, 16])
def test_a_season_of_many_dates_spreads_them_over_the_season_as_scenes_farmcredit_reads(
        monkeypatch, tmp_path: Path, dates: int) -> None:
    monkeypatch.setattr(assess_memory, "SIZE", 60)  # 60 x 60 pixels at 10 m: the layout, not the size, is tested
    imagery = open_imagery(assess_memory.write_season(tmp_path, dates))
    acquired = [scene.acquired.date() for scene in imagery.scenes]
    assert len(set(acquired)) == dates
    assert acquired == sorted(acquired)
    assert acquired[0] == date(2024, 4, 15) and acquired[-1] == date(2024, 10, 15)


def test_a_cached_season_of_the_older_date_scheme_is_rewritten_not_mixed_in(monkeypatch, tmp_path: Path) -> None:
    """Five dates once ran to 15 December: a cache of them beside the new dates read as a season of eight."""
    monkeypatch.setattr(assess_memory, "SIZE", 60)
    stale = tmp_path / "imagery-1x5" / "S2B_50RKV_20241215_0_L2A"
    stale.mkdir(parents=True)
    imagery = open_imagery(assess_memory.write_season(tmp_path, 5))
    assert not stale.exists() and len(imagery.scenes) == 5


def test_seasons_of_up_to_four_dates_keep_the_dates_two_months_apart_their_figures_were_measured_on() -> None:
    assert assess_memory.season_dates(4) == [date(2024, 4, 15), date(2024, 6, 15), date(2024, 8, 15),
                                             date(2024, 10, 15)]
    assert assess_memory.season_dates(2) == [date(2024, 4, 15), date(2024, 6, 15)]


def test_a_number_of_dates_no_season_holds_exits_2_naming_it(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "assess_memory.py"), "--parcels", "10", "--dates", "0",
                           "--cache", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--dates 0" in done.stderr and "1 to 184 dates" in done.stderr
