"""Benchmark: full release lifecycles through the service layer and the in-process engine.

Setup. The example product (`src/infrastream/examples/shop/manifests`) is applied with its
environments switched to the `noop` target and a track without checks, so that a lifecycle
is the orchestration itself and not a wait for processes or a soak:

    releaseStages: development → staging → production (approvals: qa, product, security)

The engine runs in-process, `Engine(services, poll=5.0).start()`. The 5 s poll is on purpose:
the engine must be woken by `services.notify()` (every use case that gives it work calls it,
and so does every job that finishes), so no figure below can be the poll interval.

One lifecycle, driven through the service functions as a release manager and approvers
would: record a version of api/web/worker (a new tag each time) → cut a release (the engine
deploys it to development) → when development has succeeded, promote → when staging has
succeeded, promote → approve as QA, Product and Security → until the release is
`completed`. The driver waits for each state on an event set by a `services.listeners`
callback (called by `notify()`, and by the engine after a pass that moved releases; with a
2 ms timeout as a fallback) and reads the stage states with one small
query on its own autocommit connection (a second SQLAlchemy engine without the project's
BEGIN hook), so observing costs the engine next to nothing: no `release_status` (a handful
of queries) and no transaction that could queue for SQLite's lock.

It measures, on SQLite (a WAL file in a temporary data directory) and on PostgreSQL (a
fresh database on postgresql+psycopg://postgres@127.0.0.1:5432/, dropped afterwards;
skipped with a message when the server does not answer):

1. lifecycles/s: N lifecycles one after the other (after a warm-up; 200 on SQLite, 100 on
   PostgreSQL), and K × M with K = 4 driver threads at once (they share the environments,
   which deploy one release at a time, so parallel lifecycles queue behind each other
   there). A wall-clock budget per run (30 s sequential and 15 s parallel on SQLite, 20 s and
   10 s on PostgreSQL) stops starting new lifecycles on a slow machine, so that the whole
   run stays under two minutes; the output then says "N of M lifecycles (time budget)";
2. reaction time: from the return of the last approval call to the `started_at` of the
   production deployment (deployments table, same wall clock): median, p95 and max;
3. peak resident memory of the process (`ru_maxrss`), at the end of the run;
4. a floor measured in the same run and the same database: as many one-row committed
   transactions through `services.transaction()` (same engine, pragmas, BEGIN IMMEDIATE)
   as a lifecycle writes audit entries (each audited action is one transaction), i.e. the
   bare cost of the durable writes a lifecycle needs (timed over 10 lifecycles' worth, into
   a scratch table dropped afterwards). It prints lifecycle time / floor.

Also printed, as diagnostics: the CPU time of the process per lifecycle, and how it splits
between the driver thread (the service calls, and observing), the engine's passes and the
jobs (each measured with `time.thread_time` in its thread); audit entries,
commits, transactions begun (those not committed are read-only), SQL statements (BEGINs
included) and engine passes per lifecycle (counted with SQLAlchemy engine events and
`Engine.passes`); on SQLite the time spent inside `BEGIN IMMEDIATE` (writes: waiting for
the write lock) and inside deferred `BEGIN` (reads: should be nothing; on a busy machine it
is where a thread waits to get the GIL and a CPU back); what one `release_status` call costs
(what a portal or CLI pays to show a release); and the load average, since other processes
on the machine make every figure slower and noisier.

Goals: ≥ 50 lifecycles/s on SQLite, median reaction < 50 ms, < 200 MB resident.

Over HTTP (`bench/scale_out.py` holds the driver): the same lifecycles against a real
`infrastream serve` process, every call with its user's API token, from 8 driver threads, on
SQLite and on PostgreSQL (a fresh database); reaction ends when the production deployment
reached the noop target (its call log, see `scale_out.TargetCalls`), counted from the moment
the last `approve` call returned; then a few lifecycles from one driver, whose reaction has
no queue for production in it (ratio to the in-process sequential reaction). Rates are
printed with the ratio to the in-process parallel rate of the same run. Then GET release
status from 8 clients against that server, against the floor: a bare FastAPI endpoint served
by uvicorn in the same run (ratio; goal ≥ 0.5). Goal ≥ 25 lifecycles/s per server over HTTP.
`--http-only` runs only this part; `--http-seconds` sets how long each over-HTTP run drives
lifecycles.

`--servers N` instead: lifecycles/s over HTTP with 1, 2 … N server processes on one
PostgreSQL database, and the cross-server reaction: an approval recorded on the first server,
the deployment of a `local` environment bound to the last one started there (only
LISTEN/NOTIFY tells that server), as that server's local target saw it; ratios to 1 server.

Run: `.venv/bin/python bench/engine.py` (about three minutes; `./dev.sh bench` runs it with
the others). `--profile` runs the sequential SQLite lifecycles under cProfile instead (one
profiler per thread: driver, engine loop, deploy jobs, merged) and prints the hotspots.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from scale_out import THREADS, cluster, describe, drive, main_servers, status_against_floor
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy import Engine as SqlEngine

import infrastream
from infrastream.domain.errors import Conflict
from infrastream.domain.roles import Principal
from infrastream.service import logs, manifests, promotions, releases, versions
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.records.releases import ReleaseRef, parse_ref
from infrastream.service.views.release_status import release_status
from infrastream.store.clock import utc
from infrastream.store.tables import audit_log

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
EXAMPLE = Path(infrastream.__file__).parent / "examples" / "shop" / "manifests"
APPS = ("api", "web", "worker")
ENGINE_POLL = 5.0
TICK = 0.002
WARMUP = 3
FLOOR_LIFECYCLES = 10
PROFILE_LIFECYCLES = 30


@dataclass(frozen=True)
class Plan:
    """How many lifecycles to run, and the wall-clock budget that may cut a run short."""

    sequential: int
    threads: int
    per_thread: int
    budget: float
    """Seconds for the sequential run; the parallel run gets half of it."""


SQLITE = Plan(sequential=200, threads=4, per_thread=25, budget=30.0)
POSTGRES = Plan(sequential=100, threads=4, per_thread=15, budget=20.0)
GOAL_RATE = 50.0
GOAL_REACTION_MS = 50.0
GOAL_RSS_MB = 200.0

TRACK = """\
apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata:
  name: shop-track
