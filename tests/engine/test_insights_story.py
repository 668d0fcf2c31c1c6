"""Delivery insights computed on a scripted history with known answers.

On a clock that moves only when the story says so, three regular releases and a hotfix go to
production: v1 (built at 09:00, in production at 12:00), v2 (built 13:00, in production
15:00, rolled back at 16:00), a hotfix on v1 (started 17:00, in production 17:30) and v3
(built 18:00, in production 19:00). So: lead times 3h ×3, 2h ×3, 30m (the hotfix build),
1h ×3 → median 2h, 90th percentile 3h; 2 of 3 production releases failed (v2 rolled back,
v1 hotfixed); time to restore 30m; and v1's production stage waited 3h for its sign-offs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from story import PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story, person

from infrastream.service import hotfix, promotions
from infrastream.service.engine.loop import Engine
from infrastream.service.records.releases import ReleaseRef, parse_ref
from infrastream.service.rollback import rollback
from infrastream.service.views.insights import insights

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANN, BOB, CID = (person(n, "incident-commander") for n in ("ann", "bob", "cid"))


class Clock:
    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at

    def to(self, hours: float) -> None:
        self.at = START + timedelta(hours=hours)


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop", soak="30s")
    yield story
    story.finish()


def _settle(engine: Engine) -> None:
    for _ in range(8):
        engine.run_once()
        deadline = time.monotonic() + 30
        while engine.busy():
            assert time.monotonic() < deadline
            time.sleep(0.01)


def _lane(story: Story, engine: Engine, clock: Clock, ref: ReleaseRef, *, built: float,
          approved: float) -> None:
    """dev at `built`, staging right after (soak 30 s), production signed off at `approved`."""
    _settle(engine)
    promotions.promote(story.services, RELEASE_MANAGER, ref)
    _settle(engine)
    clock.to(built + 31 / 3600)
    _settle(engine)
    promotions.promote(story.services, RELEASE_MANAGER, ref)
    clock.to(approved)
    for approver in (QA, PRODUCT, SECURITY):
        promotions.approve(story.services, approver, ref)
    _settle(engine)
    assert story.status(ref)["state"] == "completed"


def test_the_four_figures_and_the_wait_breakdown_match_a_known_history(story):
    clock = Clock()
    story.services.now = clock
    story.apply_manifests()
    engine = Engine(story.services, poll=3600)

    story.record_versions("1.0.0")
    v1 = story.cut_release()
    _lane(story, engine, clock, v1, built=0, approved=3)            # in production 12:00

    clock.to(4)
    story.record_versions("1.1.0")
    v2 = story.cut_release()
    _lane(story, engine, clock, v2, built=4, approved=6)            # in production 15:00

    clock.to(7)
    rollback(story.services, RELEASE_MANAGER, "production", reason="checkout errors")
    _settle(engine)                                                  # production runs v1

    clock.to(8)
    fix = parse_ref(hotfix.create_hotfix(story.services, ANN, "shop",
                                         {"api": "registry.example.com/shop/api:1.0.1-hf1"},
                                         "INC-1")["release"])
    assert story.status(fix)["hotfix"]["base"] == str(v1)  # what production runs now
    _settle(engine)
    promotions.promote(story.services, ANN, fix)
    clock.to(8.5)
    promotions.approve(story.services, BOB, fix)
    promotions.approve(story.services, CID, fix)
    _settle(engine)
    assert story.status(fix)["state"] == "completed"                # in production 17:30

    clock.to(9)
    story.record_versions("1.2.0")
    v3 = story.cut_release()
    _lane(story, engine, clock, v3, built=9, approved=10)           # in production 19:00

    found = insights(story.services, days=1, until=START + timedelta(hours=12))
    assert found["leadTime"]["value"] == 2 * 3600
    assert found["leadTime"]["human"] == "2h 0m"
    assert found["leadTimeP90"]["value"] == 3 * 3600
    assert found["changeFailureRate"]["value"] == pytest.approx(2 / 3)
    assert sorted(found["changeFailureRate"]["releases"]) == [str(v1), str(v2)]
    assert found["timeToRestore"]["value"] == 30 * 60
    assert found["timeToRestore"]["releases"] == [str(fix)]
    assert found["deploymentFrequency"]["deployments"] == {
        "development": 3, "production": 5, "staging": 4}
    assert found["deploymentFrequency"]["perDay"]["production"] == 5.0
    by_stage = {s["stage"]: s for s in found["timeByStage"]}
    # production sign-offs: v1 waited 3h - 31s, v2 2h - 31s, v3 1h - 31s, the hotfix 30m
    waited = (3 + 2 + 1) * 3600 - 3 * 31 + 30 * 60
    assert by_stage["production"]["seconds"]["approval"] == pytest.approx(waited)
    assert by_stage["staging"]["seconds"]["soak"] == pytest.approx(3 * 30)
    assert by_stage["production"]["runs"] == 4

    narrow = insights(story.services, days=1, until=START + timedelta(hours=12),
                      track="no-such-track")
    assert narrow["leadTime"]["value"] is None
    assert narrow["changeFailureRate"]["text"] == "no production release"
