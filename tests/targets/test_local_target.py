"""The local target runs the example shop as real processes answering real HTTP on loopback."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastream.cli.init_cmd import write_example
from infrastream.domain.errors import PermanentError
from infrastream.manifests import ApplicationSpec, Environment, load_texts
from infrastream.manifests.environment import default_environment
from infrastream.targets.base import AppDeployment, DeployRequest, Health
from infrastream.targets.local import LocalTarget

STAGING = default_environment("staging")
SECRET = "hunter2-do-not-leak"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_example(tmp_path / "repo")
    return tmp_path / "repo"


@pytest.fixture
def specs(repo: Path) -> dict[str, ApplicationSpec]:
    sources = [(str(p), p.read_text()) for p in sorted((repo / "manifests").rglob("*.yaml"))]
    loaded = load_texts(sources)
    assert loaded.ok, loaded.diagnostics
    return {name: app.spec for name, app in loaded.bundle.applications.items()}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    LocalTarget(data, stop_grace=1).teardown(STAGING)  # whatever a test left running


@pytest.fixture
def target(data_dir: Path) -> LocalTarget:
    return LocalTarget(data_dir, stop_grace=1, settle_seconds=0.3)


def deploy_request(repo: Path, key: str, *apps: AppDeployment, prune: bool = False,
                   environment: Environment = STAGING) -> DeployRequest:
    return DeployRequest(key=key, release=f"shop/{key}", digest="sha256:0", apps=apps,
                         environment=environment, workdir=repo, prune=prune)


def app(spec: ApplicationSpec, version: str, name: str = "api",
        **changes: Any) -> AppDeployment:
    if changes:
        spec = ApplicationSpec.model_validate(
            {**spec.model_dump(by_alias=True, exclude_none=True), **changes})
    return AppDeployment(app=name, image=f"{spec.image}:{version}", version=version, spec=spec,
                         env={"DB_PASSWORD": SECRET}, secret_names=frozenset({"DB_PASSWORD"}))


def answer(endpoint: str | None) -> dict[str, Any]:
    assert endpoint
    payload: dict[str, Any] = httpx.get(f"{endpoint}/healthz", timeout=5).json()
    return payload


def state(data_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((data_dir / "local/staging/state.json").read_text())
    return loaded


def pid_of(data_dir: Path, name: str = "api") -> int:
    return int(state(data_dir)["apps"][name]["pid"])


def kill(pid: int) -> None:
    """Kill the process group of `pid` the hard way, as a crash would, and wait for it."""
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_deploying_starts_the_app_and_it_answers_with_its_version(target, repo, specs):
    result = target.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))

    assert result.healthy
    [status] = result.apps
    assert status.version == "1.0.0" and status.release == "shop/v1"
    assert answer(status.endpoint) == {
        "component": "api", "version": "1.0.0", "release": "shop/v1", "ok": True}


def test_deploying_a_new_version_replaces_the_old_process(target, repo, specs, data_dir):
    target.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))
    old_pid = pid_of(data_dir)

    result = target.deploy(deploy_request(repo, "v2", app(specs["api"], "1.1.0")))

    assert not running(old_pid)
    assert pid_of(data_dir) != old_pid
    assert answer(result.apps[0].endpoint)["version"] == "1.1.0"


def test_deploying_the_same_key_again_touches_nothing(target, repo, specs, data_dir):
    request = deploy_request(repo, "v1", app(specs["api"], "1.0.0"))
    first = target.deploy(request)
    pid = pid_of(data_dir)

    again = target.deploy(request)

    assert again.message == "already deployed"
    assert pid_of(data_dir) == pid and again.apps[0].endpoint == first.apps[0].endpoint


def test_a_run_command_that_exits_fails_and_the_previous_version_keeps_serving(
        target, repo, specs, data_dir):
    target.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))
    crashing = app(specs["api"], "1.1.0", run={"command": [
        "python3", "-c", "import sys; print('cannot reach the database'); sys.exit(1)"]})

    with pytest.raises(PermanentError, match=r"^api: exited with code 1: cannot reach the data"):
        target.deploy(deploy_request(repo, "v2", crashing))

    [status] = target.status(STAGING)
    assert status.health is Health.HEALTHY and status.version == "1.0.0"
    assert answer(status.endpoint)["version"] == "1.0.0"
    assert state(data_dir)["pending"] == []


def test_an_app_that_never_gets_healthy_fails_with_its_log_tail(target, repo, specs):
    never = app(specs["api"], "1.0.0", healthCheck={"path": "/healthz", "timeout": "1s"}, run={
        "command": ["python3", "-c", "import time; print('warming up', flush=True); "
                    "time.sleep(60)"]})

    with pytest.raises(PermanentError) as failure:
        target.deploy(deploy_request(repo, "v1", never))

    assert failure.value.reason == "api: not healthy after 1s: warming up"
    assert target.status(STAGING) == ()


def test_an_app_without_a_run_command_is_refused(target, repo, specs):
    without_run = specs["api"].model_copy(update={"run": None})
    request = deploy_request(repo, "v1", AppDeployment("api", "api:1", "1", without_run))

    with pytest.raises(PermanentError, match="api: no `run` command"):
        target.deploy(request)


def test_a_restarted_server_adopts_the_processes_that_kept_running(repo, specs, data_dir):
    LocalTarget(data_dir).deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))
    pid = pid_of(data_dir)

    restarted = LocalTarget(data_dir)
    [status] = restarted.status(STAGING)
    again = restarted.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))

    assert status.health is Health.HEALTHY and status.version == "1.0.0"
    assert status.deploy_key == "v1" and answer(status.endpoint)["version"] == "1.0.0"
    assert again.message == "already deployed" and pid_of(data_dir) == pid


def test_teardown_stops_every_process_and_forgets_them(target, repo, specs, data_dir):
    request = deploy_request(repo, "v1", app(specs["api"], "1.0.0"), app(specs["web"], "2.0.0",
                                                                           name="web"))
    target.deploy(request)
    pids = [pid_of(data_dir, "api"), pid_of(data_dir, "web")]

    target.teardown(STAGING)

    assert not any(running(pid) for pid in pids)
    assert target.status(STAGING) == ()


def test_pruning_stops_the_apps_a_release_no_longer_carries(target, repo, specs, data_dir):
    target.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0"),
                                 app(specs["web"], "1.0.0", name="web")))
    api_pid = pid_of(data_dir, "api")

    target.deploy(deploy_request(repo, "v2", app(specs["web"], "1.1.0", name="web"), prune=True))

    assert not running(api_pid)
    assert [(s.app, s.version) for s in target.status(STAGING)] == [("web", "1.1.0")]


def test_supervise_restarts_a_process_that_died_on_the_same_port_with_secrets_read_again(
        repo, specs, data_dir):
    target = LocalTarget(data_dir, stop_grace=1, restart_backoff=0)
    [before] = target.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0"))).apps
    pid = pid_of(data_dir)
    kill(pid)
    assert target.status(STAGING)[0].health is Health.MISSING
    asked: list[str] = []

    def secrets(name: str) -> dict[str, str]:
        asked.append(name)
        return {"DB_PASSWORD": "read-again"}

    [restart] = target.supervise(STAGING, secrets)

    assert restart.succeeded and restart.restarts == 1 and restart.old_pid == pid
    assert restart.status.health is Health.HEALTHY
    assert restart.status.endpoint == before.endpoint and asked == ["api"]
    assert answer(before.endpoint)["version"] == "1.0.0"
    assert pid_of(data_dir) != pid and state(data_dir)["apps"]["api"]["restarts"] == 1
    assert target.status(STAGING)[0].restarts == 1
    environ = Path(f"/proc/{pid_of(data_dir)}/environ").read_bytes().split(b"\0")
    assert b"DB_PASSWORD=read-again" in environ  # from the store, not from memory
    assert target.supervise(STAGING, secrets) == ()
    assert not hasattr(target, "_memory") and not hasattr(target, "reconcile")


def test_supervise_waits_for_the_backoff_before_restarting(repo, specs, data_dir):
    target = LocalTarget(data_dir, stop_grace=1, restart_backoff=3600)
    target.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))
    kill(pid_of(data_dir))

    assert target.supervise(STAGING, lambda name: {"DB_PASSWORD": SECRET}) == ()
    assert target.status(STAGING)[0].health is Health.MISSING


def test_a_restart_without_the_secret_in_the_store_fails_and_says_which(repo, specs, data_dir):
    LocalTarget(data_dir).deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))
    kill(pid_of(data_dir))

    [restart] = LocalTarget(data_dir, stop_grace=1, restart_backoff=0).supervise(
        STAGING, lambda name: {})

    assert not restart.succeeded and restart.status.health is Health.MISSING
    assert "secret DB_PASSWORD is not set" in restart.status.detail


def test_secret_values_reach_the_process_but_never_the_state_file_or_the_log(
        target, repo, specs, data_dir):
    target.deploy(deploy_request(repo, "v1", app(specs["api"], "1.0.0")))
    environ = Path(f"/proc/{pid_of(data_dir)}/environ").read_bytes().split(b"\0")

    assert f"DB_PASSWORD={SECRET}".encode() in environ
    assert b"INFRASTREAM_ENVIRONMENT=staging" in environ
    assert not any(v.startswith(b"VIRTUAL_ENV=") for v in environ)
    assert state(data_dir)["apps"]["api"]["secret_names"] == ["DB_PASSWORD"]
    assert SECRET not in (data_dir / "local/staging/state.json").read_text()
    assert SECRET not in (data_dir / "local/staging/api.log").read_text()


def test_failure_messages_redact_secret_values_the_app_printed(target, repo, specs):
    leaky = app(specs["api"], "1.0.0", run={"command": [
        "python3", "-c", "import os; print('password is', os.environ['DB_PASSWORD']); exit(3)"]})

    with pytest.raises(PermanentError) as failure:
        target.deploy(deploy_request(repo, "v1", leaky))

    assert failure.value.reason == "api: exited with code 3: password is ***"
