"""The pre-release job: deploy one application's pull-request build beside the others, run its
integration tests against it, record pass/fail with the output, and restore the environment.
A run canceled while it runs (a newer push, a closed pull request) skips what is left of
deploy and tests, restores the environment all the same, and ends `canceled`.

The engine starts a queued run when its environment is free (see `records.occupancy`) and
resumes a running one after a crash; the run's `previous` (what ran before) is stored before
the PR build deploys, so the restore after a crash still knows where to go back to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from infrastream.domain.errors import BackendError
from infrastream.gates.base import CheckSubject
from infrastream.gates.integration_tests import run_integration_tests
from infrastream.manifests import Application, Environment
from infrastream.manifests.track import IntegrationTestsCheck
from infrastream.store.tables import prerelease_runs, releases
from infrastream.targets.base import AppDeployment, DeployRequest

from ..auditing import trail as audit
from ..context import Services
from ..records import leases
from ..records.secret_values import resolve as resolve_secrets

SYSTEM = "infrastream"


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
        canceled = _cancel_reason(services, run.id)
        if canceled is None:
            result = target.deploy(DeployRequest(
                key=f"pr-{run.id}", release=f"pr/{run.ref}", digest="",
                environment=environment, apps=(build,), workdir=workdir,
                actor=run.created_by))
            canceled = _cancel_reason(services, run.id)
        if canceled is not None:  # superseded or closed: skip the tests, still restore
            state, summary = "canceled", canceled
        else:
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
            canceled = _cancel_reason(services, run.id)
            if canceled is not None:  # superseded while testing: its verdict counts no more
                state, summary = "canceled", f"{canceled} (tests had {state})"
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
        leases.fence(conn)  # the verdict of a run this server still owns, or none
        changed = conn.execute(update(prerelease_runs).where(
            (prerelease_runs.c.id == run.id) & (prerelease_runs.c.state == "running")
        ).values(state=state, summary=summary[:1000], output=output[-65536:],
                 finished_at=now, restored=restored))
        if changed.rowcount:
            audit.record(conn, at=now, actor=SYSTEM, action=f"prerelease.{state}",
                         object_type="prerelease", object_id=str(run.id),
                         after={"app": run.app, "ref": run.ref, "summary": summary[:500],
                                "restored": restored})


def _cancel_reason(services: Services, run_id: int) -> str | None:
    """Why the run was asked to stop (`prerelease.cancel_in`), or None."""
    with services.db.connect() as conn:
        reason: str | None = conn.execute(select(prerelease_runs.c.cancel_reason).where(
            prerelease_runs.c.id == run_id)).scalar_one_or_none()
    return reason


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
