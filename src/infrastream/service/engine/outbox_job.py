"""The engine's outbox job: deliver the queued commit statuses of one connection.

Each pass hands out one job per connection with a due status (`scm_outbox.due_connections`);
the job sends that connection's due statuses oldest first, in a worker thread, so a slow or
dead host never holds up a pass. A status the host refuses for good (`PermanentError`: bad
token, unknown repository) is marked failed with the host's words; when the host is down or
limits us (`TransientError`) the status is retried after a backoff (or the `Retry-After` the
host named), and the connection's other due statuses wait with it.
"""

from __future__ import annotations

import logging

from infrastream.domain.errors import NotFound, PermanentError, TransientError

from .. import scm_outbox, telemetry
from ..context import Services
from ..scm_connections import connected

log = logging.getLogger("infrastream.gate")
BATCH = 200
"""Statuses one job sends at most (the next pass hands out another job for the rest)."""


def deliver_due(services: Services, connection: str) -> None:
    """The job: send `connection`'s due statuses. Never raises."""
    try:
        provider = connected(services, connection).provider
    except (NotFound, PermanentError) as exc:
        _give_up(services, connection, f"cannot reach the host: {exc.reason}")
        return
    for _ in range(BATCH):
        claimed = scm_outbox.claim(services, connection)
        if claimed is None:
            return
        try:
            receipt = provider.report_status(claimed.repository, claimed.sha, claimed.status)
        except TransientError as exc:
            scm_outbox.retry(services, connection, claimed, exc.reason, exc.delay)
            telemetry.SCM_STATUSES.labels("retried").inc()
            return
        except PermanentError as exc:
            scm_outbox.failed(services, claimed, exc.reason)
            telemetry.SCM_STATUSES.labels("failed").inc()
            continue
        except Exception as exc:  # a provider bug: keep the status, try again later
            log.exception("reporting a status to %s failed", connection)
            scm_outbox.retry(services, connection, claimed,
                             f"unexpected error: {type(exc).__name__}", None)
            telemetry.SCM_STATUSES.labels("retried").inc()
            return
        scm_outbox.delivered(services, claimed, receipt)
        telemetry.SCM_STATUSES.labels("delivered").inc()


def _give_up(services: Services, connection: str, reason: str) -> None:
    while (claimed := scm_outbox.claim(services, connection)) is not None:
        scm_outbox.failed(services, claimed, reason)
