"""Deliveries are safe and never lost, on GitHub and on GitLab: a forged delivery is refused
(401) and audited, a replay does nothing twice, an oversized one is refused (413), one for a
repository nobody names is recorded as ignored, and a status the host could not take while
it was down arrives once it is back."""

from __future__ import annotations

import json

import httpx
from gate_world import SECRET, Gate, github_examples, sha
from test_pull_request_story import shop_with_gate

from infrastream.scm.github_webhooks import signature
from infrastream.service.webhooks import MAX_BODY

PROBLEM = "application/problem+json"


def gated_api(gate: Gate) -> None:
    gate.connect()
    gate.apply(apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository}}})


def test_a_forged_or_unsigned_delivery_is_refused_with_401_and_audited(gate: Gate) -> None:
    gated_api(gate)
    for secret in ("not-the-secret", None):
        response = gate.opened(30, sha("forged"), secret=secret, delivery="forged-1")
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        body = response.json()
        assert body["status"] == 401 and body["instance"] == f"/api/v1/scm/{gate.kind}/webhook"
        assert body["detail"]
    audit = gate.as_user("pat").get("/api/v1/audit", params={
        "objectType": "scm-connection", "objectId": gate.kind}).json()
    refused = [e for e in audit if e["action"] == "scm.delivery.refused"]
    assert len(refused) == 2 and {e["actor"] for e in refused} == {"unauthenticated"}
    assert refused[0]["after"]["delivery"] == "forged-1"
    assert all(SECRET not in json.dumps(e) for e in audit)
    listed = gate.as_user("pat").get("/api/v1/scm/deliveries").json()["webhooks"]
    assert [w["outcome"] for w in listed] == ["refused", "refused"]
    assert gate.as_user("pat").get("/api/v1/scm/pull-requests").json() == []  # nothing done

    real = gate.opened(30, sha("forged"), delivery="forged-1")  # a forgery never blocks it
    assert real.status_code == 202 and real.json()["outcome"] == "accepted"


def test_a_replayed_delivery_is_ignored(gate: Gate) -> None:
    gated_api(gate)
    head = sha("replayed")
    first = gate.opened(31, head, delivery="d-31")
    again = gate.opened(31, head, delivery="d-31")
    assert (first.status_code, first.json()["outcome"]) == (202, "accepted")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    heads = gate.as_user("pat").get("/api/v1/scm/pull-requests").json()
    assert len(heads) == 1
    listed = gate.as_user("pat").get("/api/v1/scm/deliveries").json()["webhooks"]
    assert [w["outcome"] for w in listed] == ["accepted"]


def test_an_oversized_delivery_is_refused_with_413(gate: Gate) -> None:
    gated_api(gate)
    response = httpx.post(f"{gate.url}/api/v1/scm/{gate.kind}/webhook",
                          content=b"{" + b" " * MAX_BODY + b"}", timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "larger than 5 MiB" in response.json()["detail"]
    listed = gate.as_user("pat").get("/api/v1/scm/deliveries").json()["webhooks"]
    assert [(w["outcome"], w["reason"]) for w in listed] == [
        ("refused", "the delivery is larger than 5 MiB")]


def test_a_delivery_for_a_repository_no_application_names_is_recorded_as_ignored(
        gate: Gate) -> None:
    gated_api(gate)
    response = gate.merged(sha("elsewhere"), repository="octo-org/billing")
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"
    assert response.json()["reason"] == ("no Application or manifest source names "
                                         f"octo-org/billing on {gate.kind}")
    listed = gate.as_user("pat").get("/api/v1/scm/deliveries").json()["webhooks"]
    assert listed[0]["outcome"] == "ignored" and listed[0]["repository"] == "octo-org/billing"


def test_an_unknown_connection_is_a_404_problem(gate: Gate) -> None:
    gated_api(gate)
    response = gate.opened(32, sha("nowhere"), connection="bitbucket")
    assert response.status_code == 404
    assert response.json()["detail"] == "no SCM connection `bitbucket`"


def test_a_status_the_host_missed_while_down_arrives_when_it_is_back(gate: Gate) -> None:
    shop_with_gate(gate)
    head = sha("pr-40")
    gate.opened(40, head)
    gate.wait_state(head, "pending", timeout=10)
    gate.host.go_down()
    gate.record("api", "registry.example.com/shop/api:pr-40", head, pull_request=40)
    gate.wait_for(lambda: [s for s in gate.sent(head) if s["outcome"] == "pending"
                           and s["attempts"] >= 1 and s["state"] in ("success", "running")],
                  message="a status kept for a retry while the host is down")
    gate.wait_for(lambda: [r for r in gate.as_user("ci-bot").get(
        "/api/v1/prereleases").json() if r["state"] == "passed"], message="the run to pass")
    # The engine's SCM pass queues the run's `success` after the run is recorded `passed`
    # (another transaction): wait for it (replacing the `running` kept for the retry) before
    # looking at the outbox; with quicker clients the test could look in between.
    gate.wait_for(lambda: [s for s in gate.sent(head) if s["outcome"] == "pending"
                           and s["state"] == "success"], timeout=30,
                  message="the run's success queued for the host that is down")
    waiting = [s for s in gate.sent(head) if s["outcome"] == "pending"]
    assert len(waiting) == 1 and "503" in waiting[0]["lastError"]  # the newest replaced older
    assert waiting[0]["state"] == "success"
    assert gate.statuses(head)[-1]["state"] == "pending"  # the host saw nothing new
    gate.host.come_back()
    done = gate.wait_state(head, "success", timeout=30)
    assert done["description"].startswith("passed in development")
    assert all(s["outcome"] == "delivered" for s in gate.sent(head))
    assert getattr(gate.host, "violations", []) == []


def test_githubs_ping_is_accepted_and_listed(github_gate: Gate) -> None:
    gate = github_gate
    gate.connect()
    ping = gate.post("ping", github_examples("ping")[0])
    assert ping.status_code == 202 and ping.json()["outcome"] == "accepted"
    listed = gate.as_user("pat").get("/api/v1/scm/deliveries").json()["webhooks"]
    assert (listed[0]["event"], listed[0]["outcome"]) == ("ping", "accepted")


def test_a_signed_delivery_that_is_not_json_is_a_400_problem(gate: Gate) -> None:
    gated_api(gate)
    headers = {"Content-Type": "application/json"}
    body = b"{not json"
    if gate.kind == "github":
        headers.update({"X-GitHub-Event": "push", "X-GitHub-Delivery": "broken-1",
                        "X-Hub-Signature-256": signature(SECRET, body)})
    else:
        headers.update({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "broken-1",
                        "X-Gitlab-Token": SECRET})
    response = httpx.post(f"{gate.url}/api/v1/scm/{gate.kind}/webhook", content=body,
                          headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"] == "the delivery's body is not JSON"
    listed = gate.as_user("pat").get("/api/v1/scm/deliveries").json()["webhooks"]
    assert [(w["outcome"], w["delivery"]) for w in listed] == [("invalid", "broken-1")]
