"""`Environment`: a place releases are deployed to, and the target that deploys there.

Targets are a tagged union on `type`; each target brings its own settings. An environment
that a track names but no manifest declares gets the default (`local`) target.

Cluster-backed targets (`gitops`, `kubernetes`) also say how Infrastream reaches the apps
(`endpoints`, for `http` checks and integration tests), and a `gitops` target how its agent
is observed (`argocd` or `flux`: a deployment is healthy once the agent reports the pushed
commit synced and healthy) and how secret values reach the cluster (`secrets`), since they
never go to Git. `secret_route` answers, for any environment, whether values set with
`secret set` arrive, so every face refuses the same environments with the same hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from .application import ApplicationSpec, WorkloadOverride
from .fields import Duration, ManifestModel, Name
from .metadata import Metadata


class Tier(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("app", "environment", "namespace")


def _template(text: str) -> str:
    unknown = [p for p in _PLACEHOLDER.findall(text) if p not in PLACEHOLDERS]
    if unknown:
        raise PydanticCustomError(
            "invalid-value", "unknown placeholder `{name}` in a template (placeholders: "
            "app, environment, namespace)", {"name": unknown[0]})
    return text


Template = Annotated[str, AfterValidator(_template), Field(min_length=1)]
"""Text with `{app}`, `{environment}` and (kubernetes) `{namespace}` placeholders."""


def fill(template: str, **values: str) -> str:
    """`template` with its placeholders replaced (unknown ones were refused on load)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


class Endpoints(ManifestModel):
    """How Infrastream reaches the applications of the environment (for `http` checks,
    integration tests' `APP_URL` and the portal)."""

    url_template: Template | None = None
    """Base URL of every application, e.g. `https://{app}.staging.example.com`."""
    apps: dict[str, str] = Field(default_factory=dict)
    """Base URL per application name, replacing the template for that application."""

    def url(self, app: str, *, environment: str, namespace: str = "") -> str | None:
        if app in self.apps:
            return self.apps[app]
        if self.url_template is None:
            return None
        return fill(self.url_template, app=app, environment=environment, namespace=namespace)


class LocalTarget(ManifestModel):
    """Processes on the Infrastream machine: each Application's `run` command."""

    type: Literal["local"]


class NoopTarget(ManifestModel):
    """Records the intent only and reports healthy at once (dry runs, benchmarks)."""

    type: Literal["noop"]


class ArgoCd(ManifestModel):
    """Argo CD, observed through the Kubernetes API of the cluster it runs in: its
    Application's `status.sync` (revision, status) and `status.health`."""

    application: str = Field(min_length=1)
    """Name of the Argo CD Application that syncs this environment's path."""
    namespace: Name = "argocd"
    """Namespace of the Application object (where Argo CD runs)."""
    context: str | None = None
    """kubeconfig context of that cluster; omitted means in-cluster configuration."""
    timeout: Duration = "10m"
    """How long a deployment waits for the pushed commit to be synced and healthy."""


class Flux(ManifestModel):
    """Flux, observed through the Kubernetes API of the cluster it runs in: its
    Kustomization's `status.lastAppliedRevision` and `Ready` condition."""

    kustomization: str = Field(min_length=1)
    """Name of the Flux Kustomization that applies this environment's path."""
    namespace: Name = "flux-system"
    context: str | None = None
    """kubeconfig context of that cluster; omitted means in-cluster configuration."""
    timeout: Duration = "10m"


class SecretStoreRef(ManifestModel):
    name: str = Field(min_length=1)
    kind: Literal["SecretStore", "ClusterSecretStore"] = "SecretStore"


class ExternalSecrets(ManifestModel):
    """Values live in an external store; the External Secrets Operator copies them into
    `<app>-secrets`. Infrastream renders one ExternalSecret per application in the tree."""

    secret_store_ref: SecretStoreRef
    """The SecretStore or ClusterSecretStore to read from."""
    remote_key: Template = "{environment}/{app}"
    """Key of the application's entry in the store; each variable is a property of it."""
    refresh_interval: Duration = "1h"


class ClusterSecrets(ManifestModel):
    """Infrastream applies `<app>-secrets` itself, by server-side apply, to the cluster
    the agent deploys to, from the values set with `secret set`."""

    namespace: Name
    """Namespace the applications run in."""
    context: str | None = None
    """kubeconfig context of that cluster; omitted means in-cluster configuration."""


class GitOpsSecrets(ManifestModel):
    """How secret values reach the cluster of a `gitops` environment: exactly one route."""

    external_secret: ExternalSecrets | None = None
    cluster: ClusterSecrets | None = None

    @model_validator(mode="after")
    def _one_route(self) -> GitOpsSecrets:
        if (self.external_secret is None) == (self.cluster is None):
            raise PydanticCustomError(
                "invalid-value", "secrets: give exactly one of `externalSecret` or `cluster`")
        return self


