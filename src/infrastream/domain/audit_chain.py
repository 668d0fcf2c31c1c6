"""The audit trail's hash chain, as pure functions.

Each entry's hash covers its own fields and the previous entry's hash, so editing, removing
or reordering any entry breaks every hash after it. `verify_chain` walks entries in order and
names the first one that does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .release import canonical_json

_text = json.encoder.encode_basestring  # what canonical_json does to a string (C, no escape)

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


StoredEntry = Sequence[Any]
"""(seq, at, actor, action, object_type, object_id, before text, after text, prev, hash): an
entry as stored, `at` as its UTC ISO 8601 text (`datetime.isoformat`), `before`/`after` as
the canonical JSON text they were written as."""


def stored_bytes(seq: int, at: str, actor: str, action: str, object_type: str,
                 object_id: str, before: str, after: str, prev_hash: str) -> bytes:
    """The bytes `entry_hash` covers, assembled from stored canonical texts (no JSON work):
    `canonical_json` of the body, keys in their sorted order."""
    return (f'{{"action":{_text(action)},"actor":{_text(actor)},"after":{after},'
            f'"at":"{at}","before":{before},"objectId":{_text(object_id)},'
            f'"objectType":{_text(object_type)},"prev":{_text(prev_hash)},"seq":{seq}}}'
            ).encode()


def _stored_hash(row: StoredEntry) -> str:
    seq, at, actor, action, object_type, object_id, before, after, prev, _ = row
    digest = hashlib.sha256(stored_bytes(seq, at, actor, action, object_type, object_id,
                                         before or "null", after or "null", prev)).hexdigest()
    if digest == row[9]:
        return digest
    # Written before the texts were canonical (or edited): the hash of the decoded values.
    return entry_hash(seq=seq, at=datetime.fromisoformat(at), actor=actor, action=action,
                      object_type=object_type, object_id=object_id,
                      before=json.loads(before or "null"), after=json.loads(after or "null"),
                      prev_hash=prev)


class ChainWalk:
    """`verify_chain` over stored entries fed chunk by chunk (verification streams)."""

    def __init__(self) -> None:
        self.previous_hash = GENESIS
        self.previous_seq = 0
        self.count = 0
        self.verdict: ChainVerdict | None = None

    def feed(self, rows: Iterable[StoredEntry]) -> bool:
        """Check these entries after the ones fed before; False once the chain is broken."""
        if self.verdict is not None:
            return False
        previous_hash, previous_seq, count = self.previous_hash, self.previous_seq, self.count
        for row in rows:
            count += 1
            seq = row[0]
            if seq <= previous_seq:
                self.verdict = ChainVerdict(False, count, seq,
                                            f"entry {seq} is out of order (after {previous_seq})")
                return False
            if row[8] != previous_hash:
                self.verdict = ChainVerdict(
                    False, count, seq, f"entry {seq} does not follow entry {previous_seq}: "
                    "an entry before it was removed, reordered or edited")
                return False
            if _stored_hash(row) != row[9]:
                self.verdict = ChainVerdict(False, count, seq,
                                            f"entry {seq} was edited: its content does not "
                                            "match its hash")
                return False
            previous_hash, previous_seq = row[9], seq
        self.previous_hash, self.previous_seq, self.count = previous_hash, previous_seq, count
        return True

    def result(self) -> ChainVerdict:
        return self.verdict or ChainVerdict(True, self.count)


Progress = Callable[[int], None]
"""Told how many entries are verified so far, after each chunk."""
