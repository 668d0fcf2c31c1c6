"""Two servers, one truth about keys: every server of one database signs audit checkpoints
with the same key, so `audit verify` passes whichever server asks; a server started with
another key refuses to start (and would never sign), saying how to share the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infrastream.domain.errors import PermanentError
from infrastream.domain.roles import Principal
from infrastream.service import identity
from infrastream.service.auditing import signing
from infrastream.service.auditing.verify import verify_all
from infrastream.service.context import Services, open_services

ADMIN = Principal("admin", frozenset({"admin"}))


def _pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def _two_servers(tmp_path: Path, url: str) -> tuple[Services, Services]:
    return open_services(tmp_path / "a", url), open_services(tmp_path / "b", url)


def test_two_servers_with_their_own_keys_cannot_both_start(tmp_path: Path,
                                                          database_url: str) -> None:
    first, second = _two_servers(tmp_path, database_url)
    try:
        signing.enforce_key(first)
        identity.bootstrap_admin(first)
        assert signing.checkpoint(first) is not None

        with pytest.raises(PermanentError, match="must share one key") as refused:
            signing.enforce_key(second)
        assert refused.value.details["registeredKeyId"] == signing.key_id(first)
        identity.create_user(first, ADMIN, "quinn", ["qa"])
        with pytest.raises(PermanentError, match="INFRASTREAM_SIGNING_KEY"):
            signing.checkpoint(second)
        assert verify_all(first).ok
    finally:
        first.db.dispose()
        second.db.dispose()


def test_two_servers_sharing_the_configured_key_both_sign_and_verify(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(signing.KEY_ENV, _pem())
    first, second = _two_servers(tmp_path, database_url)
    try:
        assert signing.enforce_key(first) == signing.enforce_key(second)
        identity.bootstrap_admin(first)
        assert signing.checkpoint(first) is not None
        identity.create_user(second, ADMIN, "quinn", ["qa"])
        assert signing.checkpoint(second) is not None

        for server in (first, second):
            verdict = verify_all(server)
            assert verdict.ok, verdict
            assert verdict.checkpoints == 2
    finally:
        first.db.dispose()
        second.db.dispose()


def test_a_database_signed_before_the_rule_keeps_the_key_of_its_checkpoints(
        tmp_path: Path, database_url: str) -> None:
    first, second = _two_servers(tmp_path, database_url)
    try:
        identity.bootstrap_admin(first)
        assert signing.checkpoint(first) is not None  # no key recorded yet: an older database
        with pytest.raises(PermanentError, match="must share one key"):
            signing.enforce_key(second)
        assert signing.enforce_key(first) == signing.key_id(first)
    finally:
        first.db.dispose()
        second.db.dispose()
