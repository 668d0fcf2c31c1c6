"""The deployment job: what the engine hands a worker thread to deploy one environment.

A deployment to a synchronous target (the noop target: it answers at once) needs no job:
the engine deploys it inside the transaction that records it (`deploy_now`), and records it
with its outcome.

Each job reads what it needs from the database by id (a deployment: one query, plus the
release's content the first time, see `release_content`), calls a target or a gate, and
writes the outcome back with a compare-and-set (`WHERE state = 'deploying'`), so a job that
runs twice after a crash records its outcome once. Nothing escapes a job: any failure
becomes the deployment's or check's recorded reason, except the loss of its lease
(`records.leases`): a server that lost the job to another one stops (before the target, between
retries) and never records its outcome (the recording transaction is fenced by the lease).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.manifests import Environment
from infrastream.store.tables import deployments, releases, rollbacks, stage_runs
from infrastream.targets.base import AppDeployment, AppStatus, DeployRequest, DeployResult, Target

from .. import logs, telemetry
from ..auditing import trail as audit
from ..context import Services
from ..records import leases, release_content
from ..records.release_content import ReleaseContent, release_workdir
from ..records.secret_values import resolve_declared

log = logging.getLogger("infrastream.jobs")
_steps = logs.get("infrastream.engine")
SYSTEM = "infrastream"
RETRIES = 4
RETRY_DELAY = 0.5
"""Seconds before the first retry; doubled each time (tests may lower it)."""

_DEPLOYMENT = (
    select(deployments.c.id, deployments.c.key, deployments.c.release_id,
           deployments.c.stage_index, deployments.c.environment, deployments.c.attempt,
           deployments.c.state, releases.c.app_set, releases.c.name, releases.c.digest,
           releases.c.source_root, stage_runs.c.requested_by,
           rollbacks.c.id.label("rollback_id"),
           rollbacks.c.requested_by.label("rollback_requested_by"))
    .join(releases, releases.c.id == deployments.c.release_id)
    .outerjoin(stage_runs, (stage_runs.c.release_id == deployments.c.release_id)
               & (stage_runs.c.stage_index == deployments.c.stage_index))
    .outerjoin(rollbacks, rollbacks.c.deployment_id == deployments.c.id)
    .where(deployments.c.id == bindparam("id")))
"""A deployment with what its job needs of its release, its stage run and its rollback."""

_FINISH_DEPLOYMENT = (
    update(deployments)
    .where((deployments.c.id == bindparam("deployment_id"))
           & (deployments.c.state == "deploying"))
    .values(state=bindparam("outcome"), finished_at=bindparam("finished"),
            message=bindparam("why"), result=bindparam("statuses")))


def _release_apps(services: Services, conn: Connection, content: ReleaseContent,
                  environment: str) -> list[AppDeployment]:
    secret_names = content.secret_names
    secrets = resolve_declared(services, conn, environment, secret_names)
    apps = []
    for name, version in content.versions.items():
        spec = content.application(name).spec
        env = {v.name: v.value for v in spec.env if not v.secret and v.value is not None}
        env.update(secrets[name])
        apps.append(AppDeployment(
            app=name, image=version["image"], version=version["version"], spec=spec, env=env,
            secret_names=secret_names[name]))
    return apps


def deploy_request(services: Services, release: Any, dep: Any, actor: str,
                   prune: bool = False) -> DeployRequest:
    """What the target is asked to do for one deployment of a release (`releases` and
    `deployments` rows)."""
    with services.db.connect() as conn:
        return _request(services, conn, dep, release, release_content.of_row(release), actor,
                        prune)


def _request(services: Services, conn: Connection, dep: Any, release: Any,
             content: ReleaseContent, actor: str, prune: bool) -> DeployRequest:
    return DeployRequest(
        key=dep.key, release=f"{release.app_set}/{release.name}", digest=release.digest,
        environment=content.environment(dep.environment),
        apps=tuple(_release_apps(services, conn, content, dep.environment)),
        workdir=release_workdir(services, release), actor=actor, prune=prune)


def _with_retries(call: Any, what: str,
                  on_retry: Callable[[int, str], None] | None = None) -> Any:
    """Call, retrying TransientError with exponential backoff; each retry is reported."""
    delay = RETRY_DELAY
    for attempt in range(1, RETRIES + 1):
        leases.check()  # a job this server lost goes no further
        try:
            return call()
        except TransientError as exc:
            if attempt == RETRIES:
                raise PermanentError(f"{what} kept failing after {RETRIES - 1} retries: "
                                     f"{exc.reason}") from exc
            log.warning("%s: transient failure (attempt %d): %s", what, attempt, exc.reason)
            if on_retry is not None:
                on_retry(attempt, exc.reason)
            time.sleep(exc.delay if exc.delay is not None else delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def _note_retry(services: Services, dep: Any, retry: int, reason: str) -> None:
    """Make a retry visible: on the deployment (release status) and in the audit trail."""
    now = services.now()
    note = f"retry {retry}/{RETRIES - 1} after a transient failure: {reason}"
    with services.transaction() as conn:
        leases.fence(conn)
        conn.execute(update(deployments).where(
            (deployments.c.id == dep.id) & (deployments.c.state == "deploying")
        ).values(message=note[:4000]))
        audit.record(conn, at=now, actor=SYSTEM, action="deployment.retry",
                     object_type="release", object_id=f"{dep.app_set}/{dep.name}",
                     after={"environment": dep.environment, "attempt": dep.attempt,
                            "retry": retry, "reason": reason[:500]})


def run_deploy(services: Services, deployment_id: int) -> None:
    with services.db.connect() as conn:
        dep = conn.execute(_DEPLOYMENT, {"id": deployment_id}).one()
        if dep.state != "deploying":
            return
        rollback = dep.rollback_id is not None  # back to exactly that release: prune the rest
        actor = (dep.rollback_requested_by if rollback else dep.requested_by) or SYSTEM
        try:
            content = release_content.load(conn, dep.release_id, dep.digest)
            request: DeployRequest | None = _request(services, conn, dep, dep, content, actor,
                                                     prune=rollback)
            problem = ""
        except PermanentError as exc:
            request, problem = None, exc.reason
        except Exception as exc:  # a bug must not leave the deployment hanging
            log.exception("deploy %s crashed", dep.key)
            request, problem = None, f"unexpected error: {type(exc).__name__}: {exc}"
    state, message, result = "failed", problem, None
    began = time.monotonic()
    if request is not None:
        state, message, result = _deploy(services, request, dep)
        telemetry.DEPLOYMENT_SECONDS.labels(dep.environment).observe(time.monotonic() - began)
    telemetry.DEPLOYMENTS.labels(dep.environment, state).inc()
    _steps.info("engine.step", step="deployment.finished", release_id=dep.release_id,
                stage=dep.stage_index, environment=dep.environment, attempt=dep.attempt,
                deployment_id=dep.id, outcome=state)
    now = services.now()
    with services.transaction() as conn:
        leases.fence(conn)  # the outcome of a job this server still owns, or none
        changed = conn.execute(_FINISH_DEPLOYMENT, {
            "deployment_id": dep.id, "outcome": state, "finished": now,
            "why": message[:4000], "statuses": result})
        if changed.rowcount:
            audit.record(conn, at=now, actor=SYSTEM, action=f"deployment.{state}",
                         object_type="release", object_id=f"{dep.app_set}/{dep.name}",
                         after={"environment": dep.environment, "attempt": dep.attempt,
                                "message": message[:500]})


def _deploy(services: Services, request: DeployRequest,
            dep: Any) -> tuple[str, str, dict[str, Any] | None]:
    """(state, message, result) of asking the target; never raises."""
    try:
        target = services.targets.for_environment(request.environment)
        retries: list[int] = []

        def retried(number: int, reason: str) -> None:
            retries.append(number)
            telemetry.DEPLOYMENT_RETRIES.labels(dep.environment).inc()
            _note_retry(services, dep, number, reason)

        outcome = _with_retries(lambda: target.deploy(request), f"deploy to {dep.environment}",
                                retried)
    except PermanentError as exc:
        return "failed", exc.reason, None
    except leases.LeaseLost:
        raise  # another server runs it now: this one records nothing
    except Exception as exc:  # a bug in a target must not leave the deployment hanging
        log.exception("deploy %s crashed", dep.key)
        return "failed", f"unexpected error: {type(exc).__name__}: {exc}", None
    return _outcome(outcome, f" (after {len(retries)} retries)" if retries else "")


def _outcome(outcome: DeployResult, after: str = "") -> tuple[str, str, dict[str, Any]]:
    result = {"apps": [_app_json(a) for a in outcome.apps]}
    if outcome.healthy:
        return "healthy", (outcome.message or "healthy") + after, result
    return "failed", outcome.message or "not healthy", result


def synchronous_target(services: Services, environment: Environment) -> Target | None:
    """The environment's target when it finishes a deployment at once (a target with
    `synchronous = True`: the noop target), else None (the deployment is a job)."""
    try:
        target = services.targets.for_environment(environment)
    except Exception:  # the job reports it, as it always has
        return None
    return target if getattr(target, "synchronous", False) else None


@dataclass(frozen=True)
class DeployedNow:
    """What a synchronous target answered for a deployment about to be recorded."""

    state: str
    message: str
    result: dict[str, Any]
    seconds: float


def deploy_now(services: Services, conn: Connection, dep: Any, release: Any,
               content: ReleaseContent, actor: str) -> DeployedNow | None:
    """Deploy `dep` (a deployment the caller's transaction is about to record, see
    `engine.steps`) right here when its environment's target is synchronous: no job, no lease
    and no transaction of its own; the caller records the deployment with the outcome, then
    `recorded_now`. None when the target is not synchronous or the attempt raised: then the
    deployment is recorded `deploying` and its job does it all, with its retries and its
    failure reports, exactly as before."""
    target = synchronous_target(services, content.environment(dep.environment))
    if target is None:
        return None
    began = time.monotonic()
    try:
        request = _request(services, conn, dep, release, content, actor, prune=False)
        state, message, result = _outcome(target.deploy(request))
    except Exception:  # transient or not: the job's retries and reports take over
        log.debug("synchronous deploy %s left to its job", dep.key, exc_info=True)
        return None
    return DeployedNow(state, message[:4000], result, time.monotonic() - began)


def recorded_now(dep: Any, release: Any, outcome: DeployedNow,
                 now: datetime) -> audit.NewEntry:
    """A deployment done by `deploy_now` and recorded with its outcome: observed as the job
    observes one (telemetry, the step log); the audit entry, for the caller to record with
    its others."""
    telemetry.DEPLOYMENT_SECONDS.labels(dep.environment).observe(outcome.seconds)
    telemetry.DEPLOYMENTS.labels(dep.environment, outcome.state).inc()
    _steps.info("engine.step", step="deployment.finished", release_id=release.id,
                stage=dep.stage_index, environment=dep.environment, attempt=dep.attempt,
                deployment_id=dep.id, outcome=outcome.state)
    return audit.NewEntry(now, SYSTEM, f"deployment.{outcome.state}", "release",
                          f"{release.app_set}/{release.name}",
                          after={"environment": dep.environment, "attempt": dep.attempt,
                                 "message": outcome.message[:500]})


def _app_json(status: AppStatus) -> dict[str, Any]:
    return {"app": status.app, "version": status.version, "image": status.image,
            "health": status.health.value, "endpoint": status.endpoint, "detail": status.detail}
