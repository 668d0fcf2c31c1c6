"""The server's audit signing key and signed checkpoints of the audit chain.

The hash chain proves the audit trail was not edited *if* the newest hash is known from
somewhere else: whoever can write the database can rewrite every entry and re-hash the rest.
A checkpoint pins the chain head (seq, hash) with an Ed25519 signature made by a key that
lives outside the database — `<data dir>/audit-signing.key` (PEM, mode 0600, created on first
use) or INFRASTREAM_SIGNING_KEY (PEM), which several servers sharing one PostgreSQL database
must set to the same key. An auditor who holds the public key can then check the trail, or an
evidence pack, without trusting the database or us.

Checkpoints are idempotent (one per chain head) and are not themselves audited, or every
checkpoint would move the head it just signed.

**One key per database.** Every server of one database signs with the same key: the first
server to start records the key's id (`audit-key-id` in `server_settings`; an older database
takes the id of its newest checkpoint), and `enforce_key` refuses to start a server whose key
is another one, saying how to share it. A checkpoint is never signed with another key either.
The database holds only the key's id, never trust: whoever can write it can only stop servers
from starting, not make a key of their own accepted, because verification uses the key the
server holds.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from infrastream.domain.audit_chain import GENESIS, AuditEntry, entry_hash
from infrastream.domain.errors import Conflict, PermanentError
from infrastream.domain.evidence import checkpoint_payload, public_pem
from infrastream.domain.evidence import key_id as key_id_of
from infrastream.store.clock import utc
from infrastream.store.key_file import create_key_file
from infrastream.store.tables import audit_checkpoints, audit_log, server_settings

from ..context import Services
from . import trail as audit

KEY_FILE = "audit-signing.key"
KEY_ENV = "INFRASTREAM_SIGNING_KEY"
KEY_SETTING = "audit-key-id"


def _load(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise PermanentError(f"the audit signing key in {source} is not a PEM private key "
                             f"({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PermanentError(f"the audit signing key in {source} is not an Ed25519 key")
    return key


def _create(path: Path) -> None:
    """Write a new key to `path` atomically; if another process won the race, keep theirs."""
    create_key_file(path, Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def private_key(services: Services) -> Ed25519PrivateKey:
    configured = os.environ.get(KEY_ENV)
    if configured:
        text = configured if "\n" in configured else configured.replace("\\n", "\n")
        return _load(text.encode(), KEY_ENV)
    path = services.data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    return _load(path.read_bytes(), str(path))


def public_key_pem(services: Services) -> str:
    return public_pem(private_key(services).public_key())


def key_id(services: Services) -> str:
    return key_id_of(private_key(services).public_key())


def sign(services: Services, payload: bytes) -> str:
    """The base64 Ed25519 signature of `payload` with the server's audit key."""
    return base64.b64encode(private_key(services).sign(payload)).decode()


def registered_key(conn: Connection) -> str | None:
    """The id of the key this database's checkpoints are signed with, if one is known."""
    found = conn.execute(select(server_settings.c.value)
                         .where(server_settings.c.key == KEY_SETTING)).scalar_one_or_none()
    if found is not None:
        return str(found)
    newest = conn.execute(select(audit_checkpoints.c.key_id)
                          .order_by(audit_checkpoints.c.seq.desc()).limit(1)).scalar_one_or_none()
    return str(newest) if newest is not None else None


def _foreign(mine: str, theirs: str) -> PermanentError:
    return PermanentError(
        f"this server's audit signing key {mine} is not the key {theirs} that signs this "
        f"database's audit checkpoints; every server of one database must share one key: set "
        f"{KEY_ENV} (or `<data dir>/{KEY_FILE}`) to the same Ed25519 key on each",
        keyId=mine, registeredKeyId=theirs)


def enforce_key(services: Services) -> str:
    """At startup: record this server's key id as the database's if it has none; refuse
    (PermanentError) a key other than the one recorded. Returns the key id."""
    mine = key_id(services)
    for _attempt in range(2):
        with services.db.connect() as conn:
            theirs = registered_key(conn)
        if theirs is not None:
            if theirs != mine:
                raise _foreign(mine, theirs)
            return mine
        try:
            with services.transaction() as conn:
                conn.execute(insert(server_settings).values(key=KEY_SETTING, value=mine))
            return mine
        except IntegrityError:
            continue  # another server recorded its key at the same moment: compare with it
    raise PermanentError("could not record the audit signing key id")  # pragma: no cover


def checkpoint_json(row: Any) -> dict[str, Any]:
    at = utc(row.at) or row.at
    return {"seq": row.seq, "hash": row.hash, "at": at.isoformat(), "keyId": row.key_id,
            "signature": row.signature}


def latest_checkpoint(services: Services) -> dict[str, Any] | None:
    with services.db.connect() as conn:
        row = conn.execute(select(audit_checkpoints)
                           .order_by(audit_checkpoints.c.seq.desc()).limit(1)).first()
    return checkpoint_json(row) if row is not None else None


def _since(conn: Connection, seq: int, batch: int = 5000) -> Iterator[AuditEntry]:
    while True:
        chunk = audit.entries(conn, after=seq, limit=batch)
        yield from chunk
        if len(chunk) < batch:
            return
        seq = chunk[-1].seq


def _check_segment(conn: Connection, last: Any) -> None:
    """Refuse to sign a head that does not follow from the last signed one."""
    previous_seq, previous_hash = (last.seq, last.hash) if last is not None else (0, GENESIS)
    for entry in _since(conn, previous_seq):
        expected = entry_hash(seq=entry.seq, at=entry.at, actor=entry.actor,
                              action=entry.action, object_type=entry.object_type,
                              object_id=entry.object_id, before=entry.before,
                              after=entry.after, prev_hash=entry.prev_hash)
        if (entry.seq != previous_seq + 1 or entry.prev_hash != previous_hash
                or expected != entry.hash):
            raise Conflict(f"the audit chain is broken at entry {entry.seq}; not signing it "
                           "(run `infrastream audit verify`)", brokenAt=entry.seq)
        previous_seq, previous_hash = entry.seq, entry.hash


def checkpoint(services: Services) -> dict[str, Any] | None:
    """Sign the chain head if it moved since the last checkpoint; None when there is nothing
    new to sign (or a concurrent caller just signed the same head)."""
    key = private_key(services)
    signer_id = key_id_of(key.public_key())
    audit.settle(services.db)
    try:
        with services.transaction() as conn:
            head = conn.execute(select(audit_log.c.seq, audit_log.c.hash)
                                .order_by(audit_log.c.seq.desc()).limit(1)).first()
            last = conn.execute(select(audit_checkpoints.c.seq, audit_checkpoints.c.hash)
                                .order_by(audit_checkpoints.c.seq.desc()).limit(1)).first()
            if head is None or (last is not None and last.seq >= head.seq):
                return None
            registered = registered_key(conn)
            if registered is not None and registered != signer_id:
                raise _foreign(signer_id, registered)
            _check_segment(conn, last)
            at = utc(services.now()) or services.now()
            signature = key.sign(checkpoint_payload(head.seq, head.hash, at.isoformat()))
            values = {"seq": head.seq, "hash": head.hash, "at": at, "key_id": signer_id,
                      "signature": base64.b64encode(signature).decode()}
            conn.execute(insert(audit_checkpoints).values(**values))
    except IntegrityError:
        return None
    return {"seq": head.seq, "hash": head.hash, "at": at.isoformat(), "keyId": signer_id,
            "signature": values["signature"]}
