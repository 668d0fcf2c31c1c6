"""Who is told what, and when, as stories through the real engine: a promotion into Staging
waits for QA, the QA engineers who can sign are told once (however many passes or servers
look), with the blocker list and a link to approve; reminders and an escalation follow as the
clock moves; failures, rejections, production deployments, hotfixes and freeze overrides
are told once each; subscriptions filter by role, team, person, track and kind."""

from __future__ import annotations

import pytest
from notify_world import (
    ADMIN,
    PUBLIC_URL,
    begin,
    channel,
    drive,
    events,
    passes,
    people,
)
from story import QA, RELEASE_MANAGER, person

from infrastream.domain.errors import Forbidden, NotFound, PermanentError
from infrastream.service import notification_subscriptions as subscriptions
from infrastream.service import promotions
from infrastream.service.engine.loop import Engine
from infrastream.targets.base import DeployRequest, DeployResult
from infrastream.targets.noop import NoopTarget

QUINN = person("quinn", "qa")


@pytest.fixture
def world(tmp_path, database_url):
    story, clock = begin(tmp_path, database_url)
    people(story)
    story.apply_manifests()
    for name in ("qa-slack", "rm-mail", "all-teams", "quinn-mail", "other-track"):
        channel(story, name)
    yield story, clock
    story.finish()


def _to_staging_gate(story, clock, engine):
    story.record_versions("1.0.0")
    release = story.cut_release()
    drive(story, engine, release, lambda s: s["stages"][0]["state"] == "succeeded", clock)
    promotions.promote(story.services, RELEASE_MANAGER, release)
    passes(engine)
    return release


def test_a_promotion_waiting_for_qa_tells_the_qa_engineers_once_with_the_blockers_and_link(
        world):
    story, clock = world
    subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role", value="qa")
    subscriptions.subscribe(story.services, ADMIN, "rm-mail", selector="role",
                            value="release-manager", events=["approval.escalated"])
    engine = Engine(story.services, poll=3600)
    release = _to_staging_gate(story, clock, engine)

    waiting = events(story, "approval.waiting")
    assert len(waiting) == 1
    told = waiting[0]
    assert told["title"] == "shop/v1 waits for qa in staging"
    assert told["key"].startswith("approval.waiting:") and told["key"].endswith(":1:qa")
    assert told["waitingFor"] == ["qa 0/1"]
    assert told["roles"] == ["qa"]
    assert told["link"] == f"{PUBLIC_URL}/portal/releases/shop/v1"
    assert told["recipients"] == [{"name": "quentin", "email": None},
                                  {"name": "quinn", "email": "quinn@example.com"}]
    assert told["channels"] == ["qa-slack"]  # not the release managers' mail

    passes(engine, 5)  # more passes, and a second server, add nothing
    second = Engine(story.services, poll=3600)
    passes(second, 3)
    assert len(events(story, "approval.waiting")) == 1

    promotions.approve(story.services, QUINN, release)
    passes(engine)
    assert len(events(story, "approval.waiting")) == 1
    drive(story, engine, release, lambda s: s["stages"][1]["state"] == "succeeded", clock)
    assert len(events(story, "approval.waiting")) == 1


def test_a_promotion_requested_again_after_a_rejection_is_told_again(world):
    story, clock = world
    subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role", value="qa")
    engine = Engine(story.services, poll=3600)
    release = _to_staging_gate(story, clock, engine)
    promotions.reject(story.services, QUINN, release, "the checkout regression is back")
    passes(engine)
    rejected = events(story, "release.rejected")
    assert len(rejected) == 1
    assert rejected[0]["actor"] == "quinn"
    assert rejected[0]["details"] == {"reason": "the checkout regression is back", "role": "qa"}
    assert rejected[0]["title"] == "shop/v1 was rejected for staging by quinn"
    assert rejected[0]["channels"] == ["qa-slack"]  # it names the role that refused

    promotions.promote(story.services, RELEASE_MANAGER, release)
    passes(engine)
    waiting = events(story, "approval.waiting")
    assert len(waiting) == 2
    assert waiting[0]["key"].endswith(":1:qa") and waiting[1]["key"].endswith(":2:qa")
    passes(engine)
    assert len(events(story, "release.rejected")) == 1


