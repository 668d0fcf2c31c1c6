"""Secret variables: values supplied per environment and application, never shown again.

Values are encrypted at rest (Fernet, AES-128-CBC + HMAC) with a key kept in
`<data dir>/secret-key` (mode 0600) or given as INFRASTREAM_SECRET_KEY, which several servers
sharing one PostgreSQL database must set to the same value. Only the jobs decrypt them, to
hand them to the target or a check; a deployment gets the variables its release's manifests
declare secret, read with one query per environment (none when no application declares
any). The API lists names and timestamps, never values, and the audit trail records that a
secret changed, never what it became.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, bindparam, delete, insert, select

from infrastream.domain.errors import Invalid, NotFound, PermanentError
from infrastream.domain.roles import Principal, Role
from infrastream.store.tables import secrets

from . import audit
from .context import Services
from .identity import require
from .manifests import current_bundle

KEY_FILE = "secret-key"
MANAGE_SECRETS = frozenset({Role.PLATFORM, Role.ADMIN})


_fernets_lock = threading.Lock()
_fernets: dict[tuple[str, int, int], Fernet] = {}


def _fernet(data_dir: Path) -> Fernet:
    key = os.environ.get("INFRASTREAM_SECRET_KEY")
    if key:
        return _cached_fernet(("env:" + key, 0, 0), key.encode)
    path = data_dir / KEY_FILE
    if not path.exists():
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another thread or process created it first
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(Fernet.generate_key())
    stat = path.stat()  # a replaced key file is a new key
    return _cached_fernet((str(path), stat.st_ino, stat.st_mtime_ns),
                          lambda: path.read_bytes().strip())


def _cached_fernet(identity: tuple[str, int, int], key: Callable[[], bytes]) -> Fernet:
    with _fernets_lock:
        found = _fernets.get(identity)
    if found is None:
        found = Fernet(key())
        with _fernets_lock:
            if len(_fernets) > 64:
                _fernets.clear()
            _fernets[identity] = found
    return found


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


_OF_APP = select(secrets.c.app, secrets.c.name, secrets.c.ciphertext).where(
    (secrets.c.environment == bindparam("environment")) & (secrets.c.app == bindparam("app")))
_OF_ENVIRONMENT = select(secrets.c.app, secrets.c.name, secrets.c.ciphertext).where(
    secrets.c.environment == bindparam("environment"))


def resolve(services: Services, environment: str, app: str) -> dict[str, str]:
    """Decrypted values for one application in one environment (jobs only)."""
    with services.db.connect() as conn:
        rows = conn.execute(_OF_APP, {"environment": environment, "app": app}).all()
    return {row.name: value for row, value in _decrypt(services, environment, rows)}


def resolve_declared(services: Services, conn: Connection, environment: str,
                     declared: Mapping[str, frozenset[str]]) -> dict[str, dict[str, str]]:
    """Per application, the decrypted values of the secret variables it declares: one query
    for the environment, and none when no application declares a secret."""
    values: dict[str, dict[str, str]] = {app: {} for app in declared}
    if not any(declared.values()):
        return values
    rows = [r for r in conn.execute(_OF_ENVIRONMENT, {"environment": environment})
            if r.name in declared.get(r.app, ())]
    for row, value in _decrypt(services, environment, rows):
        values[row.app][row.name] = value
    return values


def _decrypt(services: Services, environment: str,
             rows: Sequence[Any]) -> list[tuple[Any, str]]:
    fernet = _fernet(services.data_dir)
    values = []
    for row in rows:
        try:
            values.append((row, fernet.decrypt(row.ciphertext.encode()).decode()))
        except InvalidToken:
            raise PermanentError(f"secret {row.app}/{row.name} of {environment} cannot be "
                                 "decrypted: is INFRASTREAM_SECRET_KEY the key it was set "
                                 "with?") from None
    return values
