"""The README's demo walkthrough, run as written against a real `infrastream demo`.

Every line of the block after the `demo-walkthrough` marker in README.md runs in one bash
shell at 80 columns, in a directory whose `.venv/bin` holds this interpreter's `infrastream`
(what `./dev.sh` makes); only the `<… token>` placeholders are replaced, by the tokens the
demo printed. So the README and the product cannot drift apart. The tables it prints are
checked too: no identifier is cut at 80 columns.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- demo-walkthrough:"
PLACEHOLDER = re.compile(r"<(admin|\w+)(?:'s)? token>")


def walkthrough() -> list[str]:
    text = (ROOT / "README.md").read_text()
    after = text[text.index(MARKER):]
    block = after[after.index("```sh\n") + len("```sh\n"):]
    return [line for line in block[:block.index("```")].splitlines() if line.strip()]


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("demo")
    port = free_port()
    log = (root / "demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "infrastream.cli.main", "demo", "--port", str(port),
         "--data-dir", str(root / "demo")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail("the demo exited:\n" + (root / "demo.log").read_text())
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz",
                             timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the demo did not answer within 60s")
            time.sleep(0.2)
        yield port, root
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


def tokens(root: Path) -> dict[str, str]:
    found = dict(line.split(" ", 1) for line in
                 (root / "demo" / "demo-tokens.txt").read_text().splitlines() if line)
    found["admin"] = (root / "demo" / "data" / "admin-token").read_text().strip()
    return found


def banner(root: Path) -> str:
    return (root / "demo.log").read_text()


def wait_for_sign_off(port: int, token: str) -> None:
    """What the README asks the reader to wait for: shop/v1 waiting for production sign-off."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        release = httpx.get(f"http://127.0.0.1:{port}/api/v1/releases/shop/v1",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        production = [s for s in release.get("stages", []) if s["name"] == "production"]
        if production and production[0]["state"] == "awaiting-approval":
            return
        time.sleep(1)
    pytest.fail(f"shop/v1 never waited for production sign-off: {release.get('summary')}")


def test_the_demo_prints_the_admin_token_and_how_to_reach_infrastream(
        demo: tuple[int, Path]) -> None:
    _port, root = demo
    printed = banner(root)
    assert tokens(root)["admin"] in printed
    assert "export PATH=" in printed


def test_every_readme_cli_line_works_as_written_against_the_demo(
        demo: tuple[int, Path], tmp_path: Path) -> None:
    port, root = demo
    known = tokens(root)
    wait_for_sign_off(port, known["pat"])
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)  # what dev.sh makes
    assert (tmp_path / ".venv" / "bin" / "infrastream").exists()
    env = {**os.environ, "COLUMNS": "80", "INFRASTREAM_CONFIG": str(tmp_path / "cfg.json")}
    env.pop("INFRASTREAM_TOKEN", None)
    env.pop("INFRASTREAM_URL", None)
    script = ["set -e"]
    for line in walkthrough():
        line = PLACEHOLDER.sub(lambda m: known[m.group(1)], line)
        line = line.replace("127.0.0.1:8420", f"127.0.0.1:{port}")  # the demo's own port
        script += [f"echo '>>> {line[:40]}'", line]
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "succeeded" in done.stdout  # the last release status: production runs shop/v1

    # Real command output at 80 columns: every release, user and timestamp shown whole.
    def run(*args: str, token: str) -> str:
        result = subprocess.run([str(tmp_path / ".venv" / "bin" / "infrastream"), *args],
                                env={**env, "INFRASTREAM_URL": f"http://127.0.0.1:{port}",
                                     "INFRASTREAM_TOKEN": token},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    for args, token, fields in (
            (("release", "list"), known["pat"], ("release", "createdBy")),
            (("audit", "list", "--limit", "20"), known["pat"], ("seq", "actor", "action")),
            (("user", "list"), known["admin"], ("name",))):
        table = run(*args, token=token)
        rows = json.loads(run(*args, "-o", "json", token=token))
        words = set(table.split())
        for row in rows:
            for field in fields:
                if row.get(field):
                    assert str(row[field]) in words, (field, row[field], table)
