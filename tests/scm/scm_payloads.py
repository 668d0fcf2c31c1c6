"""Where the SCM tests get their payloads: the real npm examples and GitLab's documented ones.

GitHub payloads come from `@octokit/webhooks-examples` and requests are checked against
`@octokit/openapi`, both installed into tests/npm by `./dev.sh test` (npm ci). GitLab
payloads are the examples of GitLab's "Webhook events" documentation, kept in
`gitlab_hooks/`. A missing npm install fails the tests: it never skips them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

NPM = Path(__file__).resolve().parents[1] / "npm" / "node_modules"
EXAMPLES = NPM / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
GITLAB_HOOKS = Path(__file__).resolve().parent / "gitlab_hooks"
REPOSITORY = "octo-org/shop-api"
PROJECT = "platform/shop/api"
WEBHOOK_SECRET = "whsec-3f9a7c1e5b2d"


def github_examples(event: str) -> list[dict[str, Any]]:
    """Every example payload of `@octokit/webhooks-examples` (api.github.com) for `event`."""
    if not EXAMPLES.is_file():
        pytest.fail(f"{EXAMPLES} is missing: run `npm ci --prefix tests/npm` (./dev.sh test does)")
    by_name = {e["name"]: e["examples"] for e in json.loads(EXAMPLES.read_text("utf-8"))}
    examples: list[dict[str, Any]] = by_name[event]
    return examples


def gitlab_hook(name: str) -> dict[str, Any]:
    """The example payload of GitLab's documentation for `name` (`merge_request`, `push`…)."""
    payload: dict[str, Any] = json.loads((GITLAB_HOOKS / f"{name}.json").read_text("utf-8"))
    return payload
