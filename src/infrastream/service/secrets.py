"""Secret variables: values supplied per environment and application, never shown again.

Values are encrypted at rest (Fernet, AES-128-CBC + HMAC) with a key kept in
`<data dir>/secret-key` (mode 0600) or given as INFRASTREAM_SECRET_KEY, which several servers
sharing one PostgreSQL database must set to the same value. Only the deploy job decrypts
them, to hand them to the target; the API lists names and timestamps, never values, and the
audit trail records that a secret changed, never what it became.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, insert, select

from infrastream.domain.errors import Invalid, NotFound, PermanentError
from infrastream.domain.roles import Principal, Role
from infrastream.store.tables import secrets

from . import audit
from .context import Services
from .identity import require
from .manifests import current_bundle

KEY_FILE = "secret-key"
MANAGE_SECRETS = frozenset({Role.PLATFORM, Role.ADMIN})


def _fernet(data_dir: Path) -> Fernet:
    key = os.environ.get("INFRASTREAM_SECRET_KEY")
    if key:
        return Fernet(key.encode())
    path = data_dir / KEY_FILE
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Fernet.generate_key())
    return Fernet(path.read_bytes().strip())


def set_secret(services: Services, principal: Principal, environment: str, app: str,
               name: str, value: str) -> dict[str, Any]:
    require(principal, MANAGE_SECRETS, "set secrets")
    bundle = current_bundle(services)
    if app not in bundle.applications:
        raise NotFound(f"application `{app}` does not exist")
    declared = {v.name for v in bundle.applications[app].spec.env if v.secret}
    if name not in declared:
        raise Invalid(f"`{app}` declares no secret variable `{name}` (secret variables: "
                      + (", ".join(sorted(declared)) or "none") + ")")
    if not value:
        raise Invalid("a secret value cannot be empty")
    ciphertext = _fernet(services.data_dir).encrypt(value.encode()).decode()
    now = services.now()
    with services.transaction() as conn:
        existed = conn.execute(delete(secrets).where(
            (secrets.c.environment == environment) & (secrets.c.app == app)
            & (secrets.c.name == name))).rowcount
        conn.execute(insert(secrets).values(environment=environment, app=app, name=name,
                                            ciphertext=ciphertext, updated_at=now,
                                            updated_by=principal.name))
        audit.record(conn, at=now, actor=principal.name, action="secret.set",
                     object_type="secret", object_id=f"{environment}/{app}/{name}",
                     after={"changed": bool(existed), "value": "<redacted>"})
    return {"environment": environment, "application": app, "name": name,
            "updatedAt": now.isoformat(), "updatedBy": principal.name}


def list_secrets(services: Services, environment: str | None = None) -> list[dict[str, Any]]:
    query = select(secrets.c.environment, secrets.c.app, secrets.c.name, secrets.c.updated_at,
                   secrets.c.updated_by).order_by(secrets.c.environment, secrets.c.app,
                                                  secrets.c.name)
    if environment:
        query = query.where(secrets.c.environment == environment)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    return [{"environment": r.environment, "application": r.app, "name": r.name,
             "updatedAt": r.updated_at.isoformat(), "updatedBy": r.updated_by} for r in rows]


def resolve(services: Services, environment: str, app: str) -> dict[str, str]:
    """Decrypted values for one application in one environment (deploy jobs only)."""
    with services.db.connect() as conn:
        rows = conn.execute(select(secrets.c.name, secrets.c.ciphertext).where(
            (secrets.c.environment == environment) & (secrets.c.app == app))).all()
    fernet = _fernet(services.data_dir)
    values = {}
    for row in rows:
        try:
            values[row.name] = fernet.decrypt(row.ciphertext.encode()).decode()
        except InvalidToken:
            raise PermanentError(f"secret {app}/{row.name} of {environment} cannot be "
                                 "decrypted: is INFRASTREAM_SECRET_KEY the key it was set "
                                 "with?") from None
    return values
