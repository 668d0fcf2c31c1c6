"""The kubernetes target applies rendered objects to an API server emulated on loopback."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from k8s_emulator import KubernetesEmulator, rolled_out

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets import kubeconfig
from infrastream.targets.base import AppDeployment, DeployRequest, Health
from infrastream.targets.kubernetes import KubernetesTarget, rollout_state
from infrastream.targets.registry import TargetRegistry

K8S_VERSION = "1.30.0"
NAMESPACE = "shop-prod"
SECRET = "hunter2-never-in-the-cluster"
SPEC: dict[str, Any] = {
    "image": "registry.example.com/shop/api", "port": 8080, "replicas": 2,
    "healthCheck": {"path": "/healthz", "timeout": "5s"},
    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "secret": True}]}


@pytest.fixture
def cluster() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespaces={NAMESPACE, "other-team"}).start()
    yield emulator
    emulator.stop()


def write_kubeconfig(path: Path, server: str, token: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulated", "cluster": {"server": server}}],
        "users": [{"name": "deployer", "user": {"token": token}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulated",
                                                      "user": "deployer"}}]}))
    return path


@pytest.fixture
def target(tmp_path: Path, cluster: KubernetesEmulator,
           monkeypatch: pytest.MonkeyPatch) -> KubernetesTarget:
    config = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, cluster.token)
    monkeypatch.setenv("KUBECONFIG", str(config))
    return KubernetesTarget(tmp_path, poll_interval=0.02)


def environment(name: str = "production", namespace: str = NAMESPACE,
                context: str | None = "emulator") -> Environment:
    return Environment.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "Environment", "metadata": {"name": name},
        "spec": {"tier": "production", "target": {
            "type": "kubernetes", "namespace": namespace, "context": context}}})


PRODUCTION = environment()


def app(name: str, version: str, **changes: Any) -> AppDeployment:
    spec = ApplicationSpec.model_validate({**SPEC, **changes})
    return AppDeployment(app=name, image=f"registry.example.com/shop/{name}:{version}",
                         version=version, spec=spec, env={"DB_PASSWORD": SECRET},
                         secret_names=frozenset({"DB_PASSWORD"}))


def release(number: int, *apps: AppDeployment, prune: bool = False,
            env: Environment = PRODUCTION, app_set: str = "shop") -> DeployRequest:
    return DeployRequest(key=f"{number}/{env.metadata.name}/1", release=f"{app_set}/v{number}",
                         digest=f"sha256:{number:064x}", environment=env, apps=apps,
                         workdir=Path("."), actor="rita", prune=prune)


def versions(cluster: KubernetesEmulator) -> dict[tuple[str, str, str], str]:
    return {key: obj["metadata"]["resourceVersion"] for key, obj in cluster.objects.items()}


def image(cluster: KubernetesEmulator, name: str) -> str:
    deployment = cluster.get("deployments", NAMESPACE, name)
    assert deployment is not None
    found: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return found


def test_a_release_is_applied_server_side_and_waits_for_the_rollout(target, cluster):
    cluster.rollout_delay = 0.3
    started = time.monotonic()

    result = target.deploy(release(1, app("api", "1.0.0"), app("web", "2.0.0", port=None)))

    assert time.monotonic() - started >= 0.3  # it waited for the controller
    assert result.healthy and result.message == "applied deployment/api, service/api, " \
        "deployment/web"
    assert sorted(cluster.objects) == [("deployments", NAMESPACE, "api"),
                                       ("deployments", NAMESPACE, "web"),
                                       ("services", NAMESPACE, "api")]
    assert {json.dumps(q, sort_keys=True) for q in cluster.applies} == {
        '{"fieldManager": "infrastream", "force": "true"}'}
    assert image(cluster, "web") == "registry.example.com/shop/web:2.0.0"
    assert [(s.app, s.version, s.health) for s in result.apps] == [
        ("api", "1.0.0", Health.HEALTHY), ("web", "2.0.0", Health.HEALTHY)]


def test_every_applied_object_is_valid_for_the_official_kubernetes_schemas(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "2.0.0")))

    for obj in cluster.objects.values():
        applied = {k: v for k, v in obj.items() if k != "status"}
        applied["metadata"] = {k: v for k, v in obj["metadata"].items()
                               if k in ("name", "namespace", "labels", "annotations")}
        kubernetes_validate.validate(applied, K8S_VERSION, strict=True)


def test_redeploying_the_same_release_changes_no_object(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    before = versions(cluster)

    again = target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))

    assert again.message == "already deployed" and again.healthy
    assert versions(cluster) == before


def test_secret_values_never_reach_the_cluster(target, cluster):
    target.deploy(release(1, app("api", "1.0.0")))

    stored = json.dumps(list(cluster.objects.values()), sort_keys=True)
    assert SECRET not in stored
    assert '"secretKeyRef": {"key": "DB_PASSWORD", "name": "api-secrets"}' in stored


def test_a_new_version_rolls_out_and_reports_what_changed(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    generation = cluster.objects["deployments", NAMESPACE, "api"]["metadata"]["generation"]

    result = target.deploy(release(2, app("api", "1.1.0"), app("web", "1.0.0")))

    # every object now names release v2; only api's pods change
    assert result.message == "applied deployment/api, service/api, deployment/web, service/web"
    deployment = cluster.objects["deployments", NAMESPACE, "api"]
    assert deployment["metadata"]["generation"] == generation + 1
    assert deployment["status"]["observedGeneration"] == generation + 1
    assert cluster.objects["deployments", NAMESPACE, "web"]["metadata"]["generation"] == (
        generation)


def test_pruning_deletes_only_this_sets_objects_that_left_the_release(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    target.deploy(release(1, app("billing", "1"), app_set="payments"))  # another set
    target.deploy(release(1, app("search", "1"), env=environment("canary")))  # another env

    kept = target.deploy(release(2, app("api", "1.1.0")))
    assert ("deployments", NAMESPACE, "web") in cluster.objects  # no prune asked

    pruned = target.deploy(release(2, app("api", "1.1.0"), prune=True))

    assert pruned.message == "pruned deployment/web, service/web"
    assert kept.healthy and ("deployments", NAMESPACE, "web") not in cluster.objects
    assert ("services", NAMESPACE, "web") not in cluster.objects
    assert ("deployments", NAMESPACE, "billing") in cluster.objects
    assert ("deployments", NAMESPACE, "search") in cluster.objects


def test_status_reports_what_runs_and_shows_a_hand_edit(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    deployment = cluster.get("deployments", NAMESPACE, "api")
    assert deployment is not None
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "registry.example.com/shop/api:debug"
    edited = httpx.patch(
        f"{cluster.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api",
        json={"spec": {"template": {"spec": {"containers": containers}}}},
        headers={"Content-Type": "application/merge-patch+json",
                 "Authorization": f"Bearer {cluster.token}"})
    assert edited.status_code == 200

    statuses = {s.app: s for s in target.status(PRODUCTION)}

    assert statuses["api"].image == "registry.example.com/shop/api:debug"
    assert statuses["api"].version == "1.0.0" and statuses["api"].release == "shop/v1"
    assert statuses["web"].image == "registry.example.com/shop/web:1.0.0"
    assert statuses["web"].health is Health.HEALTHY
    assert statuses["web"].endpoint == f"http://web.{NAMESPACE}.svc:8080"
    restored = target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    assert restored.message == "applied deployment/api"
    assert image(cluster, "api") == "registry.example.com/shop/api:1.0.0"


def test_a_failed_rollout_reports_the_clusters_reason(target, cluster):
    def stuck(deployment: dict[str, Any]) -> dict[str, Any]:
        return {**rolled_out(deployment), "availableReplicas": 0, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": 'ReplicaSet "api-7d9c" has timed out progressing.'},
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."}]}
    cluster.controller = stuck

    with pytest.raises(PermanentError, match=r'api: rollout failed: .*"api-7d9c" has timed out'):
        target.deploy(release(1, app("api", "1.0.0")))


def test_a_rollout_that_never_finishes_times_out_saying_where_it_stands(target, cluster):
    cluster.rollout_delay = None  # no controller ever answers

    with pytest.raises(PermanentError, match=r"did not finish within 1s: waiting for the "
                       r"controller to see generation 1"):
        target.deploy(release(1, app("api", "1.0.0", healthCheck={"timeout": "1s"})))


def test_server_errors_and_conflicts_are_transient(target, cluster):
    cluster.inject("PATCH", 500, "etcdserver: request timed out")
    with pytest.raises(TransientError, match="500 etcdserver: request timed out"):
        target.deploy(release(1, app("api", "1.0.0")))

    cluster.inject("PATCH", 409, "Operation cannot be fulfilled: the object has been modified")
    with pytest.raises(TransientError, match="409 Operation cannot be fulfilled"):
        target.deploy(release(1, app("api", "1.0.0")))

    assert target.deploy(release(1, app("api", "1.0.0"))).healthy  # and then it goes through


@pytest.mark.parametrize(("code", "message"), [
    (403, 'deployments.apps "api" is forbidden: User "deployer" cannot patch resource'),
    (422, 'Deployment.apps "api" is invalid: spec.template.spec.containers[0].image: Required'),
])
def test_refusals_and_rejected_objects_fail_with_the_apis_message(target, cluster, code,
                                                                   message):
    cluster.inject("PATCH", code, message)

    with pytest.raises(PermanentError, match=f"{code} .*{message[:20]}"):
        target.deploy(release(1, app("api", "1.0.0")))


def test_a_wrong_token_is_a_permanent_error(tmp_path, cluster):
    config = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, "stolen-or-expired")
    wrong = KubernetesTarget(tmp_path, resolve=lambda s: kubeconfig.from_kubeconfig(
        "emulator", [config]))

    with pytest.raises(PermanentError, match="401 Unauthorized"):
        wrong.deploy(release(1, app("api", "1.0.0")))


def test_a_missing_namespace_is_a_permanent_error(target, cluster):
    with pytest.raises(PermanentError, match='namespaces "nowhere" not found'):
        target.deploy(release(1, app("api", "1.0.0"), env=environment(namespace="nowhere")))


def test_an_unreachable_api_server_is_a_transient_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}", "t")
    gone = KubernetesTarget(tmp_path, resolve=lambda s: kubeconfig.from_kubeconfig(
        "emulator", [config]))

    with pytest.raises(TransientError):
        gone.deploy(release(1, app("api", "1.0.0")))


def test_teardown_removes_this_environments_objects_only(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    target.deploy(release(1, app("api", "1.0.0"), env=environment("canary", "other-team")))

    target.teardown(PRODUCTION)

    assert list(cluster.objects) == [("deployments", "other-team", "api"),
                                     ("services", "other-team", "api")]
    assert target.status(PRODUCTION) == ()


@pytest.mark.parametrize(("status", "generation", "expected"), [
    ({}, 1, (Health.PROGRESSING, "waiting for the controller to see generation 1")),
    ({"observedGeneration": 1, "updatedReplicas": 1, "replicas": 1}, 1,
     (Health.PROGRESSING, "1/2 replicas updated")),
    ({"observedGeneration": 1, "updatedReplicas": 2, "replicas": 3}, 1,
     (Health.PROGRESSING, "1 old replicas are pending termination")),
    ({"observedGeneration": 1, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}, 1,
     (Health.PROGRESSING, "1/2 updated replicas available")),
    ({"observedGeneration": 1, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}, 1,
     (Health.HEALTHY, "2/2 replicas available (generation 1)")),
    ({"observedGeneration": 1, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": "timed out"}]}, 1, (Health.DEGRADED, "Progressing: timed out")),
], ids=["unobserved", "updating", "old-pods", "unavailable", "complete", "deadline"])
def test_a_rollout_is_judged_as_kubectl_judges_it(status, generation, expected):
    deployment = {"metadata": {"generation": generation}, "spec": {"replicas": 2},
                  "status": status}

    assert rollout_state(deployment) == expected


def test_a_kubeconfig_context_gives_the_server_credentials_and_ca(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs/token").write_text("from-a-file\n")
    (tmp_path / "second").write_text(yaml.safe_dump({
        "clusters": [{"name": "prod", "cluster": {
            "server": "https://k8s.example.com:6443/",
            "certificate-authority-data": base64.b64encode(b"PEM").decode()}}],
        "users": [{"name": "bot", "user": {"tokenFile": "certs/token"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "bot"}}]}))

    config = kubeconfig.resolve("prod", {"KUBECONFIG": f"{tmp_path / 'absent'}:"
                                                       f"{tmp_path / 'second'}"})

    assert config.server == "https://k8s.example.com:6443"
    assert config.ca_pem == "PEM" and config.bearer_token() == "from-a-file"


def test_an_unknown_context_names_the_known_ones(tmp_path):
    config = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1", "t")

    with pytest.raises(PermanentError, match=r"context `prod` not found .*contexts: emulator"):
        kubeconfig.from_kubeconfig("prod", [config])


def test_exec_plugins_are_refused_with_a_hint(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://k8s.example.com"}}],
        "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}],
        "contexts": [{"name": "eks", "context": {"cluster": "c", "user": "u"}}]}))

    with pytest.raises(PermanentError, match=r"exec plugin .* give it a token"):
        kubeconfig.from_kubeconfig("eks", [path])


def test_without_a_context_the_pods_service_account_is_used(tmp_path):
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_text("PEM")

    config = kubeconfig.in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                    "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)

    assert config.server == "https://10.96.0.1:443"
    assert config.bearer_token() == "pod-token" and config.ca_file == tmp_path / "ca.crt"
    with pytest.raises(PermanentError, match="not running in a cluster"):
        kubeconfig.resolve(None, {})
    with pytest.raises(PermanentError, match="not running in a cluster"):
        kubeconfig.resolve("in-cluster", {"KUBECONFIG": "/nonexistent"})


def test_the_registry_serves_the_kubernetes_target(tmp_path):
    assert isinstance(TargetRegistry(tmp_path).get_target("kubernetes"), KubernetesTarget)
