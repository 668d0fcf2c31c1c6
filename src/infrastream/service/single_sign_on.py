"""Signing people in through the company's OpenID provider, and ending their sessions.

A verified ID token (`infrastream.oidc`) names a person and their groups. Signing in makes
the user on first sign-in, sets their roles to what the configured `group=role` mapping gives
their groups *now* (so leaving a group takes the role away at the next sign-in; a change is
audited as `user.roles` with before and after), and issues a short-lived Infrastream token
named `sso` (`sso-cli` for `infrastream login --sso`). A portal session ends never later than
the ID token's `exp` plus the configured maximum; a CLI token (the person signs in once for a
working day, not for the ID token's minutes) lasts the configured CLI lifetime (8 h by
default), never longer than the longest session the policy allows, and is audited as
`token.issue` `via: sso` besides the sign-in. The portal keeps that token's
hash like any API-token session, so every request re-checks it, signing out revokes it, and an
admin ending all of a user's sessions revokes every such token at once.

A user made by hand (no `oidc:` creator) cannot be taken over by a same-named person from
the provider: that sign-in is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import NotFound, Unauthenticated
from infrastream.domain.inputs import valid_name
from infrastream.domain.roles import MANAGE_USERS, Principal
from infrastream.domain.sign_in import (
    CLOCK_SKEW,
    GroupRoles,
    Person,
    roles_for_groups,
    session_end,
)
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import audit_log, sso_exchanges, tokens, users

from .auditing import trail as audit
from .context import Services
from .identity import PREFIX_LENGTH, hash_token, new_token
from .permissions import require
from .readmodel import ReadModel

SESSION_TOKEN_NAMES = ("sso", "sso-cli")


@dataclass(frozen=True)
class SsoPolicy:
    issuer: str
    group_roles: GroupRoles
    beyond_expiry: timedelta = timedelta(hours=1)
    """How long a session may outlive the ID token's `exp`."""
    longest: timedelta = timedelta(hours=12)
    cli_token_lifetime: timedelta = timedelta(hours=8)
    """How long a token from `infrastream login --sso` lasts (bounded by `longest`)."""

    @property
    def creator(self) -> str:
        return f"oidc:{self.issuer}"


@dataclass(frozen=True)
class SsoSignIn:
    principal: Principal
    token: str
    """A short-lived Infrastream token; the portal keeps only its hash."""
    expires_at: str
    roles_before: tuple[str, ...] | None
    """The roles before this sign-in (None for a person signing in the first time)."""

    @property
    def token_hash(self) -> str:
        return hash_token(self.token)


def _exchange_once(conn: Connection, id_token: str, expires: datetime,
                   now: datetime) -> None:
    """Refuse an ID token that was exchanged before (a copied one); forget the expired ones,
    which the verifier refuses anyway."""
    conn.execute(delete(sso_exchanges).where(
        sso_exchanges.c.expires_at < now - CLOCK_SKEW - CLOCK_SKEW))
    digest = hash_token(id_token)
    used = conn.execute(select(sso_exchanges.c.exchanged_at).where(
        sso_exchanges.c.id_token_hash == digest)).first()
    if used is not None:
        raise Unauthenticated("sign-in refused: this ID token was already exchanged (at "
                              f"{(utc(used.exchanged_at) or now).isoformat()}); sign in again")
    conn.execute(insert(sso_exchanges).values(id_token_hash=digest, exchanged_at=now,
                                              expires_at=expires))


def sign_in_person(services: Services, person: Person, policy: SsoPolicy, *,
                   face: str = "portal", id_token: str | None = None) -> SsoSignIn:
    """Sign `person` in. `id_token` (the CLI's exchange) is accepted once only."""
    name = valid_name("user", person.name.lower())
    roles = sorted(roles_for_groups(policy.group_roles, person.groups))
    now = utc(services.now()) or services.now()
    if face == "cli":
        ends = now + min(policy.cli_token_lifetime, policy.longest)
    else:
        ends = session_end(person.expires, now, beyond_expiry=policy.beyond_expiry,
                           longest=policy.longest)
    if ends <= now:
        raise Unauthenticated("sign-in refused: the ID token has expired")
    try:
        return _sign_in(services, person, policy, face, id_token, name, roles, now, ends)
    except IntegrityError:  # another server exchanged the same ID token at the same moment
        if id_token is None:
            raise
        raise Unauthenticated("sign-in refused: this ID token was already exchanged; "
                              "sign in again") from None


