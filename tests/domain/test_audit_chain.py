"""The audit hash chain detects an edited, a removed and a reordered entry."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from infrastream.domain.audit_chain import GENESIS, AuditEntry, entry_hash, verify_chain

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def chain(length: int) -> list[AuditEntry]:
    entries, previous = [], GENESIS
    for seq in range(1, length + 1):
        fields = dict(seq=seq, at=START + timedelta(seconds=seq), actor="rita",
                      action="release.create", object_type="release", object_id=f"shop/v{seq}",
                      before=None, after={"n": seq})
        digest = entry_hash(**fields, prev_hash=previous)
        entries.append(AuditEntry(**fields, prev_hash=previous, hash=digest))
        previous = digest
    return entries


def test_an_untouched_chain_verifies():
    verdict = verify_chain(chain(5))
    assert verdict.ok and verdict.entries == 5


def test_an_edited_entry_is_named():
    entries = chain(5)
    entries[2] = replace(entries[2], actor="mallory")
    verdict = verify_chain(entries)
    assert not verdict.ok and verdict.broken_at == 3 and "edited" in verdict.reason


def test_a_removed_entry_breaks_the_next_one():
    entries = chain(5)
    del entries[1]
    verdict = verify_chain(entries)
    assert not verdict.ok and verdict.broken_at == 3


def test_reordered_entries_are_detected():
    entries = chain(5)
    entries[1], entries[2] = entries[2], entries[1]
    verdict = verify_chain(entries)
    assert not verdict.ok and verdict.broken_at == 3


def test_the_stored_bytes_are_the_canonical_body_the_hash_covers():
    from infrastream.domain.audit_chain import stored_bytes
    from infrastream.domain.release import canonical_json

    at = datetime(2026, 12, 2, 13, 0, 0, 123456, tzinfo=UTC)
    before = {"z": 1, "a": ["ü", {"q": 'say "hi"\n'}], "m": None}
    after = {"tab\t": "é\\", "n": 1.5}
    fields = {"seq": 7, "at": at, "actor": 'an "odd" ü actor', "action": "release.create",
              "object_type": "release", "object_id": "shop/2026.12.02-1\u2028",
              "prev_hash": "ab" * 32}
    expected = entry_hash(before=before, after=after, **fields)
    spliced = stored_bytes(before=canonical_json(before).decode(),
                           after=canonical_json(after).decode(),
                           **{**fields, "at": at.isoformat()})
    assert hashlib.sha256(spliced).hexdigest() == expected
