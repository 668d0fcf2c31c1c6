"""Microsoft Teams: a Workflows incoming webhook, an Adaptive Card (1.4).

The card has the title, the facts as a FactSet, what the stage waits for as a list and an
`Action.OpenUrl` to the deep link, wrapped in the `message` envelope Workflows' "post to a
channel when a webhook request is received" expects. Workflows answers `202 Accepted`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infrastream.domain.notifications import Notification

from .base import OPEN_LABEL, HttpPoster, facts, host_of, http_url, text_setting

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


@dataclass(frozen=True)
class Settings:
    webhook_url: str


def parse(settings: Mapping[str, Any]) -> Settings:
    return Settings(http_url(text_setting(settings, "webhook_url"), "webhook_url"))


def public(settings: Settings) -> dict[str, Any]:
    return {"host": host_of(settings.webhook_url)}


def card(notification: Notification) -> dict[str, Any]:
    """The Adaptive Card of `notification`."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": notification.title, "weight": "Bolder",
         "size": "Medium", "wrap": True}]
    shown = facts(notification)
    if shown:
        body.append({"type": "FactSet",
                     "facts": [{"title": label, "value": value} for label, value in shown]})
    if notification.waiting_for:
        body.append({"type": "TextBlock", "text": "Waiting for", "weight": "Bolder",
                     "wrap": True, "spacing": "Medium"})
        body.append({"type": "TextBlock", "wrap": True,
                     "text": "\n".join(f"- {line}" for line in notification.waiting_for)})
    found: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.4",
                             "body": body}
    if notification.link:
        found["actions"] = [{"type": "Action.OpenUrl", "title": OPEN_LABEL,
                             "url": notification.link}]
    return found


def message(notification: Notification) -> dict[str, Any]:
    """The webhook payload: one attachment, the card."""
    return {"type": "message", "attachments": [
        {"contentType": CARD_TYPE, "contentUrl": None, "content": card(notification)}]}


class Channel:
    def __init__(self, settings: Settings) -> None:
        self._poster = HttpPoster(settings.webhook_url, "Microsoft Teams")

    def send(self, notification: Notification) -> str:
        return self._poster.post(json.dumps(message(notification)).encode(), {})

    def close(self) -> None:
        self._poster.close()
