"""Manifest sources: a Git repository, branch and path as the source of truth for the
manifests it holds (the seed's "manifests are approved via the GitOps pull-request workflow").

A platform engineer adds a source; from then on every new commit of its branch (noticed by a
push webhook or a periodic fetch, default every 60 s) is validated as a whole and applied as
one revision that records the commit and its author — or, when anything in the tree is
invalid, nothing is applied: the source shows `error` with every diagnostic (file:line:col,
as `validate` prints them) and the last good revision stays in force. A manifest removed
from the tree is deleted, unless something still needs it (then the revision is refused
with the reason). The objects a source owns cannot be changed by `apply`.

One sync of a source runs at a time across every server: the sync holds the source's
session advisory lock on PostgreSQL (another server skips the source meanwhile) and a
process lock everywhere; git fetches outside any database transaction, and the revision is
written in one.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import BackendError, Conflict, Invalid, NotFound
from infrastream.domain.roles import MANAGE_SOURCES, Principal
from infrastream.manifests import Diagnostic, check_with_stored, collection_paused, parse
from infrastream.manifests.fields import is_dns_label
from infrastream.scm.git_tree import GitTree, host_repository, normalized
from infrastream.store.clock import utc
from infrastream.store.tables import manifest_objects, manifest_sources

from .auditing import trail as audit
from .context import Services
from .manifests import diagnostics_json
from .permissions import require
from .readmodel import ReadModel
from .records.manifests import current_revision
from .revisions import Plan, plan, result, write
from .scm_connections import connected

DEFAULT_INTERVAL = 60
SYSTEM = "infrastream"



class SourceView(ReadModel):
    """A manifest source: where it reads from, and what it applied last."""

    name: str
    repository: str
    branch: str
    path: str
    scm: str | None
    interval: int
    state: str
    """`pending` (never synced), `ok` or `error`."""
    commit: str | None
    """The branch's newest commit seen."""
    applied_commit: str | None
    applied_revision: int | None
    synced_at: str | None
    message: str
    diagnostics: list[dict[str, Any]]
    """Every problem of the newest commit, when it was refused (or its warnings)."""
    created_by: str
    applied: dict[str, Any] | None = None
    """What a sync just applied: the revision and each change."""


def _view(row: Any) -> SourceView:
    def iso(value: datetime | None) -> str | None:
        return (utc(value) or value).isoformat() if value is not None else None

    return SourceView(name=row.name, repository=row.repository, branch=row.branch,
                      path=row.path, scm=row.scm, interval=row.interval, state=row.state,
                      commit=row.commit, applied_commit=row.applied_commit,
                      applied_revision=row.applied_revision, synced_at=iso(row.synced_at),
                      message=row.message, diagnostics=row.diagnostics,
                      created_by=row.created_by)


def add_source(services: Services, principal: Principal, name: str, repository: str, *,
               branch: str = "main", path: str = "", scm: str | None = None,
               interval: int = DEFAULT_INTERVAL) -> SourceView:
    require(principal, MANAGE_SOURCES, "add manifest sources")
    if not is_dns_label(name):
        raise Invalid(f"`{name}` is not a valid source name (lowercase letters, digits, `-`)")
    if not repository.strip() or any(c.isspace() for c in repository.strip()):
        raise Invalid("a source needs a repository URL or path (--repository)")
    if not branch.strip() or branch.startswith("-") or ".." in branch:
        raise Invalid(f"`{branch}` is not a branch name")
    try:
        clean_path = normalized(path)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if not 10 <= interval <= 86400:
        raise Invalid("the fetch interval is 10 to 86400 seconds")
    now = services.now()
    try:
        with services.transaction() as conn:
            conn.execute(insert(manifest_sources).values(
                name=name, repository=repository.strip(), branch=branch.strip(),
                path=clean_path, scm=scm, interval=interval, created_at=now,
                created_by=principal.name, state="pending", message="not synced yet",
                diagnostics=[]))
            audit.record(conn, at=now, actor=principal.name, action="source.add",
                         object_type="source", object_id=name,
                         after={"repository": repository.strip(), "branch": branch.strip(),
                                "path": clean_path, "scm": scm})
    except IntegrityError:
        raise Conflict(f"manifest source `{name}` already exists") from None
    services.notify()
    return source_status(services, name)


