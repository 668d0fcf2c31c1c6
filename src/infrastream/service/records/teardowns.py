"""Teardown marks: after `env teardown`, the deployments up to the one that ran there no
longer count as what runs. Every "what runs where" query reads these marks: a deployment
counts as running only when its id is above its environment's newest mark."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from infrastream.store.tables import environment_teardowns

_MARKS = (select(environment_teardowns.c.environment,
                 func.max(environment_teardowns.c.deployment_id).label("through"))
          .group_by(environment_teardowns.c.environment))


def teardown_marks(conn: Connection) -> dict[str, int]:
    """Environment → the newest deployment id a teardown stopped (absent: never torn down)."""
    return {r.environment: int(r.through) for r in conn.execute(_MARKS)}


def torn_down_through(conn: Connection, environment: str) -> int:
    """The newest deployment id a teardown of `environment` stopped, 0 if none."""
    return int(conn.execute(select(func.coalesce(func.max(
        environment_teardowns.c.deployment_id), 0)).where(
        environment_teardowns.c.environment == environment)).scalar_one())
