"""The service context: what every use case needs (database, clock, targets, wake-up).

Faces build one `Services` and pass it to the use-case functions; tests build their own with
a temporary data directory. The wake event is how use cases nudge the engine loop after they
record something it should act on (an approval, a promotion request, a new release).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from infrastream.store import clock
from infrastream.store.database import open_database, sqlite_url, writing
from infrastream.targets.registry import TargetRegistry

NODE_ENV = "INFRASTREAM_NODE_NAME"


def node_name(configured: str | None = None) -> str:
    """This server's node name: `--node-name`, INFRASTREAM_NODE_NAME, else the host name."""
    return configured or os.environ.get(NODE_ENV) or socket.gethostname()


class Heartbeat:
    """When this process's engine loop last finished a pass (monotonic seconds), so
    readiness can tell a stalled engine. `expected` is set by the server that runs one; a
    process without an engine (a CLI, a test client) is not judged on it."""

    def __init__(self, stall_after: float = 60.0) -> None:
        self.expected = False
        self.stall_after = stall_after
        self.passed_at: float | None = None

    def beat(self) -> None:
        self.passed_at = time.monotonic()

    def problem(self) -> str | None:
        """Why the engine is not keeping up, or None."""
        if not self.expected:
            return None
        if self.passed_at is None:
            return "the engine loop has not finished a pass yet"
        ago = time.monotonic() - self.passed_at
        if ago > self.stall_after:
            return (f"the engine loop last finished a pass {ago:.0f} s ago "
                    f"(more than {self.stall_after:g} s)")
        return None


@dataclass
class Services:
    db: Engine
    data_dir: Path
    targets: TargetRegistry
    now: Callable[[], datetime] = clock.now
    wake: threading.Event = field(default_factory=threading.Event)
    listeners: list[Callable[[str | None], None]] = field(default_factory=list)
    """Observers of what is recorded, called with the release (`SET/NAME`) that changed, or
    None when anything may have (`changed`)."""
    handoffs: list[Callable[[str, list[Any]], None]] = field(default_factory=list)
    """Senders of work to another node (`engine.wakeups`; none on SQLite)."""
    node: str = field(default_factory=node_name)
    heartbeat: Heartbeat = field(default_factory=lambda: Heartbeat())
    public_url: str | None = None
    """Where people reach this server (`serve --public-url`): notifications link into the
    Portal under it; without it they carry no link."""

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (on SQLite it holds the write lock from its start)."""
        with writing(self.db) as connection:
            yield connection

    def notify(self, release: str | None = None) -> None:
        """Wake the engine: something it should act on was recorded (observers are told;
        `release`: the release it concerns, when it is one)."""
        self.wake.set()
        self.changed(release)

    def changed(self, release: str | None = None) -> None:
        """Tell the observers (`listeners`: held status reads, the other servers) that
        something was recorded — about `release` (`SET/NAME`), or anything when None —
        without waking the engine (it has nothing to do for it)."""
        for listener in self.listeners:
            listener(release)

    def hand_off(self, node: str, jobs: list[Any]) -> None:
        """Give jobs to the node that must run them (`engine.wakeups`; none on SQLite)."""
        for send in list(self.handoffs):
            send(node, jobs)


def open_services(data_dir: Path, database_url: str | None = None) -> Services:
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(database_url or sqlite_url(data_dir))
    return Services(db=engine, data_dir=data_dir, targets=TargetRegistry(data_dir))
