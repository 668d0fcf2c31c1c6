"""The `kubernetes` target: the rendered objects applied straight to a cluster.

For teams without a GitOps repository. Each application's Deployment and Service (see
`render`) is sent with server-side apply under our own field manager (`infrastream`,
forced, so that Infrastream owns what it renders and a hand edit of those fields is undone
by the next deployment). Re-applying identical objects changes nothing on the server: the
resourceVersion before and after tells whether anything did, and a deployment that changed
nothing says "already deployed". Then the target waits for every Deployment's rollout the
way `kubectl rollout status` does (observed generation, updated and available replicas)
until the application's health-check timeout, and on failure reports the cluster's own
reason (the Deployment's conditions). Pruning removes the Deployments and Services of the
same ApplicationSet and environment that the release no longer carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infrastream.domain.errors import PermanentError
from infrastream.manifests import Environment, parse_duration
from infrastream.manifests.environment import KubernetesTarget as KubernetesSettings

from . import kubeconfig
from .base import AppDeployment, AppStatus, DeployRequest, DeployResult, Health
from .kube_api import KINDS, KubeApi
from .kubeconfig import ClusterConfig
from .render import (
    ENVIRONMENT,
    MANAGED_BY,
    MANAGER,
    PART_OF,
    app_set_of,
    describe_deployment,
    render_app,
)

DEFAULT_ROLLOUT_TIMEOUT = 300.0
"""Seconds to wait for an application without a health check."""

Resolver = Callable[[KubernetesSettings], ClusterConfig]


class KubernetesTarget:
    """Applies rendered objects to each environment's namespace and waits for the rollout."""

    type_name = "kubernetes"

    def __init__(self, data_dir: Path, *, resolve: Resolver | None = None,
                 poll_interval: float = 1.0, request_timeout: float = 10.0) -> None:
        self.data_dir = data_dir
        self._resolve = resolve or (lambda settings: kubeconfig.resolve(settings.context))
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout

    def deploy(self, request: DeployRequest) -> DeployResult:
        settings = _settings(request.environment)
        name, namespace = request.environment.metadata.name, settings.namespace
        objects = [obj for app in request.apps for obj in render_app(
            app, environment=name, release=request.release, digest=request.digest,
            namespace=namespace)]
        with self._api(settings) as api:
            changed = []
            for obj in objects:
                kind, object_name = obj["kind"], obj["metadata"]["name"]
                before = api.get(kind, namespace, object_name)
                after = api.apply(obj)
                if before is None or (_version(before) != _version(after)
                                       and _owned(before) != _owned(after)):
                    changed.append(f"{kind.lower()}/{object_name}")
            pruned = self._prune(api, request, namespace) if request.prune else []
            statuses = self._await_rollouts(api, request, namespace)
        if not changed and not pruned:
            return DeployResult(request.key, statuses, "already deployed")
        parts = [f"applied {', '.join(changed)}" if changed else "",
                 f"pruned {', '.join(pruned)}" if pruned else ""]
        return DeployResult(request.key, statuses, "; ".join(p for p in parts if p))

    def status(self, environment: Environment) -> tuple[AppStatus, ...]:
        settings = _settings(environment)
        namespace = settings.namespace
        with self._api(settings) as api:
            deployments = _ours(api, "Deployment", namespace, environment.metadata.name)
            services = {s["metadata"]["name"]: s for s in _ours(
                api, "Service", namespace, environment.metadata.name)}
        statuses = []
        for obj in sorted(deployments, key=lambda o: str(o["metadata"]["name"])):
            deployed = describe_deployment(obj)
            assert deployed is not None
            health, reason = rollout_state(obj)
            statuses.append(AppStatus(
                app=deployed.app, version=deployed.version, image=deployed.image, health=health,
                endpoint=_endpoint(services.get(obj["metadata"]["name"]), namespace),
                release=deployed.release, detail=reason))
        return tuple(statuses)

    def teardown(self, environment: Environment) -> None:
        settings = _settings(environment)
        with self._api(settings) as api:
            for kind in KINDS:
                for obj in _ours(api, kind, settings.namespace, environment.metadata.name):
                    api.delete(kind, settings.namespace, obj["metadata"]["name"])

    def _api(self, settings: KubernetesSettings) -> KubeApi:
        return KubeApi(self._resolve(settings), timeout=self.request_timeout)

    def _prune(self, api: KubeApi, request: DeployRequest, namespace: str) -> list[str]:
        """Delete our objects of this set and environment that the release does not carry."""
        keep = {a.app for a in request.apps}
        pruned = []
        for kind in KINDS:
            for obj in _ours(api, kind, namespace, request.environment.metadata.name,
                             part_of=app_set_of(request.release)):
                object_name = obj["metadata"]["name"]
                if object_name not in keep:
                    api.delete(kind, namespace, object_name)
                    pruned.append(f"{kind.lower()}/{object_name}")
        return pruned

    def _await_rollouts(self, api: KubeApi, request: DeployRequest,
                        namespace: str) -> tuple[AppStatus, ...]:
        """Poll every Deployment until all rolled out; PermanentError with the cluster's
        reason when one fails or outlives its application's health-check timeout."""
        start = time.monotonic()
        deadlines = {a.app: start + _timeout(a) for a in request.apps}
        done: dict[str, AppStatus] = {}
        while True:
            for app in request.apps:
                if app.app in done:
                    continue
                obj = api.get("Deployment", namespace, app.app)
                if obj is None:
                    raise PermanentError(f"{app.app}: the Deployment disappeared during rollout")
                health, reason = rollout_state(obj)
                if health is Health.HEALTHY:
                    done[app.app] = AppStatus(
                        app=app.app, version=app.version, image=app.image, health=health,
                        release=request.release, deploy_key=request.key, detail=reason)
                elif health is Health.DEGRADED:
                    raise PermanentError(f"{app.app}: rollout failed: {reason}")
                elif time.monotonic() >= deadlines[app.app]:
                    raise PermanentError(f"{app.app}: rollout did not finish within "
                                         f"{deadlines[app.app] - start:g}s: {reason}")
            if len(done) == len(request.apps):
                return tuple(done[a.app] for a in request.apps)
            time.sleep(self.poll_interval)


