"""A release's content, parsed once: its track, stages, applications and environments.

A release is immutable and its digest is the sha256 of its content, so the JSON and the
pydantic models it holds are the same for every reader, on every pass. The engine, the deploy
and check jobs and the status view take them from here (a bounded LRU keyed by digest)
instead of decoding `releases.content` and validating the manifests again at every step. The
stored content stays the evidence: `evidence` re-hashes it from the database, never from here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select

from infrastream.manifests import Application, Environment, Lane, ReleaseTrack, Stage
from infrastream.store.tables import releases

from ..context import Services

CAPACITY = 256
"""Releases kept parsed; active ones are a handful, the rest are a status page away."""

_CONTENT = select(releases.c.content).where(releases.c.id == bindparam("id"))


class ReleaseContent:
    """The parsed content of one release. Read-only: shared by every thread."""

    def __init__(self, content: Mapping[str, Any]) -> None:
        self.raw = content
        self.versions: Mapping[str, Mapping[str, Any]] = content["versions"]
        self._manifests: Mapping[str, Any] = content["manifests"]
        self._lock = threading.Lock()
        self._applications: dict[str, Application] = {}
        self._environments: dict[str, Environment] = {}
        self._stages: dict[str, list[Stage]] = {}

    @cached_property
    def track(self) -> ReleaseTrack:
        return ReleaseTrack.model_validate(self._manifests["track"])

    def stages(self, lane: str) -> list[Stage]:
        """The stages of the release's lane (a shared list: do not change it)."""
        found = self._stages.get(lane)
        if found is None:
            found = self.track.spec.stages(Lane(lane))
            with self._lock:
                found = self._stages.setdefault(lane, found)
        return found

    def application(self, name: str) -> Application:
        found = self._applications.get(name)
        if found is None:
            found = Application.model_validate(self._manifests["applications"][name])
            with self._lock:
                found = self._applications.setdefault(name, found)
        return found

    def environment(self, name: str) -> Environment:
        found = self._environments.get(name)
        if found is None:
            found = Environment.model_validate(self._manifests["environments"][name])
            with self._lock:
                found = self._environments.setdefault(name, found)
        return found

    @cached_property
    def secret_names(self) -> dict[str, frozenset[str]]:
        """The secret variables each application declares (none: no secret is looked up)."""
        return {name: frozenset(v.name for v in self.application(name).spec.env if v.secret)
                for name in self.versions}


_lock = threading.Lock()
_cache: OrderedDict[str, ReleaseContent] = OrderedDict()


def _remember(digest: str, parsed: ReleaseContent) -> ReleaseContent:
    with _lock:
        kept = _cache.setdefault(digest, parsed)
        _cache.move_to_end(digest)
        while len(_cache) > CAPACITY:
            _cache.popitem(last=False)
    return kept


def cached(digest: str) -> ReleaseContent | None:
    with _lock:
        found = _cache.get(digest)
        if found is not None:
            _cache.move_to_end(digest)
    return found


def of_row(release: Any) -> ReleaseContent:
    """The parsed content of a `releases` row that carries its `content` and `digest`."""
    return cached(release.digest) or _remember(release.digest, ReleaseContent(release.content))


def load(conn: Connection, release_id: int, digest: str) -> ReleaseContent:
    """The parsed content of a release, read from the database only the first time."""
    found = cached(digest)
    if found is not None:
        return found
    content = conn.execute(_CONTENT, {"id": release_id}).scalar_one()
    return _remember(digest, ReleaseContent(content))


def of(conn: Connection, release: Any) -> ReleaseContent:
    """The parsed content of a `releases` row, whether it carries `content` or not."""
    if "content" in release._fields:
        return of_row(release)
    return load(conn, release.id, release.digest)


def environment_of(release: Any, name: str) -> Environment:
    """An environment as a release (a `releases` row with its content) snapshotted it."""
    return of_row(release).environment(name)


def release_workdir(services: Services, release: Any) -> Path:
    return Path(release.source_root) if release.source_root else services.data_dir
