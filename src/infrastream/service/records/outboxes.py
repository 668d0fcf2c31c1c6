"""What the outboxes share (commit statuses in `scm_outbox`, notifications in
`notification_outbox`): the claim lease, the backoff, and which rows are due.

An outbox table has `outcome` (pending → delivered or failed), `next_attempt_at` and
`claimed_until`; a row is due when it is pending, its attempt time has come and nobody holds
a live claim on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, or_

LEASE = timedelta(seconds=60)
MAX_BACKOFF = 300.0
"""Seconds: retries back off 2, 4, 8 … up to five minutes (or what the receiver asks for)."""


def backoff(attempts: int, asked: float | None) -> float:
    """Seconds to wait before attempt `attempts + 1`: doubling, capped, or what was asked."""
    return min(MAX_BACKOFF, max(asked or 0.0, float(2 ** min(attempts, 9))))


def unclaimed(table: Table, now: datetime) -> Any:
    return or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)


def due(table: Table, now: datetime) -> Any:
    return and_(table.c.outcome == "pending", table.c.next_attempt_at <= now,
                unclaimed(table, now))
