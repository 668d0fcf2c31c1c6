"""The notification outbox, as far as the producer needs it: record one notification and a
pending delivery per channel, once per key.

(The delivery side — channels, the delivery job, retries — owns this module; the producer on
this branch carries only `record`, with the same signature and behaviour.) The event row's
unique `key` deduplicates: a second pass, or a second server, recording the same notification
hits the constraint inside a savepoint and records nothing, so the caller's transaction goes
on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from infrastream.domain.notifications import Notification
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import notification_deliveries, notification_events


def record(conn: Connection, notification: Notification, channels: list[str],
           now: datetime) -> int | None:
    """Insert the event and one pending delivery per channel; the event id, or None when an
    event with the notification's key exists already."""
    try:
        with conn.begin_nested():
            event_id = inserted_id(conn.execute(insert(notification_events).values(
                key=notification.key, kind=notification.kind.value, track=notification.track,
                release=notification.release, payload=notification.to_json(),
                created_at=now)))
    except IntegrityError:
        return None
    for channel in dict.fromkeys(channels):
        conn.execute(insert(notification_deliveries).values(
            event_id=event_id, channel=channel, outcome="pending", attempts=0,
            next_attempt_at=now, claimed_until=None, last_error="", created_at=now))
    return event_id
