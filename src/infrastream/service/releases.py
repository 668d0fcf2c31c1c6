"""Cutting releases: the latest version of every application of a set, frozen with a
snapshot of the manifests into an immutable package with a content digest.

A release is referred to as `<set>/<name>` (e.g. `shop/v3`). On creation its first stage is
requested at once, so the engine deploys it to the first stage without anyone promoting.
What a cut is made of (the manifests, the latest versions, the hotfixes in production) is
read in the one write transaction that records it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.forward_port import violations
from infrastream.domain.inputs import free_text, optional_text, valid_id, valid_name
from infrastream.domain.release import content_digest, next_release_name, release_number
from infrastream.domain.roles import CUT_RELEASE, PROMOTE, Principal, promoters
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Bundle, Lane
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import manifest_objects, releases, stage_runs

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.manifests import current_bundle, lane_stages, source_root
from .records.releases import ReleaseRef, ReleaseState, production_fixes
from .records.shapes import AbandonRecord, FrozenVersion, versions_of
from .versions import latest_versions


class CreatedRelease(ReadModel):
    """A release just cut (or a hotfix just started): its name, digest and versions."""

    release: str
    """`SET/NAME`."""
    name: str
    digest: str
    application_set: str
    lane: str
    versions: dict[str, FrozenVersion]
    incident: str | None = None
    """The incident a hotfix answers."""
    base: str | None = None
    """The release in production a hotfix started from."""


class ReleaseSummary(ReadModel):
    id: int
    release: str
    application_set: str
    name: str
    lane: str
    state: str
    digest: str
    created_at: str
    created_by: str
    incident: str | None


class Abandoned(ReadModel):
    release: str
    state: str
    abandoned: AbandonRecord


def snapshot(bundle: Bundle, app_set: str, lane: Lane) -> dict[str, Any]:
    """The manifests a release carries, as they are now."""
    track = bundle.track_of(app_set)
    environments = sorted({env for stage in track.spec.stages(lane) for env in stage.environments})

    def dump(model: Any) -> Any:
        return model.model_dump(mode="json", by_alias=True)

    return {
        "track": dump(track),
        "applicationSet": dump(bundle.sets[app_set]),
        "applications": {a.metadata.name: dump(a) for a in bundle.applications_of(app_set)},
        "environments": {env: dump(bundle.environment(env)) for env in environments},
    }


def guard_override(principal: Principal, problems: list[str], override_reason: str | None,
                   now: Any) -> dict[str, Any] | None:
    """None when nothing is rolled back; the recorded override when one is justified."""
    if not problems:
        return None
    if override_reason is not None and not override_reason.strip():
        raise Invalid("overriding the forward-port guard needs a reason")
    if not override_reason:
        raise Conflict("forward-port guard: this release would roll back a hotfix in "
                       "production: " + "; ".join(problems) + ". Record a newer build that "
                       "includes the fix, or override with a reason", problems=problems)
    require(principal, PROMOTE, "override the forward-port guard")
    return {"by": principal.name, "reason": override_reason.strip(), "at": now.isoformat(),
            "problems": problems}


@refusals.audited("release.create", "release",
                  lambda a: f"{a['app_set']}/{a['name']}" if a["name"] else a["app_set"])
def create_release(services: Services, principal: Principal, app_set: str,
                   name: str | None = None, *,
                   override_reason: str | None = None,
                   cause: Mapping[str, Any] | None = None,
                   link: Callable[[Connection, int], None] | None = None) -> CreatedRelease:
    """Cut a release of `app_set`. `cause` (the merges that cut it) goes into the audit
    entry; `link` is called with the new release's id inside the transaction that records
    it (raise there to cut nothing)."""
    require(principal, CUT_RELEASE, "cut releases")
    if name is not None:
        valid_name("release", name)
    override_reason = optional_text("the forward-port override reason", override_reason)

    def cut(conn: Connection) -> _Cut:
        """What the release is made of, read in the transaction that records it."""
        bundle = current_bundle(services, conn)
        track, stages = lane_stages(bundle, app_set, Lane.RELEASE)
        apps = [a.metadata.name for a in bundle.applications_of(app_set)]
        if not apps:
            raise Conflict(f"application set `{app_set}` has no Application yet: apply the "
                           "Applications that name it as their parent, then cut a release")
        versions = latest_versions(services, apps, conn)
        missing = [a for a in apps if a not in versions]
        if missing:
            raise Conflict(f"cannot cut a release of `{app_set}`: no version recorded for "
                           + ", ".join(missing)
                           + " (record one with `infrastream version record APP --image REF`)",
                           missing=missing)
        frozen = {app: versions[app].frozen().to_json() for app in apps}
        content: dict[str, Any] = {
            "applicationSet": app_set,
            "lane": Lane.RELEASE.value,
            "versions": frozen,
            "manifests": snapshot(bundle, app_set, Lane.RELEASE),
        }
        override = guard_override(principal, violations(frozen, production_fixes(conn, app_set)),
                                  override_reason, services.now())
        return _Cut(content, track.metadata.name, len(stages), override)

    return _insert(services, principal, app_set, name, cut, Lane.RELEASE, cause=cause,
                   link=link)


@dataclass(frozen=True)
class _Cut:
    """What a release is made of: its content, its track's name and number of stages, and
    the forward-port override it was cut with."""

    content: dict[str, Any]
    track: str
    stage_count: int
    guard: dict[str, Any] | None = None


def insert_release(services: Services, principal: Principal, app_set: str, name: str | None,
                   content: dict[str, Any], lane: Lane, track: str, stage_count: int, *,
                   incident: str | None = None, base_release_id: int | None = None,
                   guard: dict[str, Any] | None = None,
                   cause: Mapping[str, Any] | None = None,
                   link: Callable[[Connection, int], None] | None = None) -> CreatedRelease:
    made = _Cut(content, track, stage_count, guard)
    return _insert(services, principal, app_set, name, lambda _conn: made, lane,
                   incident=incident, base_release_id=base_release_id, cause=cause, link=link)


def _insert(services: Services, principal: Principal, app_set: str, name: str | None,
            cut: Callable[[Connection], _Cut], lane: Lane, *, incident: str | None = None,
            base_release_id: int | None = None, cause: Mapping[str, Any] | None = None,
            link: Callable[[Connection, int], None] | None = None) -> CreatedRelease:
    for attempt in range(5):
        try:
            return _insert_once(services, principal, app_set, name, cut, lane, incident,
                                base_release_id, cause, link)
        except _NameTaken as taken:
            if name is not None or attempt == 4:
                raise Conflict(f"release `{app_set}/{taken.name}` already exists") from None
    raise AssertionError("unreachable")  # pragma: no cover


_LOCK_SET = (select(manifest_objects.c.name)
             .where((manifest_objects.c.kind == "ApplicationSet")
                    & (manifest_objects.c.name == bindparam("app_set"))).with_for_update())
_HIGHEST = select(func.max(releases.c.number)).where(releases.c.app_set == bindparam("app_set"))
_INSERT_RELEASE = insert(releases)
_INSERT_RUNS = insert(stage_runs)


class _NameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _insert_once(services: Services, principal: Principal, app_set: str, name: str | None,
                 cut: Callable[[Connection], _Cut], lane: Lane, incident: str | None,
                 base_release_id: int | None, cause: Mapping[str, Any] | None,
                 link: Callable[[Connection, int], None] | None) -> CreatedRelease:
    now = services.now()
    release_name = name or ""
    try:
        with services.transaction() as conn:
            # cuts of one set queue on its manifest row, so auto-names never collide (SQLite:
            # they queue on the write lock BEGIN IMMEDIATE took)
            if conn.dialect.name != "sqlite":
                conn.execute(_LOCK_SET, {"app_set": app_set})
            made = cut(conn)
            content, guard = made.content, made.guard
            root = source_root(services, "Application", next(iter(content["versions"])), conn)
            highest = conn.execute(_HIGHEST, {"app_set": app_set}).scalar()
            release_name = name or next_release_name(highest)
            content = {**content, "name": release_name}
            digest = content_digest(content)
            release_id = inserted_id(conn.execute(_INSERT_RELEASE, {
                "app_set": app_set, "name": release_name, "lane": lane.value,
                "track": made.track,
                "digest": digest, "content": content, "state": ReleaseState.ACTIVE,
                "created_at": now, "created_by": principal.name, "incident": incident,
                "source_root": root, "base_release_id": base_release_id,
                "guard_override": guard, "number": release_number(release_name)}))
            runs = [{
                "release_id": release_id, "stage_index": index,
                "state": StageState.AWAITING_APPROVAL if index == 0 else StageState.PENDING,
                "request_id": 1 if index == 0 else 0,
                "requested_by": principal.name if index == 0 else None,
                "requested_at": now if index == 0 else None,
                "attempt": 0, "reason": "", "updated_at": now,
            } for index in range(made.stage_count)]
            if runs:  # one executemany (an empty parameter list would insert one bare row)
                conn.execute(_INSERT_RUNS, runs)
            if link is not None:  # rows before the audit entry: every writer locks that order
                link(conn, release_id)
            audit.record(conn, at=now, actor=principal.name, action="release.create",
                         object_type="release", object_id=f"{app_set}/{release_name}",
                         after={"digest": digest, "lane": lane.value,
                                "versions": {a: v["image"] for a, v in
                                             content["versions"].items()},
                                "incident": incident, "forwardPortOverride": guard,
                                **({"cause": dict(cause)} if cause else {})})
    except IntegrityError:
        raise _NameTaken(release_name) from None
    services.notify()
    return CreatedRelease(release=f"{app_set}/{release_name}", name=release_name, digest=digest,
                          application_set=app_set, lane=lane.value,
                          versions=versions_of(content), incident=incident)


def release_name_for(conn: Connection, app_set: str, base: str) -> str:
    existing = {r.name for r in conn.execute(
        select(releases.c.name).where(releases.c.app_set == app_set))}
    number = 1
    while _hotfix_name(base, number) in existing:
        number += 1
    return _hotfix_name(base, number)


def _hotfix_name(base: str, number: int) -> str:
    """`v3-hotfix-1`: a DNS label like every release name (the base shortened to fit)."""
    suffix = f"-hotfix-{number}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix


def list_releases(services: Services, app_set: str | None = None, *, limit: int = 50,
                  before: int | None = None) -> list[ReleaseSummary]:
    valid_id("before", before)
    query = select(releases).order_by(releases.c.id.desc()).limit(limit)
    if app_set:
        query = query.where(releases.c.app_set == app_set)
    if before:
        query = query.where(releases.c.id < before)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    return [ReleaseSummary(id=r.id, release=f"{r.app_set}/{r.name}", application_set=r.app_set,
                           name=r.name, lane=r.lane, state=r.state, digest=r.digest,
                           created_at=(utc(r.created_at) or r.created_at).isoformat(),
                           created_by=r.created_by, incident=r.incident) for r in rows]


@refusals.audited("release.abandon", "release", lambda a: a["ref"])
def abandon_release(services: Services, principal: Principal, ref: ReleaseRef,
                    reason: str) -> Abandoned:
    """Stop a release for good (Cloud Deploy's "abandon"): it stops waiting, leaves every
    queue and can never be promoted again. A deployment already running finishes; nothing
    follows it. Needs the promoter's role and a reason; audited.

    The release's content is not parsed: a release whose snapshot the engine cannot use
    can still be abandoned."""
    if not reason or not reason.strip():
        raise Invalid("abandoning a release needs a reason (--reason)")
    reason = free_text("the reason", reason)
    now = services.now()
    with services.transaction() as conn:
        release = conn.execute(select(releases.c.id, releases.c.state, releases.c.lane)
                               .where((releases.c.app_set == ref.app_set)
                                      & (releases.c.name == ref.name))
                               .with_for_update()).first()
        if release is None:
            raise NotFound(f"release `{ref}` does not exist")
        require(principal, promoters(release.lane), "abandon releases")
        if release.state != ReleaseState.ACTIVE:
            raise Conflict(f"release {ref} is {release.state}; only an active release can be "
                           "abandoned")
        record = {"by": principal.name, "reason": reason.strip(), "at": now.isoformat()}
        conn.execute(update(releases).where(releases.c.id == release.id).values(
            state=ReleaseState.ABANDONED, finished_at=now, abandoned=record))
        audit.record(conn, at=now, actor=principal.name, action="release.abandon",
                     object_type="release", object_id=str(ref),
                     before={"state": release.state}, after={"state": "abandoned", **record})
    services.notify()
    return Abandoned(release=str(ref), state=ReleaseState.ABANDONED,
                     abandoned=AbandonRecord.model_validate(record))
