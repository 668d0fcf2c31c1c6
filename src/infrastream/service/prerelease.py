"""The pre-release lane: validate one application's pull-request build in the first
environment of `preReleaseStages`, beside the other applications already running there.

`start_prerelease` is the single entry point: the CLI calls it, and so does the SCM gate
for pull-request events (with the event that caused it, and a `link` that records the run
beside the pull request in the same transaction). `cancel_in` stops a run that a newer push
superseded or whose pull request was closed: a queued one at once, a running one at its next
step (it still restores the environment). The engine starts queued runs when the environment is
free (one deployment at a time per environment) and resumes running ones after a crash. A run
deploys only that build, runs the application's integration tests against it, records
pass/fail with the test output and, unless the track says `preReleaseRestore: false`, puts
the environment back on the version that ran before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from infrastream.domain.errors import Invalid, NotFound
from infrastream.domain.inputs import free_text
from infrastream.domain.release import parse_image
from infrastream.domain.roles import RECORD_VERSION, Principal
from infrastream.manifests import Lane
from infrastream.manifests.track import IntegrationTestsCheck
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import prerelease_runs

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.manifests import current_bundle, lane_stages, source_root

SYSTEM = "infrastream"


class PreReleaseRun(ReadModel):
    """One validation of a pull-request build in the first pre-release environment."""

    id: int
    application: str
    image: str
    ref: str
    commit: str | None
    environment: str
    state: str
    """`queued`, `deploying`, `testing`, `restoring`, `passed`, `failed` …"""
    created_at: str | None
    created_by: str
    started_at: str | None
    finished_at: str | None
    summary: str
    output: str | None = None
    """The integration tests' output (left out of lists)."""
    previous: dict[str, Any] | None
    """What the environment ran before (restored afterwards unless the track says not)."""
    restored: bool


@refusals.audited("prerelease.start", "application", lambda a: a["app"])
def start_prerelease(services: Services, principal: Principal, app: str, image: str,
                     ref: str, commit: str | None = None, *,
                     cause: Mapping[str, Any] | None = None,
                     link: Callable[[Connection, int], None] | None = None) -> PreReleaseRun:
    """Queue a run. `cause` (what event asked for it) goes into the audit entry; `link` is
    called with the new run's id inside the transaction that records it."""
    require(principal, RECORD_VERSION, "validate pull-request builds")
    if not ref.strip():
        raise Invalid("a pre-release run needs the pull request or branch it validates (--ref)")
    ref = free_text("the ref", ref, 200)
    bundle = current_bundle(services)
    if app not in bundle.applications:
        raise NotFound(f"application `{app}` does not exist")
    application = bundle.applications[app]
    try:
        label = parse_image(image)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if label.repository != application.spec.image:
        raise Invalid(f"image `{image}` is not from `{application.spec.image}`")
    app_set = application.metadata.parent.name if application.metadata.parent else ""
    track, stages = lane_stages(bundle, app_set, Lane.PRE_RELEASE)
    stage = stages[0]
    environment = stage.environments[0]
    check = next((c for c in stage.checks if isinstance(c, IntegrationTestsCheck)), None)
    snapshot = {
        "application": application.model_dump(mode="json", by_alias=True),
        "environment": bundle.environment(environment).model_dump(mode="json", by_alias=True),
        "check": check.model_dump(mode="json", by_alias=True) if check else None,
        "restore": track.spec.pre_release_restore,
        "version": label.label,
        "sourceRoot": source_root(services, "Application", app),
        "track": track.metadata.name,
    }
    now = services.now()
    with services.transaction() as conn:
        run_id = inserted_id(conn.execute(insert(prerelease_runs).values(
            app=app, image=image, ref=ref.strip(), commit=commit, environment=environment,
            state="queued", created_at=now, created_by=principal.name, summary="", output="",
            restored=False, snapshot=snapshot,
        )))
        if link is not None:  # rows before the audit entry: every writer locks that order
            link(conn, run_id)
        audit.record(conn, at=now, actor=principal.name, action="prerelease.start",
                     object_type="prerelease", object_id=str(run_id),
                     after={"app": app, "image": image, "ref": ref, "commit": commit,
                            "environment": environment,
                            **({"cause": dict(cause)} if cause else {})})
    services.notify()
    return prerelease_status(services, int(run_id))


def cancel_in(conn: Connection, run_id: int, reason: str, *, at: datetime, actor: str,
              cause: Mapping[str, Any] | None = None) -> str | None:
    """Cancel run `run_id` in the caller's transaction: a queued run ends `canceled` now, a
    running one is asked to stop (its job restores the environment, then ends `canceled`).
    Returns the run's state before, or None when it had finished already."""
    row = conn.execute(select(prerelease_runs.c.state, prerelease_runs.c.app,
                              prerelease_runs.c.ref)
                       .where(prerelease_runs.c.id == run_id)).first()
    if row is None or row.state not in ("queued", "running"):
        return None
    values: dict[str, Any] = {"cancel_reason": reason[:1000]}
    if row.state == "queued":
        values.update(state="canceled", summary=reason[:1000], finished_at=at)
    changed = conn.execute(update(prerelease_runs).where(
        (prerelease_runs.c.id == run_id) & (prerelease_runs.c.state == row.state))
        .values(**values)).rowcount
    if not changed:
        return None
    audit.record(conn, at=at, actor=actor, action="prerelease.cancel",
                 object_type="prerelease", object_id=str(run_id),
                 before={"state": row.state},
                 after={"app": row.app, "ref": row.ref, "reason": reason,
                        **({"cause": dict(cause)} if cause else {})})
    return str(row.state)


def _view(row: Any, *, output: bool = True) -> PreReleaseRun:
    def iso(value: Any) -> str | None:
        value = utc(value)
        return value.isoformat() if value else None

    return PreReleaseRun(id=row.id, application=row.app, image=row.image, ref=row.ref,
                         commit=row.commit, environment=row.environment, state=row.state,
                         created_at=iso(row.created_at), created_by=row.created_by,
                         started_at=iso(row.started_at), finished_at=iso(row.finished_at),
                         summary=row.summary, output=row.output if output else None,
                         previous=row.previous, restored=row.restored)


def prerelease_status(services: Services, run_id: int) -> PreReleaseRun:
    with services.db.connect() as conn:
        row = conn.execute(select(prerelease_runs).where(prerelease_runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"pre-release run {run_id} does not exist")
    return _view(row)


def list_prereleases(services: Services, app: str | None = None,
                     limit: int = 50) -> list[PreReleaseRun]:
    query = select(prerelease_runs).order_by(prerelease_runs.c.id.desc()).limit(limit)
    if app:
        query = query.where(prerelease_runs.c.app == app)
    with services.db.connect() as conn:
        return [_view(r, output=False) for r in conn.execute(query)]
