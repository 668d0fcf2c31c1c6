"""Kubernetes objects for one application of a release: the shared language of two targets.

The `gitops` target commits these objects to a repository and the `kubernetes` target
applies them to a cluster, so both deploy exactly the same thing and drift detection can
read either back with `describe_deployment`. Rendering is pure and deterministic: the same
application, environment and release always give the same objects and the same YAML bytes,
which is what makes a redeploy a no-op and a rollback restore the previous tree exactly.
For that reason nothing that varies between two deployments of one release (the deploy
key, the person who promoted, the time) is rendered; those go into the commit message.

Secret variables are rendered as references (`valueFrom.secretKeyRef`) to a Secret named
`<app>-secrets` that the platform team provisions; their values are never read here.
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

from infrastream.manifests import parse_duration

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
HEADER = "# Rendered by Infrastream: edits here are replaced by the next deployment.\n"

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")
_PROBE_PERIOD = 5


def app_set_of(release: str) -> str:
    """`shop/v3` → `shop`: the ApplicationSet a release reference belongs to."""
    return release.partition("/")[0]


def secret_name(app: str) -> str:
    """The Secret that holds the secret variables of `app` in its namespace."""
    return f"{app}-secrets"


def render_app(app: AppDeployment, *, environment: str, release: str, digest: str,
               namespace: str | None = None) -> list[dict[str, Any]]:
    """The Deployment (and the Service, when the application has a port) of `app`."""
    selector = {NAME: app.app, INSTANCE: label_value(f"{app.app}-{environment}")}
    labels = {**selector, VERSION: label_value(app.version), PART_OF: app_set_of(release),
              MANAGED_BY: MANAGER}
    annotations = {RELEASE: release, DIGEST: digest, ENVIRONMENT: environment}
    metadata: dict[str, Any] = {"name": app.app, "labels": labels, "annotations": annotations}
    if namespace is not None:
        metadata["namespace"] = namespace
    objects = [_deployment(app, environment, metadata, selector, labels)]
    if app.spec.port is not None:
        objects.append({
            "apiVersion": "v1", "kind": "Service", "metadata": metadata,
            "spec": {"type": "ClusterIP", "selector": selector, "ports": [
                {"name": "http", "port": app.spec.port, "targetPort": "http",
                 "protocol": "TCP"}]},
        })
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


def _deployment(app: AppDeployment, environment: str, metadata: dict[str, Any],
                selector: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    spec = app.spec
    container: dict[str, Any] = {"name": app.app, "image": app.image,
                                 "env": _variables(app, environment)}
    if spec.port is not None:
        container["ports"] = [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]
    deployment_spec: dict[str, Any] = {
        "replicas": spec.replicas,
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
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


def _variables(app: AppDeployment, environment: str) -> list[dict[str, Any]]:
    """The container's variables: what Infrastream provides, then the declared ones in order.

    Only declared variables are rendered, and a secret one only as a reference, so a value
    that reached `app.env` by another way can never end up in Git or in the cluster.
    """
    declared = {v.name for v in app.spec.env}
    provided = {"INFRASTREAM_APP": app.app, "INFRASTREAM_VERSION": app.version,
                "INFRASTREAM_ENVIRONMENT": environment}
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
