"""Timestamps as the database returns them, made comparable.

SQLite hands back naive datetimes for `DateTime(timezone=True)` columns; PostgreSQL hands
back aware ones. Everything Infrastream stores is UTC, so both become aware UTC here.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)
