"""Only what gives the engine something to do wakes it (issue 18, the write path).

A version nobody's pull request or merge waits for, a promotion that waits for people nobody
is to be told about, and an approval that leaves the stage's rules open wake nobody: the
engine's pass after them would find nothing to do. The approval that completes the rules does
wake it, and the release then goes to production with no poll (the engine polls once an hour
here).
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from story import PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story, person

from infrastream.service import notification_subscriptions, promotions
from infrastream.service.engine.loop import Engine
from infrastream.service.records.releases import ReleaseRef
from infrastream.store.tables import notification_channels

ADMIN = person("admin", "admin")


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    story.apply_manifests()
    yield story
    story.finish()


def _engine(story: Story) -> Engine:
    engine = Engine(story.services, poll=3600.0)
    engine.start()
    story.started.append(engine)
    return engine


def _at_the_production_gate(story: Story) -> ReleaseRef:
    """A release that succeeded in development and staging; the engine stopped again."""
    story.record_versions("1.0.0")
    engine = _engine(story)
    ref = story.cut_release()
    story.wait_until(ref, lambda s: s["stages"][0]["state"] == "succeeded")
    promotions.promote(story.services, RELEASE_MANAGER, ref)
    story.wait_until(ref, lambda s: s["stages"][1]["state"] == "succeeded")
    engine.stop()
    story.services.wake.clear()
    return ref


def test_a_version_nobody_waits_for_wakes_nobody(story):
    story.services.wake.clear()
    story.record_versions("1.0.0")
    assert not story.services.wake.is_set()
    story.cut_release()
    assert story.services.wake.is_set()


def test_only_the_approval_that_completes_the_rules_wakes_the_engine(story):
    ref = _at_the_production_gate(story)
    wake = story.services.wake

    promotions.promote(story.services, RELEASE_MANAGER, ref)  # waits for people: no wake
    assert not wake.is_set()
    assert story.stage(ref, 2)["state"] == "awaiting-approval"
    promotions.approve(story.services, QA, ref)
    promotions.approve(story.services, PRODUCT, ref)
    assert not wake.is_set()
    promotions.approve(story.services, SECURITY, ref)
    assert wake.is_set()

    _engine(story)  # polls once an hour: only the wake-up moves it
    story.wait_until(ref, lambda s: s["state"] == "completed", timeout=30)


def test_a_promotion_somebody_is_to_be_told_about_wakes_the_engine(story):
    ref = _at_the_production_gate(story)
    with story.services.transaction() as conn:  # a channel as the delivery side stores it
        conn.execute(insert(notification_channels).values(
            name="qa-slack", kind="slack", settings="(ciphertext)", public={},
            created_at=story.services.now(), created_by="admin"))
    notification_subscriptions.subscribe(story.services, ADMIN, "qa-slack", selector="role",
                                         value="qa")
    story.services.wake.clear()

    promotions.promote(story.services, RELEASE_MANAGER, ref)
    assert story.services.wake.is_set()
