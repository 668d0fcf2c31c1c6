"""Webhook deliveries from a connected Git host: verified, deduplicated, recorded, acted on.

`receive` is what `POST /api/v1/scm/{connection}/webhook` calls (no bearer token: the
delivery's signature or secret token authenticates it). In one transaction it records the
delivery and everything the event causes, so a delivery is either fully taken or not at all:

    too large                  TooLarge (413), recorded as refused
    unsigned or mis-signed     Unauthenticated (401), recorded and audited as refused
    signed but unreadable      Invalid, recorded as invalid
    a delivery id seen before  `duplicate`: nothing is done again
    nothing names the repo     `ignored`, with the reason (also events the gate does not use)
    otherwise                  `accepted`: pull request heads, merges (see `pull_requests`,
                               `merges`), audited with the SCM, the delivery id and the author

Only verified ids are deduplicated, so a forged delivery can never block the real one. The
engine is woken afterwards; statuses go out through the outbox, never from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from infrastream.domain.errors import Invalid, TooLarge, Unauthenticated
from infrastream.domain.pull_request_gate import HeadState
from infrastream.domain.roles import scm_actor
from infrastream.manifests import Application
from infrastream.scm import (
    Delivery,
    MergeGroupAction,
    MergeGroupEvent,
    PingEvent,
    PullRequestAction,
    PullRequestEvent,
    PushEvent,
)
from infrastream.store.clock import utc
from infrastream.store.tables import scm_deliveries

from . import manifest_checks, merges, pull_requests, telemetry
from .auditing import trail as audit
from .context import Services
from .records.manifests import current_bundle
from .records.read_model import ReadModel
from .scm_connections import connected

MAX_BODY = 5 * 1024 * 1024
"""Bytes a delivery may have (GitHub caps payloads at 25 MB, but a gate event is small)."""
ID_HEADERS = ("x-github-delivery", "x-gitlab-event-uuid")
EVENT_HEADERS = ("x-github-event", "x-gitlab-event")
DEADLOCK = "40P01"
DEADLOCK_RETRIES = 3
QUEUED_PR = re.compile(r"/pr-(\d+)-")
"""GitHub's merge queue names a group's branch `gh-readonly-queue/<base>/pr-<N>-<sha>`."""


class Receipt(ReadModel):
    delivery: str
    outcome: str
    """accepted, ignored or duplicate."""
    reason: str = ""
    actions: list[str] = []


def receive(services: Services, connection: str, headers: Mapping[str, str], body: bytes, *,
            complete: bool = True, client: str | None = None) -> Receipt:
    """Take one delivery (`complete` False: the body was cut at MAX_BODY bytes)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    claimed = next((lowered[h] for h in ID_HEADERS if lowered.get(h)), "")[:100]
    event_name = next((lowered[h] for h in EVENT_HEADERS if lowered.get(h)), "")[:64]
    scm = connected(services, connection)
    if not complete or len(body) > MAX_BODY:
        reason = f"the delivery is larger than {MAX_BODY // (1024 * 1024)} MiB"
        _refuse(services, connection, claimed, event_name, "refused", reason, client,
                audited=False)
        raise TooLarge(reason, limit=MAX_BODY)
    try:
        delivery = scm.provider.parse_webhook(headers, body)
    except Unauthenticated as exc:
        _refuse(services, connection, claimed, event_name, "refused", exc.reason, client,
                audited=True)
        raise
    except Invalid as exc:
        _refuse(services, connection, claimed, event_name, "invalid", exc.reason, client,
                audited=False)
        raise
    with services.db.connect() as conn:
        if _seen(conn, connection, delivery.delivery_id):
            telemetry.WEBHOOKS.labels("duplicate").inc()
            return Receipt(delivery=delivery.delivery_id, outcome="duplicate",
                           reason="this delivery was received before; nothing was done again")
    try:
        outcome, reason, actions = _take(services, connection, delivery)
    except IntegrityError:
        with services.db.connect() as conn:
            if not _seen(conn, connection, delivery.delivery_id):
                raise
        telemetry.WEBHOOKS.labels("duplicate").inc()
        return Receipt(delivery=delivery.delivery_id, outcome="duplicate",
                       reason="this delivery was received before; nothing was done again")
    if actions:
        services.notify()
    telemetry.WEBHOOKS.labels(outcome).inc()
    return Receipt(delivery=delivery.delivery_id, outcome=outcome, reason=reason,
                   actions=actions)


