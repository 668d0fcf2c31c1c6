"""The chain head is not held by user transactions: audited writers never wait for each other.

On SQLite and PostgreSQL: several processes writing audited transactions at once leave one
contiguous, verifying chain holding every entry, each process's entries in its commit order.
On PostgreSQL, an entry written while another transaction is the chainer waits in
`audit_pending` (the writer does not block), is not reported as tampering, and is linked by
the next chainer (any reader of the trail, the engine pass). Editing, deleting and reordering
chained entries are still detected.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Text, cast, delete, select, text, update

from infrastream.service.auditing import trail as audit
from infrastream.service.auditing import verify as audit_verify
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.store.tables import audit_log, audit_pending

WRITER = """
import sys
from datetime import UTC, datetime
from infrastream.service.auditing import trail as audit
from infrastream.store.database import create, writing
url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = create(url)
for i in range(count):
    with writing(engine) as conn:
        audit.record(conn, at=datetime.now(UTC), actor=name, action="test.write",
                     object_type="test", object_id=str(i))
"""


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Services:
    return open_services(tmp_path / "data", database_url)


def _write(services: Services, actor: str, object_id: str = "x") -> None:
    with services.transaction() as conn:
        audit.record(conn, at=datetime.now(UTC), actor=actor, action="test.write",
                     object_type="test", object_id=object_id)


def test_concurrent_writers_in_several_processes_chain_into_one_verifying_trail(services):
    processes, count = 4, 60
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    url = services.db.url.render_as_string(hide_password=False)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"p{n}", str(count)],
                                env=env) for n in range(processes)]
    assert [w.wait(timeout=300) for w in writers] == [0] * processes

    report = audit_verify.verify_all(services).to_json()
    assert report["ok"], report
    assert report["entries"] == processes * count and report["waiting"] == 0
    with services.db.connect() as conn:
        rows = conn.execute(select(audit_log.c.seq, audit_log.c.actor, audit_log.c.object_id)
                            .order_by(audit_log.c.seq)).all()
        assert conn.execute(select(audit_pending)).first() is None
    assert [r.seq for r in rows] == list(range(1, processes * count + 1))
    for n in range(processes):
        mine = [int(r.object_id) for r in rows if r.actor == f"p{n}"]
        assert mine == list(range(count)), "a process's entries keep its commit order"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # SQLite: one writer
def test_an_entry_written_while_another_transaction_chains_waits_and_is_not_tampering(
        services):
    _write(services, "alice")
    holding, release = threading.Event(), threading.Event()

    def chainer() -> None:  # a transaction that is the chainer and has not committed yet
        with services.transaction() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": audit._CHAINER_KEY})
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=chainer)
    thread.start()
    assert holding.wait(60)
    _write(services, "bob")  # returns although the chainer lock is held: no wait
    with services.db.connect() as conn:
        assert audit.waiting(conn) == 1
        assert conn.execute(select(audit_log.c.actor)).scalars().all() == ["alice"]
    release.set()
    thread.join(60)

    report = audit_verify.verify_all(services).to_json()
    assert report["ok"] and report["entries"] == 2 and report["waiting"] == 0
    with services.db.connect() as conn:
        assert conn.execute(select(audit_log.c.actor).order_by(audit_log.c.seq)
                            ).scalars().all() == ["alice", "bob"]


def test_the_engine_pass_links_waiting_entries(services):
    with services.transaction() as conn:  # as a contended writer leaves it
        conn.execute(audit._PEND, {"at": datetime.now(UTC), "actor": "carol",
                                   "action": "test.write", "object_type": "test",
                                   "object_id": "1", "before": None, "after": None})
    Engine(services).run_once()
    with services.db.connect() as conn:
        assert audit.waiting(conn) == 0
        assert conn.execute(select(audit_log.c.actor)).scalars().all() == ["carol"]


def test_before_and_after_are_stored_as_the_canonical_text_the_hash_covers(services):
    with services.transaction() as conn:
        audit.record(conn, at=datetime.now(UTC), actor="rita", action="test.write",
                     object_type="test", object_id="1", before={"z": 1, "a": "ü"},
                     after=None)
    with services.db.connect() as conn:
        row = conn.execute(select(cast(audit_log.c.before, Text), cast(audit_log.c.after, Text),
                                  audit_log.c.before)).one()
    assert tuple(row) == ('{"a":"ü","z":1}', "null", {"a": "ü", "z": 1})
    assert audit_verify.verify_all(services).ok


@pytest.fixture
def five(services: Services) -> Services:
    for n in range(5):
        _write(services, f"user{n}", str(n))
    assert audit_verify.verify_all(services).ok
    return services


def test_an_edited_entry_is_detected(five):
    with five.transaction() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="mallory"))
    report = audit_verify.verify_all(five)
    assert not report.ok and report.broken_at == 3 and "entry 3 was edited" in report.reason


def test_a_deleted_entry_is_detected(five):
    with five.transaction() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    report = audit_verify.verify_all(five)
    assert not report.ok and report.broken_at == 2 and "entry 2 was deleted" in report.reason


def test_reordered_entries_are_detected(five):
    with five.transaction() as conn:
        rows = {r.seq: r for r in conn.execute(select(audit_log)
                                               .where(audit_log.c.seq.in_([2, 3])))}
        for seq, other in ((2, 3), (3, 2)):
            source = rows[other]
            conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(
                actor=source.actor, object_id=source.object_id, at=source.at,
                prev_hash=source.prev_hash, hash=source.hash))
    report = audit_verify.verify_all(five)
    assert not report.ok and report.broken_at == 2


def test_a_running_verification_publishes_its_progress(five, monkeypatch):
    seen = []
    original = audit.verify

    def watched(conn, **options):
        def progress(done: int) -> None:
            options["progress"](done)
            seen.append(audit_verify.progress(five).to_json())
        return original(conn, **{**options, "progress": progress})

    monkeypatch.setattr(audit, "verify", watched)
    assert audit_verify.progress(five).to_json() == {"running": False, "done": 0, "total": 0}
    assert audit_verify.verify_all(five).ok
    assert seen == [{"running": True, "done": 5, "total": 5}]
    assert not audit_verify.progress(five).running
