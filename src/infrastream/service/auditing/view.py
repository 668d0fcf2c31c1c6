"""Reading and verifying the audit trail for the faces."""

from __future__ import annotations

from typing import Any

from ..context import Services
from . import trail as audit


def list_entries(services: Services, *, limit: int = 100, before: int | None = None,
                 object_type: str | None = None,
                 object_id: str | None = None) -> list[dict[str, Any]]:
    with services.db.connect() as conn:
        rows = audit.entries(conn, after=before or 0, limit=limit, object_type=object_type,
                             object_id=object_id, newest_first=True)
    return [entry.to_json() for entry in rows]


def verify(services: Services) -> dict[str, Any]:
    with services.db.connect() as conn:
        verdict = audit.verify(conn)
    return {"ok": verdict.ok, "entries": verdict.entries, "brokenAt": verdict.broken_at,
            "reason": verdict.reason or "the chain is intact"}
