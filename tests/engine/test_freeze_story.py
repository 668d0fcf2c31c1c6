"""A freeze window holds promotions into production ("frozen until …") until a holder of its
override role lets the promotion through with a reason; the hotfix lane is exempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from story import PLATFORM, PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story, person

from infrastream.domain.errors import Forbidden
from infrastream.service import manifests, promotions
from infrastream.service.auditing import view as audit_view

FREEZE = """apiVersion: lowops.manifests.v1
kind: FreezeWindow
metadata:
  name: year-end
spec:
  environments: [production]
  timeZone: Europe/Berlin
  windows:
    - start: "{start}"
      end: "{end}"
  overrideRole: cab-chair
  exemptLanes: [hotfix]
  reason: year-end change freeze
"""


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    yield story
    story.finish()


def test_a_freeze_holds_production_until_an_override_with_a_reason(story):
    story.apply_manifests()
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
    end = (now + timedelta(days=2)).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
    manifests.apply(story.services, PLATFORM,
                    [("freeze.yaml", FREEZE.format(start=start, end=end))])
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()
    story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
    promotions.promote(story.services, RELEASE_MANAGER, release)
    story.wait_until(release, lambda s: s["stages"][1]["state"] == "succeeded")

    requested = promotions.promote(story.services, RELEASE_MANAGER, release)
    assert requested["frozen"][0].startswith("frozen until ")
    for approver in (QA, PRODUCT, SECURITY):
        promotions.approve(story.services, approver, release)
    story.engine.run_once()
    production = story.stage(release, 2)
    assert production["state"] == "awaiting-approval"
    assert production["waiting"].startswith("waiting for: frozen until ")
    assert "(year-end: year-end change freeze)" in production["waiting"]

    with pytest.raises(Forbidden, match="override freeze `year-end`: it needs the role cab-"):
        promotions.promote(story.services, RELEASE_MANAGER, release,
                           freeze_override_reason="please")
    chair = person("carla", "release-manager", "cab-chair")
    promotions.promote(story.services, chair, release,
                       freeze_override_reason="payment outage fix agreed with the CTO")
    status = story.wait_until(release, lambda s: s["state"] == "completed")
    override = status["stages"][2]["freezeOverride"]
    assert override["by"] == "carla" and override["windows"] == ["year-end"]
    actions = [e["action"] for e in audit_view.list_entries(story.services, limit=200)]
    assert "freeze.override" in actions