def _take(services: Services, connection: str,
          delivery: Delivery) -> tuple[str, str, list[str]]:
    """Record the delivery and act on it in one transaction; a deadlock with the engine
    (PostgreSQL chose this transaction to abort) is retried, as nothing was committed."""
    for attempt in range(DEADLOCK_RETRIES):
        now = services.now()
        try:
            with services.transaction() as conn:
                outcome, reason, actions = _act(services, conn, connection, delivery, now)
                conn.execute(insert(scm_deliveries).values(
                    connection=connection, delivery_id=delivery.delivery_id,
                    claimed_id=delivery.delivery_id[:100], event=delivery.event_name[:64],
                    repository=delivery.repository, sender=_sender(delivery),
                    outcome=outcome, reason=reason[:2000], received_at=now))
            return outcome, reason, actions
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != DEADLOCK or \
                    attempt == DEADLOCK_RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _act(services: Services, conn: Connection, connection: str, delivery: Delivery,
         now: datetime) -> tuple[str, str, list[str]]:
    event = delivery.event
    if event is None:
        return "ignored", delivery.ignored, []
    if isinstance(event, PingEvent):
        return "accepted", "ping: the webhook URL and secret work", []
    manifests = _manifest_sources(services, conn, connection, event, now)
    apps = [a for a in current_bundle(services, conn).applications.values()
            if a.spec.source is not None and a.spec.source.scm == connection
            and a.spec.source.repository == event.repository]
    if not apps:
        if manifests:
            return "accepted", "", manifests
        return "ignored", (f"no Application or manifest source names {event.repository} "
                           f"on {connection}"), []
    actor = scm_actor(connection).name
    cause: dict[str, Any] = {"scm": connection, "delivery": delivery.delivery_id,
                             "event": delivery.event_name, "repository": event.repository}
    if isinstance(event, PullRequestEvent):
        cause.update(pullRequest=event.number, author=event.author, sender=event.actor)
        outcome, reason, done = _pull_request(conn, connection, event, apps, cause, actor, now)
        return outcome, reason, manifests + done
    if isinstance(event, PushEvent):
        cause.update(pusher=event.pusher, sha=event.after)
        if event.branch is None or event.deleted:
            return "ignored", f"{event.ref} {'deleted' if event.deleted else 'is no branch'}", []
        done, why = merges.record_push(conn, connection=connection, event=event, apps=apps,
                                       cause=cause, actor=actor, now=now)
        done = manifests + done
        return ("accepted", "", done) if done else ("ignored", why, [])
    assert isinstance(event, MergeGroupEvent)
    cause.update(mergeGroup=event.head_ref, sha=event.head_sha)
    if event.action is MergeGroupAction.DESTROYED:
        done = pull_requests.close_heads(
            conn, connection=connection, repository=event.repository, ref=event.head_ref,
            sha=event.head_sha, state=HeadState.DESTROYED, reason=event.reason or "removed",
            cause=cause, actor=actor, now=now)
        return "accepted", "" if done else "no run of this merge group is open", done
    queued = QUEUED_PR.search(event.head_ref)
    done = pull_requests.open_head(
        conn, connection=connection, repository=event.repository,
        kind=pull_requests.MERGE_GROUP, number=int(queued.group(1)) if queued else None,
        ref=event.head_ref, sha=event.head_sha, base_branch=event.base_ref.removeprefix(
            "refs/heads/"), head_branch=event.head_ref.removeprefix("refs/heads/"),
        author="", title=f"merge group for {event.base_ref.removeprefix('refs/heads/')}",
        web_url="", apps=apps, cause=cause, actor=actor, now=now)
    return "accepted", "", done


