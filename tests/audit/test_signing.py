"""Signed checkpoints make the audit trail verifiable against someone who can write the database.

On SQLite and PostgreSQL: a checkpoint signs the chain head once; an entry at or before a
checkpoint that is edited, deleted or re-hashed is named against that checkpoint; a forged
checkpoint signature is caught; the export is JSON lines filtered by time.
"""

from __future__ import annotations

import json
import stat
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, update

from infrastream.domain.audit_chain import AuditEntry, entry_hash, verify_chain
from infrastream.domain.errors import Conflict
from infrastream.domain.evidence import key_id as key_id_of
from infrastream.domain.evidence import load_public_key
from infrastream.service.auditing import (
    export as audit_export,
)
from infrastream.service.auditing import (
    signing,
)
from infrastream.service.auditing import (
    trail as audit,
)
from infrastream.service.auditing import (
    verify as audit_verify,
)
from infrastream.store.tables import audit_checkpoints, audit_log, server_settings

sys.path.insert(0, str(Path(__file__).parent.parent / "engine"))
from story import Story


@pytest.fixture
def story(tmp_path, database_url, monkeypatch):
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    story = Story.begin(tmp_path, database_url, target="noop")
    story.apply_manifests()
    story.record_versions("1.0.0")
    yield story
    story.finish()


def _head(story: Story) -> int:
    with story.services.db.connect() as conn:
        return audit.entries(conn, limit=1, newest_first=True)[0].seq


def _edit(story: Story, seq: int, **values) -> None:
    with story.services.transaction() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(**values))


def _rewrite_from(story: Story, seq: int, actor: str) -> None:
    """What a careful forger does: edit one entry, re-hash it and every entry after it."""
    with story.services.transaction() as conn:
        entries = audit.entries(conn)
        previous = entries[seq - 2].hash if seq > 1 else "0" * 64
        for entry in entries[seq - 1:]:
            if entry.seq == seq:
                entry = replace(entry, actor=actor)
            digest = entry_hash(seq=entry.seq, at=entry.at, actor=entry.actor,
                                action=entry.action, object_type=entry.object_type,
                                object_id=entry.object_id, before=entry.before,
                                after=entry.after, prev_hash=previous)
            conn.execute(update(audit_log).where(audit_log.c.seq == entry.seq).values(
                actor=entry.actor, prev_hash=previous, hash=digest))
            previous = digest
        conn.execute(update(server_settings).where(server_settings.c.key == "audit-head")
                     .values(value=f"{entries[-1].seq}:{previous}"))


def test_a_checkpoint_signs_the_chain_head_once_and_verifies(story):
    head = _head(story)
    created = signing.checkpoint(story.services)
    assert created is not None and created["seq"] == head
    assert created["keyId"] == signing.key_id(story.services)
    assert signing.checkpoint(story.services) is None, "the head did not move"

    key_file = story.services.data_dir / signing.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = load_public_key(signing.public_key_pem(story.services))
    assert key_id_of(public) == created["keyId"]

    verdict = audit_verify.verify_all(story.services).to_json()
    assert verdict == {"ok": True, "entries": head, "checkpoints": 1, "brokenAt": None,
                       "reason": "the chain is intact and every checkpoint verifies",
                       "problems": [], "waiting": 0}

    story.record_versions("1.0.1")
    moved = signing.checkpoint(story.services)
    assert moved is not None and moved["seq"] == head + 3
    assert signing.latest_checkpoint(story.services) == moved
    assert audit_verify.verify_all(story.services).to_json()["checkpoints"] == 2


def test_concurrent_checkpoints_of_the_same_head_do_not_fail(story):
    results, errors = [], []

    def take() -> None:
        try:
            results.append(signing.checkpoint(story.services))
        except Exception as error:  # pragma: no cover - the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    assert audit_verify.verify_all(story.services).to_json()["checkpoints"] == 1


def test_an_edited_entry_covered_by_a_checkpoint_is_named(story):
    checkpoint = signing.checkpoint(story.services)
    _edit(story, 2, actor="mallory")
    verdict = audit_verify.verify_all(story.services).to_json()
    assert not verdict["ok"] and verdict["brokenAt"] == 2
    assert verdict["reason"].startswith(
        f"entry 2 does not match signed checkpoint {checkpoint['seq']}: entry 2 was edited")


def test_a_deleted_entry_covered_by_a_checkpoint_is_named(story):
    checkpoint = signing.checkpoint(story.services)
    with story.services.transaction() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 3))
    verdict = audit_verify.verify_all(story.services).to_json()
    assert not verdict["ok"] and verdict["brokenAt"] == 3
    assert verdict["reason"] == (f"entry 3 does not match signed checkpoint "
                                 f"{checkpoint['seq']}: entry 3 was deleted")


def test_deleting_the_checkpointed_entry_itself_is_named(story):
    checkpoint = signing.checkpoint(story.services)
    seq = checkpoint["seq"]
    with story.services.transaction() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == seq))
    verdict = audit_verify.verify_all(story.services).to_json()
    assert not verdict["ok"] and verdict["brokenAt"] == seq
    assert verdict["reason"] == (f"entry {seq} does not match signed checkpoint {seq}: "
                                 "the entry was deleted")


def test_a_rewritten_and_rehashed_chain_passes_the_chain_but_not_the_checkpoint(story):
    checkpoint = signing.checkpoint(story.services)
    _rewrite_from(story, 2, actor="mallory")
    with story.services.db.connect() as conn:
        assert audit.verify(conn).ok, "the forgery fools the hash chain alone"
    verdict = audit_verify.verify_all(story.services).to_json()
    seq = checkpoint["seq"]
    assert not verdict["ok"] and verdict["brokenAt"] == seq
    assert verdict["reason"].startswith(f"entry {seq} does not match signed checkpoint {seq}")


