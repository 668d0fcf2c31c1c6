"""The engine: a level-triggered loop that moves every active release forward.

Each pass reads the stored state of every active release (`engine_state`: one read
transaction, a few statements however many releases are active; in the same transaction one
statement asks what else there is to do, `looks`: audit entries to chain, the SCM gate's
work, notification deliveries, subscriptions) and does every step each
release can take (`engine_steps`): clear a promotion whose gates are met, start the
deployments of a queued stage once its environments are free, collect finished deployments,
start and collect the stage's checks, let a soak run out. Steps chain within the pass, so
the last approval deploys in that same pass. Events (an approval, a finished deployment)
only wake the loop; a timer wakes it when a soak ends or an approval reminder falls due, and
it polls every `poll` seconds. After the releases, the notification pass (`notify_pass`)
records who is told what (promotions waiting for people, failures, rejections, …).

Deployments and checks run in worker threads and are keyed (release, environment, attempt),
so after a crash the next pass finds them still `deploying`/`running` and resumes them
against the idempotent targets: no duplicate deployment, whatever moment the process died.
Deployments outside active releases (rollbacks, and whatever a crash left behind) and
pre-release runs are swept at the first pass and every `poll` seconds; between sweeps, a
pass looks for them only when the newest deployment or pre-release run id moved (a cheap
index lookup), or while pre-release runs are still open.

Several servers can share one database: every job is claimed under its key through
`records.leases` before it runs (one owner at a time, renewed while it works, taken over by
another server when its owner dies), and a job of a `local` environment runs only on the node
bound to it (`records.nodes`). A job for another node is handed to that node, not run here:
by a note queued in the transaction that created it (`engine.wakeups`, LISTEN/NOTIFY on
PostgreSQL), or, for a job found later, by one sent on its own (`Services.hand_off`); that
node's listener starts it at once (`take`), with no pass of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from infrastream.domain.readiness import occupied
from infrastream.manifests import Environment
from infrastream.store.tables import deployments, prerelease_runs

from .. import logs, telemetry
from ..auditing import trail as audit
from ..context import Services
from ..drift import record_drift
from ..health import record_health
from ..records.leases import LEASE_SECONDS, LeaseLost, Leases
from ..records.manifests import current_bundle
from ..records.nodes import Node
from ..records.occupancy import hold
from . import state as engine_state
from .check_job import run_check
from .deploy_job import run_deploy
from .looks import look
from .notify_job import due_deliveries
from .notify_pass import NotifyPass
from .prerelease_job import run_prerelease
from .scm_pass import gate_pass
from .steps import Job, advance
from .wakeups import Handoff, notify

log = logging.getLogger("infrastream.engine")
_steps = logs.get("infrastream.engine")

_DEPLOYING = select(deployments.c.id, deployments.c.key, deployments.c.environment).where(
    deployments.c.state == "deploying")
_DEPLOYING_AFTER = _DEPLOYING.where(deployments.c.id > bindparam("after"))

_OPEN_PRERELEASES = (select(prerelease_runs.c.id, prerelease_runs.c.state,
                            prerelease_runs.c.environment)
                     .where(prerelease_runs.c.state.in_(("queued", "running")))
                     .order_by(prerelease_runs.c.id))


LEASE_ENV = "INFRASTREAM_LEASE_SECONDS"
_TAKEN: dict[str, Any] = {"deploy": run_deploy, "check": run_check,
                          "prerelease": run_prerelease}
"""The jobs another node can hand over, by the kind in their key, to the function that runs
them with the row id."""


def lease_seconds() -> float:
    """How long a job lease lasts unrenewed (INFRASTREAM_LEASE_SECONDS, default 30)."""
    return float(os.environ.get(LEASE_ENV) or LEASE_SECONDS)


class Engine:
    def __init__(self, services: Services, *, workers: int = 8, poll: float = 5.0,
                 drift_every: float = 30.0, health_every: float = 2.0,
                 leases: Leases | None = None, node: Node | None = None) -> None:
        seconds = lease_seconds()
        self.leases = leases or Leases(services.db, services.node, seconds)
        self.node = node or Node(services.db, services.node, seconds)
        self.drift_every = drift_every
        self.health_every = health_every
        self._health_at: float | None = None
        self._drift_at: float | None = None
        self.services = services
        self.poll = poll
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infra-job")
        self._inflight: set[str] = set()
        self._handed: set[str] = set()  # jobs left to another node (woken once per job)
        self._lock = threading.Lock()
        self._pass_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._swept_at: float | None = None
        self._seen_deployment = 0
        self._seen_prerelease = 0
        self._prereleases_open = False
        self.passes = 0
        self.notify = NotifyPass(services, self.leases)
        self._handing = services.db.dialect.name == "postgresql"  # one server on SQLite

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.services.heartbeat.expected = True  # readiness now watches this loop
        self._thread = threading.Thread(target=self._loop, name="infra-engine", daemon=True)
        self._thread.start()
        threading.Thread(target=self._renew, name="infra-leases", daemon=True).start()

    def _renew(self) -> None:
        """Keep this server's leases (and its node's heartbeat) alive while it works."""
        while not self._stop.wait(self.leases.seconds / 3):
            try:
                self.leases.renew()
                self.node.beat()
            except Exception:  # the database is away: the next round retries
                log.exception("lease renewal failed")

    def stop(self) -> None:
        self._stop.set()
        self.services.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.services.wake.clear()
            try:
                delay = self.run_once()
                self.services.heartbeat.beat()
            except Exception:  # the loop must survive anything; the next pass retries
                log.exception("engine pass failed")
                delay = self.poll
            self.services.wake.wait(timeout=min(self.poll, delay if delay else self.poll))

    def busy(self) -> bool:
        with self._lock:
            return bool(self._inflight)

    # -- one pass ----------------------------------------------------------------------

    def run_once(self) -> float | None:
        """Advance every active release as far as it can go; seconds until a timer is due."""
        with self._pass_lock:
            return self._pass()

    def _pass(self) -> float | None:
        self.passes += 1
        started = time.monotonic()
        sweep = self._swept_at is None or started - self._swept_at >= self.poll
        with self.services.db.connect() as conn:  # one read transaction for the looks
            looks = look(conn, self.notify)
            state = engine_state.read(self.services, conn, looks.revision)
            orphans = self._deploying_outside(conn, state.newest_deployment, sweep)
            prereleases = self._open_prereleases(conn, state.newest_prerelease, sweep)
        if looks.audit_waiting:
            audit.settle(self.services.db, looked=True)  # left waiting by contended writers
        if sweep:
            self._swept_at = started
            self.node.forget()  # a binding may have moved (`service.bindings`)
            with self._lock:
                self._handed.clear()  # hand over again what still waits elsewhere
        if self._drift_at is None or started - self._drift_at >= self.drift_every:
            self._drift_at = started
            # shared targets: one server; `local` ones: each node its own
            self._submit("drift", record_drift, self.services, self._shared)
            self._submit(f"drift:{self.node.name}", record_drift, self.services, self._own)
        if self._health_at is None or started - self._health_at >= self.health_every:
            self._health_at = started
            # as drift: a `local` environment's processes are seen (and restarted) only by
            # the node they run on
            self._submit("health", record_health, self.services, self._shared)
            self._submit(f"health:{self.node.name}", record_health, self.services, self._own)
        for orphan in orphans:  # rollbacks, and deployments a crash left behind
            self._submit(f"deploy:{orphan.key}", run_deploy, self.services, orphan.id,
                         environment=orphan.environment)
        self._prereleases(prereleases)
        next_wake: float | None = None
        changed: list[str] = []
        # what may have added audit entries since the looks (the notification pass looks again)
        audited = looks.audit_waiting or looks.gate[0] or looks.gate[1]
        for release in state.releases:
            try:
                steps = advance(self.services, release, state, self.services.now(),
                                self._hand_off if self._handing else None)
            except Exception:  # one release's trouble must not hold up the others
                log.exception("engine step of %s failed", release.ref)
                continue
            self._saw_own(steps.deployment_ids)
            if steps.handed:
                with self._lock:
                    self._handed |= steps.handed
            if steps.changed or steps.jobs:
                _steps.info("engine.step", step="release.advanced", release=release.ref,
                            release_id=release.id,
                            started=[job[0] for job in steps.jobs] + steps.deployed)
            for key, job, row_id, environment in steps.jobs:
                self._submit(key, job, self.services, row_id, environment=environment)
            if steps.changed:
                changed.append(release.ref)
            audited = audited or steps.audited
            if steps.wake is not None:
                next_wake = steps.wake if next_wake is None else min(next_wake, steps.wake)
        # after the releases, so that an approval's deployment does not wait for these
        for key, job, arg in gate_pass(self.services, looks.gate):  # pull requests, merges, …
            self._submit(key, job, self.services, arg)
        # notifications, per channel
        deliveries, delivery_wake = due_deliveries(self.services, looks.deliveries_pending)
        for key, job, arg in deliveries:
            self._submit(key, job, self.services, arg)
        if delivery_wake is not None:
            next_wake = delivery_wake if next_wake is None else min(next_wake, delivery_wake)
        # who is told what; never raises
        reminder = self.notify.run(state, looks.subscribed, None if audited else looks.audit)
        if reminder is not None:
            next_wake = reminder if next_wake is None else min(next_wake, reminder)
        if changed:
            self._announce(changed)
        telemetry.ENGINE_BACKLOG.set(len(state.releases))
        telemetry.ENGINE_PASS.observe(time.monotonic() - started)
        return next_wake

    def _announce(self, releases: list[str]) -> None:
        """Tell the observers (`services.listeners`) which releases moved. Not the engine's
        own wake-up: the pass already took every step its changes allowed."""
        for listener in list(self.services.listeners):
            for release in releases:
                listener(release)

    # -- deployments outside active releases, pre-release runs ---------------------------

    def _deploying_outside(self, conn: Connection, newest: int, sweep: bool) -> list[Any]:
        """`deploying` deployments to resume: all of them on a sweep, else the new ones."""
        if sweep:
            found = list(conn.execute(_DEPLOYING))
        elif newest > self._seen_deployment:
            found = list(conn.execute(_DEPLOYING_AFTER, {"after": self._seen_deployment}))
        else:
            return []
        self._seen_deployment = newest
        return found

    def _saw_own(self, deployment_ids: list[int]) -> None:
        """The engine's own new deployments need no look: their jobs are started already.
        Only when nobody else's came in between (ids follow on), else the next pass looks."""
        if deployment_ids and min(deployment_ids) == self._seen_deployment + 1:
            self._seen_deployment = max(deployment_ids)

    def _open_prereleases(self, conn: Connection, newest: int, sweep: bool) -> list[Any]:
        if not (sweep or self._prereleases_open or newest > self._seen_prerelease):
            return []
        runs = list(conn.execute(_OPEN_PRERELEASES))
        self._seen_prerelease = newest
        self._prereleases_open = bool(runs)
        return runs

    def _prereleases(self, runs: list[Any]) -> None:
        """Start queued pre-release runs whose environment is free; resume running ones."""
        for run in runs:
            if run.state == "queued":
                now = self.services.now()
                with self.services.transaction() as conn:
                    if occupied(hold(conn, [run.environment]), [run.environment]):
                        continue  # one thing at a time per environment: it waits its turn
                    started = conn.execute(update(prerelease_runs).where(
                        (prerelease_runs.c.id == run.id) & (prerelease_runs.c.state == "queued")
                    ).values(state="running", started_at=now)).rowcount
                if not started:
                    continue
            self._submit(f"prerelease:{run.id}", run_prerelease, self.services, run.id,
                         environment=run.environment)

    # -- jobs --------------------------------------------------------------------------

    @staticmethod
    def _shared(environment: Environment) -> bool:
        return environment.spec.target.type != "local"

    def _own(self, environment: Environment) -> bool:
        return environment.spec.target.type == "local" and self.node.serves(
            environment.metadata.name)

    def _elsewhere(self, environment: str | None) -> str | None:
        """The other node a job of this environment belongs to (a bound `local` one)."""
        if environment is None:
            return None
        target = current_bundle(self.services).environment(environment).spec.target
        if target.type != "local":
            return None
        node = self.node.bound_to(environment)
        return None if node == self.node.name else node

    def _hand_off(self, conn: Connection, jobs: list[Job]) -> set[str]:
        """Inside the transaction that created `jobs`: queue a note to each other node whose
        jobs are among them (delivered as it commits); the keys handed."""
        bundle = current_bundle(self.services, conn)
        with self._lock:
            handed = set(self._handed)
        notes: dict[str, list[Handoff]] = {}
        for key, _fn, row_id, environment in jobs:
            if key in handed or bundle.environment(environment).spec.target.type != "local":
                continue
            node = self.node.known_binding(conn, environment)
            if node is not None and node != self.node.name:
                notes.setdefault(node, []).append(Handoff(key, row_id, environment))
        for node, given in notes.items():
            notify(conn, self.node.name, node, given)
        return {job.key for given in notes.values() for job in given}

    def take(self, jobs: list[Handoff]) -> None:
        """Jobs another node handed to this one (`engine.wakeups`): start them now."""
        for job in jobs:
            fn = _TAKEN.get(job.key.split(":", 1)[0])
            if fn is None:
                self.services.wake.set()  # not a job to start by hand: a pass finds it
                continue
            self._submit(job.key, fn, self.services, job.row_id, environment=job.environment,
                         handed=True)

    def _submit(self, key: str, fn: Any, *args: Any, environment: str | None = None,
                handed: bool = False) -> None:
        """Run a job in a worker once it is this server's: its node's (known when another
        node `handed` it here) and its lease's."""
        with self._lock:
            if key in self._inflight or key in self._handed:
                return
            self._inflight.add(key)
        telemetry.ENGINE_JOBS.labels(key.split(":", 1)[0]).inc()

        def job() -> None:
            claimed = False
            try:
                node = None if handed else self._elsewhere(environment)
                if node is not None and environment is not None:
                    with self._lock:
                        self._handed.add(key)  # once: its node claims it
                    self.services.hand_off(node, [Handoff(key, args[1], environment)])
                    return
                claimed = self.leases.claim(key)
                if claimed:
                    with self.leases.running(key):
                        fn(*args)
            except LeaseLost as lost:  # another server took it over: it finishes it there
                log.warning("job %s stopped: %s", key, lost.reason)
            except Exception:
                log.exception("job %s crashed", key)
            finally:
                if claimed:
                    try:
                        self.leases.release(key)
                    except Exception:  # it expires instead
                        log.exception("releasing the lease of %s failed", key)
                with self._lock:
                    self._inflight.discard(key)
                telemetry.ENGINE_JOBS.labels(key.split(":", 1)[0]).dec()
                if claimed:
                    self.services.notify()

        self._pool.submit(job)
