"""`Application` (what runs) and `ApplicationSet` (what ships together).

An Application is owned by its development team: the image it is built into, how to run and
health-check it, the variables it needs and how to test it. The version (tag or digest) is
not part of the manifest: it comes from the release that carries the Application.

Its workload settings (`replicas`, `resources`, `securityContext`, `serviceAccountName`,
`nodeSelector`, `tolerations`) shape the Pods the `gitops` and `kubernetes` targets render;
an Environment may override each of them (`WorkloadOverride`), and the `local` target
ignores them. The security context defaults to what the Pod Security Standards'
`restricted` profile requires, so a rendered Pod is accepted by a restricted namespace
unless someone deliberately says otherwise.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .fields import Duration, ManifestModel
from .metadata import Metadata
from .source import MAINLINE_PLACEHOLDERS, PULL_REQUEST_PLACEHOLDERS, Source, check_template


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


Quantity = Annotated[str, Field(
    pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$", examples=["250m", "512Mi"])]
"""A Kubernetes quantity: `0.5` or `500m` CPUs, `512Mi` or `1G` bytes."""


class ResourceAmounts(ManifestModel):
    cpu: Quantity | None = None
    """CPU in cores (`1`, `0.5`) or millicores (`250m`)."""
    memory: Quantity | None = None
    """Memory in bytes with a suffix (`256Mi`, `1Gi`)."""


class Resources(ManifestModel):
    """Compute resources of the application's container, as a ResourceQuota or LimitRange
    of the namespace may require them."""

    requests: ResourceAmounts | None = None
    """What the scheduler reserves for each replica."""
    limits: ResourceAmounts | None = None
    """What a replica may use at most (memory beyond it is killed, CPU throttled)."""


class Capabilities(ManifestModel):
    add: list[str] = Field(default_factory=list)
    """Linux capabilities to add back (`restricted` allows only `NET_BIND_SERVICE`)."""
    drop: list[str] = Field(default_factory=lambda: ["ALL"])
    """Linux capabilities to drop; `restricted` requires `ALL`."""


class SeccompProfile(ManifestModel):
    type: Literal["RuntimeDefault", "Localhost", "Unconfined"] = "RuntimeDefault"
    """`RuntimeDefault` (the container runtime's profile) or `Localhost` satisfy `restricted`."""
    localhost_profile: str | None = None
    """Profile file on the node, for `type: Localhost`."""


class SecurityContext(ManifestModel):
    """The container's security settings. Every default is what the Pod Security
    Standards' `restricted` profile requires; a field given here replaces its default."""

    run_as_non_root: StrictBool = True
    """Refuse to start an image whose user is root."""
    run_as_user: StrictInt | None = Field(None, ge=0)
    """User id to run as, when the image does not name a non-root one (0 is refused by
    `restricted`)."""
    run_as_group: StrictInt | None = Field(None, ge=0)
    read_only_root_filesystem: StrictBool | None = None
    allow_privilege_escalation: StrictBool = False
    """Whether a process may gain more privileges than its parent (setuid binaries)."""
    capabilities: Capabilities = Field(default_factory=Capabilities)
    seccomp_profile: SeccompProfile = Field(default_factory=SeccompProfile)


class Toleration(ManifestModel):
    """Lets the Pods run on nodes with a matching taint (Kubernetes' own fields)."""

    key: str | None = None
    """Taint key; omitted with `operator: Exists` tolerates every taint."""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; omitted: all effects."""
    toleration_seconds: StrictInt | None = None
    """For `NoExecute`: how long a Pod stays after the taint appears."""


ServiceAccountName = Annotated[str, Field(
    pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, examples=["shop-api"])]
"""A Kubernetes ServiceAccount name (DNS-1123 subdomain)."""


@cache
def _default_security_context() -> SecurityContext:
    """The security context of an application that sets none: one instance for all of them
    (models are frozen), not three models built anew for each of thousands."""
    return SecurityContext()


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
    """Number of Pods (gitops and kubernetes targets)."""
    resources: Resources | None = None
    """Requests and limits of the container; omitted: none (the namespace's LimitRange
    decides)."""
    security_context: SecurityContext = Field(default_factory=_default_security_context)
    """The container's security settings; defaults satisfy Pod Security `restricted`."""
    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the Pods run as; omitted: the namespace's `default`."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels a Pod's node must carry."""
    tolerations: list[Toleration] = Field(default_factory=list)
    """Node taints the Pods tolerate."""
    health_check: HealthCheck | None = None
    env: Annotated[list[EnvVar], AfterValidator(_env_rules)] = Field(default_factory=list)
    integration_tests: CommandSpec | None = None
    """Command that tests the running application; run by the `integration-tests` check."""
    run: CommandSpec | None = None
    """Command that starts the application; used by the `local` target."""
    source: Source | None = None
    """The repository it is built from: pull requests there are validated in the
    pre-release lane, merges to its branch record mainline versions."""
    pull_request_image: str | None = Field(None, min_length=1, max_length=512, examples=[
        "registry.example.com/shop/api:pr-{number}-{sha7}"])
    """How CI tags pull-request builds (`{number}`, `{sha}`, `{sha7}`); omitted: CI records
    each with `infrastream version record APP --image REF --commit SHA --pull-request N`."""
    mainline_image: str | None = Field(None, min_length=1, max_length=512, examples=[
        "registry.example.com/shop/api:main-{sha7}"])
    """How CI tags builds of merges to the branch (`{sha}`, `{sha7}`); omitted: CI records
    each with `infrastream version record APP --image REF --commit SHA`."""

    @field_validator("pull_request_image", "mainline_image")
    @classmethod
    def _template_names_the_image(cls, value: str | None,
                                  info: ValidationInfo) -> str | None:
        image = info.data.get("image")
        if value is not None and isinstance(image, str):
            check_template(value, image, PULL_REQUEST_PLACEHOLDERS
                           if info.field_name == "pull_request_image" else MAINLINE_PLACEHOLDERS)
        return value


class WorkloadOverride(ManifestModel):
    """Workload settings an Environment sets for an application. Each field given replaces
    the application's own value as a whole; omitted fields keep it."""

    replicas: StrictInt | None = Field(None, ge=0, le=1000)
    resources: Resources | None = None
    security_context: SecurityContext | None = None
    service_account_name: ServiceAccountName | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None

    def applied_to(self, spec: ApplicationSpec) -> ApplicationSpec:
        """`spec` with the fields this override sets replaced."""
        return spec.model_copy(update={name: getattr(self, name)
                                       for name in sorted(self.model_fields_set)})


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
