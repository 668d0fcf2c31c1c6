"""Benchmark: a manifest source of 10,000 Applications synced from Git, against `validate`.

It generates the repository of `bench/validate.py` (20 Environments, 100 ReleaseTracks,
1,000 ApplicationSets, 10,000 Applications in 1,006 files), commits it to a bare Git
repository on disk, and measures in one run, best of a few:

- floor: `validate` of the same tree (`infrastream.cli.validate_cmd.load`: read, parse,
  validate, cross-check), what a person waits for before applying anything;
- first sync: a fresh server (SQLite) fetching the repository and applying the tree as one
  revision (10,006 objects, their history and audit entries);
- next sync: one Application changed in a new commit, fetched and applied (the steady state).

It prints the figures and the ratios sync/validate (goal ≤ 2 for the first sync), and checks
that every object was applied, so the figures measure the real path. Never asserts a timing.

Run: `.venv/bin/python bench/sources.py [--runs N]` (`./dev.sh bench` runs it with the rest).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from validate import generate  # the same generated repository as the validate benchmark

from infrastream.cli.manifest_files import discover
from infrastream.cli.validate_cmd import load
from infrastream.domain.roles import Principal
from infrastream.service import sources
from infrastream.service.context import open_services

PLATFORM = Principal("pat", frozenset({"platform"}))
GOAL = 2.0


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com",
                    *args], cwd=cwd, check=True, capture_output=True)


def _repository(root: Path) -> tuple[Path, Path]:
    work, remote = root / "work", root / "repo.git"
    (work / "manifests").mkdir(parents=True)
    generate(work / "manifests")
    _git(root, "init", "-q", "--bare", "-b", "main", str(remote))
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "10,000 applications")
    _git(work, "push", "-q", str(remote), "HEAD:main")
    return work, remote


def _validate(work: Path) -> float:
    paths = [str(p) for p in discover([str(work / "manifests")])]
    started = time.perf_counter()
    result = load(paths)
    elapsed = time.perf_counter() - started
    assert not [d for d in result.diagnostics if d.is_error], "the generated tree is invalid"
    return elapsed


def _sync(remote: Path, data: Path, work: Path) -> tuple[float, float, int]:
    services = open_services(data)
    try:
        sources.add_source(services, PLATFORM, "bench", str(remote), path="manifests")
        started = time.perf_counter()
        first = sources.sync_source(services, "bench")
        first_time = time.perf_counter() - started
        assert first["state"] == "ok", first["message"]
        applied = len(first["applied"]["changes"])
        target = next((work / "manifests").glob("products/*/*.yaml"))
        target.write_text(target.read_text().replace("replicas: 2", "replicas: 3", 1))
        _git(work, "commit", "-q", "-am", "one more replica")
        _git(work, "push", "-q", str(remote), "HEAD:main")
        started = time.perf_counter()
        second = sources.sync_source(services, "bench")
        second_time = time.perf_counter() - started
        assert second["state"] == "ok", second["message"]
        return first_time, second_time, applied
    finally:
        services.db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions (best is reported)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work, remote = _repository(root)
        floors, firsts, nexts = [], [], []
        applied = 0
        for run in range(options.runs):
            floors.append(_validate(work))
            first, second, applied = _sync(remote, root / f"data-{run}", work)
            firsts.append(first)
            nexts.append(second)
    best = min(floors)
    print(f"objects applied by the first sync: {applied}")
    print(f"validate (floor):  best {best:.2f} s, median {statistics.median(floors):.2f} s")
    print(f"first sync:        best {min(firsts):.2f} s, median {statistics.median(firsts):.2f} s"
          f"  ratio {min(firsts) / best:.2f} (goal <= {GOAL})")
    print(f"next sync (1 app): best {min(nexts):.2f} s, median {statistics.median(nexts):.2f} s"
          f"  ratio {min(nexts) / best:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
