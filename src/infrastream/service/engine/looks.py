"""What an engine pass looks at before it acts, beside the releases: one statement.

Whether audit entries wait for the chainer (`auditing.trail`), what the SCM gate has to do
(`scm_pass`), whether a notification delivery is pending (`notify_job`), whether anybody
subscribed to notifications, the newest audit entry and whether one that may become a
notification follows what this server's notification pass handled (`notify_pass`), and the
manifests' current revision (so that the pass's freeze windows cost no statement of their
own). Each is an EXISTS probe on an indexed column or a primary-key `max`, and most passes
find nothing in any of them, so they are asked together, as the columns of one SELECT, in
the pass's read transaction: an idle pass pays one small statement for all of them, and no
transaction of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from ..auditing import trail as audit
from ..records.manifests import REVISION
from . import notify_job, notify_pass, scm_pass

_LOOKS = select(audit.ANY_WAITING, *scm_pass.COLUMNS, notify_job.PENDING,
                notify_pass.SUBSCRIBED, notify_pass.NEWEST_SEQ, notify_pass.NOTABLE_AFTER,
                REVISION)


@dataclass(frozen=True)
class Looks:
    audit_waiting: bool
    """Audit entries wait for the chainer (the pass links them)."""
    gate: scm_pass.Probe
    deliveries_pending: bool
    subscribed: bool
    """A notification subscription exists (else the notification pass rests)."""
    audit: notify_pass.AuditLook
    revision: int
    """The manifests' current revision (`records.manifests.current_bundle` takes it)."""


def look(conn: Connection, notify: notify_pass.NotifyPass) -> Looks:
    row = conn.execute(_LOOKS, {"notable_after": notify.handled}).one()
    (waiting, heads, merges, pending, checks, deliveries, subscribed, newest, notable,
     revision) = row
    return Looks(audit_waiting=bool(waiting),
                 gate=(bool(heads), bool(merges), bool(pending), bool(checks)),
                 deliveries_pending=bool(deliveries), subscribed=bool(subscribed),
                 audit=notify_pass.AuditLook(newest or 0, bool(notable)),
                 revision=int(revision))
