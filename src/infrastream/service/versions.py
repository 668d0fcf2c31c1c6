"""Application versions: what CI records after a merge, immutable once recorded.

A build of a pull request is recorded on the `pull-request` channel (with its number): it can
be validated in the pre-release lane but never becomes the "latest" version a release picks
up. Recording a version wakes the engine when the SCM gate has open work, which may be
waiting for that build (`records.gate_work`); else nothing waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import CompoundSelect, Connection, bindparam, insert, select, union_all
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.release import parse_image
from infrastream.domain.roles import RECORD_VERSION, Principal
from infrastream.store.clock import utc
from infrastream.store.tables import app_versions

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.gate_work import OPEN_WORK
from .records.manifests import REVISION, current_bundle
from .records.shapes import FrozenVersion


class VersionView(ReadModel):
    """One recorded build of an application."""

    id: int
    application: str
    image: str
    version: str
    commit: str | None
    recorded_at: str
    recorded_by: str
    channel: str
    """`main` (CI's builds), `hotfix` (a hotfix's) or `pull-request` (a PR's build): only
    `main` builds become the "latest"."""
    pull_request: int | None = None

    def frozen(self) -> FrozenVersion:
        """What a release keeps of it."""
        return FrozenVersion(image=self.image, version=self.version, commit=self.commit,
                             id=self.id)


def _view(row: Any) -> VersionView:
    return VersionView(id=row.id, application=row.app, image=row.image, version=row.label,
                       commit=row.commit, recorded_at=(utc(row.recorded_at)
                                                       or row.recorded_at).isoformat(),
                       recorded_by=row.recorded_by, channel=row.channel,
                       pull_request=row.pull_request)


_INSERT = insert(app_versions).returning(*app_versions.c)
_REVISION_AND_GATE = select(REVISION, OPEN_WORK)


@refusals.audited("version.record", "application", lambda a: a["app"])
def record_version(services: Services, principal: Principal, app: str, image: str,
                   commit: str | None = None, *, pull_request: int | None = None,
                   cause: Mapping[str, Any] | None = None) -> VersionView:
    """Record a build; with `pull_request` a PR build (needs its `commit`). `cause` (the
    event that made the SCM gate record it) goes into the audit entry."""
    require(principal, RECORD_VERSION, "record application versions")
    if pull_request is not None and (pull_request < 1 or commit is None):
        raise Invalid("a pull-request build needs the pull request's number (1 or more) and "
                      "the commit it was built from (--commit)")
    try:
        with services.transaction() as conn:  # the manifests read in it: one transaction
            row, gate_waits = _record(services, conn, principal, app, image, commit,
                                      pull_request, cause)
    except IntegrityError:
        raise Conflict(f"version `{image}` of `{app}` is already recorded; versions are "
                       "immutable") from None
    if gate_waits:
        services.notify()
    return _view(row)


def _record(services: Services, conn: Connection, principal: Principal, app: str, image: str,
            commit: str | None, pull_request: int | None,
            cause: Mapping[str, Any] | None) -> tuple[Any, bool]:
    """The row recorded, and whether the SCM gate has open work (asked with the manifests'
    revision, in one statement)."""
    revision, gate_waits = conn.execute(_REVISION_AND_GATE).one()
    bundle = current_bundle(services, conn, revision=revision)
    if app not in bundle.applications:
        raise NotFound(f"application `{app}` does not exist (apply its manifest first)")
    try:
        ref = parse_image(image)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    expected = bundle.applications[app].spec.image
    if ref.repository != expected:
        raise Invalid(f"image `{image}` is not from `{expected}`, the image of `{app}`")
    if commit is not None and not (4 <= len(commit) <= 64 and commit.isalnum()):
        raise Invalid(f"`{commit}` is not a commit id")
    channel = "pull-request" if pull_request is not None else "main"
    now = services.now()
    row = conn.execute(_INSERT, {
        "app": app, "image": image, "label": ref.label, "commit": commit, "recorded_at": now,
        "recorded_by": principal.name, "channel": channel, "pull_request": pull_request,
    }).one()
    after: dict[str, Any] = {"image": image, "commit": commit}
    if pull_request is not None:
        after.update(channel=channel, pullRequest=pull_request)
    if cause:
        after["cause"] = dict(cause)
    audit.record(conn, at=now, actor=principal.name, action="version.record",
                 object_type="application", object_id=app, after=after)
    return row, bool(gate_waits)


def list_versions(services: Services, app: str, limit: int = 50) -> list[VersionView]:
    with services.db.connect() as conn:
        rows = conn.execute(select(app_versions).where(app_versions.c.app == app)
                            .order_by(app_versions.c.id.desc()).limit(limit)).all()
    if not rows and app not in current_bundle(services).applications:
        raise NotFound(f"application `{app}` does not exist")
    return [_view(r) for r in rows]


_LATEST: dict[int, CompoundSelect[Any]] = {}


def _latest_statement(count: int) -> CompoundSelect[Any]:
    """Per app, its newest mainline row by the (app, id) index, glued with UNION ALL (built
    once per number of apps)."""
    found = _LATEST.get(count)
    if found is None:
        found = _LATEST[count] = union_all(*(
            select(app_versions)
            .where((app_versions.c.app == bindparam(f"app_{i}"))
                   & (app_versions.c.channel == "main"))
            .order_by(app_versions.c.id.desc()).limit(1).subquery().select()
            for i in range(count)))
    return found


def latest_versions(services: Services, apps: list[str],
                    conn: Connection | None = None) -> dict[str, VersionView]:
    """The newest mainline version of each app (hotfix builds never become "latest"), in
    one statement (on `conn` when given)."""
    if not apps:
        return {}
    if conn is None:
        with services.db.connect() as own:
            return latest_versions(services, apps, own)
    rows = conn.execute(_latest_statement(len(apps)),
                        {f"app_{i}": app for i, app in enumerate(apps)}).all()
    found = {row.app: _view(row) for row in rows}
    return {app: found[app] for app in apps if app in found}