spec:
  releaseStages:
    - environments: [development]
    - environments: [staging]
    - environments: [production]
      approvals:
        - role: qa
        - role: product
        - role: security
"""


def person(name: str, *roles: str) -> Principal:
    return Principal(name, frozenset(roles))


PLATFORM = person("pat", "platform")
CI = person("ci-bot", "developer")
RELEASE_MANAGER = person("rita", "release-manager")
APPROVERS = (person("quinn", "qa"), person("paula", "product"), person("sam", "security"))


def sources() -> list[tuple[str, str]]:
    """The example's manifests: environments on `noop`, the track above, set and apps as is."""
    envs = (EXAMPLE / "environments.yaml").read_text()
    assert "type: local" in envs
    example_track = (EXAMPLE / "track.yaml").read_text()
    app_set = next(doc for doc in example_track.split("\n---\n") if "kind: ApplicationSet" in doc)
    found = [("environments.yaml", envs.replace("type: local", "type: noop")),
             ("track.yaml", TRACK + "---\n" + app_set)]
    found += [(f"apps/{p.name}", p.read_text()) for p in sorted((EXAMPLE / "apps").glob("*.yaml"))]
    return found


# -- one database under test ---------------------------------------------------------------------

@dataclass
class Sample:
    seconds: float
    reaction_ms: float


@dataclass
class Run:
    planned: int
    seconds: float
    samples: list[Sample]
    conflicts: int

    @property
    def lifecycles(self) -> int:
        return len(self.samples)

    @property
    def rate(self) -> float:
        return self.lifecycles / self.seconds

    def reaction(self) -> tuple[float, float, float]:
        values = sorted(s.reaction_ms for s in self.samples)
        return statistics.median(values), percentile(values, 95), values[-1]


class Counters:
    """Transactions begun and committed, statements, and time spent in BEGIN statements.

    On SQLite a write transaction starts with BEGIN IMMEDIATE (it waits there for the write
    lock), a read with a deferred BEGIN (which should cost microseconds).
    """

    def __init__(self, db: SqlEngine) -> None:
        self.begins = self.commits = self.statements = 0
        self.immediate_wait = self.deferred_wait = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        event.listen(db, "begin", self._begin)
        event.listen(db, "commit", self._commit)
        event.listen(db, "before_cursor_execute", self._before)
        event.listen(db, "after_cursor_execute", self._after)

    def snapshot(self) -> tuple[int, int, int, float, float]:
        with self._lock:
            return (self.begins, self.commits, self.statements, self.immediate_wait,
                    self.deferred_wait)

    def _begin(self, *_: Any) -> None:
        with self._lock:
            self.begins += 1

    def _commit(self, *_: Any) -> None:
        with self._lock:
            self.commits += 1

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        with self._lock:
            self.statements += 1
        self._local.started = time.perf_counter() if statement.startswith("BEGIN") else None

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        started = getattr(self._local, "started", None)
        if started is not None:
            waited = time.perf_counter() - started
            with self._lock:
                if "IMMEDIATE" in statement:
                    self.immediate_wait += waited
                else:
                    self.deferred_wait += waited
            self._local.started = None


