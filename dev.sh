#!/usr/bin/env bash
# One entry point for people and CI. Creates .venv on first use (and refreshes it when
# pyproject.toml changes), then runs the requested job:
#   ./dev.sh demo    the main job: the example product (validated and shown, then served)
#   ./dev.sh test    the whole test suite with the linters (what CI runs)
#   ./dev.sh bench   the benchmarks in bench/
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
VENV="$ROOT/.venv"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "dev.sh: Python 3.11 or newer is required" >&2; exit 2
}

ensure_venv() {
  # Progress goes to stderr, step by step: a fresh clone takes a few minutes here.
  local stamp="$VENV/.installed" want
  want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "dev.sh: [1/3] creating the virtualenv in .venv (first use only)" >&2
    "$(find_python)" -m venv "$VENV"
  fi
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "dev.sh: [2/3] upgrading pip" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    echo "dev.sh: [3/3] installing Infrastream and its dependencies from pyproject.toml" \
      "(a few minutes on a fresh clone; one line per package)" >&2
    # pip prints "Collecting X" per requirement, then the packages it installs: shown as steps.
    "$VENV/bin/python" -m pip install --progress-bar off -e ".[dev]" 2>&1 | awk '
      /^Collecting / { n++; printf "dev.sh:   (%d) %s\n", n, $0; fflush() }
      /^Installing collected packages: / {
        count = split(substr($0, 32), names, ", ")
        printf "dev.sh:   installing %d packages…\n", count; fflush() }
      /^Successfully installed / { printf "dev.sh:   installed\n"; fflush() }
      /^ERROR/ { print "dev.sh:   " $0; fflush() }' >&2 || true
    "$VENV/bin/python" -c 'import infrastream' # fail here, not later, when the install did not
    echo "$want" > "$stamp"
    echo "dev.sh: ready. To run \`infrastream\` directly: export PATH=\"$VENV/bin:\$PATH\"" >&2
  fi
}

ensure_postgres() {
  # The tests use the PostgreSQL server on 127.0.0.1:5432 (trust auth, database `test`).
  if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
      for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
  fi
}

ensure_npm() {
  # Test data from the npm registry (tests/npm/package.json): real GitHub webhook payloads
  # and GitHub's official REST description. Reinstalled when the lock file changes.
  local dir="$ROOT/tests/npm" stamp="$ROOT/tests/npm/node_modules/.installed" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -d "$dir/node_modules" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "dev.sh: npm is required for the test data in tests/npm (install Node.js 20+ and npm)" >&2
    exit 2
  fi
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
}

ensure_chromium() {
  # The portal's browser tests drive Debian's Chromium (never a downloaded browser). CI runs
  # as root and installs it; without root a missing Chromium only skips those tests.
  command -v chromium >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "dev.sh: chromium is not installed (apt-get install chromium); browser tests skip" >&2
  fi
}

job="${1:-}"; shift || true
case "$job" in
  demo)
    ensure_venv
    exec "$VENV/bin/python" -m infrastream.cli.demo_job "$@"
    ;;
  test)
    ensure_venv
    ensure_npm
    ensure_postgres
    ensure_chromium
    echo "== ruff"; "$VENV/bin/ruff" check src tests bench
    echo "== mypy"; "$VENV/bin/mypy" src/infrastream
    echo "== import contracts"; "$VENV/bin/lint-imports"
    # The tests mostly wait on processes, HTTP and databases: four workers share two cores well.
    # loadgroup: each test goes to the next free worker (the long ones do not queue behind
    # each other), those sharing a module-scoped fixture together (tests/conftest.py), in
    # the order tests/conftest.py gives them (the long ones first: --no-loadscope-reorder).
    echo "== pytest"
    exec "$VENV/bin/python" -m pytest -n 4 --dist loadgroup --no-loadscope-reorder "$@"
    ;;
  bench)
    ensure_venv
    for script in bench/*.py; do echo "== $script"; "$VENV/bin/python" "$script"; done
    ;;
  *)
    echo "usage: ./dev.sh demo|test|bench [args…]" >&2; exit 2
    ;;
esac
