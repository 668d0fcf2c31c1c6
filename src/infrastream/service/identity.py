"""Users, roles and authentication.

Tokens are random 32-byte secrets shown once; only their sha256 is stored, so a stolen
database gives no usable token. `authenticate` turns a bearer token into a Principal and
refuses, at once and with the reason, a token that is unknown, revoked or expired and a user
who is disabled; the Portal's sessions re-check the same on every request
(`sessions.session_principal`). Every use case then checks the principal's roles itself
(`require`), whatever face called it. Token lifecycle (create, list, revoke) is `tokens`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Conflict, Invalid, NotFound, Unauthenticated
from infrastream.domain.inputs import valid_name
from infrastream.domain.roles import (
    MANAGE_USERS,
    Principal,
    Role,
    declared_roles,
    unknown_roles,
)
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import tokens, users

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.manifests import current_bundle

TOKEN_PREFIX = "ifs_"
PREFIX_LENGTH = 12
"""Characters of a token shown to identify it (`ifs_` and 8 random ones)."""
BOOTSTRAP_FILE = "admin-token"
LAST_USED_EVERY = timedelta(minutes=1)
"""How stale a token's `last used` may get before a request writes it again (so reads
do not write on every request)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


_BY_HASH = (select(users.c.name, users.c.roles, users.c.disabled, tokens.c.id,
                   tokens.c.prefix, tokens.c.expires_at, tokens.c.revoked_at,
                   tokens.c.last_used_at)
            .join(tokens, tokens.c.user_id == users.c.id)
            .where(tokens.c.token_hash == bindparam("token_hash")))
_TOUCH = (update(tokens).where((tokens.c.id == bindparam("token_id"))
                               & ((tokens.c.last_used_at.is_(None))
                                  | (tokens.c.last_used_at < bindparam("stale"))))
          .values(last_used_at=bindparam("now")))


@dataclass(frozen=True)
class TokenCheck:
    """Whose token a hash is, or why it no longer lets anyone in."""

    principal: Principal | None
    refusal: str | None = None
    stale: int | None = None
    """The token's id when its `last used` should be written again."""


def check_token(conn: Connection, token_hash: str, now: datetime) -> TokenCheck:
    """The principal of a stored token, unless it is unknown, revoked or expired or its user
    is disabled (then `refusal` says which)."""
    row = conn.execute(_BY_HASH, {"token_hash": token_hash}).first()
    if row is None:
        return TokenCheck(None, "the API token is unknown or revoked")
    if row.revoked_at is not None:
        return TokenCheck(None, f"the API token {row.prefix}… was revoked at "
                          f"{(utc(row.revoked_at) or row.revoked_at).isoformat()}")
    expires = utc(row.expires_at)
    if expires is not None and expires <= now:
        return TokenCheck(None, f"the API token {row.prefix}… expired at {expires.isoformat()}")
    if row.disabled:
        return TokenCheck(None, f"user `{row.name}` is disabled")
    used = utc(row.last_used_at)
    stale = row.id if used is None or now - used >= LAST_USED_EVERY else None
    return TokenCheck(Principal(row.name, frozenset(row.roles)), stale=stale)


def principal_of_hash(services: Services, token_hash: str) -> Principal:
    """The principal a stored token hash stands for (Unauthenticated, saying why, if none);
    its `last used` is written at most once a minute, in a short write of its own."""
    now = utc(services.now()) or services.now()
    with services.db.connect() as conn:
        found = check_token(conn, token_hash, now)
    if found.principal is None:
        raise Unauthenticated(found.refusal or "the API token is unknown or revoked")
    if found.stale is not None:
        with services.transaction() as conn:
            conn.execute(_TOUCH, {"token_id": found.stale, "stale": now - LAST_USED_EVERY,
                                  "now": now})
    return found.principal


def token_expiry(services: Services, token: str) -> str | None:
    """When a token (already authenticated) stops working; None if it never expires."""
    with services.db.connect() as conn:
        expires = conn.execute(select(tokens.c.expires_at).where(
            tokens.c.token_hash == hash_token(token))).scalar()
    moment = utc(expires)
    return moment.isoformat() if moment else None


