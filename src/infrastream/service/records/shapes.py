"""The shapes of the facts stored with releases as JSON, typed for the read models.

A release row keeps some facts as JSON documents (the versions it froze, the overrides that
let it through, why it was abandoned, where deployments put each application). Use cases
write them, views print them; these types are the one description of each, so the OpenAPI
states them and a face can rely on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict

from ..readmodel import ReadModel


class Stored(ReadModel):
    """A fact read back from JSON the database holds: a field an older server wrote and this
    one no longer knows is ignored rather than failing every read of the release."""

    model_config = ConfigDict(extra="ignore")


class FrozenVersion(Stored):
    """One application's build, frozen into a release."""

    image: str
    version: str
    commit: str | None = None
    id: int | None = None
    """The recorded version's id."""


class Override(Stored):
    """Who let a release through a guard, when and why."""

    by: str
    reason: str
    at: str


class FreezeOverride(Override):
    windows: list[str]
    """The freeze windows overridden."""


class GuardOverride(Override):
    problems: list[str]
    """The hotfixes the release rolls back."""


class AbandonRecord(Override):
    pass


class DeployedApp(Stored):
    """What a deployment reported about one application."""

    app: str
    version: str
    image: str
    health: str
    endpoint: str | None = None
    detail: str = ""


class Fixed(Stored):
    """A hotfixed application the forward-port guard protects."""

    app: str
    image: str
    version_id: int
    release: str
    incident: str


class HotfixInfo(Stored):
    base: str
    base_digest: str
    incident: str
    replaced: list[str]
    fixes: list[Fixed]


def versions_of(content: Mapping[str, Any]) -> dict[str, FrozenVersion]:
    return {app: FrozenVersion.model_validate(v) for app, v in content["versions"].items()}


def deployed_apps(result: dict[str, Any] | None) -> list[DeployedApp]:
    return [DeployedApp.model_validate(a) for a in (result or {}).get("apps", [])]
