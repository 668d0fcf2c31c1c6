"""The rules behind notifications, table-driven: when a wait's reminders and escalation fall
due, which waits count as waiting for people, and which subscriptions hear a notification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from infrastream.domain.notifications import EventKind, Notification, Recipient
from infrastream.domain.readiness import Blocker, Code
from infrastream.manifests.track import ApprovalReminders
from infrastream.service.notification_subscriptions import channels_for, matches
from infrastream.service.notifications import follow_ups, waiting_roles

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = ApprovalReminders.model_validate(
    {"after": "4h", "maxReminders": 2, "escalateAfter": "24h", "escalateTo": "release-manager"})


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


@pytest.mark.parametrize(("reminders", "last", "escalated", "now", "due", "escalate", "next_at"), [
    pytest.param(0, hours(0), False, hours(1), None, False, hours(4), id="too early: timer at 4h"),
    pytest.param(0, hours(0), False, hours(4), 1, False, hours(8), id="the first reminder"),
    pytest.param(1, hours(4), False, hours(6), None, False, hours(8), id="not before 4h again"),
    pytest.param(0, hours(0), False, hours(30), 1, True, hours(34),
                 id="away a long time: one reminder, not a burst, and the escalation"),
    pytest.param(2, hours(8), False, hours(10), None, False, hours(24),
                 id="the cap reached: only the escalation is left"),
    pytest.param(2, hours(8), True, hours(40), None, False, None, id="all done: no timer"),
])
def test_reminders_fall_due_every_after_up_to_the_cap_and_escalation_once(
        reminders, last, escalated, now, due, escalate, next_at):
    found = follow_ups(POLICY, since=T0, reminders=reminders, last=last,
                       escalated_already=escalated, now=now)
    assert (found.reminder, found.escalate, found.next_due) == (due, escalate, next_at)


def test_without_a_policy_nothing_follows_a_wait():
    found = follow_ups(None, since=T0, reminders=0, last=T0, escalated_already=False,
                       now=hours(100))
    assert (found.reminder, found.escalate, found.next_due) == (None, False, None)


def _missing(role: str) -> Blocker:
    return Blocker(Code.APPROVAL_MISSING, f"{role} 0/1", {"role": role})


@pytest.mark.parametrize(("held", "roles"), [
    ([_missing("qa"), _missing("security")], ["qa", "security"]),
    ([_missing("qa"), Blocker(Code.FROZEN, "frozen until …")], ["qa"]),
    ([Blocker(Code.PREVIOUS_STAGE, "staging to succeed (verifying)"), _missing("qa")], []),
    ([Blocker(Code.FROZEN, "frozen until …")], []),
    ([], []),
])
def test_a_stage_waits_for_people_only_when_sign_offs_are_all_that_hold_it(held, roles):
    assert waiting_roles(held) == roles


NOTE = Notification(kind=EventKind.APPROVAL_WAITING, key="k", title="t", track="shop-track",
                    occurred_at=T0, roles=("qa",), team="payments",
                    recipients=(Recipient("quinn", "quinn@example.com"),))


def sub(channel: str, selector: str, value: str = "*", track: str | None = None,
        events: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(channel=channel, selector=selector, value=value, track=track,
                           events=list(events))


@pytest.mark.parametrize(("subscription", "hears"), [
    (sub("a", "role", "qa"), True),
    (sub("a", "role", "security"), False),
    (sub("a", "team", "payments"), True),
    (sub("a", "team", "shop"), False),
    (sub("a", "user", "quinn"), True),
    (sub("a", "user", "sam"), False),
    (sub("a", "everyone"), True),
    (sub("a", "everyone", track="shop-track"), True),
    (sub("a", "everyone", track="other-track"), False),
    (sub("a", "everyone", events=("approval.waiting", "release.failed")), True),
    (sub("a", "everyone", events=("release.failed",)), False),
])
def test_a_subscription_hears_by_track_kind_and_selector(subscription, hears):
    assert matches(subscription, NOTE) is hears


def test_each_channel_is_delivered_once_in_subscription_order():
    subs = [sub("b", "role", "qa"), sub("a", "everyone"), sub("b", "user", "quinn"),
            sub("c", "role", "product")]
    assert channels_for(subs, NOTE) == ["b", "a"]
