"""Exporting the audit trail as JSON lines, for an auditor or a log archive (SIEM, WORM store).

One line per audit entry (`"type": "entry"`, with its hashes, so the chain can be re-checked
outside Infrastream), then one per signed checkpoint (`"type": "checkpoint"`) in the same
time range. `since` is inclusive, `until` exclusive; naive times are UTC. The trail is read
in batches, each on a short connection of its own, so a slow reader of a long export never
holds the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, select, true

from infrastream.domain.audit_chain import AuditEntry
from infrastream.store.clock import utc
from infrastream.store.tables import audit_checkpoints, audit_log

from ..context import Services
from . import signing, trail

BATCH = 2000


def _in_range(table: Table, since: datetime | None,
              until: datetime | None) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(table.c.at >= utc(since))
    if until is not None:
        conditions.append(table.c.at < utc(until))
    return and_(true(), *conditions)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(seq=row.seq, at=utc(row.at) or row.at, actor=row.actor,
                      action=row.action, object_type=row.object_type, object_id=row.object_id,
                      before=row.before, after=row.after, prev_hash=row.prev_hash,
                      hash=row.hash)


def _batches(services: Services, table: Table, since: datetime | None,
             until: datetime | None) -> Iterator[Sequence[Any]]:
    last = 0
    while True:
        with services.db.connect() as conn:
            rows = conn.execute(select(table).where(_in_range(table, since, until)
                                                    & (table.c.seq > last))
                                .order_by(table.c.seq).limit(BATCH)).all()
        if rows:
            yield rows
        if len(rows) < BATCH:
            return
        last = rows[-1].seq


def export(services: Services, since: datetime | None = None,
           until: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The audit entries, then the checkpoints, made in [since, until), oldest first."""
    trail.settle(services.db)
    for rows in _batches(services, audit_log, since, until):
        for row in rows:
            yield {"type": "entry", **_entry(row).to_json()}
    for rows in _batches(services, audit_checkpoints, since, until):
        for row in rows:
            yield {"type": "checkpoint", **signing.checkpoint_json(row)}
