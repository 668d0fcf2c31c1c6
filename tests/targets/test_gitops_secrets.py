"""Secret values reach a gitops environment's cluster without ever going to Git.

Each environment says how: an ExternalSecret rendered beside the application (the External
Secrets Operator fetches the values from the store it names), or a direct server-side apply
of `<app>-secrets` to the cluster. Without a route, `secret_route` says so, with the hint
the service layer prints when it refuses `secret set`.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infrastream.manifests import ApplicationSpec, Environment
from infrastream.manifests.environment import SecretRoute, default_environment, secret_route
from infrastream.targets.base import AppDeployment, DeployRequest
from infrastream.targets.gitops import GitOpsTarget

NAMESPACE = "shop-prod"
SECRET = "hunter2-never-in-git"
SPEC = ApplicationSpec.model_validate({
    "image": "registry.example.com/shop/api", "port": 8080,
    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "secret": True},
            {"name": "API_KEY", "secret": True}]})


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def git(remote: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=remote, capture_output=True, text=True,
                          check=True).stdout


def environment(remote: Path | str, kind: str = "gitops", **settings: Any) -> Environment:
    target = {"type": kind, "repo": str(remote), **settings} if kind == "gitops" else {
        "type": kind, **settings}
    return Environment.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "Environment",
        "metadata": {"name": "staging"}, "spec": {"target": target}})


def release(env: Environment, number: int, *names: str, prune: bool = False) -> DeployRequest:
    apps = tuple(AppDeployment(app=n, image=f"registry.example.com/shop/{n}:1", version="1",
                               spec=SPEC, env={"DB_PASSWORD": SECRET, "API_KEY": SECRET + "2"},
                               secret_names=frozenset({"DB_PASSWORD", "API_KEY"}))
                 for n in names)
    return DeployRequest(key=f"{number}/staging/1", release=f"shop/v{number}",
                         digest=f"sha256:{number:064x}", environment=env, apps=apps,
                         workdir=Path("."), actor="rita", prune=prune)


def test_an_external_secret_names_the_store_and_key_and_no_value_goes_to_git(tmp_path, remote):
    env = environment(remote, secrets={"externalSecret": {
        "secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
        "remoteKey": "shop/{environment}/{app}"}})

    GitOpsTarget(tmp_path / "data").deploy(release(env, 1, "api"))

    documents = list(yaml.safe_load_all(git(remote, "show", "main:envs/staging/api.yaml")))
    external = next(d for d in documents if d["kind"] == "ExternalSecret")
    assert external["apiVersion"] == "external-secrets.io/v1"
    assert external["metadata"]["name"] == "api-secrets"
    assert external["spec"]["secretStoreRef"] == {"name": "vault", "kind": "ClusterSecretStore"}
    assert external["spec"]["target"] == {"name": "api-secrets", "creationPolicy": "Owner"}
    assert external["spec"]["data"] == [
        {"secretKey": "DB_PASSWORD", "remoteRef": {"key": "shop/staging/api",
                                                   "property": "DB_PASSWORD"}},
        {"secretKey": "API_KEY", "remoteRef": {"key": "shop/staging/api",
                                               "property": "API_KEY"}}]
    for document in documents:
        if document["kind"] != "ExternalSecret":  # no official schema for the CRD
            kubernetes_validate.validate(document, "1.30.0", strict=True)
    assert SECRET not in git(remote, "log", "-p", "--all")


def test_the_cluster_route_applies_the_secret_by_ssa_and_prunes_it_with_the_app(
        tmp_path, remote, cluster, kubeconfig):
    env = environment(remote, secrets={"cluster": {"namespace": NAMESPACE,
                                                   "context": "emulator"}})
    target = GitOpsTarget(tmp_path / "data")

    target.deploy(release(env, 1, "api", "web"))

    secret = cluster.get("secrets", NAMESPACE, "api-secrets")
    assert secret is not None
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]).decode() == SECRET
    assert secret["metadata"]["managedFields"][0]["manager"] == "infrastream"
    assert SECRET not in git(remote, "log", "-p", "--all")
    assert "kind: Secret\n" not in git(remote, "log", "-p", "--all")

    target.deploy(release(env, 2, "api", prune=True))
    assert cluster.get("secrets", NAMESPACE, "web-secrets") is None
    assert cluster.get("secrets", NAMESPACE, "api-secrets") is not None

    target.teardown(env)
    assert cluster.get("secrets", NAMESPACE, "api-secrets") is None


@pytest.mark.parametrize(("settings", "route", "hint"), [
    ({}, SecretRoute.NONE, "has no route for secret values"),
    ({"secrets": {"cluster": {"namespace": "shop"}}}, SecretRoute.STORED,
     "applied as Secret `<app>-secrets` in namespace shop"),
    ({"secrets": {"externalSecret": {"secretStoreRef": {"name": "vault"}}}},
     SecretRoute.EXTERNAL, "takes secret values from the SecretStore `vault`"),
], ids=["no-route", "cluster", "external-secret"])
def test_a_gitops_environment_says_whether_secret_values_reach_it(settings, route, hint):
    delivery = secret_route(environment("git@example.com:shop/gitops.git", **settings))

    assert delivery.route is route and hint in delivery.how
    assert delivery.accepts_values is (route is SecretRoute.STORED)


def test_the_refusal_for_a_gitops_environment_without_a_route_says_how_to_configure_one():
    how = secret_route(environment("git@example.com:shop/gitops.git")).how

    assert "secrets: {cluster: {namespace: NS, context: CTX}}" in how
    assert "externalSecret" in how and "never go to Git" in how


def test_local_and_kubernetes_environments_receive_stored_values():
    assert secret_route(default_environment("dev")).accepts_values
    assert secret_route(environment("", "kubernetes", namespace="shop")).accepts_values


def test_a_gitops_target_takes_one_secret_route_and_one_agent():
    with pytest.raises(ValueError, match="exactly one of"):
        environment("r", secrets={"cluster": {"namespace": "a"},
                                  "externalSecret": {"secretStoreRef": {"name": "v"}}})
    with pytest.raises(ValueError, match="one GitOps agent"):
        environment("r", argocd={"application": "a"}, flux={"kustomization": "b"})
