"""`infrastream demo` stops what it started when it stops (SIGINT, SIGTERM) unless `--keep`,
and a busy port is refused before anything starts. The demo's application processes carry
the owner marker `INFRASTREAM_LOCAL_OWNER=<data dir>/data/local/<environment>`: the test
looks for any process carrying a marker under the demo's directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

MARKER = b"INFRASTREAM_LOCAL_OWNER="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _marked(root: Path) -> list[int]:
    """Live processes whose owner marker names a directory under `root`."""
    wanted = MARKER + str(root).encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "status").read_text()
        except OSError:
            continue
        if "State:\tZ" not in state and any(v.startswith(wanted) for v in environ):
            found.append(int(entry.name))
    return found


def _start(root: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    log = (root.parent / f"demo-{port}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "infrastream.cli.main", "demo", "--port", str(port),
         "--data-dir", str(root), *extra], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)


def _until_running(process: subprocess.Popen[bytes], root: Path, port: int) -> None:
    """Until the server answers and development runs every application."""
    state = root / "data" / "local" / "development" / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, (root.parent / f"demo-{port}.log").read_text()
        try:
            answered = httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=1)
            apps = json.loads(state.read_text())["apps"] if state.exists() else {}
            if answered.status_code == 200 and len(apps) == 3 and _marked(root):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail("the demo did not deploy to development in time")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_demo_leaves_no_process_behind(tmp_path: Path, stop: signal.Signals) -> None:
    root = tmp_path / "demo"
    port = _free_port()
    process = _start(root, port)
    try:
        _until_running(process, root, port)
        process.send_signal(stop)
        assert process.wait(timeout=60) == (130 if stop is signal.SIGINT else 0)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert _marked(root) == []
    assert "stopping the demo's applications" in (
        tmp_path / f"demo-{port}.log").read_text()


def test_a_demo_kept_running_leaves_its_applications(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    port = _free_port()
    process = _start(root, port, "--keep")
    try:
        _until_running(process, root, port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert _marked(root) != []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in _marked(root):
            os.killpg(pid, signal.SIGKILL)


def test_a_busy_port_gives_one_line_and_starts_nothing(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "infrastream.cli.main", "demo", "--port", str(port),
             "--data-dir", str(root)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} is busy (another demo or server?); stop it or use --port"]
    assert not root.exists() and _marked(root) == []
