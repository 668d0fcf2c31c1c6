"""Notification channels: where notifications go (a Slack or Teams channel's webhook, SMTP
email, a signed webhook), added by an admin or the platform team.

A channel's settings are checked by its kind's adapter (`infrastream.notify`) and stored
encrypted as a whole with the key secret values use (`records.secret_values`): a Slack or
Teams webhook URL lets whoever knows it post to the channel, so it is a secret like the SMTP
password and the webhook's signing key. Nothing returned, logged or audited here contains
them; what may be shown (the receiver's host, the sender address, …) is kept beside the
ciphertext as `public`. `test` sends a test notification at once and reports the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from infrastream import notify
from infrastream.domain.errors import (
    BackendError,
    Conflict,
    Invalid,
    NotFound,
    PermanentError,
)
from infrastream.domain.notifications import EventKind, Notification, Recipient
from infrastream.domain.roles import MANAGE_NOTIFICATIONS, Principal
from infrastream.manifests.fields import is_dns_label
from infrastream.store.clock import utc
from infrastream.store.tables import notification_channels, users

from .auditing import trail as audit
from .context import Services
from .permissions import require
from .records.read_model import ReadModel
from .records.secret_values import fernet

SECRET_SETTINGS = frozenset({"webhook_url", "secret", "password"})
"""Settings that are never shown, audited or logged."""


class ChannelView(ReadModel):
    name: str
    kind: str
    """slack, teams, email or webhook."""
    public: dict[str, Any]
    """What may be shown of its settings: the receiver's host, the sender and fixed
    addresses of email; never a webhook URL, password or signing secret."""
    created_at: datetime
    created_by: str


class TestResult(ReadModel):
    channel: str
    kind: str
    delivered: bool
    answer: str
    """The receiver's answer (`200 ok`, `250 accepted …`) or why it did not take it."""
    retryable: bool = False
    """Whether the failure may pass by itself (the receiver is down, rate limits)."""


def add_channel(services: Services, principal: Principal, name: str, kind: str,
                settings: Mapping[str, Any]) -> ChannelView:
    require(principal, MANAGE_NOTIFICATIONS, "add notification channels")
    if not is_dns_label(name):
        raise Invalid(f"`{name[:80]}` is not a valid channel name: use at most 63 lowercase "
                      "letters, digits and `-`")
    given = {k: v for k, v in settings.items() if v not in (None, "", [])}
    try:
        shown = notify.public(kind, given)
        notify.build(kind, given).close()
    except PermanentError as exc:
        raise Invalid(f"the {kind[:20]} channel cannot work: {exc.reason}") from None
    ciphertext = fernet(services.data_dir).encrypt(json.dumps(given).encode()).decode()
    now = services.now()
    try:
        with services.transaction() as conn:
            conn.execute(insert(notification_channels).values(
                name=name, kind=kind, settings=ciphertext, public=shown, created_at=now,
                created_by=principal.name))
            audit.record(conn, at=now, actor=principal.name,
                         action="notification.channel.add", object_type="notification-channel",
                         object_id=name, after={"kind": kind, **shown, **{
                             _camel(k): "<redacted>" for k in given if k in SECRET_SETTINGS}})
    except IntegrityError:
        raise Conflict(f"a notification channel named `{name}` exists already "
                       "(delete it first)") from None
    return ChannelView(name=name, kind=kind, public=shown, created_at=now,
                       created_by=principal.name)


def list_channels(services: Services) -> list[ChannelView]:
    with services.db.connect() as conn:
        rows = conn.execute(_SHOWN.order_by(notification_channels.c.name)).all()
    return [_view(r) for r in rows]


def get_channel(services: Services, name: str) -> ChannelView:
    with services.db.connect() as conn:
        row = conn.execute(_SHOWN.where(notification_channels.c.name == name)).first()
    if row is None:
        raise NotFound(f"no notification channel `{name}`")
    return _view(row)


def remove_channel(services: Services, principal: Principal, name: str) -> ChannelView:
    """Delete the channel; what was still pending for it fails when its turn comes."""
    require(principal, MANAGE_NOTIFICATIONS, "remove notification channels")
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(_SHOWN.where(notification_channels.c.name == name)
                           .with_for_update()).first()
        if row is None:
            raise NotFound(f"no notification channel `{name}`")
        conn.execute(delete(notification_channels).where(notification_channels.c.name == name))
        audit.record(conn, at=now, actor=principal.name, action="notification.channel.remove",
                     object_type="notification-channel", object_id=name,
                     before={"kind": row.kind, **row.public})
    return _view(row)


def test_channel(services: Services, principal: Principal, name: str) -> TestResult:
    """Send a test notification to `name` now; the receiver's answer."""
    require(principal, MANAGE_NOTIFICATIONS, "test notification channels")
    now = services.now()
    with services.db.connect() as conn:
        kind, sender = open_sender(services, name, conn)
        email = conn.execute(select(users.c.email).where(users.c.name == principal.name)
                             ).scalar()
    sample = Notification(
        kind=EventKind.APPROVAL_WAITING, key=f"test:{name}:{now.isoformat()}",
        title=f"Test notification from Infrastream to {name}", track="test",
        occurred_at=now, waiting_for=("nothing: this is a test",),
        recipients=(Recipient(principal.name, email),), details={"Sent by": principal.name})
    try:
        answer, delivered, retryable = sender.send(sample), True, False
    except BackendError as exc:
        answer, delivered = exc.reason, False
        retryable = not isinstance(exc, PermanentError)
    finally:
        sender.close()
    with services.transaction() as conn:
        audit.record(conn, at=now, actor=principal.name, action="notification.channel.test",
                     object_type="notification-channel", object_id=name,
                     after={"delivered": delivered, "answer": answer[:300]})
    return TestResult(channel=name, kind=kind, delivered=delivered, answer=answer,
                      retryable=retryable)


def open_sender(services: Services, name: str,
                conn: Connection) -> tuple[str, notify.Sender]:
    """The channel's kind and a sender for it (NotFound, or PermanentError if its stored
    settings cannot be read or no longer work)."""
    row = conn.execute(select(notification_channels.c.kind, notification_channels.c.settings)
                       .where(notification_channels.c.name == name)).first()
    if row is None:
        raise NotFound(f"no notification channel `{name}`")
    try:
        settings = json.loads(fernet(services.data_dir).decrypt(row.settings.encode()))
    except InvalidToken:
        raise PermanentError("the channel's settings cannot be decrypted: is "
                             "INFRASTREAM_SECRET_KEY the key they were stored with?") from None
    return row.kind, notify.build(row.kind, settings)


def kinds(conn: Connection) -> dict[str, str]:
    """Channel name → kind."""
    return {r.name: r.kind for r in conn.execute(
        select(notification_channels.c.name, notification_channels.c.kind))}


_SHOWN = select(notification_channels.c.name, notification_channels.c.kind,
                notification_channels.c.public, notification_channels.c.created_at,
                notification_channels.c.created_by)


def _view(row: Any) -> ChannelView:
    return ChannelView(name=row.name, kind=row.kind, public=row.public,
                       created_at=utc(row.created_at) or row.created_at,
                       created_by=row.created_by)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
