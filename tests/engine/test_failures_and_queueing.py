"""When things go wrong: failed deployments, busy environments, a tampered audit trail."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select, update
from story import RELEASE_MANAGER, Story

from infrastream.domain.errors import TransientError
from infrastream.service import promotions
from infrastream.service.auditing import view as audit_view
from infrastream.store.tables import audit_log, deployments
from infrastream.targets.base import AppStatus, DeployRequest, DeployResult, Health


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    yield story
    story.finish()


def test_a_deployment_whose_process_exits_fails_the_stage_with_its_cause_and_can_be_retried(
        story):
    api = story.repo / "manifests" / "apps" / "api.yaml"
    api.write_text(api.read_text().replace(
        'command: ["python3", "services/shop_service.py"]',
        'command: ["python3", "-c", "import sys; print(\'no database\'); sys.exit(3)"]'))
    story.apply_manifests()
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()

    status = story.wait_until(release, lambda s: s["stages"][0]["state"] == "failed")
    development = status["stages"][0]
    assert "api" in development["reason"] and "3" in development["reason"]
    assert development["environments"][0]["state"] == "failed"
    assert status["stages"][1]["state"] == "pending"

    promotions.promote(story.services, RELEASE_MANAGER, release)
    status = story.wait_until(release, lambda s: s["stages"][0]["state"] == "failed"
                              and s["stages"][0]["attempt"] == 2)
    with story.services.db.connect() as conn:
        attempts = conn.execute(select(deployments.c.attempt, deployments.c.state)
                                .order_by(deployments.c.id)).all()
    assert [tuple(a) for a in attempts] == [(1, "failed"), (2, "failed")]


class HeldTarget:
    """A deploy target at our own interface that holds deployments until released."""

    type_name = "held"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started: list[str] = []

    def deploy(self, request: DeployRequest) -> DeployResult:
        self.started.append(request.key)
        self.gate.wait(timeout=30)
        return DeployResult(request.key, tuple(
            AppStatus(a.app, a.version, a.image, Health.HEALTHY) for a in request.apps))

    def status(self, environment):
        return ()

    def teardown(self, environment) -> None:
        return None


def test_a_later_release_queues_while_an_environment_is_busy(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    held = HeldTarget()
    story.services.targets.register("noop", held)
    try:
        story.apply_manifests()
        story.record_versions("1.0.0")
        first = story.cut_release()
        story.start_engine()
        story.wait_until(first, lambda s: s["stages"][0]["state"] == "deploying")
        story.record_versions("1.0.1")
        second = story.cut_release()
        waiting = story.wait_until(second, lambda s: s["stages"][0]["state"] == "queued")
        assert waiting["stages"][0]["waiting"] == f"waiting for: development (busy with {first})"
        assert len(held.started) == 1
        held.gate.set()
        story.wait_until(second, lambda s: s["stages"][0]["state"] == "succeeded")
        assert story.stage(first, 0)["state"] == "succeeded"
        assert len(held.started) == 2
    finally:
        held.gate.set()
        story.finish()


def _tamper_and_verify(story, change) -> dict:
    with story.services.transaction() as conn:
        change(conn)
    return audit_view.verify(story.services)


@pytest.mark.parametrize("tampering", ["edit", "delete", "reorder", "delete-newest"])
def test_audit_verify_names_the_entry_that_was_tampered_with(story, tampering):
    story.apply_manifests()
    story.record_versions("1.0.0")
    assert audit_view.verify(story.services)["ok"]
    total = audit_view.verify(story.services)["entries"]
    assert total >= 9

    def change(conn):
        if tampering == "edit":
            conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(actor="mallory"))
        elif tampering == "delete":
            conn.execute(delete(audit_log).where(audit_log.c.seq == 4))
        elif tampering == "delete-newest":
            conn.execute(delete(audit_log).where(audit_log.c.seq == total))
        else:
            conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(seq=-4))
            conn.execute(update(audit_log).where(audit_log.c.seq == 5).values(seq=4))
            conn.execute(update(audit_log).where(audit_log.c.seq == -4).values(seq=5))

    verdict = _tamper_and_verify(story, change)
    assert not verdict["ok"]
    expected = {"edit": 4, "delete": 5, "reorder": 4, "delete-newest": total}[tampering]
    assert verdict["brokenAt"] == expected, verdict["reason"]


class FlakyTarget(HeldTarget):
    """Fails twice with a transient error (a network blip), then deploys."""

    def __init__(self) -> None:
        super().__init__()
        self.gate.set()
        self.calls = 0

    def deploy(self, request: DeployRequest) -> DeployResult:
        self.calls += 1
        if self.calls <= 2:
            raise TransientError("connection reset by peer", delay=0.05)
        return super().deploy(request)


def test_transient_failures_are_retried_and_visible(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    flaky = FlakyTarget()
    story.services.targets.register("noop", flaky)
    try:
        story.apply_manifests()
        story.record_versions("1.0.0")
        release = story.cut_release()
        story.start_engine()
        status = story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
        development = status["stages"][0]["environments"][0]
        assert development["state"] == "healthy"
        assert development["message"].endswith("(after 2 retries)")
        retries = [e for e in audit_view.list_entries(story.services, limit=100)
                   if e["action"] == "deployment.retry"]
        assert [e["after"]["retry"] for e in retries] == [2, 1]
        assert retries[0]["after"]["reason"] == "connection reset by peer"
    finally:
        story.finish()
