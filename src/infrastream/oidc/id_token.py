"""Verifying an ID token's signature against the provider's JWKS, with key rotation.

PyJWT (already a dependency, well kept, small, used by the rest of the ecosystem for JWS)
does the cryptography: `PyJWKSet` parses the provider's keys and `jwt.decode` checks the
signature with the one algorithm the key and header agree on. Only asymmetric algorithms are
accepted (never `none`, never HMAC with a public key as secret). A token signed by a key we do
not know makes us fetch the JWKS again, once, since providers rotate keys by publishing the
new one before using it; a kid still unknown after that is refused. The claims are then
checked by `domain.sign_in.check_claims` (issuer, audience, expiry, nonce), against the
clock passed in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from infrastream.domain.errors import Unauthenticated
from infrastream.domain.sign_in import Person, check_claims

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA"})

JwksFetch = Callable[[], dict[str, Any]]


class KeySet:
    """The provider's signing keys, fetched on first use and again when a token names a kid
    we do not have (at most once per such token)."""

    def __init__(self, fetch: JwksFetch) -> None:
        self._fetch = fetch
        self._keys: dict[str, PyJWK] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def _load(self) -> None:
        data = self._fetch()
        self.fetches += 1
        keys: dict[str, PyJWK] = {}
        for key in PyJWKSet.from_dict(data).keys:
            if key.public_key_use in (None, "sig"):
                keys[str(key.key_id or "")] = key
        self._keys = keys

    def key(self, kid: str | None) -> PyJWK:
        with self._lock:
            if not self._keys:
                self._load()
            wanted = kid or ""
            if wanted not in self._keys and (kid is not None or len(self._keys) != 1):
                self._load()
            if wanted in self._keys:
                return self._keys[wanted]
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
        raise Unauthenticated(f"sign-in refused: the ID token is signed with a key the "
                              f"identity provider does not publish (kid {kid!r})")


class IdTokenVerifier:
    def __init__(self, *, issuer: str, client_id: str, keys: KeySet,
                 groups_claim: str = "groups",
                 name_claim: str = "preferred_username", nonce_required: bool = True) -> None:
        self.issuer = issuer
        self.nonce_required = nonce_required
        self.client_id = client_id
        self.keys = keys
        self.groups_claim = groups_claim
        self.name_claim = name_claim

    def verify(self, id_token: str, *, nonce: str | None, now: datetime) -> Person:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.DecodeError:
            raise Unauthenticated("sign-in refused: the ID token is not a JWS") from None
        alg = header.get("alg")
        if alg not in ASYMMETRIC:
            raise Unauthenticated(f"sign-in refused: the ID token's algorithm {alg!r} "
                                  f"is not accepted")
        key = self.keys.key(header.get("kid"))
        try:
            claims = jwt.decode(
                id_token, key, algorithms=[str(alg)],
                # The claims are checked against our clock in domain.sign_in.
                options={"verify_aud": False, "verify_iss": False, "verify_exp": False,
                         "verify_iat": False, "verify_nbf": False})
        except jwt.InvalidSignatureError:
            raise Unauthenticated("sign-in refused: the ID token's signature does not "
                                  "verify (tampered with, or not from this provider)") from None
        except jwt.PyJWTError as bad:
            raise Unauthenticated(f"sign-in refused: the ID token is malformed ({bad})") from None
        return check_claims(claims, issuer=self.issuer, client_id=self.client_id,
                            nonce=nonce, now=now, groups_claim=self.groups_claim,
                            name_claim=self.name_claim, nonce_required=self.nonce_required)
