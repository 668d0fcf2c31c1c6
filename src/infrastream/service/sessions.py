"""Portal sessions: signing in with an API token, and checking the session on every request.

The portal never keeps a token. Signing in authenticates the token like the API does and
hands the face the user's name and the token's sha256, which the face keeps in a signed
cookie. Every request re-checks that hash against the tokens table (one indexed lookup), so
revoking a token or disabling a user ends their portal sessions at once, exactly as it ends
their API access. The key that signs the cookies lives beside the audit signing key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from infrastream.domain.errors import PermanentError, Unauthenticated
from infrastream.domain.roles import Principal
from infrastream.store.key_file import create_key_file

from .auditing import trail as audit
from .context import Services
from .identity import authenticate, hash_token, principal_of_hash


@dataclass(frozen=True)
class SignIn:
    principal: Principal
    token_hash: str
    """What a session keeps instead of the token: the sha256 the tokens table stores."""


def sign_in(services: Services, token: str) -> SignIn:
    """Authenticate an API token (Unauthenticated if unknown or revoked)."""
    token = token.strip()
    principal = authenticate(services, token)
    now = services.now()
    with services.transaction() as conn:
        audit.record(conn, at=now, actor=principal.name, action="session.sign-in",
                     object_type="user", object_id=principal.name,
                     after={"face": "portal"})
    return SignIn(principal, hash_token(token))


def session_principal(services: Services, user: str, token_hash: str) -> Principal:
    """The principal of a session, if its token is still valid (neither revoked nor expired,
    its user not disabled) and still the user's."""
    try:
        principal = principal_of_hash(services, token_hash)
    except Unauthenticated as ended:
        raise Unauthenticated(f"your session has ended: {ended.reason}; sign in again") from None
    if principal.name != user:
        raise Unauthenticated("your session has ended: its API token is no longer yours; "
                              "sign in again")
    return principal


KEY_FILE = "portal-session.key"


def session_key(services: Services) -> bytes:
    """The key the portal signs session cookies with: `<data dir>/portal-session.key`
    (32 random bytes, hex, mode 0600, created on first use). Several servers behind one
    address must share it; deleting it signs everybody out."""
    path = services.data_dir / KEY_FILE
    if not path.exists():
        create_key_file(path, (secrets.token_hex(32) + "\n").encode())
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise PermanentError(f"{path} holds no session key; delete it to make a new one")
    return key
