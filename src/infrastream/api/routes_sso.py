"""Sign-in for people on the command line (`infrastream login --sso`).

The CLI learns from the server how to sign in (`GET /api/v1/sso/config`: the issuer, the
CLI's public client id, the scopes), runs the device authorization grant with the provider
itself, and brings the ID token here (`POST /api/v1/sso/token`, named after RFC 8693's token
exchange). The token is checked exactly like the portal's (signature against the provider's
JWKS, issuer, audience = the CLI's client id, expiry, and the nonce the CLI sent when the
token carries one: the device grant's tokens need not), then
`service.single_sign_on` signs the person in as the portal does (user made on first sign-in,
roles from their groups, changes audited) and issues a short-lived API token; each ID token
is exchanged once (a copied one is refused). Both answer a
404 problem when the server has no CLI sign-in configured; every refusal is a 401 problem
saying which check failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from infrastream.domain.errors import NotFound
from infrastream.oidc.id_token import IdTokenVerifier
from infrastream.service.readmodel import ReadModel
from infrastream.service.single_sign_on import SsoPolicy, sign_in_person

from .deps import ServicesDep
from .problems import declared
from .refusals_api import mutation
from .schemas import Body

router = APIRouter(prefix="/api/v1/sso", tags=["identity"])

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True)
class CliSignIn:
    """What `serve --oidc-cli-client-id` configures (kept in `app.state.cli_sign_in`)."""

    issuer: str
    client_id: str
    scopes: tuple[str, ...]
    verifier: IdTokenVerifier
    policy: SsoPolicy


class SsoConfig(ReadModel):
    issuer: str
    """The OpenID provider (its discovery document names the device endpoint)."""
    client_id: str
    """The CLI's public client at the provider (no secret)."""
    scopes: list[str]
    grant_type: str
    """How the CLI gets its ID token: the device authorization grant (RFC 8628)."""
    token_endpoint: str
    """Where to exchange the ID token for an Infrastream API token (this server)."""


class TokenExchange(Body):
    subjectToken: Annotated[str, Field(min_length=1, max_length=16_384)] = Field(
        description="The ID token the provider issued to the CLI's client")
    subjectTokenType: Literal["urn:ietf:params:oauth:token-type:id_token"] = Field(
        "urn:ietf:params:oauth:token-type:id_token", description="Only ID tokens are exchanged")
    nonce: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        None, description="The nonce the CLI sent in its device authorization request: an "
        "ID token that carries a nonce must carry this one")


class IssuedToken(ReadModel):
    access_token: str
    """An Infrastream API token, shown once (only its hash is stored)."""
    issued_token_type: str
    token_type: str
    expires_at: str
    expires_in: int
    """Seconds from now until the token stops working."""
    user: str
    roles: list[str]


def _configured(request: Request) -> CliSignIn:
    found: CliSignIn | None = getattr(request.app.state, "cli_sign_in", None)
    if found is None:
        raise NotFound("sign-in with an identity provider is not configured on this server "
                       "(serve --oidc-issuer … --oidc-cli-client-id …); log in with an API "
                       "token")
    return found


@router.get("/config", responses=declared(404))
def sso_config(request: Request) -> SsoConfig:
    """How `infrastream login --sso` signs in here; no token needed."""
    found = _configured(request)
    return SsoConfig(issuer=found.issuer, client_id=found.client_id, scopes=list(found.scopes),
                     grant_type=DEVICE_CODE_GRANT, token_endpoint="/api/v1/sso/token")


@router.post("/token", responses=declared(401, 404, 422, 502),
             openapi_extra=mutation("token.issue", "user", signed=True))
def exchange(body: TokenExchange, request: Request, services: ServicesDep) -> IssuedToken:
    """Exchange an ID token from the CLI's sign-in for a short-lived Infrastream API token
    for that person, with the roles their groups give them now."""
    found = _configured(request)
    person = found.verifier.verify(body.subjectToken, nonce=body.nonce, now=services.now())
    signed = sign_in_person(services, person, found.policy, face="cli",
                            id_token=body.subjectToken)
    ends = datetime.fromisoformat(signed.expires_at)
    return IssuedToken(access_token=signed.token, issued_token_type=ACCESS_TOKEN_TYPE,
                       token_type="Bearer", expires_at=signed.expires_at,
                       expires_in=max(0, int((ends - services.now()).total_seconds())),
                       user=signed.principal.name, roles=sorted(signed.principal.roles))
