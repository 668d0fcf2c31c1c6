"""The noop target records intent, keeps the target contract, and starts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastream.domain.errors import PermanentError
from infrastream.manifests import ApplicationSpec
from infrastream.manifests.environment import default_environment
from infrastream.targets.base import AppDeployment, DeployRequest, Health
from infrastream.targets.local import LocalTarget
from infrastream.targets.noop import NoopTarget
from infrastream.targets.registry import TargetRegistry

STAGING = default_environment("staging")
SPEC = ApplicationSpec.model_validate({"image": "registry.example.com/shop/api"})


def deployment(name: str, version: str) -> AppDeployment:
    return AppDeployment(app=name, image=f"registry.example.com/shop/{name}:{version}",
                         version=version, spec=SPEC, env={"DB_PASSWORD": "s3cret-value"},
                         secret_names=frozenset({"DB_PASSWORD"}))


def request(key: str, *apps: AppDeployment, prune: bool = False) -> DeployRequest:
    return DeployRequest(key=key, release=f"shop/{key}", digest="sha256:0", apps=apps,
                         environment=STAGING, workdir=Path("."), prune=prune)


def test_a_deployment_is_recorded_and_instantly_healthy():
    target = NoopTarget()

    result = target.deploy(request("v1", deployment("api", "1.0.0")))

    assert result.healthy
    assert [(s.app, s.version, s.release, s.health) for s in target.status(STAGING)] == [
        ("api", "1.0.0", "shop/v1", Health.HEALTHY)]


def test_deploying_the_same_key_twice_counts_once():
    target = NoopTarget()
    target.deploy(request("v1", deployment("api", "1.0.0")))

    again = target.deploy(request("v1", deployment("api", "1.0.0")))

    assert again.message == "already deployed" and target.deploy_count == 1


def test_status_survives_a_restart_through_the_data_directory(tmp_path):
    NoopTarget(tmp_path).deploy(request("v1", deployment("api", "1.0.0")))

    restarted = NoopTarget(tmp_path)

    assert [s.deploy_key for s in restarted.status(STAGING)] == ["v1"]
    assert restarted.deploy(request("v1", deployment("api", "1.0.0"))).message == (
        "already deployed")


def test_secret_values_are_never_written(tmp_path):
    NoopTarget(tmp_path).deploy(request("v1", deployment("api", "1.0.0")))

    assert "s3cret-value" not in (tmp_path / "noop/staging.json").read_text()


def test_pruning_forgets_apps_the_release_no_longer_carries():
    target = NoopTarget()
    target.deploy(request("v1", deployment("api", "1.0.0"), deployment("web", "1.0.0")))

    target.deploy(request("v2", deployment("web", "1.1.0"), prune=True))

    assert [(s.app, s.version) for s in target.status(STAGING)] == [("web", "1.1.0")]


def test_teardown_forgets_everything(tmp_path):
    target = NoopTarget(tmp_path)
    target.deploy(request("v1", deployment("api", "1.0.0")))

    target.teardown(STAGING)

    assert target.status(STAGING) == () and NoopTarget(tmp_path).status(STAGING) == ()


def test_the_registry_serves_one_instance_per_type_and_refuses_unknown_types(tmp_path):
    registry = TargetRegistry(tmp_path)

    assert registry.get_target("noop") is registry.get_target("noop")
    assert isinstance(registry.for_environment(STAGING), LocalTarget)
    with pytest.raises(PermanentError,
                       match=r"no `argocd` target .* \(available: gitops, kubernetes, local, "
                             r"noop\)"):
        registry.get_target("argocd")


def test_the_registry_serves_a_registered_fake_in_place_of_a_builtin(tmp_path):
    registry = TargetRegistry(tmp_path)
    fake = NoopTarget()

    registry.register("local", fake)

    assert registry.for_environment(STAGING) is fake
