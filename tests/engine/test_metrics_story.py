"""`/metrics` scraped through real release lifecycles: how long each stage took, what held it
(by readiness code), how long each sign-off waited (by role), deployment retries and the
engine's jobs in flight move with the right labels, and never with a release's name.

The instruments are per process, so each test compares a scrape after the story with one
before it. Values are asserted only where the stored facts fix them (a soak is held for
exactly its duration; a stage lasts at least its soak), never by how fast the machine is.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from story import PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story
from test_failures_and_queueing import FlakyTarget, HeldTarget

from infrastream.api.app import create_app
from infrastream.service import promotions

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(story: Story) -> tuple[str, Samples]:
    response = TestClient(create_app(story.services)).get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all((k, want) in ls for k, want in labels.items()))


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_release_lifecycle_moves_stage_blocker_and_approval_histograms(tmp_path,
                                                                         database_url):
    story = Story.begin(tmp_path, database_url)
    try:
        _, before = scrape(story)
        story.apply_manifests()
        story.record_versions("1.0.0")
        release = story.cut_release()
        story.start_engine()
        story.to_production_gate(release)
        promotions.reject(story.services, QA, release, "the regression suite is red")
        promotions.promote(story.services, RELEASE_MANAGER, release)
        for approver in (QA, PRODUCT, SECURITY):
            promotions.approve(story.services, approver, release)
        story.wait_until(release, lambda s: s["state"] == "completed")
        text, after = scrape(story)
    finally:
        story.finish()

    blocked = "infrastream_stage_blocked_seconds"
    # every stage deployed once and was held by `deploying` while it did
    for stage in ("1", "2", "3"):
        assert moved(before, after, blocked + "_count", lane="release", stage=stage,
                     code="deploying") == 1, stage
        assert moved(before, after, "infrastream_stage_seconds_count", lane="release",
                     stage=stage, outcome="succeeded") == 1, stage
    # staging and production waited for a release manager; production for its sign-offs,
    # twice (the rejected request, then the one approved), and once for being rejected
    for stage in ("2", "3"):
        assert moved(before, after, blocked + "_count", lane="release", stage=stage,
                     code="not-requested") == 1, stage
    assert moved(before, after, blocked + "_count", lane="release", stage="3",
                 code="approval-missing") == 2
    assert moved(before, after, blocked + "_count", lane="release", stage="3",
                 code="rejected") == 1
    assert moved(before, after, "infrastream_stage_seconds_count", lane="release", stage="3",
                 outcome="rejected") == 1
    # staging's checks ran and its 1 s soak held it for exactly 1 s (the bucket le=1 holds
    # it); the stage itself lasted longer than its soak (so not in le=1)
    assert moved(before, after, blocked + "_count", lane="release", stage="2",
                 code="check-running") == 1
    assert moved(before, after, blocked + "_bucket", lane="release", stage="2",
                 code="soak-remaining", le="1.0") == 1
    assert moved(before, after, blocked + "_sum", lane="release", stage="2",
                 code="soak-remaining") == 1.0
    assert moved(before, after, "infrastream_stage_seconds_bucket", lane="release",
                 stage="2", outcome="succeeded", le="1.0") == 0
    assert moved(before, after, "infrastream_stage_seconds_bucket", lane="release",
                 stage="2", outcome="succeeded", le="+Inf") == 1
    # nothing held a stage that nothing could: no freeze, no other release in the way
    assert moved(before, after, blocked + "_count", code="frozen") == 0
    assert moved(before, after, blocked + "_count", code="env-busy") == 0
    # each sign-off's wait, by role
    for role in ("qa", "product", "security"):
        assert moved(before, after, "infrastream_approval_wait_seconds_count", lane="release",
                     role=role) == 1, role
        assert moved(before, after, "infrastream_approval_wait_seconds_bucket",
                     lane="release", role=role, le="+Inf") == 1, role
    assert f'"{release}"' not in text and f'"{release.name}"' not in text


def test_a_queued_release_is_held_by_env_busy_and_jobs_in_flight_are_counted(tmp_path,
                                                                            database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    held = HeldTarget()
    story.services.targets.register("noop", held)
    try:
        _, before = scrape(story)
        story.apply_manifests()
        story.record_versions("1.0.0")
        first = story.cut_release()
        story.start_engine()
        story.wait_until(first, lambda s: s["stages"][0]["state"] == "deploying")
        story.record_versions("1.0.1")
        second = story.cut_release()
        story.wait_until(second, lambda s: s["stages"][0]["state"] == "queued")
        _, holding = scrape(story)
        held.gate.set()
        story.wait_until(second, lambda s: s["stages"][0]["state"] == "succeeded")
        _, after = scrape(story)
    finally:
        held.gate.set()
        story.finish()

    assert value(holding, "infrastream_engine_jobs_in_flight", kind="deploy") >= 1
    assert value(holding, "infrastream_engine_backlog_releases") >= 2
    assert moved(before, after, "infrastream_stage_blocked_seconds_count", lane="release",
                 stage="1", code="env-busy") == 1
    assert moved(before, after, "infrastream_stage_seconds_count", lane="release", stage="1",
                 outcome="succeeded") == 2


def test_transient_failures_count_as_retries_of_their_environment(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    story.services.targets.register("noop", FlakyTarget())
    try:
        _, before = scrape(story)
        story.apply_manifests()
        story.record_versions("1.0.0")
        release = story.cut_release()
        story.start_engine()
        story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
        _, after = scrape(story)
    finally:
        story.finish()
    assert moved(before, after, "infrastream_deployment_retries_total",
                 environment="development") == 2
    assert moved(before, after, "infrastream_deployments_total", environment="development",
                 outcome="healthy") == 1
