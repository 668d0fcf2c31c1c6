"""Every benchmark answers `--help` without starting a run, so `bench/` can be explored safely.

Each script in `bench/` is run as a real process with `--help`: it must exit 0, print a usage
line and its description, and do so without seeding or measuring anything (a run prints
figures; `--help` must not).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_help_does_not_run_the_benchmark(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:"), done.stdout[:200]
    assert "Benchmark" in done.stdout or "benchmark" in done.stdout
    assert done.stderr == ""
