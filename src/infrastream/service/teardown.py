"""Teardown: stop everything a target runs in an environment, on purpose and audited.

`teardown(env, reason)` (platform role) asks the environment's target to stop what it runs
there (local: the processes; kubernetes: the objects it owns; gitops: a commit removing the
environment's tree), then records a teardown mark (`records.teardowns`) so that every view
shows nothing running there and a rollback does not take the torn-down release as the
current one. The environment must be free (no deployment, rollback or pre-release run in
progress). The next successful deployment makes it run something again.

A `local` environment's processes run on the machine of the node it is bound to
(`records.nodes`): another server cannot stop them, so it refuses, naming the node whose
server must be asked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from infrastream.domain.errors import BackendError, Conflict, Invalid, NotFound
from infrastream.domain.inputs import free_text
from infrastream.domain.readiness import occupied
from infrastream.domain.roles import TEAR_DOWN, Principal
from infrastream.manifests import Environment
from infrastream.store.tables import (
    deployments,
    environment_health,
    environment_teardowns,
    releases,
)

from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.manifests import current_bundle
from .records.nodes import bound_node
from .records.occupancy import hold
from .records.teardowns import torn_down_through


class TornDown(ReadModel):
    environment: str
    release: str | None
    """The release that ran there (None: nothing ran)."""
    target: str


def teardown(services: Services, principal: Principal, environment: str,
             reason: str) -> TornDown:
    require(principal, TEAR_DOWN, "tear down environments")
    if not reason or not reason.strip():
        raise Invalid("a teardown needs a reason (--reason): it is audited")
    reason = free_text("the reason", reason).strip()
    with services.db.connect() as conn:
        mark = torn_down_through(conn, environment)
        running = conn.execute(
            select(deployments.c.id, releases.c.app_set, releases.c.name, releases.c.content)
            .join(releases, releases.c.id == deployments.c.release_id)
            .where((deployments.c.environment == environment)
                   & (deployments.c.state == "healthy") & (deployments.c.id > mark))
            .order_by(deployments.c.id.desc()).limit(1)).first()
        node = bound_node(conn, environment)
    manifest = _manifest(services, environment, running)
    if manifest.spec.target.type == "local" and node not in (None, services.node):
        raise Conflict(f"{environment} runs on node {node!r} (a local environment's processes "
                       f"live on its machine): tear it down through the server of node "
                       f"{node!r}, this one is {services.node!r}", node=node)
    with services.transaction() as conn:
        holder = occupied(hold(conn, [environment]), [environment]).get(environment)
        if holder is not None:
            raise Conflict(f"{environment} is busy with {holder.describe()}; tear it down "
                           "after that", occupant=holder.to_json())
    try:
        services.targets.for_environment(manifest).teardown(manifest)
    except BackendError as exc:
        raise Conflict(f"{environment}: the {manifest.spec.target.type} target could not "
                       f"tear it down: {exc.reason}") from None
    now = services.now()
    release = f"{running.app_set}/{running.name}" if running is not None else None
    with services.transaction() as conn:
        newest = conn.execute(select(deployments.c.id).where(
            deployments.c.environment == environment).order_by(
            deployments.c.id.desc()).limit(1)).scalar()
        conn.execute(insert(environment_teardowns).values(
            environment=environment, deployment_id=int(newest or 0),
            requested_by=principal.name, requested_at=now, reason=reason))
        conn.execute(delete(environment_health).where(
            environment_health.c.environment == environment))
        audit.record(conn, at=now, actor=principal.name, action="environment.teardown",
                     object_type="environment", object_id=environment,
                     before={"release": release},
                     after={"release": None, "reason": reason,
                            "target": manifest.spec.target.type})
    services.notify()
    return TornDown(environment=environment, release=release,
                    target=manifest.spec.target.type)


def _manifest(services: Services, environment: str, running: Any) -> Environment:
    """The environment as its running release deployed it, else as the manifests say."""
    if running is not None:
        return Environment.model_validate(
            running.content["manifests"]["environments"][environment])
    if environment not in current_bundle(services).used_environments():
        raise NotFound(f"no environment `{environment}` in the applied manifests")
    return current_bundle(services).environment(environment)
