"""Every error Infrastream raises on purpose, sorted by what the caller should do next.

    InfrastreamError
    ├── NotFound          the named thing does not exist          (API: 404)
    ├── Forbidden         the caller may not do this               (API: 403)
    ├── Unauthenticated   no or an unknown token                   (API: 401)
    ├── Conflict          not allowed in the current state         (API: 409)
    ├── Invalid           the input is wrong; `diagnostics` say how (API: 422)
    │   └── TooLarge      the input is bigger than allowed          (API: 413)
    └── BackendError      a target, gate or SCM host failed
        ├── TransientError  retry with backoff (network, timeout, conflict)
        └── PermanentError  fail the step and keep the reason (bad credentials, rejected object)

The domain never sees HTTP status codes; the API maps this tree to RFC 9457 problems.
"""

from __future__ import annotations

from typing import Any


class InfrastreamError(Exception):
    """Base of every deliberate error. `reason` is one line a person can act on."""

    title = "Error"

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class NotFound(InfrastreamError):
    title = "Not found"


class Forbidden(InfrastreamError):
    title = "Forbidden"


class Unauthenticated(InfrastreamError):
    title = "Unauthenticated"


class Conflict(InfrastreamError):
    title = "Conflict"


class Invalid(InfrastreamError):
    title = "Invalid input"


class TooLarge(Invalid):
    title = "Payload too large"


class BackendError(InfrastreamError):
    title = "Backend failure"


class TransientError(BackendError):
    """Worth retrying: the same call may succeed later."""

    def __init__(self, reason: str, *, delay: float | None = None, **details: Any) -> None:
        super().__init__(reason, **details)
        self.delay = delay


class PermanentError(BackendError):
    """Not worth retrying: the step fails with this reason."""
