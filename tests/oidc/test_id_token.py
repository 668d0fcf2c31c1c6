"""The ID-token verifier against tokens signed with keys generated here: what a real
provider's token looks like is covered end to end by tests/oidc/test_provider.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from infrastream.domain.errors import Unauthenticated
from infrastream.oidc.id_token import IdTokenVerifier, KeySet

ISSUER = "http://127.0.0.1:9999"
CLIENT = "infrastream-portal"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    data.update(kid=kid, use="sig", alg="RS256")
    return data


class Provider:
    """Stands in for the JWKS endpoint only: which keys it publishes, and how often asked."""

    def __init__(self) -> None:
        self.keys = {"k1": _key()}
        self.published = ["k1"]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_jwk(self.keys[k], k) for k in self.published]}

    def token(self, kid: str = "k1", **claims: Any) -> str:
        body = {"iss": ISSUER, "aud": CLIENT, "sub": "u-ada", "nonce": "n-1",
                "iat": int(NOW.timestamp()) - 10, "exp": int(NOW.timestamp()) + 300,
                "preferred_username": "ada", "email": "ada@example.test",
                "groups": ["qa-engineers"]}
        body.update(claims)
        return jwt.encode({k: v for k, v in body.items() if v is not None},
                          self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture()
def provider() -> Provider:
    return Provider()


def _verifier(provider: Provider) -> tuple[IdTokenVerifier, KeySet]:
    keys = KeySet(provider.jwks)
    return IdTokenVerifier(issuer=ISSUER, client_id=CLIENT, keys=keys), keys


def test_a_good_token_names_the_person_and_their_groups(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    person = verifier.verify(provider.token(), nonce="n-1", now=NOW)
    assert (person.subject, person.name, person.email, person.groups) == (
        "u-ada", "ada", "ada@example.test", ("qa-engineers",))
    assert person.expires == NOW + timedelta(seconds=300)


def test_a_tampered_token_is_refused(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    header, body, signature = provider.token().split(".")
    claims = json.loads(jwt.utils.base64url_decode(body))
    claims["groups"] = ["admins"]
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        verifier.verify(f"{header}.{forged}.{signature}", nonce="n-1", now=NOW)


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    impostor = jwt.encode({"iss": ISSUER, "aud": CLIENT, "sub": "x", "nonce": "n-1",
                           "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 60},
                          _key(), algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        verifier.verify(impostor, nonce="n-1", now=NOW)


def test_unsigned_and_hmac_tokens_are_refused(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    unsigned = jwt.encode({"iss": ISSUER, "aud": CLIENT}, None, algorithm="none")
    with pytest.raises(Unauthenticated, match="algorithm 'none' is not accepted"):
        verifier.verify(unsigned, nonce="n-1", now=NOW)
    hmac_token = jwt.encode({"iss": ISSUER, "aud": CLIENT}, "x" * 32, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="algorithm 'HS256' is not accepted"):
        verifier.verify(hmac_token, nonce="n-1", now=NOW)


def test_wrong_audience_is_refused(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    with pytest.raises(Unauthenticated, match="wrong audience"):
        verifier.verify(provider.token(aud="another-app"), nonce="n-1", now=NOW)


def test_several_audiences_need_azp(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    with pytest.raises(Unauthenticated, match="azp"):
        verifier.verify(provider.token(aud=[CLIENT, "other"]), nonce="n-1", now=NOW)
    person = verifier.verify(provider.token(aud=[CLIENT, "other"], azp=CLIENT),
                             nonce="n-1", now=NOW)
    assert person.name == "ada"


def test_wrong_issuer_is_refused(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    with pytest.raises(Unauthenticated, match=r"issued by 'http://evil\.test'"):
        verifier.verify(provider.token(iss="http://evil.test"), nonce="n-1", now=NOW)


def test_an_expired_token_is_refused(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    expired = provider.token(exp=int(NOW.timestamp()) - 120)
    with pytest.raises(Unauthenticated, match="expired at"):
        verifier.verify(expired, nonce="n-1", now=NOW)


def test_wrong_or_missing_nonce_is_refused(provider: Provider) -> None:
    verifier, _ = _verifier(provider)
    with pytest.raises(Unauthenticated, match="wrong nonce"):
        verifier.verify(provider.token(), nonce="n-2", now=NOW)
    with pytest.raises(Unauthenticated, match="wrong nonce"):
        verifier.verify(provider.token(nonce=None), nonce="n-1", now=NOW)


def test_a_rotated_key_is_fetched_once_and_an_unknown_one_refused(provider: Provider) -> None:
    verifier, keys = _verifier(provider)
    verifier.verify(provider.token(), nonce="n-1", now=NOW)
    assert keys.fetches == 1
    provider.keys["k2"] = _key()
    provider.published = ["k1", "k2"]
    assert verifier.verify(provider.token("k2"), nonce="n-1", now=NOW).name == "ada"
    assert keys.fetches == 2
    verifier.verify(provider.token("k2"), nonce="n-1", now=NOW)
    assert keys.fetches == 2
    provider.keys["k3"] = _key()
    with pytest.raises(Unauthenticated, match="kid 'k3'"):
        verifier.verify(provider.token("k3"), nonce="n-1", now=NOW)
    assert keys.fetches == 3
