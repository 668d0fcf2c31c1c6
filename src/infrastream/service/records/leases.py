"""Job leases: every unit of work runs on exactly one server, and a dead server's work moves on.

All job kinds (deployments, checks, pre-release runs, drift checks, checkpoint signing, SCM
outbox deliveries) are claimed here by their job key, the same key the engine uses to keep a
job in flight once per process. A claim is one short write transaction: a job nobody claimed
yet is taken by inserting its lease row (one statement); otherwise the row is locked with
`FOR UPDATE SKIP LOCKED` (a row another server is claiming right now is skipped, not waited
for) and taken when it is free, expired, or already ours. The owner renews every lease it
holds (`renew`, from one thread) while the jobs work, and deletes the row when a job ends. A
server that dies stops renewing; when its leases expire another server claims the work and
resumes it against the idempotent targets (the jobs record outcomes by compare-and-set, so
work that finished just before the claim is not done again). Work that is one write
transaction (the notification pass) takes its lease inside it instead (`hold`).

A server that is alive but loses a lease (its renewals stalled, or failed past the expiry, and
another server took the job over) must not finish that job: `renew` notices the loss (the
row no longer names this server, or the renewals failed until the lease ran out) and marks
the job lost; the job, which runs under its lease (`running`), stops at its next `check`, and
whatever it would still record goes through `fence`, which locks the lease row in the
recording transaction and refuses (`LeaseLost`) unless this server still owns it. So the old
owner's result is never recorded, even when it finishes before the renewer noticed.

The owner is the server's node name (`records.nodes` refuses a second live server with the
same name), so a server restarted under its name takes its own leases back at once. Expiry is
wall-clock epoch seconds: servers sharing a database need synchronized clocks (NTP). On
SQLite (one server) the same code runs; the write transaction is the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, Engine, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from infrastream.domain.errors import InfrastreamError
from infrastream.store.database import writing
from infrastream.store.tables import job_leases

LEASE_SECONDS = 30.0
"""How long a claim holds without renewal (INFRASTREAM_LEASE_SECONDS; tests lower it)."""

_LOCK_ROW = (select(job_leases.c.owner, job_leases.c.expires)
             .where(job_leases.c.key == bindparam("key"))
             .with_for_update(skip_locked=True))
_EXISTS = select(job_leases.c.key).where(job_leases.c.key == bindparam("key"))
_FENCE = (select(job_leases.c.owner).where(job_leases.c.key == bindparam("key"))
          .with_for_update())
_TAKE = (update(job_leases).where(job_leases.c.key == bindparam("lease_key"))
         .values(owner=bindparam("owner"), expires=bindparam("expires")))
_RENEW = (update(job_leases)
          .where((job_leases.c.owner == bindparam("lease_owner"))
                 & job_leases.c.key.in_(bindparam("keys", expanding=True)))
          .values(expires=bindparam("until"))
          .returning(job_leases.c.key))
_RELEASE = delete(job_leases).where((job_leases.c.key == bindparam("lease_key"))
                                    & (job_leases.c.owner == bindparam("owner")))


class LeaseLost(InfrastreamError):
    """This server no longer owns the job it is running: another one took it over."""


_RUNNING: ContextVar[tuple[Leases, str] | None] = ContextVar("job_lease", default=None)


class Leases:
    """The leases one server holds, claimed and renewed against the shared database."""

    def __init__(self, db: Engine, owner: str, seconds: float = LEASE_SECONDS) -> None:
        self.db, self.owner, self.seconds = db, owner, seconds
        self._held: dict[str, float] = {}
        """key → until when it holds (as last claimed or renewed)."""
        self._lost: set[str] = set()
        self._made: set[str] = set()  # rows `hold` made (they stay)
        self._lock = threading.Lock()
        insert = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
        self._ensure = insert(job_leases).values(
            key=bindparam("lease_key"), owner=None, expires=0.0).on_conflict_do_nothing()
        self._fresh = (insert(job_leases).values(
            key=bindparam("lease_key"), owner=bindparam("owner"),
            expires=bindparam("expires")).on_conflict_do_nothing()
            .returning(job_leases.c.key))

    def claim(self, key: str) -> bool:
        """Take the lease of this job: True when this server now owns it."""
        now = time.time()
        until = now + self.seconds
        with writing(self.db) as conn:
            fresh = conn.execute(self._fresh, {"lease_key": key, "owner": self.owner,
                                               "expires": until}).first()
            if fresh is None:  # somebody's lease row is there: take it if it is free
                row = conn.execute(_LOCK_ROW, {"key": key}).first()
                if row is None:  # another server holds the row lock: it is claiming right now
                    return False
                if row.owner not in (None, self.owner) and row.expires > now:
                    return False
                conn.execute(_TAKE, {"lease_key": key, "owner": self.owner, "expires": until})
        with self._lock:
            self._held[key] = until
            self._lost.discard(key)
        return True

    def hold(self, conn: Connection, key: str) -> bool:
        """Take the lease of `key` for the rest of `conn`'s write transaction, for work done
        in that transaction alone: True when this server may do it. No claim and no release
        of their own: the row lock (`FOR UPDATE SKIP LOCKED`) is the lease, held until the
        commit, so a second server's transaction skips the work instead of waiting. The row
        is made once per process in a transaction of its own (so nobody waits for an
        uncommitted one) and stays, unowned. A live `claim` of the same key (another
        server's) still wins. On SQLite the write transaction already holds the database's
        write lock, and there is one server."""
        if conn.dialect.name != "postgresql":
            return True
        if key not in self._made:  # once per process, committed apart: nobody waits for it
            with writing(self.db) as own:
                own.execute(self._ensure, {"lease_key": key})
            self._made.add(key)
        row = conn.execute(_LOCK_ROW, {"key": key}).first()
        if row is None:  # locked by another server right now, or gone (a `release`)
            if conn.execute(_EXISTS, {"key": key}).first() is None:
                self._made.discard(key)  # made again next time
            return False
        return row.owner in (None, self.owner) or row.expires <= time.time()

    def release(self, key: str) -> None:
        """The job ended (whatever its outcome): the lease row goes (when still ours)."""
        with self._lock:
            self._held.pop(key, None)
            self._lost.discard(key)
        with writing(self.db) as conn:
            conn.execute(_RELEASE, {"lease_key": key, "owner": self.owner})

    def renew(self) -> int:
        """Push the expiry of every lease this server holds; how many it renewed. A lease
        the renewal no longer finds ours is lost, and so is one whose renewals failed until
        it ran out (the exception is raised after marking them)."""
        with self._lock:
            keys = sorted(self._held)
        if not keys:
            return 0
        until = time.time() + self.seconds
        try:
            with writing(self.db) as conn:
                renewed = {row.key for row in conn.execute(_RENEW, {
                    "lease_owner": self.owner, "keys": keys, "until": until})}
        except Exception:
            now = time.time()
            with self._lock:
                self._lose([k for k, held in self._held.items() if held <= now])
            raise
        with self._lock:
            for key in renewed:
                if key in self._held:
                    self._held[key] = until
            self._lose([key for key in keys if key not in renewed and key in self._held])
        return len(renewed)

    def forfeit(self, key: str) -> None:
        """This server found it no longer owns `key`'s lease: the job is lost."""
        with self._lock:
            self._lose([key])

    def _lose(self, keys: list[str]) -> None:
        for key in keys:
            self._held.pop(key, None)
            self._lost.add(key)

    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def lost(self, key: str) -> bool:
        """Whether this server lost the lease of a job it is still running."""
        with self._lock:
            return key in self._lost

    @contextmanager
    def running(self, key: str) -> Iterator[None]:
        """Run a job under its (claimed) lease: `check` and `fence` inside it refer to it."""
        token = _RUNNING.set((self, key))
        try:
            yield
        finally:
            _RUNNING.reset(token)


def check() -> None:
    """Stop the job running here (LeaseLost) when its server lost its lease; nothing for
    work that runs under no lease."""
    running = _RUNNING.get()
    if running is not None and running[0].lost(running[1]):
        raise LeaseLost(f"the lease of {running[1]} was lost: another server took it over",
                        job=running[1])


def fence(conn: Connection) -> None:
    """Inside the transaction that records a job's outcome: refuse (LeaseLost) unless this
    server still owns the job's lease, and hold the lease row locked until it commits, so
    no other server takes the job over in between. Nothing for work under no lease."""
    running = _RUNNING.get()
    if running is None:
        return
    leases, key = running
    check()
    owner = conn.execute(_FENCE, {"key": key}).scalar()
    if owner != leases.owner:
        leases.forfeit(key)
        check()