class GitOpsTarget(ManifestModel):
    """Rendered Kubernetes manifests committed to a Git repository synced by Argo CD or Flux."""

    type: Literal["gitops"]
    repo: str = Field(min_length=1)
    """Clone URL or path of the GitOps repository."""
    branch: str = "main"
    path: str | None = None
    """Directory inside the repository; defaults to `envs/<environment>`."""
    argocd: ArgoCd | None = None
    """Wait for Argo CD to sync and report healthy; omitted (and no `flux`): a deployment is
    healthy as soon as its commit is on the remote branch."""
    flux: Flux | None = None
    """Wait for Flux to apply the commit and report Ready."""
    secrets: GitOpsSecrets | None = None
    """How secret values reach the cluster; omitted: they do not (`secret set` is refused)."""
    endpoints: Endpoints | None = None

    @model_validator(mode="after")
    def _one_agent(self) -> GitOpsTarget:
        if self.argocd is not None and self.flux is not None:
            raise PydanticCustomError("invalid-value",
                                      "name one GitOps agent: `argocd` or `flux`, not both")
        return self


class KubernetesTarget(ManifestModel):
    """Objects applied directly to a cluster with server-side apply; secret values are
    applied as `<app>-secrets` the same way."""

    type: Literal["kubernetes"]
    namespace: Name
    context: str | None = None
    """kubeconfig context; omitted means in-cluster configuration."""
    endpoints: Endpoints | None = None
    """Omitted: the Service's in-cluster address (reachable when Infrastream runs there)."""


Target = Annotated[
    LocalTarget | NoopTarget | GitOpsTarget | KubernetesTarget, Field(discriminator="type")
]
TARGET_TYPES = ("local", "noop", "gitops", "kubernetes")


def _override_keys(overrides: dict[str, WorkloadOverride]) -> dict[str, WorkloadOverride]:
    for key in overrides:
        if key != "*" and not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", key):
            raise PydanticCustomError(
                "invalid-name", "`{value}` is neither an application name nor `*`",
                {"value": key})
    return overrides


class EnvironmentSpec(ManifestModel):
    tier: Tier = Tier.DEVELOPMENT
    target: Target = Field(default_factory=lambda: LocalTarget(type="local"))
    overrides: Annotated[dict[str, WorkloadOverride], AfterValidator(_override_keys)] = Field(
        default_factory=dict)
    """Workload settings per application name (`*`: every application; an application's
    own entry wins field by field), e.g. more replicas or resources in production."""


class Environment(ManifestModel):
    api_version: Literal["lowops.manifests.v1"]
    kind: Literal["Environment"]
    metadata: Metadata
    spec: EnvironmentSpec = Field(default_factory=EnvironmentSpec)

    def workload(self, app: str, spec: ApplicationSpec) -> ApplicationSpec:
        """The application's spec as this environment runs it: `*` first, then its own."""
        for key in ("*", app):
            override = self.spec.overrides.get(key)
            if override is not None:
                spec = override.applied_to(spec)
        return spec


def default_environment(name: str) -> Environment:
    """The Environment assumed for a name a track uses but nothing declares."""
    return Environment.model_validate(
        {"apiVersion": "lowops.manifests.v1", "kind": "Environment", "metadata": {"name": name}}
    )


class SecretRoute(StrEnum):
    STORED = "stored"
    """Values set with `secret set` reach the application."""
    EXTERNAL = "external"
    """Values come from an external store; Infrastream does not hold them."""
    NONE = "none"
    """Nothing carries values to the cluster."""


@dataclass(frozen=True)
class SecretDelivery:
    """How secret values reach one environment, in words a refusal can print."""

    route: SecretRoute
    how: str

    @property
    def accepts_values(self) -> bool:
        """Whether `secret set` for this environment makes sense (else refuse with `how`)."""
        return self.route is SecretRoute.STORED


def secret_route(environment: Environment) -> SecretDelivery:
    """Whether and how secret values set in Infrastream reach `environment`'s applications."""
    name, target = environment.metadata.name, environment.spec.target
    if isinstance(target, LocalTarget | NoopTarget):
        return SecretDelivery(SecretRoute.STORED, f"passed to the processes of {name}")
    if isinstance(target, KubernetesTarget):
        return SecretDelivery(SecretRoute.STORED, f"applied as Secret `<app>-secrets` in "
                              f"namespace {target.namespace} at each deployment")
    routes = target.secrets
    if routes is not None and routes.cluster is not None:
        return SecretDelivery(SecretRoute.STORED, f"applied as Secret `<app>-secrets` in "
                              f"namespace {routes.cluster.namespace} of the cluster "
                              f"(context {routes.cluster.context or 'in-cluster'}) at each "
                              "deployment, never committed")
    if routes is not None and routes.external_secret is not None:
        store = routes.external_secret.secret_store_ref
        return SecretDelivery(SecretRoute.EXTERNAL, (
            f"environment {name} takes secret values from the {store.kind} `{store.name}` "
            f"(key `{routes.external_secret.remote_key}`) through the External Secrets "
            "Operator: set them there"))
    return SecretDelivery(SecretRoute.NONE, (
        f"environment {name} (gitops) has no route for secret values, which never go to "
        "Git: add `secrets: {cluster: {namespace: NS, context: CTX}}` to its target to have "
        "Infrastream apply them to the cluster, or `secrets: {externalSecret: "
        "{secretStoreRef: {name: STORE}}}` to have the External Secrets Operator fetch them"))
