"""Who occupies an environment right now, and holding environments while work starts there.

An environment runs one thing at a time: a release deployment, a rollback, a pre-release run
(from the deploy of its build until its restore), a teardown. `occupants` reads who holds a
set of environments (deployments that are `deploying`, pre-release runs that are `running`);
the rule itself (`domain.readiness.occupied`) decides whether that holds a stage. Work starts
only through `hold`, inside the transaction that records it: on PostgreSQL it first takes a
transaction-scoped advisory lock per environment (in name order, so two starters never
deadlock), on SQLite the write transaction already holds the database's write lock. Either
way the read of the occupants cannot be overtaken by another starter before commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, select, text

from infrastream.domain.readiness import Occupant, OccupantKind
from infrastream.store.tables import deployments, prerelease_runs, releases, rollbacks

_DEPLOYING = (
    select(deployments.c.id, deployments.c.environment, deployments.c.release_id,
           releases.c.app_set, releases.c.name, rollbacks.c.id.label("rollback_id"))
    .join(releases, releases.c.id == deployments.c.release_id)
    .outerjoin(rollbacks, rollbacks.c.deployment_id == deployments.c.id)
    .where(deployments.c.environment.in_(bindparam("environments", expanding=True))
           & (deployments.c.state == "deploying"))
    .order_by(deployments.c.id))

_PRERELEASES = (
    select(prerelease_runs.c.id, prerelease_runs.c.environment, prerelease_runs.c.app,
           prerelease_runs.c.ref)
    .where(prerelease_runs.c.environment.in_(bindparam("environments", expanding=True))
           & (prerelease_runs.c.state == "running"))
    .order_by(prerelease_runs.c.id))

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def occupants(conn: Connection, environments: Iterable[str]) -> list[Occupant]:
    """Everything that runs in these environments now, oldest first."""
    names = sorted(set(environments))
    if not names:
        return []
    found = [Occupant(OccupantKind.ROLLBACK if row.rollback_id is not None
                      else OccupantKind.RELEASE, row.environment, row.id,
                      release_id=row.release_id, release=f"{row.app_set}/{row.name}")
             for row in conn.execute(_DEPLOYING, {"environments": names})]
    found += [Occupant(OccupantKind.PRERELEASE, row.environment, row.id, app=row.app,
                       ref=row.ref)
              for row in conn.execute(_PRERELEASES, {"environments": names})]
    return found


def _lock_key(environment: str) -> int:
    """A stable signed 64-bit advisory lock key for an environment name."""
    digest = hashlib.sha256(b"infrastream-environment:" + environment.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def hold(conn: Connection, environments: Iterable[str]) -> list[Occupant]:
    """Lock these environments until the transaction ends, then read who occupies them.

    Call it in the write transaction that starts work there, and start only when the rule
    says the environments are free."""
    names = sorted(set(environments))
    if conn.dialect.name == "postgresql":
        for name in names:
            conn.execute(_LOCK, {"key": _lock_key(name)})
    return occupants(conn, names)