class TimedEngine(Engine):
    """The engine, with the CPU time of its passes and of its jobs added up per thread."""

    def __init__(self, services: Services, **options: Any) -> None:
        super().__init__(services, **options)
        self.pass_cpu = self.job_cpu = 0.0
        self._cpu_lock = threading.Lock()

    def run_once(self) -> float | None:
        started = time.thread_time()
        try:
            return super().run_once()
        finally:
            with self._cpu_lock:
                self.pass_cpu += time.thread_time() - started

    def _submit(self, key: str, fn: Any, *args: Any, environment: str | None = None) -> None:
        def timed(*call_args: Any) -> None:
            started = time.thread_time()
            try:
                fn(*call_args)
            finally:
                with self._cpu_lock:
                    self.job_cpu += time.thread_time() - started

        super()._submit(key, timed, *args, environment=environment)


class Signal:
    """A `services.listeners` callback that wakes every waiting driver thread."""

    def __init__(self) -> None:
        self._events: list[threading.Event] = []
        self._lock = threading.Lock()

    def event(self) -> threading.Event:
        wake = threading.Event()
        with self._lock:
            self._events.append(wake)
        return wake

    def __call__(self, _release: str | None = None) -> None:
        for wake in self._events:
            wake.set()


class Observer:
    """The driver's eyes: one raw autocommit DBAPI connection and three small queries.

    Raw, so that looking every couple of milliseconds costs microseconds and does not take
    the GIL away from the engine for long; autocommit, so that it never holds a snapshot.
    """

    STATES = ("SELECT r.state, s.state FROM releases r JOIN stage_runs s "
              "ON s.release_id = r.id WHERE r.id = ? ORDER BY s.stage_index")
    RELEASE_ID = "SELECT id FROM releases WHERE app_set = ? AND name = ?"
    STARTED = "SELECT started_at FROM deployments WHERE release_id = ? AND stage_index = ?"

    def __init__(self, engine: SqlEngine) -> None:
        self._pooled = engine.raw_connection()
        conn: Any = self._pooled.driver_connection
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            conn.isolation_level = None
        else:
            conn.autocommit = True
        self._conn = conn
        self._mark = "?" if sqlite else "%s"

    def _rows(self, sql: str, *params: Any) -> list[Any]:
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql.replace("?", self._mark), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def states(self, release_id: int) -> tuple[str, list[str]]:
        rows = self._rows(self.STATES, release_id)
        return rows[0][0], [r[1] for r in rows]

    def release_id(self, app_set: str, name: str) -> int:
        return int(self._rows(self.RELEASE_ID, app_set, name)[0][0])

    def started_at(self, release_id: int, stage_index: int) -> datetime:
        value = self._rows(self.STARTED, release_id, stage_index)[0][0]
        if not isinstance(value, datetime):  # SQLite stores text
            value = datetime.fromisoformat(value)
        return utc(value) or value

    def close(self) -> None:
        self._pooled.close()


