"""Live health: what each environment's target says about what runs there, stored as one fact.

The engine's health pass (`record_health`, every few seconds) asks the target of every
environment that has a successful deployment for the health of each application (local:
process alive and its health check; kubernetes: rollout and availability; gitops: the
tree). The environment is `healthy` when every application of its release is, else
`unhealthy` (`unknown` when the target cannot say; `committed` for a gitops environment
whose tree holds the release: the agent's live health is not read yet). The result is
stored in `environment_health`, which the overview, the environment matrix, `status` and
the API all read, and every change is audited as `environment.health`. A target that
supervises its processes (`Supervising`) then restarts those that died; each restart is
audited as `environment.restart`, with secret values read again from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, insert, select, update

from infrastream.domain.errors import BackendError
from infrastream.manifests import Environment
from infrastream.store.clock import utc
from infrastream.store.tables import deployments, environment_health, releases
from infrastream.targets.base import AppStatus, Health, Supervising

from .auditing import trail as audit
from .context import Services
from .readmodel import ReadModel
from .records.secret_values import resolve as resolve_secrets
from .records.teardowns import teardown_marks

SYSTEM = "infrastream"


class AppHealth(ReadModel):
    health: str
    detail: str
    restarts: int


class StoredHealth(ReadModel):
    """The last live health the engine stored for an environment."""

    state: str
    """`healthy`, `unhealthy`, `committed` (gitops) or `unknown`."""
    release: str
    """The release whose applications were judged."""
    apps: dict[str, AppHealth]
    restarts: dict[str, int]
    """Application → restarts of its process since it was deployed (only those restarted)."""
    checked_at: str


def _newest_healthy() -> Any:
    latest = (select(deployments.c.environment, func.max(deployments.c.id).label("id"))
              .where(deployments.c.state == "healthy").group_by(deployments.c.environment)
              .subquery())
    return (select(deployments.c.id, deployments.c.environment, releases.c.app_set, releases.c.name,
                   releases.c.content)
            .join(latest, latest.c.id == deployments.c.id)
            .join(releases, releases.c.id == deployments.c.release_id))


def _judge(expected: list[str], statuses: dict[str, AppStatus]) -> tuple[str, dict[str, Any]]:
    apps: dict[str, Any] = {}
    for app in expected:
        status = statuses.get(app)
        if status is None:
            apps[app] = {"health": Health.MISSING.value, "detail": "not running", "restarts": 0}
        else:
            apps[app] = {"health": status.health.value, "detail": status.detail,
                         "restarts": status.restarts}
    healthy = all(a["health"] == Health.HEALTHY.value for a in apps.values())
    return ("healthy" if healthy else "unhealthy"), apps


def record_health(services: Services,
                  include: Callable[[Environment], bool] | None = None) -> None:
    """One health pass over every deployed environment (those `include` accepts: with
    several servers, each node looks at its own `local` environments); then let supervisors
    restart."""
    with services.db.connect() as conn:
        rows = conn.execute(_newest_healthy()).all()
        marks = teardown_marks(conn)
    for row in [r for r in rows if r.id > marks.get(r.environment, 0)]:
        manifest = Environment.model_validate(
            row.content["manifests"]["environments"][row.environment])
        if include is not None and not include(manifest):
            continue
        target = services.targets.for_environment(manifest)
        try:
            statuses = {s.app: s for s in target.status(manifest)}
            state, apps = _judge(sorted(row.content["versions"]), statuses)
            if state == "healthy" and manifest.spec.target.type == "gitops":
                state = "committed"  # the tree holds the release; the agent's health: later
        except BackendError as exc:
            state, apps = "unknown", {"*": {"health": "unknown", "detail": exc.reason,
                                            "restarts": 0}}
        _store(services, row.environment, f"{row.app_set}/{row.name}", state, apps)
        if state == "unhealthy" and isinstance(target, Supervising):
            _supervise(services, target, manifest)


def _store(services: Services, environment: str, release: str, state: str,
           apps: dict[str, Any]) -> None:
    now = services.now()
    with services.transaction() as conn:
        previous = conn.execute(select(environment_health).where(
            environment_health.c.environment == environment)).first()
        values = {"state": state, "release": release, "apps": apps, "checked_at": now}
        if previous is None:
            conn.execute(insert(environment_health).values(environment=environment, **values))
        else:
            conn.execute(update(environment_health).where(
                environment_health.c.environment == environment).values(**values))
        before = previous.state if previous is not None else None
        if before != state:
            audit.record(conn, at=now, actor=SYSTEM, action="environment.health",
                         object_type="environment", object_id=environment,
                         before={"state": before},
                         after={"state": state, "release": release,
                                "unhealthy": {a: v["detail"] for a, v in apps.items()
                                              if v["health"] != Health.HEALTHY.value}})


def _supervise(services: Services, target: Supervising, manifest: Environment) -> None:
    name = manifest.metadata.name
    try:
        restarts = target.supervise(manifest, lambda app: resolve_secrets(services, name, app))
    except BackendError:
        return  # the next pass tries again
    if not restarts:
        return
    now = services.now()
    with services.transaction() as conn:
        for restart in restarts:
            audit.record(conn, at=now, actor=SYSTEM, action="environment.restart",
                         object_type="environment", object_id=name,
                         after={"app": restart.app, "succeeded": restart.succeeded,
                                "restarts": restart.restarts, "was_pid": restart.old_pid,
                                "detail": restart.status.detail})


def stored_health(services: Services) -> dict[str, StoredHealth]:
    """The last live health the engine stored, per environment."""
    with services.db.connect() as conn:
        rows = conn.execute(select(environment_health)).all()
    return {r.environment: StoredHealth(
        state=r.state, release=r.release,
        apps={a: AppHealth(**v) for a, v in r.apps.items()},
        restarts={a: v["restarts"] for a, v in r.apps.items() if v.get("restarts")},
        checked_at=(utc(r.checked_at) or r.checked_at).isoformat()) for r in rows}
