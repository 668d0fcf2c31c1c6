"""Whether anybody subscribed to notifications: who would be told that a promotion waits.

The engine's looks ask it every pass (`engine.notify_pass` rests while nobody subscribed); a
promotion request that waits for people asks it too: with nobody subscribed, the engine's pass
after it would have nothing to do (nothing moves until the approvals come, nobody to tell).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from infrastream.store.tables import notification_subscriptions

SUBSCRIBED = select(notification_subscriptions.c.id).exists()
_ANYBODY = select(SUBSCRIBED)


def anybody_subscribed(conn: Connection) -> bool:
    return bool(conn.execute(_ANYBODY).scalar())
