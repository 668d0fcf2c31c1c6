"""A real `infrastream serve` per test module, and `cli`: the CLI run in-process against it
as the holder of a token (these override the in-process-only `cli` of tests/cli)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import ADMIN, DEFAULT, OPS_ROLES, Result, Server, free_port

from infrastream.cli.main import main


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("server") / "data"
    port = free_port()
    log = (data_dir.parent / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "infrastream.cli.main", "serve", "--data-dir", str(data_dir),
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()

    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail("the server exited:\n" + (data_dir.parent / "server.log")
                            .read_text(errors="replace"))
            try:
                if httpx.get(f"{url}/api/v1/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not answer /api/v1/healthz within 30s")
            time.sleep(0.1)
        token = (data_dir / "admin-token").read_text().strip()
        ops = httpx.post(f"{url}/api/v1/users", headers={"Authorization": f"Bearer {token}"},
                         json={"name": "ops", "roles": OPS_ROLES}, timeout=30)
        assert ops.status_code == 201, ops.text
        yield Server(url, token, data_dir, ops.json()["token"])
    finally:
        stop()


@pytest.fixture
def cli(server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path):
    """Run `infrastream ARGS` against the server as the holder of `token` (default: the
    admin for `user`/`token` commands, else `ops`; None: no INFRASTREAM_TOKEN at all)."""
    monkeypatch.setenv("INFRASTREAM_CONFIG", str(tmp_path / "no-login" / "config.json"))
    monkeypatch.setenv("INFRASTREAM_URL", server.url)

    def run(*args: str, token: str | None = DEFAULT) -> Result:
        if token == DEFAULT:
            token = ADMIN if args and args[0] in ("user", "token", "team") else server.ops_token
        if token is None:
            monkeypatch.delenv("INFRASTREAM_TOKEN", raising=False)
        else:
            monkeypatch.setenv("INFRASTREAM_TOKEN",
                               server.admin_token if token == ADMIN else token)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err, captured
        return Result(code, captured.out, captured.err)

    return run
