"""Who hears what: subscriptions of notification channels to events, by role, team or person.

A subscription says: on channel C, tell about events of track T (every track when none) that
concern a role, a team, a person, or everyone, of the kinds listed (every kind when none).
Admins and the platform team manage them (`roles.MANAGE_NOTIFICATIONS`), every change is
audited, and what a subscription names must exist: the channel, the role (built in or named
by a manifest), the team, the user, the event kinds. `channels_for` is the matching rule the
engine's notification pass applies to each notification it records. A subscription hears
what happens from its creation on: while none exists the pass records nothing, and the first
one moves the pass's audit cursor past what came before (`records.notification_cursor`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.notifications import EventKind, Notification
from infrastream.domain.roles import MANAGE_NOTIFICATIONS, Principal, declared_roles, unknown_roles
from infrastream.store.clock import utc
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import (
    notification_channels,
    notification_subscriptions,
    teams,
    users,
)

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records import notification_cursor
from .records.manifests import current_bundle


class Selector(StrEnum):
    ROLE = "role"
    TEAM = "team"
    USER = "user"
    EVERYONE = "everyone"


EVERYONE_VALUE = "*"


class SubscriptionView(ReadModel):
    id: int
    channel: str
    track: str | None
    """The track whose events it hears; None: every track."""
    selector: Selector
    value: str
    """The role, team or user name (`*` for everyone)."""
    events: list[EventKind]
    """The kinds it hears; empty: every kind."""
    created_at: str
    created_by: str


def _view(row: Any) -> SubscriptionView:
    at = utc(row.created_at)
    return SubscriptionView(id=row.id, channel=row.channel, track=row.track,
                            selector=Selector(row.selector), value=row.value,
                            events=[EventKind(e) for e in row.events],
                            created_at=at.isoformat() if at else "", created_by=row.created_by)


def parse_events(events: Iterable[str]) -> list[EventKind]:
    found: list[EventKind] = []
    known = [k.value for k in EventKind]
    for text in events:
        name = text.strip()
        if not name:
            continue
        if name not in known:
            raise Invalid(f"`{name}` is not an event kind (" + ", ".join(known) + ")")
        if EventKind(name) not in found:
            found.append(EventKind(name))
    return found


def _check_target(services: Services, conn: Connection, selector: Selector, value: str) -> str:
    if selector is Selector.EVERYONE:
        return EVERYONE_VALUE
    if not value:
        raise Invalid(f"a {selector.value} subscription names the {selector.value}")
    if selector is Selector.ROLE:
        if unknown_roles([value], declared_roles(current_bundle(services, conn))):
            raise NotFound(f"role `{value}` is neither built in nor named by a manifest")
    elif selector is Selector.TEAM:
        if conn.execute(select(teams.c.name).where(teams.c.name == value)).first() is None:
            raise NotFound(f"team `{value}` does not exist")
    elif conn.execute(select(users.c.name).where(users.c.name == value)).first() is None:
        raise NotFound(f"user `{value}` does not exist")
    return value


def _existing(conn: Connection, channel: str, track: str | None, selector: Selector,
              value: str) -> int | None:
    c = notification_subscriptions.c
    same_track = c.track.is_(None) if track is None else c.track == track
    return conn.execute(select(c.id).where(
        (c.channel == channel) & same_track & (c.selector == selector.value)
        & (c.value == value))).scalar()


@refusals.audited("notification.subscribe", "notification-channel", lambda a: a["channel"])
def subscribe(services: Services, principal: Principal, channel: str, *, selector: str,
              value: str = "", track: str | None = None,
              events: Sequence[str] = ()) -> SubscriptionView:
    require(principal, MANAGE_NOTIFICATIONS, "manage notification subscriptions")
    try:
        chosen = Selector(selector)
    except ValueError:
        raise Invalid(f"`{selector}` is not a selector (role, team, user or everyone)") from None
    kinds = parse_events(events)
    now = services.now()
    try:
        with services.transaction() as conn:
            if conn.execute(select(notification_channels.c.name).where(
                    notification_channels.c.name == channel)).first() is None:
                raise NotFound(f"notification channel `{channel}` does not exist")
            if track is not None and track not in current_bundle(services, conn).tracks:
                raise NotFound(f"track `{track}` does not exist")
            target = _check_target(services, conn, chosen, value.strip())
            if _existing(conn, channel, track, chosen, target) is not None:
                # the unique constraint cannot see it when `track` is NULL (NULLs differ)
                raise IntegrityError("duplicate subscription", None, ValueError())
            if conn.execute(select(notification_subscriptions.c.id).limit(1)).first() is None:
                # the first one: nobody heard what happened so far, nor will (see the cursor)
                notification_cursor.skip_to_newest(conn)
            new_id = inserted_id(conn.execute(insert(notification_subscriptions).values(
                channel=channel, track=track, selector=chosen.value, value=target,
                events=[k.value for k in kinds], created_at=now, created_by=principal.name)))
            audit.record(conn, at=now, actor=principal.name, action="notification.subscribe",
                         object_type="notification-channel", object_id=channel,
                         after={"id": new_id, "track": track, "selector": chosen.value,
                                "value": target, "events": [k.value for k in kinds]})
    except IntegrityError:
        raise Conflict(f"channel `{channel}` already has this subscription") from None
    return SubscriptionView(id=new_id, channel=channel, track=track, selector=chosen,
                            value=target, events=kinds, created_at=now.isoformat(),
                            created_by=principal.name)


def list_subscriptions(services: Services, principal: Principal) -> list[SubscriptionView]:
    require(principal, MANAGE_NOTIFICATIONS, "see notification subscriptions")
    with services.db.connect() as conn:
        rows = conn.execute(select(notification_subscriptions)
                            .order_by(notification_subscriptions.c.id)).all()
    return [_view(row) for row in rows]


@refusals.audited("notification.unsubscribe", "notification-subscription",
                  lambda a: str(a["subscription_id"]))
def unsubscribe(services: Services, principal: Principal,
                subscription_id: int) -> SubscriptionView:
    require(principal, MANAGE_NOTIFICATIONS, "manage notification subscriptions")
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(select(notification_subscriptions).where(
            notification_subscriptions.c.id == subscription_id)).first()
        if row is None:
            raise NotFound(f"notification subscription {subscription_id} does not exist")
        conn.execute(delete(notification_subscriptions).where(
            notification_subscriptions.c.id == subscription_id))
        view = _view(row)
        audit.record(conn, at=now, actor=principal.name, action="notification.unsubscribe",
                     object_type="notification-channel", object_id=row.channel,
                     before=view.model_dump(mode="json"))
    return view


# -- the matching rule ----------------------------------------------------------------------

def read_all(conn: Connection) -> list[Any]:
    return list(conn.execute(select(notification_subscriptions)
                             .order_by(notification_subscriptions.c.id)))


def matches(row: Any, notification: Notification) -> bool:
    """Whether a subscription hears a notification: its track (or every track), its kinds (or
    every kind), and its selector (a role asked, the owning team, a recipient, everyone)."""
    if row.track is not None and row.track != notification.track:
        return False
    if row.events and notification.kind.value not in row.events:
        return False
    selector = row.selector
    if selector == Selector.ROLE:
        return bool(row.value in notification.roles)
    if selector == Selector.TEAM:
        return bool(notification.team is not None and row.value == notification.team)
    if selector == Selector.USER:
        return any(r.name == row.value for r in notification.recipients)
    return bool(selector == Selector.EVERYONE)


def channels_for(subscriptions: Iterable[Any], notification: Notification) -> list[str]:
    """The channels to deliver a notification on (each once, in subscription order)."""
    return list(dict.fromkeys(row.channel for row in subscriptions
                              if matches(row, notification)))
