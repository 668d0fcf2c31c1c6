"""GitHub deliveries: real payloads from @octokit/webhooks-examples, signed as GitHub signs them."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from scm_payloads import WEBHOOK_SECRET, github_examples

from infrastream.domain.errors import Invalid, Unauthenticated
from infrastream.scm import (
    GitHubConfig,
    GitHubProvider,
    MergeGroupAction,
    MergeGroupEvent,
    PingEvent,
    PullRequestAction,
    PullRequestEvent,
    PushEvent,
)
from infrastream.scm.github_webhooks import signature

PROVIDER = GitHubProvider(GitHubConfig(token="ghp-not-used-here", webhook_secret=WEBHOOK_SECRET))
GATE_ACTIONS = {"opened": PullRequestAction.OPENED, "synchronize": PullRequestAction.UPDATED,
                "reopened": PullRequestAction.REOPENED, "closed": PullRequestAction.CLOSED}


def deliver(event: str, payload: dict[str, Any], *, secret: str = WEBHOOK_SECRET,
            delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> Any:
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
               "X-Hub-Signature-256": signature(secret, body),
               "Content-Type": "application/json"}
    return PROVIDER.parse_webhook(headers, body)


def examples(event: str, actions: set[str] | None = None) -> list[Any]:
    found = [p for p in github_examples(event) if actions is None or p.get("action") in actions]
    assert found, f"@octokit/webhooks-examples has no {event} {actions or ''} example"
    return [pytest.param(p, id=f"{p.get('action', event)}-{i}") for i, p in enumerate(found)]


@pytest.mark.parametrize("payload", examples("pull_request", set(GATE_ACTIONS)))
def test_every_real_pull_request_example_the_gate_uses_becomes_our_event(
        payload: dict[str, Any]) -> None:
    delivery = deliver("pull_request", payload)
    pr = payload["pull_request"]
    event = delivery.event
    assert isinstance(event, PullRequestEvent)
    assert delivery.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert delivery.event_name == "pull_request" and delivery.provider == "github"
    assert event.action is GATE_ACTIONS[payload["action"]]
    assert event.repository == payload["repository"]["full_name"] == delivery.repository
    assert event.number == payload["number"]
    assert event.head_sha == pr["head"]["sha"] and len(event.head_sha) == 40
    assert (event.head_branch, event.base_branch) == (pr["head"]["ref"], pr["base"]["ref"])
    assert (event.author, event.actor) == (pr["user"]["login"], payload["sender"]["login"])
    assert (event.title, event.web_url) == (pr["title"], pr["html_url"])
    assert event.merged is False and event.merge_commit_sha is None
    if payload["action"] == "synchronize":
        assert event.before_sha == payload["before"]


def test_a_merged_pull_request_says_merged_and_names_the_merge_commit() -> None:
    # The package has no merged example: take its real `closed` payload and set what GitHub
    # sets when the close was a merge.
    payload = copy.deepcopy(github_examples("pull_request")[
        [p["action"] for p in github_examples("pull_request")].index("closed")])
    payload["pull_request"].update(merged=True, merged_at="2019-05-15T15:20:41Z",
                                   merge_commit_sha="c4295bd74fb0f4fda03689c3df3f2803b658fd85")
    event = deliver("pull_request", payload).event
    assert isinstance(event, PullRequestEvent)
    assert event.action is PullRequestAction.MERGED and event.merged
    assert event.merge_commit_sha == "c4295bd74fb0f4fda03689c3df3f2803b658fd85"


@pytest.mark.parametrize("payload", examples("pull_request", {"labeled", "assigned",
                                                              "review_requested", "locked"}))
def test_pull_request_actions_the_gate_does_not_use_are_ignored_with_a_reason(
        payload: dict[str, Any]) -> None:
    delivery = deliver("pull_request", payload)
    assert delivery.event is None
    assert delivery.ignored == f"pull_request {payload['action']} is not used"


@pytest.mark.parametrize("payload", examples("push"))
def test_every_real_push_example_becomes_a_push_with_its_changed_paths(
        payload: dict[str, Any]) -> None:
    event = deliver("push", payload).event
    assert isinstance(event, PushEvent)
    assert event.repository == payload["repository"]["full_name"]
    assert (event.ref, event.before, event.after) == (payload["ref"], payload["before"],
                                                      payload["after"])
    assert event.pusher == payload["pusher"]["name"]
    expected = sorted({path for c in payload["commits"]
                       for key in ("added", "modified", "removed") for path in c[key]})
    assert list(event.changed_paths) == expected
    assert event.commits == tuple(c["id"] for c in payload["commits"])
    assert (event.created, event.deleted) == (payload["created"], payload["deleted"])
    default = payload["repository"]["default_branch"]
    assert event.default_branch is (payload["ref"] == f"refs/heads/{default}")
    if payload["ref"].startswith("refs/tags/"):
        assert event.branch is None and event.tag == payload["ref"].removeprefix("refs/tags/")
    else:
        assert event.branch == payload["ref"].removeprefix("refs/heads/") and event.tag is None


def test_a_push_to_the_default_branch_lists_the_files_its_commits_touched() -> None:
    payload = next(p for p in github_examples("push") if p["ref"] == "refs/heads/master")
    event = deliver("push", payload).event
    assert isinstance(event, PushEvent)
    assert event.branch == "master" and event.default_branch is True
    assert event.changed_paths == ("README.md",) and event.paths_complete


@pytest.mark.parametrize("payload", examples("merge_group"))
def test_every_real_merge_group_example_asks_for_checks_on_the_group_head(
        payload: dict[str, Any]) -> None:
    event = deliver("merge_group", payload).event
    group = payload["merge_group"]
    assert isinstance(event, MergeGroupEvent)
    assert event.action is MergeGroupAction.CHECKS_REQUESTED
    assert event.repository == payload["repository"]["full_name"]
    assert (event.head_sha, event.head_ref) == (group["head_sha"], group["head_ref"])
    assert (event.base_ref, event.base_sha) == (group["base_ref"], group["base_sha"])


@pytest.mark.parametrize("payload", examples("ping"))
def test_every_real_ping_example_is_a_ping(payload: dict[str, Any]) -> None:
    event = deliver("ping", payload).event
    assert isinstance(event, PingEvent)
    assert event.hook_id == payload["hook_id"] and event.zen == payload["zen"]
    repository = payload.get("repository")
    assert event.repository == (repository["full_name"] if repository else None)


def test_events_the_gate_does_not_use_are_ignored_with_a_reason() -> None:
    payload = github_examples("issues")[0]
    delivery = deliver("issues", payload)
    assert delivery.event is None and delivery.ignored == "issues events are not used"


def test_a_delivery_signed_with_the_secret_is_accepted_whatever_the_header_case() -> None:
    payload = github_examples("ping")[0]
    body = json.dumps(payload).encode()
    headers = {"x-github-event": "ping", "x-github-delivery": "d-1",
               "x-hub-signature-256": signature(WEBHOOK_SECRET, body)}
    assert isinstance(PROVIDER.parse_webhook(headers, body).event, PingEvent)


def test_a_form_encoded_delivery_is_read_like_a_json_one() -> None:
    payload = github_examples("ping")[0]
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-2",
               "X-Hub-Signature-256": signature(WEBHOOK_SECRET, body)}
    assert isinstance(PROVIDER.parse_webhook(headers, body).event, PingEvent)


def signed_push() -> tuple[dict[str, str], bytes]:
    body = json.dumps(github_examples("push")[0]).encode()
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-3",
            "X-Hub-Signature-256": signature(WEBHOOK_SECRET, body)}, body


def test_a_tampered_body_is_refused() -> None:
    headers, body = signed_push()
    with pytest.raises(Unauthenticated, match="does not match"):
        PROVIDER.parse_webhook(headers, body.replace(b"Codertocat", b"Mallory123"))


def test_a_delivery_signed_with_another_secret_is_refused() -> None:
    headers, body = signed_push()
    headers["X-Hub-Signature-256"] = signature("not-the-secret", body)
    with pytest.raises(Unauthenticated) as refused:
        PROVIDER.parse_webhook(headers, body)
    assert WEBHOOK_SECRET not in str(refused.value) and WEBHOOK_SECRET not in repr(refused.value)


def test_an_unsigned_delivery_is_refused() -> None:
    headers, body = signed_push()
    del headers["X-Hub-Signature-256"]
    with pytest.raises(Unauthenticated, match="no X-Hub-Signature-256"):
        PROVIDER.parse_webhook(headers, body)


def test_a_signed_delivery_that_is_not_json_is_invalid_not_unauthenticated() -> None:
    body = b"<html>not json</html>"
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature(WEBHOOK_SECRET, body)}
    with pytest.raises(Invalid, match="not JSON"):
        PROVIDER.parse_webhook(headers, body)
