"""The CLI starts like kubectl: each command imports only what it needs (the import set, not a
timing, so it cannot regress silently). `--version` imports nothing but the package itself;
a client command such as `release status` loads neither the manifest models, nor the
database, nor cryptography, nor the web server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ENTRY = ("import json, sys\nfrom infrastream.cli.main import main\ncode = main(sys.argv[1:])\n"
         "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
         "sys.exit(code)")
"""What the `infrastream` console script runs, then the modules it loaded."""
HEAVY = ("infrastream.manifests.application", "infrastream.manifests.bundle", "sqlalchemy",
         "cryptography", "fastapi", "uvicorn", "alembic", "infrastream.service",
         "lightkube", "jinja2")


def imported(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True,
                          text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "INFRASTREAM_URL": "http://127.0.0.1:9",
                               "INFRASTREAM_TOKEN": "t", "HOME": "/nonexistent",
                               # the checkout under test, when it is not the installed one
                               "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    line = next((x for x in done.stderr.splitlines() if x.startswith("MODULES ")), None)
    assert line is not None, done.stderr
    return set(json.loads(line.removeprefix("MODULES ")))


def test_version_imports_nothing_but_the_package():
    names = imported("--version")
    ours = {n for n in names if n.startswith("infrastream")}
    assert ours == {"infrastream", "infrastream.cli", "infrastream.cli.main"}
    assert not {"typer", "rich", "httpx", "pydantic", "click"} & names


def test_release_status_loads_no_models_database_crypto_or_server():
    names = imported("release", "status", "shop/v1")
    assert "infrastream.cli.release_cmd" in names and "httpx" in names
    loaded = sorted(n for n in names for heavy in HEAVY
                    if n == heavy or n.startswith(heavy + "."))
    assert loaded == []
    commands = sorted(n for n in names if n.startswith("infrastream.cli.") and n.endswith("_cmd"))
    assert commands == ["infrastream.cli.release_cmd"]
    # nor pydantic (typer 0.29 builds a TypeAdapter per parameter) nor the YAML library
    assert not {"pydantic", "yaml"} & names


def test_login_sso_loads_neither_cryptography_nor_the_service():
    """The CLI runs the device grant with httpx alone; the server verifies the ID token."""
    names = imported("login", "--sso", "--server", "http://127.0.0.1:9")
    assert "infrastream.cli.sso_login" in names and "httpx" in names
    loaded = sorted(n for n in names for heavy in (*HEAVY, "jwt")
                    if n == heavy or n.startswith(heavy + "."))
    assert loaded == []
