"""Every (state, event) pair of the stage state machine has exactly the verdict we expect."""

from __future__ import annotations

import itertools

import pytest

from infrastream.domain.stage_machine import (
    RULES,
    Accepted,
    Rejected,
    StageEvent,
    StageState,
    decide,
)

S, E = StageState, StageEvent

ALLOWED = {
    (S.PENDING, E.REQUEST): S.AWAITING_APPROVAL,
    (S.REJECTED, E.REQUEST): S.AWAITING_APPROVAL,
    (S.FAILED, E.REQUEST): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, E.APPROVALS_MET): S.QUEUED,
    (S.AWAITING_APPROVAL, E.REJECT): S.REJECTED,
    (S.QUEUED, E.REJECT): S.REJECTED,
    (S.QUEUED, E.ENV_FREE): S.DEPLOYING,
    (S.DEPLOYING, E.DEPLOYED): S.VERIFYING,
    (S.DEPLOYING, E.DEPLOY_FAILED): S.FAILED,
    (S.VERIFYING, E.CHECKS_PASSED): S.SUCCEEDED,
    (S.VERIFYING, E.CHECKS_FAILED): S.FAILED,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(S, E)),
                         ids=lambda v: v.value)
def test_every_state_and_event_pair_has_the_expected_verdict(state, event):
    verdict = decide(state, event)
    if (state, event) in ALLOWED:
        assert isinstance(verdict, Accepted)
        assert verdict.state is ALLOWED[(state, event)]
    else:
        assert isinstance(verdict, Rejected)
        assert verdict.reason.startswith(f"cannot {event.value.replace('-', ' ')}: ")


def test_a_succeeded_stage_cannot_be_requested_again():
    verdict = decide(S.SUCCEEDED, E.REQUEST)
    assert verdict == Rejected("cannot request: the stage already succeeded")


def test_every_rule_has_a_unique_name_and_no_two_rules_overlap():
    assert len({rule.name for rule in RULES}) == len(RULES)
    seen = set()
    for rule in RULES:
        for state in rule.from_states:
            assert (state, rule.event) not in seen
            seen.add((state, rule.event))


def test_only_succeeded_failed_and_rejected_are_terminal():
    assert {s for s in S if s.terminal} == {S.SUCCEEDED, S.FAILED, S.REJECTED}
    assert {s for s in S if s.active} == {S.AWAITING_APPROVAL, S.QUEUED, S.DEPLOYING,
                                          S.VERIFYING}
