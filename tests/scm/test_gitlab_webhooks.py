"""GitLab deliveries: the payloads of GitLab's webhook documentation, with its secret token."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from scm_payloads import WEBHOOK_SECRET, gitlab_hook

from infrastream.domain.errors import Unauthenticated
from infrastream.scm import (
    GitLabConfig,
    GitLabProvider,
    PullRequestAction,
    PullRequestEvent,
    PushEvent,
)

PROVIDER = GitLabProvider(GitLabConfig(token="glpat-not-used-here", webhook_secret=WEBHOOK_SECRET))
UUID = "9cbbd3a4-4f3c-4b5e-9d5c-7a1c2f6e8b10"


def deliver(event: str, payload: dict[str, Any], *, token: str | None = WEBHOOK_SECRET) -> Any:
    headers = {"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": UUID,
               "Content-Type": "application/json"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return PROVIDER.parse_webhook(headers, json.dumps(payload).encode())


def merge_request(action: str, **attributes: Any) -> dict[str, Any]:
    """The documentation's merge request payload, with `action` and the fields it implies."""
    payload = copy.deepcopy(gitlab_hook("merge_request"))
    payload["object_attributes"].update(action=action, **attributes)
    return payload


def test_an_opened_merge_request_becomes_our_pull_request_event() -> None:
    delivery = deliver("Merge Request Hook", merge_request("open"))
    event = delivery.event
    assert isinstance(event, PullRequestEvent)
    assert (delivery.provider, delivery.delivery_id) == ("gitlab", UUID)
    assert event.action is PullRequestAction.OPENED
    assert event.repository == "gitlabhq/gitlab-test"
    assert event.number == 1
    assert event.head_sha == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert (event.head_branch, event.base_branch) == ("ms-viewport", "master")
    assert (event.author, event.actor) == ("root", "root")
    assert event.title == "MS-Viewport"
    assert event.web_url == "http://example.com/diaspora/merge_requests/1"
    assert event.head_repository == "awesome_space/awesome_project" and event.from_fork


def test_an_update_with_new_commits_is_an_update_of_the_head() -> None:
    old = "95790bf891e76fee5e1747ab589903a6a1f80f22"
    event = deliver("Merge Request Hook", merge_request("update", oldrev=old)).event
    assert isinstance(event, PullRequestEvent)
    assert event.action is PullRequestAction.UPDATED and event.before_sha == old


def test_an_update_without_new_commits_is_ignored_with_a_reason() -> None:
    delivery = deliver("Merge Request Hook", merge_request("update"))
    assert delivery.event is None
    assert delivery.ignored == "merge request update without new commits"


@pytest.mark.parametrize(("action", "state", "expected"), [
    ("reopen", "opened", PullRequestAction.REOPENED),
    ("close", "closed", PullRequestAction.CLOSED),
])
def test_reopen_and_close_are_told_apart(action: str, state: str,
                                         expected: PullRequestAction) -> None:
    event = deliver("Merge Request Hook", merge_request(action, state=state)).event
    assert isinstance(event, PullRequestEvent)
    assert event.action is expected and not event.merged


def test_a_merged_merge_request_names_its_merge_commit() -> None:
    payload = merge_request("merge", state="merged",
                            merge_commit_sha="0b4bc9a49b562e85de7cc9e834518ea6828729b9")
    event = deliver("Merge Request Hook", payload).event
    assert isinstance(event, PullRequestEvent)
    assert event.action is PullRequestAction.MERGED and event.merged
    assert event.merge_commit_sha == "0b4bc9a49b562e85de7cc9e834518ea6828729b9"


def test_approvals_are_ignored_with_a_reason() -> None:
    delivery = deliver("Merge Request Hook", merge_request("approved"))
    assert delivery.event is None and delivery.ignored == "merge request approved is not used"


def test_a_push_lists_its_changed_paths_and_says_they_are_partial() -> None:
    event = deliver("Push Hook", gitlab_hook("push")).event
    assert isinstance(event, PushEvent)
    assert event.repository == "mike/diaspora"
    assert event.branch == "master" and event.default_branch is True
    assert event.before == "95790bf891e76fee5e1747ab589903a6a1f80f22"
    assert event.after == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert event.pusher == "jsmith"
    assert event.changed_paths == ("CHANGELOG", "app/controller/application.rb")
    assert event.commits == ("b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
                             "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    # total_commits_count is 4 but only 2 commits are listed: the paths are a lower bound.
    assert event.paths_complete is False


def test_tag_pushes_are_ignored_with_a_reason() -> None:
    delivery = deliver("Tag Push Hook", gitlab_hook("tag_push"))
    assert delivery.event is None and delivery.ignored == "Tag Push Hook events are not used"


def test_a_delivery_with_the_wrong_token_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="not the configured secret") as refused:
        deliver("Push Hook", gitlab_hook("push"), token="guessed-token")
    assert WEBHOOK_SECRET not in str(refused.value)


def test_a_delivery_without_a_token_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="no X-Gitlab-Token"):
        deliver("Push Hook", gitlab_hook("push"), token=None)