def list_sources(services: Services) -> list[SourceView]:
    with services.db.connect() as conn:
        return [_view(r) for r in conn.execute(select(manifest_sources)
                                                .order_by(manifest_sources.c.name))]


def source_status(services: Services, name: str) -> SourceView:
    with services.db.connect() as conn:
        row = conn.execute(select(manifest_sources)
                           .where(manifest_sources.c.name == name)).first()
    if row is None:
        raise NotFound(f"manifest source `{name}` does not exist")
    return _view(row)


def request_sync(services: Services, principal: Principal, name: str) -> SourceView:
    """`source sync`: fetch and apply now (platform)."""
    require(principal, MANAGE_SOURCES, "sync manifest sources")
    source_status(services, name)
    return sync_source(services, name, force=True)


def due(services: Services) -> list[str]:
    """The sources whose interval has passed since their last sync."""
    now = services.now()
    with services.db.connect() as conn:
        rows = conn.execute(select(manifest_sources.c.name, manifest_sources.c.interval,
                                   manifest_sources.c.synced_at,
                                   manifest_sources.c.requested_at)).all()
    return [r.name for r in rows
            if r.synced_at is None or r.requested_at is not None
            or _utc(r.synced_at) + timedelta(seconds=r.interval) <= now]


def _utc(value: datetime) -> datetime:
    return utc(value) or value


_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def sync_source(services: Services, name: str, *, force: bool = False) -> SourceView:
    """Fetch the branch and, if its commit is new (or `force`), apply the tree as one
    revision; record the outcome on the source. Returns the source's status."""
    with _local_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    if not lock.acquire(blocking=False):
        return source_status(services, name)  # this process syncs it right now
    try:
        return _sync(services, name, force)
    finally:
        lock.release()


def tree_of(services: Services, row: Any) -> GitTree:
    """The bare mirror of a source; over HTTPS with its SCM connection's credentials when
    it names one (`source add --scm`), else with the server's own (credential helpers, SSH
    keys). The header travels in git's environment, never on a command line."""
    header = None
    if row.scm and row.repository.startswith(("https://", "http://")):
        header = connected(services, row.scm).provider.git_header(
            host_repository(row.repository))
    return GitTree(services.data_dir / "sources" / f"{row.name}.git", row.repository,
                   header=header)


def _sync(services: Services, name: str, force: bool) -> SourceView:
    outcome: dict[str, Any] | None = None
    with services.db.connect() as guard:
        if not _exclusive(guard, name):
            return source_status(services, name)  # another server syncs it right now
        try:
            row = _row(guard, name)
            guard.rollback()  # hold no snapshot while git fetches
            try:
                tree = tree_of(services, row)
                sha = tree.fetch(row.branch)
                fresh = force or sha != row.applied_commit or row.state != "ok"
                commit = tree.commit(sha) if fresh else None
                files = tree.files(sha, row.path) if fresh else []
            except (BackendError, NotFound) as exc:
                with services.transaction() as conn:
                    _record(conn, row, services.now(), state="error", commit=row.commit,
                            message=f"cannot fetch {row.branch}: {exc.reason}",
                            diagnostics=[])
                return source_status(services, name)
            with services.transaction() as conn:
                row = _row(conn, name)
                if commit is None:
                    conn.execute(update(manifest_sources).where(
                        manifest_sources.c.name == name).values(synced_at=services.now(),
                                                                commit=sha, requested_at=None))
                else:
                    with collection_paused():  # ten thousand manifests are many objects
                        outcome = _apply_tree(conn, row, files, commit.sha, commit.author,
                                              services.now())
        finally:
            _release(guard, name)
    status = source_status(services, name)
    return status.model_copy(update={"applied": outcome}) if outcome else status


def _key(name: str) -> int:
    digest = hashlib.sha256(b"infrastream-source:" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _exclusive(guard: Connection, name: str) -> bool:
    """Take the source's session lock (PostgreSQL; SQLite has one server): False when
    another server holds it."""
    if guard.dialect.name != "postgresql":
        return True
    return bool(guard.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)})
                .scalar())


