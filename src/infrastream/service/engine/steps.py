"""The steps of one release in an engine pass, chained in at most one write transaction.

From what the pass read (`engine_state`), `advance` does every step the release's stored
state allows, stage by stage, and goes on while a step moves a stage on: approvals met →
cleared → queued → deploying when the environments are free, all at once; deployments
healthy → verifying → succeeded when the stage has nothing to check or soak. The write
transaction opens at the first step that writes (a release that only waits writes nothing),
and what a step depends on is re-checked inside it: the approvals, the freeze windows, the
environments, and the stage run itself, moved by compare-and-set on its state and request
(the rule of `promotions.transition`, with statements built once). A lost compare-and-set
ends the release's steps for this pass; the next pass reads again. The audit entries of the
transaction are appended together just before it commits, and the jobs (deployments,
checks) are handed back to be started once it has.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Update, bindparam, insert, update

from infrastream.domain.approvals import tally
from infrastream.domain.errors import Conflict
from infrastream.domain.stage_machine import Accepted, StageEvent, StageState, decide
from infrastream.manifests import Stage, parse_duration
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import check_runs, deployments, releases, stage_runs

from ..auditing import trail as audit
from ..context import Services
from ..records.freezes import freezes_holding
from ..records.releases import approvals_by_run
from .check_job import run_check
from .deploy_job import run_deploy
from .state import BUSY, CHECK_RUNS, ActiveRelease, PassState, StageRun

SYSTEM = "infrastream"

Job = tuple[str, Callable[[Services, int], None], int]
"""(in-flight key, job function, row id): a job to start after the transaction committed."""

_INSERT_DEPLOYMENT = insert(deployments)
_INSERT_CHECK_RUN = insert(check_runs)
_COMPLETE = (update(releases).where(releases.c.id == bindparam("release_id"))
             .values(state="completed", finished_at=bindparam("finished")))
_MOVES: dict[frozenset[str], Update] = {}


def _move_statement(columns: frozenset[str]) -> Update:
    """`promotions.transition`'s compare-and-set, built once per set of columns it sets."""
    found = _MOVES.get(columns)
    if found is None:
        found = _MOVES[columns] = (
            update(stage_runs)
            .where((stage_runs.c.id == bindparam("run_id"))
                   & (stage_runs.c.state == bindparam("from_state"))
                   & (stage_runs.c.request_id == bindparam("run_request")))
            .values(state=bindparam("to_state"), updated_at=bindparam("moved_at"),
                    **{column: bindparam(f"new_{column}") for column in columns}))
    return found


