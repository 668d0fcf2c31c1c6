"""Appending to and reading the audit trail (a hash chain, see domain.audit_chain).

Every mutating use case calls `record` inside its own transaction, so an action and its audit
entry commit together or not at all. Appends are serialised on the chain head, the
`audit-head` setting (SQLite: the transaction's write lock from BEGIN IMMEDIATE;
PostgreSQL: the head row's lock). The head this process wrote last is kept as a hint: the
append moves the head with a compare-and-set against it (`UPDATE … WHERE value = hint`), so
the usual append is that one UPDATE and the INSERT (`record_many`: one of each for several
entries); when another process or a rollback moved the head meanwhile, the CAS matches
nothing and the head is read under lock as before. The head record is also what lets
`verify` notice a deleted newest entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

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

_READ_HEAD = (select(server_settings.c.value).where(server_settings.c.key == _HEAD)
              .with_for_update())
_MOVE_HEAD = (update(server_settings)
              .where((server_settings.c.key == _HEAD)
                     & (server_settings.c.value == bindparam("expected")))
              .values(value=bindparam("head")))
_SET_HEAD = update(server_settings).where(server_settings.c.key == _HEAD).values(
    value=bindparam("head"))
_APPEND = insert(audit_log)

_hints: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()
"""Per database engine: the head this process last wrote (a hint, checked by the CAS)."""


@dataclass(frozen=True)
class NewEntry:
    """An entry to append (its sequence number and hashes are the chain's business)."""

    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any = None
    after: Any = None


def record(conn: Connection, *, at: datetime, actor: str, action: str, object_type: str,
           object_id: str, before: Any = None, after: Any = None) -> int:
    return record_many(conn, [NewEntry(at, actor, action, object_type, object_id, before,
                                       after)])


def record_many(conn: Connection, entries: Sequence[NewEntry]) -> int:
    """Append entries in order, with one move of the head and one INSERT; the last seq."""
    if not entries:
        raise ValueError("nothing to record")
    engine = conn.engine
    hint = _hints.get(engine)
    if hint is not None:
        head, rows = _chain(hint, entries)
        if conn.execute(_MOVE_HEAD, {"expected": hint, "head": head}).rowcount == 1:
            return _append(conn, engine, head, rows)
    current = conn.execute(_READ_HEAD).scalar_one_or_none()
    if current is None:
        current = f"0:{GENESIS}"
        conn.execute(insert(server_settings).values(key=_HEAD, value=current))
    head, rows = _chain(current, entries)
    conn.execute(_SET_HEAD, {"head": head})
    return _append(conn, engine, head, rows)


def _chain(head: str, entries: Sequence[NewEntry]) -> tuple[str, list[dict[str, Any]]]:
    """The rows of `entries` chained after `head`, and the new head."""
    last_seq_text, prev_hash = head.split(":", 1)
    seq = int(last_seq_text)
    rows = []
    for entry in entries:
        seq += 1
        fields = {"at": utc(entry.at) or entry.at, "actor": entry.actor, "action": entry.action,
                  "object_type": entry.object_type, "object_id": entry.object_id,
                  "before": entry.before, "after": entry.after}
        digest = entry_hash(seq=seq, prev_hash=prev_hash, **fields)
        rows.append({"seq": seq, "prev_hash": prev_hash, "hash": digest, **fields})
        prev_hash = digest
    return f"{seq}:{prev_hash}", rows


def _append(conn: Connection, engine: Engine, head: str, rows: list[dict[str, Any]]) -> int:
    conn.execute(_APPEND, rows[0] if len(rows) == 1 else rows)
    _hints[engine] = head  # if this transaction rolls back, the next CAS just misses
    return int(rows[-1]["seq"])


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
