"""Nodes: which server is which, and which node runs a `local` environment's processes.

Every server has a node name (`--node-name`, INFRASTREAM_NODE_NAME, default the host name). The
name is the owner of its job leases (`records.leases`), so two live servers must never share
it: `register` refuses to start a second one (one line saying which process holds the name).
A server is live while its heartbeat (`seen`) is younger than the lease time; on the same host
a stopped process is known dead at once (its pid is gone), so a restarted server takes its
name back immediately.

The `local` target starts processes on the machine the server runs on, so a local environment
is bound to one node, stored in `node_bindings`: the first node that claims work there binds
it, and from then on only that node claims its jobs (the binding is sticky: the processes live
on that machine). Other targets (noop, gitops, kubernetes) reach shared systems and are served
by whichever server claims the job.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from infrastream.domain.errors import PermanentError
from infrastream.store.database import writing
from infrastream.store.tables import node_bindings, server_nodes

_NODE = select(server_nodes).where(server_nodes.c.name == bindparam("node")).with_for_update()
_BINDING = select(node_bindings.c.node).where(node_bindings.c.environment == bindparam("env"))
_BEAT = (update(server_nodes).where((server_nodes.c.name == bindparam("node"))
                                    & (server_nodes.c.instance == bindparam("me")))
         .values(seen=bindparam("now")))


def bound_node(conn: Connection, environment: str) -> str | None:
    """The node a `local` environment is bound to (None: not bound yet)."""
    found = conn.execute(_BINDING, {"env": environment}).scalar()
    return None if found is None else str(found)


def node_alive(row: Any, now: float, lease_seconds: float) -> bool:
    """Whether the server of a `server_nodes` row still runs: its process, on this host;
    a heartbeat younger than the lease time, elsewhere."""
    if row.host == socket.gethostname():
        return _alive(row.pid)
    return bool(now - row.seen < lease_seconds)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Node:
    """This server's node: registered once at start, kept alive by `beat`."""

    def __init__(self, db: Engine, name: str, lease_seconds: float) -> None:
        self.db, self.name, self.lease_seconds = db, name, lease_seconds
        self.instance = uuid.uuid4().hex
        self.host = socket.gethostname()
        self._bound: dict[str, str] = {}
        """environment → the node it is bound to (sticky, so known once seen)."""
        insert = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
        self._insert_node = insert(server_nodes).on_conflict_do_nothing()
        self._insert_binding = insert(node_bindings).on_conflict_do_nothing()

    def register(self) -> None:
        """Take the node name, or refuse when another live server has it."""
        now = time.time()
        row = {"name": self.name, "instance": self.instance, "host": self.host,
               "pid": os.getpid(), "seen": now}
        with writing(self.db) as conn:
            conn.execute(self._insert_node, row)
            held = conn.execute(_NODE, {"node": self.name}).one()
            if held.instance != self.instance:
                live = (_alive(held.pid) and held.pid != os.getpid()) if held.host == self.host \
                    else now - held.seen < self.lease_seconds
                if live:
                    raise PermanentError(
                        f"node {self.name!r} is already served by pid {held.pid} on "
                        f"{held.host}: give each server its own --node-name "
                        f"(INFRASTREAM_NODE_NAME)", details={"node": self.name})
                conn.execute(update(server_nodes).where(server_nodes.c.name == self.name)
                             .values(**row))

    def beat(self) -> None:
        with writing(self.db) as conn:
            conn.execute(_BEAT, {"node": self.name, "me": self.instance, "now": time.time()})

    def forget(self) -> None:
        """Read the bindings again from now on (one may have moved: `service.bindings`)."""
        self._bound.clear()

    def serves(self, environment: str) -> bool:
        """Whether this node runs the jobs of a local environment (binding it if unbound)."""
        return self.bound_to(environment) == self.name

    def bound_to(self, environment: str) -> str:
        """The node that runs a local environment's jobs (this one, binding it, if unbound)."""
        known = self._bound.get(environment)
        if known is not None:
            return known
        with writing(self.db) as conn:
            conn.execute(self._insert_binding, {"environment": environment, "node": self.name,
                                                "bound": time.time()})
            node = str(conn.execute(_BINDING, {"env": environment}).scalar_one())
        self._bound[environment] = node
        return node

    def known_binding(self, conn: Connection, environment: str) -> str | None:
        """The node a local environment is bound to, read on `conn` (inside a transaction
        that must not open another); None while it is unbound."""
        known = self._bound.get(environment)
        if known is None:
            known = bound_node(conn, environment)
            if known is not None:
                self._bound[environment] = known
        return known
