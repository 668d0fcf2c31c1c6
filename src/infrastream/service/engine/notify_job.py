"""What notifications add to each engine pass: the delivery jobs, one per channel.

Each pass hands out one job per channel with a due delivery
(`notification_outbox.due_channels`); the job sends that channel's due notifications oldest
first, in a worker thread under the job's lease, so a slow or dead receiver never holds up a
pass and two servers never send the same channel's rows at once. A refusal for good
(`PermanentError`: a removed webhook, an unknown mailbox) marks the delivery failed with the
receiver's words; a receiver that is down or limits us (`TransientError`) has it retried
after a backoff (or its `Retry-After`), and the pass's timer wakes the engine when the
earliest retry is due. Nothing here raises into the loop.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import exists

from infrastream.domain.errors import NotFound, PermanentError, TransientError
from infrastream.store.tables import notification_deliveries

from .. import notification_outbox as outbox
from .. import telemetry
from ..context import Services
from ..notification_channels import open_sender

log = logging.getLogger("infrastream.notify")
BATCH = 100
"""Notifications one job sends at most (the next pass hands out another job for the rest)."""

PENDING = exists().where(notification_deliveries.c.outcome == "pending")
"""Whether a delivery is pending (the engine asks it with its other looks, `engine.looks`)."""
Job = tuple[str, Any, str]


def due_deliveries(services: Services, pending: bool) -> tuple[list[Job], float | None]:
    """The delivery jobs to run now, and seconds until the next retry is due. `pending`:
    the pass saw a pending delivery (else there is nothing to look for)."""
    if not pending:
        return [], None
    try:
        now = services.now()
        with services.db.connect() as conn:
            due = outbox.due_channels(conn, now)
            later = outbox.next_due(conn, now)
    except Exception:  # the loop must survive anything; the next pass retries
        log.exception("looking for due notifications failed")
        return [], None
    wake = max((later - now).total_seconds(), 0.05) if later is not None else None
    return [(f"notify:{name}", deliver_due, name) for name in due], wake


def deliver_due(services: Services, channel: str) -> None:
    """The job: send `channel`'s due notifications. Never raises."""
    try:
        with services.db.connect() as conn:
            kind, sender = open_sender(services, channel, conn)
    except (NotFound, PermanentError) as exc:
        _give_up(services, channel, f"cannot send: {exc.reason}")
        return
    try:
        for _ in range(BATCH):
            claimed = outbox.claim(services, channel)
            if claimed is None:
                return
            try:
                sender.send(claimed.notification)
            except TransientError as exc:
                outbox.retry(services, claimed, exc.reason, exc.delay)
                telemetry.NOTIFICATION_DELIVERIES.labels(kind, "retried").inc()
                return
            except PermanentError as exc:
                outbox.failed(services, claimed, exc.reason)
                telemetry.NOTIFICATION_DELIVERIES.labels(kind, "failed").inc()
                continue
            except Exception as exc:  # an adapter bug: keep it, try again later
                log.exception("sending a notification to %s failed", channel)
                outbox.retry(services, claimed, f"unexpected error: {type(exc).__name__}",
                             None)
                telemetry.NOTIFICATION_DELIVERIES.labels(kind, "retried").inc()
                return
            outbox.delivered(services, claimed)
            telemetry.NOTIFICATION_DELIVERIES.labels(kind, "delivered").inc()
    finally:
        sender.close()


def _give_up(services: Services, channel: str, reason: str) -> None:
    while (claimed := outbox.claim(services, channel)) is not None:
        outbox.failed(services, claimed, reason)
        telemetry.NOTIFICATION_DELIVERIES.labels("unknown", "failed").inc()
