"""Drift: does each environment still run what its last successful deployment put there?

For every environment, the release of its newest healthy deployment says which image each
application should run; the environment's target says what really runs (local processes,
the GitOps tree, cluster objects, the noop record). Every difference is one line: an
application missing or unhealthy, a different image, an application nobody deployed. The
engine runs the check periodically (`record_drift`), stores each environment's state and
audits every change between in-sync and drifted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, insert, select, update

from infrastream.domain.errors import BackendError
from infrastream.manifests import Environment
from infrastream.store.clock import utc
from infrastream.store.tables import deployments, environment_drift, releases
from infrastream.targets.base import Health

from .auditing import trail as audit
from .context import Services
from .readmodel import ReadModel
from .records.teardowns import teardown_marks


class DriftReport(ReadModel):
    """Does an environment run what its last successful deployment put there?"""

    environment: str
    release: str
    """The release of the environment's newest healthy deployment."""
    state: str
    """`in-sync`, `drifted` or `unknown` (the target could not say)."""
    differences: list[str]


class StoredDrift(ReadModel):
    """The engine's last drift check of an environment."""

    state: str
    differences: list[str]
    checked_at: str


def drift_report(services: Services, environment: str | None = None,
                 include: Callable[[Environment], bool] | None = None) -> list[DriftReport]:
    """Each environment's drift; `include` picks the environments to ask (a server asks only
    the targets it may reach: its own `local` environments, see `records.nodes`)."""
    latest = (select(deployments.c.environment, func.max(deployments.c.id).label("id"))
              .where(deployments.c.state == "healthy").group_by(deployments.c.environment)
              .subquery())
    query = (select(deployments.c.id, deployments.c.environment, releases.c.app_set,
                    releases.c.name, releases.c.content)
             .join(latest, latest.c.id == deployments.c.id)
             .join(releases, releases.c.id == deployments.c.release_id)
             .order_by(deployments.c.environment))
    if environment:
        query = query.where(deployments.c.environment == environment)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
        marks = teardown_marks(conn)
    rows = [r for r in rows if r.id > marks.get(r.environment, 0)]
    if include is not None:
        rows = [row for row in rows if include(_environment(row))]
    return [_compare(services, row) for row in rows]


def _environment(row: Any) -> Environment:
    return Environment.model_validate(row.content["manifests"]["environments"]
                                      [row.environment])


def _compare(services: Services, row: Any) -> DriftReport:
    expected = {app: v["image"] for app, v in row.content["versions"].items()}
    manifest = Environment.model_validate(row.content["manifests"]["environments"]
                                          [row.environment])
    differences: list[str] = []
    try:
        actual = {s.app: s for s in
                  services.targets.for_environment(manifest).status(manifest)}
    except BackendError as exc:
        return _report(row, [f"cannot read what runs: {exc.reason}"], unknown=True)
    for app, image in sorted(expected.items()):
        status = actual.get(app)
        if status is None or status.health is Health.MISSING:
            differences.append(f"{app}: expected {image}, nothing runs"
                               + (f" ({status.detail})" if status and status.detail else ""))
        elif status.image != image:
            differences.append(f"{app}: expected {image}, runs {status.image}")
        elif status.health is not Health.HEALTHY:
            differences.append(f"{app}: {status.health.value}"
                               + (f" ({status.detail})" if status.detail else ""))
    for app in sorted(set(actual) - set(expected)):
        differences.append(f"{app}: runs {actual[app].image}, which no release put there")
    return _report(row, differences)


def _report(row: Any, differences: list[str], *, unknown: bool = False) -> DriftReport:
    state = "unknown" if unknown else ("drifted" if differences else "in-sync")
    return DriftReport(environment=row.environment, release=f"{row.app_set}/{row.name}",
                       state=state, differences=differences)


def record_drift(services: Services,
                 include: Callable[[Environment], bool] | None = None) -> list[DriftReport]:
    """The engine's periodic drift check: store each environment's state, audit changes."""
    report = drift_report(services, include=include)
    now = services.now()
    with services.transaction() as conn:
        before = {r.environment: r for r in conn.execute(select(environment_drift))}
        for item in report:
            previous = before.get(item.environment)
            values = {"state": item.state, "release": item.release,
                      "differences": item.differences, "checked_at": now}
            if previous is None:
                conn.execute(insert(environment_drift).values(
                    environment=item.environment, **values))
            else:
                conn.execute(update(environment_drift).where(
                    environment_drift.c.environment == item.environment).values(**values))
            if (previous.state if previous is not None else "in-sync") != item.state:
                audit.record(conn, at=now, actor="infrastream", action="environment.drift",
                             object_type="environment", object_id=item.environment,
                             before={"state": previous.state if previous else None},
                             after={"state": item.state, "differences": item.differences})
    return report


def stored_drift(services: Services) -> dict[str, StoredDrift]:
    """The last drift check the engine stored, per environment."""
    with services.db.connect() as conn:
        rows = conn.execute(select(environment_drift)).all()
    return {r.environment: StoredDrift(state=r.state, differences=r.differences,
                                       checked_at=(utc(r.checked_at) or r.checked_at).isoformat())
            for r in rows}
