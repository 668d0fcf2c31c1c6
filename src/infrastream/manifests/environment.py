"""`Environment`: a place releases are deployed to, and the target that deploys there.

Targets are a tagged union on `type`; each target brings its own settings. An environment
that a track names but no manifest declares gets the default (`local`) target.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .fields import ManifestModel, Name
from .metadata import Metadata


class Tier(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class LocalTarget(ManifestModel):
    """Processes on the Infrastream machine: each Application's `run` command."""

    type: Literal["local"]


class NoopTarget(ManifestModel):
    """Records the intent only and reports healthy at once (dry runs, benchmarks)."""

    type: Literal["noop"]


class GitOpsTarget(ManifestModel):
    """Rendered Kubernetes manifests committed to a Git repository synced by Argo CD or Flux."""

    type: Literal["gitops"]
    repo: str = Field(min_length=1)
    """Clone URL or path of the GitOps repository."""
    branch: str = "main"
    path: str | None = None
    """Directory inside the repository; defaults to `envs/<environment>`."""


class KubernetesTarget(ManifestModel):
    """Objects applied directly to a cluster with server-side apply."""

    type: Literal["kubernetes"]
    namespace: Name
    context: str | None = None
    """kubeconfig context; omitted means in-cluster configuration."""


Target = Annotated[
    LocalTarget | NoopTarget | GitOpsTarget | KubernetesTarget, Field(discriminator="type")
]
TARGET_TYPES = ("local", "noop", "gitops", "kubernetes")


class EnvironmentSpec(ManifestModel):
    tier: Tier = Tier.DEVELOPMENT
    target: Target = Field(default_factory=lambda: LocalTarget(type="local"))


class Environment(ManifestModel):
    api_version: Literal["lowops.manifests.v1"]
    kind: Literal["Environment"]
    metadata: Metadata
    spec: EnvironmentSpec = Field(default_factory=EnvironmentSpec)


def default_environment(name: str) -> Environment:
    """The Environment assumed for a name a track uses but nothing declares."""
    return Environment.model_validate(
        {"apiVersion": "lowops.manifests.v1", "kind": "Environment", "metadata": {"name": name}}
    )
