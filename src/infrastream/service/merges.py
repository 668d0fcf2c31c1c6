"""Merges to development: a push to an application's branch records its mainline build and,
when the track says `releaseOn: merge`, cuts a release that enters the first stage by itself.

The webhook's transaction records one *merge* per pushed commit and application it concerns
(`record_push`: the application's `source.branch`, else the repository's default branch; its
`path`, for monorepos). The engine's merge job then finds the mainline build (the Application's
`mainlineImage` template, or what CI records with `version record --commit SHA`), waits for
the track's `mergeWindow` to pass without another merge of the set, and cuts one release for
all of them; the merge commit's status follows that release's first stage. `of_release` is
what the release page shows: which merges (commits, pushers) a release was cut for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from infrastream.domain.pull_request_gate import MergeState
from infrastream.manifests import Application
from infrastream.scm import PushEvent
from infrastream.store.clock import utc
from infrastream.store.tables import gate_merges, releases

from .auditing import trail as audit
from .context import Services
from .records.read_model import ReadModel
from .scm_connections import commit_url, web_hosts


def merge_branch(app: Application, event: PushEvent) -> bool:
    """Whether `event` pushed to the branch merges of `app` land on."""
    source = app.spec.source
    if source is None or event.branch is None or event.deleted:
        return False
    if source.branch is not None:
        return event.branch == source.branch
    if event.default_branch is not None:
        return event.default_branch
    return event.branch == "main"


def record_push(conn: Connection, *, connection: str, event: PushEvent,
                apps: Sequence[Application], cause: Mapping[str, Any], actor: str,
                now: datetime) -> tuple[list[str], str]:
    """Record the merge of `event.after` for every app of `apps` it concerns. Returns what
    was done, and why nothing was when nothing was."""
    done: list[str] = []
    skipped: list[str] = []
    for app in apps:
        name = app.metadata.name
        source = app.spec.source
        if source is None or not merge_branch(app, event):
            skipped.append(f"{event.ref} is not the branch {name} merges to")
            continue
        if event.paths_complete and not source.touches(event.changed_paths):
            skipped.append(f"nothing below {source.path} changed for {name}")
            continue
        exists = conn.execute(select(gate_merges.c.id).where(
            (gate_merges.c.connection == connection)
            & (gate_merges.c.repository == event.repository)
            & (gate_merges.c.sha == event.after) & (gate_merges.c.app == name))).first()
        if exists is not None:
            skipped.append(f"the merge of {event.after[:7]} for {name} is recorded already")
            continue
        app_set = app.metadata.parent.name if app.metadata.parent else ""
        conn.execute(insert(gate_merges).values(
            connection=connection, repository=event.repository, branch=event.branch or "",
            sha=event.after, app=name, app_set=app_set, pusher=event.pusher[:100],
            delivery_id=str(cause.get("delivery", ""))[:100], state=MergeState.BUILD,
            reason="", done=False, reported=None, created_at=now, updated_at=now))
        audit.record(conn, at=now, actor=actor, action="scm.merge.record",
                     object_type="application", object_id=name,
                     after={"sha": event.after, "branch": event.branch,
                            "repository": event.repository, **cause})
        done.append(f"merge {event.after[:7]} of {name} waits for its mainline build")
    return done, "; ".join(skipped)


class MergeView(ReadModel):
    app: str
    sha: str
    commit_url: str
    branch: str
    pusher: str
    repository: str
    connection: str
    state: str
    recorded_at: datetime


def of_release(services: Services, app_set: str, name: str) -> list[MergeView]:
    """The merges release `app_set/name` was cut for, oldest first (none: cut by hand)."""
    with services.db.connect() as conn:
        hosts = web_hosts(conn)
        rows = conn.execute(select(gate_merges).join(
            releases, releases.c.id == gate_merges.c.release_id).where(
            (releases.c.app_set == app_set) & (releases.c.name == name))
            .order_by(gate_merges.c.id)).all()
    return [MergeView(app=r.app, sha=r.sha, branch=r.branch, pusher=r.pusher,
                      repository=r.repository, connection=r.connection, state=r.state,
                      commit_url=commit_url(*hosts.get(r.connection, ("", "")),
                                            r.repository, r.sha),
                      recorded_at=utc(r.created_at) or r.created_at) for r in rows]
