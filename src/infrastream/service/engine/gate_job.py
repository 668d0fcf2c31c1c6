"""The engine's pull-request gate: move every open pull request head on, and say so.

Level-triggered like the rest of the engine: each pass reads the heads that still owe a final
status (`gate_heads.done` false) with their gate runs and pre-release runs, and

- starts the pre-release run of each application whose PR build is now known (the
  Application's `pullRequestImage`, or a build CI recorded for the head commit), through
  `prerelease.start_prerelease`, linked to the gate run in the same transaction;
- hands out a job asking the host which paths a pull request changes, for monorepo apps;
- computes each head's verdict (`domain.pull_request_gate`, wait reasons from
  `domain.readiness`) and, when it differs from the last one queued, puts the status in the
  outbox in one transaction with the head's record of it. A final verdict ends the head.

Nothing here talks to a Git host on the pass itself: the paths lookup and the deliveries
run as jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from infrastream.domain.errors import BackendError, Conflict, Invalid, NotFound
from infrastream.domain.pull_request_gate import AppRun, AppState, HeadState, head_verdict
from infrastream.domain.readiness import Occupant, RunFacts, prerelease_blockers, prerelease_line
from infrastream.domain.roles import scm_actor
from infrastream.manifests import Application, Bundle
from infrastream.manifests.source import fill_template
from infrastream.scm import CommitStatus, StatusState
from infrastream.store.tables import app_versions, gate_heads, gate_runs, prerelease_runs

from .. import scm_outbox
from ..context import Services
from ..prerelease import start_prerelease
from ..records.manifests import current_bundle
from ..records.occupancy import occupants
from ..scm_connections import Connected, connected

log = logging.getLogger("infrastream.gate")
Job = tuple[str, Callable[..., None], Any]

REFRESH = timedelta(seconds=10)
"""A waiting head's description (its queue position) is redrawn at most this often: a queue
of a hundred runs must not cost the host thousands of status requests."""
_OPEN = select(gate_heads).where(gate_heads.c.done.is_(False)).order_by(gate_heads.c.id)


class _Raced(Exception):
    """Another server started this gate run first."""


def follow_heads(services: Services) -> list[Job]:
    now = services.now()
    with services.db.connect() as conn:
        heads = conn.execute(_OPEN).all()
        if not heads:
            return []
        runs = conn.execute(
            select(gate_runs, prerelease_runs.c.state.label("run_state"),
                   prerelease_runs.c.summary.label("run_summary"),
                   prerelease_runs.c.environment)
            .outerjoin(prerelease_runs, prerelease_runs.c.id == gate_runs.c.run_id)
            .where(gate_runs.c.head_id.in_([h.id for h in heads]))
            .order_by(gate_runs.c.id)).all()
        queue = conn.execute(select(prerelease_runs.c.id, prerelease_runs.c.environment)
                             .where(prerelease_runs.c.state == "queued")).all()
        busy = occupants(conn, {q.environment for q in queue})
        builds = _recorded_builds(conn, heads, runs)
    bundle = current_bundle(services)
    scms: dict[str, Connected | None] = {}
    jobs: list[Job] = []
    for head in heads:
        mine = [r for r in runs if r.head_id == head.id]
        try:
            if head.state == HeadState.OPEN:
                if any(r.state == AppState.PATHS for r in mine):
                    jobs.append((f"gate:paths:{head.id}", check_paths, head.id))
                if _start_ready(services, head, mine, bundle, builds):
                    continue  # judged on the next pass, with the new run
            if head.connection not in scms:
                scms[head.connection] = _connected(services, head.connection)
            _report(services, head, mine, queue, busy, scms[head.connection], now)
        except Exception:  # one head's trouble must not hold up the others
            log.exception("gate step of %s %s at %s failed", head.repository, head.ref,
                          head.sha[:7])
    return jobs


def _start_ready(services: Services, head: Any, runs: list[Any], bundle: Bundle,
                 builds: dict[tuple[str, str], str]) -> bool:
    """Start the runs whose PR build is known; whether anything changed (the engine is
    woken then, and the head judged on the next pass)."""
    started = False
    for run in runs:
        if run.state != AppState.BUILD:
            continue
        app = bundle.applications.get(run.app)
        if app is None:
            _set(services, run.id, AppState.BUILD, AppState.ERROR,
                 f"application `{run.app}` no longer exists")
            started = True
            continue
        image = _build_of(app, head, builds)
        if image is None:
            continue

        def link(conn: Connection, run_id: int, row_id: int = run.id) -> None:
            if not conn.execute(update(gate_runs).where(
                    (gate_runs.c.id == row_id) & (gate_runs.c.state == AppState.BUILD))
                    .values(state="started", run_id=run_id,
                            updated_at=services.now())).rowcount:
                raise _Raced

        cause = {"scm": head.connection, "delivery": head.delivery_id, "author": head.author,
                 "pullRequest": head.number, "repository": head.repository}
        try:
            start_prerelease(services, scm_actor(head.connection), run.app, image, head.ref,
                             head.sha, cause=cause, link=link)
            started = True
        except _Raced:
            continue
        except (Invalid, Conflict, NotFound) as exc:
            _set(services, run.id, AppState.BUILD, AppState.ERROR, exc.reason)
            started = True
    if started:
        services.notify()
    return started


def _prefixes(sha: str) -> set[str]:
    """How CI may write a commit: in full, or abbreviated to 7 to 12 characters."""
    return {sha[:n] for n in range(7, 13)} | {sha}


def _recorded_builds(conn: Connection, heads: Sequence[Any],
                     runs: Sequence[Any]) -> dict[tuple[str, str], str]:
    """The PR builds CI recorded for the commits runs wait for: (app, commit) -> image, the
    newest per pair (one query for the whole pass)."""
    waiting = [r for r in runs if r.state == AppState.BUILD]
    if not waiting:
        return {}
    shas = {h.id: h.sha for h in heads}
    commits = set().union(*(_prefixes(shas[r.head_id]) for r in waiting))
    found: dict[tuple[str, str], str] = {}
    for row in conn.execute(select(app_versions.c.app, app_versions.c.commit,
                                   app_versions.c.image).where(
            (app_versions.c.channel == "pull-request")
            & app_versions.c.app.in_({r.app for r in waiting})
            & app_versions.c.commit.in_(sorted(commits))).order_by(app_versions.c.id)):
        found[(row.app, row.commit)] = row.image
    return found


def _build_of(app: Application, head: Any, builds: dict[tuple[str, str], str]) -> str | None:
    """The PR build of the head's commit: named by the template, or recorded by CI."""
    template = app.spec.pull_request_image
    if template and (head.number is not None or "{number}" not in template):
        return fill_template(template, sha=head.sha, number=head.number)
    return next((builds[(app.metadata.name, c)] for c in sorted(_prefixes(head.sha),
                                                               key=len, reverse=True)
                 if (app.metadata.name, c) in builds), None)


