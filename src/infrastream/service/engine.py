"""The engine: a level-triggered loop that moves every active release forward.

Each pass reads the stored state of every active release and does the next step of each
(Kubernetes/Zuul style): clear a promotion whose gates are met, start the deployments of a
queued stage once its environments are free, collect finished deployments, start and
collect the stage's checks, let a soak run out. Events (an approval, a finished deployment)
only wake the loop; a timer wakes it when a soak ends. Deployments and checks run in worker
threads and are keyed (release, environment, attempt), so after a crash the next pass finds
them still `deploying`/`running` and resumes them against the idempotent targets: no
duplicate deployment, whatever moment the process died.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from infrastream.domain.approvals import tally
from infrastream.domain.stage_machine import StageEvent, StageState
from infrastream.manifests import Stage, parse_duration
from infrastream.store.clock import utc
from infrastream.store.tables import check_runs, deployments, prerelease_runs, releases

from . import audit
from .context import Services
from .jobs import check_plan, run_check, run_deploy
from .prerelease import run_prerelease
from .promotions import (
    approvals_of,
    freezes_holding,
    release_stages,
    stage_rows,
    transition,
)

log = logging.getLogger("infrastream.engine")
SYSTEM = "infrastream"


class Engine:
    def __init__(self, services: Services, *, workers: int = 8, poll: float = 5.0) -> None:
        self.services = services
        self.poll = poll
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infra-job")
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="infra-engine", daemon=True)
        self._thread.start()

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
            except Exception:  # the loop must survive anything; the next pass retries
                log.exception("engine pass failed")
                delay = self.poll
            self.services.wake.wait(timeout=min(self.poll, delay if delay else self.poll))

    def busy(self) -> bool:
        with self._lock:
            return bool(self._inflight)

    # -- one pass ----------------------------------------------------------------------

    def run_once(self) -> float | None:
        """Advance every active release one step; seconds until a timer is due (or None)."""
        self.passes += 1
        with self.services.db.connect() as conn:
            active = conn.execute(select(releases).where(releases.c.state == "active")
                                  .order_by(releases.c.id)).all()
            orphans = conn.execute(select(deployments.c.id, deployments.c.key).where(
                deployments.c.state == "deploying")).all()
        for orphan in orphans:  # rollbacks, and deployments a crash left behind
            self._submit(f"deploy:{orphan.key}", run_deploy, self.services, orphan.id)
        self._prereleases()
        next_wake: float | None = None
        for release in active:
            wake = self._step(release)
            if wake is not None:
                next_wake = wake if next_wake is None else min(next_wake, wake)
        return next_wake

    def _step(self, release: Any) -> float | None:
        stages = release_stages(release)
        with self.services.db.connect() as conn:
            rows = stage_rows(conn, release.id)
        wake: float | None = None
        for row in rows:
            state = StageState(row.state)
            stage = stages[row.stage_index]
            if state is StageState.AWAITING_APPROVAL:
                self._clear_if_ready(release, rows, row, stage)
            elif state is StageState.QUEUED:
                self._start_deploy(release, row, stage)
            elif state is StageState.DEPLOYING:
                self._collect_deploys(release, row, stage)
            elif state is StageState.VERIFYING:
                wake = self._verify(release, row, stage, last=row.stage_index == len(rows) - 1)
        return wake

    def _clear_if_ready(self, release: Any, rows: list[Any], row: Any, stage: Stage) -> None:
        if row.stage_index > 0 and rows[row.stage_index - 1].state != StageState.SUCCEEDED:
            return
        now = self.services.now()
        with self.services.transaction() as conn:
            current = tally(stage.approvals, approvals_of(conn, row.id), digest=release.digest,
                            request_id=row.request_id, now=now)
            if not current.satisfied:
                return
            if row.freeze_override is None and freezes_holding(self.services, stage,
                                                               release.lane, now, conn):
                return
            if transition(conn, row, StageEvent.APPROVALS_MET, now):
                audit.record(conn, at=now, actor=SYSTEM, action="promotion.cleared",
                             object_type="release",
                             object_id=f"{release.app_set}/{release.name}",
                             after={"stage": stage.display_name, "approvals": [
                                 {"role": r.role, "by": list(r.approvers)}
                                 for r in current.rules]})
        self.services.notify()

    def _start_deploy(self, release: Any, row: Any, stage: Stage) -> None:
        now = self.services.now()
        attempt = row.attempt + 1
        with self.services.transaction() as conn:
            busy = conn.execute(select(deployments.c.environment).where(
                deployments.c.environment.in_(stage.environments)
                & (deployments.c.state == "deploying")
                & (deployments.c.release_id != release.id))).first()
            if busy is not None:
                return  # one deployment at a time per environment: wait for it
            if not transition(conn, row, StageEvent.ENV_FREE, now, attempt=attempt):
                return
            for env in stage.environments:
                conn.execute(insert(deployments).values(
                    key=f"{release.id}/{env}/{attempt}", release_id=release.id,
                    stage_index=row.stage_index, environment=env, attempt=attempt,
                    state="deploying", created_at=now, started_at=now, message=""))
            audit.record(conn, at=now, actor=SYSTEM, action="deployment.start",
                         object_type="release", object_id=f"{release.app_set}/{release.name}",
                         after={"stage": stage.display_name, "environments": stage.environments,
                                "attempt": attempt})
        self.services.notify()

    def _collect_deploys(self, release: Any, row: Any, stage: Stage) -> None:
        with self.services.db.connect() as conn:
            deps = conn.execute(select(deployments).where(
                (deployments.c.release_id == release.id)
                & (deployments.c.stage_index == row.stage_index)
                & (deployments.c.attempt == row.attempt))).all()
        pending = [d for d in deps if d.state == "deploying"]
        for dep in pending:
            self._submit(f"deploy:{dep.key}", run_deploy, self.services, dep.id)
        if pending:
            return
        failed = [d for d in deps if d.state != "healthy"]
        now = self.services.now()
        with self.services.transaction() as conn:
            if failed:
                reason = "; ".join(f"{d.environment}: {d.message}" for d in failed)
                if transition(conn, row, StageEvent.DEPLOY_FAILED, now, finished_at=now,
                              reason=f"deployment failed: {reason}"):
                    audit.record(conn, at=now, actor=SYSTEM, action="stage.fail",
                                 object_type="release",
                                 object_id=f"{release.app_set}/{release.name}",
                                 after={"stage": stage.display_name, "reason": reason})
            elif transition(conn, row, StageEvent.DEPLOYED, now, deployed_at=now):
                audit.record(conn, at=now, actor=SYSTEM, action="stage.deployed",
                             object_type="release",
                             object_id=f"{release.app_set}/{release.name}",
                             after={"stage": stage.display_name})
        self.services.notify()

    def _verify(self, release: Any, row: Any, stage: Stage, *, last: bool) -> float | None:
        now = self.services.now()
        planned = check_plan(release, row, stage)
        with self.services.transaction() as conn:
            existing = {c.key: c for c in conn.execute(select(check_runs).where(
                (check_runs.c.release_id == release.id)
                & (check_runs.c.stage_index == row.stage_index)
                & (check_runs.c.attempt == row.attempt)))}
            for item in planned:
                if item.key not in existing:
                    conn.execute(insert(check_runs).values(
                        key=item.key, release_id=release.id, stage_index=row.stage_index,
                        attempt=row.attempt, environment=item.environment, app=item.app,
                        check_type=item.check_type,
                        state="skipped" if item.skip_reason else "running",
                        summary=item.skip_reason, started_at=now,
                        finished_at=now if item.skip_reason else None))
        with self.services.db.connect() as conn:
            runs = conn.execute(select(check_runs).where(
                (check_runs.c.release_id == release.id)
                & (check_runs.c.stage_index == row.stage_index)
                & (check_runs.c.attempt == row.attempt))).all()
        for run in runs:
            if run.state == "running":
                self._submit(f"check:{run.key}", run_check, self.services, run.id)
        soak = max((parse_duration(c.duration) for c in stage.checks if c.type == "soak"),
                   default=0)
        deployed_at = utc(row.deployed_at) or now
        remaining = (deployed_at + timedelta(seconds=soak) - now).total_seconds()
        failed = [r for r in runs if r.state == "failed"]
        running = [r for r in runs if r.state == "running"]
        if not failed and (running or remaining > 0):
            return max(remaining, 0.05) if not running else None
        with self.services.transaction() as conn:
            ref = f"{release.app_set}/{release.name}"
            if failed:
                reason = "; ".join(f"{r.check_type} {r.app}@{r.environment}: {r.summary}"
                                   for r in failed)
                if transition(conn, row, StageEvent.CHECKS_FAILED, now, finished_at=now,
                              reason=f"checks failed: {reason}"):
                    audit.record(conn, at=now, actor=SYSTEM, action="stage.fail",
                                 object_type="release", object_id=ref,
                                 after={"stage": stage.display_name, "reason": reason})
            elif transition(conn, row, StageEvent.CHECKS_PASSED, now, finished_at=now):
                audit.record(conn, at=now, actor=SYSTEM, action="stage.succeed",
                             object_type="release", object_id=ref,
                             after={"stage": stage.display_name})
                if last:
                    conn.execute(update(releases).where(releases.c.id == release.id)
                                 .values(state="completed", finished_at=now))
                    audit.record(conn, at=now, actor=SYSTEM, action="release.complete",
                                 object_type="release", object_id=ref,
                                 after={"digest": release.digest})
        self.services.notify()
        return None

    def _prereleases(self) -> None:
        """Start queued pre-release runs whose environment is free; resume running ones."""
        with self.services.db.connect() as conn:
            runs = conn.execute(select(prerelease_runs).where(
                prerelease_runs.c.state.in_(("queued", "running")))
                .order_by(prerelease_runs.c.id)).all()
        for run in runs:
            if run.state == "queued":
                now = self.services.now()
                with self.services.transaction() as conn:
                    busy = conn.execute(select(deployments.c.id).where(
                        (deployments.c.environment == run.environment)
                        & (deployments.c.state == "deploying"))).first() or \
                        conn.execute(select(prerelease_runs.c.id).where(
                            (prerelease_runs.c.environment == run.environment)
                            & (prerelease_runs.c.state == "running"))).first()
                    if busy is not None:
                        continue
                    started = conn.execute(update(prerelease_runs).where(
                        (prerelease_runs.c.id == run.id) & (prerelease_runs.c.state == "queued")
                    ).values(state="running", started_at=now)).rowcount
                if not started:
                    continue
            self._submit(f"prerelease:{run.id}", run_prerelease, self.services, run.id)

    # -- jobs --------------------------------------------------------------------------

    def _submit(self, key: str, fn: Any, *args: Any) -> None:
        with self._lock:
            if key in self._inflight:
                return
            self._inflight.add(key)

        def job() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("job %s crashed", key)
            finally:
                with self._lock:
                    self._inflight.discard(key)
                self.services.notify()

        self._pool.submit(job)
