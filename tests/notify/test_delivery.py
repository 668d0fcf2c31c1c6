"""Notifications reach real receivers on loopback: Slack's Block Kit, Teams' Adaptive Card,
a signed CloudEvents webhook, and an email through a real SMTP server; a receiver that is
down gets the message once it is back, and no secret is ever shown."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from receivers import HttpReceiver
from sqlalchemy import select

from infrastream.api.app import create_app
from infrastream.domain.errors import Forbidden
from infrastream.domain.notifications import EventKind, Notification, Recipient
from infrastream.domain.roles import Principal
from infrastream.service import notification_channels as channels
from infrastream.service import notification_outbox as outbox
from infrastream.service.context import Services
from infrastream.service.engine.loop import Engine
from infrastream.service.engine.notify_job import deliver_due
from infrastream.service.identity import bootstrap_admin
from infrastream.store.tables import audit_log, notification_channels

PAT = Principal("pat", frozenset({"platform"}))
DEV = Principal("dev", frozenset({"developer"}))
SECRET = "whsec_" + base64.b64encode(b"a-signing-key-of-32-bytes-length").decode()
START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LINK = "https://infrastream.example.com/portal/releases/shop/v7"


def waiting(key: str = "wait:shop/v7:staging:qa") -> Notification:
    return Notification(
        kind=EventKind.APPROVAL_WAITING, key=key, title="shop/v7 waits for qa in Staging",
        track="shop", occurred_at=START, release="shop/v7", stage="Staging",
        waiting_for=("approval by qa (0 of 1)", "soak of 30s"), roles=("qa",), link=LINK,
        recipients=(Recipient("quinn", "quinn@example.com"),))


def record(services: Services, notification: Notification, *names: str) -> int | None:
    with services.transaction() as conn:
        return outbox.record(conn, notification, names, services.now())


class Smtp:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def verify(received: Any, secret: str) -> None:
    """What a receiver does (README, "Verifying a webhook")."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = (f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}."
              .encode() + received.body)
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in received.headers["webhook-signature"].split()]
    assert any(hmac.compare_digest(expected, s) for s in offered)


def test_each_kind_of_channel_gets_the_notification_in_its_own_shape(
        services: Services, receiver: HttpReceiver) -> None:
    handler = Smtp()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(handler, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        channels.add_channel(services, PAT, "slack", "slack",
                             {"webhook_url": receiver.url("/services/T0/B0/slack-secret")})
        channels.add_channel(services, PAT, "teams", "teams",
                             {"webhook_url": receiver.url("/workflows/teams-secret")})
        channels.add_channel(services, PAT, "hook", "webhook",
                             {"url": receiver.url("/hook"), "secret": SECRET})
        channels.add_channel(services, PAT, "mail", "email", {
            "smtp_host": "127.0.0.1", "smtp_port": port, "from": "infrastream@example.com",
            "to": ["releases@example.com"]})
        assert record(services, waiting(), "slack", "teams", "hook", "mail") is not None
        assert record(services, waiting(), "slack") is None  # the same key: nothing new
        for name in ("slack", "teams", "hook", "mail"):
            deliver_due(services, name)
    finally:
        smtp.stop()

    by_path = {r.path: r for r in receiver.requests}
    assert len(receiver.requests) == 3
    slack = json.loads(by_path["/services/T0/B0/slack-secret"].body)
    assert "shop/v7 waits for qa in Staging" in slack["text"] and LINK in slack["text"]
    assert slack["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "emoji": True, "text": "shop/v7 waits for qa in Staging"}}
    fields = [f["text"] for f in slack["blocks"][1]["fields"]]
    assert "*Release*\nshop/v7" in fields and "*Stage*\nStaging" in fields
    assert slack["blocks"][2]["text"]["text"] == (
        "*Waiting for*\n• approval by qa (0 of 1)\n• soak of 30s")
    assert slack["blocks"][3]["elements"][0]["url"] == LINK

    teams = json.loads(by_path["/workflows/teams-secret"].body)
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "shop/v7 waits for qa in Staging"
    assert {"title": "Stage", "value": "Staging"} in card["body"][1]["facts"]
    assert card["body"][3]["text"] == "- approval by qa (0 of 1)\n- soak of 30s"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in Infrastream",
                                "url": LINK}]

    hook = by_path["/hook"]
    verify(hook, SECRET)
    assert hook.headers["ce-specversion"] == "1.0"
    assert hook.headers["ce-type"] == "dev.infrastream.approval.waiting"
    assert hook.headers["ce-id"] == hook.headers["webhook-id"]
    assert hook.headers["ce-subject"] == "shop/v7"
    assert datetime.fromisoformat(hook.headers["ce-time"]) == START
    assert abs(int(hook.headers["webhook-timestamp"]) - time.time()) < 300
    assert Notification.from_json(json.loads(hook.body)) == waiting()

    [(to, mail)] = handler.mails
    assert sorted(to) == ["quinn@example.com", "releases@example.com"]
    assert mail["Subject"] == "shop/v7 waits for qa in Staging"
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    body = text.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "- approval by qa (0 of 1)" in body and LINK in body
    assert f'href="{LINK}"' in html.get_payload(decode=True).decode()  # type: ignore[union-attr]

    done = outbox.list_deliveries(services, PAT, outcome="delivered")
    assert sorted(d.channel for d in done) == ["hook", "mail", "slack", "teams"]
    assert {d.title for d in done} == {"shop/v7 waits for qa in Staging"}