def _connected(services: Services, name: str) -> Connected | None:
    try:
        return connected(services, name)
    except NotFound:
        return None


def _report(services: Services, head: Any, runs: list[Any], queue: Sequence[Any],
            busy: list[Occupant], scm: Connected | None, now: datetime) -> None:
    if scm is None:
        _finish(services, head, None, "its SCM connection was removed", now)
        return
    verdict = head_verdict(HeadState(head.state), [_app_run(head, r, queue, busy) for r in runs],
                           superseded_by=head.superseded_by, reason=head.reason)
    url = scm.run_url(verdict.run_id) if verdict.run_id is not None \
        else f"{scm.public_url}/portal/pull-requests/{head.id}"
    reported = {"state": verdict.state.value, "description": verdict.description, "url": url}
    last = dict(head.reported or {})
    said_at = last.pop("at", None)
    churn = verdict.run_id is not None and _same_wait(reported, last, verdict.state.final)
    if reported == last or (churn and said_at and
                            now - datetime.fromisoformat(said_at) < REFRESH):
        return
    reported["at"] = now.isoformat()
    status = CommitStatus(StatusState(verdict.state.value), verdict.description, url,
                          scm.context, head.head_branch or None)
    _finish(services, head, (scm, status, reported), "", now, final=verdict.state.final)


