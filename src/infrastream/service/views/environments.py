"""What runs where: per environment, the release whose deployment last succeeded there."""

from __future__ import annotations

from sqlalchemy import func, select

from infrastream.store.clock import utc
from infrastream.store.tables import deployments, releases

from ..context import Services
from ..drift import StoredDrift, stored_drift
from ..health import StoredHealth, stored_health
from ..readmodel import ReadModel
from ..records.shapes import DeployedApp, deployed_apps
from ..records.teardowns import teardown_marks


class EnvironmentView(ReadModel):
    """One environment: the release it runs, since when, each application, its drift."""

    environment: str
    release: str
    digest: str
    since: str | None
    deploying: bool
    """Another deployment to it is in progress."""
    versions: dict[str, str]
    """Application → version."""
    apps: list[DeployedApp]
    drift: StoredDrift | None
    health: StoredHealth | None
    """The live health the engine last stored (None until its first health pass)."""


def environment_overview(services: Services) -> list[EnvironmentView]:
    latest = (select(deployments.c.environment, func.max(deployments.c.id).label("id"))
              .where(deployments.c.state == "healthy").group_by(deployments.c.environment)
              .subquery())
    query = (select(deployments, releases.c.app_set, releases.c.name.label("release_name"),
                    releases.c.content, releases.c.digest)
             .join(latest, latest.c.id == deployments.c.id)
             .join(releases, releases.c.id == deployments.c.release_id)
             .order_by(deployments.c.environment))
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
        marks = teardown_marks(conn)
        deploying = conn.execute(select(deployments.c.environment).where(
            deployments.c.state == "deploying")).scalars().all()
    drift = stored_drift(services)
    health = stored_health(services)
    result = []
    for row in rows:
        if row.id <= marks.get(row.environment, 0):
            continue  # torn down: nothing runs there
        since = utc(row.finished_at)
        result.append(EnvironmentView(
            environment=row.environment,
            release=f"{row.app_set}/{row.release_name}",
            digest=row.digest,
            since=since.isoformat() if since else None,
            deploying=row.environment in deploying,
            versions={app: v["version"] for app, v in row.content["versions"].items()},
            apps=deployed_apps(row.result),
            drift=drift.get(row.environment),
            health=health.get(row.environment),
        ))
    return result
