"""Which teams a person belongs to (the ownership rule of `domain.ownership` asks)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from infrastream.store.tables import team_members

_OF_USER = select(team_members.c.team).where(team_members.c.user == bindparam("user"))


def teams_of(conn: Connection, user: str) -> frozenset[str]:
    return frozenset(conn.execute(_OF_USER, {"user": user}).scalars())
