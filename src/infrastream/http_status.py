"""The HTTP status of each deliberate error, for the two web faces (API and Portal).

The domain never sees HTTP: its error tree (`domain.errors`) says what the caller should do;
this table is the one place that says which status code that is, so the API's problem
responses and the Portal's error pages can never disagree.
"""

from __future__ import annotations

from infrastream.domain.errors import (
    BackendError,
    Conflict,
    Forbidden,
    InfrastreamError,
    Invalid,
    NotFound,
    TooLarge,
    Unauthenticated,
)

STATUS: dict[type[InfrastreamError], int] = {
    TooLarge: 413, NotFound: 404, Forbidden: 403, Unauthenticated: 401, Conflict: 409,
    Invalid: 422, BackendError: 502,
}


def status_of(error: InfrastreamError) -> int:
    """The status code of `error`: its nearest kind in the table, else 500."""
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), 500)