def rollout_state(deployment: dict[str, Any]) -> tuple[Health, str]:
    """Where a Deployment's rollout stands, judged as `kubectl rollout status` judges it."""
    metadata, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    generation = int(metadata.get("generation") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    messages = "; ".join(f"{c.get('type')}: {c.get('message')}" for c in conditions.values()
                         if c.get("status") == "False" and c.get("message"))
    if int(status.get("observedGeneration") or 0) < generation:
        # kubectl's order: a condition is about the generation the controller last saw, so
        # it says nothing until the controller has seen this one (a rollback after a failed
        # rollout still carries the old "progress deadline exceeded" until then).
        return Health.PROGRESSING, f"waiting for the controller to see generation {generation}"
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health.DEGRADED, messages or "progress deadline exceeded"
    updated = int(status.get("updatedReplicas") or 0)
    current = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        reason = f"{updated}/{wanted} replicas updated"
    elif current > updated:
        reason = f"{current - updated} old replicas are pending termination"
    elif available < updated:
        reason = f"{available}/{updated} updated replicas available"
    else:
        return Health.HEALTHY, f"{available}/{wanted} replicas available (generation {generation})"
    return Health.PROGRESSING, f"{reason}; {messages}" if messages else reason


def _settings(environment: Environment) -> KubernetesSettings:
    settings = environment.spec.target
    if not isinstance(settings, KubernetesSettings):
        raise PermanentError(
            f"environment {environment.metadata.name} is not deployed by the kubernetes target")
    return settings


def _ours(api: KubeApi, kind: str, namespace: str, environment: str,
          part_of: str | None = None) -> list[dict[str, Any]]:
    """Our objects of `kind` in the namespace that belong to `environment` (and the set)."""
    labels = {MANAGED_BY: MANAGER}
    if part_of is not None:
        labels[PART_OF] = part_of
    return [obj for obj in api.list(kind, namespace, labels)
            if (obj["metadata"].get("annotations") or {}).get(ENVIRONMENT) == environment]


def _version(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("resourceVersion", ""))


def _owned(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What we apply, without what controllers write (status): a status update alone
    between our read and our apply bumps the resourceVersion but changes nothing of ours."""
    metadata = obj.get("metadata") or {}
    return metadata.get("labels"), metadata.get("annotations"), obj.get("spec")


def _timeout(app: AppDeployment) -> float:
    check = app.spec.health_check
    return float(parse_duration(check.timeout)) if check else DEFAULT_ROLLOUT_TIMEOUT


def _endpoint(service: dict[str, Any] | None, namespace: str) -> str | None:
    """The in-cluster address of the application's Service (reachable from inside only)."""
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    if service is None or not ports:
        return None
    return f"http://{service['metadata']['name']}.{namespace}.svc:{ports[0]['port']}"