def _release(guard: Connection, name: str) -> None:
    if guard.dialect.name == "postgresql":
        guard.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
        guard.commit()


def _row(conn: Connection, name: str) -> Any:
    return conn.execute(select(manifest_sources).where(manifest_sources.c.name == name)).one()


@dataclass
class Evaluation:
    """What a tree of a source would do: the plan and its problems, or why it is refused."""

    planned: Plan | None
    problems: list[Diagnostic]
    origins: Any = None
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.planned is not None and self.refused is None and not any(
            d.is_error for d in self.problems)


def evaluate(conn: Connection, owner: str, files: list[tuple[str, str]]) -> Evaluation:
    """Validate `files` as source `owner`'s whole tree among the other stored manifests and
    plan the revision it would make; writes nothing (a sync and a pull-request check ask the
    same question)."""
    loaded = parse(files)
    if not loaded.ok:
        return Evaluation(None, list(loaded.result.diagnostics))
    mine = {(r.kind, r.name) for r in conn.execute(
        select(manifest_objects.c.kind, manifest_objects.c.name)
        .where(manifest_objects.c.owner == owner))}
    puts = list(loaded.result.bundle.manifests())
    wanted = {(str(m.kind), m.metadata.name) for m in puts}
    try:
        planned = plan(conn, puts, sorted(mine - wanted), owner=owner)
    except Conflict as exc:
        return Evaluation(None, list(loaded.result.diagnostics), refused=exc.reason)
    merged = check_with_stored(loaded, planned.kept())
    return Evaluation(planned, list(merged.diagnostics), merged.origins)


def _apply_tree(conn: Connection, row: Any, files: list[tuple[str, str]], sha: str,
                author: str, now: datetime) -> dict[str, Any] | None:
    """Validate the tree among the other stored manifests and apply it, or record why not.
    (Everything happens in the caller's transaction.)"""
    owner = row.name
    if not files:
        _record(conn, row, now, state="error", commit=sha,
                message=f"no manifest file under `{row.path or '/'}` at {sha[:12]}",
                diagnostics=[])
        return None
    found = evaluate(conn, owner, files)
    if found.refused is not None:
        _record(conn, row, now, state="error", commit=sha, message=found.refused,
                diagnostics=[])
        return None
    problems = found.problems
    if found.ok and found.planned is not None:
        planned = found.planned
        revision = current_revision(conn)
        if planned.changed:
            revision = write(conn, planned, at=now, actor=f"source:{owner}", owner=owner,
                             source_root=None, sources=files, origins=found.origins,
                             meta={"source": owner, "commit": sha, "author": author})
        warnings = [d.to_json() for d in problems if not d.is_error]
        _record(conn, row, now, state="ok", commit=sha, applied=(sha, revision),
                message=f"{sha[:12]} by {author} applied as revision {revision}",
                diagnostics=warnings)
        return result(planned, revision, warnings)
    errors = diagnostics_json(problems)
    count = sum(1 for d in problems if d.is_error)
    _record(conn, row, now, state="error", commit=sha,
            message=f"{sha[:12]} by {author} is invalid ({count} "
            f"problem{'s' if count != 1 else ''}); revision {row.applied_revision} stays in "
            "force", diagnostics=errors)
    return None


def _record(conn: Connection, row: Any, now: datetime, *, state: str, commit: str | None,
            message: str, diagnostics: list[dict[str, Any]],
            applied: tuple[str, int] | None = None) -> None:
    values: dict[str, Any] = {"state": state, "commit": commit, "synced_at": now,
                              "message": message[:4000], "diagnostics": diagnostics,
                              "requested_at": None}
    if applied is not None:
        values.update(applied_commit=applied[0], applied_revision=applied[1])
    conn.execute(update(manifest_sources).where(manifest_sources.c.name == row.name)
                 .values(**values))
    if (row.state, row.commit) != (state, commit):  # audit what changed, not every fetch
        audit.record(conn, at=now, actor=SYSTEM, action=f"source.{state}",
                     object_type="source", object_id=row.name,
                     before={"state": row.state, "commit": row.commit},
                     after={"state": state, "commit": commit, "message": message[:500]})
