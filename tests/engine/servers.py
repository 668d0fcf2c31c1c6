"""Real `infrastream serve` processes for the multi-server tests: each with its own data
directory and node name, all on one database and one shared audit signing key."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infrastream.cli.manifest_files import read_sources


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signing_key() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


class Server:
    def __init__(self, data_dir: Path, database_url: str, *, node: str, key: str,
                 env: dict[str, str] | None = None, args: Iterable[str] = ()) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir, self.database_url, self.node = data_dir, database_url, node
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "INFRASTREAM_SIGNING_KEY": key,
                    "INFRASTREAM_NODE_NAME": node, **(env or {})}
        self.args = list(args)
        """More `serve` options (e.g. the identity provider's)."""
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def launch(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infrastream.cli.main", "serve", "--data-dir",
                 str(self.data_dir), "--database-url", self.database_url, "--port",
                 str(self.port), *self.args], stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return self.process

    def start(self) -> None:
        process = self.launch()
        deadline = time.monotonic() + 120  # generous: CI machines can be loaded
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()


def users(admin: httpx.Client) -> dict[str, str]:
    tokens = {}
    for name, role in [("pat", "platform"), ("ci", "developer"), ("rita", "release-manager"),
                       ("quinn", "qa"), ("paula", "product"), ("sam", "security")]:
        created = admin.post("/users", json={"name": name, "roles": [role]})
        tokens[name] = created.raise_for_status().json()["token"]
    return tokens


def apply(client: httpx.Client, repo: Path) -> None:
    sources, _ = read_sources([str(repo)])
    client.post("/manifests", json={
        "sources": [{"source": s, "text": t} for s, t in sources],
        "sourceRoot": str(repo)}).raise_for_status()


def wait_for(client: httpx.Client, path: str, condition, timeout: float = 90,
             interval: float = 0.05) -> dict:
    deadline = time.monotonic() + timeout
    status = client.get(path).raise_for_status().json()
    while time.monotonic() < deadline:
        status = client.get(path).raise_for_status().json()
        if condition(status):
            return status
        time.sleep(interval)
    raise AssertionError(f"timed out at: {status.get('summary')}")


_START = re.compile(r"^--- \S+ infrastream starts (\S+) \S+ \(release \S+, key (\S+)\)", re.M)


def target_starts(servers: Iterable[Server], environment: str) -> Counter[tuple[str, str]]:
    """How often the local target started each (deployment key, app), under every server's
    data directory: the marker line the local target writes to the app's log at each start."""
    found: Counter[tuple[str, str]] = Counter()
    for server in servers:
        for log in (server.data_dir / "local" / environment).glob("*.log"):
            for app, key in _START.findall(log.read_text(errors="replace")):
                found[(key, app)] += 1
    return found
