"""The check runs a stage needs: integration tests and HTTP checks, per environment and app.

Soak is not a check run: the engine times it from the stage's deployment. Each planned run
has a key (`release/stage/attempt/environment/app/type`) that makes it idempotent: the engine
inserts the missing ones, a crash never runs one twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from infrastream.manifests import Stage

from .release_content import ReleaseContent


@dataclass(frozen=True)
class PlannedCheck:
    key: str
    environment: str
    app: str
    check_type: str
    skip_reason: str = ""


def check_plan(release_id: int, content: ReleaseContent, stage_index: int, attempt: int,
               stage: Stage) -> list[PlannedCheck]:
    """The check runs a stage needs: integration tests and HTTP checks, per env and app."""
    planned = []
    for env in stage.environments:
        dry_run = content.environment(env).spec.target.type == "noop"
        for check in stage.checks:
            if check.type == "soak":
                continue
            for name in content.versions:
                spec = content.application(name).spec
                if check.type == "integration-tests" and spec.integration_tests is None:
                    continue
                if check.type == "http" and spec.health_check is None and spec.port is None:
                    continue
                key = f"{release_id}/{stage_index}/{attempt}/{env}/{name}/{check.type}"
                skip = "skipped: the noop target runs nothing to check" if dry_run else ""
                planned.append(PlannedCheck(key, env, name, check.type, skip))
    return planned
