"""Delivery insights: how fast and how safely releases reach production, from the records.

The four DORA figures, computed from what Infrastream already keeps (pure: the facts and the
period are passed in):

- deployment frequency: successful deployments per environment tier, per day of the period;
- lead time for changes: from a build being recorded (`version record`) to the first
  production deployment of a release carrying it (median and 90th percentile);
- change failure rate: the share of production deployments of regular releases that were
  followed by a rollback from, or a hotfix on top of, that release;
- time to restore: from a hotfix being started (its incident) to it running in production.

And where the time goes: for every stage that ran, how long it waited for sign-offs, for its
environment to be free, for its deployment, for its checks and for its soak — the phases the
readiness blockers describe (`approval-missing`, `env-busy`, `deploying`, `check-running`,
`soak-remaining`). Every figure keeps the releases behind it, so a face can link to them.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

PHASES = ("approval", "queue", "deploy", "checks", "soak")
"""Where a stage's time goes, in the order it passes through them."""
PHASE_CODES = {"approval": "approval-missing", "queue": "env-busy", "deploy": "deploying",
               "checks": "check-running", "soak": "soak-remaining"}


@dataclass(frozen=True)
class Deployment:
    release: str
    lane: str
    environment: str
    tier: str
    finished_at: datetime
    healthy: bool
    rollback: bool = False


@dataclass(frozen=True)
class ShippedVersion:
    """A build of an application and when the release carrying it first ran in production."""

    release: str
    app: str
    recorded_at: datetime
    in_production_at: datetime


@dataclass(frozen=True)
class Restore:
    release: str
    incident: str
    started_at: datetime
    in_production_at: datetime | None


@dataclass(frozen=True)
class StageTimes:
    """One stage run's timeline (from the audit trail): None for a moment it never reached."""

    release: str
    stage: str
    requested_at: datetime | None
    cleared_at: datetime | None
    started_at: datetime | None
    deployed_at: datetime | None
    finished_at: datetime | None
    soak_seconds: int = 0


@dataclass(frozen=True)
class Facts:
    since: datetime
    until: datetime
    deployments: Sequence[Deployment] = ()
    shipped: Sequence[ShippedVersion] = ()
    failed_releases: frozenset[str] = frozenset()
    """Regular releases rolled back from, or hotfixed, in production."""
    restores: Sequence[Restore] = ()
    stages: Sequence[StageTimes] = ()


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None
    unit: str
    text: str
    releases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Insights:
    since: datetime
    until: datetime
    frequency: dict[str, float]
    """Successful deployments per day, by tier."""
    deployments_by_tier: dict[str, int]
    lead_time: Figure
    lead_time_p90: Figure
    failure_rate: Figure
    time_to_restore: Figure
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    """By stage name: seconds spent per phase, summed over the period's stage runs."""
    stage_runs: dict[str, int] = field(default_factory=dict)


def _seconds(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None or end < start:
        return 0.0
    return (end - start).total_seconds()


def human(seconds: float | None) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `12s`."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * (len(ordered) - 1))))
    return ordered[index]


def compute(facts: Facts) -> Insights:
    inside = [d for d in facts.deployments if facts.since <= d.finished_at <= facts.until]
    healthy = [d for d in inside if d.healthy]
    days = max(_seconds(facts.since, facts.until) / 86400, 1 / 86400)
    by_tier: dict[str, int] = {}
    for deployment in healthy:
        by_tier[deployment.tier] = by_tier.get(deployment.tier, 0) + 1
    frequency = {tier: round(count / days, 3) for tier, count in sorted(by_tier.items())}

    shipped = [s for s in facts.shipped if facts.since <= s.in_production_at <= facts.until]
    leads = [_seconds(s.recorded_at, s.in_production_at) for s in shipped]
    lead_releases = tuple(dict.fromkeys(s.release for s in shipped))
    median = statistics.median(leads) if leads else None
    p90 = _percentile(leads, 0.9) if leads else None

    production = [d for d in healthy if d.tier == "production" and d.lane == "release"
                  and not d.rollback]
    releases = list(dict.fromkeys(d.release for d in production))
    failed = [r for r in releases if r in facts.failed_releases]
    rate = len(failed) / len(releases) if releases else None

    restores = [r for r in facts.restores if facts.since <= r.started_at <= facts.until
                and r.in_production_at is not None]
    restore_times = [_seconds(r.started_at, r.in_production_at) for r in restores]
    restore = statistics.median(restore_times) if restore_times else None

    phases: dict[str, dict[str, float]] = {}
    runs: dict[str, int] = {}
    for stage in facts.stages:
        if stage.requested_at is None or not facts.since <= stage.requested_at <= facts.until:
            continue
        verify = _seconds(stage.deployed_at, stage.finished_at)
        soak = min(float(stage.soak_seconds), verify)
        spent = {"approval": _seconds(stage.requested_at, stage.cleared_at),
                 "queue": _seconds(stage.cleared_at, stage.started_at),
                 "deploy": _seconds(stage.started_at, stage.deployed_at),
                 "checks": verify - soak, "soak": soak}
        totals = phases.setdefault(stage.stage, dict.fromkeys(PHASES, 0.0))
        for phase, seconds in spent.items():
            totals[phase] += seconds
        runs[stage.stage] = runs.get(stage.stage, 0) + 1

    return Insights(
        facts.since, facts.until, frequency, dict(sorted(by_tier.items())),
        Figure("lead time for changes", median, "seconds",
               f"median {human(median)} over {len(leads)} builds" if leads
               else "no build reached production", lead_releases),
        Figure("lead time (90th percentile)", p90, "seconds", human(p90), lead_releases),
        Figure("change failure rate", rate, "ratio",
               f"{len(failed)} of {len(releases)} production releases" if releases
               else "no production release", tuple(failed)),
        Figure("time to restore", restore, "seconds",
               f"median {human(restore)} over {len(restore_times)} hotfixes" if restore_times
               else "no hotfix reached production",
               tuple(r.release for r in restores)),
        {name: {phase: round(value, 3) for phase, value in totals.items()}
         for name, totals in phases.items()}, runs)
