"""What a release looks like to people: per stage and environment what is deployed, running,
waiting or failed, why it waits (the readiness blockers, with their codes, and the one line
"waiting for: security 0/1"), where it runs now, and whether it was rolled back.

One read transaction and a fixed handful of queries per call, whatever the number of
stages: the approvals of every stage come with the decisions, and the stages and manifests
come parsed from `release_content`. Why a stage waits is `domain.readiness`; where the
release runs is `records.deployments`: nothing here derives either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, select

from infrastream.domain.approvals import Approval
from infrastream.domain.readiness import (
    Blocker,
    Code,
    StageFacts,
    StageLine,
    blockers,
    next_stage,
    ready_line,
    release_summary,
    waiting_line,
)
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Stage
from infrastream.store.clock import utc
from infrastream.store.tables import approvals, check_runs, deployments

from ..context import Services
from ..readmodel import ReadModel
from ..records import release_content
from ..records.deployments import current, rollbacks_of
from ..records.releases import ReleaseRef, find, stage_rows
from ..records.shapes import (
    AbandonRecord,
    DeployedApp,
    FreezeOverride,
    FrozenVersion,
    GuardOverride,
    HotfixInfo,
    deployed_apps,
    versions_of,
)
from ..records.stage_facts import needs_fixes, read_context, stage_facts


class BlockerView(ReadModel):
    """Why a stage waits (`domain.readiness`): a stable code, one line, its data."""

    code: str
    text: str
    data: dict[str, Any]


class NotDeployed(ReadModel):
    name: str
    state: Literal["not-deployed"]
    runs_here: bool


class Deployment(ReadModel):
    """An environment of the stage, as its deployment (this attempt) left it."""

    name: str
    state: str
    attempt: int
    message: str
    started_at: str | None
    finished_at: str | None
    apps: list[DeployedApp]
    runs_here: bool
    """The environment runs this release now."""


class CheckLine(ReadModel):
    type: str
    environment: str
    app: str
    state: str
    summary: str


class RuleTally(ReadModel):
    role: str
    required: int
    approvers: list[str]


class Decision(ReadModel):
    user: str
    role: str
    decision: str
    """`approve` or `reject`."""
    comment: str
    at: str | None
    request: int
    current: bool
    """It belongs to the stage's current promotion request."""


class StageView(ReadModel):
    index: int
    name: str
    state: str
    attempt: int
    requested_by: str | None
    requested_at: str | None
    deployed_at: str | None
    finished_at: str | None
    reason: str
    environments: list[Deployment | NotDeployed]
    checks: list[CheckLine]
    approvals: list[RuleTally]
    decisions: list[Decision]
    freeze_override: FreezeOverride | None
    blockers: list[BlockerView]
    waiting: str
    """The one line: `waiting for: security 0/1, soak 4m left` (empty when nothing waits)."""


class ForwardPort(ReadModel):
    warnings: list[str]
    override: GuardOverride | None


class RolledBack(ReadModel):
    environment: str
    to: str
    by: str
    at: str
    reason: str
    state: str


class NextStage(ReadModel):
    index: int
    stage: str
    line: str


class ReleaseStatus(ReadModel):
    """A release per stage and environment: what runs, what waits and why, where it runs."""

    release: str
    application_set: str
    name: str
    lane: str
    track: str
    digest: str
    state: str
    incident: str | None
    created_at: str | None
    created_by: str
    versions: dict[str, FrozenVersion]
    hotfix: HotfixInfo | None
    forward_port: ForwardPort
    rolled_back: list[RolledBack]
    runs_in: list[str]
    abandoned: AbandonRecord | None
    stages: list[StageView]
    next: NextStage | None
    summary: str


def _iso(value: datetime | None) -> str | None:
    value = utc(value)
    return value.isoformat() if value else None


def release_status(services: Services, ref: ReleaseRef) -> ReleaseStatus:
    now = services.now()
    with services.db.connect() as conn:
        release = find(conn, ref, content=False)
        return status_of(services, conn, release, now)


_DEPLOYMENTS = (select(deployments).where(deployments.c.release_id == bindparam("release_id"))
                .order_by(deployments.c.id))
_CHECK_RUNS = (select(check_runs.c.key, check_runs.c.stage_index, check_runs.c.attempt,
                      check_runs.c.environment, check_runs.c.app, check_runs.c.check_type,
                      check_runs.c.state, check_runs.c.summary)
               .where(check_runs.c.release_id == bindparam("release_id"))
               .order_by(check_runs.c.id))
_DECISIONS = (select(approvals).where(approvals.c.stage_run_id.in_(
    bindparam("stage_run_ids", expanding=True))).order_by(approvals.c.id))


