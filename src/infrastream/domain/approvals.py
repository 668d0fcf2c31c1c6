"""Who has signed off a promotion, and whether that satisfies the stage's approval rules.

A promotion request carries the approval rules of the stage it enters. An approval counts
for a rule when it was given for this very request and release digest, by a holder of the
rule's role, and has not expired. Each person counts once per role and satisfies at most one
rule of a promotion; unless the track allows it, the initiator cannot approve.
`check_can_approve` says why an approve attempt is refused; `tally` says what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

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


class RefusalKind(StrEnum):
    FORBIDDEN = "forbidden"
    """The person may not give this approval (wrong role, initiator)."""
    CONFLICT = "conflict"
    """The promotion's state refuses it (already signed, rule complete, nothing to sign)."""
    AMBIGUOUS = "ambiguous"
    """The person holds several roles the promotion still needs: they must say which."""


@dataclass(frozen=True)
class Refusal:
    reason: str
    kind: RefusalKind
    candidates: tuple[str, ...] = ()
    """For an ambiguous attempt: the roles the person could sign as."""

    def __str__(self) -> str:
        return self.reason


def check_can_approve(*, user: str, user_roles: Sequence[str], role: str | None,
                      rules: Sequence[ApprovalRule], approvals: Sequence[Approval],
                      initiator: str | None, initiator_may_approve: bool, digest: str,
                      request_id: int, now: datetime) -> Refusal | RuleTally:
    """The rule the user's approval would count for, or why it is refused.

    Without `role`, the one rule of a role the user holds that still needs people is chosen;
    when there are several, the attempt is refused as ambiguous, naming them: signing as
    security when one meant QA must never happen silently."""
    forbidden, conflict = RefusalKind.FORBIDDEN, RefusalKind.CONFLICT
    roles_needed = [r.role for r in rules]
    if not rules:
        return Refusal("this promotion needs no approval", conflict)
    if role is not None and role not in roles_needed:
        return Refusal(f"no approval rule of this stage asks for role `{role}` (it asks for "
                       + ", ".join(roles_needed) + ")", forbidden)
    if role is not None and role not in user_roles:
        return Refusal(f"{user} does not hold role `{role}`", forbidden)
    if user == initiator and not initiator_may_approve:
        return Refusal(f"{user} requested this promotion and cannot also approve it", forbidden)
    mine = [a for a in approvals
            if a.user == user and a.request_id == request_id and a.digest == digest]
    current = tally(rules, approvals, digest=digest, request_id=request_id, now=now)
    if mine and not any(_expired_for(rules, a, now) for a in mine):
        return Refusal(f"{user} already approved this promotion (as {mine[0].role})", conflict)
    candidates = [role] if role is not None else \
        list(dict.fromkeys(r for r in roles_needed if r in user_roles))
    if not candidates:
        return Refusal(f"{user} holds none of the roles this promotion needs ("
                       + ", ".join(roles_needed) + ")", forbidden)
    open_rules = [t for t in current.rules if t.role in candidates and not t.satisfied]
    open_roles = list(dict.fromkeys(t.role for t in open_rules))
    if role is None and len(open_roles) > 1:
        return Refusal(f"{user} holds several roles this promotion still needs ("
                       + ", ".join(open_roles) + "): say which one to sign as (--role)",
                       RefusalKind.AMBIGUOUS, tuple(open_roles))
    if open_rules:
        return open_rules[0]
    return Refusal(f"the `{candidates[0]}` approvals of this promotion are already complete",
                   conflict)


def _expired_for(rules: Sequence[ApprovalRule], approval: Approval, now: datetime) -> bool:
    return any(r.role == approval.role and _expired(r, approval, now) for r in rules)
