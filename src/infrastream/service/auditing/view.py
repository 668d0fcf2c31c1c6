"""Reading and verifying the audit trail for the faces: the read models of the trail."""

from __future__ import annotations

from typing import Any

from infrastream.domain.inputs import valid_id

from ..context import Services
from ..readmodel import ReadModel
from . import trail as audit


class AuditEntryView(ReadModel):
    """One entry of the hash-chained trail."""

    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


class CheckpointView(ReadModel):
    """A signed chain head: entry `seq` had `hash`, signed at `at` with key `keyId`."""

    seq: int
    hash: str
    at: str
    key_id: str
    signature: str
    """Base64 Ed25519 signature of the canonical JSON `{seq, hash, at}`."""


class CheckpointResult(ReadModel):
    created: bool
    checkpoint: CheckpointView | None


class VerifyReport(ReadModel):
    """The whole trail checked: the hash chain and every signed checkpoint."""

    ok: bool
    entries: int
    checkpoints: int | None = None
    broken_at: int | None
    reason: str
    problems: list[str] = []
    waiting: int = 0
    """Entries committed after verification linked the chain, still waiting for the chainer:
    not in the chain yet, so neither verified nor a problem (the next check covers them)."""


class VerifyProgress(ReadModel):
    """How far the verification running in this server has got (entries of the chain)."""

    running: bool
    done: int = 0
    total: int = 0


def list_entries(services: Services, *, limit: int = 100, before: int | None = None,
                 object_type: str | None = None,
                 object_id: str | None = None) -> list[AuditEntryView]:
    valid_id("before", before)
    audit.settle(services.db)
    with services.db.connect() as conn:
        rows = audit.entries(conn, after=before or 0, limit=limit, object_type=object_type,
                             object_id=object_id, newest_first=True)
    return [AuditEntryView.model_validate(entry.to_json()) for entry in rows]


def verify(services: Services) -> VerifyReport:
    audit.settle(services.db)
    with services.db.connect() as conn:
        verdict = audit.verify(conn)
    return VerifyReport(ok=verdict.ok, entries=verdict.entries, broken_at=verdict.broken_at,
                        reason=verdict.reason or "the chain is intact")
