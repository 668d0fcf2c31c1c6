"""Appending to and reading the audit trail (a hash chain, see domain.audit_chain).

Every mutating use case calls `record` inside its own transaction, so an action and its audit
entry commit together or not at all. Linking an entry into the chain needs the chain head,
and holding the head through every user commit capped the whole installation at a few
hundred audited writes per second, so the head is taken out of the user transaction:

- `record` tries to become the *chainer* for its transaction (PostgreSQL: a transaction
  advisory lock taken with `pg_try_advisory_xact_lock`, never waited for; SQLite: the write
  lock the transaction already holds from BEGIN IMMEDIATE). The chainer links the entries
  other transactions left waiting, then its own, and moves the `audit-head` setting.
- A transaction that does not get the lock appends its entries to `audit_pending` and goes
  on: no wait, no shared row. The next chainer (another writer, the engine pass, or any
  reader of the trail through `settle`) links them, in the order of their ids.

So exactly one server links at a time, entries are totally ordered by `seq` (contiguous, in
chaining order, which respects commit order: an entry committed before another transaction
started has the smaller id), and the stored chain is what it always was, so verification,
checkpoints and evidence packs are unchanged. The head this process wrote last is kept as a
hint: the chainer moves the head with a compare-and-set against it (`UPDATE … WHERE value =
hint`); when another process or a rollback moved it meanwhile, the head is read. The head
record is also what lets `verify` notice a deleted newest entry.

The statements every audited write runs (become the chainer, look for waiting entries, move
the head, append) go through the raw DB-API cursor of the transaction's connection, on
SQLite and PostgreSQL: each is a tiny statement, and SQLAlchemy's per-statement execution
cost (issue 18: an audited write ~530 µs CPU through it, ~70 µs raw) was most of an audited
write, in every use case and engine step. Their values are what SQLAlchemy would have bound
(the `at` column's own bind processor, `before`/`after` as `CanonicalJSON` writes them), so
the stored rows and the chain are the same; a driver error is raised as SQLAlchemy's
exception, like every other statement's. The rare paths (entries left waiting, a head moved
by another process) stay on SQLAlchemy, and so does the rest of the project.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from infrastream.domain.audit_chain import (
    GENESIS,
    AuditEntry,
    ChainVerdict,
    ChainWalk,
    Progress,
    entry_hash,
)
from infrastream.domain.release import canonical_json
from infrastream.store.clock import utc
from infrastream.store.database import writing
from infrastream.store.tables import audit_log, audit_pending, server_settings

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
           object_id: str, before: Any = None, after: Any = None) -> None:
    record_many(conn, [NewEntry(at, actor, action, object_type, object_id, before,
                                       after)])


def record_many(conn: Connection, entries: Sequence[NewEntry]) -> None:
    """Append entries in order: linked now when this transaction is the chainer, else left
    in `audit_pending` for the next chainer."""
    if not entries:
        raise ValueError("nothing to record")
    fields = [{"at": utc(e.at) or e.at, "actor": e.actor, "action": e.action,
               "object_type": e.object_type, "object_id": e.object_id, "before": e.before,
               "after": e.after} for e in entries]
    if not _try_chainer(conn):
        conn.execute(_PEND, fields[0] if len(fields) == 1 else fields)
        return
    _link(conn, [*_take_waiting(conn), *fields])


_CHAINER_KEY = 0x1A7D17  # the advisory lock that makes one transaction the chainer
_TRY_LOCK = text(f"SELECT pg_try_advisory_xact_lock({_CHAINER_KEY})")
_LOCK = text(f"SELECT pg_advisory_xact_lock({_CHAINER_KEY})")
_PEND = insert(audit_pending)
_TAKE = delete(audit_pending).returning(*audit_pending.c)
_ANY_WAITING = select(audit_pending.c.id).limit(1)
ANY_WAITING = select(audit_pending.c.id).exists()
"""Whether an entry waits for the chainer, as a column (the engine asks it with others)."""
_WAITING = select(func.count()).select_from(audit_pending)


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


@dataclass(frozen=True)
class _Raw:
    """The hot statements as DB-API SQL for one dialect, and how to bind `at`."""

    try_lock: str
    any_waiting: str
    move_head: str
    append: str
    at: Callable[[Any], Any]


_COLUMNS = ("seq", "at", "actor", "action", "object_type", "object_id", "before", "after",
            "prev_hash", "hash")
_raw_dialects: dict[tuple[str, str], _Raw | None] = {}


def _raw(dialect: Dialect) -> _Raw | None:
    """The raw statements for SQLite (qmark) and PostgreSQL (psycopg: format); None for any
    other database or parameter style (it stays on SQLAlchemy)."""
    key = (dialect.name, dialect.driver)
    if key in _raw_dialects:
        return _raw_dialects[key]
    found = None
    if (dialect.name, dialect.paramstyle) in (("sqlite", "qmark"), ("postgresql", "pyformat"),
                                              ("postgresql", "format")):
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        json = mark if dialect.name == "sqlite" else f"{mark}::json"
        marks = ", ".join(json if c in ("before", "after") else mark for c in _COLUMNS)
        names = ", ".join(f'"{c}"' if c in ("before", "after") else c for c in _COLUMNS)
        bind_at = audit_log.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        found = _Raw(
            try_lock=f"SELECT pg_try_advisory_xact_lock({_CHAINER_KEY})",
            any_waiting="SELECT id FROM audit_pending LIMIT 1",
            move_head=f'UPDATE server_settings SET value = {mark} '
                      f'WHERE "key" = {mark} AND value = {mark}',
            append=f"INSERT INTO audit_log ({names}) VALUES ({marks})",
            at=bind_at or (lambda value: value))
    _raw_dialects[key] = found
    return found


def _cursor_run(conn: Connection, sql: str, params: Any = (), *, many: bool = False) -> Any:
    """Run `sql` on the DB-API cursor of `conn`'s transaction: its row count and rows."""
    cursor = conn.connection.cursor()
    dbapi = conn.dialect.loaded_dbapi
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        rows = list(cursor.fetchall()) if cursor.description is not None else []
        return _Ran(cursor.rowcount, rows)
    except dbapi.Error as error:
        raise DBAPIError.instance(sql, params, error, dbapi.Error,
                                  dialect=conn.dialect) from error
    finally:
        cursor.close()


