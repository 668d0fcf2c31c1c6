"""The refusals the use cases never see, audited like theirs (`service.auditing.refusals`).

A mutating request refused before the service layer runs — no or a bad token (401), a
parameter or body that does not parse (422) — still leaves its audit entry. Each mutating
operation names its audit action and object (`mutation`, also shown in the OpenAPI as
`x-audit`), so the entry says what was attempted; the actor is the caller when the token was
good, else `anonymous`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from infrastream.domain.errors import BackendError, InfrastreamError
from infrastream.service.auditing import refusals
from infrastream.service.context import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def mutation(action: str, object_type: str, object_id: str = "*", *,
             signed: bool = False) -> dict[str, Any]:
    """The OpenAPI extension of a mutating operation: the audit action of its refusals and
    its object (`{param}` placeholders name path parameters); `signed`: authenticated by a
    signature (a Git host's webhook, the identity provider's ID token), not an API token."""
    found: dict[str, Any] = {"action": action, "objectType": object_type,
                             "objectId": object_id}
    if signed:
        found["signed"] = True
    return {"x-audit": found}


def refused(request: Request, code: str, reason: str,
            error: InfrastreamError | None = None) -> None:
    """Audit the refusal of a mutating request, unless a use case already did."""
    if request.method in SAFE_METHODS or isinstance(error, BackendError):
        return
    if error is not None and refusals.was_recorded(error):
        return
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    audit = extra.get("x-audit")
    if not isinstance(audit, dict):
        return  # not one of our operations (an unknown path is no mutation)
    params = {k: str(v) for k, v in request.path_params.items()}
    try:
        object_id = str(audit["objectId"]).format(**params)
    except (KeyError, IndexError, ValueError):
        object_id = "*"
    principal = getattr(request.state, "principal", None)
    services: Services = request.app.state.services
    refusals.record(services, refusals.Refusal(
        principal.name if principal is not None else refusals.ANONYMOUS, audit["action"],
        audit["objectType"], object_id, code, reason,
        {"face": "api", "method": request.method, "path": request.url.path}))
