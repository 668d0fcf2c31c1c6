"""Slack: an incoming webhook, a Block Kit message with a plain-text fallback.

The message has a header (the title), the release, stage and other facts as fields, the
lines of what the stage waits for as a list, and a button to the deep link. `text` repeats
it all for notifications and clients that show no blocks. Slack answers `200 ok`; a removed
webhook or archived channel is a 4xx (permanent), its outages a 5xx or 429 (retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infrastream.domain.notifications import Notification

from .base import OPEN_LABEL, HttpPoster, facts, host_of, http_url, plain_text, text_setting

HEADER_LIMIT = 150
"""Slack refuses a header longer than this."""
SECTION_LIMIT = 3000


@dataclass(frozen=True)
class Settings:
    webhook_url: str


def parse(settings: Mapping[str, Any]) -> Settings:
    return Settings(http_url(text_setting(settings, "webhook_url"), "webhook_url"))


def public(settings: Settings) -> dict[str, Any]:
    return {"host": host_of(settings.webhook_url)}


def message(notification: Notification) -> dict[str, Any]:
    """The Slack payload: `text` (fallback) and `blocks`."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": _cut(notification.title, HEADER_LIMIT)}}]
    shown = facts(notification)
    if shown:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{label}*\n{_escape(value)}", 2000)}
            for label, value in shown[:10]]})
    if notification.waiting_for:
        listed = "\n".join(f"• {_escape(line)}" for line in notification.waiting_for)
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": _cut(f"*Waiting for*\n{listed}", SECTION_LIMIT)}})
    if notification.link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": OPEN_LABEL},
             "url": notification.link, "style": "primary"}]})
    return {"text": plain_text(notification), "blocks": blocks}


class Channel:
    def __init__(self, settings: Settings) -> None:
        self._poster = HttpPoster(settings.webhook_url, "Slack")

    def send(self, notification: Notification) -> str:
        body = json.dumps(message(notification)).encode()
        return self._poster.post(body, {})

    def close(self) -> None:
        self._poster.close()


def _escape(text: str) -> str:
    """Slack's mrkdwn escapes: &, < and > (the rest is shown as written)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
