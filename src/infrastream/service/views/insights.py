"""Delivery insights from the records (`domain.insights` computes; this reads the facts).

Deployments give the frequency per tier and what reached production when; releases give
the builds they carried (and `app_versions` when each was recorded); rollbacks and hotfixes
mark the production releases that failed; the audit trail gives each stage's timeline
(requested, cleared, deployment started, deployed, finished). Reads are bounded by the
period and, for the audit trail, go through its (object type, object id) index for the
releases concerned only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select

from infrastream.domain.insights import (
    PHASE_CODES,
    PHASES,
    Deployment,
    Facts,
    Insights,
    Restore,
    ShippedVersion,
    StageTimes,
    compute,
    human,
)
from infrastream.manifests import parse_duration
from infrastream.store.clock import utc
from infrastream.store.tables import app_versions, audit_log, deployments, releases, rollbacks

from ..context import Services
from ..readmodel import ReadModel
from ..records import release_content
from ..records.manifests import current_bundle

TIMELINE = ("release.create", "promotion.request", "promotion.cleared", "deployment.start",
            "stage.deployed", "stage.succeed", "stage.fail")
_DEPLOYMENTS = (
    select(deployments.c.release_id, deployments.c.environment, deployments.c.state,
           deployments.c.finished_at, deployments.c.id, rollbacks.c.id.label("rollback_id"),
           releases.c.app_set, releases.c.name, releases.c.lane, releases.c.track)
    .join(releases, releases.c.id == deployments.c.release_id)
    .outerjoin(rollbacks, rollbacks.c.deployment_id == deployments.c.id)
    .where(deployments.c.finished_at.is_not(None)
           & (deployments.c.finished_at <= bindparam("until")))
    .order_by(deployments.c.finished_at, deployments.c.id))


def insights(services: Services, *, days: int = 30, until: datetime | None = None,
             track: str | None = None) -> InsightsView:
    """The figures for the `days` before `until` (default: now), optionally of one track."""
    end = until or services.now()
    start = end - timedelta(days=days)
    tiers = {name: env.spec.tier.value for name, env in
             current_bundle(services).environments.items()}
    with services.db.connect() as conn:
        facts = _facts(conn, start, end, track, tiers)
    return _json(compute(facts), track, days)


def _tier(tiers: dict[str, str], environment: str) -> str:
    return tiers.get(environment, "development")


def _facts(conn: Connection, start: datetime, end: datetime, track: str | None,
           tiers: dict[str, str]) -> Facts:
    rows = [r for r in conn.execute(_DEPLOYMENTS, {"until": end})
            if track is None or r.track == track]
    deps = [Deployment(f"{r.app_set}/{r.name}", r.lane, r.environment,
                       _tier(tiers, r.environment), utc(r.finished_at) or r.finished_at,
                       r.state == "healthy", r.rollback_id is not None) for r in rows]
    production = [r for r in rows if r.state == "healthy" and r.rollback_id is None
                  and _tier(tiers, r.environment) == "production"]
    first_in_production: dict[int, datetime] = {}
    for row in production:
        first_in_production.setdefault(row.release_id, utc(row.finished_at) or row.finished_at)
    shipped = _shipped(conn, first_in_production)
    wanted = {r.release_id for r in rows}
    info = {r.id: r for r in conn.execute(select(
        releases.c.id, releases.c.app_set, releases.c.name, releases.c.lane,
        releases.c.incident, releases.c.created_at, releases.c.base_release_id,
        releases.c.digest, releases.c.content, releases.c.track)
        .where(releases.c.created_at >= start - timedelta(days=30))
        .where(releases.c.created_at <= end))
        if track is None or r.track == track}
    refs = {rid: f"{r.app_set}/{r.name}" for rid, r in info.items()}
    failed = {refs[r.base_release_id] for r in info.values()
              if r.lane == "hotfix" and r.base_release_id in refs}
    for back in conn.execute(select(rollbacks.c.from_release_id, rollbacks.c.environment)):
        if back.from_release_id in refs and _tier(tiers, back.environment) == "production":
            failed.add(refs[back.from_release_id])
    restores = [Restore(refs[rid], r.incident or "", utc(r.created_at) or r.created_at,
                        first_in_production.get(rid))
                for rid, r in info.items() if r.lane == "hotfix"]
    stages = _timelines(conn, {rid: r for rid, r in info.items()
                               if rid in wanted or (utc(r.created_at) or r.created_at) >= start})
    return Facts(start, end, deps, shipped, frozenset(failed), restores, stages)


def _shipped(conn: Connection, first: dict[int, datetime]) -> list[ShippedVersion]:
    """Each build, with the first production deployment of a release that carried it."""
    if not first:
        return []
    found = conn.execute(select(releases.c.id, releases.c.app_set, releases.c.name,
                                releases.c.digest, releases.c.content)
                         .where(releases.c.id.in_(list(first)))).all()
    versions: dict[int, tuple[str, str, datetime]] = {}
    for row in sorted(found, key=lambda r: first[r.id]):
        for app, version in release_content.of_row(row).versions.items():
            versions.setdefault(int(version["id"]), (f"{row.app_set}/{row.name}", app,
                                                     first[row.id]))
    recorded = {r.id: utc(r.recorded_at) or r.recorded_at for r in conn.execute(
        select(app_versions.c.id, app_versions.c.recorded_at)
        .where(app_versions.c.id.in_(list(versions))))}
    return [ShippedVersion(release, app, recorded[vid], at)
            for vid, (release, app, at) in versions.items() if vid in recorded]


def _timelines(conn: Connection, concerned: dict[int, Any]) -> list[StageTimes]:
    refs = {f"{r.app_set}/{r.name}": r for r in concerned.values()}
    if not refs:
        return []
    entries = conn.execute(select(audit_log.c.at, audit_log.c.action, audit_log.c.object_id,
                                  audit_log.c.after)
                           .where((audit_log.c.object_type == "release")
                                  & audit_log.c.object_id.in_(list(refs))
                                  & audit_log.c.action.in_(TIMELINE))
                           .order_by(audit_log.c.seq)).all()
    open_runs: dict[tuple[str, str], dict[str, Any]] = {}
    done: list[StageTimes] = []
    for entry in entries:
        row = refs[entry.object_id]
        stages = release_content.of_row(row).stages(row.lane)
        stage = stages[0].display_name if entry.action == "release.create" \
            else str((entry.after or {}).get("stage", ""))
        at = utc(entry.at) or entry.at
        key = (entry.object_id, stage)
        if entry.action in ("release.create", "promotion.request"):
            open_runs[key] = {"requested_at": at, "soak": _soak(stages, stage)}
            continue
        run = open_runs.get(key)
        if run is None:
            continue
        field = {"promotion.cleared": "cleared_at", "deployment.start": "started_at",
                 "stage.deployed": "deployed_at"}.get(entry.action)
        if field is not None:
            run[field] = at
            continue
        done.append(StageTimes(entry.object_id, stage, run.get("requested_at"),
                               run.get("cleared_at"), run.get("started_at"),
                               run.get("deployed_at"), at, run["soak"]))
        del open_runs[key]
    return done


def _soak(stages: Iterable[Any], name: str) -> int:
    for stage in stages:
        if stage.display_name == name:
            return max((parse_duration(c.duration) for c in stage.checks if c.type == "soak"),
                       default=0)
    return 0


class FigureView(ReadModel):
    name: str
    value: float | None
    """Seconds, or a ratio (0 to 1) for the change failure rate; None: nothing to measure."""
    unit: str
    text: str
    releases: list[str]
    """The releases behind the figure."""
    human: str | None = None


class FrequencyView(ReadModel):
    per_day: dict[str, float]
    """Successful deployments per day, by environment tier."""
    deployments: dict[str, int]


class PhaseView(ReadModel):
    phase: str
    code: str
    """The readiness blocker code the phase is spent in."""


class StageTime(ReadModel):
    stage: str
    runs: int
    seconds: dict[str, float]
    """By phase: seconds spent, summed over the period's runs of the stage."""


