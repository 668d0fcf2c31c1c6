"""Occupancy is a lock, not a read (issue 13, item 2): two transactions starting work in one
environment on PostgreSQL cannot both see it free. The second `hold` waits for the first
transaction, and then sees its deployment; with a plain read under READ COMMITTED it would
see the environment free and start a second deployment there."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from infrastream.domain.readiness import Occupant
from infrastream.service.records.occupancy import hold
from infrastream.store.database import open_database, writing
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import deployments, releases

_WAITING = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_second_starter_waits_for_the_first_and_sees_its_deployment(database_url):
    db = open_database(database_url)
    now = datetime.now(UTC)
    try:
        with writing(db) as conn:
            release_id = inserted_id(conn.execute(insert(releases).values(
                app_set="shop", name="v1", lane="normal", track="t", digest="d", content={},
                state="active", created_at=now, created_by="rita")))
        seen: list[list[Occupant]] = []
        finished = threading.Event()

        def second_starter() -> None:
            with writing(db) as conn:
                seen.append(hold(conn, ["staging"]))
            finished.set()

        with writing(db) as first:
            assert hold(first, ["staging"]) == []
            first.execute(insert(deployments).values(
                key=f"{release_id}/staging/1", release_id=release_id, stage_index=1,
                environment="staging", attempt=1, state="deploying", created_at=now,
                message=""))
            thread = threading.Thread(target=second_starter)
            thread.start()
            with db.connect() as watcher:  # the second starter is blocked on the lock, or done
                while not finished.is_set() and not watcher.execute(_WAITING).scalar_one():
                    watcher.rollback()
        thread.join()
        assert [o.environment for o in seen[0]] == ["staging"]
    finally:
        db.dispose()
