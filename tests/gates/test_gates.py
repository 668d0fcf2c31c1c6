"""The automated checks, run against the example shop served by the local target for real."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from infrastream.cli.init_cmd import write_example
from infrastream.gates.base import CheckSubject, clip, redact
from infrastream.gates.http_check import http_check
from infrastream.gates.integration_tests import run_integration_tests
from infrastream.manifests import ApplicationSpec, load_texts
from infrastream.manifests.environment import default_environment
from infrastream.manifests.track import HttpCheck, IntegrationTestsCheck
from infrastream.targets.base import AppDeployment, DeployRequest
from infrastream.targets.local import LocalTarget

STAGING = default_environment("staging")
SECRET = "hunter2-do-not-leak"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckSubject]:
    """The example's api, version 1.0.0, running in `staging`."""
    root = tmp_path_factory.mktemp("shop")
    write_example(root / "repo")
    sources = [(str(p), p.read_text()) for p in (root / "repo/manifests").rglob("*.yaml")]
    spec = load_texts(sources).bundle.applications["api"].spec
    env = {"DB_PASSWORD": SECRET}
    app = AppDeployment("api", f"{spec.image}:1.0.0", "1.0.0", spec, env,
                        frozenset({"DB_PASSWORD"}))
    target = LocalTarget(root / "data", stop_grace=1)
    try:
        [status] = target.deploy(DeployRequest("v1", "shop/v1", "sha256:0", STAGING, (app,),
                                               root / "repo")).apps
        yield CheckSubject(app="api", spec=spec, endpoint=status.endpoint, version="1.0.0",
                           release="shop/v1", environment="staging", workdir=root / "repo",
                           env=env, secret_names=frozenset({"DB_PASSWORD"}))
    finally:
        target.teardown(STAGING)


def with_spec(subject: CheckSubject, **changes: Any) -> CheckSubject:
    data = {**subject.spec.model_dump(by_alias=True, exclude_none=True), **changes}
    return replace(subject, spec=ApplicationSpec.model_validate(data))


def http(**fields: Any) -> HttpCheck:
    return HttpCheck.model_validate({"type": "http", **fields})


def integration_check(**fields: Any) -> IntegrationTestsCheck:
    return IntegrationTestsCheck.model_validate({"type": "integration-tests", **fields})


def test_integration_tests_pass_against_the_version_that_runs(shop):
    result = run_integration_tests(integration_check(), shop)

    assert result.passed, result.output
    assert result.summary.startswith("api: integration tests passed in ")
    assert "PASS http://127.0.0.1:" in result.output and "api 1.0.0" in result.output


def test_integration_tests_fail_with_their_output_when_another_version_runs(shop):
    result = run_integration_tests(None, replace(shop, version="2.0.0"))

    assert not result.passed
    assert result.summary.startswith("api: integration tests failed (exit code 1): FAIL ")
    assert result.summary.endswith("runs 1.0.0, expected 2.0.0")
    assert "runs 1.0.0, expected 2.0.0" in result.output


def test_integration_tests_that_hang_time_out(shop):
    hanging = with_spec(shop, integrationTests={
        "command": ["python3", "-c", "import time; print('waiting', flush=True); time.sleep(60)"],
        "timeout": "2m"})

    result = run_integration_tests(integration_check(timeout="1s"), hanging)

    assert not result.passed and result.summary == "api: integration tests timed out after 1s"
    assert result.output.strip() == "waiting" and result.duration < 10


def test_integration_test_output_never_shows_secret_values(shop):
    leaky = with_spec(shop, integrationTests={"command": [
        "python3", "-c", "import os; print('using', os.environ['DB_PASSWORD'])"]})

    result = run_integration_tests(None, leaky)

    assert result.passed and result.output.strip() == "using ***"


def test_a_missing_test_command_fails_the_check_with_the_reason(shop):
    missing = with_spec(shop, integrationTests={"command": ["no-such-test-runner"]})

    result = run_integration_tests(None, missing)

    assert not result.passed
    assert "cannot start integration tests `no-such-test-runner`" in result.summary


def test_the_http_check_passes_when_the_health_path_answers(shop):
    result = http_check(http(), shop)

    assert result.passed and result.summary == f"api: GET {shop.endpoint}/healthz answered 200"
    assert '"version": "1.0.0"' in result.output


def test_the_http_check_fails_after_its_timeout_when_the_status_is_wrong(shop):
    result = http_check(http(path="/missing", timeout="1s"), shop, interval=0.2)

    assert not result.passed
    assert result.summary == (f"api: GET {shop.endpoint}/missing answered 404, "
                              "expected 200, for 1s")
    assert 1 <= result.duration < 5


def test_the_http_check_fails_when_nothing_listens(shop):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = http_check(http(timeout="1s"), replace(shop, endpoint=f"http://127.0.0.1:{port}"),
                        interval=0.2)

    assert not result.passed and "no answer (ConnectError" in result.summary


def test_output_is_clipped_to_its_end_and_secrets_are_redacted():
    clipped = clip("x" * 1000 + "the verdict", 100)

    omitted, kept = clipped.split("\n")
    assert omitted == f"[… {1011 - len(kept)} earlier characters omitted …]"
    assert kept.endswith("xthe verdict") and 90 <= len(clipped) <= 100
    assert redact("password=abc; token=abcdef", ["abc", "abcdef"]) == "password=***; token=***"


def test_the_subject_workdir_is_where_relative_test_paths_resolve(shop):
    assert (Path(shop.workdir) / "tests/smoke_test.py").is_file()
