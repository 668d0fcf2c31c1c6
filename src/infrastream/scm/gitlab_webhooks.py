"""GitLab webhook deliveries: verified with the secret token, read into our own events.

GitLab does not sign deliveries: it sends the webhook's secret token as `X-Gitlab-Token`,
compared here in constant time. The event is named by `X-Gitlab-Event`; the gate uses
`Merge Request Hook` (actions open, update, reopen, close, merge) and `Push Hook`. An
`update` counts as new commits only when the payload has `object_attributes.oldrev` (GitLab
sends it only when code changed); title, label or approval updates are ignored. A push lists
at most the newest 20 commits: `total_commits_count` tells when the path list is partial.
The delivery id is `X-Gitlab-Event-UUID`, the same on a redelivery ("Resend request").
Field names follow GitLab's "Webhook events" documentation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from infrastream.domain.errors import Invalid, Unauthenticated

from .events import Delivery, Event, PullRequestAction, PullRequestEvent, PushEvent

PROVIDER = "gitlab"
MR_ACTIONS = {
    "open": PullRequestAction.OPENED,
    "reopen": PullRequestAction.REOPENED,
    "close": PullRequestAction.CLOSED,
    "merge": PullRequestAction.MERGED,
}


def verify(secret: str, headers: Mapping[str, str]) -> None:
    """Unauthenticated unless the delivery carries the configured secret token."""
    sent = _lower(headers).get("x-gitlab-token")
    if not secret:
        raise Unauthenticated("no webhook secret is configured for this GitLab connection, "
                              "so no delivery can be verified")
    if not sent:
        raise Unauthenticated("the delivery has no X-Gitlab-Token header: set the webhook's "
                              "secret token on GitLab")
    if not hmac.compare_digest(sent.encode(), secret.encode()):
        raise Unauthenticated("the delivery's X-Gitlab-Token is not the configured secret")


def parse(secret: str, headers: Mapping[str, str], body: bytes) -> Delivery:
    verify(secret, headers)
    lowered = _lower(headers)
    name = lowered.get("x-gitlab-event", "")
    delivery_id = lowered.get("x-gitlab-event-uuid") or hashlib.sha256(body).hexdigest()
    if not name:
        raise Invalid("the delivery has no X-Gitlab-Event header")
    try:
        payload = json.loads(body)
    except ValueError:
        raise Invalid("the delivery's body is not JSON") from None
    if not isinstance(payload, dict):
        raise Invalid("the delivery's body is not a JSON object")
    try:
        event, ignored = _event(name, payload)
    except (KeyError, TypeError, AttributeError) as exc:
        raise Invalid(f"the {name} delivery lacks a field we need ({exc})",
                      delivery_id=delivery_id) from None
    return Delivery(PROVIDER, delivery_id, name, event, ignored)


def _event(name: str, p: dict[str, Any]) -> tuple[Event | None, str]:
    if name == "Merge Request Hook":
        return _merge_request(p)
    if name == "Push Hook":
        return _push(p), ""
    return None, f"{name} events are not used"


def _merge_request(p: dict[str, Any]) -> tuple[PullRequestEvent | None, str]:
    attrs = p["object_attributes"]
    action = attrs.get("action")
    if action == "update":
        if not attrs.get("oldrev"):
            return None, "merge request update without new commits"
        kind = PullRequestAction.UPDATED
    elif action in MR_ACTIONS:
        kind = MR_ACTIONS[action]
    else:
        return None, f"merge request {action} is not used"
    user = p.get("user") or {}
    source = attrs.get("source") or {}
    merged = kind is PullRequestAction.MERGED
    return PullRequestEvent(
        action=kind, repository=p["project"]["path_with_namespace"], number=int(attrs["iid"]),
        head_sha=attrs["last_commit"]["id"], head_branch=attrs["source_branch"],
        base_branch=attrs["target_branch"], author=user.get("username", ""),
        title=attrs["title"], web_url=attrs["url"], actor=user.get("username", ""),
        merged=merged, merge_commit_sha=attrs.get("merge_commit_sha") if merged else None,
        head_repository=source.get("path_with_namespace"),
        before_sha=attrs.get("oldrev")), ""


def _push(p: dict[str, Any]) -> PushEvent:
    commits = p.get("commits") or []
    paths: set[str] = set()
    for commit in commits:
        for key in ("added", "modified", "removed"):
            paths.update(commit.get(key) or ())
    project = p["project"]
    default = project.get("default_branch")
    total = p.get("total_commits_count")
    return PushEvent(
        repository=project["path_with_namespace"], ref=p["ref"], before=p["before"],
        after=p["after"], pusher=p.get("user_username") or p.get("user_name", ""),
        changed_paths=tuple(sorted(paths)),
        paths_complete=not isinstance(total, int) or total <= len(commits),
        default_branch=(p["ref"] == f"refs/heads/{default}") if default else None,
        commits=tuple(c["id"] for c in commits))


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
