"""The pull-request gate as a story, on GitHub and on GitLab, over real HTTP.

A developer opens a pull request of the shop's API: the head commit is `pending` at once,
waiting for its build; CI records the build; the API alone is deployed to development beside
the web shop and the worker, its integration tests run there, and the status turns `success`
with a link to the run's Portal page; development is put back as it was. A second push
supersedes a running run; a failing test is a `failure` with the test's words.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from gate_world import Gate, sha

from infrastream.manifests.environment import default_environment
from infrastream.scm.fake_github import FakeGitHub


def shop_with_gate(gate: Gate) -> None:
    """The shop, its API connected to the host, and release shop/v1 running in development."""
    gate.connect()
    gate.apply(apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository}}})
    for app in ("api", "web", "worker"):
        gate.record(app, f"registry.example.com/shop/{app}:1.0.0", sha("main-0"))
    response = gate.as_user("rita").post("/api/v1/releases", json={"applicationSet": "shop"})
    assert response.status_code == 201, response.text
    gate.wait_for(lambda: _first_stage(gate) == "succeeded", message="shop/v1 in development")


def _first_stage(gate: Gate) -> str:
    release = gate.as_user("rita").get("/api/v1/releases/shop/v1").json()
    return str(release["stages"][0]["state"])


def _running(gate: Gate) -> dict[str, Any]:
    local = gate.services.targets.get_target("local")
    return {s.app: s for s in local.status(default_environment("development"))}


def _answers(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(endpoint + "/healthz", timeout=5) as response:
        return dict(json.load(response))


def _run(gate: Gate, url: str) -> dict[str, Any]:
    run_id = url.rsplit("/", 1)[-1]
    return dict(gate.as_user("ci-bot").get(f"/api/v1/prereleases/{run_id}").json())


def test_a_pull_request_is_pending_then_validated_beside_the_others_then_success(
        gate: Gate) -> None:
    shop_with_gate(gate)
    before = _running(gate)
    head = sha("pr-17-first")

    response = gate.opened(17, head, author="dana")
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "accepted"
    waiting = gate.wait_state(head, "pending", timeout=10)
    assert waiting["description"] == f"waiting for the build of {head[:7]}"

    gate.record("api", f"registry.example.com/shop/api:pr-17-{head[:7]}", head,
                pull_request=17)
    done = gate.wait_state(head, "success")
    assert done["description"].startswith("passed in development — api: integration tests "
                                           "passed")
    assert done["url"].startswith(gate.url + "/portal/prereleases/")
    run = _run(gate, done["url"])
    assert (run["application"], run["commit"], run["ref"]) == ("api", head, "pull/17")
    assert f"pr-17-{head[:7]}" in run["output"] and "PASS" in run["output"]
    assert run["restored"] is True
    trail = gate.as_user("pat").get("/api/v1/audit", params={
        "objectType": "prerelease", "objectId": str(run["id"])}).json()
    [started] = [e for e in trail if e["action"] == "prerelease.start"]
    assert started["actor"] == f"scm:{gate.kind}"
    assert started["after"]["cause"]["author"] == "dana"
    assert started["after"]["cause"]["scm"] == gate.kind
    assert started["after"]["cause"]["delivery"] == response.json()["delivery"]
    states = [s["state"] for s in gate.statuses(head)]
    assert states[0] == "pending" and states[-1] == "success"
    assert ("running" in states) if gate.kind == "gitlab" else set(states) == {"pending",
                                                                              "success"}
    after = _running(gate)
    for app in ("web", "worker"):  # untouched: same processes, same version
        assert after[app].endpoint == before[app].endpoint
        assert _answers(after[app].endpoint)["version"] == "1.0.0"
    assert after["api"].version == "1.0.0"  # development restored after the run
    portal = gate.portal("ci-bot")
    page = portal.get(done["url"])  # the status links to the run's page
    assert page.status_code == 200 and f"pr-17-{head[:7]}" in page.text and "PASS" in page.text
    listed = portal.get("/portal/pull-requests", params={"number": 17})
    assert listed.status_code == 200
    pull_url = (f"https://github.com/{gate.repository}/pull/17" if gate.kind == "github"
                else f"{gate.host.root_url}/{gate.repository}/-/merge_requests/17")
    web = f"{gate.host.root_url}/{gate.repository}"  # the fakes serve their web pages there
    commit_url = f"{web}/-/commit/{head}" if gate.kind == "gitlab" else f"{web}/commit/{head}"
    assert f'href="{pull_url}"' in listed.text and "by dana" in listed.text
    assert f'href="{commit_url}"' in listed.text
    assert f'href="/portal/prereleases/{run["id"]}"' in listed.text
    assert getattr(gate.host, "violations", []) == []


def test_a_second_push_supersedes_the_running_run_of_the_old_head(gate: Gate) -> None:
    shop_with_gate(gate)
    old, new = sha("pr-18-old"), sha("pr-18-new")
    gate.opened(18, old)
    gate.record("api", "registry.example.com/shop/api:pr-18-old-slow", old, pull_request=18)
    running = gate.wait_for(lambda: [s for s in gate.statuses(old)
                                     if s["description"].startswith("deploying")],
                            message="the old head's run to start")
    old_run = running[-1]["url"]

    response = gate.pushed_to_pull_request(18, new, before=old)
    assert response.status_code == 202, response.text
    gate.let_slow_runs_finish()  # superseded while it ran
    superseded = gate.wait_state(old, "canceled" if gate.kind == "gitlab" else "failure")
    assert superseded["description"] == f"superseded by {new[:7]}"
    gate.wait_for(lambda: _run(gate, old_run)["state"] == "canceled",
                  message="the old run to end canceled")
    assert _run(gate, old_run)["restored"] is True

    gate.record("api", "registry.example.com/shop/api:pr-18-new", new, pull_request=18)
    assert gate.wait_state(new, "success")["description"].startswith("passed in development")
    heads = gate.as_user("ci-bot").get("/api/v1/scm/pull-requests",
                                       params={"number": 18}).json()
    assert [(h["sha"], h["state"]) for h in heads] == [(new, "open"), (old, "superseded")]
    assert getattr(gate.host, "violations", []) == []


def test_a_failing_integration_test_is_a_failure_with_the_tests_words(gate: Gate) -> None:
    shop_with_gate(gate)
    head = sha("pr-19")
    gate.opened(19, head)
    gate.record("api", "registry.example.com/shop/api:pr-19-broken", head, pull_request=19)
    failed = gate.wait_state(head, "failed" if gate.kind == "gitlab" else "failure")
    assert failed["description"].startswith("failed in development — ")
    assert "checkout returns 500 for an empty cart" in failed["description"]
    assert "checkout returns 500" in _run(gate, failed["url"])["output"]


def test_closing_the_pull_request_cancels_its_queued_run(gate: Gate) -> None:
    shop_with_gate(gate)
    busy, queued = sha("pr-20"), sha("pr-21")
    gate.opened(20, busy)
    gate.record("api", "registry.example.com/shop/api:pr-20-slow", busy, pull_request=20)
    gate.wait_for(lambda: [s for s in gate.statuses(busy)
                           if s["description"].startswith("deploying")])
    gate.opened(21, queued)
    gate.record("api", "registry.example.com/shop/api:pr-21", queued, pull_request=21)
    position = gate.wait_for(lambda: [s for s in gate.sent(queued) if s["outcome"] ==
                                      "delivered" and s["description"].startswith(
                                          "queued at position 1")])
    assert "development (busy with pre-release run" in position[-1]["description"]
    if gate.kind == "github":  # GitLab refuses pending → pending: it keeps the first words
        assert gate.statuses(queued)[-1]["description"] == position[-1]["description"]

    assert gate.closed(21, queued).status_code == 202
    closed = gate.wait_state(queued, "canceled" if gate.kind == "gitlab" else "failure")
    assert closed["description"] == "canceled: the pull request was closed"
    assert _run(gate, position[-1]["targetUrl"])["state"] == "canceled"
    gate.let_slow_runs_finish()  # the busy run could not have ended before: now it may
    gate.wait_state(busy, "success")


def test_a_monorepo_pull_request_concerns_only_the_apps_whose_path_it_touches(
        gate: Gate) -> None:
    gate.connect()
    gate.apply(apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository,
                                        "path": "services/api"}}})
    docs, code = sha("pr-50-docs"), sha("pr-51-code")
    host = gate.host
    if isinstance(host, FakeGitHub):
        host.set_pull_request_files(gate.repository, 50, ["docs/index.md"])
        host.set_pull_request_files(gate.repository, 51, [("services/api/app.py",
                                                           "services/old/app.py")])
    else:
        host.set_merge_request_diffs(gate.repository, 50, ["docs/index.md"])
        host.set_merge_request_diffs(gate.repository, 51, ["services/api/app.py"])
    gate.opened(50, docs)
    gate.opened(51, code)
    passed = gate.wait_state(docs, "success")
    assert passed["description"] == ("no application is affected: nothing below services/api "
                                     "changed for api")
    gate.wait_for(lambda: [s for s in gate.sent(code) if s["outcome"] == "delivered" and
                           s["description"] == f"waiting for the build of {code[:7]}"],
                  message="the touched app to wait for its build")
    assert getattr(gate.host, "violations", []) == []
