"""The id of a row an INSERT just created, typed (SQLAlchemy's is Optional by design)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult


def inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover - only for non-INSERT statements
        raise RuntimeError("the statement inserted no row")
    return int(key[0])
