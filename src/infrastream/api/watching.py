"""Reads that wait for a change: a client that polls a release asks once and is answered when
it moves.

A release is followed by polling its status (the CLI's `release status --wait`, a CI job
waiting for a stage, the portal): asked every few milliseconds, that costs the server a full
status read each time and still reacts no faster than the interval. Instead a GET that sends
the entity tag it already has (`If-None-Match: "…"`) and `Prefer: wait=N` (RFC 7240) is held
until the answer differs from that tag, then answered at once (200, the new body and tag), or
after N seconds with 304 Not Modified; without `Prefer: wait` a matching tag gets an immediate
304. The same idea as Consul's blocking queries or a Kubernetes watch, on plain HTTP caching
headers, so any HTTP client can use it and a proxy can tell what it is.

A held request re-reads the status when this process records a change of that release
(`Services.listeners`: the engine announces the releases it moved, use cases the release
they changed; a change not tied to one release wakes every held read) and at least every
`RECHECK` seconds, which covers what the listeners cannot see: a change made by another
server that could not tell this one, and what moves with the clock alone (a freeze window
opening). It waits on the event loop (no worker thread is held), and authenticates once,
when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response

from infrastream.service.context import Services

MAX_WAIT = 60.0
"""The longest a request is held (a larger `wait` is cut to this; `Preference-Applied` says)."""
RECHECK = 0.5
"""While held, the status is read again at least this often (seconds)."""

_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)


def entity_tag(body: bytes) -> str:
    """A strong entity tag of a representation: the same bytes, the same tag."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def matches(tag: str, if_none_match: str | None) -> bool:
    """Whether `If-None-Match` names this tag (weak comparison, RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    wanted = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return "*" in wanted or tag in wanted


def preferred_wait(prefer: str | None) -> float | None:
    """The seconds of `Prefer: wait=N`, cut to MAX_WAIT; None when not asked."""
    found = _WAIT.search(prefer or "")
    return None if found is None else min(float(found.group(1)), MAX_WAIT)


class Changes:
    """Tells held requests that this process recorded a change: `Services.listeners` call it
    from any thread with the release that changed (None: anything may have); it wakes, on
    the event loop they wait on, the waiters of that release (all of them for None). A
    generation per release (and one for "anything") counts the changes, so a change that came
    while a waiter was reading is not missed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: dict[str, asyncio.Event] = {}
        self._generations: dict[str, int] = {}
        self._anything = 0

    def __call__(self, release: str | None = None) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._changed, release)

    def _changed(self, release: str | None) -> None:
        if release is None:
            self._anything += 1
            woken, self._events = self._events, {}
        else:
            self._generations[release] = self._generations.get(release, 0) + 1
            found = self._events.pop(release, None)
            woken = {} if found is None else {release: found}
        for event in woken.values():
            event.set()

    def generation(self, release: str) -> tuple[int, int]:
        return self._anything, self._generations.get(release, 0)

    async def wait(self, release: str, since: tuple[int, int], timeout: float) -> None:
        """Until a change of `release` after generation `since` (at once if one came), or
        `timeout` seconds."""
        if self.generation(release) != since:
            return
        event = self._events.get(release)
        if event is None:
            event = self._events[release] = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


def changes_of(services: Services, state: Any) -> Changes:
    """The app's `Changes` (made and subscribed to the services on first use, on the event
    loop that serves the app)."""
    found: Changes | None = getattr(state, "changes", None)
    if found is None:
        found = Changes(asyncio.get_running_loop())
        state.changes = found
        services.listeners.append(found)
    return found


async def answer(request: Request, services: Services, release: str,
                 read: Callable[[], Awaitable[bytes]]) -> Response:
    """Answer a GET of `read`'s JSON (the status of `release`, `SET/NAME`), honouring
    `If-None-Match` and `Prefer: wait`."""
    if_none_match = request.headers.get("if-none-match")
    wait = preferred_wait(request.headers.get("prefer"))
    changes = changes_of(services, request.app.state) if wait and if_none_match else None
    seen = changes.generation(release) if changes is not None else (0, 0)
    body = await read()
    tag = entity_tag(body)
    headers = {"ETag": tag}
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait:g}"
    if changes is not None and wait and matches(tag, if_none_match):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while matches(tag, if_none_match) and (left := deadline - loop.time()) > 0:
            await changes.wait(release, seen, min(RECHECK, left))
            seen = changes.generation(release)
            body = await read()
            tag = entity_tag(body)
        headers["ETag"] = tag
    if matches(tag, if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {
    "description": "Not Modified: the request named the current entity tag in "
                   "`If-None-Match` (and, with `Prefer: wait=N`, nothing changed in N "
                   "seconds); no body"}}
