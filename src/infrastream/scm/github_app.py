"""Acting as a GitHub App: the app's JWT, then short-lived installation access tokens.

Check runs can only be written by a GitHub App. The app proves itself with a JWT signed
RS256 by its private key (`iss` = app id, valid at most ten minutes; `iat` is set a minute
back against clock drift) and trades it for an installation access token
(`POST /app/installations/{id}/access_tokens`), which lasts an hour. Tokens are cached per
installation and renewed five minutes before they expire. When the connection does not name
its installation, the repository's installation is looked up once
(`GET /repos/{owner}/{repo}/installation`) and remembered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

import jwt

from infrastream.domain.errors import PermanentError

from .rest import RestClient

JWT_LIFETIME = 9 * 60
RENEW_BEFORE = 5 * 60


class GitHubApp:
    def __init__(self, rest: RestClient, *, app_id: int, private_key: str,
                 installation_id: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._rest = rest
        self.app_id = app_id
        self._private_key = private_key
        self._installation_id = installation_id
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[int, tuple[str, float]] = {}
        self._installations: dict[str, int] = {}

    def app_jwt(self) -> str:
        now = int(self._clock())
        try:
            return jwt.encode({"iat": now - 60, "exp": now + JWT_LIFETIME, "iss": str(self.app_id)},
                              self._private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            raise PermanentError("the GitHub App's private key is not a PEM RSA private key "
                                 f"(app {self.app_id})") from None

    def token_for(self, repository: str) -> str:
        """An installation access token that may act on `repository`."""
        installation = self._installation_of(repository)
        with self._lock:
            cached = self._tokens.get(installation)
            if cached and cached[1] - RENEW_BEFORE > self._clock():
                return cached[0]
        body = self._rest.json("POST", f"/app/installations/{installation}/access_tokens",
                               headers=self._app_headers())
        token = str(body["token"])
        expires = _timestamp(body.get("expires_at"), default=self._clock() + 3600)
        with self._lock:
            self._tokens[installation] = (token, expires)
        return token

    def tokens(self) -> tuple[str, ...]:
        """Every secret this app holds right now (for scrubbing error texts)."""
        with self._lock:
            return (self._private_key, *(t for t, _ in self._tokens.values()))

    def _installation_of(self, repository: str) -> int:
        if self._installation_id is not None:
            return self._installation_id
        with self._lock:
            known = self._installations.get(repository)
        if known is not None:
            return known
        body = self._rest.json("GET", f"/repos/{repository}/installation",
                               headers=self._app_headers())
        installation = int(body["id"])
        with self._lock:
            self._installations[repository] = installation
        return installation

    def _app_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.app_jwt()}"}


def _timestamp(value: object, *, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default
