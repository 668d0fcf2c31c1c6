"""Benchmark (over HTTP): release lifecycles against real `infrastream serve` processes with
API tokens, 1, 2 … N of them on one database, and the ratio of each to one server (the floor,
measured in the same run on the same machine). Run it as `bench/engine.py --servers N` (this
file holds the over-HTTP driver that `bench/engine.py` uses for every figure it takes over HTTP).

A `Cluster` starts the servers (each its own data directory and node name, one shared audit
signing key), creates one user per role with the first server's admin token, and applies the
engine benchmark's manifests (noop targets, no checks, production approvals). `drive` runs
whole lifecycles from `THREADS` driver threads (record versions → cut → promote → promote →
three approvals → completed), each lifecycle on the next server in turn, every call with its
user's bearer token.

Reaction time is what the target sees: the noop target appends the key of every deployment
it makes to `<data dir>/noop/<environment>.calls`; a watcher thread reads those files under
every server's data directory as they grow and takes the file's modification time (the
kernel's clock of that write, so the watcher's own delays do not count) as the moment the
deployment reached the target. A lifecycle's reaction is that moment for its production
deployment minus the moment its last `approve` call returned; the server whose data
directory holds the line is the one that ran it. A driver alone (one thread, and the
cross-server samples) waits for the target after approving, not for the API, so that its
own status reads are not in its reaction. Drivers follow a release as a client should: each
status read sends the last `ETag` with `Prefer: wait` and is held by the server until the
release moves (`api.watching`), so reads cost the server one status per change, not one per
few ms (with several servers, a change made on another one is seen at the held read's
recheck, half a second at most). All servers run on this
machine, so with few cores the scale-out ratio shows the cost of coordination more than the
gain of machines.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

THREADS = 8
BUDGET = 10.0
ROLES = [("pat", "platform"), ("ci", "developer"), ("rita", "release-manager"),
         ("quinn", "qa"), ("paula", "product"), ("sam", "security")]
APPROVERS = ("quinn", "paula", "sam")
WATCH_EVERY = 0.002
LOCAL_START = re.compile(r"^--- \S+ infrastream starts \S+ \S+ \(release \S+, key (\S+)\)")
HELD = 10
"""Seconds a driver's status read may be held by the server waiting for a change."""
HANDOFF_SAMPLES = 8