class InsightsView(ReadModel):
    """How fast and how safely releases reached production over a period."""

    since: str
    until: str
    days: int
    track: str | None
    deployment_frequency: FrequencyView
    lead_time: FigureView
    lead_time_p90: FigureView
    change_failure_rate: FigureView
    time_to_restore: FigureView
    phases: list[PhaseView]
    time_by_stage: list[StageTime]


def _json(found: Insights, track: str | None, days: int) -> InsightsView:
    def figure(item: Any) -> FigureView:
        data = asdict(item)
        data["releases"] = list(item.releases)
        data["human"] = human(item.value) if item.unit == "seconds" else None
        return FigureView.model_validate(data)

    return InsightsView(
        since=found.since.isoformat(), until=found.until.isoformat(), days=days, track=track,
        deployment_frequency=FrequencyView(per_day=found.frequency,
                                           deployments=found.deployments_by_tier),
        lead_time=figure(found.lead_time), lead_time_p90=figure(found.lead_time_p90),
        change_failure_rate=figure(found.failure_rate),
        time_to_restore=figure(found.time_to_restore),
        phases=[PhaseView(phase=phase, code=PHASE_CODES[phase]) for phase in PHASES],
        time_by_stage=[StageTime(stage=stage, runs=found.stage_runs[stage], seconds=spent)
                       for stage, spent in found.phases.items()])
