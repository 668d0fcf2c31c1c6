"""Approval rules: counting distinct people per role, binding to the digest and request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infrastream.domain.approvals import Approval, check_can_approve, tally
from infrastream.manifests import ApprovalRule

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def rule(role: str, count: int = 1, expires: str | None = None) -> ApprovalRule:
    data = {"role": role, "count": count}
    if expires:
        data["expiresAfter"] = expires
    return ApprovalRule.model_validate(data)


def approval(user: str, role: str, *, minutes_ago: int = 1, digest: str = DIGEST,
             request: int = 1) -> Approval:
    return Approval(user, role, NOW - timedelta(minutes=minutes_ago), digest, request)


def test_two_distinct_incident_commanders_satisfy_a_count_of_two():
    rules = [rule("incident-commander", 2)]
    one = tally(rules, [approval("ann", "incident-commander")], digest=DIGEST, request_id=1,
                now=NOW)
    assert not one.satisfied and one.missing() == ["incident-commander 1/2"]
    two = tally(rules, [approval("ann", "incident-commander"),
                        approval("bob", "incident-commander")], digest=DIGEST, request_id=1,
                now=NOW)
    assert two.satisfied


def test_one_person_satisfies_at_most_one_rule():
    rules = [rule("qa"), rule("security")]
    result = tally(rules, [approval("ann", "qa"), approval("ann", "security")], digest=DIGEST,
                   request_id=1, now=NOW)
    assert result.missing() == ["security 0/1"]


@pytest.mark.parametrize(("kwargs", "counts"), [
    ({}, True),
    ({"digest": "sha256:" + "b" * 64}, False),
    ({"request": 2}, False),
], ids=["same digest and request", "other digest", "earlier request"])
def test_an_approval_only_counts_for_its_digest_and_request(kwargs, counts):
    result = tally([rule("qa")], [approval("ann", "qa", **kwargs)], digest=DIGEST,
                   request_id=1, now=NOW)
    assert result.satisfied is counts


def test_an_expired_approval_no_longer_counts():
    rules = [rule("security", expires="1h")]
    fresh = tally(rules, [approval("sam", "security", minutes_ago=30)], digest=DIGEST,
                  request_id=1, now=NOW)
    stale = tally(rules, [approval("sam", "security", minutes_ago=90)], digest=DIGEST,
                  request_id=1, now=NOW)
    assert fresh.satisfied and not stale.satisfied


def _can(user: str, roles: list[str], role: str | None = None, approvals=(), initiator="rita",
         may: bool = False):
    return check_can_approve(user=user, user_roles=roles, role=role,
                             rules=[rule("qa"), rule("security")], approvals=list(approvals),
                             initiator=initiator, initiator_may_approve=may, digest=DIGEST,
                             request_id=1, now=NOW)


def test_approve_attempts_are_refused_with_a_precise_reason():
    assert str(_can("dev", ["developer"])) == ("dev holds none of the roles this promotion needs "
                                          "(qa, security)")
    assert str(_can("ann", ["qa"], role="security")) == "ann does not hold role `security`"
    assert str(_can("ann", ["qa"], role="product")).startswith("no approval rule of this stage")
    assert str(_can("rita", ["qa"])) == "rita requested this promotion and cannot also approve it"
    assert str(_can("ann", ["qa"], approvals=[approval("ann", "qa")])).startswith(
        "ann already approved")
    assert str(_can("bob", ["qa"], approvals=[approval("ann", "qa")])) == (
        "the `qa` approvals of this promotion are already complete")


def test_allowed_approvals_name_the_rule_they_count_for():
    assert _can("ann", ["qa"]).role == "qa"
    assert _can("rita", ["qa"], may=True).role == "qa"
    assert _can("ann", ["qa", "security"], approvals=[approval("bob", "qa")]).role == "security"
