"""The work the engine hands to worker threads: one deployment, one check.

Each job reads what it needs from the database by id, calls a target or a gate, and writes
the outcome back with a compare-and-set (`WHERE state = 'deploying'`), so a job that runs
twice after a crash records its outcome once. Nothing escapes a job: any failure becomes the
deployment's or check's recorded reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.manifests import Application, Environment, Stage
from infrastream.store.tables import check_runs, deployments, releases, stage_runs
from infrastream.targets.base import AppDeployment, AppStatus, DeployRequest

from . import audit
from .context import Services
from .rollback import is_rollback
from .secrets import resolve as resolve_secrets

log = logging.getLogger("infrastream.jobs")
SYSTEM = "infrastream"
RETRIES = 4


def _release_apps(services: Services, release: Any, environment: str) -> list[AppDeployment]:
    apps = []
    manifests = release.content["manifests"]["applications"]
    for name, version in release.content["versions"].items():
        spec = Application.model_validate(manifests[name]).spec
        env = {v.name: v.value for v in spec.env if not v.secret and v.value is not None}
        env.update(resolve_secrets(services, environment, name))
        apps.append(AppDeployment(
            app=name, image=version["image"], version=version["version"], spec=spec, env=env,
            secret_names=frozenset(v.name for v in spec.env if v.secret)))
    return apps


def environment_of(release: Any, name: str) -> Environment:
    return Environment.model_validate(release.content["manifests"]["environments"][name])


def workdir(services: Services, release: Any) -> Path:
    return Path(release.source_root) if release.source_root else services.data_dir


def deploy_request(services: Services, release: Any, dep: Any, actor: str,
                   prune: bool = False) -> DeployRequest:
    return DeployRequest(
        key=dep.key, release=f"{release.app_set}/{release.name}", digest=release.digest,
        environment=environment_of(release, dep.environment),
        apps=tuple(_release_apps(services, release, dep.environment)),
        workdir=workdir(services, release), actor=actor, prune=prune)


def _with_retries(call: Any, what: str) -> Any:
    delay = 0.5
    for attempt in range(1, RETRIES + 1):
        try:
            return call()
        except TransientError as exc:
            if attempt == RETRIES:
                raise PermanentError(f"{what} kept failing: {exc.reason}") from exc
            log.warning("%s: transient failure (attempt %d): %s", what, attempt, exc.reason)
            time.sleep(exc.delay or delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def run_deploy(services: Services, deployment_id: int) -> None:
    with services.db.connect() as conn:
        dep = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).one()
        release = conn.execute(select(releases).where(releases.c.id == dep.release_id)).one()
        actor = conn.execute(select(stage_runs.c.requested_by).where(
            (stage_runs.c.release_id == release.id)
            & (stage_runs.c.stage_index == dep.stage_index))).scalar_one_or_none()
        rollback = is_rollback(conn, dep.id)
    if dep.state != "deploying":
        return
    if rollback is not None:  # a rollback returns the environment to exactly that release
        actor = rollback.requested_by
    state, message, result = "failed", "", None
    try:
        request = deploy_request(services, release, dep, actor or SYSTEM,
                                 prune=rollback is not None)
        target = services.targets.for_environment(request.environment)
        outcome = _with_retries(lambda: target.deploy(request), f"deploy to {dep.environment}")
        result = {"apps": [_app_json(a) for a in outcome.apps]}
        if outcome.healthy:
            state, message = "healthy", outcome.message or "healthy"
        else:
            message = outcome.message or "not healthy"
    except PermanentError as exc:
        message = exc.reason
    except Exception as exc:  # a bug in a target must not leave the deployment hanging
        log.exception("deploy %s crashed", dep.key)
        message = f"unexpected error: {type(exc).__name__}: {exc}"
    now = services.now()
    with services.transaction() as conn:
        changed = conn.execute(update(deployments).where(
            (deployments.c.id == dep.id) & (deployments.c.state == "deploying")
        ).values(state=state, finished_at=now, message=message[:4000], result=result))
        if changed.rowcount:
            audit.record(conn, at=now, actor=SYSTEM, action=f"deployment.{state}",
                         object_type="release", object_id=f"{release.app_set}/{release.name}",
                         after={"environment": dep.environment, "attempt": dep.attempt,
                                "message": message[:500]})


def _app_json(status: AppStatus) -> dict[str, Any]:
    return {"app": status.app, "version": status.version, "image": status.image,
            "health": status.health.value, "endpoint": status.endpoint, "detail": status.detail}


@dataclass(frozen=True)
class PlannedCheck:
    key: str
    environment: str
    app: str
    check_type: str
    skip_reason: str = ""


def check_plan(release: Any, row: Any, stage: Stage) -> list[PlannedCheck]:
    """The check runs a stage needs: integration tests and HTTP checks, per env and app."""
    planned = []
    apps = release.content["manifests"]["applications"]
    for env in stage.environments:
        dry_run = environment_of(release, env).spec.target.type == "noop"
        for check in stage.checks:
            if check.type == "soak":
                continue
            for name in release.content["versions"]:
                spec = Application.model_validate(apps[name]).spec
                if check.type == "integration-tests" and spec.integration_tests is None:
                    continue
                if check.type == "http" and spec.health_check is None and spec.port is None:
                    continue
                key = f"{release.id}/{row.stage_index}/{row.attempt}/{env}/{name}/{check.type}"
                skip = "skipped: the noop target runs nothing to check" if dry_run else ""
                planned.append(PlannedCheck(key, env, name, check.type, skip))
    return planned


def run_check(services: Services, check_run_id: int) -> None:
    from .checks import execute_check

    with services.db.connect() as conn:
        run = conn.execute(select(check_runs).where(check_runs.c.id == check_run_id)).one()
        release = conn.execute(select(releases).where(releases.c.id == run.release_id)).one()
    if run.state != "running":
        return
    try:
        passed, summary, output = execute_check(services, release, run)
    except Exception as exc:
        log.exception("check %s crashed", run.key)
        passed, summary, output = False, f"unexpected error: {type(exc).__name__}: {exc}", ""
    now = services.now()
    state = "passed" if passed else "failed"
    with services.transaction() as conn:
        changed = conn.execute(update(check_runs).where(
            (check_runs.c.id == run.id) & (check_runs.c.state == "running")
        ).values(state=state, finished_at=now, summary=summary[:1000], output=output[-65536:]))
        if changed.rowcount:
            audit.record(conn, at=now, actor=SYSTEM, action=f"check.{state}",
                         object_type="release", object_id=f"{release.app_set}/{release.name}",
                         after={"environment": run.environment, "app": run.app,
                                "check": run.check_type, "summary": summary[:500]})
