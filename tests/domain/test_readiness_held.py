"""`readiness.held`: what held a stage in the state it leaves, and for how long, from the
stored timestamps alone (so any server, after any restart, gives the same answer)."""

from __future__ import annotations

from datetime import timedelta

from test_readiness import FREEZE, NOW, facts

from infrastream.domain.approvals import Approval
from infrastream.domain.readiness import Code, held
from infrastream.domain.stage_machine import StageState

HOUR = timedelta(hours=1)


def at(offset: timedelta, user: str, role: str) -> Approval:
    return Approval(user, role, NOW + offset, "d", 1)


def test_a_promotion_waits_for_the_stage_before_then_for_its_sign_offs():
    approvals = (at(2 * HOUR, "quinn", "qa"), at(3 * HOUR, "sam", "security"))
    leaving = facts(StageState.AWAITING_APPROVAL, approvals=approvals)
    found = held(leaving, NOW, NOW + 3 * HOUR, previous_done=NOW + HOUR)
    assert found == [(Code.PREVIOUS_STAGE, 3600.0), (Code.APPROVAL_MISSING, 3 * 3600.0)]


def test_sign_offs_given_then_a_freeze_window_held_it_until_it_moved_on():
    # the window runs to 2026-12-02T00:00 (12 h after NOW): signed at +1 h, moved on at +12 h
    approvals = (at(HOUR, "quinn", "qa"), at(HOUR, "sam", "security"))
    leaving = facts(StageState.AWAITING_APPROVAL, approvals=approvals, freezes=(FREEZE,))
    found = held(leaving, NOW, NOW + 12 * HOUR)
    assert found == [(Code.APPROVAL_MISSING, 3600.0), (Code.FROZEN, 11 * 3600.0)]
    overridden = facts(StageState.AWAITING_APPROVAL, approvals=approvals, freezes=(FREEZE,),
                       freeze_override=True)
    assert held(overridden, NOW, NOW + 12 * HOUR) == [(Code.APPROVAL_MISSING, 3600.0)]


def test_a_rejection_ends_the_wait_for_sign_offs_at_the_rejection():
    leaving = facts(StageState.AWAITING_APPROVAL, approvals=(at(HOUR, "quinn", "qa"),))
    assert held(leaving, NOW, NOW + 2 * HOUR) == [(Code.APPROVAL_MISSING, 7200.0)]


def test_a_queued_stage_was_held_by_a_freeze_or_else_by_a_busy_environment():
    queued = facts(StageState.QUEUED, freezes=(FREEZE,))
    assert held(queued, NOW, NOW + HOUR) == [(Code.FROZEN, 3600.0)]
    after_the_window = NOW + 13 * HOUR
    assert held(queued, after_the_window, after_the_window + HOUR) == [(Code.ENV_BUSY, 3600.0)]
    assert held(facts(StageState.QUEUED), NOW, NOW) == []  # no time held: not held


def test_verifying_counts_the_soak_and_the_checks_each_in_full():
    verifying = facts(StageState.VERIFYING)  # a 10-minute soak
    found = held(verifying, NOW, NOW + timedelta(minutes=25),
                 checks_done=NOW + timedelta(minutes=25))
    assert found == [(Code.SOAK_REMAINING, 600.0), (Code.CHECK_RUNNING, 1500.0)]
    assert held(verifying, NOW, NOW + timedelta(minutes=10)) == [(Code.SOAK_REMAINING, 600.0)]


def test_deploying_pending_and_failed_stages_are_held_by_their_own_code():
    for state, code in ((StageState.DEPLOYING, Code.DEPLOYING),
                        (StageState.PENDING, Code.NOT_REQUESTED),
                        (StageState.FAILED, Code.FAILED), (StageState.REJECTED, Code.REJECTED)):
        assert held(facts(state), NOW, NOW + HOUR) == [(code, 3600.0)], state
