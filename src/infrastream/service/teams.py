"""Teams: the people who own a set of manifests together (`metadata.team`).

An admin creates a team with the handles that name it on the Git hosts (`@acme/payments` on
GitHub, `@acme/payments` on GitLab) and adds its members; the ownership rule then lets only
members change the team's manifests, manifest pull-request checks ask the team for review,
and `infrastream codeowners` writes the team's handle next to its files.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.roles import MANAGE_USERS, Principal
from infrastream.manifests.fields import is_dns_label
from infrastream.store.tables import team_members, teams, users

from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel

HOSTS = ("github", "gitlab")


class TeamView(ReadModel):
    name: str
    description: str
    handles: dict[str, str]
    """Git host → the handle naming the team there (`github: "@acme/payments"`)."""
    members: list[str]


def _handle(host: str, handle: str) -> str:
    text = handle.strip()
    if host not in HOSTS:
        raise Invalid(f"`{host}` is not a Git host (" + ", ".join(HOSTS) + ")")
    if not text.startswith("@") or len(text) > 200 or any(c.isspace() for c in text):
        raise Invalid(f"`{handle}` is not a {host} handle: write it as @org/team or @user")
    return text


def create_team(services: Services, principal: Principal, name: str, *,
                description: str = "", handles: dict[str, str] | None = None
                ) -> TeamView:
    require(principal, MANAGE_USERS, "manage teams")
    if not is_dns_label(name):
        raise Invalid(f"`{name}` is not a valid team name (lowercase letters, digits and `-`)")
    clean = {host: _handle(host, handle) for host, handle in (handles or {}).items()}
    now = services.now()
    try:
        with services.transaction() as conn:
            conn.execute(insert(teams).values(name=name, description=description[:200],
                                              handles=clean, created_at=now,
                                              created_by=principal.name))
            audit.record(conn, at=now, actor=principal.name, action="team.create",
                         object_type="team", object_id=name, after={"handles": clean})
    except IntegrityError:
        raise Conflict(f"team `{name}` already exists") from None
    return TeamView(name=name, description=description[:200], handles=clean, members=[])


def set_membership(services: Services, principal: Principal, team: str, user: str, *,
                   member: bool) -> TeamView:
    require(principal, MANAGE_USERS, "manage teams")
    now = services.now()
    with services.transaction() as conn:
        if conn.execute(select(teams.c.name).where(teams.c.name == team)).first() is None:
            raise NotFound(f"team `{team}` does not exist")
        if conn.execute(select(users.c.name).where(users.c.name == user)).first() is None:
            raise NotFound(f"user `{user}` does not exist")
        current = conn.execute(select(team_members.c.user).where(
            (team_members.c.team == team) & (team_members.c.user == user))).first()
        if member and current is None:
            conn.execute(insert(team_members).values(team=team, user=user))
        elif not member and current is not None:
            conn.execute(delete(team_members).where(
                (team_members.c.team == team) & (team_members.c.user == user)))
        else:
            return _team(conn, team)
        audit.record(conn, at=now, actor=principal.name,
                     action="team.add-member" if member else "team.remove-member",
                     object_type="team", object_id=team, after={"user": user})
        return _team(conn, team)


def list_teams(services: Services) -> list[TeamView]:
    with services.db.connect() as conn:
        names = conn.execute(select(teams.c.name).order_by(teams.c.name)).scalars().all()
        return [_team(conn, name) for name in names]


def _team(conn: Any, name: str) -> TeamView:
    row = conn.execute(select(teams).where(teams.c.name == name)).one()
    members = conn.execute(select(team_members.c.user).where(team_members.c.team == name)
                           .order_by(team_members.c.user)).scalars().all()
    return TeamView(name=row.name, description=row.description, handles=row.handles,
                    members=list(members))
