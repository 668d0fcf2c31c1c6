"""Request dependencies: the service context, the authenticated principal, clean parameters.

Those that do no I/O are `async` so FastAPI runs them on the event loop: a plain `def`
dependency costs every request a round trip through the thread pool. `principal` reads the
database, so it stays a `def` (run in the thread pool, off the event loop).
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infrastream.domain.errors import Invalid
from infrastream.domain.inputs import unstorable
from infrastream.domain.roles import Principal
from infrastream.service.context import Services
from infrastream.service.identity import authenticate

bearer = HTTPBearer(auto_error=False, description="An Infrastream API token")


async def services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    found = authenticate(request.app.state.services, token)
    request.state.principal = found  # who a refusal after this point is recorded under
    return found


async def clean_parameters(request: Request) -> None:
    """Refuse path and query parameters the database could not store (a NUL byte): 422
    naming the parameter, before any lookup."""
    for where, items in (("path", request.path_params.items()),
                         ("query", request.query_params.multi_items())):
        for key, value in items:
            problem = unstorable(str(value)) or unstorable(key)
            if problem:
                raise Invalid(f"{where} parameter `{key.replace(chr(0), '?')}` {problem}",
                              field=f"{where}.{key.replace(chr(0), '?')}")


ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(principal)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
