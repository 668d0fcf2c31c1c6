"""Benchmark: `infrastream validate` on a large manifest repository, against a YAML floor.

It generates, in a temporary directory, a realistic repository of valid manifests (the fields
of the `infrastream init` example): 20 Environments in one file, 100 ReleaseTracks in five
files, and 1,000 ApplicationSets, each in its own file together with its 10 Applications
(10,000 Applications in all). Then it measures, best of a few runs with `time.perf_counter`:

- validate: what the CLI does, `infrastream.cli.validate_cmd.load(paths)` (discovering and
  reading the files, parsing every document, validating every manifest and checking them
  against each other), and the full `infrastream validate DIR` through `main([...])` with its
  output suppressed;
- floors: reading the same files and merely running PyYAML's C parser over them, as an
  event stream (`yaml.parse(text, Loader=yaml.CSafeLoader)`: the real floor, the least any YAML
  validator in Python has to do) and as documents (`yaml.load_all(..., CSafeLoader)`, which
  also builds Python objects and is slower than validating itself).

It prints the files and documents, the best and median wall times, the best CPU times (steadier
on a busy machine) and the ratios validate/event floor (target ≤ 1.5, on the best wall times), and
asserts that validation found no error nor warning, so the figures measure the real, valid path.

Run: `.venv/bin/python bench/validate.py [--sets N] [--runs N]` (`./dev.sh bench` runs it
with the others; `--help` says what it takes without running).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from infrastream.cli.main import main
from infrastream.cli.manifest_files import discover
from infrastream.cli.validate_cmd import load

ENVIRONMENTS = 20
TRACKS = 100
TRACK_FILES = 5
SETS = 1_000
APPS_PER_SET = 10
RUNS = 3
TARGET_RATIO = 1.5

API = "apiVersion: lowops.manifests.v1"
COMPONENTS = ("api", "web", "worker", "scheduler", "gateway", "search", "billing", "mailer",
              "images", "reports")


# -- the generated repository ------------------------------------------------------------------

def environment_names() -> list[str]:
    """20 environments: 4 development, 6 staging, 10 production (in regions)."""
    names = [f"dev-{i}" for i in range(4)]
    names += [f"staging-{i}" for i in range(6)]
    names += [f"production-{region}-{i}" for region in ("eu", "us") for i in range(5)]
    return names


def environment(name: str, index: int) -> str:
    tier = name.split("-")[0].replace("dev", "development")
    target = index % 4
    if target == 0:
        body = "    type: local"
    elif target == 1:
        body = "    type: noop"
    elif target == 2:
        body = (f"    type: gitops\n    repo: https://git.example.com/platform/deploy.git\n"
                f"    branch: main\n    path: envs/{name}")
    else:
        body = f"    type: kubernetes\n    namespace: shop-{name}\n    context: cluster-{index}"
    return (f"{API}\nkind: Environment\nmetadata:\n  name: {name}\n"
            f"  labels:\n    tier: {tier}\nspec:\n  tier: {tier}\n  target:\n{body}\n")


def track(index: int, envs: list[str]) -> str:
    dev = envs[index % 4]
    staging = envs[4 + index % 6]
    prod_eu = envs[10 + index % 5]
    prod_us = envs[15 + index % 5]
    return f"""\
# The path every release of product {index} travels. Owned by the platform team.
{API}
kind: ReleaseTrack
metadata:
  name: track-{index:03d}
  labels:
    team: platform
  annotations:
    owner: platform-team@example.com
spec:
  # Path for validating individual PRs: only the first environment is used.
  preReleaseStages:
    - environments:
        - {dev}
      checks:
        - type: integration-tests
  # Path for full, versioned releases.
  releaseStages:
    - environments:
        - {dev}
    - name: staging
      environments:
        - {staging}
      checks:                       # must pass before the release may leave staging
        - type: integration-tests
          timeout: 5m
        - type: http
          path: /healthz
          expectStatus: 200
        - type: soak
          duration: 1h30m
    - environments: [{prod_eu}, {prod_us}]   # deployed in parallel
      approvals:                    # sign-offs required to enter production
        - role: qa
        - role: product
        - role: security
          expiresAfter: 24h
  # Accelerated path for emergency fixes, signed off by incident commanders.
  hotfixStages:
    - environments:
        - {staging}
      checks:
        - type: integration-tests
    - environments: [{prod_eu}, {prod_us}]
      approvals:
        - role: incident-commander
          count: 2
  policy:
    initiatorMayApprove: false
"""


def application_set(index: int) -> str:
    name = f"product-{index:04d}"
    text = f"""\
# What ships together. Owned by the release manager of product {index}.
{API}
kind: ApplicationSet
metadata:
  name: {name}
  parent:
    kind: ReleaseTrack
    name: track-{index % TRACKS:03d}
spec:
  description: Product {index} - storefront, API and workers, released together.
"""
    for component in COMPONENTS[:APPS_PER_SET]:
        text += "---\n" + application(name, component)
    return text


def application(set_name: str, component: str) -> str:
    return f"""\
# The {component} of {set_name}. Owned by its development team.
{API}
kind: Application
metadata:
  name: {set_name}-{component}
  parent:
    kind: ApplicationSet
    name: {set_name}
  labels:
    component: {component}
spec:
  image: registry.example.com/{set_name}/{component}
  port: 8080
  replicas: 2
  healthCheck:
    path: /healthz
    timeout: 30s
  env:
    - name: COMPONENT
      value: {component}
    - name: LOG_LEVEL
      value: info
    - name: DB_PASSWORD
      secret: true
  run:
    command: ["python3", "services/{component}_service.py"]
  integrationTests:
    command: ["python3", "tests/smoke_test.py", "--component", "{component}"]
    timeout: 2m
