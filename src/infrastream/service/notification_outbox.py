"""The outbox of notifications: each one recorded once, delivered to each of its channels
at least once, never on the engine's path.

Whoever decides that people must hear about something records it with `record`, in the
transaction that decides it: one `notification_events` row per notification key (a key seen
before, by this server or another at the same instant, records nothing) and one pending
delivery per channel. The engine's notify job sends them (`claim`, then `delivered` /
`retry` / `failed`) per channel under a short claim lease, so two servers never send the same
row at once and a crashed sender's claim runs out. A receiver that is down holds its
channel's other due rows with the retried one: it is down for them too. The lease, backoff
and due rule are the SCM status outbox's (`records.outboxes`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Invalid
from infrastream.domain.notifications import Notification
from infrastream.domain.roles import Principal
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import notification_deliveries, notification_events

from .context import Services
from .records.outboxes import LEASE, backoff, due
from .records.read_model import ReadModel

KEY_LIMIT = 300
OUTCOMES = ("pending", "delivered", "failed")

_table = notification_deliveries


def stored_key(key: str) -> str:
    """The key as stored: itself, or its digest when longer than the column."""
    if len(key) <= KEY_LIMIT:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def record(conn: Connection, notification: Notification, channels: Iterable[str],
           now: datetime) -> int | None:
    """Record `notification` for `channels`: its event id, or None (and nothing recorded)
    when its key was recorded before."""
    key = stored_key(notification.key)
    if conn.execute(select(notification_events.c.id)
                    .where(notification_events.c.key == key)).first() is not None:
        return None
    try:
        with conn.begin_nested():
            result = conn.execute(insert(notification_events).values(
                key=key, kind=notification.kind.value, track=notification.track,
                release=notification.release, payload=notification.to_json(),
                created_at=now))
    except IntegrityError:
        return None  # another server recorded the same key this instant
    event_id = inserted_id(result)
    names = sorted(set(channels))
    if names:
        conn.execute(insert(_table), [
            {"event_id": event_id, "channel": name, "outcome": "pending", "attempts": 0,
             "next_attempt_at": now, "last_error": "", "created_at": now} for name in names])
    return event_id


def due_channels(conn: Connection, now: datetime) -> list[str]:
    """Channels with a delivery whose (next) attempt is due and that nobody is sending."""
    return list(conn.execute(select(_table.c.channel).where(due(_table, now)).distinct()
                             .order_by(_table.c.channel)).scalars())


def next_due(conn: Connection, now: datetime) -> datetime | None:
    """When the earliest pending delivery that is not due yet becomes due."""
    found = conn.execute(select(func.min(_table.c.next_attempt_at)).where(
        (_table.c.outcome == "pending") & (_table.c.next_attempt_at > now))).scalar()
    return utc(found)


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    notification: Notification
    attempts: int


def claim(services: Services, channel: str) -> Claimed | None:
    """The oldest due delivery of `channel`, claimed for one attempt."""
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(
            select(_table.c.id, _table.c.attempts, notification_events.c.payload)
            .join(notification_events, notification_events.c.id == _table.c.event_id)
            .where(due(_table, now) & (_table.c.channel == channel))
            .order_by(_table.c.next_attempt_at, _table.c.id).limit(1)).first()
        if row is None:
            return None
        taken = conn.execute(update(_table).where(
            (_table.c.id == row.id) & due(_table, now)).values(
                claimed_until=now + LEASE)).rowcount
    if not taken:
        return None
    return Claimed(row.id, channel, Notification.from_json(row.payload), row.attempts)


def delivered(services: Services, claimed: Claimed) -> None:
    now = services.now()
    with services.transaction() as conn:
        conn.execute(update(_table).where(_table.c.id == claimed.id).values(
            outcome="delivered", claimed_until=None, attempts=claimed.attempts + 1,
            delivered_at=now, last_error=""))


def retry(services: Services, claimed: Claimed, error: str, delay: float | None) -> datetime:
    """The receiver did not take it: try again after a backoff (or its Retry-After), and
    hold the channel's other due deliveries until then. Returns when."""
    now = services.now()
    attempts = claimed.attempts + 1
    when = now + timedelta(seconds=backoff(attempts, delay))
    with services.transaction() as conn:
        conn.execute(update(_table).where(_table.c.id == claimed.id).values(
            attempts=attempts, next_attempt_at=when, claimed_until=None,
            last_error=error[:500]))
        conn.execute(update(_table).where((_table.c.channel == claimed.channel)
                                          & due(_table, now)).values(next_attempt_at=when))
    return when


def failed(services: Services, claimed: Claimed, error: str) -> None:
    """The receiver refused it for good (a removed webhook, an unknown mailbox): keep why."""
    with services.transaction() as conn:
        conn.execute(update(_table).where(_table.c.id == claimed.id).values(
            outcome="failed", claimed_until=None, attempts=claimed.attempts + 1,
            last_error=error[:500]))


class DeliveryView(ReadModel):
    id: int
    event_id: int
    kind: str
    """The event's kind (`approval.waiting`, `release.failed`, …)."""
    title: str
    track: str
    release: str | None
    channel: str
    outcome: str
    """pending (not delivered yet, or retrying), delivered or failed."""
    attempts: int
    next_attempt_at: datetime | None
    """When a pending delivery is tried (again)."""
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


def list_deliveries(services: Services, principal: Principal, outcome: str | None = None,
                    channel: str | None = None, limit: int = 50) -> list[DeliveryView]:
    """The newest deliveries first (any signed-in principal: titles are no secrets)."""
    if outcome is not None and outcome not in OUTCOMES:
        raise Invalid(f"`{outcome[:40]}` is no outcome: use {', '.join(OUTCOMES)}")
    events = notification_events
    query = (select(_table, events.c.kind, events.c.track, events.c.release,
                    events.c.payload)
             .join(events, events.c.id == _table.c.event_id)
             .order_by(_table.c.created_at.desc(), _table.c.id.desc()).limit(limit))
    if outcome:
        query = query.where(_table.c.outcome == outcome)
    if channel:
        query = query.where(_table.c.channel == channel)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    return [DeliveryView(
        id=r.id, event_id=r.event_id, kind=r.kind, title=str(r.payload.get("title", "")),
        track=r.track, release=r.release, channel=r.channel, outcome=r.outcome,
        attempts=r.attempts,
        next_attempt_at=utc(r.next_attempt_at) if r.outcome == "pending" else None,
        last_error=r.last_error, created_at=utc(r.created_at) or r.created_at,
        delivered_at=utc(r.delivered_at)) for r in rows]

