"""`/metrics` of a real server counts SCM webhook deliveries by outcome (accepted, duplicate,
refused, ignored) and the commit statuses of the outbox (retried while the host is down,
delivered once it is back), on GitHub and on GitLab."""

from __future__ import annotations

import httpx
from gate_world import Gate, sha
from prometheus_client.parser import text_string_to_metric_families
from test_deliveries import gated_api
from test_pull_request_story import shop_with_gate


def scrape(gate: Gate) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{gate.url}/metrics", timeout=15)
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def count(samples: dict, name: str, outcome: str) -> float:
    return samples.get((name, (("outcome", outcome),)), 0.0)


WEBHOOKS = "infrastream_webhooks_received_total"
STATUSES = "infrastream_scm_status_deliveries_total"


def test_webhook_deliveries_are_counted_by_outcome(gate: Gate) -> None:
    gated_api(gate)
    before = scrape(gate)
    assert gate.opened(50, sha("counted"), delivery="d-50").status_code == 202
    assert gate.opened(50, sha("counted"), delivery="d-50").json()["outcome"] == "duplicate"
    assert gate.opened(51, sha("forged"), secret="not-the-secret",
                       delivery="d-51").status_code == 401
    assert gate.merged(sha("elsewhere"), repository="octo-org/billing").json()[
        "outcome"] == "ignored"
    after = scrape(gate)
    for outcome in ("accepted", "duplicate", "refused", "ignored"):
        assert count(after, WEBHOOKS, outcome) - count(before, WEBHOOKS, outcome) == 1, outcome


def test_outbox_statuses_count_retries_while_the_host_is_down_then_deliveries(
        gate: Gate) -> None:
    shop_with_gate(gate)
    head = sha("pr-52")
    gate.opened(52, head)
    gate.wait_state(head, "pending", timeout=10)
    before = scrape(gate)
    assert count(before, STATUSES, "delivered") >= 1  # the pending status reached the host
    gate.host.go_down()
    gate.record("api", "registry.example.com/shop/api:pr-52", head, pull_request=52)
    gate.wait_for(lambda: [s for s in gate.sent(head) if s["outcome"] == "pending"
                           and s["attempts"] >= 1],
                  message="a status kept for a retry while the host is down")
    down = scrape(gate)
    assert count(down, STATUSES, "retried") > count(before, STATUSES, "retried")
    gate.host.come_back()
    gate.wait_state(head, "success", timeout=30)
    back = scrape(gate)
    assert count(back, STATUSES, "delivered") > count(down, STATUSES, "delivered")
    assert count(back, STATUSES, "failed") == count(before, STATUSES, "failed")
