"""The engine moves a stage on exactly when the blocker list every face prints is empty.

Two releases travel the lane on a clock that only moves when the story says so: approvals
arrive one by one, a freeze window holds production, one release queues behind the other's
deployment, soaks run out. Before every engine pass the release status (what the API, CLI
and Portal print) is read; after it, each active stage must have moved if and only if that
status listed no blocker for it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from story import PLATFORM, PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story

from infrastream.service import manifests, promotions
from infrastream.service.engine.loop import Engine
from infrastream.service.records.releases import ReleaseRef

ENGINE_MOVES = {"awaiting-approval", "queued", "deploying", "verifying"}

FREEZE = """\
apiVersion: lowops.manifests.v1
kind: FreezeWindow
metadata:
  name: launch-freeze
spec:
  environments: [production]
  windows:
    - start: "2026-12-01T00:00:00Z"
      end: "2026-12-01T12:00:00Z"
  overrideRole: release-manager
"""


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop", soak="30s")
    yield story
    story.finish()


def _settle(engine: Engine) -> None:
    deadline = time.monotonic() + 30
    while engine.busy():
        assert time.monotonic() < deadline, "jobs never finished"
        time.sleep(0.01)


def _checked_pass(story: Story, engine: Engine, refs: list[ReleaseRef]) -> int:
    """One engine pass, checked against the statuses read just before it; stages moved."""
    _settle(engine)
    before = {ref: story.status(ref) for ref in refs}
    engine.run_once()
    _settle(engine)
    moved = 0
    for ref, status in before.items():
        after = story.status(ref)
        for old, new in zip(status["stages"], after["stages"], strict=True):
            if old["state"] not in ENGINE_MOVES or status["state"] != "active":
                continue
            changed = (new["state"], new["attempt"]) != (old["state"], old["attempt"])
            assert changed == (not old["blockers"]), (
                f"{ref} {old['name']} was {old['state']} with blockers {old['blockers']} "
                f"and is now {new['state']}")
            moved += changed
    return moved


def _passes(story: Story, engine: Engine, refs: list[ReleaseRef], count: int = 6) -> int:
    return sum(_checked_pass(story, engine, refs) for _ in range(count))


def test_every_engine_step_happens_exactly_when_the_status_shows_no_blocker(story):
    clock = Clock()
    story.services.now = clock
    story.apply_manifests()
    manifests.apply(story.services, PLATFORM, [("freeze.yaml", FREEZE)])
    engine = Engine(story.services, poll=3600)
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.record_versions("1.1.0")
    v2 = story.cut_release()
    refs = [v1, v2]

    assert _passes(story, engine, refs) > 0  # development: v1 deploys, v2 queues behind it
    codes = {b["code"] for ref in refs for s in story.status(ref)["stages"]
             for b in s["blockers"]}
    assert "not-requested" in codes
    promotions.promote(story.services, RELEASE_MANAGER, v1)
    promotions.promote(story.services, RELEASE_MANAGER, v2)
    _passes(story, engine, refs)
    assert {b["code"] for s in story.status(v1)["stages"] for b in s["blockers"]} >= {
        "soak-remaining"}
    clock.advance(31)
    _passes(story, engine, refs)
    for ref in refs:
        promotions.promote(story.services, RELEASE_MANAGER, ref)
    promotions.approve(story.services, QA, v1)
    _passes(story, engine, refs, 3)
    production = story.stage(v1, 2)
    assert [b["code"] for b in production["blockers"]] == [
        "approval-missing", "approval-missing", "frozen"]
    for person in (PRODUCT, SECURITY):
        promotions.approve(story.services, person, v1)
        _passes(story, engine, refs, 3)
    assert [b["code"] for b in story.stage(v1, 2)["blockers"]] == ["frozen"]
    clock.advance(4 * 3600)  # the freeze window ends
    assert _passes(story, engine, refs) > 0
    assert story.status(v1)["state"] == "completed"
    for person in (QA, PRODUCT, SECURITY):
        promotions.approve(story.services, person, v2)
    _passes(story, engine, refs)
    assert story.status(v2)["state"] == "completed"
    assert story.status(v1)["summary"] == "completed; no longer running (production runs " \
        f"{v2})"