def _sign_in(services: Services, person: Person, policy: SsoPolicy, face: str,
             id_token: str | None, name: str, roles: list[str], now: datetime,
             ends: datetime) -> SsoSignIn:
    secret = new_token()
    with services.transaction() as conn:
        row = conn.execute(select(users.c.id, users.c.roles, users.c.disabled,
                                  users.c.created_by, users.c.email)
                           .where(users.c.name == name).with_for_update()).first()
        before: list[str] | None
        if row is None:
            before = None
            user_id = inserted_id(conn.execute(insert(users).values(
                name=name, roles=roles, created_at=now, created_by=policy.creator,
                disabled=False, email=person.email)))
            audit.record(conn, at=now, actor=policy.creator, action="user.create",
                         object_type="user", object_id=name,
                         after={"roles": roles, "groups": list(person.groups)})
        else:
            if row.created_by != policy.creator:
                raise Unauthenticated(
                    f"sign-in refused: `{name}` is a local Infrastream user, not one made "
                    f"by sign-in with {policy.issuer}; sign in with an API token")
            if row.disabled:
                raise Unauthenticated(f"sign-in refused: user `{name}` is disabled")
            user_id = row.id
            before = sorted(row.roles)
            if person.email and person.email != row.email:  # notifications mail it
                conn.execute(update(users).where(users.c.id == row.id)
                             .values(email=person.email))
            if before != roles:
                conn.execute(update(users).where(users.c.id == row.id).values(roles=roles))
                audit.record(conn, at=now, actor=policy.creator, action="user.roles",
                             object_type="user", object_id=name,
                             before={"roles": before},
                             after={"roles": roles, "groups": list(person.groups)})
        if id_token is not None:
            _exchange_once(conn, id_token, person.expires, now)
        label = "sso-cli" if face == "cli" else "sso"
        conn.execute(insert(tokens).values(
            user_id=user_id, token_hash=hash_token(secret), prefix=secret[:PREFIX_LENGTH],
            created_at=now, created_by=policy.creator, description=f"signed in via {face}",
            name=label, expires_at=ends))
        audit.record(conn, at=now, actor=name, action="session.sign-in",
                     object_type="user", object_id=name,
                     after={"face": face, "via": "oidc", "groups": list(person.groups),
                            "roles": roles, "endsAt": ends.isoformat()})
        if face == "cli":
            audit.record(conn, at=now, actor=name, action="token.issue",
                         object_type="user", object_id=name,
                         after={"via": "sso", "issuer": policy.issuer, "name": label,
                                "prefix": secret[:PREFIX_LENGTH],
                                "expiresAt": ends.isoformat()})
    return SsoSignIn(Principal(name, frozenset(roles)), secret, ends.isoformat(),
                     tuple(before) if before is not None else None)


def sign_out(services: Services, token_hash: str) -> None:
    """End one SSO session: its token lets nobody in from now on."""
    now = utc(services.now()) or services.now()
    with services.transaction() as conn:
        row = conn.execute(select(tokens.c.id, users.c.name)
                           .join(users, users.c.id == tokens.c.user_id)
                           .where((tokens.c.token_hash == token_hash)
                                  & tokens.c.name.in_(SESSION_TOKEN_NAMES)
                                  & tokens.c.revoked_at.is_(None))).first()
        if row is None:
            return
        conn.execute(update(tokens).where(tokens.c.id == row.id)
                     .values(revoked_at=now, revoked_by=row.name))
        audit.record(conn, at=now, actor=row.name, action="session.sign-out",
                     object_type="user", object_id=row.name)


class EndedSessions(ReadModel):
    user: str
    ended: int
    """How many sign-in sessions (portal and CLI) stopped working."""


def end_sessions(services: Services, principal: Principal, user: str) -> EndedSessions:
    """An admin ends every SSO session of `user` (portal and CLI) at once; how many."""
    require(principal, MANAGE_USERS, "end users' sessions")
    name = valid_name("user", user)
    now = utc(services.now()) or services.now()
    with services.transaction() as conn:
        found = conn.execute(select(users.c.id).where(users.c.name == name)).first()
        if found is None:
            raise NotFound(f"user `{name}` does not exist")
        ended = conn.execute(update(tokens).where(
            (tokens.c.user_id == found.id) & tokens.c.name.in_(SESSION_TOKEN_NAMES)
            & tokens.c.revoked_at.is_(None)
            & ((tokens.c.expires_at.is_(None)) | (tokens.c.expires_at > now)))
            .values(revoked_at=now, revoked_by=principal.name)).rowcount
        audit.record(conn, at=now, actor=principal.name, action="user.end-sessions",
                     object_type="user", object_id=name, after={"ended": ended})
    return EndedSessions(user=name, ended=int(ended))


class LastSignIn(ReadModel):
    at: str
    via: str
    groups: list[str]
    roles: list[str]


def last_sign_in(services: Services, principal: Principal) -> LastSignIn | None:
    """How the principal last signed in with the provider (their groups then, and the roles
    those gave), for their own page; None if they never did."""

    with services.db.connect() as conn:
        row = conn.execute(select(audit_log.c.at, audit_log.c.after)
                           .where((audit_log.c.action == "session.sign-in")
                                  & (audit_log.c.object_id == principal.name))
                           .order_by(audit_log.c.seq.desc()).limit(10)).all()
    for entry in row:
        after = entry.after or {}
        if after.get("via") == "oidc":
            return LastSignIn(at=str(entry.at), via="identity provider",
                              groups=list(after.get("groups") or []),
                              roles=list(after.get("roles") or []))
    return None