def authenticate(services: Services, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("no API token: send `Authorization: Bearer <token>`")
    return principal_of_hash(services, hash_token(token))


class UserView(ReadModel):
    name: str
    roles: list[str]
    created_at: str
    created_by: str
    disabled: bool
    email: str | None = None
    """Where the email channel mails them (notifications); set by `user set-email` or taken
    from the ID token at sign-in."""


class CreatedUser(ReadModel):
    name: str
    roles: list[str]
    token: str
    """The user's first API token, shown once (only its hash is stored)."""


def _user_view(row: Any) -> UserView:
    return UserView(name=row.name, roles=list(row.roles),
                    created_at=(utc(row.created_at) or row.created_at).isoformat(),
                    created_by=row.created_by, disabled=row.disabled, email=row.email)


def valid_email(email: str) -> str:
    """An email address as far as a mail server needs it to route (one `@`, no spaces)."""
    text = email.strip()
    local, at, domain = text.rpartition("@")
    if (not at or not local or "." not in domain or len(text) > 254
            or any(c.isspace() or ord(c) < 32 for c in text)):
        raise Invalid(f"`{email[:254]}` is not an email address")
    return text


def known_roles_only(services: Services, roles: list[str]) -> list[str]:
    """`roles` cleaned, if each is built in or declared by an applied manifest."""
    clean = sorted({r.strip() for r in roles if r.strip()})
    if not clean:
        raise Invalid("a user needs at least one role")
    unknown = unknown_roles(clean, declared_roles(current_bundle(services)))
    if unknown:
        listed = ", ".join(f"`{r[:63]}`" for r in unknown)
        verb = "is not a known role" if len(unknown) == 1 else "are not known roles"
        raise Invalid(f"{listed} {verb}: roles are the built-in ones ("
                      + ", ".join(r.value for r in Role)
                      + ") and those the applied manifests name in approval rules and "
                      "freeze windows", unknown=unknown)
    return clean


@refusals.audited("user.create", "user", lambda args: args["name"])
def create_user(services: Services, principal: Principal, name: str, roles: list[str],
                *, description: str = "", email: str | None = None) -> CreatedUser:
    """Create a user with roles and return their first API token (shown once)."""
    require(principal, MANAGE_USERS, "create users")
    valid_name("user", name)
    clean = known_roles_only(services, roles)
    address = valid_email(email) if email else None
    token = _create_user(services, principal.name, name, clean, description=description,
                         email=address)
    return CreatedUser(name=name, roles=clean, token=token)


def _create_user(services: Services, actor: str, name: str, roles: list[str], *,
                 description: str = "", email: str | None = None) -> str:
    token = new_token()
    now = services.now()
    try:
        with services.transaction() as conn:
            user_id = inserted_id(conn.execute(insert(users).values(
                name=name, roles=roles, created_at=now, created_by=actor, disabled=False,
                email=email,
            )))
            conn.execute(insert(tokens).values(
                user_id=user_id, token_hash=hash_token(token), prefix=token[:PREFIX_LENGTH],
                created_at=now, created_by=actor, description=description, name="",
            ))
            audit.record(conn, at=now, actor=actor, action="user.create", object_type="user",
                         object_id=name, after={"roles": roles,
                                                **({"email": email} if email else {})})
    except IntegrityError:
        raise Conflict(f"user `{name}` already exists") from None
    return token


def list_users(services: Services, principal: Principal) -> list[UserView]:
    require(principal, MANAGE_USERS, "list users")
    with services.db.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.name)).all()
    return [_user_view(r) for r in rows]


def _set_disabled(services: Services, principal: Principal, name: str,
                  disabled: bool) -> UserView:
    verb = "disable" if disabled else "enable"
    require(principal, MANAGE_USERS, f"{verb} users")
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(select(users).where(users.c.name == name).with_for_update()).first()
        if row is None:
            raise NotFound(f"user `{name}` does not exist")
        if row.disabled == disabled:
            raise Conflict(f"user `{name}` is already {verb}d")
        if disabled and name == principal.name:
            raise Conflict("you cannot disable yourself; another admin can")
        if disabled and Role.ADMIN in row.roles:
            admins = [r for r in conn.execute(select(users.c.name, users.c.roles)
                                              .where(users.c.disabled.is_(False)))
                      if Role.ADMIN in r.roles]
            if len(admins) <= 1:
                raise Conflict(f"`{name}` is the last enabled admin; enable or create "
                               "another admin first")
        conn.execute(update(users).where(users.c.id == row.id).values(disabled=disabled))
        audit.record(conn, at=now, actor=principal.name, action=f"user.{verb}",
                     object_type="user", object_id=name,
                     before={"disabled": row.disabled}, after={"disabled": disabled})
        updated = conn.execute(select(users).where(users.c.id == row.id)).one()
    return _user_view(updated)


@refusals.audited("user.disable", "user", lambda args: args["name"])
def disable_user(services: Services, principal: Principal, name: str) -> UserView:
    """Disable a user: every token of theirs and every Portal session ends at once."""
    return _set_disabled(services, principal, name, True)


@refusals.audited("user.enable", "user", lambda args: args["name"])
def enable_user(services: Services, principal: Principal, name: str) -> UserView:
    """Let a disabled user in again (with the tokens that are neither revoked nor expired)."""
    return _set_disabled(services, principal, name, False)


@refusals.audited("user.email", "user", lambda args: args["name"])
def set_email(services: Services, principal: Principal, name: str,
              email: str | None) -> UserView:
    """Set (or, with None, clear) the address notifications mail a user at."""
    require(principal, MANAGE_USERS, "set users' email addresses")
    address = valid_email(email) if email else None
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(select(users).where(users.c.name == name).with_for_update()).first()
        if row is None:
            raise NotFound(f"user `{name}` does not exist")
        if row.email != address:
            conn.execute(update(users).where(users.c.id == row.id).values(email=address))
            audit.record(conn, at=now, actor=principal.name, action="user.email",
                         object_type="user", object_id=name, before={"email": row.email},
                         after={"email": address})
        updated = conn.execute(select(users).where(users.c.id == row.id)).one()
    return _user_view(updated)


def user_view(services: Services, principal: Principal, name: str) -> UserView:
    require(principal, MANAGE_USERS, "see users")
    with services.db.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"user `{name}` does not exist")
    return _user_view(row)


def get_user(services: Services, name: str) -> Principal:
    with services.db.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"user `{name}` does not exist")
    return Principal(row.name, frozenset(row.roles))


def bootstrap_admin(services: Services) -> str | None:
    """Create the `admin` user on first start; return its token (else None).

    The token is also written to `<data dir>/admin-token`, readable only by its owner.
    """
    with services.db.connect() as conn:
        exists = conn.execute(select(users.c.id).where(users.c.name == "admin")).first()
    if exists is not None:
        return None
    try:
        token = _create_user(services, "infrastream", "admin", [Role.ADMIN],
                             description="bootstrap token")
    except Conflict:
        return None  # another process bootstrapped at the same moment
    path: Path = services.data_dir / BOOTSTRAP_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token
