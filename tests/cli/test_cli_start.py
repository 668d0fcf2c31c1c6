"""The CLI starts like kubectl: each command imports only what it needs (the import set, not a
timing, so it cannot regress silently). `--version` imports nothing but the package itself;
a client command such as `release status` loads neither the manifest models, nor the
database, nor cryptography, nor the web server, nor the parts of httpx it never uses (its own
command line, HTTP/2); Rich only to draw a table; `validate` loads neither httpx nor, into a
pipe, Rich."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stand_in import stand_in

ENTRY = ("import json, sys\nfrom infrastream.cli.main import main\ncode = main(sys.argv[1:])\n"
         "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
         "sys.exit(code)")
"""What the `infrastream` console script runs, then the modules it loaded."""
HEAVY = ("infrastream.manifests.application", "infrastream.manifests.bundle", "sqlalchemy",
         "cryptography", "fastapi", "uvicorn", "alembic", "infrastream.service",
         "lightkube", "jinja2")
UNUSED_HTTPX = ("httpx._main", "click", "pygments", "h2", "hpack")
"""What `import httpx` loads unless the CLI keeps it out: httpx's own command line (with the
real click, pygments and much of Rich) and HTTP/2 support."""
RICH_EXTRAS = ("rich.syntax", "rich.progress", "rich.markdown", "rich.pretty",
               "rich._emoji_codes")
"""Rich modules `release status` never needs (the emoji table: emoji codes are off)."""
EXAMPLE = Path(__file__).resolve().parents[2] / "src/infrastream/examples/shop/manifests"


def imported(*args: str, server: str = "http://127.0.0.1:9") -> tuple[set[str], str]:
    """(the modules `infrastream ARGS…` loaded, its stdout), run with output into a pipe."""
    done = subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True,
                          text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "INFRASTREAM_URL": server,
                               "INFRASTREAM_TOKEN": "t", "HOME": "/nonexistent",
                               "PYTHONIOENCODING": "utf-8", "COLUMNS": "100",
                               # the checkout under test, when it is not the installed one
                               "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    line = next((x for x in done.stderr.splitlines() if x.startswith("MODULES ")), None)
    assert line is not None, done.stderr
    return set(json.loads(line.removeprefix("MODULES "))), done.stdout


def loaded(names: set[str], *packages: str) -> list[str]:
    return sorted(n for n in names for p in packages if n == p or n.startswith(p + "."))


STATUS = {
    "release": "shop/v1", "lane": "release", "track": "shop-track", "state": "active",
    "digest": "sha256:" + "ab" * 32, "createdAt": "2026-12-03T12:37:49+00:00",
    "createdBy": "rita", "versions": {"api": {"version": "1.0.0"}},
    "runsIn": ["development"], "summary": "development: succeeded",
    "stages": [{"index": 0, "name": "development", "state": "succeeded", "attempt": 1,
                "environments": [{"name": "development", "state": "healthy",
                                  "message": "recorded api"}],
                "approvals": [{"role": "qa", "required": 1, "approvers": []}]}],
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A plain-HTTP stand-in for the API answering GET /api/v1/releases/shop/v1, and the
    headers of each request it received."""
    def answer(path: str, _headers: dict[str, str], _count: int) -> tuple[int, Any, dict[str, str]]:
        if path.split("?")[0] == "/api/v1/releases/shop/v1":
            return 200, STATUS, {}
        return 404, {"title": "Not Found", "status": 404, "detail": "no release shop/v9"}, {
            "Content-Type": "application/problem+json"}

    with stand_in(answer) as (url, seen):
        yield url, seen


def test_version_imports_nothing_but_the_package():
    names, _ = imported("--version")
    ours = {n for n in names if n.startswith("infrastream")}
    assert ours == {"infrastream", "infrastream.cli", "infrastream.cli.main"}
    assert not {"typer", "rich", "httpx", "pydantic", "click"} & names


def test_release_status_loads_no_models_database_crypto_or_server():
    names, _ = imported("release", "status", "shop/v1")  # nothing listens: the error line
    assert "infrastream.cli.release_cmd" in names and "httpx" in names
    assert loaded(names, *HEAVY) == []
    commands = sorted(n for n in names if n.startswith("infrastream.cli.") and n.endswith("_cmd"))
    assert commands == ["infrastream.cli.release_cmd"]
    # nor pydantic (typer 0.29 builds a TypeAdapter per parameter) nor the YAML library
    assert not {"pydantic", "yaml"} & names
    # nor what httpx would bring along unasked, nor any manifest module, nor Rich: the one
    # error line into a pipe is written as it is
    assert loaded(names, *UNUSED_HTTPX, "infrastream.manifests", "rich") == []


def test_release_status_table_draws_with_rich_and_nothing_httpx_does_not_need(server):
    url, seen = server
    names, out = imported("release", "status", "shop/v1", server=url)
    assert "release  shop/v1  (release lane, track shop-track)" in out
    assert "qa        0/1" in out
    assert seen[-1]["authorization"] == "Bearer t"
    assert {"rich.console", "rich.table", "httpx", "httpcore"} <= names
    # (nor are they left blocked: `sys.modules` holds no name of them, not even as None)
    assert loaded(names, *UNUSED_HTTPX, *RICH_EXTRAS, *HEAVY, "infrastream.manifests") == []


def test_release_status_as_json_loads_no_rich(server):
    url, _ = server
    names, out = imported("release", "status", "shop/v1", "-o", "json", server=url)
    assert json.loads(out) == STATUS
    assert loaded(names, "rich", *UNUSED_HTTPX, "infrastream.manifests") == []


def test_a_problem_from_the_server_is_one_line_without_rich(server):
    url, _ = server
    done = subprocess.run([sys.executable, "-c", ENTRY, "release", "status", "shop/v9"],
                          capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "INFRASTREAM_URL": url,
                               "INFRASTREAM_TOKEN": "t", "HOME": "/nonexistent",
                               "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == "error: no release shop/v9"
    modules = set(json.loads(done.stderr.splitlines()[-1].removeprefix("MODULES ")))
    assert loaded(modules, "rich") == []


def test_validate_loads_neither_httpx_nor_rich_into_a_pipe():
    names, out = imported("validate", str(EXAMPLE / "environments.yaml"))
    assert out.startswith("valid: ")
    assert loaded(names, "httpx", "httpcore", "h11", "h2", "rich", "click", "ssl",
                  "infrastream.cli.client", "sqlalchemy", "cryptography") == []


def test_login_sso_loads_neither_cryptography_nor_the_service():
    """The CLI runs the device grant with httpx alone; the server verifies the ID token."""
    names, _ = imported("login", "--sso", "--server", "http://127.0.0.1:9")
    assert "infrastream.cli.sso_login" in names and "httpx" in names
    assert loaded(names, *HEAVY, "jwt") == []


def test_plain_http_makes_no_ssl_context(server, monkeypatch):
    """An SSL context (and the CA bundle, 17 ms) only for https."""
    import ssl

    from infrastream.cli.client import ApiClient, _verify, load_httpx

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an SSL context was made for plain http")

    assert load_httpx() is sys.modules["httpx"]
    monkeypatch.setattr(ssl, "SSLContext", refuse)
    url, _ = server
    assert ApiClient(url, "t").get("/releases/shop/v1") == STATUS
    assert _verify("http://x") is None
    monkeypatch.undo()  # (ssl's own properties look SSLContext up by name)
    https = _verify("HTTPS://x")
    assert isinstance(https, ssl.SSLContext) and https.verify_mode == ssl.CERT_REQUIRED
