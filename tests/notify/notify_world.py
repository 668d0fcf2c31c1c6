"""The world of the notification stories: the `init` example with a Staging stage that needs
QA, a reminder policy, people with email addresses, channels and subscriptions, an engine
driven pass by pass under a clock the story moves."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from story import Story, person

from infrastream.service import identity, teams
from infrastream.service.engine.loop import Engine
from infrastream.service.records.releases import ReleaseRef
from infrastream.store.tables import (
    notification_channels,
    notification_deliveries,
    notification_events,
)

ADMIN = person("admin", "admin")
PUBLIC_URL = "https://infra.example.com"

STAGING_NEEDS_QA = """    - environments:
        - staging
      approvals:
        - role: qa
      checks:                       # must pass before the release may leave staging"""

REMINDERS = """  approvalReminders:
    after: 4h
    maxReminders: 2
    escalateAfter: 24h
    escalateTo: release-manager
  # Accelerated path for emergency fixes"""


class Clock:
    """The services' clock, moved by the story (no sleeping)."""

    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def begin(tmp_path: Path, database_url: str) -> tuple[Story, Clock]:
    story = Story.begin(tmp_path, database_url, target="noop")
    track = story.repo / "manifests" / "track.yaml"
    text = track.read_text()
    staging = """    - environments:
        - staging
      checks:                       # must pass before the release may leave staging"""
    assert staging in text and "  # Accelerated path for emergency fixes" in text
    text = text.replace(staging, STAGING_NEEDS_QA)
    text = text.replace("  # Accelerated path for emergency fixes", REMINDERS)
    set_metadata = "  name: shop\n  parent:"
    assert set_metadata in text
    text = text.replace(set_metadata, "  name: shop\n  team: shop-team\n  parent:")
    track.write_text(text)
    clock = Clock()
    story.services.now = clock
    story.services.public_url = PUBLIC_URL
    return story, clock


def people(story: Story) -> None:
    """QA engineers (one disabled, one without email), a release manager, a product owner;
    the shop's team and another."""
    services = story.services
    identity.bootstrap_admin(services)
    teams.create_team(services, ADMIN, "shop-team")
    teams.create_team(services, ADMIN, "payments")
    identity.create_user(services, ADMIN, "quinn", ["qa"], email="quinn@example.com")
    identity.create_user(services, ADMIN, "quentin", ["qa"])
    identity.create_user(services, ADMIN, "olga", ["qa"], email="olga@example.com")
    identity.disable_user(services, ADMIN, "olga")
    identity.create_user(services, ADMIN, "rita", ["release-manager"], email="rita@example.com")
    identity.create_user(services, ADMIN, "paula", ["product"], email="paula@example.com")


def channel(story: Story, name: str, kind: str = "slack") -> None:
    """A channel row as the delivery side stores it (its settings are not this story's)."""
    with story.services.transaction() as conn:
        conn.execute(insert(notification_channels).values(
            name=name, kind=kind, settings="(ciphertext)", public={},
            created_at=story.services.now(), created_by="admin"))


def settle(engine: Engine) -> None:
    deadline = time.monotonic() + 30
    while engine.busy():
        assert time.monotonic() < deadline, "jobs never finished"
        time.sleep(0.01)


def passes(engine: Engine, count: int = 3) -> float | None:
    """A few engine passes, each after the jobs of the one before finished; the last's timer."""
    wake = None
    for _ in range(count):
        settle(engine)
        wake = engine.run_once()
    settle(engine)
    return wake


def drive(story: Story, engine: Engine, ref: ReleaseRef,
          condition: Callable[[dict[str, Any]], bool], clock: Clock) -> dict[str, Any]:
    """Passes (moving the clock a second each, for the soak) until the release's status
    meets the condition."""
    for _ in range(60):
        status = story.status(ref)
        if condition(status):
            return status
        passes(engine, 1)
        clock.advance(seconds=1)
    raise AssertionError(f"never got there; release is at: {story.status(ref)['summary']}")


def events(story: Story, kind: str | None = None) -> list[dict[str, Any]]:
    """The recorded notifications (payloads, with `channels` added), oldest first."""
    with story.services.db.connect() as conn:
        query = select(notification_events).order_by(notification_events.c.id)
        if kind is not None:
            query = query.where(notification_events.c.kind == kind)
        rows = conn.execute(query).all()
        found = []
        for row in rows:
            channels = sorted(conn.execute(select(notification_deliveries.c.channel).where(
                notification_deliveries.c.event_id == row.id)).scalars())
            found.append({**row.payload, "channels": channels})
    return found
