"""The readiness function: what holds a stage, with which code and words, in every state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastream.domain.approvals import Approval
from infrastream.domain.forward_port import Fix
from infrastream.domain.readiness import (
    FINAL,
    CheckFact,
    Code,
    DeploymentFact,
    ForwardPort,
    Occupant,
    OccupantKind,
    StageFacts,
    StageLine,
    blockers,
    next_event,
    release_summary,
    waiting_line,
)
from infrastream.domain.stage_machine import StageEvent, StageState
from infrastream.manifests import Stage
from infrastream.manifests.freeze import FreezeWindow

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PRODUCTION = Stage.model_validate({
    "environments": ["production"],
    "approvals": [{"role": "qa"}, {"role": "security"}],
    "checks": [{"type": "soak", "duration": "10m"}]})
FREEZE = FreezeWindow.model_validate({
    "apiVersion": "lowops.manifests.v1", "kind": "FreezeWindow",
    "metadata": {"name": "xmas"},
    "spec": {"environments": ["production"], "reason": "holidays",
             "windows": [{"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}]}})
FIX = Fix("api", "registry/api:1.0.0-hf1", 10, "shop/v1-hotfix.1", "INC-1")
OLD_API = {"api": {"id": 5, "image": "registry/api:1.1.0", "version": "1.1.0"}}
PR_RUN = Occupant(OccupantKind.PRERELEASE, "production", 7, app="api", ref="pull/17")


def facts(state: StageState, **changes) -> StageFacts:
    values = {"stage": PRODUCTION, "index": 2, "state": state, "release_id": 1,
              "digest": "d", "request_id": 1, "previous": ("staging", StageState.SUCCEEDED)}
    values.update(changes)
    return StageFacts(**values)


def signed(*people_roles: tuple[str, str]) -> tuple[Approval, ...]:
    return tuple(Approval(user, role, NOW, "d", 1) for user, role in people_roles)


CASES = [
    ("a stage nobody requested waits for a release manager", facts(StageState.PENDING),
     [(Code.NOT_REQUESTED, "a release manager to promote to production (needs qa, security)")]),
    ("the previous stage must succeed first",
     facts(StageState.AWAITING_APPROVAL, previous=("staging", StageState.VERIFYING),
           approvals=signed(("quinn", "qa"), ("sam", "security"))),
     [(Code.PREVIOUS_STAGE, "staging to succeed (verifying)")]),
    ("each rule short of people is one blocker",
     facts(StageState.AWAITING_APPROVAL, approvals=signed(("quinn", "qa"))),
     [(Code.APPROVAL_MISSING, "security 0/1")]),
    ("a freeze window holds the stage",
     facts(StageState.AWAITING_APPROVAL, approvals=signed(("quinn", "qa"), ("sam", "security")),
           freezes=(FREEZE,)),
     [(Code.FROZEN, "frozen until 2026-12-02 00:00 UTC (xmas: holidays)")]),
    ("an override lets it through the freeze",
     facts(StageState.AWAITING_APPROVAL, approvals=signed(("quinn", "qa"), ("sam", "security")),
           freezes=(FREEZE,), freeze_override=True), []),
    ("the forward-port guard holds a release that would undo a hotfix",
     facts(StageState.QUEUED, forward_port=ForwardPort(OLD_API, (FIX,))),
     [(Code.FORWARD_PORT, "forward-port: api 1.1.0 predates hotfix shop/v1-hotfix.1 "
       "(registry/api:1.0.0-hf1, incident INC-1)")]),
    ("an override lets it through the guard",
     facts(StageState.QUEUED, forward_port=ForwardPort(OLD_API, (FIX,), overridden=True)), []),
    ("a pre-release run occupies the environment",
     facts(StageState.QUEUED, occupants=(PR_RUN,)),
     [(Code.ENV_BUSY, "production (busy with pre-release run 7 of api (pull/17))")]),
    ("its own deployment does not occupy it",
     facts(StageState.QUEUED, occupants=(Occupant(OccupantKind.RELEASE, "production", 3,
                                                  release_id=1, release="shop/v2"),)), []),
    ("a rollback occupies it",
     facts(StageState.QUEUED, occupants=(Occupant(OccupantKind.ROLLBACK, "production", 3,
                                                  release_id=9, release="shop/v1"),)),
     [(Code.ENV_BUSY, "production (busy with a rollback to shop/v1)")]),
    ("a deployment still running",
     facts(StageState.DEPLOYING, deployments=(DeploymentFact("production", "deploying",
                                                             "retry 1/3"),)),
     [(Code.DEPLOYING, "deploying to production: retry 1/3")]),
    ("checks running and the soak", facts(
        StageState.VERIFYING, deployed_at=NOW - timedelta(minutes=6),
        checks=(CheckFact("integration-tests", "api", "production", "running"),)),
     [(Code.CHECK_RUNNING, "integration-tests api@production"),
      (Code.SOAK_REMAINING, "soak 4m left")]),
    ("a failed check ends verification at once", facts(
        StageState.VERIFYING, deployed_at=NOW,
        checks=(CheckFact("http", "api", "production", "failed"),
                CheckFact("integration-tests", "web", "production", "running"))), []),
    ("a failed stage says why", facts(StageState.FAILED, reason="checks failed: http"),
     [(Code.FAILED, "checks failed: http")]),
    ("an abandoned release holds every open stage",
     facts(StageState.AWAITING_APPROVAL, release_state="abandoned"),
     [(Code.ABANDONED, "the release was abandoned")]),
]


@pytest.mark.parametrize(("situation", "stage", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_each_situation_has_its_blockers_in_words(situation, stage, expected):
    found = blockers(stage, NOW)
    assert [(b.code, b.text) for b in found] == expected


def test_the_waiting_line_joins_the_blockers():
    stage = facts(StageState.AWAITING_APPROVAL, freezes=(FREEZE,))
    assert waiting_line(stage.state, blockers(stage, NOW)) == (
        "waiting for: qa 0/1, security 0/1, frozen until 2026-12-02 00:00 UTC (xmas: holidays)")


def test_a_release_between_stages_reads_ready_or_held():
    ready = StageLine("production", StageState.PENDING,
                      tuple(blockers(facts(StageState.PENDING), NOW)))
    done = StageLine("staging", StageState.SUCCEEDED, ())
    assert release_summary("active", [done, ready], runs_in=[]) == (
        "staging: succeeded — ready to promote to production (needs qa, security)")
    held = StageLine("production", StageState.PENDING, tuple(blockers(facts(
        StageState.PENDING, forward_port=ForwardPort(OLD_API, (FIX,))), NOW)))
    assert release_summary("active", [done, held], runs_in=[]).startswith(
        "staging: succeeded — promoting to production is held by: forward-port: api 1.1.0")
    assert release_summary("completed", [done], runs_in=[],
                           replaced={"production": "shop/v1"}) == (
        "completed; no longer running (production runs shop/v1)")


states = st.sampled_from(list(StageState))
people = st.lists(st.tuples(st.sampled_from(["ann", "bob", "cid"]),
                            st.sampled_from(["qa", "security"])), max_size=4)


@st.composite
def situations(draw) -> StageFacts:
    return facts(
        draw(states),
        release_state=draw(st.sampled_from(["active", "active", "completed", "abandoned"])),
        previous=draw(st.sampled_from([None, ("staging", StageState.SUCCEEDED),
                                       ("staging", StageState.VERIFYING)])),
        approvals=signed(*draw(people)),
        freezes=draw(st.sampled_from([(), (FREEZE,)])),
        freeze_override=draw(st.booleans()),
        forward_port=draw(st.sampled_from([None, ForwardPort(OLD_API, (FIX,)),
                                           ForwardPort(OLD_API, (FIX,), overridden=True)])),
        occupants=draw(st.sampled_from([(), (PR_RUN,)])),
        deployments=tuple(draw(st.lists(st.builds(
            DeploymentFact, st.just("production"),
            st.sampled_from(["deploying", "healthy", "failed"])), max_size=1))),
        checks=tuple(draw(st.lists(st.builds(
            CheckFact, st.just("http"), st.sampled_from(["api", "web"]), st.just("production"),
            st.sampled_from(["pending", "running", "passed", "failed", "skipped"])),
            max_size=2))),
        deployed_at=draw(st.sampled_from([None, NOW - timedelta(minutes=20),
                                          NOW - timedelta(minutes=1)])))


@settings(max_examples=400, deadline=None)
@given(situations())
def test_the_engine_steps_exactly_when_nothing_holds_an_active_stage(stage):
    found = blockers(stage, NOW)
    event = next_event(stage, NOW)
    if stage.release_state == "active" and stage.state in (
            StageState.AWAITING_APPROVAL, StageState.QUEUED, StageState.DEPLOYING,
            StageState.VERIFYING):
        assert (event is None) == bool(found)
    else:
        assert event is None
    if any(b.code in FINAL for b in found):
        assert len(found) == 1
    if event is StageEvent.ENV_FREE:
        assert not stage.occupants or stage.occupants[0].environment not in \
            stage.stage.environments
    if stage.state is StageState.AWAITING_APPROVAL and stage.release_state == "active":
        missing = not stage.tally(NOW).satisfied
        assert missing == any(b.code is Code.APPROVAL_MISSING for b in found)
