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
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Text,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    text,
    union_all,
)

from infrastream.domain.readiness import Occupant, OccupantKind
from infrastream.store.tables import deployments, prerelease_runs, releases, rollbacks


def _occupying(environment: ColumnElement[bool], prerelease: ColumnElement[bool]) -> Any:
    """Both kinds of occupant in one statement (UNION ALL: `kind` 0 for the deployments, 1
    for the pre-release runs), each branch an index lookup of the few rows in flight."""
    return union_all(
        select(literal_column("0").label("kind"), deployments.c.id, deployments.c.environment,
               deployments.c.release_id, releases.c.app_set, releases.c.name,
               rollbacks.c.id.label("rollback_id"), cast(null(), Text).label("app"),
               cast(null(), Text).label("ref"))
        .join(releases, releases.c.id == deployments.c.release_id)
        .outerjoin(rollbacks, rollbacks.c.deployment_id == deployments.c.id)
        .where(environment & (deployments.c.state == "deploying")),
        select(literal_column("1").label("kind"), prerelease_runs.c.id,
               prerelease_runs.c.environment, cast(null(), Integer), cast(null(), Text),
               cast(null(), Text), cast(null(), Integer), prerelease_runs.c.app,
               prerelease_runs.c.ref)
        .where(prerelease & (prerelease_runs.c.state == "running")),
    ).order_by(text("kind"), text("id"))


_OCCUPYING_ONE = _occupying(deployments.c.environment == bindparam("environment"),
                            prerelease_runs.c.environment == bindparam("environment"))
"""Who occupies one environment: no expanding IN to render at every execution."""
_OCCUPYING = _occupying(
    deployments.c.environment.in_(bindparam("environments", expanding=True)),
    prerelease_runs.c.environment.in_(bindparam("environments", expanding=True)))

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def occupants(conn: Connection, environments: Iterable[str]) -> list[Occupant]:
    """Everything that runs in these environments now, oldest first (deployments, then
    pre-release runs): one statement."""
    names = sorted(set(environments))
    if not names:
        return []
    rows = (conn.execute(_OCCUPYING_ONE, {"environment": names[0]}) if len(names) == 1
            else conn.execute(_OCCUPYING, {"environments": names}))
    return [Occupant(OccupantKind.PRERELEASE, row.environment, row.id, app=row.app,
                     ref=row.ref) if row.kind
            else Occupant(OccupantKind.ROLLBACK if row.rollback_id is not None
                          else OccupantKind.RELEASE, row.environment, row.id,
                          release_id=row.release_id, release=f"{row.app_set}/{row.name}")
            for row in rows]


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
