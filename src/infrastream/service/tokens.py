"""API tokens you can manage: create (for any user, service accounts for CI included), list,
revoke; each may expire.

Only admins manage tokens (`domain.roles.MANAGE_TOKENS`). A token is shown once, when it is
created; the database keeps its sha256 and its first 12 characters (the prefix that names
it in `token list` and `token revoke`). A revoked or expired token is refused at once by the
API and ends every Portal session signed in with it (`identity.check_token`). Every change
is audited; refused attempts too (`auditing.refusals`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.inputs import storable, valid_name
from infrastream.domain.roles import MANAGE_TOKENS, Principal
from infrastream.manifests import parse_duration
from infrastream.store.clock import utc
from infrastream.store.tables import tokens, users

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .identity import PREFIX_LENGTH, hash_token, new_token
from .permissions import require
from .readmodel import ReadModel


class TokenView(ReadModel):
    """A token as `token list` shows it: never its secret."""

    prefix: str
    user: str
    name: str
    description: str
    created_at: str
    created_by: str | None
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None
    state: str
    """`active`, `expired` or `revoked` (a disabled user's tokens stay `active` but let
    nobody in until the user is enabled again)."""


class CreatedToken(ReadModel):
    token: str
    """The secret, shown once: only its hash is stored."""
    details: TokenView


def _iso(value: datetime | None) -> str | None:
    moment = utc(value)
    return moment.isoformat() if moment else None


def _state(row: Any, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    expires = utc(row.expires_at)
    return "expired" if expires is not None and expires <= now else "active"


def _view(row: Any, now: datetime) -> TokenView:
    return TokenView(prefix=row.prefix, user=row.user, name=row.name,
                     description=row.description, created_at=_iso(row.created_at) or "",
                     created_by=row.created_by, last_used_at=_iso(row.last_used_at),
                     expires_at=_iso(row.expires_at), revoked_at=_iso(row.revoked_at),
                     state=_state(row, now))


_LISTED = (select(tokens.c.id, tokens.c.prefix, tokens.c.name, tokens.c.description,
                  tokens.c.created_at, tokens.c.created_by, tokens.c.last_used_at,
                  tokens.c.expires_at, tokens.c.revoked_at, users.c.name.label("user"))
           .join(users, users.c.id == tokens.c.user_id))


def lifetime(expires: str | None) -> timedelta | None:
    """`90d` → 90 days (at most 365d, like every duration); None: the token never expires."""
    if expires is None:
        return None
    try:
        return timedelta(seconds=parse_duration(storable("the lifetime", expires)))
    except ValueError as exc:
        raise Invalid(f"--expires: {exc}", field="expires") from None


@refusals.audited("token.create", "user",
                  lambda a: a["user"] or a["principal"].name)
def create_token(services: Services, principal: Principal, user: str | None = None,
                 name: str | None = None, expires: str | None = None) -> CreatedToken:
    """A new token for `user` (default: the caller), shown once."""
    require(principal, MANAGE_TOKENS, "create API tokens")
    owner = valid_name("user", user) if user is not None else principal.name
    label = valid_name("token", name) if name is not None else ""
    ttl = lifetime(expires)
    now = utc(services.now()) or services.now()
    secret = new_token()
    with services.transaction() as conn:
        found = conn.execute(select(users.c.id, users.c.disabled)
                             .where(users.c.name == owner)).first()
        if found is None:
            raise NotFound(f"user `{owner}` does not exist")
        if found.disabled:
            raise Conflict(f"user `{owner}` is disabled; enable them before giving them a token")
        expires_at = now + ttl if ttl is not None else None
        conn.execute(insert(tokens).values(
            user_id=found.id, token_hash=hash_token(secret), prefix=secret[:PREFIX_LENGTH],
            created_at=now, created_by=principal.name, description="", name=label,
            expires_at=expires_at))
        audit.record(conn, at=now, actor=principal.name, action="token.create",
                     object_type="user", object_id=owner,
                     after={"prefix": secret[:PREFIX_LENGTH], "name": label,
                            "expiresAt": _iso(expires_at)})
        row = conn.execute(_LISTED.where(tokens.c.token_hash == hash_token(secret))).one()
    return CreatedToken(token=secret, details=_view(row, now))


def list_tokens(services: Services, principal: Principal,
                user: str | None = None) -> list[TokenView]:
    """Every token (of `user`), oldest first: prefix, name, created, last used, expiry and
    state — never the secret."""
    require(principal, MANAGE_TOKENS, "list API tokens")
    query = _LISTED.order_by(tokens.c.id)
    if user is not None:
        query = query.where(users.c.name == user)
    now = utc(services.now()) or services.now()
    with services.db.connect() as conn:
        return [_view(row, now) for row in conn.execute(query)]


@refusals.audited("token.revoke", "token", lambda a: a["prefix"])
def revoke_token(services: Services, principal: Principal, prefix: str) -> TokenView:
    """Revoke the token `prefix` names: it lets nobody in from now on."""
    require(principal, MANAGE_TOKENS, "revoke API tokens")
    storable("the token prefix", prefix)
    now = utc(services.now()) or services.now()
    with services.transaction() as conn:
        rows = conn.execute(_LISTED.where(tokens.c.prefix == prefix).with_for_update()).all()
        if not rows:
            raise NotFound(f"no API token has the prefix `{prefix[:PREFIX_LENGTH]}`")
        if len(rows) > 1:
            raise Conflict(f"{len(rows)} tokens share the prefix `{prefix}`; revoke their user's "
                           "access with `user disable`")
        row = rows[0]
        if row.revoked_at is not None:
            raise Conflict(f"the token `{prefix}` was already revoked at {_iso(row.revoked_at)}")
        conn.execute(update(tokens).where(tokens.c.id == row.id)
                     .values(revoked_at=now, revoked_by=principal.name))
        audit.record(conn, at=now, actor=principal.name, action="token.revoke",
                     object_type="token", object_id=prefix,
                     after={"user": row.user, "name": row.name})
        revoked = conn.execute(_LISTED.where(tokens.c.id == row.id)).one()
    return _view(revoked, now)
