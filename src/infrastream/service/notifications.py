"""What people are told, and when: notifications built from the facts the engine already has.

Two sources, one shape (`domain.notifications.Notification`):

- **A promotion waits for people.** A stage run awaiting approval whose readiness blockers
  are only missing sign-offs (and possibly a freeze window) waits for the holders of each
  role short of people: `approval.waiting`, one per stage run, request and role. The track's
  `approvalReminders` adds `approval.reminder` (every `after`, at most `maxReminders` times)
  and one `approval.escalated` to the `escalateTo` role after `escalateAfter`
  (`follow_ups` says what is due and when the next thing falls due).
- **Something happened.** Audit entries (`stage.fail`, `approval.reject`, `stage.deployed` of
  a stage with production-tier environments, `release.create` of a hotfix, `freeze.override`)
  become `release.failed`, `release.rejected`, `production.deployed`, `hotfix.started` and
  `freeze.overridden`, keyed by the entry's chain sequence number (`from_audit`).

The functions here build notifications from facts handed in; reading the facts and recording
the notifications is `engine.notify_pass`'s business. Who may approve is the approvals
verdict (`domain.approvals.check_can_approve`), the same one "My approvals" applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infrastream.domain.approvals import Approval, Refusal, check_can_approve
from infrastream.domain.audit_chain import AuditEntry
from infrastream.domain.notifications import EventKind, Notification, Recipient
from infrastream.domain.readiness import Blocker, Code
from infrastream.domain.roles import PROMOTE, Role
from infrastream.manifests import Stage, Tier, format_duration
from infrastream.manifests.track import ApprovalReminders

from .records.release_content import ReleaseContent

WAITING_CODES = frozenset({Code.APPROVAL_MISSING, Code.FROZEN})
"""A promotion waits for people when nothing but these holds it (the previous stage has
succeeded; a freeze only delays it)."""

AUDIT_ACTIONS = ("stage.fail", "approval.reject", "stage.deployed", "release.create",
                 "freeze.override")
"""The audit actions that may become a notification (`from_audit`)."""

_RELEASE_MANAGERS = tuple(sorted(role.value for role in PROMOTE))


@dataclass(frozen=True)
class Person:
    """An enabled user, as the notifications need them."""

    name: str
    roles: frozenset[str]
    email: str | None = None


@dataclass(frozen=True)
class Wait:
    """One role a promotion waits for: a stage run, its request, the role."""

    stage_run_id: int
    request_id: int
    role: str
    release: str
    """`set/name`."""
    track: str
    stage: str
    team: str | None
    blockers: tuple[str, ...]
    """The blocker lines of the stage (every one, not only this role's)."""
    reminders: ApprovalReminders | None = None

    @property
    def ident(self) -> str:
        return f"{self.stage_run_id}:{self.request_id}:{self.role}"

    def key(self, kind: EventKind, number: int | None = None) -> str:
        return f"{kind.value}:{self.ident}" + (f":{number}" if number is not None else "")

    def all_keys(self) -> list[str]:
        """Every key a notification of this wait can have (to look them up at once)."""
        found = [self.key(EventKind.APPROVAL_WAITING), self.key(EventKind.APPROVAL_ESCALATED)]
        if self.reminders is not None:
            found += [self.key(EventKind.APPROVAL_REMINDER, n)
                      for n in range(1, self.reminders.max_reminders + 1)]
        return found


def waiting_roles(blockers: Sequence[Blocker]) -> list[str]:
    """The roles a stage waits for when people are all it waits for, else none."""
    codes = {b.code for b in blockers}
    if Code.APPROVAL_MISSING not in codes or not codes <= WAITING_CODES:
        return []
    return [str(b.data["role"]) for b in blockers if b.code is Code.APPROVAL_MISSING]


def team_of(content: ReleaseContent) -> str | None:
    """The team owning the release's application set (`metadata.team`), if any."""
    team = content.raw["manifests"].get("applicationSet", {}).get("metadata", {}).get("team")
    return str(team) if team else None


def release_link(public_url: str | None, release: str) -> str | None:
    """The Portal page of a release (where its approvers sign), when the URL is known."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/portal/releases/{release}"


def approvers(people: Iterable[Person], *, role: str, stage: Stage,
              approvals: Sequence[Approval], initiator: str | None,
              initiator_may_approve: bool, digest: str, request_id: int,
              now: datetime) -> tuple[Recipient, ...]:
    """The people who could sign for `role` now (the verdict `promotions.approve` applies)."""
    found = []
    for person in people:
        if role not in person.roles:
            continue
        verdict = check_can_approve(
            user=person.name, user_roles=sorted(person.roles), role=role,
            rules=stage.approvals, approvals=approvals, initiator=initiator,
            initiator_may_approve=initiator_may_approve, digest=digest,
            request_id=request_id, now=now)
        if not isinstance(verdict, Refusal):
            found.append(Recipient(person.name, person.email))
    return tuple(found)


def holders(people: Iterable[Person], role: str) -> tuple[Recipient, ...]:
    return tuple(Recipient(p.name, p.email) for p in people if role in p.roles)


# -- a wait and what follows it -------------------------------------------------------------

def waiting(wait: Wait, recipients: tuple[Recipient, ...], link: str | None,
            now: datetime) -> Notification:
    return Notification(
        kind=EventKind.APPROVAL_WAITING, key=wait.key(EventKind.APPROVAL_WAITING),
        title=f"{wait.release} waits for {wait.role} in {wait.stage}", track=wait.track,
        occurred_at=now, release=wait.release, stage=wait.stage, waiting_for=wait.blockers,
        roles=(wait.role,), team=wait.team, link=link, recipients=recipients)


def reminder(wait: Wait, number: int, since: datetime, recipients: tuple[Recipient, ...],
             link: str | None, now: datetime) -> Notification:
    return Notification(
        kind=EventKind.APPROVAL_REMINDER, key=wait.key(EventKind.APPROVAL_REMINDER, number),
        title=f"Reminder: {wait.release} still waits for {wait.role} in {wait.stage} "
              f"(for {_ago(now - since)})",
        track=wait.track, occurred_at=now, release=wait.release, stage=wait.stage,
        waiting_for=wait.blockers, roles=(wait.role,), team=wait.team, link=link,
        recipients=recipients, details={"reminder": str(number), "since": since.isoformat()})


def escalated(wait: Wait, escalate_to: str, since: datetime,
              recipients: tuple[Recipient, ...], link: str | None,
              now: datetime) -> Notification:
    return Notification(
        kind=EventKind.APPROVAL_ESCALATED, key=wait.key(EventKind.APPROVAL_ESCALATED),
        title=f"Escalated to {escalate_to}: {wait.release} has waited {_ago(now - since)} "
              f"for {wait.role} in {wait.stage}",
        track=wait.track, occurred_at=now, release=wait.release, stage=wait.stage,
        waiting_for=wait.blockers, roles=(wait.role, escalate_to), team=wait.team, link=link,
        recipients=recipients, details={"since": since.isoformat(), "escalatedTo": escalate_to})


@dataclass(frozen=True)
class FollowUps:
    """What is due for a wait now, and when the next follow-up falls due."""

    reminder: int | None = None
    """The number of the reminder due now."""
    escalate: bool = False
    next_due: datetime | None = None


def follow_ups(policy: ApprovalReminders | None, *, since: datetime, reminders: int,
               last: datetime, escalated_already: bool, now: datetime) -> FollowUps:
    """Reminders every `after` since the last notification of the wait (so a server that was
    away sends one, not a burst), at most `maxReminders`; one escalation `escalateAfter` after
    the wait began."""
    if policy is None:
        return FollowUps()
    due: list[datetime] = []
    number = None
    if reminders < policy.max_reminders:
        at = last + timedelta(seconds=policy.after_seconds)
        if at <= now:
            number = reminders + 1
            if number < policy.max_reminders:
                due.append(now + timedelta(seconds=policy.after_seconds))
        else:
            due.append(at)
    escalate = False
    seconds = policy.escalate_seconds
    if seconds is not None and policy.escalate_to and not escalated_already:
        at = since + timedelta(seconds=seconds)
        if at <= now:
            escalate = True
        else:
            due.append(at)
    return FollowUps(number, escalate, min(due) if due else None)


def _ago(delta: timedelta) -> str:
    return format_duration(delta.total_seconds())


# -- what the audit trail says happened -----------------------------------------------------

@dataclass(frozen=True)
class ReleaseFacts:
    """What an audit entry's release adds to its notification."""

    ref: str
    track: str
    lane: str
    content: ReleaseContent


def production_stage(content: ReleaseContent, lane: str, stage_name: str) -> Stage | None:
    """The stage of that name when every one of its environments is production-tier."""
    for stage in content.stages(lane):
        if stage.display_name == stage_name:
            tiers = {content.environment(env).spec.tier for env in stage.environments}
            return stage if tiers == {Tier.PRODUCTION} else None
    return None


def from_audit(entry: AuditEntry, release: ReleaseFacts | None,
               public_url: str | None) -> Notification | None:
    """The notification an audit entry stands for, if any (key `{kind}:{seq}`)."""
    if release is None or entry.object_type != "release":
        return None
    after: Mapping[str, Any] = entry.after if isinstance(entry.after, Mapping) else {}
    ref, stage = release.ref, after.get("stage")
    base: dict[str, Any] = {"track": release.track, "occurred_at": entry.at, "release": ref,
                            "team": team_of(release.content), "actor": entry.actor,
                            "link": release_link(public_url, ref)}
    if entry.action == "stage.fail":
        return Notification(kind=EventKind.RELEASE_FAILED,
                            key=f"{EventKind.RELEASE_FAILED.value}:{entry.seq}",
                            title=f"{ref} failed in {stage}", stage=stage,
                            roles=_RELEASE_MANAGERS,
                            details={"reason": str(after.get("reason", ""))}, **base)
    if entry.action == "approval.reject":
        role = str(after.get("role", ""))
        return Notification(kind=EventKind.RELEASE_REJECTED,
                            key=f"{EventKind.RELEASE_REJECTED.value}:{entry.seq}",
                            title=f"{ref} was rejected for {stage} by {entry.actor}",
                            stage=stage, roles=tuple(dict.fromkeys((*_RELEASE_MANAGERS, role))),
                            details={"reason": str(after.get("reason", "")), "role": role},
                            **base)
    if entry.action == "stage.deployed":
        found = production_stage(release.content, release.lane, str(stage))
        if found is None:
            return None
        return Notification(kind=EventKind.PRODUCTION_DEPLOYED,
                            key=f"{EventKind.PRODUCTION_DEPLOYED.value}:{entry.seq}",
                            title=f"{ref} is deployed to {stage}", stage=stage,
                            roles=_RELEASE_MANAGERS,
                            details={"environments": ", ".join(found.environments),
                                     "lane": release.lane}, **base)
    if entry.action == "release.create" and after.get("lane") == "hotfix":
        incident = after.get("incident")
        versions = after.get("versions") or {}
        return Notification(kind=EventKind.HOTFIX_STARTED,
                            key=f"{EventKind.HOTFIX_STARTED.value}:{entry.seq}",
                            title=f"Hotfix {ref} started" + (f" ({incident})" if incident
                                                             else ""),
                            roles=(*_RELEASE_MANAGERS, Role.INCIDENT_COMMANDER.value),
                            details={"incident": str(incident or ""),
                                     "versions": ", ".join(f"{app}={image}" for app, image
                                                           in sorted(versions.items()))},
                            **base)
    if entry.action == "freeze.override":
        windows = ", ".join(after.get("windows") or [])
        return Notification(kind=EventKind.FREEZE_OVERRIDDEN,
                            key=f"{EventKind.FREEZE_OVERRIDDEN.value}:{entry.seq}",
                            title=f"{entry.actor} overrode freeze {windows} for {ref}",
                            roles=_RELEASE_MANAGERS,
                            details={"reason": str(after.get("reason", "")),
                                     "windows": windows}, **base)
    return None
