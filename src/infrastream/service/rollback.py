"""Rollback: put an environment back on the release that ran there before.

`rollback(env)` redeploys the newest release that succeeded in the environment before the
current one and was not itself rolled back from there (`domain.rollback`: two rollbacks in a
row go further back), or the release named with `to`, which must have succeeded there.
Rules (documented in the README): a rollback needs a reason; only release managers and
incident commanders may roll back; no approval is asked again, since the target release
already passed the sign-offs of that environment when it first entered it; the environment
must be free (the occupancy rule: no release deployment, rollback or pre-release run in
progress there); a freeze window holds a rollback unless it exempts the hotfix lane, because
a rollback is an emergency action like a hotfix. The release rolled back from is marked so.
"""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import Connection, func, insert, select

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.freeze import frozen
from infrastream.domain.inputs import free_text
from infrastream.domain.readiness import occupied
from infrastream.domain.roles import ROLL_BACK, Principal
from infrastream.manifests import Lane
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import deployments, rollbacks

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.deployments import rollback_target
from .records.manifests import current_bundle
from .records.occupancy import hold
from .records.releases import ReleaseRef, find, release_stages
from .records.teardowns import torn_down_through


class RollbackStarted(ReadModel):
    environment: str
    from_: str = Field(alias="from")
    """The release the environment ran."""
    to: str
    """The release it is being put back on."""
    attempt: int


def _succeeded_there(conn: Connection, release_id: int, environment: str) -> bool:
    return conn.execute(select(deployments.c.id).where(
        (deployments.c.release_id == release_id) & (deployments.c.environment == environment)
        & (deployments.c.state == "healthy")).limit(1)).first() is not None


@refusals.audited("environment.rollback", "environment", lambda a: a["environment"])
def rollback(services: Services, principal: Principal, environment: str,
             to: ReleaseRef | None = None, reason: str = "") -> RollbackStarted:
    require(principal, ROLL_BACK, "roll back environments")
    if not reason or not reason.strip():
        raise Invalid("a rollback needs a reason (--reason): it is shown to everyone and "
                      "audited")
    reason = free_text("the reason", reason)
    now = services.now()
    held = frozen(current_bundle(services).freezes.values(), environment, Lane.HOTFIX.value, now)
    if held is not None:
        raise Conflict(f"{environment} is {held.describe()}; rollbacks wait like hotfixes")
    with services.transaction() as conn:
        holder = occupied(hold(conn, [environment]), [environment]).get(environment)
        if holder is not None:
            raise Conflict(f"{environment} is busy with {holder.describe()}; roll back after "
                           "that", occupant=holder.to_json())
        current, earlier = rollback_target(conn, environment)
        if current is None:
            if torn_down_through(conn, environment):
                raise Conflict(f"nothing runs in {environment} since its teardown; deploy a "
                               "release there (promote) instead of rolling back")
            raise NotFound(f"nothing has been deployed to `{environment}`")
        if to is None:
            if earlier is None:
                raise Conflict(f"no earlier release succeeded in {environment} before "
                               f"{current.app_set}/{current.name} (releases rolled back from "
                               "there do not count)")
            target = find(conn, ReleaseRef(earlier.app_set, earlier.name))
        else:
            target = find(conn, to)
            if target.id == current.release_id:
                raise Invalid(f"{to} is what {environment} runs already")
            if not _succeeded_there(conn, target.id, environment):
                raise Conflict(f"{to} never succeeded in {environment}; a rollback only "
                               "returns to a release that ran there")
        stage_index = next((i for i, s in enumerate(release_stages(target))
                            if environment in s.environments), 0)
        attempt = 1 + int(conn.execute(select(func.coalesce(func.max(deployments.c.attempt), 0))
                                       .where((deployments.c.release_id == target.id)
                                              & (deployments.c.environment == environment)))
                          .scalar_one())
        deployment_id = inserted_id(conn.execute(insert(deployments).values(
            key=f"{target.id}/{environment}/{attempt}", release_id=target.id,
            stage_index=stage_index, environment=environment, attempt=attempt,
            state="deploying", created_at=now, started_at=now, message="rollback",
        )))
        conn.execute(insert(rollbacks).values(
            environment=environment, from_release_id=current.release_id, to_release_id=target.id,
            deployment_id=deployment_id, requested_by=principal.name, requested_at=now,
            reason=reason.strip()))
        from_ref = f"{current.app_set}/{current.name}"
        to_ref = f"{target.app_set}/{target.name}"
        audit.record(conn, at=now, actor=principal.name, action="environment.rollback",
                     object_type="environment", object_id=environment,
                     before={"release": from_ref}, after={"release": to_ref,
                                                         "reason": reason.strip()})
        audit.record(conn, at=now, actor=principal.name, action="release.rolled-back",
                     object_type="release", object_id=from_ref,
                     after={"environment": environment, "to": to_ref})
    services.notify()
    return RollbackStarted(environment=environment, from_=from_ref, to=to_ref, attempt=attempt)