def test_reminders_follow_every_four_hours_and_the_release_managers_hear_after_a_day(world):
    story, clock = world
    subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role", value="qa")
    subscriptions.subscribe(story.services, ADMIN, "rm-mail", selector="role",
                            value="release-manager", events=["approval.escalated"])
    engine = Engine(story.services, poll=3600)
    _to_staging_gate(story, clock, engine)
    wake = passes(engine)
    assert wake is not None and 4 * 3600 - 5 <= wake <= 4 * 3600  # the engine's timer
    assert events(story, "approval.reminder") == []

    clock.advance(hours=4)
    passes(engine)
    reminders = events(story, "approval.reminder")
    assert [r["details"]["reminder"] for r in reminders] == ["1"]
    assert reminders[0]["title"].startswith("Reminder: shop/v1 still waits for qa in staging")
    assert reminders[0]["channels"] == ["qa-slack"]
    clock.advance(hours=1)
    passes(engine)
    assert len(events(story, "approval.reminder")) == 1  # not before another 4h

    for _ in range(6):  # the cap: two reminders however long it waits
        clock.advance(hours=4)
        passes(engine)
    assert [r["details"]["reminder"] for r in events(story, "approval.reminder")] == ["1", "2"]
    escalated = events(story, "approval.escalated")
    assert len(escalated) == 1
    assert escalated[0]["roles"] == ["qa", "release-manager"]
    assert escalated[0]["recipients"] == [{"name": "rita", "email": "rita@example.com"}]
    assert escalated[0]["channels"] == ["qa-slack", "rm-mail"]
    assert escalated[0]["title"].startswith("Escalated to release-manager: shop/v1 has waited")


