"""Environment × application: the version each application runs and since when.

"Since when" is per application: a release that leaves an application's image unchanged
does not restart its clock. Each environment reads its newest `HISTORY` healthy deployments
through the (environment, id) index (their small `result`, never the release content), so
the matrix costs the same however long the history is; an application unchanged for longer
than that shows the oldest time seen, marked as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from infrastream.store.clock import utc
from infrastream.store.tables import deployments, releases

from ..context import Services
from ..health import stored_health
from ..readmodel import ReadModel
from ..records.manifests import current_bundle
from ..records.teardowns import teardown_marks

HISTORY = 50
RECENT = 5


class AppCell(ReadModel):
    """One application in one environment: its version, health and since when."""

    version: str | None
    image: str | None
    health: str | None
    since: str | None
    at_least: bool
    """`since` is the oldest time the kept history shows: it ran there longer."""


class MatrixRow(ReadModel):
    environment: str
    tier: str
    deploying: bool
    release: str | None
    since: str | None
    health: str | None
    """The live health the engine stored for the release it runs (None: not looked yet)."""
    apps: dict[str, AppCell]


class EnvironmentMatrix(ReadModel):
    environments: list[MatrixRow]
    applications: list[str]


def environment_matrix(services: Services) -> EnvironmentMatrix:
    bundle = current_bundle(services)
    names = bundle.used_environments()
    rows = []
    apps: set[str] = set(bundle.applications)
    health = stored_health(services)
    with services.db.connect() as conn:
        marks = teardown_marks(conn)
        for env in names:
            history = conn.execute(
                select(deployments.c.result, deployments.c.finished_at, releases.c.app_set,
                       releases.c.name)
                .join(releases, releases.c.id == deployments.c.release_id)
                .where((deployments.c.environment == env) & (deployments.c.state == "healthy")
                       & (deployments.c.id > marks.get(env, 0)))
                .order_by(deployments.c.id.desc()).limit(HISTORY)).all()
            # one deployment at a time per environment: a running one is among the newest
            newest = conn.execute(select(deployments.c.state)
                                  .where(deployments.c.environment == env)
                                  .order_by(deployments.c.id.desc()).limit(RECENT)).all()
            deploying = any(r.state == "deploying" for r in newest)
            cells = _app_since(history) if history else {}
            release = f"{history[0].app_set}/{history[0].name}" if history else None
            live = health.get(env)
            if live is not None and live.release != release:
                live = None
            if live is not None:
                cells = {app: cell.model_copy(update={"health": live.apps[app].health})
                         if app in live.apps else cell for app, cell in cells.items()}
            apps.update(cells)
            rows.append(MatrixRow(
                environment=env, tier=bundle.environment(env).spec.tier.value,
                deploying=deploying,
                release=release, health=live.state if live is not None else None,
                since=_iso(history[0].finished_at) if history else None, apps=cells))
    return EnvironmentMatrix(environments=rows, applications=sorted(apps))


def _app_since(history: Sequence[Any]) -> dict[str, AppCell]:
    current = {a["app"]: a for a in (history[0].result or {}).get("apps", [])}
    found: dict[str, AppCell] = {}
    for app, status in current.items():
        since = history[0].finished_at
        complete = False
        for older in history[1:]:
            match = next((a for a in (older.result or {}).get("apps", [])
                          if a["app"] == app), None)
            if match is None or match.get("image") != status.get("image"):
                complete = True
                break
            since = older.finished_at
        else:
            complete = len(history) < HISTORY
        found[app] = AppCell(version=status.get("version"), image=status.get("image"),
                             health=status.get("health"), since=_iso(since),
                             at_least=not complete)
    return found


def _iso(value: Any) -> str | None:
    moment = utc(value)
    return moment.isoformat() if moment else None
