"""A generic outgoing webhook: the notification's JSON, as a CloudEvent, signed.

The body is `Notification.to_json()`; the CloudEvents 1.0 attributes travel as headers
(binary content mode: `ce-specversion`, `ce-id`, `ce-source`, `ce-type` such as
`dev.infrastream.approval.waiting`, `ce-time`, `ce-subject`), and the signature follows the
Standard Webhooks specification: `webhook-id`, `webhook-timestamp` (Unix seconds) and
`webhook-signature: v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`. The key is
the base64-decoded part of a `whsec_…` secret, or the secret's UTF-8 bytes otherwise. The id
is the same on every retry of the same notification, so a receiver can drop duplicates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infrastream.domain.errors import PermanentError
from infrastream.domain.notifications import Notification

from .base import HttpPoster, host_of, http_url, text_setting

TYPE_PREFIX = "dev.infrastream."
SOURCE = "urn:infrastream"
MIN_SECRET = 16


@dataclass(frozen=True)
class Settings:
    url: str
    secret: str


def parse(settings: Mapping[str, Any]) -> Settings:
    url = http_url(text_setting(settings, "url"), "url")
    secret = text_setting(settings, "secret")
    signing_key(secret)
    return Settings(url, secret)


def public(settings: Settings) -> dict[str, Any]:
    """Only the host: a receiver's URL may carry a token of its own."""
    return {"host": host_of(settings.url)}


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise PermanentError("a `whsec_` secret must be base64 after the prefix") from None
    else:
        key = secret.encode()
    if len(key) < MIN_SECRET:
        raise PermanentError(f"the signing secret must be at least {MIN_SECRET} bytes")
    return key


def message_id(notification: Notification) -> str:
    """Stable per notification (the same on every retry)."""
    return "msg_" + hashlib.sha256(notification.key.encode()).hexdigest()[:32]


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value (Standard Webhooks, `v1`)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(notification: Notification, secret: str, body: bytes,
            timestamp: int) -> dict[str, str]:
    msg_id = message_id(notification)
    found = {"ce-specversion": "1.0", "ce-id": msg_id, "ce-source": SOURCE,
             "ce-type": TYPE_PREFIX + notification.kind.value,
             "ce-time": notification.occurred_at.isoformat(),
             "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
             "webhook-signature": sign(secret, msg_id, timestamp, body)}
    if notification.release:
        found["ce-subject"] = notification.release
    return found


class Channel:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._secret = settings.secret
        self._clock = clock
        self._poster = HttpPoster(settings.url, "the webhook")

    def send(self, notification: Notification) -> str:
        body = json.dumps(notification.to_json(), separators=(",", ":")).encode()
        return self._poster.post(body, headers(notification, self._secret, body,
                                               int(self._clock())))

    def close(self) -> None:
        self._poster.close()
