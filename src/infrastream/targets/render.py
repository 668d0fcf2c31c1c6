"""Kubernetes objects for one application of a release: the shared language of two targets.

The `gitops` target commits these objects to a repository and the `kubernetes` target
applies them to a cluster, so both deploy exactly the same thing and drift detection can
read either back with `describe_deployment`. Rendering is pure and deterministic: the same
application build and spec in the same environment always give the same objects and the
same YAML bytes, which is what makes a redeploy a no-op and a rollback restore the previous
tree exactly. For that reason nothing that varies between two deployments (the release,
its digest, the deploy key, the person who promoted, the time) is rendered into an
application's objects: a release that leaves an application alone leaves its file alone,
so Argo CD or Flux has nothing to roll. The release lives in one environment-level object
(`release_record`) and in the commit message.

Pods get the application's workload settings as the environment overrides them, with a
security context that satisfies the Pod Security Standards' `restricted` profile unless
the manifests say otherwise. Secret variables are rendered as references
(`valueFrom.secretKeyRef`) to the Secret `<app>-secrets`, whose values never pass here
(see `render_secrets` for how that Secret is made).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from infrastream.launch import injected_variables
from infrastream.manifests import ApplicationSpec, Environment, parse_duration

from .base import AppDeployment

MANAGER = "infrastream"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
RELEASE = "infrastream.dev/release"
DIGEST = "infrastream.dev/digest"
ENVIRONMENT = "infrastream.dev/environment"
COMPONENT = "app.kubernetes.io/component"
HEADER = "# Rendered by Infrastream: edits here are replaced by the next deployment.\n"

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")
_PROBE_PERIOD = 5


def app_set_of(release: str) -> str:
    """`shop/v3` → `shop`: the ApplicationSet a release reference belongs to."""
    return release.partition("/")[0]


def secret_name(app: str) -> str:
    """The Secret that holds the secret variables of `app` in its namespace."""
    return f"{app}-secrets"


def render_app(app: AppDeployment, environment: Environment, *, app_set: str,
               namespace: str | None = None) -> list[dict[str, Any]]:
    """The Deployment (and the Service, when the application has a port) of `app`, with the
    environment's workload overrides applied. Nothing release-wide is in them (see
    `render_release_record`), so they change only when the build or the spec does."""
    name = environment.metadata.name
    spec = environment.workload(app.app, app.spec)
    metadata, selector, labels = metadata_of(app.app, name, app_set, app.version, namespace)
    objects = [_deployment(app, spec, name, metadata, selector, labels)]
    if spec.port is not None:
        objects.append({
            "apiVersion": "v1", "kind": "Service", "metadata": metadata,
            "spec": {"type": "ClusterIP", "selector": selector, "ports": [
                {"name": "http", "port": spec.port, "targetPort": "http",
                 "protocol": "TCP"}]},
        })
    return independent(objects)


def metadata_of(app: str, environment: str, app_set: str, version: str | None,
              namespace: str | None) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    selector = {NAME: app, INSTANCE: label_value(f"{app}-{environment}")}
    labels = {**selector, PART_OF: app_set, MANAGED_BY: MANAGER}
    if version is not None:
        labels[VERSION] = label_value(version)
    metadata: dict[str, Any] = {"name": app, "labels": labels,
                                "annotations": {ENVIRONMENT: environment}}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata, selector, labels


def independent(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    independent: list[dict[str, Any]] = json.loads(json.dumps(objects))
    return independent  # nothing shared: deepcopy would keep the sharing


class _Dumper(yaml.SafeDumper):
    """Writes repeated values in full: no `&id001` anchors in a file people read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """One YAML stream of `objects`, keys sorted: same objects, same bytes."""
    body = yaml.dump_all([dict(o) for o in objects], Dumper=_Dumper, sort_keys=True,
                         default_flow_style=False, allow_unicode=True, width=4096,
                         explicit_start=True)
    return HEADER + body


def label_value(text: str) -> str:
    """`text` as a valid label value: allowed characters only, at most 63 of them."""
    value = _LABEL_VALUE.sub("-", text).strip("-_.")
    if len(value) > 63:
        suffix = hashlib.sha256(text.encode()).hexdigest()[:8]
        value = value[:54].rstrip("-_.") + "-" + suffix
    return value


