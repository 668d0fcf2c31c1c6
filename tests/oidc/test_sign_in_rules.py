"""The pure sign-in rules: state, PKCE, session length and the group → role mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infrastream.domain.errors import Invalid, Unauthenticated
from infrastream.domain.sign_in import (
    check_claims,
    check_state,
    code_challenge,
    parse_group_roles,
    roles_for_groups,
    session_end,
)


def test_pkce_challenge_matches_rfc_7636_appendix_b() -> None:
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_wrong_or_missing_state_is_refused() -> None:
    check_state("s-1", "s-1")
    with pytest.raises(Unauthenticated, match="wrong state"):
        check_state("s-1", "s-2")
    with pytest.raises(Unauthenticated, match="wrong state"):
        check_state("s-1", None)
    with pytest.raises(Unauthenticated, match="no sign-in was started"):
        check_state(None, "s-1")


def test_a_session_never_outlives_the_id_token_by_more_than_the_maximum() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    expires = now + timedelta(minutes=5)
    assert session_end(expires, now, beyond_expiry=timedelta(hours=1),
                       longest=timedelta(hours=12)) == expires + timedelta(hours=1)
    assert session_end(now + timedelta(days=2), now, beyond_expiry=timedelta(hours=1),
                       longest=timedelta(hours=12)) == now + timedelta(hours=12)


def test_group_mapping_gives_roles_and_leaving_a_group_takes_them_away() -> None:
    mapping = parse_group_roles(["qa-engineers=qa", "sre-oncall=incident-commander",
                                 "sre-oncall=platform"])
    assert roles_for_groups(mapping, ["qa-engineers", "other"]) == {"qa"}
    assert roles_for_groups(mapping, ["sre-oncall"]) == {"incident-commander", "platform"}
    assert roles_for_groups(mapping, []) == frozenset()


def test_a_mapping_to_an_unknown_role_or_without_equals_is_refused() -> None:
    with pytest.raises(Invalid, match="unknown role 'qaa'"):
        parse_group_roles(["qa-engineers=qaa"])
    with pytest.raises(Invalid, match="GROUP=ROLE"):
        parse_group_roles(["qa-engineers"])


def test_a_device_grant_id_token_may_carry_no_nonce_but_a_wrong_one_is_refused() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    claims = {"iss": "https://id", "aud": "cli", "sub": "u-1", "preferred_username": "ada",
              "exp": int((now + timedelta(minutes=5)).timestamp()), "iat": int(now.timestamp())}
    with pytest.raises(Unauthenticated, match="wrong nonce"):  # the portal's code flow
        check_claims(claims, issuer="https://id", client_id="cli", nonce="n-1", now=now)
    person = check_claims(claims, issuer="https://id", client_id="cli", nonce=None, now=now,
                          nonce_required=False)
    assert person.name == "ada"
    with pytest.raises(Unauthenticated, match="wrong nonce"):
        check_claims({**claims, "nonce": "n-2"}, issuer="https://id", client_id="cli",
                     nonce="n-1", now=now, nonce_required=False)
    assert check_claims({**claims, "nonce": "n-1"}, issuer="https://id", client_id="cli",
                        nonce="n-1", now=now, nonce_required=False).subject == "u-1"
