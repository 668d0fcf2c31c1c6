"""Benchmark (scale-out): lifecycles/s with 1, 2 … N `infrastream serve` processes on one
PostgreSQL database, and the ratio of each to one server (the floor, measured in the same run
on the same machine). Run it as `bench/engine.py --servers N` (this file holds its driver).

For each server count a fresh database gets the engine benchmark's manifests (noop targets,
no checks, production approvals); `THREADS` driver threads run whole lifecycles over HTTP
(record versions → cut → promote → promote → three approvals → completed), each thread on
its own server in turn, for `BUDGET` seconds. All servers run on this machine, so with few
cores the ratio shows the cost of coordination more than the gain of more machines.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

THREADS = 4
BUDGET = 15.0
ROLES = [("pat", "platform"), ("ci", "developer"), ("rita", "release-manager"),
         ("quinn", "qa"), ("paula", "product"), ("sam", "security")]


def _key() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def _start(url: str, directory: Path, node: str, port: int, key: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INFRASTREAM_SIGNING_KEY": key, "INFRASTREAM_NODE_NAME": node}
    with open(directory / f"{node}.log", "ab") as log:  # the child keeps its copy
        process = subprocess.Popen(
            [sys.executable, "-m", "infrastream.cli.main", "serve", "--data-dir",
             str(directory / node), "--database-url", url, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=1).is_success:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server {node} did not start")


def _wait(client: httpx.Client, path: str, done: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(client.get(path).raise_for_status().json()):
            return
        time.sleep(0.01)
    raise RuntimeError(f"{path} did not get there")


def _lifecycle(clients: dict[str, httpx.Client], tag: int) -> None:
    for app in ("api", "web", "worker"):
        clients["ci"].post(f"/applications/{app}/versions", json={
            "image": f"registry.example.com/shop/{app}:9.{tag}.0"}).raise_for_status()
    created = clients["rita"].post("/releases", json={"applicationSet": "shop"})
    name = created.raise_for_status().json()["name"]
    path = f"/releases/shop/{name}"
    for stage in (0, 1):
        _wait(clients["rita"], path, lambda s, i=stage: s["stages"][i]["state"] == "succeeded")
        clients["rita"].post(f"{path}/promotions").raise_for_status()
    for approver in ("quinn", "paula", "sam"):
        clients[approver].post(f"{path}/approvals", json={}).raise_for_status()
    _wait(clients["rita"], path, lambda s: s["state"] == "completed")


def _rate(url: str, servers: int, sources: list[tuple[str, str]], ports: Any) -> float:
    key = _key()
    with tempfile.TemporaryDirectory(prefix="infra-scale-") as tmp:
        directory = Path(tmp)
        numbers = [next(ports) for _ in range(servers)]
        processes = [_start(url, directory, f"n{i}", port, key) for i, port in enumerate(numbers)]
        try:
            bases = [f"http://127.0.0.1:{port}/api/v1" for port in numbers]
            admin_token = (directory / "n0" / "admin-token").read_text().strip()
            admin = httpx.Client(base_url=bases[0],
                                 headers={"Authorization": f"Bearer {admin_token}"})
            tokens = {name: admin.post("/users", json={"name": name, "roles": [role]})
                      .raise_for_status().json()["token"] for name, role in ROLES}
            httpx.post(bases[0] + "/manifests",
                       headers={"Authorization": f"Bearer {tokens['pat']}"},
                       json={"sources": [{"source": s, "text": t} for s, t in sources]},
                       timeout=30).raise_for_status()
            done = [0]
            lock = threading.Lock()
            tags = itertools.count(1)
            stop_at = time.monotonic() + BUDGET
            started = time.monotonic()

            def drive(thread: int) -> None:
                turn = thread
                while time.monotonic() < stop_at:
                    base = bases[turn % servers]
                    turn += 1
                    clients = {n: httpx.Client(base_url=base, timeout=60, headers={
                        "Authorization": f"Bearer {t}"}) for n, t in tokens.items()}
                    with lock:
                        tag = next(tags)
                    _lifecycle(clients, tag)
                    with lock:
                        done[0] += 1

            threads = [threading.Thread(target=drive, args=(t,)) for t in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return done[0] / (time.monotonic() - started)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)


def main_servers(most: int, sources: list[tuple[str, str]], fresh_database: Any) -> int:
    print(f"== scale-out on PostgreSQL: 1..{most} servers, {THREADS} driver threads over HTTP, "
          f"{BUDGET:.0f} s each")
    ports = itertools.count(18600)
    floor: float | None = None
    for servers in range(1, most + 1):
        made = fresh_database()
        if made is None:
            return 1
        url, drop = made
        try:
            rate = _rate(url, servers, sources, ports)
        finally:
            drop()
        floor = floor or rate
        print(f"  {servers} server(s): {rate:6.2f} lifecycles/s   ratio to 1 server: "
              f"{rate / floor:4.2f}", flush=True)
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--servers", type=int, default=3, metavar="N",
                        help="the most servers to measure (runs bench/engine.py --servers N)")
    options = parser.parse_args()
    engine = Path(__file__).with_name("engine.py")
    sys.exit(subprocess.call([sys.executable, str(engine), "--servers", str(options.servers)]))
