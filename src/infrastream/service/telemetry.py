"""This process's Prometheus instruments: counters and histograms of what it did.

They are per process (each server counts its own work; Prometheus sums them). What describes
the database (releases by lane and state) is not here: `api/metrics.py` reads it at scrape
time, so every server reports the same truth. Labels are low-cardinality by rule: lanes,
states, environments, check types, route templates, stage positions, readiness codes and
roles; never a release name.

How long a stage took and what held it are observed when a stage run moves on, by the one
server whose compare-and-set moved it, from the timestamps stored on the run (so the figures
are right across several servers and restarts), once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Connection, bindparam, func, select

from infrastream.domain.readiness import StageFacts, held
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Stage
from infrastream.store.clock import utc
from infrastream.store.tables import check_runs

WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400,
                259200, 604800, float("inf"))
"""Seconds to a week: stages and sign-offs wait from seconds (a soak) to days."""

ENGINE_PASS = Histogram("infrastream_engine_pass_seconds", "Duration of one engine pass")
ENGINE_BACKLOG = Gauge("infrastream_engine_backlog_releases",
                       "Active releases the last engine pass of this server looked at")
ENGINE_JOBS = Gauge("infrastream_engine_jobs_in_flight",
                    "Deployment and check jobs this server is running, by kind", ["kind"])
DEPLOYMENTS = Counter("infrastream_deployments_total",
                      "Deployments finished by this server, by environment and outcome",
                      ["environment", "outcome"])
DEPLOYMENT_RETRIES = Counter("infrastream_deployment_retries_total",
                             "Retries after a transient target failure, by environment",
                             ["environment"])
DEPLOYMENT_SECONDS = Histogram("infrastream_deployment_seconds",
                               "Time a deployment took at the target", ["environment"])
CHECKS = Counter("infrastream_checks_total", "Stage checks finished, by type and outcome",
                 ["check", "outcome"])
CHECK_SECONDS = Histogram("infrastream_check_seconds", "Duration of a stage check", ["check"])
STAGE_SECONDS = Histogram("infrastream_stage_seconds",
                          "Time from a stage's promotion request to its end, by lane, stage "
                          "position (1 = first) and outcome", ["lane", "stage", "outcome"],
                          buckets=WAIT_BUCKETS)
BLOCKED_SECONDS = Histogram("infrastream_stage_blocked_seconds",
                            "Time a stage run was held by a readiness code, observed when it "
                            "moved on, by lane, stage position and code",
                            ["lane", "stage", "code"], buckets=WAIT_BUCKETS)
APPROVAL_WAIT = Histogram("infrastream_approval_wait_seconds",
                          "Time from a promotion request to each approval of it, by lane "
                          "and role", ["lane", "role"], buckets=WAIT_BUCKETS)
HTTP_SECONDS = Histogram("infrastream_http_request_seconds",
                         "HTTP request duration by method, route template and status",
                         ["method", "route", "status"])
SCM_STATUSES = Counter("infrastream_scm_status_deliveries_total",
                       "Commit statuses sent to the SCM host (outbox), by outcome",
                       ["outcome"])
NOTIFICATION_DELIVERIES = Counter("infrastream_notification_deliveries_total",
                        "Notifications sent to channels (outbox), by channel kind and outcome "
                        "(delivered, retried, failed)", ["kind", "outcome"])
WEBHOOKS = Counter("infrastream_webhooks_received_total",
                   "SCM webhook deliveries received, by outcome", ["outcome"])

_ENDS = frozenset({StageState.SUCCEEDED, StageState.FAILED, StageState.REJECTED})
_CHECKS_DONE = select(func.max(check_runs.c.finished_at)).where(
    (check_runs.c.release_id == bindparam("release_id"))
    & (check_runs.c.stage_index == bindparam("stage_index"))
    & (check_runs.c.attempt == bindparam("attempt"))
    & check_runs.c.state.in_(("passed", "failed")))
"""When the checks of a stage run's attempt finished (the last of them)."""


def stage_left(conn: Connection, lane: str, run: Any, previous: Any | None,
               facts: StageFacts, to_state: str, now: datetime) -> Callable[[], None]:
    """What to observe of a stage run that leaves `facts.state` for `to_state` `now`: the
    time each readiness code held it (`readiness.held`), and its duration when it ends.
    `run` and `previous` (the run of the stage before) are stored stage runs as read before
    the move; call the result once the transaction that moved it has committed."""
    entered = utc((run.requested_at if facts.state is StageState.AWAITING_APPROVAL else None)
                  or run.updated_at)
    if entered is None:
        return _nothing
    previous_done = (utc(previous.updated_at) if previous is not None
                     and previous.state == StageState.SUCCEEDED else None)
    checks_done = None
    if facts.state is StageState.VERIFYING and facts.checks:  # no checks planned: no runs
        checks_done = utc(conn.execute(_CHECKS_DONE, {
            "release_id": facts.release_id, "stage_index": facts.index,
            "attempt": run.attempt}).scalar())
    codes = held(facts, entered, now, previous_done=previous_done, checks_done=checks_done)
    stage = str(facts.index + 1)
    requested = utc(run.requested_at)
    took = ((now - requested).total_seconds()
            if StageState(to_state) in _ENDS and requested is not None else None)

    def observe() -> None:
        for code, seconds in codes:
            BLOCKED_SECONDS.labels(lane, stage, code.value).observe(seconds)
        if took is not None:
            STAGE_SECONDS.labels(lane, stage, to_state).observe(max(took, 0.0))
    return observe


def run_left(conn: Connection, release: Any, row: Any, stage: Stage, to_state: str,
             now: datetime) -> Callable[[], None]:
    """`stage_left` for a person's move of a stored stage run (a promotion request, a
    rejection), judged on the run's own facts."""
    facts = StageFacts(stage, row.stage_index, StageState(row.state), release_id=release.id,
                       lane=release.lane, request_id=row.request_id)
    return stage_left(conn, release.lane, row, None, facts, to_state, now)


def approval_given(lane: str, role: str, requested_at: datetime | None,
                   now: datetime) -> None:
    """An approval `now` of a promotion requested at `requested_at` (stored on the run)."""
    requested = utc(requested_at)
    if requested is not None:
        APPROVAL_WAIT.labels(lane, role).observe(max((now - requested).total_seconds(), 0.0))


def _nothing() -> None:
    pass
NOTIFICATIONS = Counter("infrastream_notifications_total",
                        "Notifications recorded by this server (once per key), by kind",
                        ["kind"])
