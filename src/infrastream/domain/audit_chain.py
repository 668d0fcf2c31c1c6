"""The audit trail's hash chain, as pure functions.

Each entry's hash covers its own fields and the previous entry's hash, so editing, removing
or reordering any entry breaks every hash after it. `verify_chain` walks entries in order and
names the first one that does not match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .release import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "at": self.at.isoformat(), "actor": self.actor,
            "action": self.action, "objectType": self.object_type, "objectId": self.object_id,
            "before": self.before, "after": self.after, "prevHash": self.prev_hash,
            "hash": self.hash,
        }


def entry_hash(*, seq: int, at: datetime, actor: str, action: str, object_type: str,
               object_id: str, before: Any, after: Any, prev_hash: str) -> str:
    body = {
        "seq": seq, "at": at.isoformat(), "actor": actor, "action": action,
        "objectType": object_type, "objectId": object_id, "before": before, "after": after,
        "prev": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str = ""


def verify_chain(entries: Iterable[AuditEntry]) -> ChainVerdict:
    previous_hash = GENESIS
    previous_seq = 0
    count = 0
    for entry in entries:
        count += 1
        if entry.seq <= previous_seq:
            return ChainVerdict(False, count, entry.seq,
                                f"entry {entry.seq} is out of order (after {previous_seq})")
        if entry.prev_hash != previous_hash:
            return ChainVerdict(False, count, entry.seq,
                                f"entry {entry.seq} does not follow entry {previous_seq}: "
                                "an entry before it was removed, reordered or edited")
        expected = entry_hash(seq=entry.seq, at=entry.at, actor=entry.actor,
                              action=entry.action, object_type=entry.object_type,
                              object_id=entry.object_id, before=entry.before,
                              after=entry.after, prev_hash=entry.prev_hash)
        if expected != entry.hash:
            return ChainVerdict(False, count, entry.seq,
                                f"entry {entry.seq} was edited: its content does not match "
                                "its hash")
        previous_hash = entry.hash
        previous_seq = entry.seq
    return ChainVerdict(True, count)