def _pull_request(conn: Connection, connection: str, event: PullRequestEvent,
                  apps: list[Application], cause: dict[str, Any], actor: str,
                  now: datetime) -> tuple[str, str, list[str]]:
    ref = pull_requests.pull_ref(event.number)
    if event.action in (PullRequestAction.CLOSED, PullRequestAction.MERGED):
        merged = event.action is PullRequestAction.MERGED
        done = pull_requests.close_heads(
            conn, connection=connection, repository=event.repository, ref=ref, sha=None,
            state=HeadState.MERGED if merged else HeadState.CLOSED,
            reason="merged" if merged else "the pull request was closed", cause=cause,
            actor=actor, now=now)
        return "accepted", "" if done else f"{ref} has no open run", done
    done = pull_requests.open_head(
        conn, connection=connection, repository=event.repository,
        kind=pull_requests.PULL_REQUEST, number=event.number, ref=ref, sha=event.head_sha,
        base_branch=event.base_branch, head_branch=event.head_branch, author=event.author,
        title=event.title, web_url=event.web_url, apps=apps, cause=cause, actor=actor,
        now=now)
    return "accepted", "", done


def _manifest_sources(services: Services, conn: Connection, connection: str, event: Any,
                      now: datetime) -> list[str]:
    """What the event means for the manifest sources in its repository: a check of a pull
    request's head, or a sync after a push to the source's branch."""
    if isinstance(event, PullRequestEvent):
        return manifest_checks.on_pull_request(
            conn, connection=connection, event=event,
            public_url=connected(services, connection).public_url, now=now)
    if isinstance(event, PushEvent) and event.branch is not None:
        return manifest_checks.on_push(conn, connection=connection, event=event, now=now)
    return []


def _seen(conn: Connection, connection: str, delivery_id: str) -> bool:
    return conn.execute(select(scm_deliveries.c.id).where(
        (scm_deliveries.c.connection == connection)
        & (scm_deliveries.c.delivery_id == delivery_id))).first() is not None


def _refuse(services: Services, connection: str, claimed: str, event: str, outcome: str,
            reason: str, client: str | None, *, audited: bool) -> None:
    telemetry.WEBHOOKS.labels(outcome).inc()
    now = services.now()
    with services.transaction() as conn:
        conn.execute(insert(scm_deliveries).values(
            connection=connection, delivery_id=None, claimed_id=claimed, event=event,
            repository=None, sender=None, outcome=outcome, reason=reason[:2000],
            received_at=now))
        if audited:
            audit.record(conn, at=now, actor="unauthenticated", action="scm.delivery.refused",
                         object_type="scm-connection", object_id=connection,
                         after={"scm": connection, "delivery": claimed, "event": event,
                                "reason": reason, "client": client})


def _sender(delivery: Delivery) -> str | None:
    event = delivery.event
    if isinstance(event, PullRequestEvent):
        return event.actor[:100]
    if isinstance(event, PushEvent):
        return event.pusher[:100]
    return None


class WebhookDelivery(ReadModel):
    id: int
    connection: str
    delivery: str
    event: str
    repository: str | None
    sender: str | None
    outcome: str
    """accepted, ignored, refused (signature, secret or size) or invalid."""
    reason: str
    received_at: datetime


def recent(services: Services, connection: str | None = None,
           limit: int = 50) -> list[WebhookDelivery]:
    query = select(scm_deliveries).order_by(scm_deliveries.c.id.desc()).limit(limit)
    if connection:
        query = query.where(scm_deliveries.c.connection == connection)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    return [WebhookDelivery(id=r.id, connection=r.connection, delivery=r.claimed_id,
                            event=r.event, repository=r.repository, sender=r.sender,
                            outcome=r.outcome, reason=r.reason,
                            received_at=utc(r.received_at) or r.received_at) for r in rows]
