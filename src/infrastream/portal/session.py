"""The portal's session cookie and CSRF tokens.

The cookie holds no secret that works elsewhere: a random nonce, and after sign-in the user
name and the sha256 of their API token (the value the tokens table stores), signed with
HMAC-SHA256 under the key in `<data dir>/portal-session.key`. It is HttpOnly, SameSite=Lax
and, behind HTTPS, Secure. Each request re-checks the hash against the tokens table
(`service.sessions.session_principal`), so a revoked token ends the session.

Every visitor gets a nonce (anonymous sessions too, so the sign-in form is protected), and
every form carries `csrf = HMAC(key, nonce)`; a POST whose token does not match is refused.
Signing in or out rotates the nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.errors import Unauthenticated
from infrastream.domain.roles import Principal
from infrastream.service import sessions
from infrastream.service.context import Services

COOKIE = "infrastream_session"
MAX_AGE = 12 * 3600
"""Seconds a sign-in lasts, whatever the browser does with the cookie."""


@dataclass(frozen=True)
class Session:
    nonce: str
    user: str | None = None
    token_hash: str | None = None
    issued: int = 0
    flash: tuple[str, str] | None = None
    """A message for the next page: (kind, text), kind `ok` or `error`."""
    pending: dict[str, str] | None = None
    """A sign-in with the identity provider in flight: its state, nonce, PKCE verifier and
    where to go after (kept until the provider sends the browser back)."""

    def to_json(self) -> dict[str, Any]:
        return {"n": self.nonce, "u": self.user, "h": self.token_hash, "t": self.issued,
                "f": list(self.flash) if self.flash else None, "p": self.pending}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        flash = data.get("f")
        return cls(nonce=str(data["n"]), user=data.get("u"), token_hash=data.get("h"),
                   issued=int(data.get("t") or 0),
                   flash=(str(flash[0]), str(flash[1])) if flash else None,
                   pending=_pending(data.get("p")))


def _pending(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items()}


def anonymous() -> Session:
    return Session(nonce=secrets.token_urlsafe(18), issued=int(time.time()))


@dataclass
class Viewer:
    """Who is looking at a page, and what the response must remember about them."""

    session: Session
    key: bytes
    principal: Principal | None = None
    ended: str = ""
    """Why a session that existed was not accepted (shown on the sign-in page)."""
    dirty: bool = False
    flash: tuple[str, str] | None = field(default=None)

    @property
    def csrf(self) -> str:
        return hmac.new(self.key, b"csrf:" + self.session.nonce.encode(),
                        hashlib.sha256).hexdigest()

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token or "")

    def sign_in(self, principal: Principal, token_hash: str) -> None:
        self.session = Session(nonce=secrets.token_urlsafe(18), user=principal.name,
                               token_hash=token_hash, issued=int(time.time()))
        self.principal = principal
        self.dirty = True

    def start_sign_in(self, pending: dict[str, str]) -> None:
        self.session = replace(self.session, pending=pending)
        self.dirty = True

    def take_pending(self) -> dict[str, str] | None:
        pending = self.session.pending
        if pending is not None:
            self.session = replace(self.session, pending=None)
            self.dirty = True
        return pending

    def sign_out(self) -> None:
        self.session = anonymous()
        self.principal = None
        self.dirty = True

    def remember(self, kind: str, text: str) -> None:
        """Show `text` on the next page this viewer sees."""
        self.session = replace(self.session, flash=(kind, text[:500]))
        self.dirty = True

    def take_flash(self) -> tuple[str, str] | None:
        if self.session.flash is not None:
            self.flash = self.session.flash
            self.session = replace(self.session, flash=None)
            self.dirty = True
        return self.flash

    def store(self, request: Request, response: Response) -> Response:
        if self.dirty:
            response.set_cookie(COOKIE, _encode(self.key, self.session.to_json()),
                                httponly=True, samesite="lax", path="/",
                                secure=request.url.scheme == "https")
        return response


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(key: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def _decode(key: bytes, value: str) -> dict[str, Any] | None:
    body, _, signature = value.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected, signature):
        return None
    try:
        data = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and "n" in data else None


def viewer(request: Request, services: Services, key: bytes) -> Viewer:
    """The viewer of `request`: their principal when signed in, always a CSRF nonce."""
    raw = request.cookies.get(COOKIE)
    data = _decode(key, raw) if raw else None
    if data is None:
        return Viewer(anonymous(), key, dirty=True)
    session = Session.from_json(data)
    current = Viewer(session, key)
    if session.user and session.token_hash:
        if time.time() - session.issued > MAX_AGE:
            current.sign_out()
            current.ended = "your session expired; sign in again"
            return current
        try:
            current.principal = sessions.session_principal(services, session.user,
                                                           session.token_hash)
        except Unauthenticated as exc:
            current.sign_out()
            current.ended = exc.reason
    return current
