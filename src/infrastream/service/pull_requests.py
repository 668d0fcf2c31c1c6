"""The pull-request gate's records: which head commits wait for a verdict, for which apps.

A pull request (or a GitHub merge queue group) reported by a connection's webhook becomes a
*head*: its repository, `ref` (`pull/17`, or the group's head ref) and head commit, with one
*gate run* per Application that names the repository as its `source`. A gate run waits for
the changed paths (monorepo `path`), then for the PR build, then becomes a pre-release run
(`prerelease.start_prerelease`, started by the engine's gate job). A new push supersedes the
open heads of the same pull request and cancels their runs; closing it cancels them too.
Every action is audited with the connection, the delivery id and the pull request's author.

This module writes the facts in the webhook's transaction; deciding what each head's status
says and delivering it is the engine's (`engine.gate_job`, `scm_outbox`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from infrastream.domain.pull_request_gate import AppState, HeadState
from infrastream.manifests import Application
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import gate_heads, gate_runs, prerelease_runs

from .auditing import trail as audit
from .context import Services
from .prerelease import cancel_in
from .records.read_model import ReadModel
from .scm_connections import commit_url, web_hosts

PULL_REQUEST = "pull-request"
MERGE_GROUP = "merge-group"


def pull_ref(number: int) -> str:
    return f"pull/{number}"


def open_head(conn: Connection, *, connection: str, repository: str, kind: str,
              number: int | None, ref: str, sha: str, base_branch: str, head_branch: str,
              author: str, title: str, web_url: str, apps: Sequence[Application],
              cause: Mapping[str, Any], actor: str, now: datetime) -> list[str]:
    """Record head `sha` of `ref` as waiting for its verdict; supersede the older heads of
    the same pull request. Returns what was done, one line each."""
    done = supersede(conn, connection=connection, repository=repository, ref=ref, sha=sha,
                     cause=cause, actor=actor, now=now) if kind == PULL_REQUEST else []
    existing = conn.execute(select(gate_heads.c.id, gate_heads.c.state, gate_heads.c.done)
                            .where((gate_heads.c.connection == connection)
                                   & (gate_heads.c.repository == repository)
                                   & (gate_heads.c.ref == ref) & (gate_heads.c.sha == sha))
                            ).first()
    if existing is not None and existing.state == HeadState.OPEN:
        return [*done, f"{ref} at {sha[:7]} is already waiting for its verdict"]
    values = {"number": number, "base_branch": base_branch, "head_branch": head_branch,
              "author": author[:100], "title": title, "web_url": web_url,
              "delivery_id": str(cause.get("delivery", ""))[:100], "state": HeadState.OPEN,
              "superseded_by": None, "reason": "", "done": False, "updated_at": now}
    if existing is None:
        head_id = inserted_id(conn.execute(insert(gate_heads).values(
            connection=connection, repository=repository, kind=kind, ref=ref, sha=sha,
            reported=None, created_at=now, **values)))
    else:  # reopened: the same head is judged again from the start
        head_id = int(existing.id)
        conn.execute(update(gate_heads).where(gate_heads.c.id == head_id).values(**values))
    names = []
    for app in apps:
        source = app.spec.source
        first = AppState.PATHS if source and source.path and kind == PULL_REQUEST \
            else AppState.BUILD
        name = app.metadata.name
        names.append(name)
        changed = conn.execute(update(gate_runs).where(
            (gate_runs.c.head_id == head_id) & (gate_runs.c.app == name)).values(
            state=first, run_id=None, reason="", updated_at=now)).rowcount
        if not changed:
            conn.execute(insert(gate_runs).values(head_id=head_id, app=name, state=first,
                                                  run_id=None, reason="", updated_at=now))
    audit.record(conn, at=now, actor=actor, action="scm.pull-request.open",
                 object_type="pull-request", object_id=f"{connection}:{repository}#{ref}",
                 after={"sha": sha, "apps": names, "kind": kind, **cause})
    return [*done, f"{ref} at {sha[:7]} waits for the pre-release runs of "
            + ", ".join(names)]


def supersede(conn: Connection, *, connection: str, repository: str, ref: str, sha: str,
              cause: Mapping[str, Any], actor: str, now: datetime) -> list[str]:
    """The open heads of `ref` other than `sha` are superseded; their runs are canceled."""
    older = conn.execute(select(gate_heads.c.id, gate_heads.c.sha).where(
        (gate_heads.c.connection == connection) & (gate_heads.c.repository == repository)
        & (gate_heads.c.ref == ref) & (gate_heads.c.sha != sha)
        & (gate_heads.c.state == HeadState.OPEN))).all()
    done = []
    for head in older:
        conn.execute(update(gate_heads).where(gate_heads.c.id == head.id).values(
            state=HeadState.SUPERSEDED, superseded_by=sha, updated_at=now))
        canceled = _cancel_runs(conn, head.id, f"superseded by {sha[:7]}", actor, cause, now)
        audit.record(conn, at=now, actor=actor, action="scm.pull-request.supersede",
                     object_type="pull-request", object_id=f"{connection}:{repository}#{ref}",
                     before={"sha": head.sha}, after={"sha": sha, "canceledRuns": canceled,
                                                      **cause})
        done.append(f"{head.sha[:7]} superseded by {sha[:7]}"
                    + (f" (canceled runs {', '.join(map(str, canceled))})" if canceled else ""))
    return done


def close_heads(conn: Connection, *, connection: str, repository: str, ref: str | None,
                sha: str | None, state: HeadState, reason: str, cause: Mapping[str, Any],
                actor: str, now: datetime) -> list[str]:
    """End the open heads of `ref` (or those at `sha`): closed, merged or destroyed."""
    query = select(gate_heads.c.id, gate_heads.c.ref, gate_heads.c.sha).where(
        (gate_heads.c.connection == connection) & (gate_heads.c.repository == repository)
        & (gate_heads.c.state == HeadState.OPEN))
    if ref is not None:
        query = query.where(gate_heads.c.ref == ref)
    if sha is not None:
        query = query.where(gate_heads.c.sha == sha)
    done = []
    for head in conn.execute(query).all():
        conn.execute(update(gate_heads).where(gate_heads.c.id == head.id).values(
            state=state, reason=reason, updated_at=now))
        canceled = _cancel_runs(conn, head.id, f"canceled: {reason}", actor, cause, now)
        audit.record(conn, at=now, actor=actor, action=f"scm.pull-request.{state.value}",
                     object_type="pull-request",
                     object_id=f"{connection}:{repository}#{head.ref}",
                     after={"sha": head.sha, "reason": reason, "canceledRuns": canceled,
                            **cause})
        done.append(f"{head.ref} at {head.sha[:7]} {state.value}"
                    + (f" (canceled runs {', '.join(map(str, canceled))})" if canceled else ""))
    return done


def _cancel_runs(conn: Connection, head_id: int, reason: str, actor: str,
                 cause: Mapping[str, Any], now: datetime) -> list[int]:
    canceled = []
    for run in conn.execute(select(gate_runs.c.id, gate_runs.c.run_id, gate_runs.c.state)
                            .where(gate_runs.c.head_id == head_id)).all():
        if run.run_id is not None:
            if cancel_in(conn, run.run_id, reason, at=now, actor=actor, cause=cause):
                canceled.append(int(run.run_id))
        elif run.state in (AppState.PATHS, AppState.BUILD):
            conn.execute(update(gate_runs).where(gate_runs.c.id == run.id).values(
                state=AppState.CANCELED, reason=reason, updated_at=now))
    return canceled


class GateRunView(ReadModel):
    app: str
    state: str
    """paths, build, started (see the pre-release run), skipped, error or canceled."""
    reason: str
    run_id: int | None = None
    run_state: str | None = None
    run_summary: str | None = None
    image: str | None = None
    environment: str | None = None


class HeadView(ReadModel):
    id: int
    connection: str
    repository: str
    kind: str
    number: int | None
    ref: str
    sha: str
    head_branch: str
    base_branch: str
    author: str
    title: str
    web_url: str
    commit_url: str
    state: str
    superseded_by: str | None
    status: dict[str, Any] | None
    """The last status the gate queued for this head (state, description, link)."""
    created_at: datetime
    runs: list[GateRunView]


def list_heads(services: Services, *, number: int | None = None,
               repository: str | None = None, app: str | None = None,
               head_id: int | None = None, limit: int = 50) -> list[HeadView]:
    """Pull request heads, newest first, with the runs of their applications."""
    query = select(gate_heads).order_by(gate_heads.c.id.desc()).limit(limit)
    if head_id is not None:
        query = query.where(gate_heads.c.id == head_id)
    if number is not None:
        query = query.where(gate_heads.c.number == number)
    if repository:
        query = query.where(gate_heads.c.repository == repository)
    if app:
        query = query.where(gate_heads.c.id.in_(
            select(gate_runs.c.head_id).where(gate_runs.c.app == app)))
    with services.db.connect() as conn:
        hosts = web_hosts(conn)
        heads = conn.execute(query).all()
        ids = [h.id for h in heads]
        runs = conn.execute(
            select(gate_runs, prerelease_runs.c.state.label("run_state"),
                   prerelease_runs.c.summary.label("run_summary"), prerelease_runs.c.image,
                   prerelease_runs.c.environment)
            .outerjoin(prerelease_runs, prerelease_runs.c.id == gate_runs.c.run_id)
            .where(gate_runs.c.head_id.in_(ids)).order_by(gate_runs.c.id)).all() if ids else []
    return [HeadView(
        id=h.id, connection=h.connection, repository=h.repository, kind=h.kind,
        number=h.number, ref=h.ref, sha=h.sha, head_branch=h.head_branch,
        base_branch=h.base_branch, author=h.author, title=h.title, web_url=h.web_url,
        commit_url=commit_url(*hosts.get(h.connection, ("", "")), h.repository, h.sha),
        state=h.state, superseded_by=h.superseded_by, status=h.reported,
        created_at=utc(h.created_at) or h.created_at,
        runs=[GateRunView(app=r.app, state=r.state, reason=r.reason, run_id=r.run_id,
                          run_state=r.run_state, run_summary=r.run_summary, image=r.image,
                          environment=r.environment)
              for r in runs if r.head_id == h.id]) for h in heads]
