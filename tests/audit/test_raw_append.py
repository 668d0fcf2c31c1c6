"""The audit append runs on the raw DB-API cursor: what it stores is what SQLAlchemy stores.

On SQLite and PostgreSQL: an entry appended by `trail.record` (raw cursor) is stored with the
same texts as the same values inserted through SQLAlchemy's `audit_log` statement (`at` as
SQLAlchemy binds it, `before`/`after` as canonical JSON), so verification takes its fast path
(the stored texts hash to the entry's hash without decoding); a driver error on that path is
raised as SQLAlchemy's exception and rolls the use case back.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Text, cast, insert, select
from sqlalchemy.exc import IntegrityError

from infrastream.domain.audit_chain import stored_bytes
from infrastream.service.auditing import trail as audit
from infrastream.service.auditing import verify as audit_verify
from infrastream.service.context import Services, open_services
from infrastream.store.tables import audit_log, server_settings


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Services:
    return open_services(tmp_path / "data", database_url)


def _stored(services: Services, seq: int) -> tuple[str, str, str]:
    with services.db.connect() as conn:
        row = conn.execute(select(cast(audit_log.c.at, Text), cast(audit_log.c.before, Text),
                                  cast(audit_log.c.after, Text))
                           .where(audit_log.c.seq == seq)).one()
    return tuple(row)


@pytest.mark.parametrize("at", [datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
                                datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)])
def test_an_appended_entry_is_stored_as_sqlalchemy_stores_it(services, at):
    before, after = {"state": "queued", "ü": [1, None]}, None
    with services.transaction() as conn:
        audit.record(conn, at=at, actor="rita", action="test.write", object_type="test",
                     object_id="x", before=before, after=after)
    with services.db.connect() as conn:
        raw = conn.execute(select(audit_log)).one()
    assert (raw.seq, raw.actor, raw.before, raw.after) == (1, "rita", before, None)
    assert raw.at.replace(tzinfo=UTC) == at if raw.at.tzinfo is None else raw.at == at
    with services.transaction() as conn:  # the same values through SQLAlchemy's statement
        conn.execute(insert(audit_log), {**raw._asdict(), "seq": 2, "at": at,
                                         "before": before, "after": after})
    assert _stored(services, 1) == _stored(services, 2)

    text = audit._stored_query(services.db.dialect.name, 0, 1)
    with services.db.connect() as conn:
        cursor = conn.connection.cursor()
        cursor.execute(text)
        seq, stored_at, actor, action, kind, name, before_text, after_text, prev, digest = (
            cursor.fetchone())
        cursor.close()
    fast = hashlib.sha256(stored_bytes(seq, audit._iso(str(stored_at)), actor, action, kind,
                                       name, before_text, after_text, prev)).hexdigest()
    assert fast == digest, "verification hashes the stored texts without decoding them"


def test_a_driver_error_on_the_raw_path_is_raised_as_sqlalchemys_and_rolls_back(services):
    now = datetime.now(UTC)
    with services.transaction() as conn:
        audit.record(conn, at=now, actor="rita", action="test.write", object_type="test",
                     object_id="1")
    with services.transaction() as conn:  # seq 2 taken behind the head's back
        conn.execute(insert(audit_log), {"seq": 2, "at": now, "actor": "mallory",
                                         "action": "test.write", "object_type": "test",
                                         "object_id": "2", "before": None, "after": None,
                                         "prev_hash": "0" * 64, "hash": "0" * 64})
    with services.db.connect() as conn:
        head = conn.execute(select(server_settings.c.value)
                            .where(server_settings.c.key == "audit-head")).scalar_one()
    with pytest.raises(IntegrityError), services.transaction() as conn:
        audit.record(conn, at=now, actor="sam", action="test.write", object_type="test",
                     object_id="3")
    with services.db.connect() as conn:
        assert conn.execute(select(server_settings.c.value)
                            .where(server_settings.c.key == "audit-head")).scalar_one() == head
        assert conn.execute(select(audit_log.c.actor).order_by(audit_log.c.seq)
                            ).scalars().all() == ["rita", "mallory"]
    assert not audit_verify.verify_all(services).ok  # mallory's row is not in the chain
