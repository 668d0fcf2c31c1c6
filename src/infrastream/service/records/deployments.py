"""What ran where: rollback history of environments and releases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from infrastream.store.tables import deployments, releases, rollbacks


def rollbacks_of(conn: Connection, release_id: int) -> list[dict[str, Any]]:
    """Where the release was rolled back from, by whom and why."""
    rows = conn.execute(select(rollbacks, releases.c.app_set, releases.c.name,
                               deployments.c.state)
                        .join(releases, releases.c.id == rollbacks.c.to_release_id)
                        .join(deployments, deployments.c.id == rollbacks.c.deployment_id)
                        .where(rollbacks.c.from_release_id == release_id)
                        .order_by(rollbacks.c.id)).all()
    return [{"environment": r.environment, "to": f"{r.app_set}/{r.name}",
             "by": r.requested_by, "at": r.requested_at.isoformat(), "reason": r.reason,
             "state": r.state} for r in rows]


def is_rollback(conn: Connection, deployment_id: int) -> Any | None:
    return conn.execute(select(rollbacks).where(rollbacks.c.deployment_id == deployment_id)
                        ).first()
