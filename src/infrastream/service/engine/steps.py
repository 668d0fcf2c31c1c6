"""The steps of one release in an engine pass, chained in at most one write transaction.

For each stage run, the readiness function (`domain.readiness`) judges the facts the pass
read: while anything holds the stage, the engine only does what waiting needs (resume a
deployment job after a crash, insert the check runs a stage needs and start their jobs, set
a timer for the end of a soak). When nothing holds it, `next_event` names the step, and the
engine takes it: clear the promotion, start the deployments, record them healthy or failed,
record the checks passed or failed. Steps chain while a stage moves on, so the last approval
deploys in that same pass.

The write transaction opens at the first step that writes (a release that only waits writes
nothing). A step that depends on facts others can change re-reads them inside it and asks
readiness again: the approvals, the freeze windows and the hotfixes in production (these two
once per transaction), and who occupies the environments (`records.occupancy.hold`, which
locks them first). The stage run
itself moves by compare-and-set on its state and request (its first move in the
transaction; the moves that follow in it are written together as one update at its end, the
row being this transaction's until it commits). A lost compare-and-set ends the release's
steps for this pass; the next pass reads again. The audit entries of the
transaction are appended together just before it commits, and the jobs (deployments,
checks) are handed back to be started once it has; the jobs that belong to another node are
handed to it by a note queued in the transaction itself (`hand_off`), so that node starts them
the moment the transaction commits. A deployment to a synchronous target (the
noop target) is no job: it is deployed inside the transaction, and its deployment recorded
with the outcome (`deploy_job.deploy_now`), so its stage moves on in that same pass.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Update, bindparam, insert, update

from infrastream.domain.errors import Conflict
from infrastream.domain.forward_port import Fix
from infrastream.domain.readiness import StageFacts, next_event
from infrastream.domain.stage_machine import Accepted, StageEvent, StageState, decide
from infrastream.manifests import Stage
from infrastream.manifests.freeze import FreezeWindow
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import check_runs, deployments, releases, stage_runs

from .. import telemetry
from ..auditing import trail as audit
from ..context import Services
from ..records.occupancy import hold
from ..records.releases import approvals_of
from ..records.stage_facts import Context, current_freezes, fixes_in_production
from .check_job import run_check
from .deploy_job import DeployedNow, deploy_now, recorded_now, run_deploy
from .state import CHECK_RUNS, ActiveRelease, PassState, StageRun, guard_may_hold

SYSTEM = "infrastream"

Job = tuple[str, Callable[[Services, int], None], int, str]
"""(in-flight key, job function, row id, environment): a job to start after the transaction
committed; the environment says which node may run it (`records.nodes`)."""

HandOff = Callable[[Connection, list[Job]], set[str]]
"""Given the write transaction and the jobs of the pass, queue the notes that hand the jobs
of other nodes to them (`engine.wakeups`, delivered as the transaction commits); the keys
handed."""

_INSERT_DEPLOYMENT = insert(deployments)
_INSERT_CHECK_RUN = insert(check_runs)
_COMPLETE = (update(releases).where(releases.c.id == bindparam("release_id"))
             .values(state="completed", finished_at=bindparam("finished")))
_MOVES: dict[frozenset[str], Update] = {}
_FOLLOW_UPS: dict[frozenset[str], Update] = {}


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


def _follow_up_statement(columns: frozenset[str]) -> Update:
    """The one write of a stage run's later moves in a transaction that already moved it
    (its compare-and-set holds the row until commit), built once per set of columns."""
    found = _FOLLOW_UPS.get(columns)
    if found is None:
        found = _FOLLOW_UPS[columns] = (
            update(stage_runs).where(stage_runs.c.id == bindparam("run_id"))
            .values(**{column: bindparam(f"new_{column}") for column in columns}))
    return found


class Steps:
    """The outcome of advancing one release: jobs to start, a timer, whether it changed."""

    def __init__(self, services: Services, release: ActiveRelease, state: PassState,
                 now: datetime, hand_off: HandOff | None = None) -> None:
        self.services, self.release, self.state, self.now = services, release, state, now
        self.jobs: list[Job] = []
        self.handed: set[str] = set()
        """The keys of the jobs handed to other nodes as this transaction committed."""
        self._hand_off = hand_off
        self.wake: float | None = None
        self.changed = False
        self.audited = False
        """Whether it recorded audit entries."""
        self.deployment_ids: list[int] = []
        self.deployed: list[str] = []
        """The keys (as job keys) of the deployments done here, inside the transaction."""
        self._entries: list[audit.NewEntry] = []
        self._stack: ExitStack | None = None
        self._conn: Connection | None = None
        self._lost = False
        self._fresh_checks: dict[str, Any] = {}
        self._observe: list[Callable[[], None]] = []
        self._read_freezes: tuple[FreezeWindow, ...] | None = None
        self._follow_ups: dict[int, dict[str, Any]] = {}
        """By stage run id: what its moves after the first in this transaction set."""
        self._read_fixes: dict[str, tuple[Fix, ...]] = {}

    # -- the transaction, opened by the first step that writes ------------------------------

    def _write(self) -> Connection:
        if self._conn is None:
            assert self._stack is not None
            self._conn = self._stack.enter_context(self.services.transaction())
        return self._conn

    def _move(self, run: StageRun, event: StageEvent, facts: StageFacts, **values: Any) -> bool:
        """Compare-and-set the stage run by the state machine's rule (like
        `promotions.transition`); on success the in-memory run follows, and what held it
        (`facts`, as it leaves) is observed once the transaction commits."""
        verdict = decide(StageState(run.state), event)
        if not isinstance(verdict, Accepted):
            raise Conflict(verdict.reason)
        follow_up = self._follow_ups.get(run.id)
        if follow_up is not None:  # moved by this transaction already: written at its end
            follow_up.update(values, state=verdict.state.value, updated_at=self.now)
        else:
            moved = self._write().execute(_move_statement(frozenset(values)), {
                "run_id": run.id, "from_state": run.state, "run_request": run.request_id,
                "to_state": verdict.state.value, "moved_at": self.now,
                **{f"new_{column}": value for column, value in values.items()}})
            if moved.rowcount != 1:
                self._lost = True  # someone else moved it: read again next pass
                return False
            self._follow_ups[run.id] = {}
        self.changed = True
        previous = self.release.runs[run.stage_index - 1] if run.stage_index else None
        self._observe.append(telemetry.stage_left(self._write(), self.release.lane, run,
                                                  previous, facts, verdict.state.value,
                                                  self.now))
        run.state, run.updated_at = verdict.state.value, self.now
        return True

    def _audit(self, action: str, after: dict[str, Any]) -> None:
        """Recorded with the others of this transaction, just before it commits."""
        self._entries.append(audit.NewEntry(self.now, SYSTEM, action, "release",
                                            self.release.ref, after=after))

    # -- the facts ---------------------------------------------------------------------------

    def _confirm(self, run: StageRun, environments: list[str], *,
                 occupy: bool) -> StageFacts | None:
        """Inside the write transaction: re-read what others can change (approvals, freezes,
        hotfixes in production, and — taking the environments' lock — their occupants) and
        ask readiness again: the facts when nothing holds the stage, else None."""
        conn = self._write()
        release = self.release
        context = Context(freezes=self._freezes(conn))
        if guard_may_hold(release.lane, release.runs):
            context.fixes = {release.app_set: self._fixes(conn, release.app_set)}
        if occupy:
            context.occupants = tuple(hold(conn, environments))
        approvals = approvals_of(conn, run.id) \
            if release.stages[run.stage_index].approvals else []
        facts = release.facts(run, context, approvals=approvals, deployments=[], checks={})
        return facts if next_event(facts, self.now) is not None else None

    def _freezes(self, conn: Connection) -> tuple[FreezeWindow, ...]:
        """The freeze windows as this transaction reads them (once: on SQLite nobody else
        writes while it holds the write lock)."""
        if self._read_freezes is None:
            self._read_freezes = current_freezes(self.services, conn)
        return self._read_freezes

    def _fixes(self, conn: Connection, app_set: str) -> tuple[Fix, ...]:
        """The set's hotfixes in production as this transaction reads them (once)."""
        found = self._read_fixes.get(app_set)
        if found is None:
            found = self._read_fixes[app_set] = fixes_in_production(conn, app_set)
        return found

    # -- the chain --------------------------------------------------------------------------

    def run(self) -> Steps:
        runs = self.release.runs
        stages = self.release.stages
        with ExitStack() as stack:
            self._stack = stack
            for run in runs:
                stage = stages[run.stage_index]
                last = run.stage_index == len(runs) - 1
                while not self._lost and self._step(run, stage, last):
                    pass
                if self._lost:
                    break
            for run_id, values in self._follow_ups.items():
                if values:
                    self._write().execute(_follow_up_statement(frozenset(values)), {
                        "run_id": run_id,
                        **{f"new_{column}": value for column, value in values.items()}})
            if self._entries:
                audit.record_many(self._write(), self._entries)
                self.audited = True
            if self._conn is not None and self.jobs and self._hand_off is not None:
                self.handed = self._hand_off(self._conn, self.jobs)
        self._stack = None
        for observe in self._observe:
            observe()
        return self

    def _step(self, run: StageRun, stage: Stage, last: bool) -> bool:
        """Do the next step of one stage run; True when it moved on (so try the next one)."""
        state = StageState(run.state)
        if state is StageState.VERIFYING:
            self._checks(run)  # the check runs it needs exist before readiness judges them
        facts = self.state.facts(self.release, run, self._fresh_checks)
        event = next_event(facts, self.now)
        if event is None:
            self._wait(run, state, facts)
            return False
        if event is StageEvent.APPROVALS_MET:
            return self._clear(run, stage)
        if event is StageEvent.ENV_FREE:
            return self._start(run, stage)
        if state is StageState.DEPLOYING:
            return self._collect(run, stage, facts, event)
        return self._verified(run, stage, facts, event, last=last)

    def _wait(self, run: StageRun, state: StageState, facts: StageFacts) -> None:
        """What a held stage still needs done while it waits."""
        if state is StageState.DEPLOYING:
            for key in self.release.deployment_keys(run):
                dep = self.state.deployments.get(key)
                if dep is not None and dep.state == "deploying":  # resume after a crash
                    self.jobs.append((f"deploy:{dep.key}", run_deploy, dep.id, dep.environment))
        elif state is StageState.VERIFYING:
            remaining = facts.soak_remaining(self.now)
            running = any(c.state in ("pending", "running") for c in facts.checks)
            if remaining > 0 and not running:  # a timer wakes the engine when the soak ends
                due = max(remaining, 0.05)
                self.wake = due if self.wake is None else min(self.wake, due)

    def _clear(self, run: StageRun, stage: Stage) -> bool:
        confirmed = self._confirm(run, stage.environments, occupy=False)
        if confirmed is None or not self._move(run, StageEvent.APPROVALS_MET, confirmed):
            return False
        self._audit("promotion.cleared", {"stage": stage.display_name, "approvals": [
            {"role": r.role, "by": list(r.approvers)} for r in confirmed.tally(self.now).rules]})
        return True

    def _start(self, run: StageRun, stage: Stage) -> bool:
        """Move the stage to deploying and record its deployments. A synchronous target (the
        noop target) is asked first, inside this transaction, and its deployment is recorded
        with the outcome (their outcome is then a fact of this pass, so the stage moves on at
        once); the others are recorded `deploying` and become jobs, which wake the engine
        when done. True when every deployment finished here."""
        release = self.release
        confirmed = self._confirm(run, stage.environments, occupy=True)
        if confirmed is None:
            return False
        conn = self._write()
        attempt = run.attempt + 1
        if not self._move(run, StageEvent.ENV_FREE, confirmed, attempt=attempt):
            return False
        run.attempt = attempt
        actor = run.requested_by or SYSTEM
        done: list[tuple[_NewDeployment, DeployedNow]] = []
        for env in stage.environments:
            dep = _NewDeployment(0, f"{release.id}/{env}/{attempt}", run.stage_index, env,
                                 attempt)
            outcome = deploy_now(self.services, conn, dep, release, release.parsed, actor)
            values = {"key": dep.key, "release_id": release.id, "stage_index": run.stage_index,
                      "environment": env, "attempt": attempt, "state": "deploying",
                      "created_at": self.now, "started_at": self.now, "message": ""}
            if outcome is not None:
                values.update(state=outcome.state, finished_at=self.now,
                              message=outcome.message, result=outcome.result)
            dep.id = inserted_id(conn.execute(_INSERT_DEPLOYMENT, values))
            self.deployment_ids.append(dep.id)
            if outcome is None:
                self.jobs.append((f"deploy:{dep.key}", run_deploy, dep.id, dep.environment))
            else:
                dep.state, dep.message = outcome.state, outcome.message
                done.append((dep, outcome))
        self._audit("deployment.start", {"stage": stage.display_name,
                                         "environments": stage.environments,
                                         "attempt": attempt})
        for dep, outcome in done:
            self._entries.append(recorded_now(dep, release, outcome, self.now))
            self.state.deployments[dep.key] = dep
            self.deployed.append(f"deploy:{dep.key}")
        return len(done) == len(stage.environments)

    def _collect(self, run: StageRun, stage: Stage, facts: StageFacts,
                 event: StageEvent) -> bool:
        if event is StageEvent.DEPLOY_FAILED:
            reason = "; ".join(f"{d.environment}: {d.message}" for d in facts.deployments
                               if d.state != "healthy")
            if self._move(run, StageEvent.DEPLOY_FAILED, facts, finished_at=self.now,
                          reason=f"deployment failed: {reason}"):
                self._audit("stage.fail", {"stage": stage.display_name, "reason": reason})
            return False
        if not self._move(run, StageEvent.DEPLOYED, facts, deployed_at=self.now):
            return False
        self._audit("stage.deployed", {"stage": stage.display_name})
        run.deployed_at = self.now
        return True

    def _checks(self, run: StageRun) -> None:
        """Insert the check runs the stage needs that do not exist yet; start the running."""
        planned = self.release.check_plan(run)
        known = {**self.state.check_runs, **self._fresh_checks}
        missing = [item for item in planned if item.key not in known]
        if missing:
            conn = self._write()
            fresh = {r.key: r for r in conn.execute(CHECK_RUNS, {
                "keys": [item.key for item in missing]})}
            for item in missing:
                if item.key in fresh:  # the stage became verifying in this transaction
                    self._fresh_checks[item.key] = fresh[item.key]
                    continue
                state = "skipped" if item.skip_reason else "running"
                check_id = inserted_id(conn.execute(_INSERT_CHECK_RUN, {
                    "key": item.key, "release_id": self.release.id,
                    "stage_index": run.stage_index, "attempt": run.attempt,
                    "environment": item.environment, "app": item.app,
                    "check_type": item.check_type, "state": state,
                    "summary": item.skip_reason, "started_at": self.now,
                    "finished_at": self.now if item.skip_reason else None,
                }))
                self._fresh_checks[item.key] = _NewCheck(
                    check_id, item.key, item.environment, item.app, item.check_type, state,
                    item.skip_reason)
                self.changed = True
        known = {**self.state.check_runs, **self._fresh_checks}
        for item in planned:
            check = known.get(item.key)
            if check is not None and check.state == "running":
                self.jobs.append((f"check:{check.key}", run_check, check.id,
                                  check.environment))

    def _verified(self, run: StageRun, stage: Stage, facts: StageFacts, event: StageEvent,
                  *, last: bool) -> bool:
        if event is StageEvent.CHECKS_FAILED:
            reason = "; ".join(f"{c.type} {c.app}@{c.environment}: {c.summary}"
                               for c in facts.checks if c.state == "failed")
            if self._move(run, StageEvent.CHECKS_FAILED, facts, finished_at=self.now,
                          reason=f"checks failed: {reason}"):
                self._audit("stage.fail", {"stage": stage.display_name, "reason": reason})
            return False
        if not self._move(run, StageEvent.CHECKS_PASSED, facts, finished_at=self.now):
            return False
        self._audit("stage.succeed", {"stage": stage.display_name})
        if last:
            self._write().execute(_COMPLETE, {"release_id": self.release.id,
                                              "finished": self.now})
            self._audit("release.complete", {"digest": self.release.digest})
        return False


@dataclass
class _NewDeployment:
    """A deployment inserted by this transaction, shaped like a `state` deployments row."""

    id: int
    key: str
    stage_index: int
    environment: str
    attempt: int
    state: str = "deploying"
    message: str = ""


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
            now: datetime, hand_off: HandOff | None = None) -> Steps:
    return Steps(services, release, state, now, hand_off).run()