def test_a_failure_a_production_deployment_a_hotfix_and_a_freeze_override_are_told_once(world):
    from datetime import timedelta

    from story import PLATFORM, PRODUCT, SECURITY

    from infrastream.service import hotfix, manifests
    from infrastream.service.records.releases import parse_ref

    story, clock = world
    subscriptions.subscribe(story.services, ADMIN, "rm-mail", selector="everyone")
    engine = Engine(story.services, poll=3600)
    release = _to_staging_gate(story, clock, engine)
    promotions.approve(story.services, QUINN, release)
    drive(story, engine, release, lambda s: s["stages"][1]["state"] == "succeeded", clock)

    start = (clock.at - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    end = (clock.at + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    manifests.apply(story.services, PLATFORM, [("freeze.yaml", f"""apiVersion: lowops.manifests.v1
kind: FreezeWindow
metadata:
  name: year-end
spec:
  environments: [production]
  timeZone: UTC
  windows:
    - start: "{start}"
      end: "{end}"
  overrideRole: cab-chair
  exemptLanes: [hotfix]
  reason: year-end change freeze
""")])
    promotions.promote(story.services, RELEASE_MANAGER, release)
    for approver in (person("quinn", "qa"), PRODUCT, SECURITY):
        promotions.approve(story.services, approver, release)
    passes(engine)
    chair = person("carla", "release-manager", "cab-chair")
    promotions.promote(story.services, chair, release,
                       freeze_override_reason="payment outage fix agreed with the CTO")
    drive(story, engine, release, lambda s: s["state"] == "completed", clock)

    overridden = events(story, "freeze.overridden")
    assert len(overridden) == 1
    assert overridden[0]["actor"] == "carla"
    assert overridden[0]["details"] == {"reason": "payment outage fix agreed with the CTO",
                                        "windows": "year-end"}
    deployed = events(story, "production.deployed")
    assert [d["title"] for d in deployed] == ["shop/v1 is deployed to production"]
    assert deployed[0]["channels"] == ["rm-mail"]

    created = hotfix.create_hotfix(story.services, person("ann", "incident-commander"), "shop",
                                   {"api": "registry.example.com/shop/api:1.0.0-hf1"}, "INC-42")
    fix = parse_ref(created["release"])
    passes(engine)
    started = events(story, "hotfix.started")
    assert [h["title"] for h in started] == [f"Hotfix {fix} started (INC-42)"]
    assert started[0]["actor"] == "ann"
    assert "api=registry.example.com/shop/api:1.0.0-hf1" in started[0]["details"]["versions"]

    passes(engine)
    kinds = [e["kind"] for e in events(story)]
    assert kinds.count("freeze.overridden") == 1 and kinds.count("hotfix.started") == 1
    assert kinds.count("production.deployed") == 1
    assert "release.failed" not in kinds


def test_a_failed_stage_is_told_to_the_release_managers(world):
    story, clock = world
    subscriptions.subscribe(story.services, ADMIN, "rm-mail", selector="role",
                            value="release-manager", events=["release.failed"])
    story.services.targets.register("noop", _StagingFails())
    engine = Engine(story.services, poll=3600)
    story.record_versions("1.0.0")
    release = story.cut_release()
    drive(story, engine, release, lambda s: s["stages"][0]["state"] == "succeeded", clock)
    promotions.promote(story.services, RELEASE_MANAGER, release)
    promotions.approve(story.services, QUINN, release)
    drive(story, engine, release, lambda s: s["stages"][1]["state"] == "failed", clock)
    passes(engine)
    failed = events(story, "release.failed")
    assert len(failed) == 1
    assert failed[0]["title"] == "shop/v1 failed in staging"
    assert failed[0]["channels"] == ["rm-mail"]
    assert failed[0]["link"] == f"{PUBLIC_URL}/portal/releases/shop/v1"


class _StagingFails(NoopTarget):
    """Deploys like `noop`, except that staging refuses (at our own target interface)."""

    def deploy(self, request: DeployRequest) -> DeployResult:
        if request.environment.metadata.name == "staging":
            raise PermanentError("the staging cluster refused the manifests")
        return super().deploy(request)


def test_subscriptions_filter_by_track_kind_team_and_person(world):
    story, clock = world
    services = story.services
    with pytest.raises(NotFound, match="channel `nope`"):
        subscriptions.subscribe(services, ADMIN, "nope", selector="role", value="qa")
    with pytest.raises(NotFound, match="role `wizard`"):
        subscriptions.subscribe(services, ADMIN, "qa-slack", selector="role", value="wizard")
    with pytest.raises(NotFound, match="team `ghosts`"):
        subscriptions.subscribe(services, ADMIN, "qa-slack", selector="team", value="ghosts")
    with pytest.raises(NotFound, match="track `other`"):
        subscriptions.subscribe(services, ADMIN, "qa-slack", selector="everyone",
                                track="other")
    with pytest.raises(Forbidden, match="needs the role admin or platform"):
        subscriptions.subscribe(services, QA, "qa-slack", selector="role", value="qa")

    subscriptions.subscribe(services, ADMIN, "quinn-mail", selector="user", value="quinn",
                            track="shop-track")
    subscriptions.subscribe(services, ADMIN, "qa-slack", selector="role", value="qa",
                            events=["approval.reminder"])
    subscriptions.subscribe(services, ADMIN, "all-teams", selector="team", value="shop-team")
    subscriptions.subscribe(services, ADMIN, "other-track", selector="team", value="payments")
    listed = subscriptions.list_subscriptions(services, ADMIN)
    assert [(s.channel, s.selector.value, s.value) for s in listed] == [
        ("quinn-mail", "user", "quinn"), ("qa-slack", "role", "qa"),
        ("all-teams", "team", "shop-team"), ("other-track", "team", "payments")]

    engine = Engine(services, poll=3600)
    _to_staging_gate(story, clock, engine)
    waiting = events(story, "approval.waiting")
    assert waiting[0]["team"] == "shop-team"
    # quinn is told (a recipient), the shop's team hears it; qa-slack hears reminders only,
    # the payments team nothing
    assert waiting[0]["channels"] == ["all-teams", "quinn-mail"]

    subscriptions.unsubscribe(services, ADMIN, listed[0].id)
    assert [s.channel for s in subscriptions.list_subscriptions(services, ADMIN)] == [
        "qa-slack", "all-teams", "other-track"]


def test_a_wait_no_subscription_hears_is_recorded_without_deliveries_and_counted(world):
    from prometheus_client import REGISTRY

    story, clock = world

    def counted() -> float:
        return REGISTRY.get_sample_value("infrastream_notifications_total",
                                         {"kind": "approval.waiting"}) or 0.0

    before = counted()
    # a subscription exists, but it does not hear waits (with none at all nothing is recorded)
    subscriptions.subscribe(story.services, ADMIN, "rm-mail", selector="role",
                            value="release-manager", events=["release.failed"])
    engine = Engine(story.services, poll=3600)
    story.record_versions("1.0.0")
    release = story.cut_release()
    drive(story, engine, release, lambda s: s["stages"][0]["state"] == "succeeded", clock)
    # a QA engineer who is also a release manager requests it: four-eyes keeps them out
    promotions.promote(story.services, person("quentin", "release-manager", "qa"), release)
    passes(engine)
    waiting = events(story, "approval.waiting")
    assert len(waiting) == 1 and waiting[0]["channels"] == []
    assert [r["name"] for r in waiting[0]["recipients"]] == ["quinn"]
    assert counted() == before + 1
    passes(engine)
    assert counted() == before + 1


def test_without_subscriptions_nothing_is_recorded_and_the_first_hears_what_waits_still(
        world):
    """No subscription: the pass reads, writes and claims nothing for notifications. The
    first subscription is told of the promotion that still waits, not of the rejection that
    happened before it, even when the cursor lags behind it (a subscription hears what
    happens from its creation on); what happens afterwards is told."""
    from sqlalchemy import event, update

    from infrastream.service.records import notification_cursor
    from infrastream.store.tables import job_leases, server_settings

    story, clock = world
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(f"{statement} {parameters}")

    engine = Engine(story.services, poll=3600)
    release = _to_staging_gate(story, clock, engine)
    promotions.reject(story.services, QUINN, release, "the checkout regression is back")
    promotions.promote(story.services, RELEASE_MANAGER, release)
    event.listen(story.services.db, "before_cursor_execute", seen)
    try:
        passes(engine)
    finally:
        event.remove(story.services.db, "before_cursor_execute", seen)
    assert story.status(release)["stages"][1]["state"] == "awaiting-approval"
    assert events(story) == []
    touched = [s for s in statements if "notification_events" in s
               or notification_cursor.KEY in s or "'notifications'" in s]
    assert touched == []
    with story.services.db.connect() as conn:
        assert conn.execute(job_leases.select().where(
            job_leases.c.key == "notifications")).first() is None

    clock.advance(minutes=1)
    subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role", value="qa")
    with story.services.transaction() as conn:  # as if it lagged (the audit chainer's order)
        conn.execute(update(server_settings).where(
            server_settings.c.key == notification_cursor.KEY).values(value="0"))
    passes(engine)
    waiting = events(story, "approval.waiting")
    assert [(w["key"].rsplit(":", 2)[-2:], w["channels"]) for w in waiting] == [
        (["2", "qa"], ["qa-slack"])]  # the request still waiting; the first one was rejected
    assert events(story, "release.rejected") == []  # before anybody listened

    promotions.reject(story.services, QUINN, release, "still broken")
    passes(engine)
    rejected = events(story, "release.rejected")
    assert [(r["details"]["reason"], r["channels"]) for r in rejected] == [
        ("still broken", ["qa-slack"])]
    assert len(events(story, "approval.waiting")) == 1


def test_the_first_subscription_moves_the_cursor_past_what_came_before(world):
    from infrastream.service.records import notification_cursor
    from infrastream.store.tables import audit_log

    story, clock = world
    engine = Engine(story.services, poll=3600)
    _to_staging_gate(story, clock, engine)
    with story.services.db.connect() as conn:
        assert notification_cursor.read(conn) == 0  # as the migration left it: never moved
    subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role", value="qa")
    with story.services.db.connect() as conn:
        moved = notification_cursor.read(conn)
        newest = conn.execute(audit_log.select().order_by(audit_log.c.seq.desc())
                              .limit(1)).first()
    assert moved is not None and newest is not None
    assert newest.action == "notification.subscribe" and moved == newest.seq - 1
    subscriptions.subscribe(story.services, ADMIN, "rm-mail", selector="everyone")
    with story.services.db.connect() as conn:
        assert notification_cursor.read(conn) == moved  # only the first one moves it


def test_a_broken_notification_pass_never_holds_up_the_engine(world, monkeypatch, caplog):
    from infrastream.service import notifications

    story, clock = world

    def broken(*args, **kwargs):
        raise RuntimeError("the notification pass broke")

    monkeypatch.setattr(notifications, "waiting", broken)
    subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role", value="qa")
    engine = Engine(story.services, poll=3600)
    release = _to_staging_gate(story, clock, engine)
    assert "notification pass failed" in caplog.text
    assert events(story, "approval.waiting") == []
    promotions.approve(story.services, QUINN, release)
    status = drive(story, engine, release, lambda s: s["stages"][1]["state"] == "succeeded",
                   clock)
    assert status["stages"][1]["state"] == "succeeded"


def test_two_servers_running_at_once_tell_each_wait_once(world, tmp_path, database_url):
    import time

    from infrastream.service.context import open_services

    story, clock = world
    subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role", value="qa")
    first = Engine(story.services, poll=3600)
    refs = []
    for tag in ("1.0.0", "1.1.0"):
        story.record_versions(tag)
        refs.append(story.cut_release())
    for ref in refs:  # development holds one release at a time: v1, then v2
        drive(story, first, ref, lambda s: s["stages"][0]["state"] == "succeeded", clock)
    other = open_services(tmp_path / "other", database_url)
    other.node, other.now, other.public_url = "other-server", clock, PUBLIC_URL
    second = Engine(other, poll=0.05)
    story.started.append(second)
    second.start()
    first.poll = 0.05
    first.start()
    story.started.append(first)
    for ref in refs:
        promotions.promote(story.services, RELEASE_MANAGER, ref)
    story.services.notify()
    other.notify()
    deadline = time.monotonic() + 30
    while len(events(story, "approval.waiting")) < 2:
        assert time.monotonic() < deadline, "the waits were never told"
        time.sleep(0.05)
    for _ in range(20):  # both servers keep passing
        story.services.notify()
        other.notify()
        time.sleep(0.02)
    waiting = events(story, "approval.waiting")
    assert sorted(w["release"] for w in waiting) == ["shop/v1", "shop/v2"]
    assert all(w["channels"] == ["qa-slack"] for w in waiting)
    first.stop()
    second.stop()
    other.db.dispose()