class Bench:
    def __init__(self, url: str, data_dir: Path,
                 engine_class: type[Engine] = TimedEngine) -> None:
        self.services: Services = open_services(data_dir, url)
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
        if url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.observer: SqlEngine = create_engine(url, **options)
        self.signal = Signal()
        self.services.listeners.append(self.signal)
        self.counters = Counters(self.services.db)
        manifests.apply(self.services, PLATFORM, sources(), str(EXAMPLE.parent))
        self.engine = engine_class(self.services, poll=ENGINE_POLL)
        self.engine.start()

    def close(self) -> None:
        self.engine.stop()
        self.observer.dispose()
        self.services.db.dispose()

    # -- the driver --------------------------------------------------------------------------

    def wait(self, eyes: Observer, release_id: int, wake: threading.Event,
             done: Callable[[str, list[str]], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            wake.clear()
            state, stages = eyes.states(release_id)
            if done(state, stages):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"release {release_id} stuck: {state}, stages {stages}")
            wake.wait(TICK)

    def cut(self) -> tuple[dict[str, Any], int]:
        conflicts = 0
        while True:
            try:
                return releases.create_release(self.services, RELEASE_MANAGER, "shop"), conflicts
            except Conflict:  # PostgreSQL: two drivers picked the same next name; retry
                conflicts += 1
                if conflicts > 20:
                    raise

    def lifecycle(self, tag: str, eyes: Observer, wake: threading.Event) -> tuple[Sample, int]:
        start = time.perf_counter()
        for app in APPS:
            versions.record_version(self.services, CI, app,
                                    f"registry.example.com/shop/{app}:{tag}", "0a1b2c3d")
        created, conflicts = self.cut()
        ref = parse_ref(created["release"])
        release_id = eyes.release_id(ref.app_set, ref.name)
        self.wait(eyes, release_id, wake, lambda _r, stages: stages[0] == "succeeded")
        promotions.promote(self.services, RELEASE_MANAGER, ref)
        self.wait(eyes, release_id, wake, lambda _r, stages: stages[1] == "succeeded")
        promotions.promote(self.services, RELEASE_MANAGER, ref)
        for approver in APPROVERS:
            promotions.approve(self.services, approver, ref)
        approved = datetime.now(UTC)
        self.wait(eyes, release_id, wake, lambda state, _s: state == "completed")
        seconds = time.perf_counter() - start
        reaction = (eyes.started_at(release_id, 2) - approved).total_seconds() * 1000
        return Sample(seconds, reaction), conflicts

    def run(self, threads: int, per_thread: int, prefix: str, budget: float = 1e9) -> Run:
        """`threads` drivers × `per_thread` lifecycles; after `budget` s each stops (≥ 1 each)."""
        samples: list[Sample] = []
        conflicts = [0]
        errors: list[BaseException] = []
        lock = threading.Lock()
        start = [0.0]

        def driver(index: int, wake: threading.Event, ready: threading.Barrier | None) -> None:
            eyes = Observer(self.observer)
            try:
                if ready is not None:
                    ready.wait()
                for i in range(per_thread):
                    if i and time.perf_counter() - start[0] > budget:
                        return
                    sample, clashes = self.lifecycle(f"{prefix}{index}.{i}", eyes, wake)
                    with lock:
                        samples.append(sample)
                        conflicts[0] += clashes
            except BaseException as exc:
                errors.append(exc)
                if ready is not None:
                    ready.abort()
            finally:
                eyes.close()

        if threads == 1:  # in this thread, so that a profiler sees the driver
            start[0] = time.perf_counter()
            driver(0, self.signal.event(), None)
        else:
            ready = threading.Barrier(threads + 1)
            workers = [threading.Thread(target=driver, args=(k, self.signal.event(), ready))
                       for k in range(threads)]
            for worker in workers:
                worker.start()
            start[0] = time.perf_counter()  # the drivers wait at the barrier until we join it
            ready.wait()
            for worker in workers:
                worker.join()
        seconds = time.perf_counter() - start[0]
        if errors:
            raise errors[0]
        return Run(threads * per_thread, seconds, samples, conflicts[0])

    # -- diagnostics and the floor -----------------------------------------------------------

    def audit_entries(self) -> int:
        with self.observer.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())

    def cpu_split(self) -> tuple[float, float, float]:
        """CPU seconds so far: this (driver) thread, the engine's passes, its jobs."""
        engine = self.engine
        if not isinstance(engine, TimedEngine):
            return time.thread_time(), 0.0, 0.0
        return time.thread_time(), engine.pass_cpu, engine.job_cpu

    def status_ms(self, calls: int = 30) -> float:
        with self.observer.connect() as conn:
            name = conn.execute(text("SELECT name FROM releases ORDER BY id DESC LIMIT 1")
                                ).scalar_one()
        ref = ReleaseRef("shop", name)
        start = time.perf_counter()
        for _ in range(calls):
            release_status(self.services, ref)
        return (time.perf_counter() - start) / calls * 1000

    def floor(self, transactions: int) -> float:
        """Seconds for `transactions` one-row committed transactions through the same engine."""
        scratch = Table(f"bench_floor_{uuid.uuid4().hex[:8]}", MetaData(),
                        Column("id", Integer, primary_key=True, autoincrement=True),
                        Column("payload", Text, nullable=False))
        scratch.create(self.services.db)
        payload = "x" * 300  # about the size of an audit row
        try:
            start = time.perf_counter()
            for _ in range(transactions):
                with self.services.transaction() as conn:
                    conn.execute(insert(scratch).values(payload=payload))
            return time.perf_counter() - start
        finally:
            scratch.drop(self.services.db)