def status_of(services: Services, conn: Connection, release: Any,
              now: datetime) -> ReleaseStatus:
    """The status of a `releases` row, with or without its `content` (every view of a
    release's state starts here)."""
    content = release_content.of(conn, release)
    stages = content.stages(release.lane)
    rows = stage_rows(conn, release.id)
    deps = conn.execute(_DEPLOYMENTS, {"release_id": release.id}).all()
    runs = conn.execute(_CHECK_RUNS, {"release_id": release.id}).all()
    checks_by_key = {c.key: c for c in runs}
    decisions = conn.execute(_DECISIONS, {"stage_run_ids": [r.id for r in rows]}).all() \
        if rows else []
    entering = [env for row in rows if StageState(row.state) is StageState.QUEUED
                for env in stages[row.stage_index].environments]
    context = read_context(
        services, conn, environments=entering,
        app_sets=[release.app_set] if release.state == "active"
        and needs_fixes(release.lane, rows) else [])
    environments = [env for stage in stages for env in stage.environments]
    now_running = current(conn, environments)
    stage_views = []
    lines = []
    for row in rows:
        stage = stages[row.stage_index]
        given = [Approval(d.user, d.role, utc(d.at) or d.at, d.digest, d.request_id, d.comment)
                 for d in decisions if d.stage_run_id == row.id and d.decision == "approve"]
        facts = stage_facts(
            release_id=release.id, release_state=release.state, lane=release.lane,
            app_set=release.app_set, digest=release.digest, content=content, runs=rows,
            index=row.stage_index, guard_overridden=release.guard_override is not None,
            context=context, approvals=given, deployments=deps, checks=checks_by_key)
        found = blockers(facts, now)
        lines.append(StageLine(stage.display_name, facts.state, tuple(found)))
        mine = [d for d in deps if d.stage_index == row.stage_index and d.attempt == row.attempt]
        checks = [c for c in runs if c.stage_index == row.stage_index
                  and c.attempt == row.attempt]
        stage_views.append(StageView(
            index=row.stage_index,
            name=stage.display_name,
            state=row.state,
            attempt=row.attempt,
            requested_by=row.requested_by,
            requested_at=_iso(row.requested_at),
            deployed_at=_iso(row.deployed_at),
            finished_at=_iso(row.finished_at),
            reason=row.reason,
            environments=[_env_view(env, mine, now_running, release.id)
                          for env in stage.environments],
            checks=[CheckLine(type=c.check_type, environment=c.environment, app=c.app,
                              state=c.state, summary=c.summary) for c in checks]
            + _soak_view(stage, facts, found),
            approvals=[RuleTally(role=t.role, required=t.required, approvers=list(t.approvers))
                       for t in facts.tally(now).rules],
            decisions=[Decision(user=d.user, role=d.role, decision=d.decision,
                                comment=d.comment, at=_iso(d.at), request=d.request_id,
                                current=d.request_id == row.request_id)
                       for d in decisions if d.stage_run_id == row.id],
            freeze_override=FreezeOverride.model_validate(row.freeze_override)
            if row.freeze_override else None,
            blockers=[BlockerView.model_validate(b.to_json()) for b in found],
            waiting=waiting_line(facts.state, found),
        ))
    last_envs = stages[-1].environments if stages else []
    runs_in = [env for env in environments if env in now_running
               and now_running[env].release_id == release.id]
    replaced = {env: f"{now_running[env].app_set}/{now_running[env].name}" for env in last_envs
                if env in now_running and now_running[env].release_id != release.id}
    following = next_stage(lines)
    forward_port = [b.data["problem"] for line in lines for b in line.blockers
                    if b.code is Code.FORWARD_PORT]
    hotfix = content.raw.get("hotfix")
    return ReleaseStatus(
        release=f"{release.app_set}/{release.name}",
        application_set=release.app_set,
        name=release.name,
        lane=release.lane,
        track=release.track,
        digest=release.digest,
        state=release.state,
        incident=release.incident,
        created_at=_iso(release.created_at),
        created_by=release.created_by,
        versions=versions_of(content.raw),
        hotfix=HotfixInfo.model_validate(hotfix) if hotfix else None,
        forward_port=ForwardPort(
            warnings=forward_port,
            override=GuardOverride.model_validate(release.guard_override)
            if release.guard_override else None),
        rolled_back=[RolledBack.model_validate(r) for r in rollbacks_of(conn, release.id)],
        runs_in=list(dict.fromkeys(runs_in)),
        abandoned=AbandonRecord.model_validate(release.abandoned) if release.abandoned else None,
        stages=stage_views,
        next=None if following is None or release.state != "active" else NextStage(
            index=following, stage=lines[following].name, line=ready_line(lines[following])),
        summary=release_summary(
            release.state, lines, runs_in=[e for e in last_envs if e in runs_in],
            replaced=replaced, abandoned=(release.abandoned or {}).get("reason", "")),
    )


def _env_view(env: str, deps: list[Any], now_running: dict[str, Any],
              release_id: int) -> Deployment | NotDeployed:
    dep = next((d for d in deps if d.environment == env), None)
    running = env in now_running and now_running[env].release_id == release_id
    if dep is None:
        return NotDeployed(name=env, state="not-deployed", runs_here=running)
    return Deployment(name=env, state=dep.state, attempt=dep.attempt, message=dep.message,
                      started_at=_iso(dep.started_at), finished_at=_iso(dep.finished_at),
                      apps=deployed_apps(dep.result), runs_here=running)


def _soak_view(stage: Stage, facts: StageFacts, found: list[Blocker]) -> list[CheckLine]:
    """The stage's soak as a check line: its state, and the readiness blocker while it runs."""
    views = []
    for check in stage.checks:
        if check.type != "soak":
            continue
        left = next((b for b in found if b.code is Code.SOAK_REMAINING), None)
        if facts.state is StageState.SUCCEEDED:
            state, summary = "passed", f"soaked {check.duration}"
        elif facts.state is StageState.VERIFYING:
            state = "running" if left is not None else "passed"
            summary = left.text if left is not None else f"soaked {check.duration}"
        else:
            state, summary = "pending", f"soak {check.duration}"
        views.append(CheckLine(type="soak", environment="+".join(stage.environments), app="*",
                               state=state, summary=summary))
    return views
