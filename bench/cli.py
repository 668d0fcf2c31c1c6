"""Benchmark: how fast the `infrastream` command starts, against `python -c pass` and kubectl.

A person types a command and waits for the answer: what counts is the wall time of the whole
process, start to exit. Measured in the same run, each as the median of `--runs` (15) runs
after one warm-up run:

- the floors: `python -c pass` with the same interpreter (the least any Python command can
  cost) and, when it is on PATH, `kubectl version --client` (the peer people compare with);
- `infrastream --version`;
- `infrastream validate` of one manifest file (the example's environments);
- `infrastream release status shop/vN` against a real `infrastream serve` (SQLite, a fresh data
  directory, one release cut through the API, the request made with a user's API token), and
  its server time: the same GET made on an open connection by a warm client in this process,
  what the command cannot go below.

It prints each time, its ratio to `python -c pass`, and for `release status` its time less its
server time against the goal of issue 18 (every command ≤ 3× `python -c pass` plus its server
time; `--version` ≤ 150 ms). Next to each wall time it prints the process's CPU time (user +
system, median): on a machine other work shares, wall times swing with the load while CPU
time moves much less, so compare runs by it. It also prints, from `python -X importtime`, how
many modules each command imports and the packages whose modules took the longest to import
(the least of three runs per module, again to see through the noise), since that is where a
command's start goes.

Run: `.venv/bin/python bench/cli.py` (about 30 s, most of it starting the server).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
EXAMPLE = ROOT / "src" / "infrastream" / "examples" / "shop" / "manifests"
GOAL_RATIO = 3.0
GOAL_VERSION_MS = 150.0
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \| *(\S+)$")


CPU_MS: dict[str, float] = {}
"""Median CPU ms (user + system) of each command `timed` measured, by its argv."""


def timed(argv: Sequence[str], env: dict[str, str], runs: int) -> float:
    """Median wall seconds of `argv`, after one warm-up (the page cache, .pyc files); its
    median CPU time goes into CPU_MS."""
    subprocess.run(argv, env=env, capture_output=True, check=False)
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    CPU_MS[" ".join(argv)] = statistics.median(cpu) * 1000
    return statistics.median(times)


def cpu(argv: Sequence[str]) -> str:
    return f"cpu {CPU_MS[' '.join(argv)]:6.1f} ms"


def imports(args: Sequence[str], env: dict[str, str], runs: int = 3
            ) -> tuple[int, float, list[tuple[str, float]]]:
    """(modules imported, their import ms, the packages that took the most import ms) of a
    command: each module's own time, the least of `runs` runs, summed by top-level package."""
    least: dict[str, int] = {}
    names: set[str] = set()
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c",
             "import sys; from infrastream.cli.main import main; sys.exit(main(sys.argv[1:]))",
             *args], env=env, capture_output=True, text=True, check=False)
        names = set()
        for line in done.stderr.splitlines():
            found = IMPORT_LINE.match(line)
            if found is not None:
                name, own = found.group(2), int(found.group(1))
                names.add(name)
                least[name] = min(least.get(name, own), own)
    top: dict[str, float] = {}
    for name in names:
        package = name.split(".")[0]
        top[package] = top.get(package, 0.0) + least[name] / 1000
    return (len(names), sum(top.values()),
            sorted(top.items(), key=lambda item: -item[1])[:6])


def server_ms(base: str, token: str, path: str, calls: int = 30) -> float:
    """Median ms of the GET on an open connection: the server's share of `release status`."""
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        client.get(path).raise_for_status()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            client.get(path).raise_for_status()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(runs: int) -> int:
    from scale_out import cluster

    from engine import sources  # the example's manifests on the noop target

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    infrastream = [sys.executable, "-m", "infrastream.cli.main"]
    print(f"CLI start: median of {runs} runs each; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    python = [sys.executable, "-c", "pass"]
    floor = timed(python, env, runs)
    print(f"  python -c pass                  {floor * 1000:7.1f} ms  {cpu(python)}  "
          "(the floor)")
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        peer = timed([kubectl, "version", "--client"], env, runs)
        print(f"  kubectl version --client        {peer * 1000:7.1f} ms  "
              f"{cpu([kubectl, 'version', '--client'])}  {peer / floor:5.1f}× the floor")
    version = timed([*infrastream, "--version"], env, runs)
    print(f"  infrastream --version           {version * 1000:7.1f} ms  "
          f"{cpu([*infrastream, '--version'])}  "
          f"{version / floor:5.1f}× the floor; ≤ {GOAL_VERSION_MS:g} ms: "
          f"{'ok' if version * 1000 <= GOAL_VERSION_MS else 'MISSED'}")
    manifest = str(EXAMPLE / "environments.yaml")
    validate = timed([*infrastream, "validate", manifest], env, runs)
    print(f"  infrastream validate (1 file)   {validate * 1000:7.1f} ms  "
          f"{cpu([*infrastream, 'validate', manifest])}  "
          f"{validate / floor:5.1f}× the floor; ≤ {GOAL_RATIO:g}×: "
          f"{'ok' if validate / floor <= GOAL_RATIO else 'MISSED'}")
    with tempfile.TemporaryDirectory(prefix="infrastream-bench-cli-") as tmp, \
            cluster(f"sqlite:///{Path(tmp) / 'infrastream.db'}", 1, sources()) as made:
        import httpx

        base, rita = made.bases[0], made.tokens["rita"]
        ci = {"Authorization": f"Bearer {made.tokens['ci']}"}
        for app in ("api", "web", "worker"):
            httpx.post(f"{base}/applications/{app}/versions", headers=ci, json={
                "image": f"registry.example.com/shop/{app}:1.0.0"}).raise_for_status()
        name = httpx.post(f"{base}/releases", json={"applicationSet": "shop"},
                          headers={"Authorization": f"Bearer {rita}"}
                          ).raise_for_status().json()["name"]
        client_env = {**env, "INFRASTREAM_URL": base.removesuffix("/api/v1"),
                      "INFRASTREAM_TOKEN": rita, "HOME": tmp}
        serving = server_ms(base, rita, f"/releases/shop/{name}")
        for label, extra in (("release status", []), ("release status -o json", ["-o", "json"])):
            argv = [*infrastream, "release", "status", f"shop/{name}", *extra]
            status = timed(argv, client_env, runs)
            own = status - serving / 1000
            print(f"  {'infrastream ' + label:32}{status * 1000:7.1f} ms  {cpu(argv)}  "
                  f"{status / floor:5.1f}× the floor; server time {serving:5.1f} ms; without "
                  f"it {own / floor:4.1f}× the floor; ≤ {GOAL_RATIO:g}×: "
                  f"{'ok' if own / floor <= GOAL_RATIO else 'MISSED'}")
        print("imports (python -X importtime, the least of 3 runs per module; ms by package):")
        for label, args, with_env in (
                ("--version", ["--version"], env),
                ("validate", ["validate", manifest], env),
                ("release status", ["release", "status", f"shop/{name}"], client_env),
                ("… -o json", ["release", "status", f"shop/{name}", "-o", "json"],
                 client_env)):
            count, total, top = imports(args, with_env)
            said = ", ".join(f"{package} {ms:.1f}" for package, ms in top)
            print(f"  {label:15} {count:4d} modules, {total:5.1f} ms; {said}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0],
                                     epilog="\n".join((__doc__ or "").splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median)")
    sys.exit(main(parser.parse_args().runs))