def percentile(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def count(run: Run) -> str:
    if run.lifecycles == run.planned:
        return f"{run.lifecycles:4d} lifecycles"
    return f"{run.lifecycles:4d} of {run.planned} lifecycles (time budget)"


# -- the measurement -----------------------------------------------------------------------------

@dataclass
class Result:
    label: str
    sequential: Run
    parallel: Run


def measure(label: str, url: str, data_dir: Path, plan: Plan) -> Result:
    print(f"== {label}")
    bench = Bench(url, data_dir)
    try:
        bench.run(1, WARMUP, "warm")
        audit_before, passes_before = bench.audit_entries(), bench.engine.passes
        before = bench.counters.snapshot()
        cpu_before = time.process_time()
        split_before = bench.cpu_split()
        seq = bench.run(1, plan.sequential, "seq", plan.budget)
        n = seq.lifecycles
        cpu_per = (time.process_time() - cpu_before) / n
        driver_per, passes_cpu_per, jobs_cpu_per = (
            (a - b) / n for a, b in zip(bench.cpu_split(), split_before, strict=True))
        after = bench.counters.snapshot()
        begins_per, commits_per, statements_per, immediate_per, deferred_per = (
            (a - b) / n for a, b in zip(after, before, strict=True))
        audit_per = (bench.audit_entries() - audit_before) / n
        passes_per = (bench.engine.passes - passes_before) / n
        par = bench.run(plan.threads, plan.per_thread, "par", plan.budget / 2)
        floor_tx = round(audit_per)
        floor_per = bench.floor(floor_tx * FLOOR_LIFECYCLES) / FLOOR_LIFECYCLES
        status = bench.status_ms()
    finally:
        bench.close()
    each = seq.seconds / n
    print(f"  sequential {count(seq)} in {seq.seconds:6.2f} s: {seq.rate:6.1f} lifecycles/s "
          f"({each * 1000:.1f} ms each, {cpu_per * 1000:.0f} ms of it CPU)")
    print(f"    CPU per lifecycle: driver thread (service calls, observing) "
          f"{driver_per * 1000:.0f} ms, engine passes {passes_cpu_per * 1000:.0f} ms, "
          f"jobs {jobs_cpu_per * 1000:.0f} ms")
    median, p95, worst = seq.reaction()
    print(f"    reaction, last approval → production started_at: median {median:.1f} ms, "
          f"p95 {p95:.1f} ms, max {worst:.1f} ms")
    print(f"  parallel   {count(par)} in {par.seconds:6.2f} s: {par.rate:6.1f} lifecycles/s "
          f"({plan.threads} driver threads"
          + (f", {par.conflicts} release-name conflicts retried" if par.conflicts else "") + ")")
    median_p, p95_p, worst_p = par.reaction()
    print(f"    reaction: median {median_p:.1f} ms, p95 {p95_p:.1f} ms, max {worst_p:.1f} ms")
    print(f"  per lifecycle: {audit_per:.1f} audit entries, {commits_per:.1f} commits, "
          f"{begins_per:.1f} transactions begun ({begins_per - commits_per:.1f} read-only), "
          f"{statements_per:.0f} SQL statements, {passes_per:.1f} engine passes")
    if url.startswith("sqlite"):
        print(f"  per lifecycle, time inside BEGIN IMMEDIATE (writes) "
              f"{immediate_per * 1000:.0f} ms, inside deferred BEGIN (reads) "
              f"{deferred_per * 1000:.0f} ms")
    print(f"  floor: {floor_tx} one-row committed transactions (one per audit entry) = "
          f"{floor_per * 1000:.2f} ms → ratio lifecycle/floor {each / floor_per:.1f}")
    print(f"  release_status(): {status:.1f} ms per call")
    return Result(label, seq, par)


def postgres_url() -> tuple[str, SqlEngine] | None:
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        reason = str(exc).splitlines()[0] if str(exc) else ""
        print(f"== PostgreSQL: skipped, {PG_SERVER}/ does not answer "
              f"({type(exc).__name__}: {reason})")
        return None
    name = f"infra_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return f"{PG_SERVER}/{name}", admin


def drop_postgres(url: str, admin: SqlEngine) -> None:
    name = url.rsplit("/", 1)[1]
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


GOAL_HTTP_RATE = 25.0
HTTP_SECONDS = 6.0
REACTION_SAMPLES = 8


def measure_http(label: str, url: str, seconds: float, in_process: Result | None) -> None:
    with cluster(url, 1, sources()) as made:
        drive(made, budget=1.0, most=THREADS, prefix="warm")
        run = drive(made, budget=seconds)
        said = describe(run)
        if in_process is not None:
            said += f"; ratio to in-process parallel {run.rate / in_process.parallel.rate:4.2f}"
        print(f"  {label}, 1 server, {THREADS} drivers: {said}; ≥ {GOAL_HTTP_RATE:g}/s: "
              f"{verdict(run.rate >= GOAL_HTTP_RATE)}", flush=True)
        alone = drive(made, threads=1, budget=seconds, most=REACTION_SAMPLES, prefix="one")
        median, p90 = alone.reaction()
        said = (f"reaction with 1 driver (no queue for production): median {median:6.1f} ms, "
                f"p90 {p90:6.1f} ms")
        if in_process is not None:
            said += (f"; ratio to in-process sequential "
                     f"{median / in_process.sequential.reaction()[0]:4.2f}")
        print(f"  {label}, 1 server: {said}; median ≤ {GOAL_REACTION_MS:g} ms: "
              f"{verdict(median <= GOAL_REACTION_MS)}", flush=True)
        print(f"  {label}: {status_against_floor(made)}", flush=True)


def main_http(seconds: float, results: list[Result]) -> None:
    print(f"== over HTTP: real `infrastream serve` processes with API tokens, {THREADS} driver "
          f"threads, {seconds:g} s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    by_kind = {r.label.split()[0]: r for r in results}
    with tempfile.TemporaryDirectory(prefix="infrastream-bench-http-") as tmp:
        measure_http("SQLite", f"sqlite:///{Path(tmp) / 'infrastream.db'}", seconds,
                     by_kind.get("SQLite"))
    pg = postgres_url()
    if pg is not None:
        url, admin = pg
        try:
            measure_http("PostgreSQL", url, seconds, by_kind.get("PostgreSQL"))
        finally:
            drop_postgres(url, admin)


def main_bench(http_seconds: float) -> int:
    load = os.getloadavg()[0]
    print(f"engine benchmark: noop target, stages development → staging → production "
          f"(approvals qa, product, security); Engine(poll={ENGINE_POLL:g} s) woken by "
          f"services.notify(); drivers wait on notify or {TICK * 1000:g} ms; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="infrastream-bench-") as tmp:
        results.append(measure("SQLite (WAL file in a temporary data dir)",
                               f"sqlite:///{Path(tmp) / 'sqlite' / 'infrastream.db'}",
                               Path(tmp) / "sqlite", SQLITE))
        pg = postgres_url()
        if pg is not None:
            url, admin = pg
            try:
                results.append(measure(f"PostgreSQL ({PG_SERVER}/, fresh database)", url,
                                       Path(tmp) / "pg", POSTGRES))
            finally:
                drop_postgres(url, admin)
    rss = rss_mb()
    print(f"peak resident memory: {rss:.0f} MB")
    sqlite = results[0]
    print("goals:")
    print(f"  ≥ {GOAL_RATE:g} lifecycles/s on SQLite: {sqlite.sequential.rate:.1f} sequential, "
          f"{sqlite.parallel.rate:.1f} parallel: "
          f"{verdict(max(sqlite.sequential.rate, sqlite.parallel.rate) >= GOAL_RATE)}")
    for result in results:
        median = result.sequential.reaction()[0]
        print(f"  median reaction < {GOAL_REACTION_MS:g} ms ({result.label.split()[0]}): "
              f"{median:.1f} ms: {verdict(median < GOAL_REACTION_MS)}")
    print(f"  < {GOAL_RSS_MB:g} MB resident: {rss:.0f} MB: {verdict(rss < GOAL_RSS_MB)}")
    main_http(http_seconds, results)
    return 0


# -- profiling -----------------------------------------------------------------------------------

class ProfiledEngine(Engine):
    """The engine with a cProfile profiler in its loop thread and in every job it runs."""

    profiles: ClassVar[list[cProfile.Profile]] = []
    _profiles_lock: ClassVar[threading.Lock] = threading.Lock()

    def _keep(self, profile: cProfile.Profile) -> None:
        with self._profiles_lock:
            self.profiles.append(profile)

    def _loop(self) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            super()._loop()
        finally:
            profile.disable()
            self._keep(profile)

    def _submit(self, key: str, fn: Any, *args: Any, environment: str | None = None) -> None:
        def profiled(*call_args: Any) -> None:
            profile = cProfile.Profile()
            profile.enable()
            try:
                fn(*call_args)
            finally:
                profile.disable()
                self._keep(profile)

        super()._submit(key, profiled, *args, environment=environment)


CATEGORIES = (
    ("waiting on locks and events (no CPU)", ("_thread.lock",)),
    ("database driver calls (SQLite: incl. busy waits)", ("sqlite3.", "psycopg")),
    ("SQLAlchemy (building, compiling, results)", ("/sqlalchemy/",)),
    ("pydantic (model_validate/model_dump)", ("pydantic",)),
    ("infrastream's own code", ("/src/infrastream/",)),
)


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) summed by where the code lives."""
    totals = dict.fromkeys([name for name, _ in CATEGORIES] + ["everything else"], 0.0)
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{function}"
        name = next((name for name, marks in CATEGORIES if any(m in where for m in marks)),
                    "everything else")
        totals[name] += row[2]
    return list(totals.items())


def main_profile(top: int, lifecycles: int) -> int:
    with tempfile.TemporaryDirectory(prefix="infrastream-bench-") as tmp:
        bench = Bench(f"sqlite:///{Path(tmp) / 'infrastream.db'}", Path(tmp), ProfiledEngine)
        try:
            bench.run(1, WARMUP, "warm")
            ProfiledEngine.profiles.clear()  # the warm-up's jobs
            driver = cProfile.Profile()
            driver.enable()
            run = bench.run(1, lifecycles, "prof")
            driver.disable()
        finally:
            bench.close()
    print(f"profiled {run.lifecycles} SQLite lifecycles in {run.seconds:.2f} s "
          f"({run.rate:.1f}/s under cProfile); threads: driver, engine loop, "
          f"{len(ProfiledEngine.profiles) - 1} jobs")
    for label, profiles in (("driver thread (service calls)", [driver]),
                            ("engine loop + jobs", ProfiledEngine.profiles)):
        summary = by_package(pstats.Stats(*profiles))
        print(f"--- {label}: own time per lifecycle by package")
        for name, seconds in summary:
            print(f"  {name:<52} {seconds / run.lifecycles * 1000:7.1f} ms")
        print()
        for order, only in (("tottime", ""), ("cumulative", "src/infrastream/")):
            out = io.StringIO()
            stats = pstats.Stats(*profiles, stream=out).sort_stats(order)
            stats.print_stats(*([only] if only else []), top)
            table = out.getvalue()
            print(f"--- {label}, by {order}" + (f", only {only}" if only else ""))
            print(table[table.find("   ncalls"):].rstrip() + "\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", action="store_true",
                        help="profile the sequential SQLite lifecycles instead")
    parser.add_argument("--lifecycles", type=int, default=PROFILE_LIFECYCLES,
                        help="lifecycles to profile")
    parser.add_argument("--top", type=int, default=30, help="rows per profile table")
    parser.add_argument("--servers", type=int, default=0, metavar="N",
                        help="instead: lifecycles/s with 1..N `infrastream serve` processes on "
                        "one PostgreSQL database, and the ratio to 1 server")
    parser.add_argument("--http-only", action="store_true",
                        help="only the over-HTTP lifecycles and the GET status floor")
    parser.add_argument("--http-seconds", type=float, default=HTTP_SECONDS, metavar="S",
                        help="how long each over-HTTP run drives lifecycles")
    options = parser.parse_args()
    logs.configure("console", level=logging.WARNING)  # the engine's steps are no figures
    if options.http_only:
        main_http(options.http_seconds, [])
        sys.exit(0)
    if options.servers:

        def fresh() -> tuple[str, Callable[[], None]] | None:
            made = postgres_url()
            if made is None:
                return None
            url, admin = made
            return url, lambda: drop_postgres(url, admin)

        sys.exit(main_servers(options.servers, sources(), fresh))
    sys.exit(main_profile(options.top, options.lifecycles) if options.profile
             else main_bench(options.http_seconds))
