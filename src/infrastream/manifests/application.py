"""`Application` (what runs) and `ApplicationSet` (what ships together).

An Application is owned by its development team: the image it is built into, how to run and
health-check it, the variables it needs and how to test it. The version (tag or digest) is
not part of the manifest: it comes from the release that carries the Application.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from .fields import Duration, ManifestModel
from .metadata import Metadata


class HealthCheck(ManifestModel):
    path: str = "/healthz"
    """HTTP path that answers 2xx when the application is healthy."""
    port: StrictInt | None = Field(None, ge=1, le=65535)
    """Port to call, when it is not the application's `port`."""
    timeout: Duration = "60s"
    """How long a fresh deployment may take to become healthy."""


class EnvVar(ManifestModel):
    """An environment variable. A `secret` one has no value here: each environment supplies
    it, and Infrastream never prints, logs or renders it."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", min_length=1)
    value: str | None = None
    secret: StrictBool = False

    @model_validator(mode="after")
    def _no_secret_value(self) -> EnvVar:
        if self.secret and self.value is not None:
            raise PydanticCustomError(
                "secret-with-value",
                "secret variable `{name}` carries its value in the manifest",
                {"name": self.name})
        return self


class CommandSpec(ManifestModel):
    command: list[str] = Field(min_length=1)
    """Program and arguments (no shell)."""
    working_dir: str | None = None
    """Directory to run in, relative to the manifest repository."""
    timeout: Duration | None = None


def _env_rules(variables: list[EnvVar]) -> list[EnvVar]:
    seen: set[str] = set()
    for variable in variables:
        if variable.name in seen:
            raise PydanticCustomError("duplicate-env-var",
                                      "environment variable `{name}` is declared twice",
                                      {"name": variable.name})
        seen.add(variable.name)
    return variables


class ApplicationSpec(ManifestModel):
    image: str = Field(min_length=1)
    """Container image repository, without tag: the release supplies the version."""
    port: StrictInt | None = Field(None, ge=1, le=65535)
    """Port the application listens on (the local target assigns a free one instead)."""
    replicas: StrictInt = Field(1, ge=0, le=1000)
    health_check: HealthCheck | None = None
    env: Annotated[list[EnvVar], AfterValidator(_env_rules)] = Field(default_factory=list)
    integration_tests: CommandSpec | None = None
    """Command that tests the running application; run by the `integration-tests` check."""
    run: CommandSpec | None = None
    """Command that starts the application; used by the `local` target."""


class Application(ManifestModel):
    """A single deployable service."""

    api_version: Literal["lowops.manifests.v1"]
    kind: Literal["Application"]
    metadata: Metadata
    spec: ApplicationSpec


class ApplicationSetSpec(ManifestModel):
    description: str = ""


class ApplicationSet(ManifestModel):
    """Applications released together as one product."""

    api_version: Literal["lowops.manifests.v1"]
    kind: Literal["ApplicationSet"]
    metadata: Metadata
    spec: ApplicationSetSpec = Field(default_factory=ApplicationSetSpec)
