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
from ..records.manifests import current_bundle

HISTORY = 50
RECENT = 5


def environment_matrix(services: Services) -> dict[str, Any]:
    bundle = current_bundle(services)
    names = bundle.used_environments()
    rows = []
    apps: set[str] = set(bundle.applications)
    with services.db.connect() as conn:
        for env in names:
            history = conn.execute(
                select(deployments.c.result, deployments.c.finished_at, releases.c.app_set,
                       releases.c.name)
                .join(releases, releases.c.id == deployments.c.release_id)
                .where((deployments.c.environment == env) & (deployments.c.state == "healthy"))
                .order_by(deployments.c.id.desc()).limit(HISTORY)).all()
            # one deployment at a time per environment: a running one is among the newest
            newest = conn.execute(select(deployments.c.state)
                                  .where(deployments.c.environment == env)
                                  .order_by(deployments.c.id.desc()).limit(RECENT)).all()
            deploying = any(r.state == "deploying" for r in newest)
            row: dict[str, Any] = {"environment": env,
                                   "tier": bundle.environment(env).spec.tier.value,
                                   "deploying": deploying, "release": None, "since": None,
                                   "apps": {}}
            if history:
                newest = history[0]
                row["release"] = f"{newest.app_set}/{newest.name}"
                row["since"] = _iso(newest.finished_at)
                row["apps"] = _app_since(history)
                apps.update(row["apps"])
            rows.append(row)
    return {"environments": rows, "applications": sorted(apps)}


def _app_since(history: Sequence[Any]) -> dict[str, dict[str, Any]]:
    current = {a["app"]: a for a in (history[0].result or {}).get("apps", [])}
    found: dict[str, dict[str, Any]] = {}
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
        found[app] = {"version": status.get("version"), "image": status.get("image"),
                      "health": status.get("health"), "since": _iso(since),
                      "atLeast": not complete}
    return found


def _iso(value: Any) -> str | None:
    moment = utc(value)
    return moment.isoformat() if moment else None
