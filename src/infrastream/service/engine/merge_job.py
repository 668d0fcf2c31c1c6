"""The engine's merge-to-development lane: from a merged commit to a release in the first stage.

Each pass reads the merges that still owe a final status (`gate_merges.done` false) and

- finds the merge commit's mainline build: what CI recorded for that commit, or the image
  the Application's `mainlineImage` names (recorded here, as the connection, audited with
  the delivery and the pusher);
- for tracks with `releaseOn: merge`, cuts one release of the set once `mergeWindow` has
  passed since its newest recorded build (`releases.create_release`, linked to the merges in
  the same transaction, so two servers never cut it twice); the release enters the first
  stage by itself;
- puts the merge commit's status in the outbox whenever it changes: waiting (readiness
  words), then the first stage of the release (`domain.pull_request_gate.merge_verdict`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.pull_request_gate import MergeState, ReleaseFacts, Verdict, merge_verdict
from infrastream.domain.readiness import blockers, merge_blockers, waiting_for, waiting_line
from infrastream.domain.roles import scm_actor
from infrastream.manifests import Bundle, Lane, parse_duration
from infrastream.manifests.source import fill_template
from infrastream.manifests.track import ReleaseOn, ReleaseTrack
from infrastream.scm import CommitStatus, StatusState
from infrastream.store.clock import utc
from infrastream.store.tables import (
    app_versions,
    check_runs,
    deployments,
    gate_merges,
    releases,
)

from .. import scm_outbox
from ..context import Services
from ..records import release_content
from ..records.manifests import current_bundle
from ..records.releases import approvals_by_run, stage_rows
from ..records.stage_facts import read_context, stage_facts
from ..releases import create_release
from ..scm_connections import connected
from ..versions import record_version

log = logging.getLogger("infrastream.gate")

_OPEN = select(gate_merges).where(gate_merges.c.done.is_(False)).order_by(gate_merges.c.id)


class _Raced(Exception):
    """Another server cut the release of these merges first."""


def follow_merges(services: Services) -> None:
    with services.db.connect() as conn:
        rows = conn.execute(_OPEN).all()
    if not rows:
        return
    bundle = current_bundle(services)
    now = services.now()
    changed = False
    for row in rows:
        if row.state == MergeState.BUILD:
            changed = _find_build(services, bundle, row, now) or changed
    with services.db.connect() as conn:
        rows = conn.execute(_OPEN).all()
    by_set: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.state == MergeState.RECORDED:
            by_set[row.app_set].append(row)
    windows: dict[str, datetime] = {}
    for app_set, recorded in by_set.items():
        track = _track(bundle, app_set)
        if track is None:
            continue
        ends = max(utc(r.built_at) or now for r in recorded) + timedelta(
            seconds=parse_duration(track.spec.merge_window))
        windows[app_set] = ends
        if ends <= now:
            changed = _cut(services, app_set, recorded) or changed
    if changed:
        services.notify()
        with services.db.connect() as conn:
            rows = conn.execute(_OPEN).all()
    for row in rows:
        try:
            _report(services, bundle, row, windows.get(row.app_set), now)
        except Exception:  # one merge's trouble must not hold up the others
            log.exception("merge status of %s at %s failed", row.app, row.sha[:7])


def _track(bundle: Bundle, app_set: str) -> ReleaseTrack | None:
    return bundle.track_of(app_set) if app_set in bundle.sets else None


def _find_build(services: Services, bundle: Bundle, row: Any, now: datetime) -> bool:
    app = bundle.applications.get(row.app)
    track = _track(bundle, row.app_set)
    if app is None or track is None:
        return _move(services, row.id, MergeState.FAILED, reason=f"application `{row.app}` "
                     "or its set no longer exists", done=True)
    prefixes = sorted({row.sha[:n] for n in range(7, 13)} | {row.sha})
    with services.db.connect() as conn:
        version_id = conn.execute(select(app_versions.c.id).where(
            (app_versions.c.app == row.app) & (app_versions.c.channel == "main")
            & app_versions.c.commit.in_(prefixes)).order_by(app_versions.c.id.desc())
            .limit(1)).scalar_one_or_none()
    if version_id is None and app.spec.mainline_image:
        image = fill_template(app.spec.mainline_image, sha=row.sha)
        cause = {"scm": row.connection, "delivery": row.delivery_id, "pusher": row.pusher,
                 "repository": row.repository}
        try:
            version_id = record_version(services, scm_actor(row.connection), row.app, image,
                                        row.sha, cause=cause)["id"]
        except Conflict:
            with services.db.connect() as conn:
                version_id = conn.execute(select(app_versions.c.id).where(
                    (app_versions.c.app == row.app) & (app_versions.c.image == image))
                ).scalar_one_or_none()
        except (Invalid, NotFound) as exc:
            return _move(services, row.id, MergeState.FAILED, reason=exc.reason, done=True)
    if version_id is None:
        return False
    manual = track.spec.release_on is ReleaseOn.MANUAL
    return _move(services, row.id, MergeState.MANUAL if manual else MergeState.RECORDED,
                 version_id=version_id, done=manual)


def _move(services: Services, row_id: int, state: MergeState, *, reason: str = "",
          done: bool = False, version_id: int | None = None) -> bool:
    values: dict[str, Any] = {"state": state, "reason": reason[:1000], "done": done,
                              "updated_at": services.now()}
    if version_id is not None:
        values.update(version_id=version_id, built_at=values["updated_at"])
    with services.transaction() as conn:
        return bool(conn.execute(update(gate_merges).where(
            (gate_merges.c.id == row_id) & (gate_merges.c.state == MergeState.BUILD))
            .values(**values)).rowcount)


def _cut(services: Services, app_set: str, recorded: list[Any]) -> bool:
    ids = [r.id for r in recorded]
    first = recorded[0]

    def link(conn: Connection, release_id: int) -> None:
        taken = conn.execute(update(gate_merges).where(
            gate_merges.c.id.in_(ids) & (gate_merges.c.state == MergeState.RECORDED))
            .values(state=MergeState.RELEASED, release_id=release_id,
                    updated_at=services.now())).rowcount
        if taken != len(ids):
            raise _Raced

    cause = {"scm": first.connection, "deliveries": [r.delivery_id for r in recorded],
             "commits": sorted({r.sha for r in recorded}),
             "pushers": sorted({r.pusher for r in recorded}), "repository": first.repository}
    try:
        create_release(services, scm_actor(first.connection), app_set, cause=cause, link=link)
    except _Raced:
        return False
    except (Conflict, Invalid, NotFound) as exc:
        with services.transaction() as conn:
            conn.execute(update(gate_merges).where(
                gate_merges.c.id.in_(ids) & (gate_merges.c.state == MergeState.RECORDED))
                .values(state=MergeState.FAILED, reason=exc.reason[:1000],
                        updated_at=services.now()))
    return True


def _report(services: Services, bundle: Bundle, row: Any, window_ends: datetime | None,
            now: datetime) -> None:
    track = _track(bundle, row.app_set)
    stages = track.spec.stages(Lane.RELEASE) if track is not None else []
    stage = stages[0].display_name if stages else "development"
    url: str | None = None
    state = MergeState(row.state)
    if state is MergeState.RELEASED and row.release_id is not None:
        with services.db.connect() as conn:
            facts = first_stage(services, conn, row.release_id, now)
        verdict = merge_verdict(state, release=facts)
        stage = facts.stage
        url_path = f"/portal/releases/{facts.release}"
    else:
        window = track.spec.merge_window if track is not None else ""
        line = waiting_for(merge_blockers(row.sha, build=state is not MergeState.BUILD,
                                          window_ends=window_ends, window=window, now=now))
        verdict = merge_verdict(state, line=line or "cutting the release", reason=row.reason)
        url_path = None
    if verdict is None:  # manual releases: the merge gets no status
        return
    scm = connected(services, row.connection)
    url = scm.public_url + url_path if url_path else None
    _queue(services, row, scm.name, verdict, f"infrastream/{stage}", url, now)


def _queue(services: Services, row: Any, connection: str, verdict: Verdict, context: str,
           url: str | None, now: datetime) -> None:
    reported = {"state": verdict.state.value, "description": verdict.description, "url": url,
                "context": context}
    if reported == row.reported:
        return
    status = CommitStatus(StatusState(verdict.state.value), verdict.description, url, context,
                          row.branch or None)
    with services.transaction() as conn:
        scm_outbox.enqueue(conn, connection=connection, repository=row.repository,
                           sha=row.sha, status=status, subject=f"merge {row.app}", now=now)
        conn.execute(update(gate_merges).where(gate_merges.c.id == row.id).values(
            reported=reported, done=verdict.state.final, updated_at=now))


def first_stage(services: Services, conn: Connection, release_id: int,
                now: datetime) -> ReleaseFacts:
    """Where release `release_id` stands in its first stage, with the readiness line."""
    release = conn.execute(select(releases).where(releases.c.id == release_id)).one()
    content = release_content.of_row(release)
    rows = stage_rows(conn, release_id)
    stage = content.stages(release.lane)[0]
    run = rows[0]
    deps = conn.execute(select(deployments).where(
        (deployments.c.release_id == release_id) & (deployments.c.stage_index == 0))).all()
    checks = {c.key: c for c in conn.execute(select(check_runs).where(
        (check_runs.c.release_id == release_id) & (check_runs.c.stage_index == 0)))}
    context = read_context(services, conn, environments=stage.environments)
    facts = stage_facts(
        release_id=release_id, release_state=release.state, lane=release.lane,
        app_set=release.app_set, digest=release.digest, content=content, runs=rows, index=0,
        guard_overridden=release.guard_override is not None, context=context,
        approvals=approvals_by_run(conn, [run.id])[run.id], deployments=deps, checks=checks)
    return ReleaseFacts(release=f"{release.app_set}/{release.name}",
                        stage=stage.display_name, stage_state=run.state,
                        line=waiting_line(facts.state, blockers(facts, now)),
                        reason=run.reason or "", release_state=release.state)
