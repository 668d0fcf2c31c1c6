"""What one engine pass knows: the active releases, their stage runs and what those wait on.

A pass reads it in one read transaction and a few statements, however many releases are
active: the active releases joined with their stage runs (without `content`, which comes
parsed from `release_content`; each row also carries the newest deployment and pre-release
run ids, by which the engine notices new ones), then only what the stages in flight need:
the approvals of stages awaiting approval, the deployments of deploying stages and the check
runs of verifying ones (both by their unique keys), and the readiness context (freeze
windows, the hotfixes in production for releases whose last stage waits to enter, who
occupies the environments of queued stages). `facts` turns it into the facts the
readiness function judges; a step that writes re-reads what it depends on in its own
transaction (see `steps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from infrastream.domain.approvals import Approval
from infrastream.domain.readiness import StageFacts
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Lane, Stage
from infrastream.store.tables import (
    check_runs,
    deployments,
    prerelease_runs,
    releases,
    stage_runs,
)

from ..context import Services
from ..records import release_content
from ..records.check_plan import PlannedCheck, check_plan
from ..records.release_content import ReleaseContent
from ..records.releases import approvals_by_run
from ..records.stage_facts import Context, read_context, stage_facts

_NEWEST_DEPLOYMENT = select(func.max(deployments.c.id)).scalar_subquery()
_NEWEST_PRERELEASE = select(func.max(prerelease_runs.c.id)).scalar_subquery()
NEWEST = select(_NEWEST_DEPLOYMENT.label("deployment"),
                _NEWEST_PRERELEASE.label("prerelease"))
"""The newest deployment and pre-release run ids: by primary key, so nearly free."""

_ACTIVE = (
    select(_NEWEST_DEPLOYMENT.label("newest_deployment"),
           _NEWEST_PRERELEASE.label("newest_prerelease"),
           releases.c.id.label("release_id"), releases.c.app_set, releases.c.name,
           releases.c.lane, releases.c.digest, releases.c.guard_override,
           releases.c.source_root, stage_runs.c.id,
           stage_runs.c.stage_index, stage_runs.c.state, stage_runs.c.request_id,
           stage_runs.c.attempt, stage_runs.c.deployed_at, stage_runs.c.freeze_override,
           stage_runs.c.reason, stage_runs.c.requested_at, stage_runs.c.updated_at,
           stage_runs.c.requested_by)
    .select_from(releases.join(stage_runs, stage_runs.c.release_id == releases.c.id))
    .where(releases.c.state == "active")
    .order_by(releases.c.id, stage_runs.c.stage_index))
"""Every stage run of every active release, and (on each row) the newest ids of `NEWEST`."""

_DEPLOYMENT_COLUMNS = (deployments.c.id, deployments.c.key, deployments.c.stage_index,
                       deployments.c.environment, deployments.c.attempt, deployments.c.state,
                       deployments.c.message)
_DEPLOYMENTS = (select(*_DEPLOYMENT_COLUMNS)
                .where(deployments.c.key.in_(bindparam("keys", expanding=True))))
_DEPLOYMENT = select(*_DEPLOYMENT_COLUMNS).where(deployments.c.key == bindparam("key"))
"""`_DEPLOYMENTS` for one key: no expanding IN to render at every execution."""

CHECK_RUNS = (
    select(check_runs.c.id, check_runs.c.key, check_runs.c.environment, check_runs.c.app,
           check_runs.c.check_type, check_runs.c.state, check_runs.c.summary)
    .where(check_runs.c.key.in_(bindparam("keys", expanding=True))))

_ENTERING = (StageState.AWAITING_APPROVAL, StageState.QUEUED)


def guard_may_hold(lane: str, runs: list[StageRun]) -> bool:
    """Whether the forward-port guard can hold a step of this release now: a release-lane
    release whose last stage waits to enter (`stage_facts.needs_fixes` without the pending
    last stage, which no step of the engine moves: it waits for a promotion request)."""
    return lane == Lane.RELEASE.value and bool(runs) and runs[-1].state in _ENTERING


@dataclass
class StageRun:
    """A stage run as the pass knows it; the steps update it as they move it on."""

    id: int
    stage_index: int
    state: str
    request_id: int
    attempt: int
    deployed_at: datetime | None
    freeze_override: Any
    reason: str | None = ""
    requested_at: datetime | None = None
    updated_at: datetime | None = None
    """When it entered its state (the steps set it as they move it; telemetry reads it)."""
    requested_by: str | None = None


@dataclass
class ActiveRelease:
    id: int
    app_set: str
    name: str
    lane: str
    digest: str
    guard_override: Any = None
    source_root: str | None = None
    runs: list[StageRun] = field(default_factory=list)
    content: ReleaseContent | None = None

    @property
    def ref(self) -> str:
        return f"{self.app_set}/{self.name}"

    @property
    def parsed(self) -> ReleaseContent:
        assert self.content is not None, "read() parses the content of every active release"
        return self.content

    @property
    def stages(self) -> list[Stage]:
        return self.parsed.stages(self.lane)

    def deployment_keys(self, run: StageRun) -> list[str]:
        """The idempotency keys of the deployments of the run's current attempt."""
        return [f"{self.id}/{env}/{run.attempt}"
                for env in self.stages[run.stage_index].environments]

    def check_plan(self, run: StageRun) -> list[PlannedCheck]:
        return check_plan(self.id, self.parsed, run.stage_index, run.attempt,
                          self.stages[run.stage_index])

    def facts(self, run: StageRun, context: Context, *, approvals: list[Approval],
              deployments: list[Any], checks: dict[str, Any]) -> StageFacts:
        return stage_facts(
            release_id=self.id, release_state="active", lane=self.lane, app_set=self.app_set,
            digest=self.digest, content=self.parsed, runs=self.runs, index=run.stage_index,
            guard_overridden=self.guard_override is not None, context=context,
            approvals=approvals, deployments=deployments, checks=checks)


