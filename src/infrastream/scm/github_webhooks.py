"""GitHub webhook deliveries: verified with the shared secret, read into our own events.

GitHub signs each delivery with `X-Hub-Signature-256: sha256=<hex>`, an HMAC-SHA256 of the
raw body under the webhook's secret; it is compared in constant time before any byte of the
payload is trusted. The events the pull-request gate uses are `pull_request` (opened,
synchronize, reopened, closed), `push`, `merge_group` and `ping`; every other event or
action is a delivery with `event=None` and the reason. Payloads may come as JSON or, when
the webhook was created with the form content type, as `payload=<json>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from infrastream.domain.errors import Invalid, Unauthenticated

from .events import (
    Delivery,
    Event,
    MergeGroupAction,
    MergeGroupEvent,
    PingEvent,
    PullRequestAction,
    PullRequestEvent,
    PushEvent,
)

PROVIDER = "github"
SIGNATURE_HEADER = "x-hub-signature-256"
PR_ACTIONS = {
    "opened": PullRequestAction.OPENED,
    "synchronize": PullRequestAction.UPDATED,
    "reopened": PullRequestAction.REOPENED,
}
MAX_LISTED_COMMITS = 2048
"""GitHub lists at most this many commits in a push payload."""


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` (also used by the tests)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Unauthenticated unless `body` carries a valid signature under `secret`."""
    sent = _lower(headers).get(SIGNATURE_HEADER)
    if not secret:
        raise Unauthenticated("no webhook secret is configured for this GitHub connection, "
                              "so no delivery can be verified")
    if not sent:
        raise Unauthenticated("the delivery has no X-Hub-Signature-256 header: set the "
                              "webhook's secret on GitHub")
    if not hmac.compare_digest(sent.strip().encode(), signature(secret, body).encode()):
        raise Unauthenticated("the delivery's X-Hub-Signature-256 does not match its body "
                              "under the configured webhook secret")


def parse(secret: str, headers: Mapping[str, str], body: bytes) -> Delivery:
    """Verify, then read one delivery."""
    verify(secret, headers, body)
    lowered = _lower(headers)
    name = lowered.get("x-github-event", "")
    delivery_id = lowered.get("x-github-delivery") or hashlib.sha256(body).hexdigest()
    if not name:
        raise Invalid("the delivery has no X-GitHub-Event header")
    payload = _payload(body)
    try:
        event, ignored = _event(name, payload)
    except (KeyError, TypeError, AttributeError) as exc:
        raise Invalid(f"the {name} delivery lacks a field we need ({exc})",
                      delivery_id=delivery_id) from None
    return Delivery(PROVIDER, delivery_id, name, event, ignored)


def _event(name: str, p: dict[str, Any]) -> tuple[Event | None, str]:
    action = p.get("action")
    if name == "ping":
        repository = p.get("repository")
        return PingEvent(hook_id=p.get("hook_id"), zen=p.get("zen", ""),
                         repository=repository["full_name"] if repository else None), ""
    if name == "pull_request":
        return _pull_request(p)
    if name == "push":
        return _push(p), ""
    if name == "merge_group":
        if action not in ("checks_requested", "destroyed"):
            return None, f"merge_group {action} is not used"
        group = p["merge_group"]
        return MergeGroupEvent(
            action=MergeGroupAction(action), repository=p["repository"]["full_name"],
            head_sha=group["head_sha"], head_ref=group["head_ref"],
            base_ref=group["base_ref"], base_sha=group.get("base_sha"),
            reason=p.get("reason")), ""
    return None, f"{name} events are not used"


def _pull_request(p: dict[str, Any]) -> tuple[PullRequestEvent | None, str]:
    pr = p["pull_request"]
    action = p["action"]
    if action == "closed":
        kind = PullRequestAction.MERGED if pr.get("merged") else PullRequestAction.CLOSED
    elif action in PR_ACTIONS:
        kind = PR_ACTIONS[action]
    else:
        return None, f"pull_request {action} is not used"
    head_repo = pr["head"].get("repo")
    merged = kind is PullRequestAction.MERGED
    return PullRequestEvent(
        action=kind, repository=p["repository"]["full_name"], number=int(pr["number"]),
        head_sha=pr["head"]["sha"], head_branch=pr["head"]["ref"],
        base_branch=pr["base"]["ref"], author=pr["user"]["login"], title=pr["title"],
        web_url=pr["html_url"], actor=p["sender"]["login"], merged=merged,
        merge_commit_sha=pr.get("merge_commit_sha") if merged else None,
        head_repository=head_repo["full_name"] if head_repo else None,
        before_sha=p.get("before")), ""


def _push(p: dict[str, Any]) -> PushEvent:
    commits = p.get("commits") or []
    paths: set[str] = set()
    for commit in commits:
        for key in ("added", "modified", "removed"):
            paths.update(commit.get(key) or ())
    repository = p["repository"]
    default = repository.get("default_branch")
    pusher = p.get("pusher") or {}
    return PushEvent(
        repository=repository["full_name"], ref=p["ref"], before=p["before"], after=p["after"],
        pusher=pusher.get("name") or p.get("sender", {}).get("login", ""),
        changed_paths=tuple(sorted(paths)),
        paths_complete=len(commits) < MAX_LISTED_COMMITS,
        default_branch=(p["ref"] == f"refs/heads/{default}") if default else None,
        commits=tuple(c["id"] for c in commits))


def _payload(body: bytes) -> dict[str, Any]:
    text = body.decode("utf-8", errors="replace")
    if text.startswith("payload="):
        text = parse_qs(text).get("payload", [""])[0]
    try:
        payload = json.loads(text)
    except ValueError:
        raise Invalid("the delivery's body is not JSON") from None
    if not isinstance(payload, dict):
        raise Invalid("the delivery's body is not a JSON object")
    return payload


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
