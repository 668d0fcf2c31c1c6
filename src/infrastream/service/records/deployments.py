"""What runs where, and what ran there: each environment's current deployment, its history of
successful deployments and its rollbacks.

An environment's current deployment is its newest healthy one (a rollback is a deployment
too, of an older release). What a release runs in is derived from that, one rule for every
face: a release runs in an environment exactly when the environment's current deployment is
of that release, so a release rolled back from or superseded there never says it runs there.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import CompoundSelect, Connection, bindparam, select, union_all

from infrastream.domain.rollback import default_target
from infrastream.store.tables import deployments, releases, rollbacks

from .teardowns import torn_down_through

HISTORY = 200
"""How many of an environment's newest healthy deployments a rollback target is sought in."""

_CURRENT = (
    select(deployments.c.id, deployments.c.environment, deployments.c.release_id,
           deployments.c.finished_at, deployments.c.result, releases.c.app_set,
           releases.c.name, releases.c.digest)
    .join(releases, releases.c.id == deployments.c.release_id)
    .where((deployments.c.environment == bindparam("environment"))
           & (deployments.c.state == "healthy"))
    .order_by(deployments.c.id.desc()))

_HISTORY = _CURRENT.limit(HISTORY)


def _newest_healthy(parameter: str) -> Any:
    return (select(deployments.c.id, deployments.c.environment, deployments.c.release_id,
                   deployments.c.finished_at, releases.c.app_set, releases.c.name,
                   releases.c.digest)
            .join(releases, releases.c.id == deployments.c.release_id)
            .where((deployments.c.environment == bindparam(parameter))
                   & (deployments.c.state == "healthy"))
            .order_by(deployments.c.id.desc()).limit(1).subquery())


@lru_cache(maxsize=64)
def _current_of(count: int) -> CompoundSelect[Any]:
    """The current deployments of `count` environments in one statement: each one's newest
    healthy deployment (an index walk per environment), joined with UNION ALL."""
    return union_all(*(select(_newest_healthy(f"environment_{i}")) for i in range(count)))

_ROLLBACKS = (select(rollbacks.c.deployment_id, rollbacks.c.from_release_id)
              .where(rollbacks.c.environment == bindparam("environment"))
              .order_by(rollbacks.c.id.desc()).limit(HISTORY))


def current(conn: Connection, environments: Iterable[str]) -> dict[str, Any]:
    """Per environment, its current deployment (id, release id, finished at, the release's
    set, name and digest), if any; one statement for them all."""
    names = list(dict.fromkeys(environments))
    if not names:
        return {}
    rows = conn.execute(_current_of(len(names)),
                        {f"environment_{i}": name for i, name in enumerate(names)})
    found = {row.environment: row for row in rows}
    return {name: found[name] for name in names if name in found}


def runs_in(conn: Connection, release_id: int, environments: Iterable[str]) -> list[str]:
    """The environments (of those given) whose current deployment is of this release."""
    return [env for env, row in current(conn, environments).items()
            if row.release_id == release_id]


def history(conn: Connection, environment: str) -> list[Any]:
    """The environment's healthy deployments, newest first (bounded)."""
    return list(conn.execute(_HISTORY, {"environment": environment}))


def _pairs(conn: Connection, environment: str,
           healthy: list[Any]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    done = [(row.id, row.release_id) for row in healthy]
    back = [(row.deployment_id, row.from_release_id)
            for row in conn.execute(_ROLLBACKS, {"environment": environment})]
    return done, back


def rollback_target(conn: Connection, environment: str) -> tuple[Any | None, Any | None]:
    """(what runs there now, where a default rollback goes): `history` rows or None."""
    healthy = history(conn, environment)
    if not healthy or healthy[0].id <= torn_down_through(conn, environment):
        return None, None  # nothing ran, or a teardown stopped what ran: nothing is current
    target = default_target(*_pairs(conn, environment, healthy))
    return healthy[0], next((row for row in healthy if row.release_id == target), None)


_ROLLED_BACK_FROM = (select(rollbacks, releases.c.app_set, releases.c.name, deployments.c.state)
                     .join(releases, releases.c.id == rollbacks.c.to_release_id)
                     .join(deployments, deployments.c.id == rollbacks.c.deployment_id)
                     .where(rollbacks.c.from_release_id == bindparam("release_id"))
                     .order_by(rollbacks.c.id))


def rollbacks_of(conn: Connection, release_id: int) -> list[dict[str, Any]]:
    """Where the release was rolled back from, by whom and why."""
    rows = conn.execute(_ROLLED_BACK_FROM, {"release_id": release_id}).all()
    return [{"environment": r.environment, "to": f"{r.app_set}/{r.name}",
             "by": r.requested_by, "at": r.requested_at.isoformat(), "reason": r.reason,
             "state": r.state} for r in rows]
