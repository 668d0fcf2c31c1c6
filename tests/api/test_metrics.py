"""`/metrics` of a real server: the counters move as a release goes through its first stage,
releases by lane and state come from the database, HTTP durations are labelled by route
template and no release name appears anywhere in the exposition."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
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


# -- the example alert rules (deploy/prometheus/alerts.yaml) ----------------------------------

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"
README = ALERTS.parents[2] / "README.md"
_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
             "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "info": ("_info",)}
_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")


def exposed_names(client) -> set[str]:
    """Every series name `/metrics` exposes, by its families' types (a labelled family with
    no child yet shows no sample, but its HELP and TYPE are there)."""
    text = client.get("/metrics").text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_the_alert_rules_are_a_rules_file_naming_only_metrics_a_scrape_has(people):
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"} and document["groups"]
    names = exposed_names(people.client())
    seen: set[str] = set()
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"], group
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule["alert"]
            assert rule["alert"] not in seen, rule["alert"]
            seen.add(rule["alert"])
            assert _DURATION.fullmatch(rule["for"]), rule
            assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule
            assert all(isinstance(v, str) for v in {**rule["labels"],
                                                    **rule["annotations"]}.values())
            assert {"summary", "description"} <= set(rule["annotations"]), rule
            used = set(re.findall(r"\binfrastream_[a-z0-9_]+", rule["expr"]))
            assert used, rule["expr"]
            assert used <= names, (rule["alert"], sorted(used - names))
    if shutil.which("promtool"):  # Debian's `prometheus` package has it; not needed here
        checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_readme_shows_the_alert_rules_as_the_file_has_them():
    rules = ALERTS.read_text()
    shown = rules[rules.index("groups:"):]
    assert shown in README.read_text()