class Steps:
    """The outcome of advancing one release: jobs to start, a timer, whether it changed."""

    def __init__(self, services: Services, release: ActiveRelease, state: PassState,
                 now: datetime) -> None:
        self.services, self.release, self.state, self.now = services, release, state, now
        self.jobs: list[Job] = []
        self.wake: float | None = None
        self.changed = False
        self.deployment_ids: list[int] = []
        self._entries: list[audit.NewEntry] = []
        self._stack: ExitStack | None = None
        self._conn: Connection | None = None
        self._lost = False

    # -- the transaction, opened by the first step that writes ------------------------------

    def _write(self) -> Connection:
        if self._conn is None:
            assert self._stack is not None
            self._conn = self._stack.enter_context(self.services.transaction())
        return self._conn

    def _move(self, run: StageRun, event: StageEvent, **values: Any) -> bool:
        """Compare-and-set the stage run by the state machine's rule (like
        `promotions.transition`); on success the in-memory run follows."""
        verdict = decide(StageState(run.state), event)
        if not isinstance(verdict, Accepted):
            raise Conflict(verdict.reason)
        moved = self._write().execute(_move_statement(frozenset(values)), {
            "run_id": run.id, "from_state": run.state, "run_request": run.request_id,
            "to_state": verdict.state.value, "moved_at": self.now,
            **{f"new_{column}": value for column, value in values.items()}})
        if moved.rowcount != 1:
            self._lost = True  # someone else moved it: read again next pass
            return False
        self.changed = True
        run.state = verdict.state.value
        return True

    def _audit(self, action: str, after: dict[str, Any]) -> None:
        """Recorded with the others of this transaction, just before it commits."""
        self._entries.append(audit.NewEntry(self.now, SYSTEM, action, "release",
                                            self.release.ref, after=after))

    # -- the chain --------------------------------------------------------------------------

    def run(self) -> Steps:
        runs = self.release.runs
        stages = self.release.stages
        with ExitStack() as stack:
            self._stack = stack
            for run in runs:
                stage = stages[run.stage_index]
                last = run.stage_index == len(runs) - 1
                while not self._lost and self._step(run, stage, runs, last):
                    pass
                if self._lost:
                    break
            if self._entries:
                audit.record_many(self._write(), self._entries)
        self._stack = None
        return self

    def _step(self, run: StageRun, stage: Stage, runs: list[StageRun], last: bool) -> bool:
        """Do the next step of one stage run; True when it moved on (so try the next one)."""
        state = StageState(run.state)
        if state is StageState.AWAITING_APPROVAL:
            ready = run.stage_index == 0 or runs[run.stage_index - 1].state == StageState.SUCCEEDED
            return ready and self._clear(run, stage)
        if state is StageState.QUEUED:
            return self._start(run, stage)
        if state is StageState.DEPLOYING:
            return self._collect(run, stage)
        if state is StageState.VERIFYING:
            return self._verify(run, stage, last=last)
        return False

    def _clear(self, run: StageRun, stage: Stage) -> bool:
        release = self.release
        if stage.approvals and not tally(
                stage.approvals, self.state.approvals.get(run.id, []), digest=release.digest,
                request_id=run.request_id, now=self.now).satisfied:
            return False  # decided on the read: no write transaction for a waiting stage
        conn = self._write()
        given = approvals_by_run(conn, [run.id]).get(run.id, []) if stage.approvals else []
        current = tally(stage.approvals, given, digest=release.digest,
                        request_id=run.request_id, now=self.now)
        if not current.satisfied:
            return False
        if run.freeze_override is None and freezes_holding(self.services, stage, release.lane,
                                                           self.now, conn):
            return False
        if not self._move(run, StageEvent.APPROVALS_MET):
            return False
        self._audit("promotion.cleared", {"stage": stage.display_name, "approvals": [
            {"role": r.role, "by": list(r.approvers)} for r in current.rules]})
        return True

    def _start(self, run: StageRun, stage: Stage) -> bool:
        release = self.release
        if self._conn is None and self.state.busy_elsewhere(release.id, stage.environments):
            return False  # one deployment at a time per environment: wait for it
        conn = self._write()
        busy = [row for row in conn.execute(BUSY, {"environments": stage.environments})
                if row.release_id != release.id]
        if busy:
            return False
        attempt = run.attempt + 1
        if not self._move(run, StageEvent.ENV_FREE, attempt=attempt):
            return False
        run.attempt = attempt
        for env in stage.environments:
            key = f"{release.id}/{env}/{attempt}"
            deployment_id = inserted_id(conn.execute(_INSERT_DEPLOYMENT, {
                "key": key, "release_id": release.id, "stage_index": run.stage_index,
                "environment": env, "attempt": attempt, "state": "deploying",
                "created_at": self.now, "started_at": self.now, "message": ""},
            ))
            self.deployment_ids.append(deployment_id)
            self.jobs.append((f"deploy:{key}", run_deploy, deployment_id))
        self._audit("deployment.start", {"stage": stage.display_name,
                                         "environments": stage.environments,
                                         "attempt": attempt})
        return False  # the deployments run now; their jobs wake the engine when done

    def _collect(self, run: StageRun, stage: Stage) -> bool:
        deps = [dep for key in self.release.deployment_keys(run)
                if (dep := self.state.deployments.get(key)) is not None
                and dep.stage_index == run.stage_index and dep.attempt == run.attempt]
        pending = [d for d in deps if d.state == "deploying"]
        for dep in pending:  # after a crash, or a job that died: resume it (idempotent)
            self.jobs.append((f"deploy:{dep.key}", run_deploy, dep.id))
        if pending:
            return False
        failed = [d for d in deps if d.state != "healthy"]
        if failed:
            reason = "; ".join(f"{d.environment}: {d.message}" for d in failed)
            if self._move(run, StageEvent.DEPLOY_FAILED, finished_at=self.now,
                          reason=f"deployment failed: {reason}"):
                self._audit("stage.fail", {"stage": stage.display_name, "reason": reason})
            return False
        if not self._move(run, StageEvent.DEPLOYED, deployed_at=self.now):
            return False
        self._audit("stage.deployed", {"stage": stage.display_name})
        run.deployed_at = self.now
        return True

    def _verify(self, run: StageRun, stage: Stage, *, last: bool) -> bool:
        planned = self.release.check_plan(run)
        keys = [item.key for item in planned]
        if run.id in self.state.checks_read:
            runs = {k: self.state.check_runs[k] for k in keys if k in self.state.check_runs}
        elif keys:  # the stage became verifying in this very transaction
            runs = {r.key: r for r in self._write().execute(CHECK_RUNS, {"keys": keys})}
        else:
            runs = {}
        missing = [item for item in planned if item.key not in runs]
        if missing:
            conn = self._write()
            for item in missing:
                state = "skipped" if item.skip_reason else "running"
                check_id = inserted_id(conn.execute(_INSERT_CHECK_RUN, {
                    "key": item.key, "release_id": self.release.id,
                    "stage_index": run.stage_index, "attempt": run.attempt,
                    "environment": item.environment, "app": item.app,
                    "check_type": item.check_type, "state": state,
                    "summary": item.skip_reason, "started_at": self.now,
                    "finished_at": self.now if item.skip_reason else None,
                }))
                runs[item.key] = _NewCheck(check_id, item.key, item.environment, item.app,
                                           item.check_type, state, item.skip_reason)
                self.changed = True
        running = [r for r in runs.values() if r.state == "running"]
        for check in running:
            self.jobs.append((f"check:{check.key}", run_check, check.id))
        failed = [r for r in runs.values() if r.state == "failed"]
        soak = max((parse_duration(c.duration) for c in stage.checks if c.type == "soak"),
                   default=0)
        deployed_at = utc(run.deployed_at) or self.now
        remaining = (deployed_at + timedelta(seconds=soak) - self.now).total_seconds()
        if not failed and (running or remaining > 0):
            if not running:  # a timer wakes the engine when the soak ends
                due = max(remaining, 0.05)
                self.wake = due if self.wake is None else min(self.wake, due)
            return False
        if failed:
            reason = "; ".join(f"{r.check_type} {r.app}@{r.environment}: {r.summary}"
                               for r in failed)
            if self._move(run, StageEvent.CHECKS_FAILED, finished_at=self.now,
                          reason=f"checks failed: {reason}"):
                self._audit("stage.fail", {"stage": stage.display_name, "reason": reason})
            return False
        if not self._move(run, StageEvent.CHECKS_PASSED, finished_at=self.now):
            return False
        self._audit("stage.succeed", {"stage": stage.display_name})
        if last:
            self._write().execute(_COMPLETE, {"release_id": self.release.id,
                                              "finished": self.now})
            self._audit("release.complete", {"digest": self.release.digest})
        return False


@dataclass(frozen=True)
class _NewCheck:
    """A check run inserted by this transaction, shaped like a `CHECK_RUNS` row."""

    id: int
    key: str
    environment: str
    app: str
    check_type: str
    state: str
    summary: str


def advance(services: Services, release: ActiveRelease, state: PassState,
            now: datetime) -> Steps:
    return Steps(services, release, state, now).run()
