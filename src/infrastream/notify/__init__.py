"""Notification channels: how one `domain.notifications.Notification` reaches people.

One module per kind of channel renders the same notification for its receiver and sends it:
`slack` (an incoming webhook, Block Kit), `teams` (a Workflows webhook, an Adaptive Card),
`email` (SMTP) and `webhook` (a signed CloudEvents POST). Each parses its own settings
(`parse`, raising `PermanentError` for a setting that cannot work), says what of them may be
shown (`public`: never a webhook URL, password or signing key) and builds a sender. Every
send failure is sorted the way the SCM adapters sort theirs: worth retrying
(`TransientError`, with the receiver's `Retry-After` when it named one) or not
(`PermanentError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import email, slack, teams, webhook
from .base import Sender

KINDS = ("slack", "teams", "email", "webhook")
_MODULES: dict[str, Any] = {"slack": slack, "teams": teams, "email": email, "webhook": webhook}

__all__ = ["KINDS", "Sender", "build", "parse", "public"]


def parse(kind: str, settings: Mapping[str, Any]) -> Any:
    """The settings of a channel of `kind`, checked (`PermanentError` when they cannot work)."""
    from infrastream.domain.errors import PermanentError

    module = _MODULES.get(kind)
    if module is None:
        raise PermanentError(f"`{kind[:40]}` is no channel kind: use one of {', '.join(KINDS)}")
    return module.parse(settings)


def public(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What may be shown of a channel's settings."""
    return dict(_MODULES[kind].public(parse(kind, settings)))


def build(kind: str, settings: Mapping[str, Any]) -> Sender:
    """A sender for the channel (close it when done)."""
    return _MODULES[kind].Channel(parse(kind, settings))  # type: ignore[no-any-return]
