"""Rollback: put an environment back on the release that ran there before.

`rollback(env)` redeploys the last release that succeeded in the environment before the
current one (or the release named with `to`, which must have succeeded there before).
Rules (documented in the README): only release managers and incident commanders may roll
back; no approval is asked again, since the target release already passed the sign-offs of
that environment when it first entered it; one deployment at a time per environment still
holds; a freeze window holds a rollback unless it exempts the hotfix lane, because a rollback
is an emergency action like a hotfix. The release rolled back from is marked so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.freeze import frozen
from infrastream.domain.roles import ROLL_BACK, Principal
from infrastream.manifests import Lane
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import deployments, releases, rollbacks

from .auditing import trail as audit
from .context import Services
from .permissions import require
from .records.manifests import current_bundle
from .records.releases import ReleaseRef, find, release_stages


def _healthy(conn: Connection, environment: str) -> list[Any]:
    return list(conn.execute(select(deployments, releases.c.app_set, releases.c.name)
                             .join(releases, releases.c.id == deployments.c.release_id)
                             .where((deployments.c.environment == environment)
                                    & (deployments.c.state == "healthy"))
                             .order_by(deployments.c.id.desc())))


def rollback(services: Services, principal: Principal, environment: str,
             to: ReleaseRef | None = None, reason: str = "") -> dict[str, Any]:
    require(principal, ROLL_BACK, "roll back environments")
    now = services.now()
    held = frozen(current_bundle(services).freezes.values(), environment, Lane.HOTFIX.value, now)
    if held is not None:
        raise Conflict(f"{environment} is {held.describe()}; rollbacks wait like hotfixes")
    with services.transaction() as conn:
        history = _healthy(conn, environment)
        if not history:
            raise NotFound(f"nothing has been deployed to `{environment}`")
        current = history[0]
        busy = conn.execute(select(deployments.c.id).where(
            (deployments.c.environment == environment)
            & (deployments.c.state == "deploying"))).first()
        if busy is not None:
            raise Conflict(f"{environment} is being deployed to right now; roll back after that")
        if to is None:
            earlier = [d for d in history if d.release_id != current.release_id]
            if not earlier:
                raise Conflict(f"no earlier release succeeded in {environment} before "
                               f"{current.app_set}/{current.name}")
            target = find(conn, ReleaseRef(earlier[0].app_set, earlier[0].name))
        else:
            target = find(conn, to)
            if target.id == current.release_id:
                raise Invalid(f"{to} is what {environment} runs already")
            if not any(d.release_id == target.id for d in history):
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
    return {"environment": environment, "from": from_ref, "to": to_ref, "attempt": attempt}


