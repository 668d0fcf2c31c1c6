"""The manifests as currently applied: the newest revision, parsed once per revision.

`current_bundle` is what every use case, the engine and the views read the control plane's
manifests through (cached per revision and database, so a pass costs one index lookup);
`lane_stages` is the one check a use case that starts a lane makes (the set, its track, the
lane's stages); `source_root` is where an applied object's relative `run`/`integrationTests`
paths resolve.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection, bindparam, func, select

from infrastream.domain.errors import Conflict, NotFound
from infrastream.manifests import Bundle, Manifest, assemble, from_body
from infrastream.manifests.track import Lane, ReleaseTrack, Stage
from infrastream.store.tables import manifest_objects, manifest_revisions

from ..context import Services

_cache_lock = threading.Lock()
_cache: dict[tuple[int, str], Bundle] = {}


_STORED = (select(manifest_objects.c.kind, manifest_objects.c.body)
           .order_by(manifest_objects.c.kind, manifest_objects.c.name))
_REVISION = select(func.coalesce(func.max(manifest_revisions.c.id), 0))
REVISION = _REVISION.scalar_subquery()
"""The current revision as a column, for a statement that asks it with other things (the
engine's looks): then `current_bundle(…, revision=…)` needs no statement of its own."""


def current_revision(conn: Connection) -> int:
    return int(conn.execute(_REVISION).scalar_one())


def current_bundle(services: Services, conn: Connection | None = None, *,
                   revision: int | None = None) -> Bundle:
    """The manifests as currently applied (cached per revision); `revision` when the
    caller read it already, in the same transaction as `conn`."""
    if conn is None:
        with services.db.connect() as own:
            return current_bundle(services, own, revision=revision)
    if revision is None:
        revision = current_revision(conn)
    key = (revision, str(services.db.url))
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    bundle = assemble(stored_manifests(conn))
    with _cache_lock:
        _cache.clear()
        _cache[key] = bundle
    return bundle


def lane_stages(bundle: Bundle, app_set: str, lane: Lane) -> tuple[ReleaseTrack, list[Stage]]:
    """The track of `app_set` and its stages of `lane`: NotFound when the set does not exist,
    Conflict when its track has no such lane."""
    if app_set not in bundle.sets:
        raise NotFound(f"application set `{app_set}` does not exist")
    track = bundle.track_of(app_set)
    stages = track.spec.stages(lane)
    if not stages:
        raise Conflict(f"track `{track.metadata.name}` has no {lane.value}Stages")
    return track, stages


def stored_manifests(conn: Connection) -> list[Manifest]:
    """Every manifest the control plane holds now, read back from its stored body."""
    return [from_body(r.kind, r.body) for r in conn.execute(_STORED)]


_SOURCE_ROOT = select(manifest_objects.c.source_root).where(
    (manifest_objects.c.kind == bindparam("kind")) & (manifest_objects.c.name == bindparam("name")))


def source_root(services: Services, kind: str, name: str,
                conn: Connection | None = None) -> str | None:
    if conn is None:
        with services.db.connect() as own:
            return source_root(services, kind, name, own)
    return conn.execute(_SOURCE_ROOT, {"kind": kind, "name": name}).scalar_one_or_none()
