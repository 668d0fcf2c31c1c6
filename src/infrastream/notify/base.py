"""What every channel shares: the sender's shape, the facts a message lists, and the one
place that sorts an HTTP receiver's answer into delivered, retry later or give up.

    network error, timeout, 5xx        TransientError(delay=Retry-After, else the backoff)
    429                                TransientError(delay=Retry-After or RATE_LIMIT_DELAY)
    any other 4xx                      PermanentError with the receiver's words

A webhook URL is a secret (whoever knows a Slack or Teams webhook URL may post to the
channel), so errors name only its host, and every text is scrubbed of the URL.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from infrastream import __version__
from infrastream.domain.errors import PermanentError, TransientError
from infrastream.domain.notifications import Notification

USER_AGENT = f"infrastream/{__version__}"
TIMEOUT = 10.0
RATE_LIMIT_DELAY = 30.0
"""Seconds to wait after a 429 that does not say until when."""
OPEN_LABEL = "Open in Infrastream"


class Sender(Protocol):
    def send(self, notification: Notification) -> str:
        """Deliver it; the receiver's answer in one line. Raises Transient/PermanentError."""

    def close(self) -> None: ...


def text_setting(settings: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = settings.get(name)
    if value is None or value == "":
        if required:
            raise PermanentError(f"the channel needs `{name}`")
        return ""
    if not isinstance(value, str):
        raise PermanentError(f"`{name}` must be text")
    return value.strip()


def http_url(value: str, name: str) -> str:
    """`value` if it is an http(s) URL with a host (else PermanentError, naming no secret)."""
    try:
        url = httpx.URL(value)
    except Exception:
        raise PermanentError(f"`{name}` is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise PermanentError(f"`{name}` must be an http(s) URL")
    return value


def host_of(url: str) -> str:
    """The host (and port) of `url`: what may be shown of a secret URL."""
    parsed = httpx.URL(url)
    return parsed.netloc.decode()


def facts(notification: Notification) -> list[tuple[str, str]]:
    """The labelled facts every channel shows, in order."""
    found: list[tuple[str, str]] = []
    for label, value in (("Release", notification.release), ("Stage", notification.stage),
                         ("Track", notification.track),
                         ("Roles", ", ".join(notification.roles) or None),
                         ("Team", notification.team), ("By", notification.actor)):
        if value:
            found.append((label, value))
    found.extend((k, v) for k, v in notification.details.items() if v)
    return found


def plain_text(notification: Notification) -> str:
    """The notification as plain text (email body, Slack's fallback)."""
    lines = [notification.title, ""]
    lines.extend(f"{label}: {value}" for label, value in facts(notification))
    if notification.waiting_for:
        lines += ["", "Waiting for:"] + [f"- {line}" for line in notification.waiting_for]
    if notification.link:
        lines += ["", f"{OPEN_LABEL}: {notification.link}"]
    return "\n".join(lines)


class HttpPoster:
    """POSTs to one secret URL with timeouts, and sorts the answer."""

    def __init__(self, url: str, receiver: str, *, timeout: float = TIMEOUT,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.receiver = receiver
        """How messages name it: `Slack`, `Microsoft Teams`, `the webhook`."""
        self._clock = clock
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT})

    def close(self) -> None:
        self._client.close()

    def post(self, body: bytes, headers: Mapping[str, str]) -> str:
        where = f"{self.receiver} at {host_of(self.url)}"
        try:
            response = self._client.post(self.url, content=body,
                                         headers={"Content-Type": "application/json",
                                                  **headers})
        except httpx.TimeoutException as exc:
            raise TransientError(f"{where} did not answer in time ({type(exc).__name__})",
                                 ) from None
        except httpx.TransportError as exc:
            raise TransientError(self._scrub(f"{where} is unreachable: {exc}")) from None
        said = self._scrub(" ".join(response.text.split())[:300])
        answer = f"{response.status_code}" + (f" {said}" if said else "")
        if response.status_code < 300:
            return answer
        reason = f"{where} answered {answer}"
        if response.status_code == 429:
            delay = self._retry_after(response, RATE_LIMIT_DELAY)
            raise TransientError(f"{reason} (rate limited; retry in {delay:.0f}s)",
                                 delay=delay, status=429)
        if response.status_code >= 500:
            raise TransientError(reason, delay=self._retry_after(response, None),
                                 status=response.status_code)
        raise PermanentError(reason, status=response.status_code)

    def _retry_after(self, response: httpx.Response, default: float | None) -> float | None:
        header = (response.headers.get("retry-after") or "").strip()
        if header.isdigit():
            return float(header)
        if header:
            try:
                return max(1.0, email.utils.parsedate_to_datetime(header).timestamp()
                           - self._clock())
            except (TypeError, ValueError):
                pass
        return default

    def _scrub(self, text: str) -> str:
        parsed = httpx.URL(self.url)
        for secret in (self.url, parsed.path, parsed.query.decode()):
            if len(secret) > 1:
                text = text.replace(secret, "***")
        return text
