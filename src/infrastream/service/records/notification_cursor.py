"""The audit cursor of the notifications: up to which audit entry they were told.

The engine's notification pass turns the audit entries after the cursor (`server_settings`,
`notifications-audit-cursor`, an `audit_log.seq`) into notifications and moves it. While no
subscription exists the pass does nothing at all (nobody would hear), so the cursor stays
where it was; the subscription that ends such a spell moves it to the newest entry in its
own transaction (`skip_to_newest`), so it is not followed by a burst of what happened
before anybody listened. (Entries still waiting for the audit chainer then get a larger
`seq`; the pass also tells a subscription nothing older than itself.)
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from infrastream.store.tables import audit_log, server_settings

KEY = "notifications-audit-cursor"

_READ = select(server_settings.c.value).where(server_settings.c.key == KEY)
_MOVE = update(server_settings).where(server_settings.c.key == KEY)


def read(conn: Connection) -> int | None:
    """Where the cursor is (None: never set)."""
    value = conn.execute(_READ).scalar()
    return None if value is None else int(value)


def move(conn: Connection, seq: int, *, exists: bool = True) -> None:
    """Set the cursor to `seq` (`exists`: the caller read it, so the row is there; else it
    is written whether or not another transaction just wrote it)."""
    if exists:
        conn.execute(_MOVE.values(value=str(seq)))
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(server_settings).values(key=KEY, value=str(seq))
    conn.execute(statement.on_conflict_do_update(index_elements=[server_settings.c.key],
                                                 set_={"value": statement.excluded.value}))


def skip_to_newest(conn: Connection) -> None:
    """Move the cursor to the newest audit entry: what came before is not told."""
    move(conn, conn.execute(select(func.max(audit_log.c.seq))).scalar() or 0, exists=False)
