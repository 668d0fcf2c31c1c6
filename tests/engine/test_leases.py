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
