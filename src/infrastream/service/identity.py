"""Users, roles and API tokens.

Tokens are random 32-byte secrets shown once; only their sha256 is stored, so a stolen
database gives no usable token. `authenticate` turns a bearer token into a Principal; every
use case then checks the principal's roles itself (`require`), whatever face called it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Conflict, Invalid, NotFound, Unauthenticated
from infrastream.domain.roles import MANAGE_USERS, Principal, Role
from infrastream.manifests.fields import is_dns_label
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import tokens, users

from .auditing import trail as audit
from .context import Services
from .permissions import require

TOKEN_PREFIX = "ifs_"
BOOTSTRAP_FILE = "admin-token"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(services: Services, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("no API token: send `Authorization: Bearer <token>`")
    with services.db.connect() as conn:
        row = conn.execute(
            select(users.c.name, users.c.roles, users.c.disabled)
            .join(tokens, tokens.c.user_id == users.c.id)
            .where(tokens.c.token_hash == hash_token(token))
        ).first()
    if row is None or row.disabled:
        raise Unauthenticated("the API token is unknown or revoked")
    return Principal(row.name, frozenset(row.roles))


def create_user(services: Services, principal: Principal, name: str, roles: list[str],
                *, description: str = "") -> str:
    """Create a user with roles and return their first API token (shown once)."""
    require(principal, MANAGE_USERS, "create users")
    return _create_user(services, principal.name, name, roles, description=description)


def _create_user(services: Services, actor: str, name: str, roles: list[str], *,
                 description: str = "") -> str:
    if not is_dns_label(name):
        raise Invalid(f"`{name}` is not a valid user name (lowercase letters, digits and `-`)")
    clean = sorted({r.strip() for r in roles if r.strip()})
    if not clean:
        raise Invalid("a user needs at least one role")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = services.now()
    try:
        with services.transaction() as conn:
            user_id = inserted_id(conn.execute(insert(users).values(
                name=name, roles=clean, created_at=now, created_by=actor, disabled=False,
            )))
            conn.execute(insert(tokens).values(
                user_id=user_id, token_hash=hash_token(token), prefix=token[:8],
                created_at=now, description=description,
            ))
            audit.record(conn, at=now, actor=actor, action="user.create", object_type="user",
                         object_id=name, after={"roles": clean})
    except IntegrityError:
        raise Conflict(f"user `{name}` already exists") from None
    return token


def list_users(services: Services, principal: Principal) -> list[dict[str, object]]:
    require(principal, MANAGE_USERS, "list users")
    with services.db.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.name)).all()
    return [{"name": r.name, "roles": r.roles, "createdAt": r.created_at.isoformat(),
             "createdBy": r.created_by, "disabled": r.disabled} for r in rows]


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