@dataclass(frozen=True)
class _Ran:
    rowcount: int
    rows: list[Any]


def _try_chainer(conn: Connection) -> bool:
    """Become the chainer of this transaction without waiting (SQLite: already the one writer)."""
    if not _postgres(conn):
        return True
    raw = _raw(conn.dialect)
    if raw is None:
        return bool(conn.execute(_TRY_LOCK).scalar_one())
    return bool(_cursor_run(conn, raw.try_lock).rows[0][0])


def _none_waiting(conn: Connection) -> bool:
    """Inside the chainer's transaction (raw: every audited write looks)."""
    raw = _raw(conn.dialect)
    if raw is None:
        return conn.execute(_ANY_WAITING).first() is None
    return not _cursor_run(conn, raw.any_waiting).rows


def _take_waiting(conn: Connection) -> list[dict[str, Any]]:
    """The chainer takes every waiting entry (visible to it: committed, or its own), id order."""
    if _none_waiting(conn):
        return []  # the usual case, without taking a row lock on anything
    rows = sorted(conn.execute(_TAKE).all(), key=lambda row: row.id)
    return [{"at": utc(r.at) or r.at, "actor": r.actor, "action": r.action,
             "object_type": r.object_type, "object_id": r.object_id, "before": r.before,
             "after": r.after} for r in rows]


def _link(conn: Connection, fields: list[dict[str, Any]]) -> None:
    """Chain `fields` after the head (the caller is the chainer) and move the head."""
    if not fields:
        return
    engine = conn.engine
    hint = _hints.get(engine)
    if hint is not None:
        head, rows = _chain(hint, fields)
        if _move_head(conn, hint, head):
            _append(conn, engine, head, rows)
            return
    current = conn.execute(_READ_HEAD).scalar_one_or_none()
    if current is None:
        current = f"0:{GENESIS}"
        conn.execute(insert(server_settings).values(key=_HEAD, value=current))
    head, rows = _chain(current, fields)
    conn.execute(_SET_HEAD, {"head": head})
    _append(conn, engine, head, rows)


