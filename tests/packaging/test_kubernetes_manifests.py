"""The Kubernetes manifests of Infrastream itself (deploy/kubernetes) and its Dockerfile.

The kustomization is rendered the way `kubectl apply -k` renders it (its resources, with its
namespace and image set), every object is validated against the official schemas of two
Kubernetes versions, and the pod is checked against the Pod Security "restricted" rules that
can be checked without a cluster. The Dockerfile is checked against what the manifests expect
of the image (user, port, data directory, probes).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_steps import ROOT, exec_form, stages

DEPLOY = ROOT / "deploy" / "kubernetes"
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
SAFE_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                "persistentVolumeClaim", "projected", "secret"}


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def kustomization() -> dict[str, Any]:
    (document,) = _load(DEPLOY / "kustomization.yaml")
    return document


def render() -> list[dict[str, Any]]:
    """The objects `kubectl kustomize deploy/kubernetes` gives (which sorts them by kind):
    namespaced objects in the kustomization's namespace, container images set as it says."""
    config = kustomization()
    images = {i["name"]: f"{i.get('newName', i['name'])}:{i['newTag']}"
              for i in config.get("images", [])}
    objects: list[dict[str, Any]] = []
    for resource in config["resources"]:
        for obj in _load(DEPLOY / resource):
            if obj["kind"] != "Namespace" and "namespace" in config:
                obj["metadata"]["namespace"] = config["namespace"]
            for container in _containers(obj):
                name = container["image"].rsplit(":", 1)[0]
                container["image"] = images.get(name, container["image"])
            objects.append(obj)
    return objects


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


OBJECTS = render()
SECRET = one(_load(DEPLOY / "secret.example.yaml"), "Secret")
DEPLOYMENT = one(OBJECTS, "Deployment")
POD = DEPLOYMENT["spec"]["template"]
(CONTAINER,) = POD["spec"]["containers"]