"""


def generate(root: Path) -> None:
    envs = environment_names()
    texts = [environment(name, i) for i, name in enumerate(envs)]
    (root / "environments.yaml").write_text("---\n".join(texts))
    (root / "tracks").mkdir()
    per_file = TRACKS // TRACK_FILES
    for f in range(TRACK_FILES):
        texts = [track(i, envs) for i in range(f * per_file, (f + 1) * per_file)]
        (root / "tracks" / f"tracks-{f}.yaml").write_text("---\n".join(texts))
    for i in range(SETS):
        group = root / "products" / f"group-{i // 100:02d}"
        group.mkdir(parents=True, exist_ok=True)
        (group / f"product-{i:04d}.yaml").write_text(application_set(i))


# -- the measurements --------------------------------------------------------------------------

def event_floor(paths: list[str]) -> int:
    """Read every file and run the C parser's event stream over it; returns the documents."""
    count = 0
    for name in discover(paths):
        text = Path(name).read_bytes().decode("utf-8-sig")
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                count += 1
    return count


def floor(paths: list[str]) -> int:
    """Read every file and parse it with the C loader; returns the documents parsed."""
    count = 0
    for name in discover(paths):
        text = Path(name).read_bytes().decode("utf-8-sig")
        for _document in yaml.load_all(text, Loader=yaml.CSafeLoader):
            count += 1
    return count


def validate(paths: list[str]) -> int:
    result = load(paths)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, f"the generated manifests are invalid: {errors[:3]}"
    assert not result.diagnostics, f"unexpected warnings: {result.diagnostics[:3]}"
    return result.documents


def cli(paths: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()) as out, \
            contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["validate", *paths])
    assert code == 0, f"infrastream validate exited {code}: {err.getvalue()[:500]}"
    assert "0 error(s)" in out.getvalue(), out.getvalue()
    return code


def measure(functions: dict[str, Callable[[list[str]], int]],
            paths: list[str]) -> dict[str, tuple[float, float, float]]:
    """(best wall, median wall, best CPU) seconds of RUNS calls of each function.

    The runs are interleaved, so a slower period of a shared machine slows all of them.
    """
    wall: dict[str, list[float]] = {name: [] for name in functions}
    cpu: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(RUNS):
        for name, function in functions.items():
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            function(paths)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (min(wall[name]), statistics.median(wall[name]), min(cpu[name]))
            for name in functions}


def main_bench(sets: int) -> int:
    global SETS, TRACKS
    SETS = sets
    # fewer sets than tracks would leave tracks unused (a warning): as many tracks as sets then
    TRACKS = max(TRACK_FILES, min(TRACKS, sets) // TRACK_FILES * TRACK_FILES)
    with tempfile.TemporaryDirectory(prefix="infrastream-bench-") as tmp:
        root = Path(tmp)
        generate(root)
        paths = [str(root)]
        files = discover(paths)
        documents = validate(paths)  # also warms up imports and pydantic's validators
        expected = ENVIRONMENTS + TRACKS + SETS * (1 + APPS_PER_SET)
        assert documents == floor(paths) == event_floor(paths) == expected
        size = sum(Path(p).stat().st_size for p in files)
        cli(paths)
        print(f"{len(files)} files, {documents} documents, {size / 1e6:.1f} MB "
              f"({ENVIRONMENTS} Environments, {TRACKS} ReleaseTracks, {SETS} ApplicationSets, "
              f"{SETS * APPS_PER_SET} Applications); {RUNS} runs each")
        results = measure({
            "floor: read + yaml.parse(CSafeLoader) events": event_floor,
            "floor: read + yaml.load_all(CSafeLoader)": floor,
            "validate: validate_cmd.load(paths)": validate,
            "validate: main(['validate', DIR])": cli,
        }, paths)
    print(f"  {'':<42} {'best':>8} {'median':>8} {'best CPU':>9} {'docs/s':>7}")
    for label, (best, median, best_cpu) in results.items():
        print(f"  {label:<42} {best:7.2f}s {median:7.2f}s {best_cpu:8.2f}s "
              f"{documents / best:7.0f}")
    floor_best, _, floor_cpu = results["floor: read + yaml.parse(CSafeLoader) events"]
    loader_best, _, _ = results["floor: read + yaml.load_all(CSafeLoader)"]
    load_best, _, load_cpu = results["validate: validate_cmd.load(paths)"]
    cli_best, _, cli_cpu = results["validate: main(['validate', DIR])"]
    worst = max(load_best, cli_best) / floor_best
    print(f"load_all(CSafeLoader)/event floor {loader_best / floor_best:.2f}")
    print(f"ratio validate/event floor (best wall): load {load_best / floor_best:.2f}, "
          f"CLI {cli_best / floor_best:.2f}; (best CPU): load {load_cpu / floor_cpu:.2f}, "
          f"CLI {cli_cpu / floor_cpu:.2f}; target ≤ {TARGET_RATIO}: "
          f"{'ok' if worst <= TARGET_RATIO else 'ABOVE TARGET'}")
    if floor_best > 1.3 * floor_cpu:
        print("note: wall times well above CPU times: the machine is busy, the CPU ratios are "
              "the steadier figures")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sets", type=int, default=SETS,
                        help=f"ApplicationSets to generate, {APPS_PER_SET} Applications each "
                             f"(default {SETS})")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs each (default {RUNS})")
    arguments = parser.parse_args()
    if arguments.sets < TRACK_FILES:
        parser.error(f"--sets must be at least {TRACK_FILES}")
    RUNS = arguments.runs
    sys.exit(main_bench(arguments.sets))
