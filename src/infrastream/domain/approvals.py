"""Who has signed off a promotion, and whether that satisfies the stage's approval rules.

A promotion request carries the approval rules of the stage it enters. An approval counts
for a rule when it was given for this very request and release digest, by a holder of the
rule's role, and has not expired. Each person counts once per role and satisfies at most one
rule of a promotion; unless the track allows it, the initiator cannot approve. `check_can_approve`
says why an approve attempt is refused; `tally` says what is still missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from infrastream.manifests import ApprovalRule, parse_duration


@dataclass(frozen=True)
class Approval:
    user: str
    role: str
    at: datetime
    digest: str
    request_id: int
    comment: str = ""


@dataclass(frozen=True)
class RuleTally:
    role: str
    required: int
    approvers: tuple[str, ...]
    expired: int = 0

    @property
    def satisfied(self) -> bool:
        return len(self.approvers) >= self.required

    def describe(self) -> str:
        return f"{self.role} {len(self.approvers)}/{self.required}"


@dataclass(frozen=True)
class Tally:
    rules: tuple[RuleTally, ...]

    @property
    def satisfied(self) -> bool:
        return all(rule.satisfied for rule in self.rules)

    def missing(self) -> list[str]:
        return [rule.describe() for rule in self.rules if not rule.satisfied]


def _expired(rule: ApprovalRule, approval: Approval, now: datetime) -> bool:
    if rule.expires_after is None:
        return False
    return now - approval.at > timedelta(seconds=parse_duration(rule.expires_after))


def tally(rules: Sequence[ApprovalRule], approvals: Sequence[Approval], *, digest: str,
          request_id: int, now: datetime) -> Tally:
    """Count the approvals of one promotion request against the stage's rules."""
    used_people: set[str] = set()
    results: list[RuleTally] = []
    for rule in rules:
        approvers: list[str] = []
        expired = 0
        for approval in approvals:
            if approval.role != rule.role or approval.request_id != request_id:
                continue
            if approval.digest != digest or approval.user in used_people \
                    or approval.user in approvers:
                continue
            if _expired(rule, approval, now):
                expired += 1
                continue
            if len(approvers) < rule.count:
                approvers.append(approval.user)
        used_people.update(approvers)
        results.append(RuleTally(rule.role, rule.count, tuple(approvers), expired))
    return Tally(tuple(results))


def check_can_approve(*, user: str, user_roles: Sequence[str], role: str | None,
                      rules: Sequence[ApprovalRule], approvals: Sequence[Approval],
                      initiator: str | None, initiator_may_approve: bool, digest: str,
                      request_id: int, now: datetime) -> str | RuleTally:
    """The role the user's approval would count for, or the reason it is refused (a str)."""
    roles_needed = [r.role for r in rules]
    if not rules:
        return "this promotion needs no approval"
    if role is not None and role not in roles_needed:
        return f"no approval rule of this stage asks for role `{role}` (it asks for " + \
            ", ".join(roles_needed) + ")"
    if role is not None and role not in user_roles:
        return f"{user} does not hold role `{role}`"
    if user == initiator and not initiator_may_approve:
        return f"{user} requested this promotion and cannot also approve it"
    mine = [a for a in approvals
            if a.user == user and a.request_id == request_id and a.digest == digest]
    current = tally(rules, approvals, digest=digest, request_id=request_id, now=now)
    if mine and not any(_expired_for(rules, a, now) for a in mine):
        return f"{user} already approved this promotion (as {mine[0].role})"
    candidates = [role] if role is not None else [r for r in roles_needed if r in user_roles]
    if not candidates:
        return f"{user} holds none of the roles this promotion needs (" + \
            ", ".join(roles_needed) + ")"
    for candidate in candidates:
        for rule_tally in current.rules:
            if rule_tally.role == candidate and not rule_tally.satisfied:
                return rule_tally
    return f"the `{candidates[0]}` approvals of this promotion are already complete"


def _expired_for(rules: Sequence[ApprovalRule], approval: Approval, now: datetime) -> bool:
    return any(r.role == approval.role and _expired(r, approval, now) for r in rules)