def test_a_receiver_that_is_down_gets_the_message_once_it_is_back(
        services: Services, receiver: HttpReceiver) -> None:
    clock = [START]
    services.now = lambda: clock[0]
    channels.add_channel(services, PAT, "slack", "slack",
                         {"webhook_url": receiver.url("/services/secret-path")})
    receiver.status, receiver.answer = 503, b"down for maintenance"
    record(services, waiting("one"), "slack")
    record(services, waiting("two"), "slack")
    deliver_due(services, "slack")
    [second, first] = outbox.list_deliveries(services, PAT, channel="slack")
    assert (first.outcome, first.attempts) == ("pending", 1)
    assert "answered 503 down for maintenance" in first.last_error
    assert "secret-path" not in first.last_error
    assert first.next_attempt_at == START + timedelta(seconds=2)
    assert second.next_attempt_at == START + timedelta(seconds=2)  # held with it

    receiver.status, receiver.retry_after = 429, "120"
    clock[0] = START + timedelta(seconds=2)
    deliver_due(services, "slack")
    first = outbox.list_deliveries(services, PAT, channel="slack")[1]
    assert first.attempts == 2 and "rate limited" in first.last_error
    assert first.next_attempt_at == clock[0] + timedelta(seconds=120)  # as Slack asked

    receiver.status, receiver.retry_after, receiver.answer = 200, None, b"ok"
    clock[0] += timedelta(seconds=60)
    deliver_due(services, "slack")
    assert receiver.requests == []  # not due yet
    clock[0] += timedelta(seconds=60)
    deliver_due(services, "slack")
    assert len(receiver.requests) == 2
    shown = outbox.list_deliveries(services, PAT, channel="slack")
    assert [(d.outcome, d.attempts) for d in shown] == [("delivered", 1), ("delivered", 3)]

    receiver.status, receiver.answer = 404, b"no_service"
    record(services, waiting("three"), "slack")
    deliver_due(services, "slack")
    [gone] = outbox.list_deliveries(services, PAT, outcome="failed")
    assert gone.attempts == 1 and "answered 404 no_service" in gone.last_error


def test_channels_never_show_their_secrets_and_need_admin_or_platform(
        services: Services, receiver: HttpReceiver) -> None:
    secret_url = receiver.url("/services/T000/B000/XXXXSECRETXXXX")
    token = bootstrap_admin(services)
    assert token is not None
    client = TestClient(create_app(services), headers={"Authorization": f"Bearer {token}"})
    added = client.post("/api/v1/notification-channels", json={
        "kind": "slack", "name": "releases", "webhookUrl": secret_url})
    assert added.status_code == 201, added.text
    hook = client.post("/api/v1/notification-channels", json={
        "kind": "webhook", "name": "hook", "url": receiver.url("/h"), "secret": SECRET})
    assert hook.status_code == 201, hook.text
    assert added.json()["public"] == {"host": secret_url.split("/")[2]}
    listed = client.get("/api/v1/notification-channels")
    tested = client.post("/api/v1/notification-channels/releases/test")
    assert tested.json()["delivered"] is True and tested.json()["answer"] == "200 ok"
    receiver.status = 500
    failing = client.post("/api/v1/notification-channels/releases/test").json()
    assert failing["delivered"] is False and failing["retryable"] is True
    record(services, waiting(), "releases")
    deliver_due(services, "releases")
    shown = client.get("/api/v1/notification-deliveries", params={"outcome": "pending"})
    assert shown.json()[0]["attempts"] == 1
    bad = client.post("/api/v1/notification-channels", json={
        "kind": "teams", "name": "t", "webhookUrl": "ftp://nowhere"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json")
    with services.db.connect() as conn:
        stored = conn.execute(select(notification_channels)).all()
        trail = " ".join(json.dumps([r.before, r.after]) for r in conn.execute(
            select(audit_log)))
    for text in (added.text, hook.text, listed.text, tested.text, json.dumps(failing),
                 shown.text, trail, *(json.dumps(r.public) + r.settings for r in stored)):
        assert "XXXXSECRETXXXX" not in text and SECRET not in text
    assert '"webhookUrl": "<redacted>"' in trail
    with pytest.raises(Forbidden, match="needs the role admin or platform"):
        channels.add_channel(services, DEV, "x", "slack", {"webhook_url": secret_url})
    removed = client.delete("/api/v1/notification-channels/releases")
    assert removed.status_code == 200
    assert client.get("/api/v1/notification-channels/releases").status_code == 404


def test_the_running_engine_delivers_and_retries_by_itself(
        services: Services, receiver: HttpReceiver) -> None:
    channels.add_channel(services, PAT, "hook", "webhook",
                         {"url": receiver.url("/hook"), "secret": SECRET})
    engine = Engine(services, poll=0.2)
    engine.start()
    try:
        record(services, waiting(), "hook")
        services.notify()
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(receiver.requests) == 1
        verify(receiver.requests[0], SECRET)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and outbox.list_deliveries(
                services, PAT)[0].outcome != "delivered":
            time.sleep(0.05)
        assert outbox.list_deliveries(services, PAT)[0].outcome == "delivered"
    finally:
        engine.stop()
