"""Servers wake each other: LISTEN/NOTIFY on PostgreSQL, the in-process wake on SQLite.

A pass on one server can hand out work another server must claim (a job of a `local`
environment bound to another node, see `records.nodes`). The note is addressed: its payload
(JSON) names the sender, the node the work is for and the jobs (key, row id, environment), so
only that node's listener (a dedicated psycopg 3 connection in autocommit mode, blocked in
`notifies()`) acts on it, and it starts the jobs at once (`Engine.take`: claim, then run)
instead of running a whole engine pass to find them; the other servers ignore the note.

The engine queues the note inside the transaction that created the work (`hand_off`:
`pg_notify` on that connection), so PostgreSQL delivers it the moment the work commits, and
never for work that rolled back. A job found later (a resume after a crash) is handed with
`send` on a connection of its own. A note the listener cannot use (no taker, an old payload)
wakes the engine, which then finds the work in a pass. On SQLite there is one server: there is
nobody to hand work to, and nothing here runs.

Servers also tell each other that something changed, for whoever follows releases there (a
held status read, `api.watching`): every local change this server's observers hear of
(`Services.listeners`: the engine's moved releases, a use case's notify) is gathered; one
announcer thread sends `NOTIFY infrastream_changed` once per burst of changes (payload: JSON,
the sender's node and the releases that changed, or null for "anything"), and each other
server's listener passes it on to its own observers. It never wakes an engine: it says that
a status may read differently, not that there is work.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple

import psycopg
from sqlalchemy import Connection, text

from ..context import Services

CHANNEL = "infrastream_wake"
CHANGED = "infrastream_changed"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")
_CHANGED = text(f"SELECT pg_notify('{CHANGED}', :note)")
log = logging.getLogger("infrastream.engine")


class Handoff(NamedTuple):
    """A job another node must run: its in-flight key, its row id and its environment."""

    key: str
    row_id: int
    environment: str


def payload(sender: str, to: str, jobs: Iterable[Handoff]) -> str:
    return json.dumps({"from": sender, "to": to, "jobs": [list(job) for job in jobs]})


def notify(conn: Connection, sender: str, to: str, jobs: Iterable[Handoff]) -> None:
    """Queue the note on `conn`: PostgreSQL delivers it when that transaction commits."""
    conn.execute(_NOTIFY, {"payload": payload(sender, to, jobs)})


def read(raw: str) -> tuple[str, str | None, list[Handoff]]:
    """(sender, addressee, jobs) of a note; a note from an older server is its sender's
    node name alone (no address: it wakes every other server)."""
    try:
        note = json.loads(raw)
        return (str(note["from"]), str(note["to"]),
                [Handoff(str(k), int(i), str(e)) for k, i, e in note["jobs"]])
    except (ValueError, TypeError, KeyError):
        return raw, None, []


class Wakeups:
    """The PostgreSQL listener of one server, and the notes it sends."""

    def __init__(self, services: Services,
                 take: Callable[[list[Handoff]], None] | None = None) -> None:
        self.services = services
        self.take = take
        self.enabled = services.db.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changes = threading.Event()
        self._changed: set[str] | None = set()
        """Releases changed since the last announcement (None: anything may have)."""
        self._changed_lock = threading.Lock()
        self._announcer: threading.Thread | None = None

    def start(self) -> None:
        if not self.enabled:
            return
        self.services.handoffs.append(self.send)
        self.services.listeners.append(self.changed)
        self._thread = threading.Thread(target=self._listen, name="infra-wakeups", daemon=True)
        self._thread.start()
        self._announcer = threading.Thread(target=self._announce, name="infra-announcer",
                                           daemon=True)
        self._announcer.start()

    def stop(self) -> None:
        """Stop listening; returns once the listener has let go of its connection (it wakes
        at least every second), so a database dropped right after is no failure to log."""
        self._stop.set()
        self._changes.set()
        if self.send in self.services.handoffs:
            self.services.handoffs.remove(self.send)
        if self.changed in self.services.listeners:
            self.services.listeners.remove(self.changed)
        for thread in (self._thread, self._announcer):
            if thread is not None:
                thread.join(timeout=5)

    def changed(self, release: str | None = None) -> None:
        """Something changed here (`release`, or anything): the other servers' observers
        are told (once per burst)."""
        with self._changed_lock:
            if release is None:
                self._changed = None
            elif self._changed is not None:
                self._changed.add(release)
        self._changes.set()

    def _announce(self) -> None:
        while not self._stop.is_set():
            self._changes.wait()
            self._changes.clear()
            if self._stop.is_set():
                return
            with self._changed_lock:
                releases, self._changed = self._changed, set()
            note = json.dumps({"from": self.services.node,
                               "releases": None if releases is None else sorted(releases)})
            try:
                with self.services.db.connect() as conn:
                    conn.execute(_CHANGED, {"note": note})
                    conn.commit()
            except Exception:  # the database went away: the held reads' recheck covers it
                log.exception("telling the other servers of a change failed")
                self._stop.wait(1.0)

    def _tell_observers(self, raw: str) -> None:
        """Another server changed something: this server's observers hear of it (not its
        own announcer, which would tell it back)."""
        try:
            note = json.loads(raw)
            sender, listed = str(note["from"]), note["releases"]
            releases: list[str | None] = [None] if listed is None else [str(r) for r in listed]
        except (ValueError, TypeError, KeyError):
            return  # not a note of this version
        if sender == self.services.node:
            return
        for listener in list(self.services.listeners):
            if listener == self.changed:
                continue
            for release in releases:
                try:
                    listener(release)
                except Exception:  # an observer's failure must not stop the listening
                    log.exception("an observer of changes failed")

    def send(self, to: str, jobs: list[Handoff]) -> None:
        """Hand `jobs` to node `to` now (on a connection of its own)."""
        with self.services.db.connect() as conn:
            notify(conn, self.services.node, to, jobs)
            conn.commit()

    def _receive(self, raw: str) -> None:
        sender, to, jobs = read(raw)
        if sender == self.services.node:
            return  # our own
        if to is not None and to != self.services.node:
            return  # work for another node
        if jobs and self.take is not None:
            try:
                self.take(jobs)
                return
            except Exception:  # the engine stopping, say: a pass finds the work instead
                log.exception("taking handed-off jobs failed")
        self.services.wake.set()

    def _listen(self) -> None:
        url = self.services.db.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {CHANGED}")
                    self.services.wake.set()  # anything missed while not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.channel == CHANGED:
                                self._tell_observers(note.payload)
                            else:
                                self._receive(note.payload)
            except Exception:  # the database went away: listen again shortly
                log.exception("wake-up listener failed")
                self._stop.wait(1.0)

