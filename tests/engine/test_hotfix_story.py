"""The hotfix lane as a story: a production incident is fixed through `hotfixStages` with two
incident commanders' sign-offs while a regular release waits in staging, and the forward-port
guard holds back regular releases that would undo the fix."""

from __future__ import annotations

import pytest
from story import CI, QA, RELEASE_MANAGER, Story, person

from infrastream.domain.errors import Conflict, Forbidden, Invalid
from infrastream.service import hotfix, promotions, releases, versions
from infrastream.service.records.releases import parse_ref
from infrastream.service.views.environments import environment_overview

ANN = person("ann", "incident-commander")
BOB = person("bob", "incident-commander")
CARL = person("carl", "incident-commander")


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    yield story
    story.finish()




def test_a_hotfix_reaches_production_and_the_forward_port_guard_holds_the_next_release(story):
    story.apply_manifests()
    story.engine = story.start_engine()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.to_production(v1)

    story.record_versions("1.1.0")
    v2 = story.cut_release()
    story.wait_until(v2, lambda s: s["stages"][0]["state"] == "succeeded")
    promotions.promote(story.services, RELEASE_MANAGER, v2)
    story.wait_until(v2, lambda s: s["stages"][1]["state"] == "succeeded")

    with pytest.raises(Invalid, match="incident"):
        hotfix.create_hotfix(story.services, RELEASE_MANAGER, "shop",
                             {"api": "registry.example.com/shop/api:1.0.0-hf1"}, "")
    with pytest.raises(Forbidden):
        hotfix.create_hotfix(story.services, QA, "shop",
                             {"api": "registry.example.com/shop/api:1.0.0-hf1"}, "INC-42")
    created = hotfix.create_hotfix(story.services, ANN, "shop",
                                   {"api": "registry.example.com/shop/api:1.0.0-hf1"},
                                   "INC-42")
    assert created["release"] == "shop/v1-hotfix-1" and created["base"] == str(v1)
    fix = parse_ref(created["release"])
    status = story.wait_until(fix, lambda s: s["stages"][0]["state"] == "succeeded")
    assert status["incident"] == "INC-42" and status["lane"] == "hotfix"
    assert status["versions"]["api"]["version"] == "1.0.0-hf1"
    assert status["versions"]["web"]["version"] == "1.0.0"

    promotions.promote(story.services, ANN, fix)
    production = story.stage(fix, 1)
    assert production["waiting"] == "waiting for: incident-commander 0/2"
    with pytest.raises(Forbidden, match="requested this promotion"):
        promotions.approve(story.services, ANN, fix)
    with pytest.raises(Forbidden, match="holds none"):
        promotions.approve(story.services, QA, fix)
    promotions.approve(story.services, BOB, fix)
    assert story.stage(fix, 1)["waiting"] == "waiting for: incident-commander 1/2"
    promotions.approve(story.services, CARL, fix)
    story.wait_until(fix, lambda s: s["state"] == "completed")
    production_now = {e["environment"]: e for e in environment_overview(story.services)}
    assert production_now["production"]["release"] == "shop/v1-hotfix-1"
    assert production_now["production"]["versions"]["api"] == "1.0.0-hf1"
    assert story.stage(v2, 1)["state"] == "succeeded"  # v2 still waits in staging

    status = story.status(v2)
    assert status["forwardPort"]["warnings"] == [
        "api 1.1.0 predates hotfix shop/v1-hotfix-1 (registry.example.com/shop/api:1.0.0-hf1, "
        "incident INC-42)"]
    with pytest.raises(Conflict, match="forward-port guard"):
        promotions.promote(story.services, RELEASE_MANAGER, v2)
    with pytest.raises(Conflict, match="forward-port guard"):
        releases.create_release(story.services, RELEASE_MANAGER, "shop")

    versions.record_version(story.services, CI, "api", "registry.example.com/shop/api:1.1.1")
    v3 = story.cut_release()
    assert story.status(v3)["forwardPort"]["warnings"] == []

    promotions.promote(story.services, RELEASE_MANAGER, v2,
                       override_reason="api 1.1.0 already contains the fix (cherry-picked)")
    status = story.status(v2)
    assert status["forwardPort"]["override"]["by"] == "rita"
    assert "cherry-picked" in status["forwardPort"]["override"]["reason"]