@dataclass
class PassState:
    releases: list[ActiveRelease]
    newest_deployment: int = 0
    newest_prerelease: int = 0
    approvals: dict[int, list[Approval]] = field(default_factory=dict)
    """By stage run id: the approvals given, for stages awaiting approval."""
    deployments: dict[str, Any] = field(default_factory=dict)
    """By key: the deployments of the current attempt of deploying stages."""
    check_runs: dict[str, Any] = field(default_factory=dict)
    """By key: the check runs of the current attempt of verifying stages."""
    context: Context = field(default_factory=Context)
    """Freeze windows, hotfixes in production, occupants of queued stages' environments."""

    def facts(self, release: ActiveRelease, run: StageRun,
              inserted: dict[str, Any] | None = None) -> StageFacts:
        """The stage's facts as this pass read them, with the check runs `inserted` since."""
        deps = [d for key in release.deployment_keys(run)
                if (d := self.deployments.get(key)) is not None]
        checks = {**self.check_runs, **inserted} if inserted else self.check_runs
        return release.facts(run, self.context, approvals=self.approvals.get(run.id, []),
                             deployments=deps, checks=checks)


def read(services: Services, conn: Connection, revision: int | None = None) -> PassState:
    """What the pass knows; `revision` is the manifests' revision read in this transaction
    (the looks), if it was."""
    active: dict[int, ActiveRelease] = {}
    newest = None
    for row in conn.execute(_ACTIVE):
        newest = row
        release = active.get(row.release_id)
        if release is None:
            release = active[row.release_id] = ActiveRelease(
                row.release_id, row.app_set, row.name, row.lane, row.digest,
                row.guard_override, row.source_root)
        release.runs.append(StageRun(row.id, row.stage_index, row.state, row.request_id,
                                     row.attempt, row.deployed_at, row.freeze_override,
                                     row.reason, row.requested_at, row.updated_at,
                                     row.requested_by))
    state = PassState(list(active.values()))
    if newest is None:  # nothing active: ask for the newest ids alone
        marks = conn.execute(NEWEST).one()
        state.newest_deployment, state.newest_prerelease = marks.deployment, marks.prerelease
    else:
        state.newest_deployment = newest.newest_deployment
        state.newest_prerelease = newest.newest_prerelease
    state.newest_deployment = state.newest_deployment or 0
    state.newest_prerelease = state.newest_prerelease or 0
    if not state.releases:
        return state
    awaiting: list[int] = []
    deploying: list[str] = []
    verifying: list[str] = []
    queued: set[str] = set()
    guarded: set[str] = set()
    for release in state.releases:
        release.content = release_content.load(conn, release.id, release.digest)
        if guard_may_hold(release.lane, release.runs):
            guarded.add(release.app_set)
        for run in release.runs:
            stage = release.stages[run.stage_index]
            if run.state == StageState.AWAITING_APPROVAL:
                if stage.approvals:
                    awaiting.append(run.id)
                # no occupants: they hold no stage awaiting approval, and one that clears in
                # this pass reads them in its write transaction (`steps`), locked, anyway
            elif run.state == StageState.QUEUED:
                queued.update(stage.environments)  # busy: the pass opens no transaction
            elif run.state == StageState.DEPLOYING:
                deploying.extend(release.deployment_keys(run))
            elif run.state == StageState.VERIFYING:
                verifying.extend(check.key for check in release.check_plan(run))
    if awaiting:
        state.approvals = approvals_by_run(conn, awaiting)
    if deploying:
        found = (conn.execute(_DEPLOYMENT, {"key": deploying[0]}) if len(deploying) == 1
                 else conn.execute(_DEPLOYMENTS, {"keys": deploying}))
        state.deployments = {d.key: d for d in found}
    if verifying:
        state.check_runs = {c.key: c for c in conn.execute(CHECK_RUNS, {"keys": verifying})}
    state.context = read_context(services, conn, app_sets=sorted(guarded), revision=revision,
                                 environments=sorted(queued))
    return state
