"""The kubernetes target applies rendered objects to an API server emulated on loopback."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
from k8s_emulator import SCHEMA_VERSION, KubernetesEmulator, rolled_out, write_kubeconfig

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets import kubeconfig
from infrastream.targets.base import AppDeployment, DeployRequest, Health
from infrastream.targets.kubernetes import KubernetesTarget
from infrastream.targets.registry import TargetRegistry
from infrastream.targets.rollout import rollout_state

NAMESPACE = "shop-prod"
SECRET = "hunter2-only-in-the-secret"
SPEC: dict[str, Any] = {
    "image": "registry.example.com/shop/api", "port": 8080, "replicas": 2,
    "healthCheck": {"path": "/healthz", "timeout": "5s"},
    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "secret": True}]}


@pytest.fixture
def target(tmp_path: Path, kubeconfig: Path) -> KubernetesTarget:
    return KubernetesTarget(tmp_path)


def environment(name: str = "production", namespace: str = NAMESPACE,
                context: str | None = "emulator", **settings: Any) -> Environment:
    return Environment.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "Environment", "metadata": {"name": name},
        "spec": {"tier": "production", "target": {
            "type": "kubernetes", "namespace": namespace, "context": context, **settings}}})


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


def merge_patch(cluster: KubernetesEmulator, path: str, body: dict[str, Any],
                manager: str = "kubectl-edit") -> httpx.Response:
    return httpx.patch(f"{cluster.url}{path}", params={"fieldManager": manager}, json=body,
                       headers={"Content-Type": "application/merge-patch+json",
                                "Authorization": f"Bearer {cluster.token}"})


def test_a_release_is_applied_server_side_and_its_rollout_is_watched(target, cluster):
    cluster.rollout_delay = None  # the controller reports only once the target watches
    watching = threading.Event()

    def controller() -> None:
        deadline = time.monotonic() + 30
        while not any(m == "WATCH" for m, _ in cluster.requests):
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        watching.set()
        cluster.roll_out_deployments()

    threading.Thread(target=controller, daemon=True).start()
    result = target.deploy(release(1, app("api", "1.0.0"), app("web", "2.0.0", port=None)))

    assert watching.is_set()  # it returned only after the controller reported
    assert result.healthy and result.message == (
        "applied deployment/api, service/api, deployment/web, secret/api-secrets, "
        "secret/web-secrets, configmap/infrastream-release-production")
    assert {json.dumps(q, sort_keys=True) for q in cluster.applies} == {
        '{"fieldManager": "infrastream", "force": "true"}'}
    assert image(cluster, "web") == "registry.example.com/shop/web:2.0.0"
    assert [(s.app, s.version, s.health) for s in result.apps] == [
        ("api", "1.0.0", Health.HEALTHY), ("web", "2.0.0", Health.HEALTHY)]
    watched = [path for method, path in cluster.requests if method == "WATCH"]
    assert watched and all(p.endswith("/deployments") for p in watched)
    polled = [p for m, p in cluster.requests if m == "GET" and p.endswith("/deployments/api")]
    assert len(polled) <= 2  # one read before the apply, one before the watch: no polling


def test_every_object_the_emulator_stores_is_valid_for_the_official_schemas(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "2.0.0")))
    merge_patch(cluster, f"/api/v1/namespaces/{NAMESPACE}/services/api",
                {"metadata": {"labels": {"team": "payments"}}})

    assert {kind for kind, _, _ in cluster.objects} == {
        "deployments", "services", "secrets", "configmaps"}
    for obj in cluster.objects.values():  # as stored: defaults, managedFields and status
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        assert obj["metadata"]["managedFields"][0]["manager"] == "infrastream"


def test_the_server_defaults_what_we_leave_out_and_we_own_only_what_we_apply(target, cluster):
    target.deploy(release(1, app("api", "1.0.0")))

    deployment = cluster.get("deployments", NAMESPACE, "api")
    assert deployment is not None
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["revisionHistoryLimit"] == 10
    (managed,) = deployment["metadata"]["managedFields"]
    assert (managed["manager"], managed["operation"]) == ("infrastream", "Apply")
    assert "f:replicas" in managed["fieldsV1"]["f:spec"]
    assert "f:strategy" not in managed["fieldsV1"]["f:spec"]  # defaulted, owned by no one
    service = cluster.get("services", NAMESPACE, "api")
    assert service is not None and service["spec"]["clusterIP"].startswith("10.96.")


def test_redeploying_the_same_release_changes_no_object(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    before = versions(cluster)

    again = target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))

    assert again.message == "already deployed" and again.healthy
    assert versions(cluster) == before


def test_a_label_another_field_manager_added_survives_our_next_apply(target, cluster):
    target.deploy(release(1, app("api", "1.0.0")))
    labelled = merge_patch(cluster, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api",
                           {"metadata": {"labels": {"cost-center": "shop-42"},
                                         "annotations": {"oncall": "team-shop"}}},
                           manager="kubectl-label")
    assert labelled.status_code == 200

    target.deploy(release(2, app("api", "1.1.0")))

    deployment = cluster.get("deployments", NAMESPACE, "api")
    assert deployment is not None
    assert deployment["metadata"]["labels"]["cost-center"] == "shop-42"
    assert deployment["metadata"]["annotations"]["oncall"] == "team-shop"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.1.0"
    managers = {m["manager"]: m for m in deployment["metadata"]["managedFields"]}
    assert "f:cost-center" in managers["kubectl-label"]["fieldsV1"]["f:metadata"]["f:labels"]
    assert "f:cost-center" not in managers["infrastream"]["fieldsV1"]["f:metadata"]["f:labels"]


def test_a_hand_edit_of_a_field_we_own_is_taken_back_by_the_next_deployment(target, cluster):
    target.deploy(release(1, app("api", "1.0.0")))
    merge_patch(cluster, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api",
                {"spec": {"replicas": 5}})

    result = target.deploy(release(1, app("api", "1.0.0")))

    deployment = cluster.get("deployments", NAMESPACE, "api")
    assert deployment is not None and deployment["spec"]["replicas"] == 2
    assert result.message == "applied deployment/api"


def test_an_apply_that_is_not_forced_conflicts_on_a_field_another_manager_owns(target, cluster):
    target.deploy(release(1, app("api", "1.0.0")))
    merge_patch(cluster, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api",
                {"spec": {"replicas": 5}}, manager="hpa-controller")
    ours = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": NAMESPACE}, "spec": {"replicas": 3}}

    refused = httpx.patch(
        f"{cluster.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api",
        params={"fieldManager": "someone"}, content=json.dumps(ours),
        headers={"Content-Type": "application/apply-patch+yaml",
                 "Authorization": f"Bearer {cluster.token}"})

    assert refused.status_code == 409
    assert refused.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "hpa-controller": .spec.replicas')


def test_secret_values_arrive_in_the_apps_secret_by_server_side_apply_and_nowhere_else(
        target, cluster):
    result = target.deploy(release(1, app("api", "1.0.0")))

    secret = cluster.get("secrets", NAMESPACE, "api-secrets")
    assert secret is not None and secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]).decode() == SECRET
    assert secret["metadata"]["managedFields"][0]["manager"] == "infrastream"
    others = [o for (kind, _, _), o in cluster.objects.items() if kind != "secrets"]
    assert SECRET not in json.dumps(others)
    assert SECRET not in result.message and SECRET not in repr(result)
    assert '"secretKeyRef": {"key": "DB_PASSWORD", "name": "api-secrets"}' in json.dumps(
        cluster.get("deployments", NAMESPACE, "api"), sort_keys=True)


def test_a_key_someone_else_provisioned_in_the_secret_is_kept(target, cluster):
    without_value = AppDeployment(app="api", image="registry.example.com/shop/api:1",
                                  version="1", spec=app("api", "1").spec)
    target.deploy(release(1, without_value))
    merge_patch(cluster, f"/api/v1/namespaces/{NAMESPACE}/secrets/api-secrets",
                {"data": {"DB_PASSWORD": base64.b64encode(b"from-vault").decode()}},
                manager="vault-agent")

    target.deploy(release(2, without_value))

    secret = cluster.get("secrets", NAMESPACE, "api-secrets")
    assert secret is not None
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]) == b"from-vault"


def test_a_release_that_changes_one_app_touches_only_that_apps_objects(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    generation = cluster.objects["deployments", NAMESPACE, "api"]["metadata"]["generation"]
    web = cluster.objects["deployments", NAMESPACE, "web"]["metadata"]["resourceVersion"]

    result = target.deploy(release(2, app("api", "1.1.0"), app("web", "1.0.0")))

    assert result.message == ("applied deployment/api, service/api, "
                              "configmap/infrastream-release-production")
    deployment = cluster.objects["deployments", NAMESPACE, "api"]
    assert deployment["metadata"]["generation"] == generation + 1
    assert deployment["status"]["observedGeneration"] == generation + 1
    assert cluster.objects["deployments", NAMESPACE, "web"]["metadata"]["resourceVersion"] == (
        web)
    record = cluster.get("configmaps", NAMESPACE, "infrastream-release-production")
    assert record is not None and record["data"]["release"] == "shop/v2"


def test_pruning_deletes_only_this_sets_objects_that_left_the_release(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    target.deploy(release(1, app("billing", "1"), app_set="payments"))  # another set
    target.deploy(release(1, app("search", "1"), env=environment("canary")))  # another env

    kept = target.deploy(release(2, app("api", "1.1.0")))
    assert ("deployments", NAMESPACE, "web") in cluster.objects  # no prune asked

    pruned = target.deploy(release(2, app("api", "1.1.0"), prune=True))

    assert pruned.message == ("applied configmap/infrastream-release-production; pruned "
                              "deployment/web, service/web, secret/web-secrets")
    assert kept.healthy and ("deployments", NAMESPACE, "web") not in cluster.objects
    assert ("secrets", NAMESPACE, "web-secrets") not in cluster.objects
    assert ("deployments", NAMESPACE, "billing") in cluster.objects
    assert ("secrets", NAMESPACE, "billing-secrets") in cluster.objects
    assert ("deployments", NAMESPACE, "search") in cluster.objects


def test_status_reports_what_runs_and_shows_a_hand_edit(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    deployment = cluster.get("deployments", NAMESPACE, "api")
    assert deployment is not None
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "registry.example.com/shop/api:debug"
    edited = merge_patch(cluster, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api",
                         {"spec": {"template": {"spec": {"containers": containers}}}})
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


def test_the_environment_says_how_infrastream_reaches_each_app(target, cluster):
    env = environment(endpoints={"urlTemplate": "https://{app}.{namespace}.example.com",
                                 "apps": {"web": "https://www.example.com"}})

    deployed = target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0"), env=env))

    assert [s.endpoint for s in deployed.apps] == [
        f"https://api.{NAMESPACE}.example.com", "https://www.example.com"]
    assert {s.app: s.endpoint for s in target.status(env)} == {
        "api": f"https://api.{NAMESPACE}.example.com", "web": "https://www.example.com"}


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
    config = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, {"token": "expired"})
    wrong = KubernetesTarget(tmp_path, resolve=lambda context: kubeconfig.from_kubeconfig(
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
    config = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}",
                              {"token": "t"})
    gone = KubernetesTarget(tmp_path, resolve=lambda context: kubeconfig.from_kubeconfig(
        "emulator", [config]))

    with pytest.raises(TransientError):
        gone.deploy(release(1, app("api", "1.0.0")))


def test_teardown_removes_this_environments_objects_only(target, cluster):
    target.deploy(release(1, app("api", "1.0.0"), app("web", "1.0.0")))
    target.deploy(release(1, app("api", "1.0.0"), env=environment("canary", "other-team")))

    target.teardown(PRODUCTION)

    assert sorted(cluster.objects) == [
        ("configmaps", "other-team", "infrastream-release-canary"),
        ("deployments", "other-team", "api"), ("secrets", "other-team", "api-secrets"),
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
    ({"observedGeneration": 1, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": "timed out"}]}, 2,
     (Health.PROGRESSING, "waiting for the controller to see generation 2")),
], ids=["unobserved", "updating", "old-pods", "unavailable", "complete", "deadline",
        "stale-deadline"])
def test_a_rollout_is_judged_as_kubectl_judges_it(status, generation, expected):
    deployment = {"metadata": {"generation": generation}, "spec": {"replicas": 2},
                  "status": status}

    assert rollout_state(deployment) == expected


def test_the_registry_serves_the_kubernetes_target(tmp_path):
    assert isinstance(TargetRegistry(tmp_path).get_target("kubernetes"), KubernetesTarget)
