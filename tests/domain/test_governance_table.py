"""Each governance rule of a promotion, one allowed and one refused case each (table-driven).

Rules: `count` distinct people per role; one person satisfies at most one rule; the initiator
cannot approve (unless the track allows it); approvals are bound to the release digest and to
the promotion request; expired approvals do not count; only holders of a rule's role approve.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infrastream.domain.approvals import Approval, RuleTally, check_can_approve, tally
from infrastream.manifests import ApprovalRule

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
DIGEST = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64
IC2 = [ApprovalRule(role="incident-commander", count=2)]
QA_SEC = [ApprovalRule(role="qa"), ApprovalRule(role="security")]
EXPIRING = [ApprovalRule.model_validate({"role": "security", "expiresAfter": "24h"})]


def given(user: str, role: str, *, hours_ago: float = 1, digest: str = DIGEST,
          request: int = 1) -> Approval:
    return Approval(user, role, NOW - timedelta(hours=hours_ago), digest, request)


# (rule, rules, approvals so far, who tries, their roles, role asked, initiator, may-approve,
#  expected: a role the approval counts for, or a refusal reason fragment)
ATTEMPTS = [
    ("count distinct people", IC2, [given("ann", "incident-commander")], "bob",
     ["incident-commander"], None, "rita", False, "incident-commander"),
    ("count distinct people", IC2, [given("ann", "incident-commander")], "ann",
     ["incident-commander"], None, "rita", False, "ann already approved"),
    ("one person, one rule", QA_SEC, [], "ann", ["qa", "security"], None, "rita", False, "qa"),
    ("one person, one rule", QA_SEC, [given("ann", "qa")], "ann", ["qa", "security"],
     "security", "rita", False, "ann already approved"),
    ("initiator cannot approve", QA_SEC, [], "rita", ["qa"], None, "rita", True, "qa"),
    ("initiator cannot approve", QA_SEC, [], "rita", ["qa"], None, "rita", False,
     "requested this promotion"),
    ("only holders of the role", QA_SEC, [], "quinn", ["qa"], "qa", "rita", False, "qa"),
    ("only holders of the role", QA_SEC, [], "quinn", ["qa"], "security", "rita", False,
     "does not hold role `security`"),
]


@pytest.mark.parametrize(
    ("rule", "rules", "so_far", "user", "roles", "role", "initiator", "may", "expected"),
    ATTEMPTS, ids=[f"{a[0]}: {'allowed' if i % 2 == 0 else 'refused'}"
                   for i, a in enumerate(ATTEMPTS)])
def test_an_approve_attempt_is_allowed_or_refused_with_its_reason(
        rule, rules, so_far, user, roles, role, initiator, may, expected):
    verdict = check_can_approve(user=user, user_roles=roles, role=role, rules=rules,
                                approvals=so_far, initiator=initiator,
                                initiator_may_approve=may, digest=DIGEST, request_id=1,
                                now=NOW)
    if isinstance(verdict, RuleTally):
        assert verdict.role == expected
    else:
        assert expected in verdict.reason


# (rule, rules, approvals, satisfied?)
COUNTS = [
    ("bound to the digest", QA_SEC[:1], [given("quinn", "qa")], True),
    ("bound to the digest", QA_SEC[:1], [given("quinn", "qa", digest=OTHER)], False),
    ("bound to the request", QA_SEC[:1], [given("quinn", "qa", request=1)], True),
    ("bound to the request", QA_SEC[:1], [given("quinn", "qa", request=0)], False),
    ("approvals expire", EXPIRING, [given("sam", "security", hours_ago=23)], True),
    ("approvals expire", EXPIRING, [given("sam", "security", hours_ago=25)], False),
    ("count distinct people", IC2, [given("ann", "incident-commander"),
                                    given("bob", "incident-commander")], True),
    ("count distinct people", IC2, [given("ann", "incident-commander"),
                                    given("ann", "incident-commander")], False),
    ("one person, one rule", QA_SEC, [given("quinn", "qa"), given("sam", "security")], True),
    ("one person, one rule", QA_SEC, [given("ann", "qa"), given("ann", "security")], False),
]


@pytest.mark.parametrize(("rule", "rules", "approvals", "satisfied"), COUNTS,
                         ids=[f"{c[0]}: {'counts' if c[3] else 'does not count'}"
                              for c in COUNTS])
def test_what_counts_towards_a_promotion(rule, rules, approvals, satisfied):
    result = tally(rules, approvals, digest=DIGEST, request_id=1, now=NOW)
    assert result.satisfied is satisfied
