"""Secret values for the jobs: the encryption key, and decrypting what a deployment needs.

Values are encrypted at rest (Fernet, AES-128-CBC + HMAC) with a key kept in
`<data dir>/secret-key` (mode 0600) or given as INFRASTREAM_SECRET_KEY, which several servers
sharing one PostgreSQL database must set to the same value. Only the jobs decrypt, to hand
the values to a target or a check; a deployment gets the variables its release's manifests
declare secret, read with one query per environment (none when no application declares any).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, bindparam, select

from infrastream.domain.errors import PermanentError
from infrastream.store.key_file import create_key_file
from infrastream.store.tables import secrets

from ..context import Services

KEY_FILE = "secret-key"

_fernets_lock = threading.Lock()
_fernets: dict[tuple[str, int, int], Fernet] = {}


def fernet(data_dir: Path) -> Fernet:
    """The key secrets are encrypted with: INFRASTREAM_SECRET_KEY, else the data dir's key
    file, created on first use. Loaded once per key (a replaced key file is a new key)."""
    key = os.environ.get("INFRASTREAM_SECRET_KEY")
    if key:
        return _cached_fernet(("env:" + key, 0, 0), key.encode)
    path = data_dir / KEY_FILE
    if not path.exists():
        create_key_file(path, Fernet.generate_key())
    stat = path.stat()
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
    key = fernet(services.data_dir)
    values = []
    for row in rows:
        try:
            values.append((row, key.decrypt(row.ciphertext.encode()).decode()))
        except InvalidToken:
            raise PermanentError(f"secret {row.app}/{row.name} of {environment} cannot be "
                                 "decrypted: is INFRASTREAM_SECRET_KEY the key it was set "
                                 "with?") from None
    return values
