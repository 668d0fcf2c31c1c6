"""Refused mutations in the audit trail, coalesced so that hammering cannot fill the database.

Every refused mutating request leaves a trace: who (the actor; `anonymous` without a valid
token), what (the action and its object), and why (a reason code and the one-line reason).
Use cases are wrapped with `audited(...)`, so a refusal is recorded whichever face called
(API, the CLI through it, the Portal); the API records the refusals the use cases never see
(no or a bad token, a body it could not parse) through `record` too.

**Coalescing, not rate limiting.** The first refusal of a kind — the same actor, action,
object, code and reason — is written at once, as `<action>.refused` with `count: 1`.
Identical refusals in the `WINDOW` (60 s) after it are only counted in memory; when the
window closes one more entry says how many there were and between which times
(`repeated: true`). An actor has at most `KINDS_PER_ACTOR` kinds open per window; refusals
beyond that fold into one `*` kind per actor. So however fast an attacker sends requests,
the trail grows by at most 2 × (`KINDS_PER_ACTOR` + 1) entries per actor per minute, and
every attempt is still counted. Rate limiting per token would refuse (or drop the evidence
of) the requests beyond the limit and does nothing against requests with no or random
tokens, which all share the actor `anonymous` here. The counts of an open window live in
the memory of the server that saw them: a crash loses at most one window's repeats, never a
first refusal.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar
from weakref import WeakKeyDictionary, WeakSet

from sqlalchemy import Engine

from infrastream.domain.errors import (
    BackendError,
    Conflict,
    Forbidden,
    InfrastreamError,
    Invalid,
    NotFound,
    Unauthenticated,
)

from ..context import Services
from . import trail

WINDOW = timedelta(seconds=60)
KINDS_PER_ACTOR = 20
ANONYMOUS = "anonymous"
log = logging.getLogger("infrastream.audit")

_CODES: tuple[tuple[type[InfrastreamError], str], ...] = (
    (Unauthenticated, "unauthenticated"), (Forbidden, "forbidden"), (NotFound, "not-found"),
    (Conflict, "conflict"), (Invalid, "invalid"))
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def code_of(error: InfrastreamError) -> str:
    """The reason code of a refusal: the error's own `code`, else its kind."""
    given = error.details.get("code")
    if isinstance(given, str):
        return given
    return next((code for kind, code in _CODES if isinstance(error, kind)), "refused")


def _clean(text: str, limit: int) -> str:
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Refusal:
    """One refused mutation: who, what, on which object, and why."""

    actor: str
    action: str
    object_type: str
    object_id: str
    code: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, ...]:
        return (self.actor, self.action, self.object_type, self.object_id, self.code,
                self.reason)

    def cleaned(self) -> Refusal:
        return Refusal(_clean(self.actor, 63) or ANONYMOUS, _clean(self.action, 54),
                       _clean(self.object_type, 32), _clean(self.object_id, 200),
                       _clean(self.code, 63), _clean(self.reason, 1000),
                       {k: _clean(v, 200) if isinstance(v, str) else v
                        for k, v in self.details.items()})

    def folded(self) -> Refusal:
        """The catch-all kind of an actor with too many kinds open."""
        return Refusal(self.actor, "*", "*", "*", "many-refusals",
                       f"more than {KINDS_PER_ACTOR} kinds of refusal in {WINDOW.seconds} s")


@dataclass
class _Window:
    refusal: Refusal
    opened: datetime
    repeats: int = 0
    last: datetime | None = None