def any_waiting(conn: Connection) -> bool:
    """Whether an entry waits for the chainer (a cheap look; `settle` links them)."""
    return conn.execute(_ANY_WAITING).first() is not None


def settle(db: Engine, *, looked: bool = False) -> int:
    """Link every entry waiting to be chained (waits for the chainer lock); how many.
    `looked`: the caller just saw some waiting (`any_waiting`), so skip the first look."""
    linked = 0
    while True:
        if not looked:
            with db.connect() as conn:
                if not any_waiting(conn):
                    return linked
        looked = False
        with writing(db) as conn:
            if _postgres(conn):
                conn.execute(_LOCK)
            waiting = _take_waiting(conn)
            _link(conn, waiting)
            linked += len(waiting)


def waiting(conn: Connection) -> int:
    """How many committed entries wait for the chainer (not yet in the chain)."""
    return int(conn.execute(_WAITING).scalar_one())


def _chain(head: str, entries: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The rows of `entries` chained after `head`, and the new head."""
    last_seq_text, prev_hash = head.split(":", 1)
    seq = int(last_seq_text)
    rows = []
    for fields in entries:
        seq += 1
        digest = entry_hash(seq=seq, prev_hash=prev_hash, **fields)
        rows.append({"seq": seq, "prev_hash": prev_hash, "hash": digest, **fields})
        prev_hash = digest
    return f"{seq}:{prev_hash}", rows


def _move_head(conn: Connection, expected: str, head: str) -> bool:
    """Compare-and-set the head from `expected` (this process's hint) to `head`."""
    raw = _raw(conn.dialect)
    if raw is None:
        return bool(conn.execute(_MOVE_HEAD, {"expected": expected, "head": head}).rowcount == 1)
    return bool(_cursor_run(conn, raw.move_head, (head, _HEAD, expected)).rowcount == 1)


def _append(conn: Connection, engine: Engine, head: str, rows: list[dict[str, Any]]) -> None:
    raw = _raw(conn.dialect)
    if raw is None:
        conn.execute(_APPEND, rows[0] if len(rows) == 1 else rows)
    else:
        values = [(r["seq"], raw.at(r["at"]), r["actor"], r["action"], r["object_type"],
                   r["object_id"], canonical_json(r["before"]).decode(),
                   canonical_json(r["after"]).decode(), r["prev_hash"], r["hash"])
                  for r in rows]
        if len(values) == 1:
            _cursor_run(conn, raw.append, values[0])
        else:
            _cursor_run(conn, raw.append, values, many=True)
    _hints[engine] = head  # if this transaction rolls back, the next CAS just misses


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


_STORED_COLUMNS = {
    # `at` as text: SQLite keeps what SQLAlchemy wrote ('YYYY-MM-DD HH:MM:SS.ffffff', UTC);
    # PostgreSQL is asked for the same form in UTC.
    "sqlite": "at",
    "postgresql": """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')""",
}


def _stored_query(dialect: str, after: int, chunk: int) -> str:
    at = _STORED_COLUMNS.get(dialect, "at")
    return (f"SELECT seq, {at}, actor, action, object_type, object_id, CAST(before AS TEXT), "
            f"CAST(after AS TEXT), prev_hash, hash FROM audit_log WHERE seq > {int(after)} "
            f"ORDER BY seq LIMIT {int(chunk)}")


def _iso(stored: str) -> str:
    """'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) as `datetime.isoformat` writes it."""
    text = stored[:10] + "T" + stored[11:]
    return (text[:-7] if text.endswith(".000000") else text) + "+00:00"


def verify(conn: Connection, *, chunk: int = 20_000,
           progress: Progress | None = None) -> ChainVerdict:
    """The chain checked from its stored texts (the raw DB-API cursor: no per-row type
    processing), streamed in chunks of `chunk` entries."""
    walk = ChainWalk()
    last = 0
    cursor = conn.connection.cursor()
    try:
        while True:
            cursor.execute(_stored_query(conn.dialect.name, last, chunk))
            rows = cursor.fetchall()
            if not rows:
                break
            if not walk.feed([(r[0], _iso(str(r[1])), *r[2:]) for r in rows]):
                break
            last = rows[-1][0]
            if progress is not None:
                progress(walk.count)
    finally:
        cursor.close()
    verdict = walk.result()
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
