"""Request dependencies: the service context and the authenticated principal."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infrastream.domain.roles import Principal
from infrastream.service.context import Services
from infrastream.service.identity import authenticate

bearer = HTTPBearer(auto_error=False, description="An Infrastream API token")


def services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    return authenticate(request.app.state.services, token)


ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[Principal, Depends(principal)]
