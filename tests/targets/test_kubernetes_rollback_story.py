"""Issue 9, item 3e: a rollback after a failed rollout waits for the controller.

The story: release v2 of `api` never becomes available, so its Deployment ends with the
condition "Progressing=False, ProgressDeadlineExceeded" and the deployment fails. The
release manager rolls back to v1. The rollback changes the Deployment's spec (a new
generation), but until the controller has looked at it, the status still carries v2's
stale "progress deadline exceeded". kubectl reads the condition only once
`status.observedGeneration` has caught up with `metadata.generation`; a target that reads
it first fails the rollback at once, on a verdict about the previous generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_emulator import KubernetesEmulator, rolled_out

from infrastream.domain.errors import PermanentError
from infrastream.manifests import ApplicationSpec, Environment
from infrastream.targets.base import AppDeployment, DeployRequest
from infrastream.targets.kubernetes import KubernetesTarget

NAMESPACE = "shop-prod"
PRODUCTION = Environment.model_validate({
    "apiVersion": "lowops.manifests.v1", "kind": "Environment",
    "metadata": {"name": "production"},
    "spec": {"tier": "production", "target": {
        "type": "kubernetes", "namespace": NAMESPACE, "context": "emulator"}}})
SPEC = ApplicationSpec.model_validate({
    "image": "registry.example.com/shop/api", "port": 8080,
    "healthCheck": {"path": "/healthz", "timeout": "10s"}})


def api(version: str) -> AppDeployment:
    return AppDeployment(app="api", image=f"registry.example.com/shop/api:{version}",
                         version=version, spec=SPEC)


def release(number: int, version: str) -> DeployRequest:
    return DeployRequest(key=f"{number}/production/1", release=f"shop/v{number}",
                         digest=f"sha256:{number:064x}", environment=PRODUCTION,
                         apps=(api(version),), workdir=Path("."), actor="rita", prune=True)


def stuck(deployment: dict[str, Any]) -> dict[str, Any]:
    """What the controller reports for a version whose pods never become ready."""
    return {**rolled_out(deployment), "availableReplicas": 0, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "api-6b7f" has timed out progressing.'}]}


def test_a_rollback_after_a_failed_rollout_waits_for_the_controller_instead_of_failing_at_once(
        tmp_path, monkeypatch):
    cluster = KubernetesEmulator(namespaces={NAMESPACE}).start()
    try:
        config = tmp_path / "kubeconfig"
        config.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
            "clusters": [{"name": "emulated", "cluster": {"server": cluster.url}}],
            "users": [{"name": "deployer", "user": {"token": cluster.token}}],
            "contexts": [{"name": "emulator", "context": {
                "cluster": "emulated", "user": "deployer"}}]}))
        monkeypatch.setenv("KUBECONFIG", str(config))
        target = KubernetesTarget(tmp_path)
        assert target.deploy(release(1, "1.0.0")).healthy

        cluster.controller = stuck
        with pytest.raises(PermanentError, match="has timed out progressing"):
            target.deploy(release(2, "2.0.0"))

        cluster.controller = rolled_out
        cluster.rollout_delay = 0.5  # the controller takes a moment to see the rollback
        rollback = target.deploy(release(1, "1.0.0"))

        assert rollback.healthy, rollback.message  # not the stale "progress deadline" verdict
        assert [(s.version, s.health.value) for s in rollback.apps] == [("1.0.0", "healthy")]
    finally:
        cluster.stop()
