"""What runs where: per environment, the release whose deployment last succeeded there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from infrastream.store.clock import utc
from infrastream.store.tables import deployments, releases

from ..context import Services
from ..drift import stored_drift


def environment_overview(services: Services) -> list[dict[str, Any]]:
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
        deploying = conn.execute(select(deployments.c.environment).where(
            deployments.c.state == "deploying")).scalars().all()
    drift = stored_drift(services)
    result = []
    for row in rows:
        since = utc(row.finished_at)
        result.append({
            "environment": row.environment,
            "release": f"{row.app_set}/{row.release_name}",
            "digest": row.digest,
            "since": since.isoformat() if since else None,
            "deploying": row.environment in deploying,
            "versions": {app: v["version"] for app, v in row.content["versions"].items()},
            "apps": (row.result or {}).get("apps", []),
            "drift": drift.get(row.environment),
        })
    return result