def _key() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).is_success:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def _start(url: str, directory: Path, node: str, port: int, key: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INFRASTREAM_SIGNING_KEY": key, "INFRASTREAM_NODE_NAME": node}
    with open(directory / f"{node}.log", "ab") as log:  # the child keeps its copy
        process = subprocess.Popen(
            [sys.executable, "-m", "infrastream.cli.main", "serve", "--data-dir",
             str(directory / node), "--database-url", url, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    wait_healthy(f"http://127.0.0.1:{port}/api/v1/healthz", process, f"server {node}")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# -- what the target saw -------------------------------------------------------------------------

class TargetCalls:
    """When each deployment key first reached a target, and on which server: files under every
    server's data directory, read as they grow, each line parsed to a key (or None)."""

    def __init__(self, data_dirs: dict[str, Path], files: list[str],
                 parse: Callable[[str], str | None] = lambda line: line.strip() or None) -> None:
        self._files = [(node, d / f) for node, d in data_dirs.items() for f in files]
        self._read = dict.fromkeys(self._files, 0)
        self._parse = parse
        self.first: dict[str, tuple[float, str]] = {}
        """deployment key → (seconds since the epoch it reached the target, node)."""
        self._grew = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="target-calls", daemon=True)

    @classmethod
    def noop(cls, data_dirs: dict[str, Path], environment: str) -> TargetCalls:
        """The noop target's call log: one deployment key a line."""
        return cls(data_dirs, [f"noop/{environment}.calls"])

    @classmethod
    def local(cls, data_dirs: dict[str, Path], environment: str, apps: list[str]
              ) -> TargetCalls:
        """The local target's start markers, written to an app's log as it starts it."""
        def parse(line: str) -> str | None:
            found = LOCAL_START.match(line)
            return found.group(1) if found else None
        return cls(data_dirs, [f"local/{environment}/{app}.log" for app in apps], parse)

    def __enter__(self) -> TargetCalls:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._look()  # whatever came after the last round

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            self._look()

    def _look(self) -> None:
        for place in self._files:
            try:
                with open(place[1], "rb") as calls:
                    calls.seek(self._read[place])
                    data = calls.read()
                    written = os.fstat(calls.fileno()).st_mtime_ns / 1e9
            except FileNotFoundError:
                continue
            complete = data[:data.rfind(b"\n") + 1]
            self._read[place] += len(complete)
            for line in complete.decode(errors="replace").splitlines():
                key = self._parse(line)
                if key is not None:
                    known = self.first.get(key)
                    if known is None or written < known[0]:
                        with self._grew:
                            self.first[key] = (written, place[0])
                            self._grew.notify_all()

    def seen(self) -> int:
        return len(self.first)

    def wait_beyond(self, seen: int, timeout: float = 120) -> None:
        """Until a key more than `seen` reached the target: a driver that waits here asks the
        server nothing meanwhile, so its own polling cannot slow down what it measures."""
        with self._grew:
            if not self._grew.wait_for(lambda: len(self.first) > seen, timeout):
                raise RuntimeError("no deployment reached the target")


# -- the servers ---------------------------------------------------------------------------------

@dataclass
class Cluster:
    """`servers` real `infrastream serve` processes on `url`, users and manifests in place."""

    url: str
    directory: Path
    bases: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def data_dirs(self) -> dict[str, Path]:
        return {node: self.directory / node for node in self.nodes}

    def clients(self, base: str) -> dict[str, httpx.Client]:
        return {name: httpx.Client(base_url=base, timeout=60, headers={
            "Authorization": f"Bearer {token}"}) for name, token in self.tokens.items()}

    def bind(self, environment: str, node: str) -> None:
        """Bind a `local` environment to `node` before any server claims it (`node_bindings`)."""
        db = create_engine(self.url)
        try:
            with db.begin() as conn:
                conn.execute(text("INSERT INTO node_bindings (environment, node, bound) "
                                  "VALUES (:env, :node, :now)"),
                             {"env": environment, "node": node, "now": time.time()})
        finally:
            db.dispose()

    def release_ids(self, app_set: str) -> dict[str, int]:
        """Release name → id of one application set (the id is part of every deployment
        key; names repeat across sets: `shop/v1`, `edge/v1`), read from the database."""
        db = create_engine(self.url)
        try:
            with db.connect() as conn:
                return {name: int(id_) for id_, name in conn.execute(
                    text("SELECT id, name FROM releases WHERE app_set = :set"),
                    {"set": app_set})}
        finally:
            db.dispose()


@contextmanager
def cluster(url: str, servers: int, sources: list[tuple[str, str]],
            bind: dict[str, int] | None = None) -> Iterator[Cluster]:
    """`bind`: local environments to bind, each to the node of that index, before any work."""
    key = _key()
    with tempfile.TemporaryDirectory(prefix="infra-http-") as tmp:
        made = Cluster(url, Path(tmp))
        try:
            for number in range(servers):
                node, port = f"n{number}", free_port()
                made.processes.append(_start(url, made.directory, node, port, key))
                made.nodes.append(node)
                made.bases.append(f"http://127.0.0.1:{port}/api/v1")
            for environment, index in (bind or {}).items():
                made.bind(environment, made.nodes[index])
            admin_token = (made.directory / "n0" / "admin-token").read_text().strip()
            with httpx.Client(base_url=made.bases[0], timeout=30, headers={
                    "Authorization": f"Bearer {admin_token}"}) as admin:
                made.tokens = {name: admin.post("/users", json={"name": name, "roles": [role]})
                               .raise_for_status().json()["token"] for name, role in ROLES}
            httpx.post(made.bases[0] + "/manifests",
                       headers={"Authorization": f"Bearer {made.tokens['pat']}"},
                       json={"sources": [{"source": s, "text": t} for s, t in sources]},
                       timeout=30).raise_for_status()
            yield made
        finally:
            for process in made.processes:
                stop(process)


# -- the lifecycles ------------------------------------------------------------------------------

def _wait(client: httpx.Client, path: str, done: Any, timeout: float = 120) -> None:
    """Until the release's status satisfies `done`, as a client that follows a release does:
    each read sends the tag of the last answer and `Prefer: wait`, so the server holds it
    until the release moves (`api.watching`) instead of being asked every few ms."""
    deadline = time.monotonic() + timeout
    tag: str | None = None
    while time.monotonic() < deadline:
        headers = {} if tag is None else {"If-None-Match": tag, "Prefer": f"wait={HELD}"}
        response = client.get(path, headers=headers).raise_for_status()
        tag = response.headers.get("etag")
        if response.status_code == 200 and done(response.json()):
            return
    raise RuntimeError(f"{path} did not get there")


def lifecycle(clients: dict[str, httpx.Client], tag: str,
              quiet: TargetCalls | None = None) -> tuple[str, float]:
    """One release from versions to completed; its name and when the last approval returned.
    With `quiet` (one driver alone) it waits for the target, not the API, after approving."""
    for app in ("api", "web", "worker"):
        clients["ci"].post(f"/applications/{app}/versions", json={
            "image": f"registry.example.com/shop/{app}:{tag}"}).raise_for_status()
    for _ in range(20):
        created = clients["rita"].post("/releases", json={"applicationSet": "shop"})
        if created.status_code != 409:  # another driver took the same name: cut again
            break
    name = created.raise_for_status().json()["name"]
    path = f"/releases/shop/{name}"
    for stage in (0, 1):
        _wait(clients["rita"], path, lambda s, i=stage: s["stages"][i]["state"] == "succeeded")
        clients["rita"].post(f"{path}/promotions").raise_for_status()
    return name, _approve(clients, path, quiet)


def _approve(clients: dict[str, httpx.Client], path: str, quiet: TargetCalls | None) -> float:
    """The three approvals, then until completed; when the last approval returned."""
    seen = quiet.seen() if quiet is not None else 0
    for approver in APPROVERS:
        clients[approver].post(f"{path}/approvals", json={}).raise_for_status()
    approved = time.time()
    if quiet is not None:
        quiet.wait_beyond(seen)
    _wait(clients["rita"], path, lambda s: s["state"] == "completed")
    return approved


@dataclass
class HttpRun:
    lifecycles: int
    seconds: float
    reactions_ms: list[float]
    elsewhere: int
    """Production deployments that ran on another server than the one that was approved on."""
    server_cpu: float = 0.0
    """CPU seconds the server processes used meanwhile (all of them, user + system)."""
    driver_cpu: float = 0.0
    """CPU seconds this process (the drivers and the target watcher) used meanwhile."""

    @property
    def rate(self) -> float:
        return self.lifecycles / self.seconds

    def cpu_ms(self) -> tuple[float, float]:
        """(server, driver) CPU ms per lifecycle."""
        count = max(self.lifecycles, 1)
        return self.server_cpu * 1000 / count, self.driver_cpu * 1000 / count

    def reaction(self) -> tuple[float, float]:
        values = sorted(self.reactions_ms)
        return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.9))]


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes used so far (Linux /proc; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def drive(made: Cluster, *, threads: int = THREADS, budget: float = BUDGET,
          most: int | None = None, prefix: str = "http") -> HttpRun:
    """Lifecycles from `threads` drivers for `budget` seconds (or `most` in all), in turn on
    every server of the cluster; reaction as the production target saw it."""
    approved: dict[str, tuple[float, str]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    tags = itertools.count(1)
    servers = len(made.bases)
    clients = [made.clients(base) for base in made.bases]
    pids = [process.pid for process in made.processes]
    with TargetCalls.noop(made.data_dirs(), "production") as calls:
        stop_at = time.monotonic() + budget
        started = time.monotonic()
        cpu_before, own_before = process_cpu(pids), time.process_time()

        def driver(thread: int) -> None:
            turn = thread
            try:
                while time.monotonic() < stop_at:
                    with lock:
                        number = next(tags)
                        if most is not None and number > most:
                            return
                    server = turn % servers
                    turn += 1
                    name, at = lifecycle(clients[server], f"{prefix}.{number}",
                                         calls if threads == 1 else None)
                    with lock:
                        approved[name] = (at, made.nodes[server])
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=driver, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        seconds = time.monotonic() - started
        server_cpu = process_cpu(pids) - cpu_before
        driver_cpu = time.process_time() - own_before
    for per_server in clients:
        for client in per_server.values():
            client.close()
    if errors:
        raise errors[0]
    ids = made.release_ids("shop")
    reactions, elsewhere = [], 0
    for name, (at, node) in approved.items():
        reached, ran_on = calls.first[f"{ids[name]}/production/1"]
        reactions.append((reached - at) * 1000)
        elsewhere += ran_on != node
    return HttpRun(len(approved), seconds, reactions, elsewhere, server_cpu, driver_cpu)


def describe(run: HttpRun, floor: HttpRun | None = None) -> str:
    median, p90 = run.reaction()
    said = (f"{run.lifecycles:4d} lifecycles in {run.seconds:5.1f} s: {run.rate:6.2f}/s; "
            f"reaction (approve returned → production target called): median {median:6.1f} ms, "
            f"p90 {p90:6.1f} ms; CPU per lifecycle: servers {run.cpu_ms()[0]:5.1f} ms, "
            f"drivers {run.cpu_ms()[1]:5.1f} ms")
    if floor is not None:
        said += (f"; ratio to 1 server: rate {run.rate / floor.rate:4.2f}, reaction median "
                 f"{median / floor.reaction()[0]:4.2f}")
    if run.elsewhere:
        said += f"; {run.elsewhere} started on another server than the approving one"
    return said


# -- an approval on one server, a deployment on another -------------------------------------------

HANDOFF = """\
apiVersion: lowops.manifests.v1
kind: Environment
metadata:
  name: edge
spec:
  tier: staging
  target:
    type: local
---
apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata:
  name: edge-track
spec:
  releaseStages:
    - environments: [edge]
      approvals:
        - role: qa
        - role: product
        - role: security
---
apiVersion: lowops.manifests.v1
kind: ApplicationSet
metadata:
  name: edge
  parent:
    kind: ReleaseTrack
    name: edge-track
spec:
  description: One process on a local environment, which runs on the node it is bound to.
---
apiVersion: lowops.manifests.v1
kind: Application
metadata:
  name: probe
  parent:
    kind: ApplicationSet
    name: edge
spec:
  image: registry.example.com/edge/probe
  run:
    command: ["sleep", "60"]
"""
"""A `local` environment `edge` (one `sleep` process; it exits by itself after the run) with a
one-stage track that needs the three approvals: `handoff` approves on one server while `edge`
is bound to another, so only LISTEN/NOTIFY can tell that server to start it."""


def handoff(clients: dict[str, httpx.Client], tag: str, starts: TargetCalls
            ) -> tuple[str, float]:
    """Cut an `edge` release and approve it: its name and when the last approval returned."""
    clients["ci"].post("/applications/probe/versions", json={
        "image": f"registry.example.com/edge/probe:{tag}"}).raise_for_status()
    name = clients["rita"].post("/releases", json={"applicationSet": "edge"}
                                ).raise_for_status().json()["name"]
    return name, _approve(clients, f"/releases/edge/{name}", starts)


def cross_server(made: Cluster, samples: int) -> HttpRun:
    """`samples` edge releases one after the other, approved on the first server, `edge`
    bound to the last; reaction as the local target there saw it (its start marker)."""
    approving = made.nodes[0]
    approved: dict[str, float] = {}
    clients = made.clients(made.bases[0])
    started = time.monotonic()
    with TargetCalls.local(made.data_dirs(), "edge", ["probe"]) as starts:
        for number in range(samples):
            name, at = handoff(clients, f"1.{number}", starts)
            approved[name] = at
    seconds = time.monotonic() - started
    for client in clients.values():
        client.close()
    ids = made.release_ids("edge")
    reactions, elsewhere = [], 0
    for name, at in approved.items():
        reached, ran_on = starts.first[f"{ids[name]}/edge/1"]
        reactions.append((reached - at) * 1000)
        elsewhere += ran_on != approving
    return HttpRun(len(approved), seconds, reactions, elsewhere)


# -- GET release status, and its floor ---------------------------------------------------------

FLOOR_APP = """
import sys, fastapi, uvicorn
app = fastapi.FastAPI()
@app.get("/status")
def status() -> dict:
    return {"name": "v1", "state": "completed"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


@dataclass
class Load:
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms)


def load(url: str, token: str | None, *, clients: int = THREADS, seconds: float = 3.0) -> Load:
    """`clients` threads, each with its own connection, GET `url` as fast as answers come."""
    latencies: list[float] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ready = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client() -> None:
        mine = []
        with httpx.Client(headers=headers, timeout=30) as http:
            http.get(url).raise_for_status()  # the connection is open before the clock runs
            ready.wait()
            while time.monotonic() < stop_at[0]:
                began = time.perf_counter()
                http.get(url).raise_for_status()
                mine.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(clients)]
    for worker in workers:
        worker.start()
    stop_at[0] = time.monotonic() + seconds + 1e9  # set for real once all are connected
    ready.wait()
    started = time.monotonic()
    stop_at[0] = started + seconds
    for worker in workers:
        worker.join()
    return Load(len(latencies), time.monotonic() - started, latencies)


@contextmanager
def floor_server() -> Iterator[str]:
    """A bare FastAPI endpoint served by uvicorn in its own process: the floor of a GET."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", FLOOR_APP, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/status"
        wait_healthy(url, process, "the floor server")
        yield url
    finally:
        stop(process)


def status_against_floor(made: Cluster, seconds: float = 3.0) -> str:
    """GET release status with 8 clients against the first server, and the floor."""
    with httpx.Client(base_url=made.bases[0], headers={
            "Authorization": f"Bearer {made.tokens['rita']}"}) as rita:
        newest = rita.get("/releases", params={"applicationSet": "shop"}).raise_for_status()
    body = newest.json()
    items = body["items"] if isinstance(body, dict) else body
    name = items[0]["name"]
    real = load(f"{made.bases[0]}/releases/shop/{name}", made.tokens["rita"], seconds=seconds)
    with floor_server() as url:
        floor = load(url, None, seconds=seconds)
    ratio = real.rate / floor.rate
    return (f"GET /releases/shop/{name}, {THREADS} clients: {real.rate:6.0f} req/s, median "
            f"{real.median_ms:5.1f} ms; floor (bare FastAPI endpoint on uvicorn): "
            f"{floor.rate:6.0f} req/s, median {floor.median_ms:5.1f} ms → ratio {ratio:4.2f} "
            f"(goal ≥ 0.5: {'ok' if ratio >= 0.5 else 'MISSED'})")


def main_servers(most: int, sources: list[tuple[str, str]],
                 fresh_database: Callable[[], tuple[str, Callable[[], None]] | None]) -> int:
    print(f"== scale-out on PostgreSQL: 1..{most} servers, {THREADS} driver threads over HTTP "
          f"(API tokens), {BUDGET:.0f} s each, lifecycles on each server in turn; then "
          f"{HANDOFF_SAMPLES} `edge` releases one at a time approved on n0 with `edge` (local "
          f"target) bound to the last server; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    floor: HttpRun | None = None
    floor_handoff: HttpRun | None = None
    for servers in range(1, most + 1):
        made = fresh_database()
        if made is None:
            return 1
        url, drop = made
        try:
            with cluster(url, servers, [*sources, ("edge.yaml", HANDOFF)],
                         bind={"edge": servers - 1}) as running:
                drive(running, threads=THREADS, budget=1.0, most=THREADS, prefix="warm")
                run = drive(running)
                moved = cross_server(running, HANDOFF_SAMPLES)
        finally:
            drop()
        print(f"  {servers} server(s): {describe(run, floor)}", flush=True)
        median, p90 = moved.reaction()
        said = (f"    approved on n0, started on n{servers - 1} ({moved.elsewhere} of "
                f"{moved.lifecycles} on another server): reaction median {median:6.1f} ms, "
                f"p90 {p90:6.1f} ms")
        if floor_handoff is not None:
            said += f"; ratio to 1 server {median / floor_handoff.reaction()[0]:4.2f}"
        print(said + f"; ≤ 50 ms: {'ok' if median <= 50 else 'MISSED'}", flush=True)
        floor = floor or run
        floor_handoff = floor_handoff or moved
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--servers", type=int, default=3, metavar="N",
                        help="the most servers to measure (runs bench/engine.py --servers N)")
    options = parser.parse_args()
    engine = Path(__file__).with_name("engine.py")
    sys.exit(subprocess.call([sys.executable, str(engine), "--servers", str(options.servers)]))
