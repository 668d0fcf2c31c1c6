"""Signing a person in from a verified ID token, on real SQLite and PostgreSQL: the user is
made on first sign-in, roles follow the groups at every sign-in (audited when they change),
the session token ends with the ID token, and an admin can end all of a user's sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from infrastream.domain.errors import Forbidden, Unauthenticated
from infrastream.domain.roles import Principal
from infrastream.domain.sign_in import Person, parse_group_roles
from infrastream.service import single_sign_on as sso
from infrastream.service.context import Services, open_services
from infrastream.service.identity import (
    create_user,
    disable_user,
    get_user,
    principal_of_hash,
)
from infrastream.store.clock import utc
from infrastream.store.tables import audit_log, sso_exchanges, tokens

ISSUER = "http://127.0.0.1:9999"
POLICY = sso.SsoPolicy(issuer=ISSUER, group_roles=parse_group_roles(
    ["qa-engineers=qa", "sre-oncall=incident-commander"]), beyond_expiry=timedelta(minutes=30))
ADMIN = Principal("root", frozenset({"admin"}))


@pytest.fixture()
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    found = open_services(tmp_path / "data", database_url)
    yield found
    found.db.dispose()


def _person(services: Services, *groups: str, name: str = "Ada") -> Person:
    return Person(subject="u-ada", name=name, email=None, groups=tuple(groups),
                  expires=services.now() + timedelta(minutes=5))


def _audit(services: Services, action: str) -> list[tuple[str, object, object]]:
    with services.db.connect() as conn:
        return [(r.actor, r.before, r.after) for r in conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq))]


def test_first_sign_in_makes_the_user_with_the_mapped_roles(services: Services) -> None:
    signed = sso.sign_in_person(services, _person(services, "qa-engineers", "other"), POLICY)
    assert signed.principal == Principal("ada", frozenset({"qa"}))
    assert signed.roles_before is None
    assert get_user(services, "ada").roles == {"qa"}
    assert principal_of_hash(services, signed.token_hash).name == "ada"
    ends = datetime.fromisoformat(signed.expires_at)
    assert ends <= services.now() + timedelta(minutes=35)
    assert _audit(services, "user.create")[0][0] == f"oidc:{ISSUER}"


def test_roles_follow_the_groups_at_every_sign_in_and_changes_are_audited(
        services: Services) -> None:
    sso.sign_in_person(services, _person(services, "qa-engineers", "sre-oncall"), POLICY)
    assert get_user(services, "ada").roles == {"qa", "incident-commander"}
    again = sso.sign_in_person(services, _person(services, "sre-oncall"), POLICY)
    assert again.principal.roles == {"incident-commander"}
    assert again.roles_before == ("incident-commander", "qa")
    assert get_user(services, "ada").roles == {"incident-commander"}
    changes = _audit(services, "user.roles")
    assert [(c[1], c[2]["roles"]) for c in changes] == [
        ({"roles": ["incident-commander", "qa"]}, ["incident-commander"])]
    sso.sign_in_person(services, _person(services, "sre-oncall"), POLICY)
    assert len(_audit(services, "user.roles")) == 1


def test_a_local_user_of_the_same_name_is_not_taken_over(services: Services) -> None:
    create_user(services, ADMIN, "ada", ["platform"])
    with pytest.raises(Unauthenticated, match="local Infrastream user"):
        sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY)
    assert get_user(services, "ada").roles == {"platform"}


def test_sign_out_and_ending_all_sessions_revoke_the_session_tokens(services: Services) -> None:
    one = sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY)
    two = sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY, face="cli")
    three = sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY)
    sso.sign_out(services, one.token_hash)
    with pytest.raises(Unauthenticated):
        principal_of_hash(services, one.token_hash)
    with pytest.raises(Forbidden):
        sso.end_sessions(services, Principal("ada", frozenset({"qa"})), "ada")
    assert sso.end_sessions(services, ADMIN, "ada").ended == 2
    for ended in (two, three):
        with pytest.raises(Unauthenticated):
            principal_of_hash(services, ended.token_hash)
    assert _audit(services, "user.end-sessions")[0][:1] == ("root",)
    assert [a[0] for a in _audit(services, "session.sign-out")] == ["ada"]


def test_an_expired_id_token_makes_no_session(services: Services) -> None:
    person = Person(subject="u", name="ada", email=None, groups=(),
                    expires=services.now() - timedelta(hours=2))
    with pytest.raises(Unauthenticated, match="expired"):
        sso.sign_in_person(services, person, POLICY)


def test_a_cli_sign_in_lasts_the_cli_lifetime_within_the_policy_and_is_audited(
        services: Services) -> None:
    policy = sso.SsoPolicy(issuer=ISSUER, group_roles=POLICY.group_roles,
                           cli_token_lifetime=timedelta(hours=8), longest=timedelta(hours=6))
    signed = sso.sign_in_person(services, _person(services, "qa-engineers"), policy,
                                face="cli", id_token="header.claims.signature")
    ends = datetime.fromisoformat(signed.expires_at)
    issued = _audit(services, "token.issue")
    assert len(issued) == 1 and issued[0][0] == "ada"
    after = issued[0][2]
    assert isinstance(after, dict) and after["via"] == "sso" and after["name"] == "sso-cli"
    assert datetime.fromisoformat(after["expiresAt"]) == ends
    assert signed.token not in str(issued)
    with services.db.connect() as conn:
        created = conn.execute(select(tokens.c.created_at, tokens.c.expires_at).where(
            tokens.c.name == "sso-cli")).one()
    assert utc(created.expires_at) - utc(created.created_at) == timedelta(hours=6)  # longest
    assert principal_of_hash(services, signed.token_hash).roles == {"qa"}


def test_an_id_token_is_exchanged_once(services: Services) -> None:
    sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY, face="cli",
                       id_token="one.id.token")
    with pytest.raises(Unauthenticated, match="already exchanged"):
        sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY, face="cli",
                           id_token="one.id.token")
    again = sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY,
                               face="cli", id_token="another.id.token")
    assert again.principal.name == "ada"


def test_a_disabled_person_gets_no_cli_token_and_the_id_token_is_not_spent(
        services: Services) -> None:
    sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY)
    disable_user(services, ADMIN, "ada")
    with pytest.raises(Unauthenticated, match="user `ada` is disabled"):
        sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY, face="cli",
                           id_token="ada.id.token")
    with services.db.connect() as conn:
        assert conn.execute(select(sso_exchanges)).all() == []


def test_the_id_tokens_email_claim_is_kept_for_notifications_and_follows_changes(
        services: Services) -> None:
    from dataclasses import replace

    from infrastream.service.identity import user_view

    person = replace(_person(services, "qa-engineers"), email="ada@example.com")
    sso.sign_in_person(services, person, POLICY)
    assert user_view(services, ADMIN, "ada").email == "ada@example.com"
    sso.sign_in_person(services, _person(services, "qa-engineers"), POLICY)  # no claim: kept
    assert user_view(services, ADMIN, "ada").email == "ada@example.com"
    sso.sign_in_person(services, replace(person, email="ada@corp.example.com"), POLICY)
    assert user_view(services, ADMIN, "ada").email == "ada@corp.example.com"
