"""Pages of releases for the faces: newest first, keyset-paginated, by set and by lane, each
with the state of its stages so a list shows how far every release got.

A page reads `limit + 1` rows down the primary key (never a count) and the stage runs of
those rows through the (release, stage) key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, true

from infrastream.store.clock import utc
from infrastream.store.tables import releases, stage_runs

from ..context import Services

_COLUMNS = (releases.c.id, releases.c.app_set, releases.c.name, releases.c.lane,
            releases.c.track, releases.c.state, releases.c.digest, releases.c.created_at,
            releases.c.created_by, releases.c.finished_at, releases.c.incident)


def newest(services: Services, *, app_set: str | None = None, lane: str | None = None,
                 before: int | None = None, limit: int = 50) -> dict[str, Any]:
    """Releases newest first below id `before`; `next` is the following page's `before`."""
    where: ColumnElement[bool] = true()
    if app_set:
        where = where & (releases.c.app_set == app_set)
    if lane:
        where = where & (releases.c.lane == lane)
    if before:
        where = where & (releases.c.id < before)
    with services.db.connect() as conn:
        rows = conn.execute(select(*_COLUMNS).where(where).order_by(releases.c.id.desc())
                            .limit(limit + 1)).all()
        shown = rows[:limit]
        runs = conn.execute(select(stage_runs.c.release_id, stage_runs.c.stage_index,
                                   stage_runs.c.state)
                            .where(stage_runs.c.release_id.in_([r.id for r in shown]))
                            .order_by(stage_runs.c.release_id, stage_runs.c.stage_index)
                            ).all() if shown else []
    stages: dict[int, list[str]] = {}
    for run in runs:
        stages.setdefault(run.release_id, []).append(run.state)
    items = []
    for row in shown:
        created, finished = utc(row.created_at), utc(row.finished_at)
        items.append({
            "id": row.id, "release": f"{row.app_set}/{row.name}", "applicationSet": row.app_set,
            "name": row.name, "lane": row.lane, "track": row.track, "state": row.state,
            "digest": row.digest, "incident": row.incident, "createdBy": row.created_by,
            "createdAt": created.isoformat() if created else None,
            "finishedAt": finished.isoformat() if finished else None,
            "stages": stages.get(row.id, []),
        })
    return {"releases": items, "next": shown[-1].id if len(rows) > limit else None}


def hotfix_details(services: Services, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What each hotfix release replaced and from which release it started."""
    if not ids:
        return {}
    with services.db.connect() as conn:
        rows = conn.execute(select(releases.c.id, releases.c.content)
                            .where(releases.c.id.in_(ids))).all()
    found = {}
    for row in rows:
        hotfix = row.content.get("hotfix") or {}
        found[row.id] = {"base": hotfix.get("base"), "replaced": {
            app: row.content["versions"][app]["image"] for app in hotfix.get("replaced", [])}}
    return found
