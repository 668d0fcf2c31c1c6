"""Subscriptions and people's email addresses through the CLI, against a real server process:
an admin gives a QA engineer an address, subscribes a channel to what concerns QA, lists and
removes the subscription; what does not exist, or a caller without the role, is one error
line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from live_server import one_line_error
from sqlalchemy import create_engine, insert

from infrastream.store.database import sqlite_url
from infrastream.store.tables import notification_channels


def _channel(server, name: str) -> None:
    """A channel as the delivery side stores it (its settings are not this story's)."""
    engine = create_engine(sqlite_url(server.data_dir))
    with engine.begin() as conn:
        conn.execute(insert(notification_channels).values(
            name=name, kind="slack", settings="(ciphertext)", public={},
            created_at=datetime.now(UTC), created_by="admin"))
    engine.dispose()


def test_a_user_gets_an_email_address_at_creation_and_later(cli):
    assert cli("user", "create", "bea", "--role", "qa", "--email", "bea@example.com").code == 0
    shown = json.loads(cli("user", "get", "bea", "-o", "json").out)
    assert shown["email"] == "bea@example.com" and shown["roles"] == ["qa"]
    changed = cli("user", "set-email", "bea", "bea.qa@example.com")
    assert changed.code == 0 and "email bea.qa@example.com" in changed.out
    table = cli("user", "get", "bea").out
    assert "bea.qa@example.com" in table
    assert "no email address" in cli("user", "set-email", "bea", "--clear").out
    assert "body.email" in one_line_error(cli("user", "set-email", "bea", "nope"))
    assert "does not exist" in one_line_error(cli("user", "get", "nobody"))


def test_a_channel_is_subscribed_to_what_concerns_qa_then_unsubscribed(cli, server):
    refused = cli("notifications", "subscribe", "qa-slack", "--role", "qa")
    assert one_line_error(refused) == "error: notification channel `qa-slack` does not exist"
    _channel(server, "qa-slack")
    both = cli("notifications", "subscribe", "qa-slack", "--role", "qa", "--team", "x")
    assert "exactly one of --role, --team, --user and --everyone" in one_line_error(both)
    assert "role `wizard`" in one_line_error(
        cli("notifications", "subscribe", "qa-slack", "--role", "wizard"))
    assert "Input should be 'approval.waiting', 'approval.reminder'" in one_line_error(
        cli("notifications", "subscribe", "qa-slack", "--role", "qa", "--events",
            "approval.late"))

    made = cli("notifications", "subscribe", "qa-slack", "--role", "qa", "--events",
               "approval.waiting,approval.reminder")
    assert made.code == 0
    assert "qa-slack hears approval.waiting, approval.reminder for role qa on every track" \
        in made.out
    assert "already has this subscription" in one_line_error(
        cli("notifications", "subscribe", "qa-slack", "--role", "qa"))
    listed = json.loads(cli("notifications", "subscriptions", "-o", "json").out)
    assert [(s["channel"], s["selector"], s["value"], s["events"]) for s in listed] == [
        ("qa-slack", "role", "qa", ["approval.waiting", "approval.reminder"])]
    table = cli("notifications", "subscriptions").out
    assert "qa-slack" in table and "role qa" in table

    removed = cli("notifications", "unsubscribe", str(listed[0]["id"]))
    assert removed.code == 0 and f"removed subscription {listed[0]['id']}" in removed.out
    assert "no subscriptions" in cli("notifications", "subscriptions").out
    assert "does not exist" in one_line_error(cli("notifications", "unsubscribe", "999"))


def test_a_qa_engineer_may_not_manage_subscriptions(cli):
    created = json.loads(cli("user", "create", "quill", "--role", "qa", "-o", "json").out)
    refused = cli("notifications", "subscriptions", token=created["token"])
    assert "needs the role admin or platform" in one_line_error(refused)
