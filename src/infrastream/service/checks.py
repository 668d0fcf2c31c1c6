"""Running one check of a stage: find the application's endpoint, call the right gate."""

from __future__ import annotations

from typing import Any

from infrastream.gates.base import CheckSubject
from infrastream.gates.http_check import http_check
from infrastream.gates.integration_tests import run_integration_tests
from infrastream.manifests import Application
from infrastream.manifests.track import HttpCheck, IntegrationTestsCheck

from .context import Services
from .jobs import environment_of, workdir
from .promotions import release_stages
from .secrets import resolve as resolve_secrets


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
        environment=run.environment, workdir=workdir(services, release),
        env=resolve_secrets(services, run.environment, run.app),
        secret_names=frozenset(v.name for v in spec.env if v.secret))
    if isinstance(check, IntegrationTestsCheck):
        outcome = run_integration_tests(check, subject)
    elif isinstance(check, HttpCheck):
        outcome = http_check(check, subject)
    else:  # pragma: no cover - soak checks are timed by the engine, not run
        return True, "nothing to run", ""
    return outcome.passed, outcome.summary, outcome.output
