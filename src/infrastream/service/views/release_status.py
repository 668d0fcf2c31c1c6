"""What a release looks like to people: per stage and environment what is deployed, running,
waiting or failed, and why it waits, in one line ("waiting for: security 0/1").

One read transaction and a fixed handful of queries per call, whatever the number of
stages: the approvals of every stage come with the decisions, and the stages and
manifests come parsed from `release_content`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select

from infrastream.domain.approvals import Approval, tally
from infrastream.domain.forward_port import violations
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Stage, format_duration, parse_duration
from infrastream.store.clock import utc
from infrastream.store.tables import approvals, check_runs, deployments, releases

from ..context import Services
from ..records import release_content
from ..records.deployments import rollbacks_of
from ..records.freezes import freezes_holding
from ..records.releases import ReleaseRef, active_fixes, find, stage_rows


def _iso(value: datetime | None) -> str | None:
    value = utc(value)
    return value.isoformat() if value else None


def release_status(services: Services, ref: ReleaseRef) -> dict[str, Any]:
    now = services.now()
    with services.db.connect() as conn:
        release = find(conn, ref)
        return _status(services, conn, release, now)


_DEPLOYMENTS = (select(deployments).where(deployments.c.release_id == bindparam("release_id"))
                .order_by(deployments.c.id))
_CHECK_RUNS = (select(check_runs).where(check_runs.c.release_id == bindparam("release_id"))
               .order_by(check_runs.c.id))
_DECISIONS = (select(approvals).where(approvals.c.stage_run_id.in_(
    bindparam("stage_run_ids", expanding=True))).order_by(approvals.c.id))


def _status(services: Services, conn: Connection, release: Any,
            now: datetime) -> dict[str, Any]:
    content = release_content.of_row(release)
    stages = content.stages(release.lane)
    rows = stage_rows(conn, release.id)
    deps = conn.execute(_DEPLOYMENTS, {"release_id": release.id}).all()
    runs = conn.execute(_CHECK_RUNS, {"release_id": release.id}).all()
    decisions = conn.execute(_DECISIONS, {"stage_run_ids": [r.id for r in rows]}).all() \
        if rows else []
    stage_views = []
    for row in rows:
        stage = stages[row.stage_index]
        mine = [d for d in deps if d.stage_index == row.stage_index and d.attempt == row.attempt]
        checks = [c for c in runs if c.stage_index == row.stage_index
                  and c.attempt == row.attempt]
        given = [Approval(d.user, d.role, utc(d.at) or d.at, d.digest, d.request_id, d.comment)
                 for d in decisions if d.stage_run_id == row.id and d.decision == "approve"]
        current = tally(stage.approvals, given, digest=release.digest,
                        request_id=row.request_id, now=now)
        busy = _busy_elsewhere(conn, release.id, stage) if row.state == StageState.QUEUED else {}
        view = {
            "index": row.stage_index,
            "name": stage.display_name,
            "state": row.state,
            "attempt": row.attempt,
            "requestedBy": row.requested_by,
            "requestedAt": _iso(row.requested_at),
            "deployedAt": _iso(row.deployed_at),
            "finishedAt": _iso(row.finished_at),
            "reason": row.reason,
            "environments": [_env_view(env, mine) for env in stage.environments],
            "checks": [{"type": c.check_type, "environment": c.environment, "app": c.app,
                        "state": c.state, "summary": c.summary} for c in checks]
            + _soak_view(stage, row, now),
            "approvals": [{"role": t.role, "required": t.required, "approvers": list(t.approvers)}
                          for t in current.rules],
            "decisions": [{"user": d.user, "role": d.role, "decision": d.decision,
                           "comment": d.comment, "at": _iso(d.at), "request": d.request_id}
                          for d in decisions if d.stage_run_id == row.id],
        }
        held = [f.describe() for f in freezes_holding(services, stage, release.lane, now, conn)] \
            if row.state == StageState.AWAITING_APPROVAL and row.freeze_override is None else []
        view["freezeOverride"] = row.freeze_override
        view["waiting"] = _waiting(row, rows, stages, current.missing() + held, checks, busy,
                                   now)
        stage_views.append(view)
    return {
        "release": f"{release.app_set}/{release.name}",
        "applicationSet": release.app_set,
        "name": release.name,
        "lane": release.lane,
        "track": release.track,
        "digest": release.digest,
        "state": release.state,
        "incident": release.incident,
        "createdAt": _iso(release.created_at),
        "createdBy": release.created_by,
        "versions": content.raw["versions"],
        "hotfix": content.raw.get("hotfix"),
        "forwardPort": _forward_port(conn, release),
        "rolledBack": rollbacks_of(conn, release.id),
        "stages": stage_views,
        "summary": summary_line(release.state, stage_views),
    }


def _forward_port(conn: Connection, release: Any) -> dict[str, Any]:
    warnings: list[str] = []
    if release.lane == "release" and release.state == "active":
        _production, fixes = active_fixes(conn, release.app_set)
        warnings = violations(release.content["versions"], fixes)
    return {"warnings": warnings, "override": release.guard_override}


def _env_view(env: str, deps: list[Any]) -> dict[str, Any]:
    dep = next((d for d in deps if d.environment == env), None)
    if dep is None:
        return {"name": env, "state": "not-deployed"}
    return {"name": env, "state": dep.state, "attempt": dep.attempt, "message": dep.message,
            "startedAt": _iso(dep.started_at), "finishedAt": _iso(dep.finished_at),
            "apps": (dep.result or {}).get("apps", [])}


def _soak_view(stage: Stage, row: Any, now: datetime) -> list[dict[str, Any]]:
    views = []
    for check in stage.checks:
        if check.type != "soak":
            continue
        state, summary = "pending", f"soak {check.duration}"
        deployed = utc(row.deployed_at)
        if row.state == StageState.SUCCEEDED:
            state = "passed"
        elif deployed is not None and row.state == StageState.VERIFYING:
            left = deployed + timedelta(seconds=parse_duration(check.duration)) - now
            state = "passed" if left.total_seconds() <= 0 else "running"
            summary = f"soak {format_duration(left.total_seconds())} left" if state == "running" \
                else f"soaked {check.duration}"
        views.append({"type": "soak", "environment": "+".join(stage.environments), "app": "*",
                      "state": state, "summary": summary})
    return views


def _busy_elsewhere(conn: Connection, release_id: int, stage: Stage) -> dict[str, str]:
    rows = conn.execute(select(deployments.c.environment, releases.c.app_set, releases.c.name)
                        .join(releases, releases.c.id == deployments.c.release_id)
                        .where(deployments.c.environment.in_(stage.environments)
                               & (deployments.c.state == "deploying")
                               & (deployments.c.release_id != release_id))).all()
    return {r.environment: f"{r.app_set}/{r.name}" for r in rows}


def _waiting(row: Any, rows: list[Any], stages: list[Stage], missing: list[str],
             checks: list[Any], busy: dict[str, str], now: datetime) -> str:
    state = StageState(row.state)
    if state is StageState.AWAITING_APPROVAL:
        parts = []
        if row.stage_index > 0 and rows[row.stage_index - 1].state != StageState.SUCCEEDED:
            previous = rows[row.stage_index - 1]
            parts.append(f"{stages[previous.stage_index].display_name} to succeed "
                         f"({previous.state})")
        parts.extend(missing)
        return "waiting for: " + ", ".join(parts) if parts else "cleared; starting"
    if state is StageState.QUEUED:
        if busy:
            return "waiting for: " + ", ".join(f"{env} (busy with {rel})"
                                                for env, rel in busy.items())
        return "queued"
    if state is StageState.DEPLOYING:
        return "deploying to " + ", ".join(stages[row.stage_index].environments)
    if state is StageState.VERIFYING:
        running = [f"{c.check_type} {c.app}@{c.environment}" for c in checks
                   if c.state == "running"]
        soak = _soak_view(stages[row.stage_index], row, now)
        parts = running + [s["summary"] for s in soak if s["state"] == "running"]
        return "waiting for: " + ", ".join(parts) if parts else "checks passed"
    if state in (StageState.FAILED, StageState.REJECTED):
        return str(row.reason)
    return ""


def summary_line(state: str, stages: list[dict[str, Any]]) -> str:
    if state == "completed":
        return "completed: running in " + ", ".join(
            e["name"] for e in stages[-1]["environments"]) if stages else "completed"
    active = [s for s in stages if s["state"] not in ("pending", "succeeded")]
    if active:
        stage = active[-1]
        return f"{stage['name']}: {stage['state']}" + (
            f" — {stage['waiting']}" if stage["waiting"] else "")
    done = [s for s in stages if s["state"] == "succeeded"]
    if done and len(done) < len(stages):
        following = stages[len(done)]
        needs = ", ".join(f"{a['role']} × {a['required']}" for a in following["approvals"])
        return (f"{done[-1]['name']}: succeeded — ready to promote to {following['name']}"
                + (f" (needs {needs})" if needs else ""))
    return "pending"
