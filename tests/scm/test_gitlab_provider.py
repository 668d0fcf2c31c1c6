"""The GitLab provider against the fake GitLab, which follows GitLab's API documentation."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from scm_payloads import PROJECT, WEBHOOK_SECRET

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.scm import (
    CommitStatus,
    GitLabConfig,
    GitLabProvider,
    ProtectionOutcome,
    StatusState,
)
from infrastream.scm.fake_gitlab import FakeGitLab

SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
RUN_URL = "https://infrastream.example.com/prerelease/runs/7"


@pytest.fixture
def provider(gitlab: FakeGitLab) -> Iterator[GitLabProvider]:
    client = GitLabProvider(GitLabConfig(base_url=gitlab.base_url, token=gitlab.token,
                                         webhook_secret=WEBHOOK_SECRET))
    yield client
    client.close()


@pytest.mark.parametrize(("state", "gitlab_state"), [
    (StatusState.PENDING, "pending"), (StatusState.RUNNING, "running"),
    (StatusState.SUCCESS, "success"), (StatusState.FAILURE, "failed"),
    (StatusState.ERROR, "failed"), (StatusState.CANCELED, "canceled"),
])
def test_a_status_reaches_gitlab_with_its_mapped_state_name_and_ref(
        gitlab: FakeGitLab, provider: GitLabProvider, state: StatusState,
        gitlab_state: str) -> None:
    receipt = provider.report_status(PROJECT, SHA, CommitStatus(
        state, "superseded by def5678", target_url=RUN_URL, ref="feature/login"))
    [status] = gitlab.statuses(PROJECT, SHA)
    assert (status["status"], status["name"], status["ref"]) == (
        gitlab_state, "infrastream/pre-release", "feature/login")
    assert (status["description"], status["target_url"]) == ("superseded by def5678", RUN_URL)
    assert receipt.state == gitlab_state and receipt.id == str(status["id"])
    assert gitlab.requests[-1].path == f"/api/v4/projects/platform%2Fshop%2Fapi/statuses/{SHA}"
    assert gitlab.violations == []


def test_a_status_walks_pending_running_success_on_one_job(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    for state in (StatusState.PENDING, StatusState.RUNNING, StatusState.SUCCESS):
        provider.report_status(PROJECT, SHA, CommitStatus(state, state.value, ref="main"))
    [status] = gitlab.statuses(PROJECT, SHA)
    assert status["status"] == "success"


def test_reporting_the_same_state_twice_is_accepted_although_gitlab_refuses_the_transition(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    provider.report_status(PROJECT, SHA, CommitStatus(StatusState.RUNNING, "tests running"))
    again = provider.report_status(PROJECT, SHA, CommitStatus(StatusState.RUNNING, "still"))
    assert again.state == "running"
    assert gitlab.requests[-1].status == 400  # GitLab said "Cannot transition … from :running"
    assert [s["status"] for s in gitlab.statuses(PROJECT, SHA)] == ["running"]


def test_a_long_description_is_clipped_to_gitlabs_255_characters(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    provider.report_status(PROJECT, SHA, CommitStatus(StatusState.PENDING, "waiting " * 80))
    [status] = gitlab.statuses(PROJECT, SHA)
    assert len(status["description"]) == 255 and gitlab.violations == []


def test_the_changed_paths_of_a_merge_request_are_read_over_every_page(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    files: list[str | tuple[str, str]] = [f"services/api/mod_{i:03}.py" for i in range(150)]
    files.append(("docs/api.md", "services/api/README.md"))
    gitlab.set_merge_request_diffs(PROJECT, 12, files)
    paths = provider.changed_paths(PROJECT, 12)
    assert len(paths) == 152 and "services/api/README.md" in paths and "docs/api.md" in paths
    assert len([r for r in gitlab.requests if r.path.endswith("/diffs")]) == 2


def test_require_check_turns_on_pipelines_must_succeed_and_then_finds_it_on(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    applied = provider.require_check(PROJECT, "main")
    assert applied.outcome is ProtectionOutcome.APPLIED
    assert "every branch" in applied.message
    assert gitlab.projects[PROJECT].settings["only_allow_merge_if_pipeline_succeeds"] is True
    assert provider.require_check(PROJECT, "main").outcome is ProtectionOutcome.ALREADY
    assert gitlab.violations == []


def test_require_check_below_maintainer_says_exactly_what_to_set(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    gitlab.deny_protection = True
    answer = provider.require_check(PROJECT, "main")
    assert answer.outcome is ProtectionOutcome.NEEDS_PERSON
    assert answer.settings_url == f"{gitlab.base_url}/{PROJECT}/-/settings/merge_requests"
    assert "Pipelines must succeed" in answer.instructions
    assert "403 Forbidden" in answer.instructions
    assert gitlab.projects[PROJECT].settings["only_allow_merge_if_pipeline_succeeds"] is False


def test_the_fake_refuses_what_gitlabs_documentation_does_not_allow(gitlab: FakeGitLab) -> None:
    with httpx.Client(base_url=f"{gitlab.base_url}/api/v4",
                      headers={"PRIVATE-TOKEN": gitlab.token}) as raw:
        bad_state = raw.post(f"/projects/platform%2Fshop%2Fapi/statuses/{SHA}",
                             json={"state": "failure"})
        unknown = raw.post(f"/projects/platform%2Fshop%2Fapi/statuses/{SHA}",
                           json={"state": "success", "context_name": "x"})
        no_project = raw.post(f"/projects/nobody%2Fnothing/statuses/{SHA}",
                              json={"state": "success"})
    assert bad_state.status_code == 400
    assert bad_state.json() == {"error": "state does not have a valid value"}
    assert unknown.status_code == 400 and no_project.status_code == 404
    assert len(gitlab.violations) == 2 and gitlab.statuses(PROJECT, SHA) == []


def test_a_gitlab_that_is_down_is_transient_and_the_status_arrives_when_it_is_back(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    gitlab.go_down(refuse=True)
    with pytest.raises(TransientError) as refused:
        provider.report_status(PROJECT, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert refused.value.delay is not None and refused.value.delay > 0
    gitlab.come_back()
    gitlab.go_down(retry_after=30)
    with pytest.raises(TransientError) as unavailable:
        provider.report_status(PROJECT, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert unavailable.value.delay == 30
    gitlab.come_back()
    provider.report_status(PROJECT, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert [s["status"] for s in gitlab.statuses(PROJECT, SHA)] == ["pending"]


def test_a_rate_limited_call_is_retried_after_gitlabs_retry_after(
        gitlab: FakeGitLab, provider: GitLabProvider) -> None:
    gitlab.rate_limit(retry_after=12)
    with pytest.raises(TransientError) as limited:
        provider.require_check(PROJECT, "main")
    assert limited.value.delay == 12


def test_a_wrong_token_is_permanent_and_never_shown(gitlab: FakeGitLab) -> None:
    leaked = "glpat-" + "Zq8" * 7
    client = GitLabProvider(GitLabConfig(base_url=gitlab.base_url, token=leaked,
                                         webhook_secret=WEBHOOK_SECRET))
    with pytest.raises(PermanentError, match="401 Unauthorized") as refused:
        client.report_status(PROJECT, SHA, CommitStatus(StatusState.PENDING, "queued"))
    assert leaked not in str(refused.value) and leaked not in repr(refused.value)
    assert leaked not in repr(client) and leaked not in repr(client.config)
    assert all(leaked not in str(r) for r in gitlab.requests)