def test_the_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization()["resources"]) == files - {"secret.example.yaml"}
    assert {o["kind"] for o in OBJECTS} == {"Namespace", "ServiceAccount", "ConfigMap",
                                            "Deployment", "Service", "PodDisruptionBudget"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("obj", [*OBJECTS, SECRET], ids=lambda o: f"{o['kind']}/"
                         f"{o['metadata']['name']}")
def test_every_object_validates_against_the_kubernetes_schema(obj: dict[str, Any],
                                                              version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


def test_a_misspelt_field_would_fail_the_schema_check() -> None:
    broken = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_every_object_is_in_the_namespace_and_labelled() -> None:
    for obj in OBJECTS:
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "infrastream"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "infrastream"
    namespace = one(OBJECTS, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_pod_meets_the_restricted_pod_security_standard() -> None:
    spec = POD["spec"]
    pod_security = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        assert spec.get(flag, flag == "hostUsers") is (flag == "hostUsers"), flag
    for volume in spec.get("volumes", []):
        assert set(volume) - {"name"} <= SAFE_VOLUMES, volume
    for container in _containers(DEPLOYMENT):
        context = container.get("securityContext", {})
        assert context.get("privileged", False) is False
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert set(context["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}
        assert context.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True
        assert context.get("runAsUser", pod_security.get("runAsUser")) != 0
        seccomp = context.get("seccompProfile", pod_security.get("seccompProfile"))
        assert seccomp["type"] in {"RuntimeDefault", "Localhost"}
        assert all("hostPort" not in port for port in container.get("ports", []))
        assert context["readOnlyRootFilesystem"] is True


def test_several_replicas_survive_a_drain_and_a_rolling_update() -> None:
    spec = DEPLOYMENT["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = one(OBJECTS, "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] < spec["replicas"]
    labels = POD["metadata"]["labels"]
    for selector in (spec["selector"]["matchLabels"], budget["selector"]["matchLabels"],
                     one(OBJECTS, "Service")["spec"]["selector"]):
        assert selector.items() <= labels.items()


def test_the_probes_ask_the_server_if_it_lives_and_is_ready() -> None:
    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    probes = {name: CONTAINER[name]["httpGet"] for name in
              ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {name: probe["path"] for name, probe in probes.items()} == {
        "startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
    assert all(probe["port"] in ports for probe in probes.values())
    service = one(OBJECTS, "Service")["spec"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]
    assert CONTAINER["args"] == ["serve", "--host", "0.0.0.0", "--port", str(ports["http"])]


def test_the_container_has_requests_and_limits() -> None:
    resources = CONTAINER["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_settings_come_from_the_config_map_and_keys_from_the_secret() -> None:
    config = one(OBJECTS, "ConfigMap")
    assert [s["configMapRef"]["name"] for s in CONTAINER["envFrom"]] == [
        config["metadata"]["name"]]
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in CONTAINER["env"]}
    assert set(from_secret) == {"INFRASTREAM_DATABASE_URL", "INFRASTREAM_SECRET_KEY",
                                "INFRASTREAM_SIGNING_KEY"}
    keys = set(SECRET["stringData"])
    for reference in from_secret.values():
        assert reference["name"] == SECRET["metadata"]["name"]
        assert reference["key"] in keys
    volumes = {v["name"]: v for v in POD["spec"]["volumes"]}
    mounted = {item["key"] for v in volumes.values() if "secret" in v
               for item in v["secret"]["items"]}
    assert mounted | set(from_secret) == keys  # every key of the secret is used
    assert all("CHANGE-ME" in value for value in SECRET["stringData"].values())


def test_the_data_directory_and_tmp_are_writable_volumes() -> None:
    settings = one(OBJECTS, "ConfigMap")["data"]
    volumes = {v["name"]: v for v in POD["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in CONTAINER["volumeMounts"]}
    for path in (settings["INFRASTREAM_DATA_DIR"], settings["TMPDIR"], settings["HOME"]):
        assert "emptyDir" in mounts[path], path
    session_key = mounts[settings["INFRASTREAM_DATA_DIR"] + "/portal-session.key"]
    assert session_key["secret"]["secretName"] == SECRET["metadata"]["name"]


# -- the image the manifests run --

STAGES = stages()
FINAL = STAGES[-1]


def test_the_kustomization_runs_the_image_of_this_version() -> None:
    assert CONTAINER["image"] == f"infrastream:{PROJECT['version']}"


def test_the_dockerfile_builds_the_wheel_then_installs_only_the_wheel() -> None:
    build, final = STAGES
    assert build.name and f"--from={build.name}" in final.one("COPY")
    assert build.run_with("pip wheel").split("&&")[0].strip().startswith(
        "python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .")
    install = final.run_with("pip install")
    assert "/wheels/infrastream-*.whl" in install and "[" not in install  # no extras: no dev
    assert final.base == build.base
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim(-\w+)?", final.base)
    assert match and (int(match[1]), int(match[2])) >= (3, 11)


def test_the_image_runs_serve_as_the_unprivileged_user_of_the_pod() -> None:
    user, _, group = FINAL.one("USER").partition(":")
    context = POD["spec"]["securityContext"]
    assert (int(user), int(group)) == (context["runAsUser"], context["runAsGroup"])
    assert int(user) != 0
    command = exec_form(FINAL.one("ENTRYPOINT")) + exec_form(FINAL.one("CMD"))
    assert command == ["infrastream", *CONTAINER["args"]]
    assert FINAL.one("EXPOSE") == str(CONTAINER["ports"][0]["containerPort"])
    assert "apt-get install --yes --no-install-recommends git" in FINAL.run_with("git")


def test_the_image_keeps_its_data_in_the_volume_the_pod_mounts() -> None:
    environment = dict(re.findall(r"(\w+)=(\S+)", FINAL.one("ENV")))
    data_dir = one(OBJECTS, "ConfigMap")["data"]["INFRASTREAM_DATA_DIR"]
    assert environment["INFRASTREAM_DATA_DIR"] == data_dir
    assert exec_form(FINAL.one("VOLUME")) == [data_dir]
