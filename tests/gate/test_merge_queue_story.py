"""GitHub's merge queue: a `merge_group` asks for the required checks on the group's head
commit, which gets its own pre-release run and status; a group the queue drops is canceled."""

from __future__ import annotations

import copy
from typing import Any

from gate_world import REPOSITORY, Gate, github_examples, sha
from test_pull_request_story import shop_with_gate


def merge_group(action: str, head: str, number: int, **extra: str) -> dict[str, Any]:
    payload = copy.deepcopy(github_examples("merge_group")[0])
    payload["action"] = action
    payload["repository"]["full_name"] = REPOSITORY
    payload["merge_group"].update(head_sha=head, head_ref=(
        f"refs/heads/gh-readonly-queue/main/pr-{number}-{sha('base')}"), **extra)
    return payload


def test_a_merge_group_head_gets_a_run_and_a_status(github_gate: Gate) -> None:
    gate = github_gate
    shop_with_gate(gate)
    template = "registry.example.com/shop/api:pr-{number}-{sha7}"
    gate.apply(apps={"api": {"source": {"scm": "github", "repository": REPOSITORY},
                             "pullRequestImage": template}})
    group = sha("group-104")
    response = gate.post("merge_group", merge_group("checks_requested", group, 104))
    assert response.status_code == 202 and response.json()["outcome"] == "accepted"
    done = gate.wait_state(group, "success")
    run = gate.as_user("ci-bot").get(
        f"/api/v1/prereleases/{done['url'].rsplit('/', 1)[-1]}").json()
    assert run["image"] == f"registry.example.com/shop/api:pr-104-{group[:7]}"
    assert run["commit"] == group and run["ref"].startswith("refs/heads/gh-readonly-queue/")

    dropped = sha("group-105")
    gate.post("merge_group", merge_group("checks_requested", dropped, 105))
    gate.post("merge_group", {**merge_group("destroyed", dropped, 105), "reason": "dequeued"})
    canceled = gate.wait_state(dropped, "failure")
    assert canceled["description"] == "canceled: the merge group was dequeued"
    assert gate.host.violations == []
