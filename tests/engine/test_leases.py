"""Job leases (`records.leases`), on SQLite and PostgreSQL alike: one owner at a time, renewed
by its owner, taken over once expired, given back when the job ends."""

from __future__ import annotations

from sqlalchemy import select, update

from infrastream.service.records.leases import Leases
from infrastream.store.database import open_database, writing
from infrastream.store.tables import job_leases


def test_one_owner_at_a_time_and_a_dead_owners_lease_moves_on(database_url):
    db = open_database(database_url)
    try:
        a, b = Leases(db, "node-a", 30), Leases(db, "node-b", 30)
        assert a.claim("deploy:1/staging/1")
        assert not b.claim("deploy:1/staging/1")  # a holds it
        assert a.claim("deploy:1/staging/1")  # the owner may claim again (restarted under its name)
        assert a.renew() == 1
        with writing(db) as conn:  # a died: nobody renews, the lease runs out
            conn.execute(update(job_leases).values(expires=0.0))
        assert b.claim("deploy:1/staging/1")
        assert a.renew() == 0  # a's renewal no longer covers it
        assert not a.claim("deploy:1/staging/1")
        b.release("deploy:1/staging/1")
        with db.connect() as conn:
            assert conn.execute(select(job_leases)).all() == []
        assert a.claim("deploy:1/staging/1")
    finally:
        db.dispose()


def test_a_lease_held_inside_a_transaction_keeps_a_second_server_out_until_it_commits(
        database_url):
    """`hold`: the lease of work done in one write transaction. On PostgreSQL the row lock is
    the lease (a second server's transaction skips, it does not wait) and a live `claim` of
    another server still wins; on SQLite the write transaction is the lock (one writer)."""
    db = open_database(database_url)
    try:
        a, b = Leases(db, "node-a", 30), Leases(db, "node-b", 30)
        with writing(db) as conn:
            assert a.hold(conn, "notifications")
            if db.dialect.name == "postgresql":
                with writing(db) as other:
                    assert not b.hold(other, "notifications")  # a's transaction holds it
        with writing(db) as conn:
            assert b.hold(conn, "notifications")  # committed: free again, nothing to give back
        assert a.held() == set() and b.held() == set()
        if db.dialect.name != "postgresql":
            return
        with db.connect() as conn:  # the row stays, unowned: later holds write nothing
            assert [(r.key, r.owner) for r in conn.execute(select(job_leases))] == [
                ("notifications", None)]
        assert a.claim("notifications")  # a claim (another server's, live) wins over a hold
        with writing(db) as conn:
            assert not b.hold(conn, "notifications")
            assert a.hold(conn, "notifications")  # its own claim does not keep a out
        a.release("notifications")  # the row goes: a hold finds it gone, the next makes it
        with writing(db) as conn:
            assert not b.hold(conn, "notifications")
        with writing(db) as conn:
            assert b.hold(conn, "notifications")
    finally:
        db.dispose()
