"""The tracks overview: every track's lanes as columns of stages, each environment a cell
with the release running there, its health, and what waits to enter.

Bounded by design, whatever the history: per environment two newest-first lookups on the
(environment, id) index, the active releases through the `releases.state` index, their stage
runs through the (release, stage) key, and the newest pre-release runs by primary key.

Health has two sources. The recorded one is the last deployment (healthy, failed,
deploying). The live one is `drift.drift_report`, which asks the environment's target what
runs there; that may be slow (the `local` target probes every application), so it runs in
the background at most every `LIVE_TTL` seconds per environment and the overview shows its
last answer.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from infrastream.domain.freeze import frozen
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Bundle, Lane
from infrastream.store.clock import utc
from infrastream.store.tables import deployments, prerelease_runs, releases

from ..context import Services
from ..drift import drift_report
from ..health import stored_health
from ..readmodel import ReadModel
from ..records.manifests import current_bundle
from ..records.teardowns import torn_down_through
from .release_status import BlockerView, status_of

LIVE_TTL = 15.0
RECENT_PRERELEASES = 20
LANE_TITLES = {Lane.PRE_RELEASE: "Pre-release", Lane.RELEASE: "Release", Lane.HOTFIX: "Hotfix"}


def _iso(value: datetime | None) -> str | None:
    value = utc(value)
    return value.isoformat() if value else None


class QueueEntry(ReadModel):
    """A release heading into or stuck at a stage, with the one line its status gives."""

    release: str
    state: str
    line: str
    blockers: list[BlockerView]
    incident: str | None


class LastDeployment(ReadModel):
    release: str
    state: str
    message: str
    at: str | None


class ValidatingRun(ReadModel):
    id: int
    app: str
    ref: str
    state: str


class EnvironmentCell(ReadModel):
    """One environment of a stage: what runs, its health, what holds it."""

    environment: str
    tier: str
    target: str
    running: str | None
    since: str | None
    versions: dict[str, str]
    state: str
    """`empty`, `healthy`, `deploying`, `failed` …"""
    last: LastDeployment | None
    """The newest deployment when it is not what runs (it failed, or still deploys)."""
    frozen: str | None
    prerelease: ValidatingRun | None
    drift: list[str]
    live_checked_at: str | None
    health: str | None
    """The live health the engine stored for the running release (`healthy`, `unhealthy`,
    `unknown`); None when nothing runs or no health pass has looked yet."""


class StageColumn(ReadModel):
    index: int
    name: str
    approvals: list[str]
    checks: list[str]
    cells: list[EnvironmentCell]
    queue: list[QueueEntry]


class LaneColumns(ReadModel):
    lane: str
    title: str
    stages: list[StageColumn]


class SetApplications(ReadModel):
    name: str
    applications: list[str]


class TrackOverview(ReadModel):
    name: str
    sets: list[SetApplications]
    lanes: list[LaneColumns]


def tracks_overview(services: Services) -> list[TrackOverview]:
    now = services.now()
    bundle = current_bundle(services)
    with services.db.connect() as conn:
        cells = {env: _recorded(conn, env) for env in bundle.used_environments()}
        queues = _queues(services, conn, now)
        validating = _prereleases(conn)
    health = stored_health(services)
    for env, recorded in cells.items():
        recorded["health"] = health.get(env)
    tracks = []
    for name, track in bundle.tracks.items():
        lanes = []
        for lane, stages in track.spec.lanes():
            columns = []
            for index, stage in enumerate(stages):
                columns.append({
                    "index": index,
                    "name": stage.display_name,
                    "approvals": [f"{r.role} × {r.count}" if r.count > 1 else r.role
                                  for r in stage.approvals],
                    "checks": [c.type if c.type != "soak" else f"soak {c.duration}"
                               for c in stage.checks],
                    "cells": [_cell(services, bundle, cells[env], env, lane, now,
                                    validating.get(env))
                              for env in (stage.environments[:1] if lane is Lane.PRE_RELEASE
                                          else stage.environments)],
                    "queue": queues.get((name, lane.value, index), []),
                })
            lanes.append({"lane": lane.value, "title": LANE_TITLES[lane], "stages": columns})
        tracks.append(TrackOverview.model_validate(
            {"name": name,
             "sets": [{"name": s.metadata.name,
                       "applications": [a.metadata.name
                                        for a in bundle.applications_of(s.metadata.name)]}
                      for s in bundle.sets_of(name)],
             "lanes": lanes}))
    return tracks


def _recorded(conn: Connection, environment: str) -> dict[str, Any]:
    newest = (select(deployments, releases.c.app_set, releases.c.name.label("release_name"))
              .join(releases, releases.c.id == deployments.c.release_id)
              .where(deployments.c.environment == environment)
              .order_by(deployments.c.id.desc()).limit(1))
    last = conn.execute(newest).first()
    running = last if last is not None and last.state == "healthy" else conn.execute(
        newest.where(deployments.c.state == "healthy")).first()
    mark = torn_down_through(conn, environment)
    if running is not None and running.id <= mark:
        running = None  # a teardown stopped it
    if last is not None and last.id <= mark:
        last = None
    return {"last": last, "running": running}


def _cell(services: Services, bundle: Bundle, recorded: dict[str, Any], env: str, lane: Lane,
          now: datetime, prerelease: dict[str, Any] | None) -> dict[str, Any]:
    environment = bundle.environment(env)
    last, running = recorded["last"], recorded["running"]
    apps = (running.result or {}).get("apps", []) if running is not None else []
    cell: dict[str, Any] = {
        "environment": env,
        "tier": environment.spec.tier.value,
        "target": environment.spec.target.type,
        "running": f"{running.app_set}/{running.release_name}" if running is not None else None,
        "since": _iso(running.finished_at) if running is not None else None,
        "versions": {a["app"]: a["version"] for a in apps},
        "state": "empty" if last is None else (
            "healthy" if last.state == "healthy" else last.state),
        "last": None if last is None or last is running else {
            "release": f"{last.app_set}/{last.release_name}", "state": last.state,
            "message": last.message, "at": _iso(last.finished_at or last.started_at)},
        "frozen": None,
        "prerelease": prerelease,
        "drift": [],
        "liveCheckedAt": None,
        "health": None,
    }
    stored = recorded.get("health")
    if running is not None and stored is not None and stored.release == cell["running"]:
        cell["health"] = stored.state
        if cell["state"] == "healthy" and stored.state == "unhealthy":
            cell["state"] = "unhealthy"
    held = frozen(bundle.freezes.values(), env, lane.value, now)
    if held is not None:
        cell["frozen"] = held.describe()
    if running is not None and cell["state"] != "deploying" and prerelease is None:
        live = _live(services, env)
        if live is not None:
            checked, report = live
            cell["liveCheckedAt"] = checked.isoformat()
            if report is not None and report["release"] == cell["running"]:
                cell["drift"] = report["differences"]
    return cell


def _queues(services: Services, conn: Connection,
            now: datetime) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """Per (track, lane, stage): the active releases heading into or stuck at that stage,
    each with the one line its status gives (the readiness blockers)."""
    active = conn.execute(select(releases).where(releases.c.state == "active")
                          .order_by(releases.c.id)).all()
    queues: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for release in active:
        status = status_of(services, conn, release, now).to_json()
        entry = _queue_entry(status)
        if entry is not None:
            index, item = entry
            queues.setdefault((release.track, release.lane, index), []).append(
                {**item, "incident": release.incident})
    return queues


def _queue_entry(status: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """Where a release stands in the overview: the stage it is in or heading into."""
    upcoming = status["next"]
    if upcoming is not None:
        return upcoming["index"], {"release": status["release"], "state": "ready",
                                   "line": upcoming["line"],
                                   "blockers": status["stages"][upcoming["index"]]["blockers"]}
    current = next((s for s in reversed(status["stages"])
                    if s["state"] not in (StageState.PENDING, StageState.SUCCEEDED)), None)
    if current is None:
        return None
    return current["index"], {"release": status["release"], "state": current["state"],
                              "line": current["waiting"] or current["state"],
                              "blockers": current["blockers"]}


def _prereleases(conn: Connection) -> dict[str, dict[str, Any]]:
    recent = conn.execute(select(prerelease_runs.c.id, prerelease_runs.c.app,
                                 prerelease_runs.c.ref, prerelease_runs.c.environment,
                                 prerelease_runs.c.state)
                          .order_by(prerelease_runs.c.id.desc())
                          .limit(RECENT_PRERELEASES)).all()
    return {r.environment: {"id": r.id, "app": r.app, "ref": r.ref, "state": r.state}
            for r in reversed(recent) if r.state in ("queued", "running")}


# -- drift, refreshed in the background ------------------------------------------------

_live_lock = threading.Lock()
_live_cache: dict[tuple[str, str], tuple[float, datetime, dict[str, Any] | None]] = {}
_refreshing: set[tuple[str, str]] = set()


def _live(services: Services, environment: str
          ) -> tuple[datetime, dict[str, Any] | None] | None:
    """The last drift report of the environment (None before the first one arrives)."""
    key = (str(services.db.url), environment)
    with _live_lock:
        cached = _live_cache.get(key)
        start = (cached is None or time.monotonic() - cached[0] > LIVE_TTL) \
            and key not in _refreshing
        if start:
            _refreshing.add(key)
    if start:
        threading.Thread(target=_refresh, args=(services, environment, key), daemon=True,
                         name=f"drift-{environment}").start()
    return (cached[1], cached[2]) if cached is not None else None


def _refresh(services: Services, environment: str, key: tuple[str, str]) -> None:
    report: dict[str, Any] | None
    try:
        found = drift_report(services, environment)
        report = found[0].to_json() if found else None
    except Exception as exc:  # a backend or database failure is shown, never raised
        report = {"release": None, "state": "unknown",
                  "differences": [f"cannot read what runs: {exc}"]}
    with _live_lock:
        _live_cache[key] = (time.monotonic(), services.now(), report)
        _refreshing.discard(key)