class Coalescer:
    """The open windows of one database's refusals (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, ...], _Window] = {}

    def admit(self, refusal: Refusal, now: datetime) -> list[trail.NewEntry]:
        """The entries to write for `refusal` now (and for windows that closed)."""
        with self._lock:
            entries = self._close(now, everything=False)
            window = self._open.get(refusal.key())
            if window is None and sum(1 for w in self._open.values()
                                      if w.refusal.actor == refusal.actor) >= KINDS_PER_ACTOR:
                refusal = refusal.folded()
                window = self._open.get(refusal.key())
            if window is not None:
                window.repeats += 1
                window.last = now
                return entries
            self._open[refusal.key()] = _Window(refusal, now)
            return [*entries, _entry(refusal, now, {"count": 1})]

    def drain(self, now: datetime, *, everything: bool = False) -> list[trail.NewEntry]:
        """The summaries of the windows that closed by `now` (all open ones: `everything`)."""
        with self._lock:
            return self._close(now, everything=everything)

    def _close(self, now: datetime, *, everything: bool) -> list[trail.NewEntry]:
        entries = []
        for key, window in list(self._open.items()):
            if everything or now - window.opened >= WINDOW:
                del self._open[key]
                if window.repeats and window.last is not None:
                    entries.append(_entry(window.refusal, window.last, {
                        "count": window.repeats, "repeated": True,
                        "from": window.opened.isoformat(), "to": window.last.isoformat()}))
        return entries


def _entry(refusal: Refusal, at: datetime, extra: dict[str, Any]) -> trail.NewEntry:
    return trail.NewEntry(at=at, actor=refusal.actor, action=f"{refusal.action}.refused",
                          object_type=refusal.object_type, object_id=refusal.object_id,
                          after={"code": refusal.code, "reason": refusal.reason,
                                 **refusal.details, **extra})


_coalescers: WeakKeyDictionary[Engine, Coalescer] = WeakKeyDictionary()
_coalescers_lock = threading.Lock()


def coalescer(services: Services) -> Coalescer:
    with _coalescers_lock:
        found = _coalescers.get(services.db)
        if found is None:
            found = _coalescers[services.db] = Coalescer()
        return found


def _write(services: Services, entries: list[trail.NewEntry]) -> None:
    if not entries:
        return
    try:
        with services.transaction() as conn:
            trail.record_many(conn, entries)
    except Exception:  # the refusal itself must still reach the caller
        log.exception("could not audit %d refusal(s)", len(entries))


def was_recorded(error: InfrastreamError) -> bool:
    """Whether a use case already audited this refusal."""
    return error in _recorded


def record(services: Services, refusal: Refusal) -> None:
    """Audit one refused mutation (coalesced with identical ones, see the module doc)."""
    _write(services, coalescer(services).admit(refusal.cleaned(), services.now()))


def flush(services: Services, *, everything: bool = False) -> None:
    """Write the summaries of closed windows (all windows: `everything`, at shutdown)."""
    _write(services, coalescer(services).drain(services.now(), everything=everything))


_recorded: WeakSet[InfrastreamError] = WeakSet()
P = ParamSpec("P")
R = TypeVar("R")
Arguments = dict[str, Any]


def audited(action: str, object_type: str, object_of: Callable[[Arguments], object],
            details: Callable[[Arguments], dict[str, Any]] | None = None,
            ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Wrap a mutating use case `(services, principal, …)`: a deliberate error it raises is
    audited as a refusal of `action` on `object_of(arguments)` (failures of a backend are
    not refusals), then re-raised unchanged."""

    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except InfrastreamError as error:
                if not isinstance(error, BackendError) and error not in _recorded:
                    bound = signature.bind(*args, **kwargs)
                    bound.apply_defaults()
                    _refused(action, object_type, object_of, details, bound.arguments, error)
                raise

        return call

    return wrap


def _refused(action: str, object_type: str, object_of: Callable[[Arguments], object],
             details: Callable[[Arguments], dict[str, Any]] | None, arguments: Arguments,
             error: InfrastreamError) -> None:
    _recorded.add(error)  # one entry per refusal, even when audited use cases nest
    services: Services = arguments["services"]
    principal = arguments["principal"]
    try:
        object_id = str(object_of(arguments))
        extra = details(arguments) if details else {}
    except Exception:  # an argument too broken to name the object still gets audited
        object_id, extra = "?", {}
    record(services, Refusal(principal.name, action, object_type, object_id, code_of(error),
                             error.reason, {k: v for k, v in extra.items() if v is not None}))
