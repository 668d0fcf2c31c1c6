"""Appending to and reading the audit trail (a hash chain, see domain.audit_chain).

Every mutating use case calls `record` inside its own transaction, so an action and its audit
entry commit together or not at all. Appends are serialised by reading the chain head
under the transaction's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row lock on the
`audit-head` setting).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from infrastream.domain.audit_chain import (
    GENESIS,
    AuditEntry,
    ChainVerdict,
    entry_hash,
    verify_chain,
)
from infrastream.store.clock import utc
from infrastream.store.tables import audit_log, server_settings

_HEAD = "audit-head"


def record(conn: Connection, *, at: datetime, actor: str, action: str, object_type: str,
           object_id: str, before: Any = None, after: Any = None) -> int:
    head = conn.execute(
        select(server_settings.c.value).where(server_settings.c.key == _HEAD).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        conn.execute(insert(server_settings).values(key=_HEAD, value=f"0:{GENESIS}"))
        head = f"0:{GENESIS}"
    last_seq_text, prev_hash = head.split(":", 1)
    seq = int(last_seq_text) + 1
    at = utc(at) or at
    digest = entry_hash(seq=seq, at=at, actor=actor, action=action, object_type=object_type,
                        object_id=object_id, before=before, after=after, prev_hash=prev_hash)
    conn.execute(insert(audit_log).values(
        seq=seq, at=at, actor=actor, action=action, object_type=object_type,
        object_id=object_id, before=before, after=after, prev_hash=prev_hash, hash=digest,
    ))
    conn.execute(update(server_settings).where(server_settings.c.key == _HEAD)
                 .values(value=f"{seq}:{digest}"))
    return seq


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(seq=row.seq, at=utc(row.at) or row.at, actor=row.actor, action=row.action,
                      object_type=row.object_type, object_id=row.object_id, before=row.before,
                      after=row.after, prev_hash=row.prev_hash, hash=row.hash)


def entries(conn: Connection, *, after: int = 0, limit: int | None = None,
            object_type: str | None = None, object_id: str | None = None,
            newest_first: bool = False) -> list[AuditEntry]:
    query = select(audit_log)
    if newest_first:
        query = query.order_by(audit_log.c.seq.desc())
        if after:
            query = query.where(audit_log.c.seq < after)
    else:
        query = query.where(audit_log.c.seq > after).order_by(audit_log.c.seq)
    if object_type:
        query = query.where(audit_log.c.object_type == object_type)
    if object_id:
        query = query.where(audit_log.c.object_id == object_id)
    if limit:
        query = query.limit(limit)
    return [_entry(row) for row in conn.execute(query)]


def _all(conn: Connection, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        chunk = conn.execute(
            select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch)
        ).all()
        if not chunk:
            return
        for row in chunk:
            yield _entry(row)
        last = chunk[-1].seq


def verify(conn: Connection) -> ChainVerdict:
    verdict = verify_chain(_all(conn))
    if not verdict.ok:
        return verdict
    head = conn.execute(
        select(server_settings.c.value).where(server_settings.c.key == _HEAD)
    ).scalar_one_or_none()
    if head is not None:
        last_seq, last_hash = head.split(":", 1)
        tail = conn.execute(select(audit_log.c.seq, audit_log.c.hash)
                            .order_by(audit_log.c.seq.desc()).limit(1)).first()
        if tail is None or tail.seq != int(last_seq) or tail.hash != last_hash:
            return ChainVerdict(False, verdict.entries, int(last_seq),
                                f"entry {last_seq} (the newest recorded) is missing or edited")
    return verdict
