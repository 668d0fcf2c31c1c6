"""Browsing the audit trail by page, and a verification status cheap enough for every view.

Pages are keyset-paginated (`before=<seq>`, newest first) and never count. An object filter
(type and id) uses the object index. Filters the schema has no index for (actor, action, a
type or an id alone) search a window of `WINDOW` entries below `before`; a page that finds
fewer matches says which entries it searched and offers the next window, so no request
reads more than the window, with a thousand entries or a million.

Verifying the whole chain reads every entry (seconds for a million), so a page shows
`chain_status`: the newest signed checkpoint (its signature, and that the entry it pins still
has the signed hash) and the chain from that checkpoint to the head, up to `TAIL` entries;
a later call resumes where the previous one ended (when that entry is unchanged), so a page
view verifies only what was appended since the last one.
The chain before the checkpoint was verified when the checkpoint was signed (signing
refuses a broken segment); `verify_everything` re-reads it all on request, and its last
result is kept for the pages to show.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from infrastream.domain.audit_chain import GENESIS, entry_hash
from infrastream.domain.evidence import checkpoint_payload, key_id, verify_signature
from infrastream.store.clock import utc
from infrastream.store.tables import audit_checkpoints, audit_log, server_settings

from ..context import Services
from . import signing
from . import trail as audit
from .verify import verify_all

PAGE = 50
WINDOW = 50_000
TAIL = 5_000
_HEAD = "audit-head"


def _match(column: Any, value: str, *, indexed: bool) -> ColumnElement[bool]:
    """`column` equals `value` (or starts with it, for `value*`); off the index unless
    `indexed`, so that a windowed search walks the primary key and nothing else."""
    target: ColumnElement[str] = column if indexed else column + ""
    if value.endswith("*"):
        prefix = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return target.like(prefix + "%", escape="\\")
    return target == value


def _view(row: Any) -> dict[str, Any]:
    at = utc(row.at) or row.at
    return {"seq": row.seq, "at": at.isoformat(), "actor": row.actor, "action": row.action,
            "objectType": row.object_type, "objectId": row.object_id, "before": row.before,
            "after": row.after, "hash": row.hash}


def audit_page(services: Services, *, actor: str | None = None, action: str | None = None,
               object_type: str | None = None, object_id: str | None = None,
               before: int | None = None, limit: int = PAGE) -> dict[str, Any]:
    """One page of entries, newest first, below `before`; `next` is the next page's `before`."""
    actor, action = actor or None, action or None
    object_type, object_id = object_type or None, object_id or None
    by_object = object_type is not None and object_id is not None
    audit.settle(services.db)
    windowed = not by_object and any((actor, action, object_type, object_id))
    with services.db.connect() as conn:
        newest = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq.desc())
                              .limit(1)).scalar_one_or_none() or 0
        top = min(before, newest + 1) if before else newest + 1
        where: ColumnElement[bool] = audit_log.c.seq < top
        floor = max(top - WINDOW, 1) if windowed else 1
        if windowed:
            where = where & (audit_log.c.seq >= floor)
        if by_object:
            where = where & (audit_log.c.object_type == object_type) \
                & (audit_log.c.object_id == object_id)
        else:
            for column, value in ((audit_log.c.object_type, object_type),
                                  (audit_log.c.object_id, object_id)):
                if value:
                    where = where & _match(column, value, indexed=False)
        for column, value in ((audit_log.c.actor, actor), (audit_log.c.action, action)):
            if value:
                where = where & _match(column, value, indexed=False)
        rows = conn.execute(select(audit_log).where(where).order_by(audit_log.c.seq.desc())
                            .limit(limit + 1)).all()
    entries = [_view(r) for r in rows[:limit]]
    searched = None
    if len(rows) > limit:
        following: int | None = entries[-1]["seq"]
    elif windowed and floor > 1:
        following = floor
        searched = {"from": floor, "to": top - 1}
    else:
        following = None
    return {"entries": entries, "next": following, "newest": newest, "searched": searched,
            "windowed": windowed}


