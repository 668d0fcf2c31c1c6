"""What people are told, independent of how it reaches them: the one shape of a notification.

The engine side (`service.notifications`) decides that something happened that people must
hear about (a promotion started waiting for a role, a release failed, …) and records one
`Notification` per happening, deduplicated by `key`; the delivery side
(`service.notification_outbox`, `notify.*` channels) renders the same notification for Slack,
Microsoft Teams, email or a signed webhook. Both meet here, so a message carries the same
release, stage, blocker list and deep link wherever it lands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    APPROVAL_WAITING = "approval.waiting"
    """A promotion started waiting for a role's sign-off."""
    APPROVAL_REMINDER = "approval.reminder"
    """It still waits after the track's `remind.after`."""
    APPROVAL_ESCALATED = "approval.escalated"
    """It still waits, and the track names a role to escalate to."""
    RELEASE_FAILED = "release.failed"
    RELEASE_REJECTED = "release.rejected"
    PRODUCTION_DEPLOYED = "production.deployed"
    HOTFIX_STARTED = "hotfix.started"
    FREEZE_OVERRIDDEN = "freeze.overridden"


@dataclass(frozen=True)
class Recipient:
    """A person a notification is meant for (an email channel mails them)."""

    name: str
    email: str | None = None


@dataclass(frozen=True)
class Notification:
    kind: EventKind
    key: str
    """Deduplicates: the same key is the same notification, recorded and sent once."""
    title: str
    """One line a person reads first, e.g. "shop/v7 waits for qa in Staging"."""
    track: str
    occurred_at: datetime
    release: str | None = None
    stage: str | None = None
    waiting_for: tuple[str, ...] = ()
    """The blocker lines (`domain.readiness` texts) of what the stage waits for."""
    roles: tuple[str, ...] = ()
    """The roles asked to act (and, for an escalation, the role escalated to)."""
    team: str | None = None
    """The team owning the application set, when there is one."""
    actor: str | None = None
    """Who did it (the rejecter, who started the hotfix or overrode the freeze)."""
    link: str | None = None
    """Deep link into the Portal (where to approve, or the release page)."""
    recipients: tuple[Recipient, ...] = ()
    details: Mapping[str, str] = field(default_factory=dict)
    """Further facts worth a line each (reason, environment, version)."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "key": self.key, "title": self.title,
                "track": self.track, "occurredAt": self.occurred_at.isoformat(),
                "release": self.release, "stage": self.stage,
                "waitingFor": list(self.waiting_for), "roles": list(self.roles),
                "team": self.team, "actor": self.actor, "link": self.link,
                "recipients": [{"name": r.name, "email": r.email} for r in self.recipients],
                "details": dict(self.details)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notification:
        return cls(kind=EventKind(data["kind"]), key=data["key"], title=data["title"],
                   track=data["track"],
                   occurred_at=datetime.fromisoformat(data["occurredAt"]),
                   release=data.get("release"), stage=data.get("stage"),
                   waiting_for=tuple(data.get("waitingFor") or ()),
                   roles=tuple(data.get("roles") or ()), team=data.get("team"),
                   actor=data.get("actor"), link=data.get("link"),
                   recipients=tuple(Recipient(r["name"], r.get("email"))
                                    for r in data.get("recipients") or ()),
                   details=dict(data.get("details") or {}))
