"""The deploy target interface: what the engine asks of any backend.

A target deploys the applications of one release into one environment and reports what
runs there. Calls are blocking (the engine runs them in worker threads) and idempotent per
`DeployRequest.key`: deploying a key that is already deployed and healthy returns the
recorded result without touching anything, so a crashed engine can simply call again.
Failures are sorted by the caller's next move: `TransientError` (retry) or
`PermanentError` (fail the deployment with the reason); nothing else may escape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from infrastream.manifests import ApplicationSpec, Environment


@dataclass(frozen=True)
class AppDeployment:
    """One application of a release, as it should run in the environment."""

    app: str
    image: str
    """Full image reference of the version: `repo:tag` or `repo@sha256:…` or both."""
    version: str
    """The version label (tag) shown to people and passed as INFRASTREAM_VERSION."""
    spec: ApplicationSpec
    env: Mapping[str, str] = field(default_factory=dict)
    """Resolved variables, secret values included: never log or persist these values."""
    secret_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DeployRequest:
    key: str
    """Idempotency key: `<release id>/<environment>/<attempt>`."""
    release: str
    """Release reference shown to people, e.g. `shop/v3`."""
    digest: str
    environment: Environment
    apps: tuple[AppDeployment, ...]
    workdir: Path
    """Directory that relative `run`/`integrationTests` paths resolve against."""
    actor: str = "infrastream"
    """Who caused the deployment (for commit messages and annotations)."""
    prune: bool = False
    """Whether apps running in the environment but absent from `apps` are removed."""


class Health(StrEnum):
    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    DEGRADED = "degraded"
    MISSING = "missing"


@dataclass(frozen=True)
class AppStatus:
    app: str
    version: str
    image: str
    health: Health
    endpoint: str | None = None
    """Base URL the application answers on (e.g. http://127.0.0.1:40123), if any."""
    release: str | None = None
    deploy_key: str | None = None
    detail: str = ""
    restarts: int = 0
    """How often the target restarted this application's process since it was deployed."""


@dataclass(frozen=True)
class Restart:
    """A dead process the target's supervisor tried to start again."""

    app: str
    old_pid: int
    status: AppStatus
    succeeded: bool
    restarts: int


@dataclass(frozen=True)
class DeployResult:
    key: str
    apps: tuple[AppStatus, ...]
    message: str = ""

    @property
    def healthy(self) -> bool:
        return all(a.health is Health.HEALTHY for a in self.apps)


class Target(Protocol):
    """A deploy backend for one target type. One instance serves every environment."""

    type_name: str

    def deploy(self, request: DeployRequest) -> DeployResult:
        """Make the environment run `request.apps`; return when healthy or raise."""
        ...

    def status(self, environment: Environment) -> tuple[AppStatus, ...]:
        """What runs in the environment now, per application."""
        ...

    def teardown(self, environment: Environment) -> None:
        """Stop and remove everything this target runs in the environment."""
        ...


@runtime_checkable
class Supervising(Protocol):
    """A target that restarts what died itself (the `local` target)."""

    def supervise(self, environment: Environment,
                  secrets: Callable[[str], Mapping[str, str]]) -> tuple[Restart, ...]:
        """Restart dead processes whose backoff ran out; secrets are read through `secrets`."""
        ...
