"""Moving a `local` environment to another node, when the node it is bound to is gone.

A local environment is bound to one node for good (`records.nodes`): its processes live on
that machine. When that machine is lost, its work waits; `bind(env, node)` (platform role,
audited as `environment.bind`) moves the binding to another node so that node runs the
environment's jobs from then on (it starts the environment afresh: the processes of the dead
machine are not moved). It is refused while the old node is alive (its heartbeat is younger
than the lease time, or its process still runs on this host): moving work away from a live
node would run the environment on two machines. Servers pick the new binding up at their
next sweep (`Engine`: every poll interval).
"""

from __future__ import annotations

import os
import time

from sqlalchemy import insert, select, update

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.roles import BIND_NODE, Principal
from infrastream.store.tables import node_bindings, server_nodes

from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.leases import LEASE_SECONDS
from .records.manifests import current_bundle
from .records.nodes import node_alive


class Bound(ReadModel):
    environment: str
    node: str
    previous: str | None


def bind(services: Services, principal: Principal, environment: str, node: str) -> Bound:
    require(principal, BIND_NODE, "bind local environments to nodes")
    bundle = current_bundle(services)
    if environment not in bundle.used_environments():
        raise NotFound(f"no environment `{environment}` in the applied manifests")
    if bundle.environment(environment).spec.target.type != "local":
        raise Invalid(f"{environment} has no `local` target: any server runs its jobs, it is "
                      "bound to no node")
    live = float(os.environ.get("INFRASTREAM_LEASE_SECONDS") or LEASE_SECONDS)
    now = time.time()
    with services.transaction() as conn:
        if conn.execute(select(server_nodes.c.name).where(server_nodes.c.name == node)
                        ).first() is None:
            raise NotFound(f"no server has run as node {node!r}: start it first")
        old = conn.execute(select(node_bindings.c.node).where(
            node_bindings.c.environment == environment).with_for_update()).scalar()
        if old == node:
            return Bound(environment=environment, node=node, previous=old)
        if old is not None:
            held = conn.execute(select(server_nodes).where(server_nodes.c.name == old)).first()
            if held is not None and node_alive(held, now, live):
                raise Conflict(f"{environment} is bound to node {old!r}, which is alive "
                               f"(pid {held.pid} on {held.host}, seen {now - held.seen:.0f} s "
                               f"ago): stop that server first", node=old)
            conn.execute(update(node_bindings).where(node_bindings.c.environment == environment)
                         .values(node=node, bound=now))
        else:
            conn.execute(insert(node_bindings).values(environment=environment, node=node,
                                                      bound=now))
        audit.record(conn, at=services.now(), actor=principal.name, action="environment.bind",
                     object_type="environment", object_id=environment,
                     before={"node": old}, after={"node": node})
    services.notify()
    return Bound(environment=environment, node=node, previous=old)
