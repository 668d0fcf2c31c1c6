"""The outbox of commit statuses: what the gate wants a Git host to show, delivered at least
once, never on the engine's path.

The gate puts a status here in the transaction that decides it (`enqueue`); the engine's
outbox job sends it (`claim`, then `delivered` / `retry` / `failed`). One undelivered row per
connection, repository, commit and context (`pending_key`): a newer status for the same
commit and context replaces the older one, so a host that was down gets the latest word, not
a backlog, and `revision` tells a delivery in flight that its row changed meanwhile (the
newer status then goes out next). Deliveries are claimed with a short lease, so two servers
never send the same row at once, and a crashed sender's claim simply runs out. Providers'
reports are idempotent, which is what makes "at least once" safe.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from infrastream.scm import Annotation, AnnotationLevel, CommitStatus, StatusReceipt, StatusState
from infrastream.store.clock import utc
from infrastream.store.tables import scm_statuses

from .context import Services
from .records.outboxes import LEASE, backoff, due, unclaimed
from .records.read_model import ReadModel


def pending_key(connection: str, repository: str, sha: str, context: str) -> str:
    return hashlib.sha256("\0".join((connection, repository, sha, context)).encode()).hexdigest()


def enqueue(conn: Connection, *, connection: str, repository: str, sha: str,
            status: CommitStatus, subject: str, now: datetime) -> int:
    """Queue `status` for commit `sha`, replacing an undelivered one of the same context."""
    key = pending_key(connection, repository, sha, status.context)
    values: dict[str, Any] = {"state": status.state.value, "description": status.description,
                              "target_url": status.target_url, "ref": status.ref,
                              "subject": subject[:200], "updated_at": now,
                              "output": _output(status)}
    for _ in range(3):
        current = conn.execute(select(scm_statuses.c.id, scm_statuses.c.revision)
                               .where(scm_statuses.c.pending_key == key)).first()
        if current is not None:
            replaced = conn.execute(update(scm_statuses).where(
                (scm_statuses.c.id == current.id)
                & (scm_statuses.c.revision == current.revision)
                & (scm_statuses.c.pending_key == key)).values(
                    revision=current.revision + 1, attempts=0, **values)).rowcount
            if replaced:
                return int(current.id)
            continue  # delivered (or replaced) since it was read: queue anew
        try:
            with conn.begin_nested():
                result = conn.execute(insert(scm_statuses).values(
                    connection=connection, repository=repository, sha=sha,
                    context=status.context, pending_key=key, outcome="pending", revision=1,
                    attempts=0, next_attempt_at=now, last_error="", created_at=now, **values))
        except IntegrityError:
            continue  # another sender queued the same key this instant: replace theirs
        key_of = result.inserted_primary_key
        return int(key_of[0]) if key_of else 0
    raise RuntimeError("could not queue the status")  # pragma: no cover


def _output(status: CommitStatus) -> dict[str, Any] | None:
    """What only a check run shows (title, summary, annotations), kept as JSON."""
    if status.title is None and status.summary is None and not status.annotations:
        return None
    return {"title": status.title, "summary": status.summary,
            "annotations": [{**asdict(a), "level": a.level.value} for a in status.annotations]}


def due_connections(conn: Connection, now: datetime) -> list[str]:
    """Connections with a status whose (next) attempt is due and that nobody is sending."""
    return list(conn.execute(
        select(scm_statuses.c.connection).where(_due(now)).distinct()).scalars())


@dataclass(frozen=True)
class Claimed:
    id: int
    revision: int
    repository: str
    sha: str
    status: CommitStatus
    attempts: int


def claim(services: Services, connection: str) -> Claimed | None:
    """The oldest due status of `connection`, claimed for one delivery attempt."""
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(select(scm_statuses)
                           .where(_due(now) & (scm_statuses.c.connection == connection))
                           .order_by(scm_statuses.c.next_attempt_at, scm_statuses.c.id)
                           .limit(1)).first()
        if row is None:
            return None
        taken = conn.execute(update(scm_statuses).where(
            (scm_statuses.c.id == row.id) & (scm_statuses.c.revision == row.revision)
            & _unclaimed(now)).values(claimed_until=now + LEASE)).rowcount
    if not taken:
        return None
    output = row.output or {}
    status = CommitStatus(StatusState(row.state), row.description, row.target_url,
                          row.context, row.ref, title=output.get("title"),
                          summary=output.get("summary"),
                          annotations=tuple(Annotation(**{**a, "level": AnnotationLevel(
                              a["level"])}) for a in output.get("annotations", ())))
    return Claimed(row.id, row.revision, row.repository, row.sha, status, row.attempts)


def delivered(services: Services, claimed: Claimed, receipt: StatusReceipt) -> None:
    now = services.now()
    with services.transaction() as conn:
        done = conn.execute(update(scm_statuses).where(
            (scm_statuses.c.id == claimed.id) & (scm_statuses.c.revision == claimed.revision))
            .values(outcome="delivered", pending_key=None, claimed_until=None,
                    attempts=claimed.attempts + 1, delivered_at=now, updated_at=now,
                    last_error="", receipt={"kind": receipt.kind.value, "state": receipt.state,
                                            "id": receipt.id, "url": receipt.url})).rowcount
        if not done:  # replaced while it was sent: the newer status goes out next
            _release(conn, claimed.id)


def retry(services: Services, connection: str, claimed: Claimed, error: str,
          delay: float | None) -> datetime:
    """The host did not take it: try again after a backoff, and hold the connection's other
    due statuses until then (the host is down for them too). Returns when."""
    now = services.now()
    attempts = claimed.attempts + 1
    when = now + timedelta(seconds=backoff(attempts, delay))
    with services.transaction() as conn:
        conn.execute(update(scm_statuses).where(scm_statuses.c.id == claimed.id).values(
            attempts=attempts, next_attempt_at=when, claimed_until=None, last_error=error[:500],
            updated_at=now))
        conn.execute(update(scm_statuses).where(
            (scm_statuses.c.connection == connection) & _due(now)).values(next_attempt_at=when))
    return when


def failed(services: Services, claimed: Claimed, error: str) -> None:
    """The host refused it for good (bad token, unknown repository): keep why."""
    now = services.now()
    with services.transaction() as conn:
        done = conn.execute(update(scm_statuses).where(
            (scm_statuses.c.id == claimed.id) & (scm_statuses.c.revision == claimed.revision))
            .values(outcome="failed", pending_key=None, claimed_until=None,
                    attempts=claimed.attempts + 1, last_error=error[:500],
                    updated_at=now)).rowcount
        if not done:
            _release(conn, claimed.id)


class StatusDelivery(ReadModel):
    id: int
    connection: str
    repository: str
    sha: str
    context: str
    state: str
    description: str
    target_url: str | None
    subject: str
    outcome: str
    """pending (not delivered yet, or retrying), delivered or failed."""
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    delivered_at: datetime | None
    updated_at: datetime


def recent(services: Services, connection: str | None = None,
           limit: int = 50) -> list[StatusDelivery]:
    query = select(scm_statuses).order_by(scm_statuses.c.updated_at.desc(),
                                          scm_statuses.c.id.desc()).limit(limit)
    if connection:
        query = query.where(scm_statuses.c.connection == connection)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    return [StatusDelivery(
        id=r.id, connection=r.connection, repository=r.repository, sha=r.sha,
        context=r.context, state=r.state, description=r.description, target_url=r.target_url,
        subject=r.subject, outcome=r.outcome, attempts=r.attempts,
        next_attempt_at=utc(r.next_attempt_at) if r.outcome == "pending" else None,
        last_error=r.last_error, delivered_at=utc(r.delivered_at),
        updated_at=utc(r.updated_at) or r.updated_at) for r in rows]


def _unclaimed(now: datetime) -> Any:
    return unclaimed(scm_statuses, now)


def _due(now: datetime) -> Any:
    return due(scm_statuses, now)


def _release(conn: Connection, row_id: int) -> None:
    conn.execute(update(scm_statuses).where(scm_statuses.c.id == row_id)
                 .values(claimed_until=None))
