"""The GitHub provider against the fake GitHub, which checks requests against the description."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from scm_payloads import REPOSITORY, WEBHOOK_SECRET

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.scm import (
    Annotation,
    CommitStatus,
    GitHubConfig,
    GitHubProvider,
    ProtectionOutcome,
    StatusKind,
    StatusState,
)
from infrastream.scm.fake_github import FakeGitHub

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
RUN_URL = "https://infrastream.example.com/prerelease/runs/41"


def provider_for(fake: FakeGitHub, **settings: object) -> GitHubProvider:
    config = GitHubConfig.model_validate({"base_url": fake.base_url, "token": fake.token,
                                          "webhook_secret": WEBHOOK_SECRET, **settings})
    return GitHubProvider(config)


@pytest.fixture
def provider(github: FakeGitHub) -> Iterator[GitHubProvider]:
    client = provider_for(github)
    yield client
    client.close()


@pytest.mark.parametrize(("state", "github_state"), [
    (StatusState.PENDING, "pending"), (StatusState.RUNNING, "pending"),
    (StatusState.SUCCESS, "success"), (StatusState.FAILURE, "failure"),
    (StatusState.ERROR, "error"), (StatusState.CANCELED, "failure"),
])
def test_a_status_reaches_github_with_its_mapped_state_and_the_stable_context(
        github: FakeGitHub, provider: GitHubProvider, state: StatusState,
        github_state: str) -> None:
    receipt = provider.report_status(REPOSITORY, SHA, CommitStatus(
        state, "waiting for the build of ec26c3e", target_url=RUN_URL))
    [status] = github.statuses(REPOSITORY, SHA)
    assert (status["state"], status["context"]) == (github_state, "infrastream/pre-release")
    assert status["description"] == "waiting for the build of ec26c3e"
    assert status["target_url"] == RUN_URL
    assert receipt.kind is StatusKind.COMMIT_STATUS and receipt.state == github_state
    assert github.violations == []
    assert github.requests[-1].credential == "token"


def test_a_long_description_is_clipped_to_githubs_140_characters(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    blockers = "waiting for: " + ", ".join(f"app-{i} build" for i in range(40))
    provider.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, blockers))
    [status] = github.statuses(REPOSITORY, SHA)
    assert len(status["description"]) == 140 and status["description"].endswith("…")
    assert github.violations == []


def test_github_enterprise_is_reached_below_api_v3() -> None:
    with FakeGitHub(repositories=[REPOSITORY], prefix="/api/v3") as ghe:
        client = provider_for(ghe)
        client.report_status(REPOSITORY, SHA, CommitStatus(StatusState.SUCCESS, "passed"))
        assert ghe.requests[-1].path == f"/api/v3/repos/{REPOSITORY}/statuses/{SHA}"
        assert ghe.statuses(REPOSITORY, SHA)[0]["state"] == "success"
        assert ghe.violations == []


def test_the_changed_paths_of_a_pull_request_are_read_over_every_page(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    files: list[str | tuple[str, str]] = [f"services/api/mod_{i:03}.py" for i in range(230)]
    files.append(("services/web/moved.py", "services/api/moved.py"))
    github.set_pull_request_files(REPOSITORY, 17, files)
    paths = provider.changed_paths(REPOSITORY, 17)
    assert len(paths) == 232  # 230 files, and both sides of the rename
    assert "services/api/moved.py" in paths and "services/web/moved.py" in paths
    assert paths == tuple(sorted(paths))
    pages = [r for r in github.requests if r.path.endswith("/pulls/17/files")]
    assert len(pages) == 3 and github.violations == []


def test_a_github_app_reports_a_check_run_and_keeps_updating_the_same_one(
        github: FakeGitHub) -> None:
    key = github.enable_app(app_id=4242, installation_id=77)
    app = provider_for(github, token=None, app_id=4242, private_key=key, installation_id=77)
    first = app.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued: 2nd"))
    app.report_status(REPOSITORY, SHA, CommitStatus(StatusState.RUNNING, "integration tests"))
    last = app.report_status(REPOSITORY, SHA, CommitStatus(
        StatusState.SUCCESS, "integration tests passed", target_url=RUN_URL,
        summary="**12 passed** in development"))
    [run] = github.check_runs(REPOSITORY, SHA)
    assert first.kind is StatusKind.CHECK_RUN and first.id == last.id == str(run["id"])
    assert (run["name"], run["status"], run["conclusion"]) == (
        "infrastream/pre-release", "completed", "success")
    assert run["details_url"] == RUN_URL
    assert run["output"]["summary"] == "**12 passed** in development"
    credentials = {r.credential for r in github.requests}
    assert credentials == {"app-jwt", "installation-token"}
    assert github.violations == []


def test_check_run_annotations_go_in_batches_of_fifty(github: FakeGitHub) -> None:
    key = github.enable_app()
    app = provider_for(github, token=None, app_id=4242, private_key=key)
    notes = tuple(Annotation("manifests/apps/api.yaml", line, f"unknown-field at line {line}")
                  for line in range(1, 121))
    app.report_status(REPOSITORY, SHA, CommitStatus(StatusState.FAILURE, "3 manifest errors",
                                                    annotations=notes))
    [run] = github.check_runs(REPOSITORY, SHA)
    assert [a["start_line"] for a in run["annotations"]] == list(range(1, 121))
    assert run["conclusion"] == "failure"
    writes = [r for r in github.requests if r.method in ("POST", "PATCH")
              and "/check-runs" in r.path]
    assert [len(r.body["output"]["annotations"]) for r in writes] == [50, 50, 20]
    assert github.violations == []


def test_without_an_installation_id_the_repositorys_installation_is_looked_up_once(
        github: FakeGitHub) -> None:
    key = github.enable_app(installation_id=91)
    app = provider_for(github, token=None, app_id=4242, private_key=key)
    app.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    app.report_status(REPOSITORY, SHA, CommitStatus(StatusState.RUNNING, "running"))
    lookups = [r for r in github.requests if r.path.endswith("/installation")]
    tokens = [r for r in github.requests if r.path.endswith("/access_tokens")]
    assert len(lookups) == 1 and tokens[0].path == "/app/installations/91/access_tokens"
    assert len(tokens) == 1  # the installation token is reused while it is valid


def test_require_check_creates_a_ruleset_and_then_finds_it_in_place(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    applied = provider.require_check(REPOSITORY, "main")
    assert applied.outcome is ProtectionOutcome.APPLIED and applied.done
    [ruleset] = github.rulesets(REPOSITORY)
    assert ruleset["enforcement"] == "active"
    assert ruleset["conditions"]["ref_name"]["include"] == ["refs/heads/main"]
    [rule] = ruleset["rules"]
    assert rule["type"] == "required_status_checks"
    assert rule["parameters"]["required_status_checks"] == [{"context": "infrastream/pre-release"}]
    again = provider.require_check(REPOSITORY, "main")
    assert again.outcome is ProtectionOutcome.ALREADY
    assert len(github.rulesets(REPOSITORY)) == 1
    assert github.violations == []


def test_require_check_without_admin_rights_says_exactly_what_to_set(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    github.deny_protection = True
    answer = provider.require_check(REPOSITORY, "main")
    assert answer.outcome is ProtectionOutcome.NEEDS_PERSON and not answer.done
    assert "Resource not accessible by personal access token" in answer.instructions
    assert "Require status checks to pass" in answer.instructions
    assert "infrastream/pre-release" in answer.instructions
    assert answer.settings_url == f"{github.base_url}/{REPOSITORY}/settings/rules"
    assert github.rulesets(REPOSITORY) == []


def test_the_fake_refuses_a_request_that_breaks_githubs_description(github: FakeGitHub) -> None:
    with httpx.Client(base_url=github.base_url, headers={
            "Authorization": f"Bearer {github.token}", "User-Agent": "contract-test"}) as raw:
        bad_state = raw.post(f"/repos/{REPOSITORY}/statuses/{SHA}", json={"state": "passed"})
        bad_type = raw.post(f"/repos/{REPOSITORY}/check-runs", json={"name": 7})
        no_such = raw.post(f"/repos/{REPOSITORY}/commit-statuses", json={"state": "success"})
        too_long = raw.post(f"/repos/{REPOSITORY}/statuses/{SHA}",
                            json={"state": "success", "description": "x" * 141})
    assert bad_state.status_code == 422 and "'passed' is not one of" in bad_state.json()["message"]
    assert bad_type.status_code == 422
    assert no_such.status_code == 404
    assert too_long.status_code == 422 and "too long" in too_long.json()["message"]
    assert len(github.violations) >= 4
    assert github.statuses(REPOSITORY, SHA) == []


def test_a_github_that_answers_503_is_a_transient_error_with_a_delay(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    github.go_down()
    with pytest.raises(TransientError) as down:
        provider.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert down.value.delay is not None and down.value.delay > 0
    github.come_back()
    provider.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert len(github.statuses(REPOSITORY, SHA)) == 1


def test_an_unreachable_github_is_a_transient_error_and_the_status_arrives_when_it_is_back(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    github.go_down(refuse=True)
    with pytest.raises(TransientError, match="unreachable") as refused:
        provider.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert refused.value.delay is not None and refused.value.delay > 0
    github.come_back()
    provider.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert github.statuses(REPOSITORY, SHA)[0]["state"] == "pending"


@pytest.mark.parametrize("status", [429, 403])
def test_a_rate_limit_is_transient_and_its_retry_after_is_honoured(
        github: FakeGitHub, provider: GitHubProvider, status: int) -> None:
    github.rate_limit(retry_after=37, status=status)
    with pytest.raises(TransientError, match="rate limited") as limited:
        provider.changed_paths(REPOSITORY, 17)
    assert limited.value.delay == 37


def test_a_503_with_retry_after_is_retried_no_sooner_than_github_asks(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    github.go_down(retry_after=120)
    with pytest.raises(TransientError) as down:
        provider.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert down.value.delay == 120


def test_a_bad_token_is_a_permanent_error_with_githubs_message(github: FakeGitHub) -> None:
    leaked = "ghp_" + "S3cr3t" * 6
    client = GitHubProvider(GitHubConfig(base_url=github.base_url, token=leaked,
                                         webhook_secret=WEBHOOK_SECRET))
    with pytest.raises(PermanentError, match="401: Bad credentials") as refused:
        client.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert leaked not in str(refused.value) and leaked not in repr(refused.value)
    assert leaked not in repr(client) and WEBHOOK_SECRET not in repr(client)
    assert all(leaked not in str(r) for r in github.requests)


def test_an_unknown_repository_is_a_permanent_error(
        github: FakeGitHub, provider: GitHubProvider) -> None:
    with pytest.raises(PermanentError, match="404: Not Found"):
        provider.report_status("octo-org/gone", SHA, CommitStatus(StatusState.PENDING, "queued"))


def test_a_github_that_accepts_but_never_answers_times_out_as_a_transient_error() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        host, port = silent.getsockname()
        client = GitHubProvider(GitHubConfig(base_url=f"http://{host}:{port}", token="ghp_x" * 4,
                                             webhook_secret=WEBHOOK_SECRET, timeout=0.3))
        with pytest.raises(TransientError, match="did not answer") as slow:
            client.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert slow.value.delay is not None and slow.value.delay > 0


def test_the_fake_refuses_an_app_jwt_signed_with_another_key(github: FakeGitHub) -> None:
    impostor_key = github.enable_app(app_id=4242)
    github.enable_app(app_id=4242)  # the App gets a new key pair: the old one is an impostor's
    impostor = provider_for(github, token=None, app_id=4242, private_key=impostor_key,
                            installation_id=77)
    with pytest.raises(PermanentError, match="401: Bad credentials"):
        impostor.report_status(REPOSITORY, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert github.check_runs(REPOSITORY, SHA) == []


def test_check_runs_cannot_be_written_with_a_plain_token(github: FakeGitHub) -> None:
    with httpx.Client(base_url=github.base_url, headers={
            "Authorization": f"Bearer {github.token}", "User-Agent": "contract-test"}) as raw:
        answer = raw.post(f"/repos/{REPOSITORY}/check-runs",
                          json={"name": "infrastream/pre-release", "head_sha": SHA})
    assert answer.status_code == 403
    assert answer.json()["message"] == "You must authenticate via a GitHub App."
