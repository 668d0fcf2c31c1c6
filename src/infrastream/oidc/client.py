"""The Infrastream side of the OpenID provider's endpoints: discovery
(`/.well-known/openid-configuration`), the authorization request (code flow with PKCE S256,
`state` and `nonce`) and the code exchange, for the portal; and verifiers for the ID tokens
`infrastream login --sso` brings (issued to the CLI's public client by the device
authorization grant, which the CLI runs itself: `oidc.device_grant`). The client secret is
sent in the token request body only, never logged; the answers' errors are turned into one
line a person can act on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from infrastream.domain.errors import PermanentError, Unauthenticated
from infrastream.domain.sign_in import Person, code_challenge

from .id_token import IdTokenVerifier, KeySet

TIMEOUT = 10.0


@dataclass(frozen=True)
class ClientSettings:
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("openid", "profile", "email", "groups")
    groups_claim: str = "groups"


@dataclass(frozen=True)
class Started:
    """A sign-in in flight: what the browser's session keeps until the callback."""

    url: str
    state: str
    nonce: str
    verifier: str


class Provider:
    def __init__(self, settings: ClientSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=TIMEOUT)
        self._config: dict[str, Any] | None = None
        self.keys = KeySet(self._jwks)
        self.verifier = self.verifier_for(settings.client_id)

    def _get(self, url: str) -> dict[str, Any]:
        try:
            answer = self._http.get(url)
        except httpx.HTTPError as failed:
            raise PermanentError(f"the identity provider at {url} cannot be reached: "
                                 f"{failed}") from None
        if answer.status_code != 200:
            raise PermanentError(f"the identity provider answered {answer.status_code} "
                                 f"for {url}")
        found: dict[str, Any] = answer.json()
        return found

    @property
    def config(self) -> dict[str, Any]:
        if self._config is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            config = self._get(url)
            if config.get("issuer") != self.settings.issuer:
                raise PermanentError(f"the identity provider says its issuer is "
                                     f"{config.get('issuer')!r}, not "
                                     f"{self.settings.issuer!r}")
            self._config = config
        return self._config

    def _jwks(self) -> dict[str, Any]:
        return self._get(str(self.config["jwks_uri"]))

    def verifier_for(self, client_id: str, *, nonce_required: bool = True) -> IdTokenVerifier:
        """A verifier of ID tokens issued to `client_id` (the portal's, or the CLI's public
        client, whose device-grant tokens may carry no nonce), sharing this provider's
        discovery and signing keys."""
        return IdTokenVerifier(issuer=self.settings.issuer, client_id=client_id,
                               keys=self.keys, groups_claim=self.settings.groups_claim,
                               nonce_required=nonce_required)

    def start(self, redirect_uri: str) -> Started:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        query = urlencode({
            "response_type": "code", "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri, "scope": " ".join(self.settings.scopes),
            "state": state, "nonce": nonce, "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256"})
        return Started(f"{self.config['authorization_endpoint']}?{query}", state, nonce,
                       verifier)

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret}
        try:
            answer = self._http.post(str(self.config["token_endpoint"]), data=form)
        except httpx.HTTPError as failed:
            raise PermanentError(f"the identity provider cannot be reached: {failed}") from None
        body: dict[str, Any] = answer.json() if answer.content else {}
        if answer.status_code != 200:
            detail = body.get("error_description")
            raise Unauthenticated(f"sign-in refused by the identity provider: "
                                  f"{body.get('error', answer.status_code)}"
                                  f"{': ' + str(detail) if detail else ''}")
        return body

    def finish(self, started_nonce: str, verifier: str, code: str, redirect_uri: str,
               now: datetime) -> Person:
        body = self._token({"grant_type": "authorization_code", "code": code,
                            "redirect_uri": redirect_uri, "code_verifier": verifier})
        if "id_token" not in body:
            raise Unauthenticated("sign-in refused: the identity provider sent no ID token "
                                  "(is the `openid` scope configured?)")
        return self.verifier.verify(str(body["id_token"]), nonce=started_nonce, now=now)
