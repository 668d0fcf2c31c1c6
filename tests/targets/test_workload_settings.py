"""Rendered Pods carry the workload settings and a restricted namespace admits them.

Every rendered Pod spec is checked against the Pod Security Standards' `restricted`
profile (`pod_security`), and against the official schemas; the checker itself is shown to
catch what an override makes non-compliant.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from pod_security import restricted_violations

from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets.base import AppDeployment
from infrastream.targets.render import render_app

BASE: dict[str, Any] = {"image": "registry.example.com/shop/api", "port": 8080,
                        "healthCheck": {"path": "/healthz"},
                        "env": [{"name": "DB_PASSWORD", "secret": True}]}


def environment(overrides: dict[str, Any] | None = None) -> Environment:
    return Environment.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "Environment",
        "metadata": {"name": "production"},
        "spec": {"target": {"type": "kubernetes", "namespace": "shop"},
                 "overrides": overrides or {}}})


def pod(changes: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = ApplicationSpec.model_validate({**BASE, **(changes or {})})
    app = AppDeployment(app="api", image=f"{spec.image}:1.0.0", version="1.0.0", spec=spec)
    objects = render_app(app, environment(overrides), app_set="shop", namespace="shop")
    for obj in objects:
        kubernetes_validate.validate(obj, "1.30.0", strict=True)
    found: dict[str, Any] = objects[0]["spec"]["template"]["spec"]
    return found


VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "defaults": ({}, {}),
    "no-port": ({"port": None, "healthCheck": None}, {}),
    "resources": ({"resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                 "limits": {"memory": "512Mi"}}}, {}),
    "scheduling": ({"serviceAccountName": "shop-api", "nodeSelector": {"pool": "web"},
                    "tolerations": [{"key": "dedicated", "operator": "Equal",
                                     "value": "shop", "effect": "NoSchedule"}]}, {}),
    "user-and-port-capability": ({"securityContext": {
        "runAsUser": 10001, "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["NET_BIND_SERVICE"]}}}, {}),
    "environment-override": ({}, {"*": {"replicas": 4, "resources": {
        "requests": {"cpu": "1"}}}, "api": {"nodeSelector": {"zone": "eu-1"}}}),
}


@pytest.mark.parametrize(("changes", "overrides"), VARIANTS.values(), ids=VARIANTS.keys())
def test_every_rendered_pod_passes_the_restricted_pod_security_profile(changes, overrides):
    assert restricted_violations(pod(changes, overrides)) == []


def test_the_default_security_context_is_the_restricted_one():
    (container,) = pod()["containers"]

    assert container["securityContext"] == {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.mark.parametrize(("context", "violation"), [
    ({"runAsNonRoot": False}, "runAsNonRoot is not true"),
    ({"runAsUser": 0}, "runAsUser is 0"),
    ({"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation is not false"),
    ({"capabilities": {"add": ["NET_ADMIN"]}}, "adds NET_ADMIN"),
    ({"capabilities": {"drop": []}}, "does not drop ALL capabilities"),
    ({"seccompProfile": {"type": "Unconfined"}}, "seccomp profile Unconfined"),
])
def test_an_override_that_breaks_the_profile_is_caught_by_the_check(context, violation):
    problems = restricted_violations(pod({"securityContext": context}))

    assert any(violation in p for p in problems), problems


def test_workload_settings_are_rendered_and_overridden_per_environment():
    rendered = pod(VARIANTS["scheduling"][0] | VARIANTS["resources"][0],
                   {"*": {"nodeSelector": {"pool": "big"}},
                    "api": {"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}})

    (container,) = rendered["containers"]
    assert container["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"}}
    assert rendered["nodeSelector"] == {"pool": "big"}
    assert rendered["serviceAccountName"] == "shop-api"
    assert rendered["tolerations"] == [{"key": "dedicated", "operator": "Equal",
                                        "value": "shop", "effect": "NoSchedule"}]


def test_an_environment_can_change_the_replicas():
    spec = ApplicationSpec.model_validate(BASE)
    app = AppDeployment(app="api", image="x:1", version="1", spec=spec)

    deployment = render_app(app, environment({"api": {"replicas": 6}}), app_set="shop")[0]

    assert deployment["spec"]["replicas"] == 6


def test_an_override_for_something_that_is_neither_an_app_nor_star_is_refused():
    with pytest.raises(ValueError, match="neither an application name nor"):
        environment({"API!": {"replicas": 2}})
