"""Pages of releases for the faces: newest first, keyset-paginated, by set and by lane, each
with the state of its stages so a list shows how far every release got.

A page reads `limit + 1` rows down the primary key (never a count) and the stage runs of
those rows through the (release, stage) key.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, true

from infrastream.domain.inputs import valid_id
from infrastream.store.clock import utc
from infrastream.store.tables import releases, stage_runs

from ..context import Services
from ..readmodel import ReadModel

_COLUMNS = (releases.c.id, releases.c.app_set, releases.c.name, releases.c.lane,
            releases.c.track, releases.c.state, releases.c.digest, releases.c.created_at,
            releases.c.created_by, releases.c.finished_at, releases.c.incident)


class ListedRelease(ReadModel):
    id: int
    release: str
    application_set: str
    name: str
    lane: str
    track: str
    state: str
    digest: str
    incident: str | None
    created_by: str
    created_at: str | None
    finished_at: str | None
    stages: list[str]
    """The state of each stage, in order."""


class ReleasePage(ReadModel):
    releases: list[ListedRelease]
    next: int | None
    """The `before` of the following page (None: this is the last)."""


class HotfixDetails(ReadModel):
    base: str | None
    replaced: dict[str, str]
    """Application → the hotfix image that replaced it."""


def newest(services: Services, *, app_set: str | None = None, lane: str | None = None,
           before: int | None = None, limit: int = 50) -> ReleasePage:
    """Releases newest first below id `before`; `next` is the following page's `before`."""
    valid_id("before", before)
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
        items.append(ListedRelease(
            id=row.id, release=f"{row.app_set}/{row.name}", application_set=row.app_set,
            name=row.name, lane=row.lane, track=row.track, state=row.state,
            digest=row.digest, incident=row.incident, created_by=row.created_by,
            created_at=created.isoformat() if created else None,
            finished_at=finished.isoformat() if finished else None,
            stages=stages.get(row.id, []),
        ))
    return ReleasePage(releases=items, next=shown[-1].id if len(rows) > limit else None)


def hotfix_details(services: Services, ids: list[int]) -> dict[int, HotfixDetails]:
    """What each hotfix release replaced and from which release it started."""
    if not ids:
        return {}
    with services.db.connect() as conn:
        rows = conn.execute(select(releases.c.id, releases.c.content)
                            .where(releases.c.id.in_(ids))).all()
    found = {}
    for row in rows:
        hotfix = row.content.get("hotfix") or {}
        found[row.id] = HotfixDetails(base=hotfix.get("base"), replaced={
            app: row.content["versions"][app]["image"] for app in hotfix.get("replaced", [])})
    return found