def _same_wait(new: dict[str, Any], old: dict[str, Any], final: bool) -> bool:
    """Only the words of a run's wait changed (its queue position moved): the same run,
    still in the same state. Such news is redrawn at most every REFRESH."""
    return not final and new["state"] == old.get("state") and new["url"] == old.get("url")


def _finish(services: Services, head: Any,
            queued: tuple[Connected, CommitStatus, dict[str, Any]] | None, reason: str,
            now: datetime, *, final: bool = True) -> None:
    with services.transaction() as conn:
        values: dict[str, Any] = {"done": final, "updated_at": now}
        if queued is not None:
            scm, status, reported = queued
            scm_outbox.enqueue(conn, connection=scm.name, repository=head.repository,
                               sha=head.sha, status=status, subject=head.ref, now=now)
            values["reported"] = reported
        else:
            values["reason"] = reason
        conn.execute(update(gate_heads).where(gate_heads.c.id == head.id).values(**values))


def _app_run(head: Any, run: Any, queue: Sequence[Any], busy: list[Occupant]) -> AppRun:
    state = run.state
    environment = run.environment or ""
    if state in (AppState.PATHS, AppState.BUILD):
        facts = RunFacts(head.sha, environment, build=False,
                         paths_known=state != AppState.PATHS)
        return AppRun(run.app, AppState(state), line=prerelease_line(
            facts, prerelease_blockers(facts)))
    if state != "started":
        return AppRun(run.app, AppState(state), summary=run.reason)
    if run.run_state == "queued":
        ahead = sum(1 for q in queue if q.environment == environment and q.id < run.run_id)
        facts = RunFacts(head.sha, environment, build=True, queued=True, ahead=ahead,
                         occupants=tuple(o for o in busy if o.environment == environment))
        return AppRun(run.app, AppState.QUEUED, line=prerelease_line(
            facts, prerelease_blockers(facts)), run_id=run.run_id, environment=environment)
    mapped = {"running": AppState.RUNNING, "passed": AppState.PASSED,
              "failed": AppState.FAILED, "canceled": AppState.CANCELED}
    return AppRun(run.app, mapped.get(run.run_state, AppState.ERROR),
                  summary=run.run_summary or "", run_id=run.run_id, environment=environment)


def check_paths(services: Services, head_id: int) -> None:
    """The job: ask the host which paths the pull request changes, then keep the apps whose
    `path` it touches (all of them when the host cannot say: better validated than not)."""
    with services.db.connect() as conn:
        head = conn.execute(select(gate_heads).where(gate_heads.c.id == head_id)).one()
        waiting = conn.execute(select(gate_runs).where(
            (gate_runs.c.head_id == head_id) & (gate_runs.c.state == AppState.PATHS))).all()
    if not waiting:
        return
    paths: tuple[str, ...] | None
    note = ""
    try:
        if head.number is None:
            raise Invalid("a merge group has no pull request to ask")
        paths = connected(services, head.connection).provider.changed_paths(
            head.repository, head.number)
    except (BackendError, Invalid, NotFound) as exc:
        paths, note = None, f"changed paths unknown ({exc.reason}): validated anyway"
    bundle = current_bundle(services)
    for run in waiting:
        app = bundle.applications.get(run.app)
        source = app.spec.source if app is not None else None
        if paths is None or source is None or source.touches(paths):
            _set(services, run.id, AppState.PATHS, AppState.BUILD, note)
        else:
            _set(services, run.id, AppState.PATHS, AppState.SKIPPED,
                 f"nothing below {source.path} changed for {run.app}")


def _set(services: Services, row_id: int, expected: AppState, state: AppState,
         reason: str) -> None:
    with services.transaction() as conn:
        conn.execute(update(gate_runs).where(
            (gate_runs.c.id == row_id) & (gate_runs.c.state == expected))
            .values(state=state, reason=reason[:1000], updated_at=services.now()))