def chain_status(services: Services, *, tail: int = TAIL) -> dict[str, Any]:
    """The newest checkpoint checked and the chain after it verified (up to `tail` entries)."""
    public = signing.private_key(services).public_key()
    current_key = key_id(public)
    problems: list[str] = []
    audit.settle(services.db)
    with services.db.connect() as conn:
        head = conn.execute(select(audit_log.c.seq, audit_log.c.hash)
                            .order_by(audit_log.c.seq.desc()).limit(1)).first()
        checkpoint = conn.execute(select(audit_checkpoints)
                                  .order_by(audit_checkpoints.c.seq.desc()).limit(1)).first()
        start_seq, start_hash = 0, GENESIS
        pinned = None
        if checkpoint is not None:
            pinned = signing.checkpoint_json(checkpoint)
            payload = checkpoint_payload(checkpoint.seq, checkpoint.hash, pinned["at"])
            if checkpoint.key_id != current_key:
                problems.append(f"checkpoint {checkpoint.seq} was signed with key "
                                f"{checkpoint.key_id}, not this server's key {current_key}")
            elif not verify_signature(public, payload, checkpoint.signature):
                problems.append(f"checkpoint {checkpoint.seq}'s signature does not verify")
            else:
                stored = conn.execute(select(audit_log.c.hash).where(
                    audit_log.c.seq == checkpoint.seq)).scalar_one_or_none()
                if stored != checkpoint.hash:
                    problems.append(f"entry {checkpoint.seq} does not match signed checkpoint "
                                    f"{checkpoint.seq}: it was "
                                    + ("deleted" if stored is None else "rewritten"))
            start_seq, start_hash = checkpoint.seq, checkpoint.hash
        resume_seq, resume_hash = start_seq, start_hash
        if not problems:
            resume_seq, resume_hash = _resume(services, conn, start_seq, start_hash)
        verified_to, verified_hash, problem = _verify_tail(conn, resume_seq, resume_hash, tail)
        if problem:
            problems.append(problem)
        else:
            with _progress_lock:
                _progress[str(services.db.url)] = (start_seq, verified_to, verified_hash)
        if not problems and head is not None:
            problems.extend(_head_problem(conn, head))
    head_seq = head.seq if head is not None else 0
    unverified = max(head_seq - verified_to, 0) if not problems else 0
    if problems:
        reason = problems[0]
    elif unverified:
        reason = (f"entries {start_seq + 1}–{verified_to} after the last checkpoint verify; "
                  f"the {unverified} newer entries are not checked here")
    elif checkpoint is not None:
        reason = (f"checkpoint {checkpoint.seq} is signed by this server and the "
                  f"{head_seq - start_seq} entries after it verify")
    else:
        reason = f"no checkpoint yet; all {head_seq} entries verify"
    return {"ok": not problems, "head": head_seq, "checkpoint": pinned,
            "verifiedFrom": start_seq + 1, "verifiedTo": verified_to, "unverified": unverified,
            "reason": reason, "problems": problems, "lastFull": last_full(services)}


_progress_lock = threading.Lock()
_progress: dict[str, tuple[int, int, str]] = {}
"""Per database: (checkpoint seq, seq verified up to after it, that entry's hash)."""


def _resume(services: Services, conn: Connection, start_seq: int,
            start_hash: str) -> tuple[int, str]:
    """Where the tail verification of an earlier call of this process ended, if it still
    applies (same checkpoint, and the entry it ended at is unchanged); else the start."""
    with _progress_lock:
        found = _progress.get(str(services.db.url))
    if found is None or found[0] != start_seq or found[1] <= start_seq:
        return start_seq, start_hash
    still = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == found[1])
                         ).scalar_one_or_none()
    return (found[1], found[2]) if still == found[2] else (start_seq, start_hash)


def _verify_tail(conn: Connection, seq: int, previous: str,
                 limit: int) -> tuple[int, str, str]:
    """Verify up to `limit` entries after (seq, previous): how far, its hash, a problem."""
    rows = conn.execute(select(audit_log).where(audit_log.c.seq > seq)
                        .order_by(audit_log.c.seq).limit(limit)).all()
    for row in rows:
        at = utc(row.at) or row.at
        if row.seq != seq + 1:
            return seq, previous, (f"entries {seq + 1}–{row.seq - 1} are missing after "
                                   f"entry {seq}")
        if row.prev_hash != previous:
            return seq, previous, f"entry {row.seq} does not follow entry {seq}"
        expected = entry_hash(seq=row.seq, at=at, actor=row.actor, action=row.action,
                              object_type=row.object_type, object_id=row.object_id,
                              before=row.before, after=row.after, prev_hash=row.prev_hash)
        if expected != row.hash:
            return seq, previous, (f"entry {row.seq} was edited: its content does not "
                                   "match its hash")
        seq, previous = row.seq, row.hash
    return seq, previous, ""


def _head_problem(conn: Connection, head: Any) -> list[str]:
    recorded = conn.execute(select(server_settings.c.value).where(
        server_settings.c.key == _HEAD)).scalar_one_or_none()
    if recorded is None:
        return []
    seq, digest = recorded.split(":", 1)
    if int(seq) != head.seq or digest != head.hash:
        return [f"entry {seq} (the newest recorded) is missing or edited"]
    return []


# -- full verification on request ------------------------------------------------------

_full_lock = threading.Lock()
_full: dict[str, tuple[datetime, dict[str, Any]]] = {}


def verify_everything(services: Services) -> dict[str, Any]:
    """Verify every entry and checkpoint (slow for large trails) and remember the result."""
    result = verify_all(services).to_json()
    with _full_lock:
        _full[str(services.db.url)] = (services.now(), result)
    return {**result, "at": services.now().isoformat()}


def last_full(services: Services) -> dict[str, Any] | None:
    """The last `verify_everything` result of this process, with when it ran."""
    with _full_lock:
        found = _full.get(str(services.db.url))
    return None if found is None else {**found[1], "at": found[0].isoformat()}
