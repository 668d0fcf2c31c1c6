"""What one engine pass knows: the active releases, their stage runs and what those wait on.

A pass reads it in one read transaction and a few statements, however many releases are
active: the active releases joined with their stage runs (without `content`, which comes
parsed from `release_content`; each row also carries the newest deployment and pre-release
run ids, by which the engine notices new ones), then only what the stages in flight need:
the approvals of stages awaiting approval, the deployments of deploying stages and the check
runs of verifying ones (both by their unique keys), and who deploys to the environments
queued stages wait for. Writes re-check what they depend on in their own transaction (see
`engine_steps`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from infrastream.domain.approvals import Approval
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Stage
from infrastream.store.tables import (
    check_runs,
    deployments,
    prerelease_runs,
    releases,
    stage_runs,
)

from ..records import release_content
from ..records.release_content import ReleaseContent
from ..records.releases import approvals_by_run
from .check_job import PlannedCheck, check_plan

_NEWEST_DEPLOYMENT = select(func.max(deployments.c.id)).scalar_subquery()
_NEWEST_PRERELEASE = select(func.max(prerelease_runs.c.id)).scalar_subquery()
NEWEST = select(_NEWEST_DEPLOYMENT.label("deployment"),
                _NEWEST_PRERELEASE.label("prerelease"))
"""The newest deployment and pre-release run ids: by primary key, so nearly free."""

_ACTIVE = (
    select(_NEWEST_DEPLOYMENT.label("newest_deployment"),
           _NEWEST_PRERELEASE.label("newest_prerelease"),
           releases.c.id.label("release_id"), releases.c.app_set, releases.c.name,
           releases.c.lane, releases.c.digest, stage_runs.c.id, stage_runs.c.stage_index,
           stage_runs.c.state, stage_runs.c.request_id, stage_runs.c.attempt,
           stage_runs.c.deployed_at, stage_runs.c.freeze_override)
    .select_from(releases.join(stage_runs, stage_runs.c.release_id == releases.c.id))
    .where(releases.c.state == "active")
    .order_by(releases.c.id, stage_runs.c.stage_index))
"""Every stage run of every active release, and (on each row) the newest ids of `NEWEST`."""

_DEPLOYMENTS = (
    select(deployments.c.id, deployments.c.key, deployments.c.stage_index,
           deployments.c.environment, deployments.c.attempt, deployments.c.state,
           deployments.c.message)
    .where(deployments.c.key.in_(bindparam("keys", expanding=True))))

CHECK_RUNS = (
    select(check_runs.c.id, check_runs.c.key, check_runs.c.environment, check_runs.c.app,
           check_runs.c.check_type, check_runs.c.state, check_runs.c.summary)
    .where(check_runs.c.key.in_(bindparam("keys", expanding=True))))

BUSY = (
    select(deployments.c.environment, deployments.c.release_id)
    .where(deployments.c.environment.in_(bindparam("environments", expanding=True))
           & (deployments.c.state == "deploying")))
"""Who deploys to these environments right now (one deployment per environment at a time)."""


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


@dataclass
class ActiveRelease:
    id: int
    app_set: str
    name: str
    lane: str
    digest: str
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
    checks_read: set[int] = field(default_factory=set)
    """The stage runs whose check runs were read (chained steps read their own)."""
    busy: dict[str, set[int]] = field(default_factory=dict)
    """By environment a queued stage waits for: the releases deploying there now."""

    def busy_elsewhere(self, release_id: int, environments: Iterable[str]) -> bool:
        return any(other != release_id for env in environments
                   for other in self.busy.get(env, ()))


def read(conn: Connection) -> PassState:
    active: dict[int, ActiveRelease] = {}
    newest = None
    for row in conn.execute(_ACTIVE):
        newest = row
        release = active.get(row.release_id)
        if release is None:
            release = active[row.release_id] = ActiveRelease(
                row.release_id, row.app_set, row.name, row.lane, row.digest)
        release.runs.append(StageRun(row.id, row.stage_index, row.state, row.request_id,
                                     row.attempt, row.deployed_at, row.freeze_override))
    state = PassState(list(active.values()))
    if newest is None:  # nothing active: ask for the newest ids alone
        marks = conn.execute(NEWEST).one()
        state.newest_deployment, state.newest_prerelease = marks.deployment, marks.prerelease
    else:
        state.newest_deployment = newest.newest_deployment
        state.newest_prerelease = newest.newest_prerelease
    state.newest_deployment = state.newest_deployment or 0
    state.newest_prerelease = state.newest_prerelease or 0
    awaiting: list[int] = []
    deploying: list[str] = []
    verifying: list[str] = []
    queued: set[str] = set()
    for release in state.releases:
        release.content = release_content.load(conn, release.id, release.digest)
        for run in release.runs:
            stage = release.stages[run.stage_index]
            if run.state == StageState.AWAITING_APPROVAL and stage.approvals:
                awaiting.append(run.id)
            elif run.state == StageState.QUEUED:
                queued.update(stage.environments)
            elif run.state == StageState.DEPLOYING:
                deploying.extend(release.deployment_keys(run))
            elif run.state == StageState.VERIFYING:
                verifying.extend(check.key for check in release.check_plan(run))
                state.checks_read.add(run.id)
    if awaiting:
        state.approvals = approvals_by_run(conn, awaiting)
    if deploying:
        state.deployments = {d.key: d for d in conn.execute(_DEPLOYMENTS, {"keys": deploying})}
    if verifying:
        state.check_runs = {c.key: c for c in conn.execute(CHECK_RUNS, {"keys": verifying})}
    if queued:
        busy: dict[str, set[int]] = defaultdict(set)
        for deploying_now in conn.execute(BUSY, {"environments": sorted(queued)}):
            busy[deploying_now.environment].add(deploying_now.release_id)
        state.busy = dict(busy)
    return state
