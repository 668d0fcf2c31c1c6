"""Servers wake each other: LISTEN/NOTIFY on PostgreSQL, the in-process wake on SQLite.

A pass on one server can hand out work another server must claim (a job of a `local`
environment bound to another node, see `records.nodes`). Such a pass calls `Services.broadcast`;
on PostgreSQL that sends `NOTIFY infrastream_wake`, and every server's listener (a dedicated
psycopg 3 connection in autocommit mode, blocked in `notifies()`) sets its engine's wake event,
so the claiming server reacts as fast as the one that decided (a server ignores its own
notifications: the payload is the sender's node name). On SQLite there is one server:
the broadcast is the in-process wake alone.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import text

from ..context import Services

CHANNEL = "infrastream_wake"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :sender)")
log = logging.getLogger("infrastream.engine")


class Wakeups:
    """The PostgreSQL listener of one server, and its broadcasts."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.enabled = services.db.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.enabled:
            return
        self.services.broadcasts.append(self.send)
        self._thread = threading.Thread(target=self._listen, name="infra-wakeups", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; returns once the listener has let go of its connection (it wakes
        at least every second), so a database dropped right after is no failure to log."""
        self._stop.set()
        if self.send in self.services.broadcasts:
            self.services.broadcasts.remove(self.send)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def send(self) -> None:
        with self.services.db.connect() as conn:
            conn.execute(_NOTIFY, {"sender": self.services.node})
            conn.commit()

    def _listen(self) -> None:
        url = self.services.db.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.services.wake.set()  # anything missed while not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.payload != self.services.node:  # not our own
                                self.services.wake.set()
            except Exception:  # the database went away: listen again shortly
                log.exception("wake-up listener failed")
                self._stop.wait(1.0)
