"""The check job: running one check run of a stage (see `records.check_plan`) in a worker
thread: it finds the application's endpoint, calls the right gate and records the outcome with
a compare-and-set, so a check that runs twice after a crash records its outcome once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select, update

from infrastream.gates.base import CheckSubject
from infrastream.gates.http_check import http_check
from infrastream.gates.integration_tests import run_integration_tests
from infrastream.manifests import Application
from infrastream.manifests.track import HttpCheck, IntegrationTestsCheck
from infrastream.store.tables import check_runs, releases

from .. import logs, telemetry
from ..auditing import trail as audit
from ..context import Services
from ..records import leases
from ..records.release_content import environment_of, release_workdir
from ..records.releases import release_stages
from ..records.secret_values import resolve as resolve_secrets

log = logging.getLogger("infrastream.jobs")
_steps = logs.get("infrastream.engine")
SYSTEM = "infrastream"


def execute_check(services: Services, release: Any, run: Any) -> tuple[bool, str, str]:
    """(passed, one-line summary, output) of one check run."""
    stage = release_stages(release)[run.stage_index]
    check = next(c for c in stage.checks if c.type == run.check_type)
    environment = environment_of(release, run.environment)
    target = services.targets.for_environment(environment)
    statuses = {s.app: s for s in target.status(environment)}
    status = statuses.get(run.app)
    version = release.content["versions"][run.app]
    spec = Application.model_validate(release.content["manifests"]["applications"][run.app]).spec
    subject = CheckSubject(
        app=run.app, spec=spec, endpoint=status.endpoint if status else None,
        version=version["version"], release=f"{release.app_set}/{release.name}",
        environment=run.environment, workdir=release_workdir(services, release),
        env=resolve_secrets(services, run.environment, run.app),
        secret_names=frozenset(v.name for v in spec.env if v.secret))
    if isinstance(check, IntegrationTestsCheck):
        outcome = run_integration_tests(check, subject)
    elif isinstance(check, HttpCheck):
        outcome = http_check(check, subject)
    else:  # pragma: no cover - soak checks are timed by the engine, not run
        return True, "nothing to run", ""
    return outcome.passed, outcome.summary, outcome.output


def run_check(services: Services, check_run_id: int) -> None:
    with services.db.connect() as conn:
        run = conn.execute(select(check_runs).where(check_runs.c.id == check_run_id)).one()
        release = conn.execute(select(releases).where(releases.c.id == run.release_id)).one()
    if run.state != "running":
        return
    began = time.monotonic()
    try:
        passed, summary, output = execute_check(services, release, run)
    except Exception as exc:
        log.exception("check %s crashed", run.key)
        passed, summary, output = False, f"unexpected error: {type(exc).__name__}: {exc}", ""
    now = services.now()
    state = "passed" if passed else "failed"
    telemetry.CHECKS.labels(run.check_type, state).inc()
    _steps.info("engine.step", step="check.finished", release_id=run.release_id,
                environment=run.environment, check=run.check_type, check_run_id=run.id,
                outcome=state)
    telemetry.CHECK_SECONDS.labels(run.check_type).observe(time.monotonic() - began)
    with services.transaction() as conn:
        leases.fence(conn)  # the verdict of a check this server still owns, or none
        changed = conn.execute(update(check_runs).where(
            (check_runs.c.id == run.id) & (check_runs.c.state == "running")
        ).values(state=state, finished_at=now, summary=summary[:1000], output=output[-65536:]))
        if changed.rowcount:
            audit.record(conn, at=now, actor=SYSTEM, action=f"check.{state}",
                         object_type="release", object_id=f"{release.app_set}/{release.name}",
                         after={"environment": run.environment, "app": run.app,
                                "check": run.check_type, "summary": summary[:500]})