def test_a_forged_checkpoint_signature_is_detected(story):
    checkpoint = signing.checkpoint(story.services)
    _rewrite_from(story, 2, actor="mallory")
    with story.services.db.connect() as conn:
        forged_hash = audit.entries(conn, newest_first=True, limit=1)[0].hash
    with story.services.transaction() as conn:  # point the checkpoint at the forged head
        conn.execute(update(audit_checkpoints)
                     .where(audit_checkpoints.c.seq == checkpoint["seq"])
                     .values(hash=forged_hash))
    verdict = audit_verify.verify_all(story.services).to_json()
    assert not verdict["ok"] and verdict["brokenAt"] == checkpoint["seq"]
    assert verdict["reason"] == (f"checkpoint {checkpoint['seq']}'s signature does not verify: "
                                 "the checkpoint was forged or edited")


def test_a_checkpoint_signed_by_another_key_is_reported(story):
    checkpoint = signing.checkpoint(story.services)
    other = Ed25519PrivateKey.generate()
    with story.services.transaction() as conn:
        conn.execute(update(audit_checkpoints)
                     .where(audit_checkpoints.c.seq == checkpoint["seq"])
                     .values(key_id=key_id_of(other.public_key())))
    verdict = audit_verify.verify_all(story.services).to_json()
    assert not verdict["ok"]
    assert f"was signed with key {key_id_of(other.public_key())}" in verdict["reason"]


def test_an_edit_after_the_last_checkpoint_is_reported_by_the_chain_and_not_signed(story):
    signing.checkpoint(story.services)
    story.record_versions("1.0.1")
    last = _head(story)
    _edit(story, last, actor="mallory")
    verdict = audit_verify.verify_all(story.services).to_json()
    assert not verdict["ok"] and verdict["brokenAt"] == last
    assert "signed checkpoint" not in verdict["reason"]
    with pytest.raises(Conflict, match=f"broken at entry {last}; not signing"):
        signing.checkpoint(story.services)


def test_the_signing_key_can_come_from_the_environment(story, monkeypatch):
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    monkeypatch.setenv(signing.KEY_ENV, pem.replace("\n", "\\n"))
    assert signing.key_id(story.services) == key_id_of(key.public_key())
    assert not (story.services.data_dir / signing.KEY_FILE).exists()
    assert signing.checkpoint(story.services)["keyId"] == key_id_of(key.public_key())
    assert audit_verify.verify_all(story.services).to_json()["ok"]


def test_export_filters_by_time_and_yields_json_lines(story):
    start = datetime(2090, 11, 27, 9, 0, tzinfo=UTC)  # after the fixture's entries
    clock = {"now": start}
    story.services.now = lambda: clock["now"]
    for minute, tag in ((1, "2.0.0"), (2, "2.0.1"), (3, "2.0.2")):
        clock["now"] = start + timedelta(minutes=minute)
        story.record_versions(tag)
        clock["now"] += timedelta(seconds=30)
        signing.checkpoint(story.services)

    lines = list(audit_export.export(story.services, start + timedelta(minutes=2),
                                     start + timedelta(minutes=3)))
    text = [json.dumps(line) for line in lines]
    assert [json.loads(t) for t in text] == lines
    entries = [line for line in lines if line["type"] == "entry"]
    checkpoints = [line for line in lines if line["type"] == "checkpoint"]
    assert lines == entries + checkpoints, "entries first, then checkpoints"
    assert [e["after"]["image"].rsplit(":", 1)[1] for e in entries] == ["2.0.1"] * 3
    assert [c["at"] for c in checkpoints] == [(start + timedelta(minutes=2, seconds=30))
                                              .isoformat()]
    assert checkpoints[0]["seq"] == entries[-1]["seq"]

    everything = list(audit_export.export(story.services))
    chain = [AuditEntry(seq=e["seq"], at=datetime.fromisoformat(e["at"]), actor=e["actor"],
                        action=e["action"], object_type=e["objectType"],
                        object_id=e["objectId"], before=e["before"], after=e["after"],
                        prev_hash=e["prevHash"], hash=e["hash"])
             for e in everything if e["type"] == "entry"]
    assert verify_chain(chain).ok, "the export alone re-verifies outside Infrastream"
    assert len([e for e in everything if e["type"] == "checkpoint"]) == 3
    assert list(audit_export.export(story.services, since=start + timedelta(minutes=4))) == []
    earlier = list(audit_export.export(story.services, until=start))
    assert earlier and all(e["type"] == "entry" and e["at"] < start.isoformat()
                           for e in earlier)


def test_a_long_trail_is_walked_in_a_child_process_with_the_same_verdict(story, monkeypatch):
    """A trail longer than `IN_PROCESS_UP_TO` is walked by a child process, so the server's
    threads do not wait on its hashing: same verdict as in place, intact and edited. (The
    threshold is lowered to make this trail long; the parent's walk is made to fail, so
    only the child can have walked it.)"""
    checkpoint = signing.checkpoint(story.services)
    in_place = audit_verify.verify_all(story.services).to_json()
    assert in_place["ok"]

    def not_here(*_args, **_kwargs):
        raise AssertionError("the chain was walked in the server's process")

    monkeypatch.setattr(audit_verify, "IN_PROCESS_UP_TO", 0)
    monkeypatch.setattr(audit_verify.audit, "verify", not_here)
    assert audit_verify.verify_all(story.services).to_json() == in_place

    _edit(story, 2, actor="mallory")
    verdict = audit_verify.verify_all(story.services).to_json()
    assert not verdict["ok"] and verdict["brokenAt"] == 2
    assert verdict["reason"].startswith(
        f"entry 2 does not match signed checkpoint {checkpoint['seq']}: entry 2 was edited")
