"""The `kubernetes` target: the rendered objects applied straight to a cluster.

For teams without a GitOps repository. Each application's Deployment and Service (see
`render`), its Secret `<app>-secrets` with the values the deployment carries (see
`render_secrets`), and the environment's release record are sent with server-side apply
under our own field manager (`infrastream`, forced: Infrastream owns the fields it renders,
so a hand edit of those is undone by the next deployment, while a label or annotation
another manager added is left alone). Re-applying identical objects changes nothing on the
server: the resourceVersion before and after tells whether anything did, and a deployment
that changed nothing says "already deployed". Then the target watches every Deployment
until its rollout is judged complete the way `kubectl rollout status` judges it (the
controller has observed the new generation, then the Progressing condition, then updated
and available replicas), within the application's health-check timeout, and on failure
reports the cluster's own reason. Pruning removes the objects of the same ApplicationSet
and environment that the release no longer carries, Secrets included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

from lightkube.config.kubeconfig import SingleConfig

from infrastream.domain.errors import PermanentError
from infrastream.manifests import Environment, parse_duration
from infrastream.manifests.environment import KubernetesTarget as KubernetesSettings

from . import kubeconfig
from .base import AppDeployment, AppStatus, DeployRequest, DeployResult, Health
from .kube_api import KubeApi, run
from .release_record import (
    merge_releases,
    recorded_releases,
    release_record_name,
    render_release_record,
)
from .render import (
    ENVIRONMENT,
    MANAGED_BY,
    MANAGER,
    NAME,
    PART_OF,
    app_set_of,
    describe_deployment,
    render_app,
)
from .render_secrets import render_secret
from .rollout import rollout_state

DEFAULT_ROLLOUT_TIMEOUT = 300.0
"""Seconds to wait for an application without a health check."""
KINDS = ("Deployment", "Service", "Secret")
"""What the target creates per application (and so prunes and tears down)."""

Resolver = Callable[[str | None], SingleConfig]
"""Finds the cluster of a kubeconfig context (None: in-cluster)."""


class KubernetesTarget:
    """Applies rendered objects to each environment's namespace and waits for the rollout."""

    type_name = "kubernetes"

    def __init__(self, data_dir: Path, *, resolve: Resolver | None = None,
                 request_timeout: float = 10.0) -> None:
        self.data_dir = data_dir
        self._resolve = resolve or kubeconfig.resolve
        self.request_timeout = request_timeout

    def deploy(self, request: DeployRequest) -> DeployResult:
        return run(self._deploy(request))

    def status(self, environment: Environment) -> tuple[AppStatus, ...]:
        return run(self._status(environment))

    def teardown(self, environment: Environment) -> None:
        run(self._teardown(environment))

    def _api(self, context: str | None) -> KubeApi:
        """A session with the cluster of `context`."""
        return KubeApi(self._resolve(context), timeout=self.request_timeout)

    async def _deploy(self, request: DeployRequest) -> DeployResult:
        settings = _settings(request.environment)
        name, namespace = request.environment.metadata.name, settings.namespace
        app_set = app_set_of(request.release)
        objects = [obj for app in request.apps for obj in render_app(
            app, request.environment, app_set=app_set, namespace=namespace)]
        secrets = [s for s in (render_secret(app, name, app_set=app_set, namespace=namespace)
                               for app in request.apps) if s is not None]
        async with self._api(settings.context) as api:
            changed = [*await apply_all(api, objects), *await apply_all(api, secrets)]
            pruned = await self._prune(api, request, namespace) if request.prune else []
            changed += await self._record(api, request, namespace)
            statuses = await self._await_rollouts(api, request, namespace)
        statuses = tuple(_with_endpoint(s, settings, name) for s in statuses)
        if not changed and not pruned:
            return DeployResult(request.key, statuses, "already deployed")
        parts = [f"applied {', '.join(changed)}" if changed else "",
                 f"pruned {', '.join(pruned)}" if pruned else ""]
        return DeployResult(request.key, statuses, "; ".join(p for p in parts if p))

    async def _status(self, environment: Environment) -> tuple[AppStatus, ...]:
        settings = _settings(environment)
        namespace, name = settings.namespace, environment.metadata.name
        async with self._api(settings.context) as api:
            deployments = await ours(api, "Deployment", namespace, name)
            services = {s["metadata"]["name"]: s for s in await ours(
                api, "Service", namespace, name)}
            releases = recorded_releases(await api.get(
                "ConfigMap", namespace, release_record_name(name)))
        statuses = []
        for obj in sorted(deployments, key=lambda o: str(o["metadata"]["name"])):
            deployed = describe_deployment(obj)
            assert deployed is not None
            health, reason = rollout_state(obj)
            statuses.append(_with_endpoint(AppStatus(
                app=deployed.app, version=deployed.version, image=deployed.image, health=health,
                endpoint=_service_address(services.get(obj["metadata"]["name"]), namespace),
                release=releases.get(deployed.app) or deployed.release, detail=reason),
                settings, name))
        return tuple(statuses)

    async def _teardown(self, environment: Environment) -> None:
        settings = _settings(environment)
        name = environment.metadata.name
        async with self._api(settings.context) as api:
            for kind in KINDS:
                for obj in await ours(api, kind, settings.namespace, name):
                    await api.delete(kind, settings.namespace, obj["metadata"]["name"])
            await api.delete("ConfigMap", settings.namespace, release_record_name(name))

    async def _prune(self, api: KubeApi, request: DeployRequest, namespace: str) -> list[str]:
        """Delete our objects of this set and environment that the release does not carry."""
        keep = {a.app for a in request.apps}
        pruned = []
        for kind in KINDS:
            for obj in await ours(api, kind, namespace, request.environment.metadata.name,
                                  part_of=app_set_of(request.release)):
                app = (obj["metadata"].get("labels") or {}).get(NAME)
                if app not in keep:
                    object_name = obj["metadata"]["name"]
                    await api.delete(kind, namespace, object_name)
                    pruned.append(f"{kind.lower()}/{object_name}")
        return pruned

    async def _record(self, api: KubeApi, request: DeployRequest, namespace: str) -> list[str]:
        """Apply the environment's release record; what changed (`configmap/…`) or []."""
        name = request.environment.metadata.name
        current = await api.get("ConfigMap", namespace, release_record_name(name))
        apps = merge_releases(recorded_releases(current), request.release,
                              [a.app for a in request.apps], prune=request.prune)
        record = render_release_record(name, release=request.release, digest=request.digest,
                                       apps=apps, namespace=namespace)
        return await apply_all(api, [record])

    async def _await_rollouts(self, api: KubeApi, request: DeployRequest,
                              namespace: str) -> tuple[AppStatus, ...]:
        """Watch every Deployment until all rolled out; PermanentError with the cluster's
        reason when one fails or outlives its application's health-check timeout."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(_rollout(api, request, app, namespace))
                         for app in request.apps]
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return tuple(task.result() for task in tasks)


async def _rollout(api: KubeApi, request: DeployRequest, app: AppDeployment,
                   namespace: str) -> AppStatus:
    timeout = _timeout(app)
    started = time.monotonic()
    obj = await api.get("Deployment", namespace, app.app)
    health, reason = rollout_state(obj) if obj else (Health.MISSING, "")
    try:
        async with asyncio.timeout(timeout):
            while obj is not None and health is Health.PROGRESSING:
                since = str(obj["metadata"].get("resourceVersion") or "") or None
                events = api.watch("Deployment", namespace, app.app, since,
                                   timeout - (time.monotonic() - started))
                async with aclosing(events):
                    async for event, changed in events:
                        obj = None if event == "DELETED" else changed
                        health, reason = rollout_state(obj) if obj else (Health.MISSING, "")
                        if health is not Health.PROGRESSING:
                            break
    except TimeoutError:
        raise PermanentError(f"{app.app}: rollout did not finish within {timeout:g}s: "
                             f"{reason}") from None
    if obj is None:
        raise PermanentError(f"{app.app}: the Deployment disappeared during rollout")
    if health is Health.DEGRADED:
        raise PermanentError(f"{app.app}: rollout failed: {reason}")
    return AppStatus(app=app.app, version=app.version, image=app.image, health=health,
                     release=request.release, deploy_key=request.key, detail=reason)


async def apply_all(api: KubeApi, objects: list[dict[str, Any]]) -> list[str]:
    """Apply each object; `kind/name` of those the server changed."""
    changed = []
    for obj in objects:
        kind, metadata = obj["kind"], obj["metadata"]
        before = await api.get(kind, metadata["namespace"], metadata["name"])
        after = await api.apply(obj)
        if before is None or (_version(before) != _version(after)
                               and _owned(before) != _owned(after)):
            changed.append(f"{kind.lower()}/{metadata['name']}")
    return changed


async def ours(api: KubeApi, kind: str, namespace: str, environment: str,
               part_of: str | None = None) -> list[dict[str, Any]]:
    """Our objects of `kind` in the namespace that belong to `environment` (and the set)."""
    labels = {MANAGED_BY: MANAGER}
    if part_of is not None:
        labels[PART_OF] = part_of
    return [obj for obj in await api.list(kind, namespace, labels)
            if (obj["metadata"].get("annotations") or {}).get(ENVIRONMENT) == environment
            and NAME in (obj["metadata"].get("labels") or {})]


def _settings(environment: Environment) -> KubernetesSettings:
    settings = environment.spec.target
    if not isinstance(settings, KubernetesSettings):
        raise PermanentError(
            f"environment {environment.metadata.name} is not deployed by the kubernetes target")
    return settings


def _version(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("resourceVersion", ""))


def _owned(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What we apply, without what controllers write (status): a status update alone
    between our read and our apply bumps the resourceVersion but changes nothing of ours."""
    metadata = obj.get("metadata") or {}
    return (metadata.get("labels"), metadata.get("annotations"), obj.get("spec"),
            obj.get("data"))


def _timeout(app: AppDeployment) -> float:
    check = app.spec.health_check
    return float(parse_duration(check.timeout)) if check else DEFAULT_ROLLOUT_TIMEOUT


def _service_address(service: dict[str, Any] | None, namespace: str) -> str | None:
    """The in-cluster address of the application's Service (reachable from inside only)."""
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    if service is None or not ports:
        return None
    return f"http://{service['metadata']['name']}.{namespace}.svc:{ports[0]['port']}"


def _with_endpoint(status: AppStatus, settings: KubernetesSettings,
                   environment: str) -> AppStatus:
    """`status` with the address the environment declares for the app, if it does."""
    declared = settings.endpoints.url(status.app, environment=environment,
                                      namespace=settings.namespace) if settings.endpoints else None
    return status if declared is None else dataclasses.replace(status, endpoint=declared)