@dataclass(frozen=True)
class DeployedApp:
    """What a rendered (or live) Deployment says runs: read back for status and drift."""

    app: str
    version: str
    image: str
    release: str | None
    digest: str | None
    environment: str | None


def describe_deployment(obj: Mapping[str, Any]) -> DeployedApp | None:
    """The application a Deployment runs, or None when `obj` is no Deployment of ours."""
    if obj.get("kind") != "Deployment":
        return None
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    name = str(labels.get(NAME) or metadata.get("name") or "")
    containers = ((((obj.get("spec") or {}).get("template") or {}).get("spec") or {})
                  .get("containers") or [])
    main = next((c for c in containers if c.get("name") == name), None) or (
        containers[0] if containers else {})
    return DeployedApp(app=name, version=str(labels.get(VERSION, "")),
                       image=str(main.get("image", "")), release=annotations.get(RELEASE),
                       digest=annotations.get(DIGEST), environment=annotations.get(ENVIRONMENT))


def _deployment(app: AppDeployment, spec: ApplicationSpec, environment: str,
                metadata: dict[str, Any], selector: dict[str, str],
                labels: dict[str, str]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": app.app, "image": app.image,
                                 "env": _variables(app, environment),
                                 "securityContext": _dump(spec.security_context)}
    if spec.resources is not None and _dump(spec.resources):
        container["resources"] = _dump(spec.resources)
    if spec.port is not None:
        container["ports"] = [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]
    pod: dict[str, Any] = {"containers": [container]}
    if spec.service_account_name is not None:
        pod["serviceAccountName"] = spec.service_account_name
    if spec.node_selector:
        pod["nodeSelector"] = dict(sorted(spec.node_selector.items()))
    if spec.tolerations:
        pod["tolerations"] = [_dump(t) for t in spec.tolerations]
    deployment_spec: dict[str, Any] = {
        "replicas": spec.replicas,
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    check = spec.health_check
    if check is not None:
        timeout = parse_duration(check.timeout)
        deployment_spec["progressDeadlineSeconds"] = timeout
        port = check.port if check.port not in (None, spec.port) else (
            "http" if spec.port is not None else None)
        if port is not None:
            get = {"path": check.path, "port": port}
            container["readinessProbe"] = {"httpGet": get, "periodSeconds": _PROBE_PERIOD,
                                           "failureThreshold": 3}
            container["livenessProbe"] = {"httpGet": get, "periodSeconds": 10,
                                          "failureThreshold": 3}
            container["startupProbe"] = {"httpGet": get, "periodSeconds": _PROBE_PERIOD,
                                         "failureThreshold": max(1, math.ceil(
                                             timeout / _PROBE_PERIOD))}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
            "spec": deployment_spec}


def _dump(model: BaseModel) -> dict[str, Any]:
    """A manifest model as Kubernetes spells it: camelCase, no empty or unset parts."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v not in (None, [], {})}
        return value
    dumped: dict[str, Any] = clean(model.model_dump(by_alias=True, exclude_none=True))
    return dumped


def _variables(app: AppDeployment, environment: str) -> list[dict[str, Any]]:
    """The container's variables: what Infrastream provides, then the declared ones in order.

    Only declared variables are rendered, and a secret one only as a reference, so a value
    that reached `app.env` by another way can never end up in Git or in the cluster.
    """
    declared = {v.name for v in app.spec.env}
    # the release is on the environment's release record, not here: see launch.RELEASE_SCOPED
    provided = injected_variables(app.app, app.version, "", environment, release_scoped=False)
    if app.spec.port is not None:
        provided["PORT"] = str(app.spec.port)
    variables: list[dict[str, Any]] = [
        {"name": name, "value": value} for name, value in provided.items()
        if name not in declared]
    for var in app.spec.env:
        if var.secret or var.name in app.secret_names:
            variables.append({"name": var.name, "valueFrom": {"secretKeyRef": {
                "name": secret_name(app.app), "key": var.name}}})
            continue
        value = app.env.get(var.name, var.value)
        variables.append({"name": var.name} if value is None else
                         {"name": var.name, "value": str(value)})
    return variables
