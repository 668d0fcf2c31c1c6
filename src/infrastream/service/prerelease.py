"""The pre-release lane: validate one application's pull-request build in the first
environment of `preReleaseStages`, beside the other applications already running there.

`start_prerelease` is the single entry point: the CLI calls it today, and the SCM webhook
will call it for pull-request events. The engine starts queued runs when the environment is
free (one deployment at a time per environment) and resumes running ones after a crash. A run
deploys only that build, runs the application's integration tests against it, records
pass/fail with the test output and, unless the track says `preReleaseRestore: false`, puts
the environment back on the version that ran before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from infrastream.domain.errors import BackendError, Conflict, Invalid, NotFound
from infrastream.domain.release import parse_image
from infrastream.domain.roles import RECORD_VERSION, Principal
from infrastream.gates.base import CheckSubject
from infrastream.gates.integration_tests import run_integration_tests
from infrastream.manifests import Application, Environment, Lane
from infrastream.manifests.track import IntegrationTestsCheck
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import prerelease_runs, releases
from infrastream.targets.base import AppDeployment, DeployRequest

from . import audit
from .context import Services
from .identity import require
from .manifests import current_bundle, source_root
from .secrets import resolve as resolve_secrets

SYSTEM = "infrastream"


def start_prerelease(services: Services, principal: Principal, app: str, image: str,
                     ref: str, commit: str | None = None) -> dict[str, Any]:
    require(principal, RECORD_VERSION, "validate pull-request builds")
    if not ref.strip():
        raise Invalid("a pre-release run needs the pull request or branch it validates (--ref)")
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
    track = bundle.track_of(app_set)
    stages = track.spec.stages(Lane.PRE_RELEASE)
    if not stages:
        raise Conflict(f"track `{track.metadata.name}` has no preReleaseStages")
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
        audit.record(conn, at=now, actor=principal.name, action="prerelease.start",
                     object_type="prerelease", object_id=str(run_id),
                     after={"app": app, "image": image, "ref": ref, "commit": commit,
                            "environment": environment})
    services.notify()
    return prerelease_status(services, int(run_id))


def _view(row: Any) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        value = utc(value)
        return value.isoformat() if value else None

    return {"id": row.id, "application": row.app, "image": row.image, "ref": row.ref,
            "commit": row.commit, "environment": row.environment, "state": row.state,
            "createdAt": iso(row.created_at), "createdBy": row.created_by,
            "startedAt": iso(row.started_at), "finishedAt": iso(row.finished_at),
            "summary": row.summary, "output": row.output, "previous": row.previous,
            "restored": row.restored}


def prerelease_status(services: Services, run_id: int) -> dict[str, Any]:
    with services.db.connect() as conn:
        row = conn.execute(select(prerelease_runs).where(prerelease_runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"pre-release run {run_id} does not exist")
    return _view(row)


def list_prereleases(services: Services, app: str | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
    query = select(prerelease_runs).order_by(prerelease_runs.c.id.desc()).limit(limit)
    if app:
        query = query.where(prerelease_runs.c.app == app)
    with services.db.connect() as conn:
        return [{k: v for k, v in _view(r).items() if k != "output"}
                for r in conn.execute(query)]


def run_prerelease(services: Services, run_id: int) -> None:
    """The job: deploy the build, test it, restore the environment. Never raises."""
    with services.db.connect() as conn:
        run = conn.execute(select(prerelease_runs).where(prerelease_runs.c.id == run_id)).one()
    if run.state != "running":
        return
    snapshot = run.snapshot
    environment = Environment.model_validate(snapshot["environment"])
    spec = Application.model_validate(snapshot["application"]).spec
    workdir = Path(snapshot["sourceRoot"]) if snapshot["sourceRoot"] else services.data_dir
    target = services.targets.for_environment(environment)
    secrets = resolve_secrets(services, run.environment, run.app)
    secret_names = frozenset(v.name for v in spec.env if v.secret)
    previous = run.previous
    if previous is None:
        before = {s.app: s for s in target.status(environment)}.get(run.app)
        previous = {"release": before.release, "image": before.image,
                    "version": before.version, "deployKey": before.deploy_key} \
            if before is not None and before.release else {}
        with services.transaction() as conn:
            conn.execute(update(prerelease_runs).where(prerelease_runs.c.id == run.id)
                         .values(previous=previous))
    build = AppDeployment(app=run.app, image=run.image, version=snapshot["version"], spec=spec,
                          env=secrets, secret_names=secret_names)
    state, summary, output = "failed", "", ""
    try:
        result = target.deploy(DeployRequest(
            key=f"pr-{run.id}", release=f"pr/{run.ref}", digest="", environment=environment,
            apps=(build,), workdir=workdir, actor=run.created_by))
        status = next(a for a in result.apps if a.app == run.app)
        subject = CheckSubject(app=run.app, spec=spec, endpoint=status.endpoint,
                               version=snapshot["version"], release=f"pr/{run.ref}",
                               environment=run.environment, workdir=workdir, env=secrets,
                               secret_names=secret_names)
        check = IntegrationTestsCheck.model_validate(snapshot["check"]) \
            if snapshot["check"] else None
        outcome = run_integration_tests(check, subject)
        state = "passed" if outcome.passed else "failed"
        summary, output = outcome.summary, outcome.output
    except BackendError as exc:
        summary = f"deploy of the PR build failed: {exc.reason}"
    except Exception as exc:  # a bug must not leave the run hanging
        summary = f"unexpected error: {type(exc).__name__}: {exc}"
    restored = False
    if snapshot["restore"] and previous.get("release"):
        restored = _restore(services, target, environment, run, previous, workdir)
        summary += f"; {run.environment} restored to {previous['release']}" if restored \
            else f"; could not restore {previous['release']}"
    now = services.now()
    with services.transaction() as conn:
        changed = conn.execute(update(prerelease_runs).where(
            (prerelease_runs.c.id == run.id) & (prerelease_runs.c.state == "running")
        ).values(state=state, summary=summary[:1000], output=output[-65536:],
                 finished_at=now, restored=restored))
        if changed.rowcount:
            audit.record(conn, at=now, actor=SYSTEM, action=f"prerelease.{state}",
                         object_type="prerelease", object_id=str(run.id),
                         after={"app": run.app, "ref": run.ref, "summary": summary[:500],
                                "restored": restored})


def _restore(services: Services, target: Any, environment: Environment, run: Any,
             previous: dict[str, Any], workdir: Path) -> bool:
    """Redeploy the app as the release that ran before had it."""
    app_set, _, name = str(previous["release"]).partition("/")
    with services.db.connect() as conn:
        release = conn.execute(select(releases).where(
            (releases.c.app_set == app_set) & (releases.c.name == name))).first()
    if release is None or run.app not in release.content["versions"]:
        return False
    version = release.content["versions"][run.app]
    spec = Application.model_validate(
        release.content["manifests"]["applications"][run.app]).spec
    app = AppDeployment(app=run.app, image=version["image"], version=version["version"],
                        spec=spec, env=resolve_secrets(services, run.environment, run.app),
                        secret_names=frozenset(v.name for v in spec.env if v.secret))
    root = Path(release.source_root) if release.source_root else workdir
    try:
        target.deploy(DeployRequest(
            key=previous.get("deployKey") or f"restore-{run.id}", release=previous["release"],
            digest=release.digest, environment=environment, apps=(app,), workdir=root,
            actor=SYSTEM))
    except BackendError:
        return False
    return True
