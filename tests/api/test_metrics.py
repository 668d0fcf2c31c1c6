"""`/metrics` of a real server: the counters move as a release goes through its first stage,
releases by lane and state come from the database, HTTP durations are labelled by route
template and no release name appears anywhere in the exposition."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from test_api import apply_example, cut_release, record_versions, stage_succeeded, wait_for


def scrape(client) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def total(samples, name, **labels) -> float:
    return sum(value for (n, ls), value in samples.items()
               if n == name and all((k, v) in ls for k, v in labels.items()))


def test_metrics_move_through_a_release(people):
    anonymous = people.client()
    _, before = scrape(anonymous)
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    name = release.rsplit("/", 1)[1]
    rita = people.as_user("rita")
    wait_for(rita, release, stage_succeeded(0))
    text, after = scrape(anonymous)

    assert (total(after, "infrastream_deployments_total", outcome="healthy")
            > total(before, "infrastream_deployments_total", outcome="healthy"))
    assert (total(after, "infrastream_deployment_seconds_count")
            > total(before, "infrastream_deployment_seconds_count"))
    assert (total(after, "infrastream_engine_pass_seconds_count")
            > total(before, "infrastream_engine_pass_seconds_count"))
    assert total(after, "infrastream_releases", lane="release") == 1  # from this test's database
    route = "/api/v1/releases/{app_set}/{name}"
    assert any(n == "infrastream_http_request_seconds_count" and ("route", route) in ls
               and ("status", "200") in ls for n, ls in after), sorted(
        {dict(ls).get("route") for n, ls in after if n.startswith("infrastream_http")})
    assert f'"{release}"' not in text and f'"{name}"' not in text  # no raw paths, no names


def test_metrics_can_demand_a_bearer_token(people, monkeypatch):
    monkeypatch.setenv("INFRASTREAM_METRICS_TOKEN", "scrape-me")
    assert people.client().get("/metrics").status_code == 401
    assert people.client("scrape-me").get("/metrics").status_code == 200
