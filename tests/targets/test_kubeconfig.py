"""Kubeconfigs as platform teams write them reach the cluster: tokens, exec plugins, the
pod's own service account over TLS, several merged files."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from k8s_emulator import KubernetesEmulator, write_ca, write_kubeconfig

from infrastream.domain.errors import PermanentError
from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets import kubeconfig
from infrastream.targets.base import AppDeployment, DeployRequest
from infrastream.targets.kubernetes import KubernetesTarget

NAMESPACE = "shop-prod"


def request(context: str | None = "eks") -> DeployRequest:
    env = Environment.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "Environment",
        "metadata": {"name": "production"},
        "spec": {"target": {"type": "kubernetes", "namespace": NAMESPACE,
                            "context": context}}})
    spec = ApplicationSpec.model_validate({"image": "registry.example.com/shop/api"})
    api = AppDeployment(app="api", image="registry.example.com/shop/api:1", version="1",
                        spec=spec)
    return DeployRequest(key="1/production/1", release="shop/v1", digest="sha256:1",
                         environment=env, apps=(api,), workdir=Path("."))


def exec_plugin(directory: Path, token: str, api_version: str) -> Path:
    """A credential plugin like aws-iam-authenticator or kubelogin: prints an
    ExecCredential (and counts its runs)."""
    script = directory / "bin" / "get-token"
    script.parent.mkdir(exist_ok=True)
    credential = {"apiVersion": api_version, "kind": "ExecCredential",
                  "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}}
    script.write_text(f"#!{sys.executable}\n"
                      "import pathlib, sys\n"
                      f"runs = pathlib.Path({str(directory / 'runs')!r})\n"
                      "runs.write_text(str(int(runs.read_text() or 0) + 1) "
                      "if runs.exists() else '1')\n"
                      f"print({json.dumps(json.dumps(credential))})\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def tls_cluster() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespaces={NAMESPACE}, tls=True).start()
    yield emulator
    emulator.stop()


@pytest.mark.parametrize("api_version", ["client.authentication.k8s.io/v1beta1",
                                         "client.authentication.k8s.io/v1"])
def test_a_kubeconfig_whose_user_runs_an_exec_plugin_reaches_the_cluster(
        tmp_path, cluster, api_version):
    exec_plugin(tmp_path, cluster.token, api_version)
    config = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, {"exec": {
        "apiVersion": api_version, "command": "./bin/get-token",  # relative to the file
        "args": ["eks", "get-token"], "env": [{"name": "AWS_PROFILE", "value": "prod"}]}},
        context="eks")
    target = KubernetesTarget(tmp_path, resolve=lambda context: kubeconfig.resolve(
        context, {"KUBECONFIG": str(config)}))

    result = target.deploy(request())

    assert result.healthy
    assert cluster.get("deployments", NAMESPACE, "api") is not None
    assert int((tmp_path / "runs").read_text()) >= 1


def test_an_exec_plugin_that_fails_is_a_permanent_error_with_its_words(tmp_path, cluster):
    script = tmp_path / "broken"
    script.write_text("#!/bin/sh\necho 'the SSO session has expired; run aws sso login' >&2\n"
                      "exit 1\n")
    script.chmod(0o755)
    config = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(script)}})
    target = KubernetesTarget(tmp_path, resolve=lambda context: kubeconfig.from_kubeconfig(
        "emulator", [config]))

    with pytest.raises(PermanentError, match="SSO session has expired"):
        target.deploy(request())


def test_in_cluster_the_pods_service_account_is_used_over_verified_tls(tmp_path, tls_cluster):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(tls_cluster.token)
    write_ca(tls_cluster, account / "ca.crt")
    port = tls_cluster.url.rsplit(":", 1)[1]
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port}
    target = KubernetesTarget(tmp_path, resolve=lambda context: kubeconfig.in_cluster(
        environ, account))

    assert target.deploy(request(context=None)).healthy
    assert tls_cluster.url.startswith("https://")


def test_a_server_certificate_nobody_vouches_for_is_a_permanent_error(tmp_path, tls_cluster):
    config = write_kubeconfig(tmp_path / "kubeconfig", tls_cluster.url,
                              {"token": tls_cluster.token})
    target = KubernetesTarget(tmp_path, resolve=lambda context: kubeconfig.from_kubeconfig(
        "emulator", [config]))

    with pytest.raises(PermanentError, match="certificate is not trusted"):
        target.deploy(request())


def test_a_kubeconfig_context_gives_the_server_credentials_and_ca(tmp_path, tls_cluster):
    (tmp_path / "certs").mkdir()
    write_ca(tls_cluster, tmp_path / "certs" / "ca.crt")
    (tmp_path / "certs" / "token").write_text(tls_cluster.token + "\n")
    (tmp_path / "second").write_text(yaml.safe_dump({
        "clusters": [{"name": "prod", "cluster": {
            "server": tls_cluster.url, "certificate-authority": "certs/ca.crt"}}],
        "users": [{"name": "bot", "user": {"tokenFile": "certs/token"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "bot"}}]}))
    environ = {"KUBECONFIG": f"{tmp_path / 'absent'}:{tmp_path / 'second'}"}

    config = kubeconfig.resolve("prod", environ)
    target = KubernetesTarget(tmp_path, resolve=lambda context: kubeconfig.resolve(
        context, environ))

    assert config.cluster.server == tls_cluster.url
    assert target.deploy(request(context="prod")).healthy


def test_the_first_kubeconfig_file_wins_a_name_both_declare(tmp_path):
    first = write_kubeconfig(tmp_path / "first", "https://first.example.com", {"token": "a"})
    second = write_kubeconfig(tmp_path / "second", "https://second.example.com", {"token": "b"})

    config = kubeconfig.from_kubeconfig("emulator", [first, second])

    assert config.cluster.server == "https://first.example.com"


def test_an_unknown_context_names_the_known_ones(tmp_path):
    config = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1", {"token": "t"})

    with pytest.raises(PermanentError, match=r"context `prod` not found .*contexts: emulator"):
        kubeconfig.from_kubeconfig("prod", [config])


def test_an_auth_provider_is_refused_with_a_hint(tmp_path):
    config = write_kubeconfig(tmp_path / "kubeconfig", "https://k8s.example.com",
                              {"auth-provider": {"name": "gcp"}})

    with pytest.raises(PermanentError, match=r"auth provider.*use its exec plugin"):
        kubeconfig.from_kubeconfig("emulator", [config])


def test_outside_a_cluster_without_a_context_the_error_says_what_to_set(tmp_path):
    with pytest.raises(PermanentError, match=r"not running in a cluster.*set `context`"):
        kubeconfig.resolve(None, {})
    with pytest.raises(PermanentError, match="not running in a cluster"):
        kubeconfig.in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, tmp_path)
