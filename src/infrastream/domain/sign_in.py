"""Signing people in through an OpenID provider: the rules, without the network.

What an ID token must say before Infrastream believes it (issuer, audience, expiry, the nonce
this sign-in sent), how the `state` a callback brings back is checked, how PKCE's challenge is
derived from its verifier (RFC 7636, S256), how long the session that follows may last, and
which roles a person's groups give them (the configured `group=role` mapping). Everything
here is pure: the clock and the randomness are passed in, and the signature is checked by
`infrastream.oidc` before the claims reach `check_claims`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import Invalid, Unauthenticated
from .roles import Role

CLOCK_SKEW = timedelta(seconds=60)
"""How far the provider's clock may be ahead of ours when it stamps `iat`/`exp`."""


def code_challenge(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)) without padding (RFC 7636 §4.2)."""
    if not 43 <= len(verifier) <= 128:
        raise Invalid("a PKCE code verifier has 43 to 128 characters")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_state(expected: str | None, returned: str | None) -> None:
    """The callback's `state` must be the one this browser's sign-in sent (CSRF on the
    redirect): refuse a missing, stale or foreign one."""
    if not expected:
        raise Unauthenticated("sign-in refused: no sign-in was started in this browser "
                              "(or it expired); start again")
    if not returned or not hmac.compare_digest(expected, returned):
        raise Unauthenticated("sign-in refused: the identity provider's answer does not "
                              "belong to this sign-in (wrong state); start again")


@dataclass(frozen=True)
class Person:
    """Who an accepted ID token says signed in."""

    subject: str
    name: str
    email: str | None
    groups: tuple[str, ...]
    expires: datetime
    """The ID token's `exp`."""


def _aware(seconds: Any, claim: str) -> datetime:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise Unauthenticated(f"sign-in refused: the ID token's `{claim}` is not a time")
    return datetime.fromtimestamp(seconds, tz=UTC)


def check_claims(claims: Mapping[str, Any], *, issuer: str, client_id: str,
                 nonce: str | None, now: datetime, groups_claim: str = "groups",
                 name_claim: str = "preferred_username",
                 nonce_required: bool = True) -> Person:
    """The ID token's claims, once its signature verified, against OpenID Connect Core
    §3.1.3.7: issuer, audience (and `azp` when there are several), expiry, issued-at, and the
    nonce of this sign-in. Refusals say which check failed.

    `nonce_required=False` is for the device authorization grant (RFC 8628), where providers
    need not put the nonce in the ID token (oidc-provider does not): a token without one is
    accepted, a token with one must carry `nonce`."""
    if claims.get("iss") != issuer:
        raise Unauthenticated(f"sign-in refused: the ID token was issued by "
                              f"{claims.get('iss')!r}, not by {issuer!r}")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else list(audience or [])
    if client_id not in audiences:
        raise Unauthenticated("sign-in refused: the ID token is meant for another client "
                              "(wrong audience)")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise Unauthenticated("sign-in refused: the ID token names several audiences "
                              "and is not authorized for this client (azp)")
    expires = _aware(claims.get("exp"), "exp")
    if expires <= now - CLOCK_SKEW:
        raise Unauthenticated(f"sign-in refused: the ID token expired at "
                              f"{expires.isoformat()}")
    if _aware(claims.get("iat"), "iat") > now + CLOCK_SKEW:
        raise Unauthenticated("sign-in refused: the ID token was issued in the future")
    sent = claims.get("nonce")
    if (nonce_required or sent is not None) and (
            not isinstance(sent, str) or nonce is None or not hmac.compare_digest(sent, nonce)):
        raise Unauthenticated("sign-in refused: the ID token was not issued for this "
                              "sign-in (wrong nonce)")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("sign-in refused: the ID token names no subject")
    raw_groups = claims.get(groups_claim) or []
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    groups = tuple(sorted({str(g) for g in raw_groups}))
    name = claims.get(name_claim) or claims.get("email") or subject
    email = claims.get("email")
    return Person(subject=subject, name=str(name), email=str(email) if email else None,
                  groups=groups, expires=expires)


def session_end(id_token_expires: datetime, now: datetime, *, beyond_expiry: timedelta,
                longest: timedelta) -> datetime:
    """When a session started now must end: never later than the ID token's `exp` plus the
    configured maximum, and never later than the portal's longest session."""
    return min(id_token_expires + beyond_expiry, now + longest)


GroupRoles = Mapping[str, frozenset[str]]


def parse_group_roles(entries: Iterable[str]) -> dict[str, frozenset[str]]:
    """`group=role` entries (repeatable; one group may give several roles) into a mapping.
    Unknown roles are refused, so a typo cannot silently give nothing."""
    known = {r.value for r in Role}
    mapping: dict[str, set[str]] = {}
    for entry in entries:
        group, sep, role = entry.partition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group or not role:
            raise Invalid(f"group mapping {entry!r}: write it as GROUP=ROLE")
        if role not in known:
            raise Invalid(f"group mapping {entry!r}: unknown role {role!r} "
                          f"(roles: {', '.join(sorted(known))})")
        mapping.setdefault(group, set()).add(role)
    return {group: frozenset(roles) for group, roles in mapping.items()}


def roles_for_groups(mapping: GroupRoles, groups: Iterable[str]) -> frozenset[str]:
    """The roles a person's groups give them; re-evaluated at each sign-in, so leaving a
    group takes its role away at the next one."""
    roles: set[str] = set()
    for group in groups:
        roles |= mapping.get(group, frozenset())
    return frozenset(roles)
