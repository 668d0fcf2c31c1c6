"""The renderer turns an application of a release into schema-valid, deterministic objects."""

from __future__ import annotations

import os
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets.base import AppDeployment
from infrastream.targets.render import (
    describe_deployment,
    label_value,
    render_app,
    render_yaml,
    secret_name,
)

K8S_VERSION = os.environ.get("INFRASTREAM_K8S_VERSION", "1.30.0")
"""The Kubernetes version whose official schemas rendered objects must satisfy."""
SECRET = "s3cret-do-not-render"
API_SPEC: dict[str, Any] = {
    "image": "registry.example.com/shop/api", "port": 8080, "replicas": 3,
    "healthCheck": {"path": "/healthz", "timeout": "90s"},
    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "secret": True},
            {"name": "FEATURE_FLAGS"}],
}


def app(version: str = "1.4.0", name: str = "api", **changes: Any) -> AppDeployment:
    spec = ApplicationSpec.model_validate({**API_SPEC, **changes})
    return AppDeployment(app=name, image=f"{spec.image}:{version}", version=version, spec=spec,
                         env={"LOG_LEVEL": "debug", "DB_PASSWORD": SECRET},
                         secret_names=frozenset({"DB_PASSWORD"}))


STAGING = Environment.model_validate({
    "apiVersion": "lowops.manifests.v1", "kind": "Environment", "metadata": {"name": "staging"},
    "spec": {"target": {"type": "gitops", "repo": "git@example.com:shop/gitops.git"}}})


def render(deployment: AppDeployment | None = None, environment: Environment = STAGING,
           **kwargs: Any) -> list[dict[str, Any]]:
    return render_app(deployment or app(), environment, app_set="shop", **kwargs)


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    main: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return main


def test_the_same_application_renders_the_same_bytes_every_time():
    first = render_yaml(render())
    shuffled = AppDeployment(app="api", image=app().image, version="1.4.0", spec=app().spec,
                             env={"DB_PASSWORD": SECRET, "LOG_LEVEL": "debug"},
                             secret_names=frozenset({"DB_PASSWORD"}))

    assert render_yaml(render()) == first
    assert render_yaml(render(shuffled)) == first
    assert first.startswith("# Rendered by Infrastream")
    assert "&id" not in first and "*id" not in first  # no YAML anchors for shared values


def test_an_application_with_a_port_gets_a_deployment_and_a_service():
    objects = render()

    assert [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("apps/v1", "Deployment", "api"), ("v1", "Service", "api")]
    service = objects[1]["spec"]
    assert service["ports"] == [{"name": "http", "port": 8080, "targetPort": "http",
                                 "protocol": "TCP"}]
    assert service["selector"] == objects[0]["spec"]["selector"]["matchLabels"]


def test_an_application_without_a_port_gets_no_service_and_no_probes():
    objects = render(app(port=None))

    assert [o["kind"] for o in objects] == ["Deployment"]
    assert "readinessProbe" not in container(objects)


@pytest.mark.parametrize("changes", [
    {}, {"port": None}, {"healthCheck": None}, {"replicas": 0}, {"env": []},
    {"healthCheck": {"path": "/ready", "port": 9090}},
], ids=["full", "no-port", "no-health-check", "scaled-to-zero", "no-env", "probe-port"])
def test_every_rendered_object_is_valid_for_the_official_kubernetes_schemas(changes):
    for obj in render(app(**changes), namespace="shop-staging"):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_deployment_runs_the_releases_image_with_its_replicas_and_port():
    objects = render()
    main = container(objects)

    assert main["image"] == "registry.example.com/shop/api:1.4.0"
    assert objects[0]["spec"]["replicas"] == 3
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_secret_variables_are_references_to_the_apps_secret_and_their_values_never_rendered():
    objects = render()
    variables = {v["name"]: v for v in container(objects)["env"]}

    assert variables["DB_PASSWORD"] == {"name": "DB_PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": "api-secrets", "key": "DB_PASSWORD"}}}
    assert secret_name("api") == "api-secrets"
    assert SECRET not in render_yaml(objects)


def test_a_value_that_no_manifest_declares_is_never_rendered():
    leaky = AppDeployment(app="api", image="x:1", version="1", spec=app().spec,
                          env={"UNDECLARED_TOKEN": SECRET})

    assert SECRET not in render_yaml(render(leaky))


def test_plain_variables_carry_the_environments_value_in_declaration_order():
    variables = container(render())["env"]

    assert [v["name"] for v in variables] == [
        "INFRASTREAM_APP", "INFRASTREAM_VERSION", "INFRASTREAM_ENVIRONMENT", "PORT",
        "LOG_LEVEL", "DB_PASSWORD", "FEATURE_FLAGS"]
    assert {"name": "LOG_LEVEL", "value": "debug"} in variables
    assert {"name": "FEATURE_FLAGS"} in variables
    assert {"name": "PORT", "value": "8080"} in variables


def test_probes_call_the_health_check_and_its_timeout_bounds_the_rollout():
    objects = render()
    main = container(objects)

    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["startupProbe"]["periodSeconds"] * main["startupProbe"]["failureThreshold"] == 90
    assert objects[0]["spec"]["progressDeadlineSeconds"] == 90
    other_port = container(render(app(healthCheck={"path": "/ready", "port": 9090})))
    assert other_port["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 9090}


def test_labels_and_annotations_name_the_app_set_and_environment_but_not_the_release():
    for obj in render():
        metadata = obj["metadata"]
        assert metadata["labels"] == {
            "app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api-staging",
            "app.kubernetes.io/version": "1.4.0", "app.kubernetes.io/part-of": "shop",
            "app.kubernetes.io/managed-by": "infrastream"}
        assert metadata["annotations"] == {"infrastream.dev/environment": "staging"}
        assert "namespace" not in metadata


def test_a_namespace_is_set_only_when_asked_for():
    assert {o["metadata"]["namespace"] for o in render(namespace="shop-prod")} == {"shop-prod"}


def test_versions_that_are_not_valid_label_values_are_made_valid():
    assert label_value("1.2.3+build.7") == "1.2.3-build.7"
    long = label_value("v" * 80)
    assert len(long) <= 63 and long == label_value("v" * 80) != label_value("v" * 81)
    objects = render(app(version="1.2.3+build.7"))
    kubernetes_validate.validate(objects[0], K8S_VERSION, strict=True)
    assert container(objects)["image"].endswith(":1.2.3+build.7")


def test_rendered_objects_share_no_mutable_parts():
    objects = render()

    objects[0]["metadata"]["labels"]["extra"] = "x"

    assert "extra" not in objects[1]["metadata"]["labels"]
    assert "extra" not in objects[0]["spec"]["template"]["metadata"]["labels"]


def test_what_was_rendered_can_be_read_back_from_the_yaml():
    documents = list(yaml.safe_load_all(render_yaml(render())))

    deployed = describe_deployment(documents[0])

    assert deployed is not None
    assert (deployed.app, deployed.version, deployed.image, deployed.environment) == (
        "api", "1.4.0", "registry.example.com/shop/api:1.4.0", "staging")
    assert describe_deployment(documents[1]) is None
