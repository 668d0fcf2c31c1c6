"""The OAuth 2.0 Device Authorization Grant (RFC 8628) as a public client, for
`infrastream login --sso`: the person approves in a browser anywhere while the CLI polls.

Only httpx (no cryptography: the CLI must start fast, and it does not verify the ID token —
the Infrastream server does, when it exchanges it for an API token). The provider is found
through its discovery document; the device authorization request carries a fresh `nonce`
the server checks in the ID token. Polling follows §3.5: wait `interval` seconds (5 when the
provider does not say), add 5 seconds at every `slow_down`, keep going on
`authorization_pending`, and stop with one line at `access_denied`, `expired_token` or any
other error. The clock and the sleep are passed in, so the loop can be driven in tests.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from infrastream.domain.errors import PermanentError, Unauthenticated

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5
SLOW_DOWN_STEP = 5
TIMEOUT = 10.0


@dataclass(frozen=True)
class Endpoints:
    device_authorization: str
    token: str


@dataclass(frozen=True)
class DeviceStart:
    """What the provider answered the device authorization request with."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: int
    expires_in: int
    nonce: str


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(body: dict[str, Any], status: int) -> str:
    error = body.get("error") or f"HTTP {status}"
    detail = body.get("error_description")
    return f"{error}: {detail}" if detail else str(error)


class DeviceGrant:
    def __init__(self, issuer: str, client_id: str, scopes: tuple[str, ...],
                 http: httpx.Client | None = None) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.scopes = scopes
        self._http = http or httpx.Client(timeout=TIMEOUT)

    def _post(self, url: str, form: dict[str, str]) -> httpx.Response:
        try:
            return self._http.post(url, data={**form, "client_id": self.client_id},
                                   headers={"Accept": "application/json"})
        except httpx.HTTPError as failed:
            raise PermanentError(f"the identity provider at {self.issuer} cannot be reached: "
                                 f"{failed}") from None

    def endpoints(self) -> Endpoints:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            answer = self._http.get(url)
        except httpx.HTTPError as failed:
            raise PermanentError(f"the identity provider at {self.issuer} cannot be reached: "
                                 f"{failed}") from None
        config = _json(answer)
        if answer.status_code != 200 or not config:
            raise PermanentError(f"the identity provider answered {answer.status_code} for "
                                 f"{url}")
        if config.get("issuer") != self.issuer:
            raise PermanentError(f"the identity provider says its issuer is "
                                 f"{config.get('issuer')!r}, not {self.issuer!r}")
        device = config.get("device_authorization_endpoint")
        if not isinstance(device, str) or not device:
            raise PermanentError(f"the identity provider {self.issuer} does not offer the "
                                 "device authorization grant (no "
                                 "device_authorization_endpoint in its discovery document)")
        return Endpoints(device, str(config["token_endpoint"]))

    def start(self, endpoints: Endpoints) -> DeviceStart:
        nonce = secrets.token_urlsafe(24)
        answer = self._post(endpoints.device_authorization,
                            {"scope": " ".join(self.scopes), "nonce": nonce})
        body = _json(answer)
        if answer.status_code != 200 or "device_code" not in body:
            raise Unauthenticated(f"the identity provider refused device sign-in: "
                                  f"{_refusal(body, answer.status_code)}")
        return DeviceStart(
            device_code=str(body["device_code"]), user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            verification_uri_complete=(str(body["verification_uri_complete"])
                                       if body.get("verification_uri_complete") else None),
            interval=max(1, int(body.get("interval") or DEFAULT_INTERVAL)),
            expires_in=int(body.get("expires_in") or 600), nonce=nonce)

    def wait(self, endpoints: Endpoints, started: DeviceStart, *,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> str:
        """Poll the token endpoint until the person approved; the ID token."""
        interval = started.interval
        deadline = clock() + started.expires_in
        while True:
            sleep(interval)
            if clock() >= deadline:
                raise Unauthenticated("sign-in expired before it was approved "
                                      f"(after {started.expires_in}s); run it again")
            answer = self._post(endpoints.token, {"grant_type": DEVICE_CODE_GRANT,
                                                  "device_code": started.device_code})
            body = _json(answer)
            if answer.status_code == 200:
                id_token = body.get("id_token")
                if not isinstance(id_token, str) or not id_token:
                    raise Unauthenticated("the identity provider sent no ID token (is the "
                                          "`openid` scope configured?)")
                return id_token
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if error == "access_denied":
                raise Unauthenticated("sign-in was denied at the identity provider")
            if error == "expired_token":
                raise Unauthenticated("sign-in expired before it was approved; run it again")
            raise Unauthenticated(f"the identity provider refused sign-in: "
                                  f"{_refusal(body, answer.status_code)}")
