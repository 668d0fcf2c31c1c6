"""A gitops deployment is healthy when Argo CD or Flux says the pushed commit is live.

The stories: the target commits and pushes to a bare repository on disk; a test controller
plays the agent and writes its verdict into the Application (Argo CD) or Kustomization
(Flux) of the Kubernetes API emulator; the target watches that object through the
Kubernetes API and returns only once the agent reports the pushed commit synced and
healthy, or fails with the agent's own message.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gitops_agent_fake import ARGO_DEGRADED, FLUX_NOT_READY, AgentController

from infrastream.domain.errors import PermanentError
from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets.base import AppDeployment, DeployRequest, Health
from infrastream.targets.gitops import GitOpsTarget
from infrastream.targets.gitops_agents import argo_verdict, flux_revision, flux_verdict

SPEC = ApplicationSpec.model_validate({"image": "registry.example.com/shop/api", "port": 8080})


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


@pytest.fixture
def target(tmp_path: Path, kubeconfig: Path) -> GitOpsTarget:
    return GitOpsTarget(tmp_path / "data", backoff=0.01)


def staging(remote: Path, **agent: Any) -> Environment:
    return Environment.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "Environment",
        "metadata": {"name": "staging"},
        "spec": {"tier": "staging", "target": {"type": "gitops", "repo": str(remote),
                                                **agent}}})


def release(env: Environment, number: int, version: str) -> DeployRequest:
    api = AppDeployment(app="api", image=f"registry.example.com/shop/api:{version}",
                        version=version, spec=SPEC)
    return DeployRequest(key=f"{number}/staging/1", release=f"shop/v{number}",
                         digest=f"sha256:{number:064x}", environment=env, apps=(api,),
                         workdir=Path("."), actor="rita")


def head(remote: Path) -> str:
    return subprocess.run(["git", "rev-parse", "main"], cwd=remote, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture
def agent(request: pytest.FixtureRequest, cluster: Any, remote: Path) -> Iterator[AgentController]:
    controller = AgentController(cluster, remote, kind=request.param).start()
    yield controller
    controller.stop()


ARGO = {"argocd": {"application": "shop-staging", "context": "emulator", "timeout": "5s"}}
FLUX = {"flux": {"kustomization": "shop-staging", "context": "emulator", "timeout": "5s"}}


@pytest.mark.parametrize("agent", ["argocd"], indirect=True)
def test_a_commit_is_healthy_once_argo_cd_reports_it_synced_and_healthy(target, remote, agent):
    agent.delay = 0.5

    result = target.deploy(release(staging(remote, **ARGO), 1, "1.0.0"))

    assert agent.synced == [head(remote)]  # it returned once the agent reported the commit
    assert result.healthy
    assert result.apps[0].detail == f"Argo CD synced {head(remote)[:12]} and reports Healthy"
    assert result.message.startswith(f"committed {head(remote)} to main; Argo CD synced")


@pytest.mark.parametrize("agent", ["argocd"], indirect=True)
def test_argo_cd_reporting_degraded_fails_the_deployment_with_its_message(
        target, remote, agent):
    agent.outcome = "degraded"

    with pytest.raises(PermanentError, match=f"Argo CD reports Degraded: {ARGO_DEGRADED}"):
        target.deploy(release(staging(remote, **ARGO), 1, "1.0.0"))


@pytest.mark.parametrize("agent", ["flux"], indirect=True)
def test_a_commit_is_healthy_once_flux_has_applied_it_and_is_ready(target, remote, agent):
    result = target.deploy(release(staging(remote, **FLUX), 1, "1.0.0"))

    assert result.healthy and agent.synced == [head(remote)]
    assert result.apps[0].detail == f"Flux applied {head(remote)[:12]} and reports Ready"


@pytest.mark.parametrize("agent", ["flux"], indirect=True)
def test_flux_reporting_not_ready_fails_the_deployment_with_its_message(target, remote, agent):
    target.deploy(release(staging(remote, **FLUX), 1, "1.0.0"))
    agent.outcome = "degraded"

    with pytest.raises(PermanentError, match=r"Flux reports not Ready: health check failed"):
        target.deploy(release(staging(remote, **FLUX), 2, "2.0.0"))

    assert FLUX_NOT_READY.startswith("health check failed")


@pytest.mark.parametrize("agent", ["argocd"], indirect=True)
def test_an_agent_that_never_syncs_fails_at_its_timeout_saying_where_it_stands(
        target, remote, agent):
    agent.outcome = "silent"
    env = staging(remote, argocd={**ARGO["argocd"], "timeout": "1s"})

    with pytest.raises(PermanentError, match=r"Argo CD did not report commit \w{12} synced "
                       r"and healthy within 1s: Argo CD has not synced the commit yet"):
        target.deploy(release(env, 1, "1.0.0"))


@pytest.mark.parametrize("agent", ["argocd"], indirect=True)
def test_a_redeploy_makes_no_commit_and_is_healthy_as_the_agent_already_says(
        target, remote, agent):
    env = staging(remote, **ARGO)
    target.deploy(release(env, 1, "1.0.0"))
    before = head(remote)

    again = target.deploy(release(env, 1, "1.0.0"))

    assert head(remote) == before and again.healthy
    assert again.message.startswith("already deployed; Argo CD synced")


def test_an_agents_object_that_does_not_exist_is_a_permanent_error(target, remote, cluster):
    with pytest.raises(PermanentError, match="Application argocd/shop-staging does not exist"):
        target.deploy(release(staging(remote, **ARGO), 1, "1.0.0"))


def test_argo_cd_verdicts_follow_sync_revision_operation_and_health():
    def app(revision: str, sync: str, health: str, phase: str = "Succeeded",
            message: str = "") -> dict[str, Any]:
        return {"status": {"sync": {"status": sync, "revision": revision},
                           "health": {"status": health, "message": message},
                           "operationState": {"phase": phase, "message": message}}}

    ours = {"abc", "later"}.__contains__
    assert argo_verdict(app("old", "Synced", "Healthy"), ours)[0] is Health.PROGRESSING
    assert argo_verdict(app("later", "Synced", "Healthy"), ours)[0] is Health.HEALTHY
    assert argo_verdict(app("abc", "OutOfSync", "Healthy"), ours)[0] is Health.PROGRESSING
    assert argo_verdict(app("abc", "Synced", "Progressing"), ours)[0] is Health.PROGRESSING
    assert argo_verdict(app("abc", "Synced", "Degraded", message="boom"), ours) == (
        Health.DEGRADED, "Argo CD reports Degraded: boom")
    assert argo_verdict(app("abc", "OutOfSync", "Healthy", "Failed", "hook failed"), ours) == (
        Health.DEGRADED, "Argo CD sync failed: hook failed")


def test_flux_verdicts_follow_applied_revision_and_readiness():
    ours = {"abc"}.__contains__
    ready = {"type": "Ready", "status": "True", "message": "Applied revision: main@sha1:abc"}
    failed = {"type": "Ready", "status": "False", "message": "kustomize build failed"}

    assert flux_revision("main@sha1:abc") == "abc" and flux_revision("main/abc") == "abc"
    assert flux_verdict({"status": {"lastAppliedRevision": "main@sha1:abc",
                                    "conditions": [ready]}}, ours)[0] is Health.HEALTHY
    assert flux_verdict({"status": {"lastAppliedRevision": "main@sha1:old",
                                    "lastAttemptedRevision": "main@sha1:old",
                                    "conditions": [failed]}}, ours)[0] is Health.PROGRESSING
    assert flux_verdict({"status": {"lastAppliedRevision": "main@sha1:old",
                                    "lastAttemptedRevision": "main@sha1:abc",
                                    "conditions": [failed]}}, ours) == (
        Health.DEGRADED, "Flux reports not Ready: kustomize build failed")
