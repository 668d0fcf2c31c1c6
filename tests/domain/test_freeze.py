"""Freeze windows: one-off and weekly, in their own time zone, with exempt lanes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infrastream.domain.freeze import frozen
from infrastream.manifests.freeze import FreezeWindow


def freeze(**spec) -> FreezeWindow:
    return FreezeWindow.model_validate({
        "apiVersion": "lowops.manifests.v1", "kind": "FreezeWindow",
        "metadata": {"name": "year-end"}, "spec": spec})


YEAR_END = freeze(environments=["production"], timeZone="Europe/Berlin",
                  windows=[{"start": "2026-12-20T00:00", "end": "2027-01-04T09:00"}],
                  exemptLanes=["hotfix"], overrideRole="release-manager",
                  reason="year-end change freeze")
WEEKEND = freeze(timeZone="America/New_York",
                 windows=[{"weekly": {"days": ["fri"], "from": "16:00", "to": "08:00"}}])


@pytest.mark.parametrize(("when", "env", "lane", "held"), [
    (datetime(2026, 12, 24, 12, 0, tzinfo=UTC), "production", "release", True),
    (datetime(2026, 12, 24, 12, 0, tzinfo=UTC), "staging", "release", False),
    (datetime(2026, 12, 24, 12, 0, tzinfo=UTC), "production", "hotfix", False),
    (datetime(2027, 1, 4, 7, 59, tzinfo=UTC), "production", "release", True),   # 08:59 Berlin
    (datetime(2027, 1, 4, 8, 0, tzinfo=UTC), "production", "release", False),   # 09:00 Berlin
    (datetime(2026, 12, 19, 22, 59, tzinfo=UTC), "production", "release", False),
], ids=["during", "other environment", "hotfix lane exempt", "last minute", "ended",
        "not yet"])
def test_a_one_off_window_holds_its_environments_in_its_time_zone(when, env, lane, held):
    assert (frozen([YEAR_END], env, lane, when) is not None) is held


def test_the_verdict_says_until_when_in_the_windows_time_zone():
    verdict = frozen([YEAR_END], "production", "release", datetime(2026, 12, 24, tzinfo=UTC))
    assert verdict is not None
    assert verdict.describe() == ("frozen until 2027-01-04 09:00 CET "
                                  "(year-end: year-end change freeze)")
    assert verdict.override_role == "release-manager"


@pytest.mark.parametrize(("when", "held"), [
    (datetime(2026, 11, 27, 20, 59, tzinfo=UTC), False),  # Fri 15:59 New York
    (datetime(2026, 11, 27, 21, 0, tzinfo=UTC), True),    # Fri 16:00
    (datetime(2026, 11, 28, 12, 59, tzinfo=UTC), True),   # Sat 07:59, crossed midnight
    (datetime(2026, 11, 28, 13, 0, tzinfo=UTC), False),   # Sat 08:00
])
def test_a_weekly_window_may_cross_midnight(when, held):
    assert (frozen([WEEKEND], "anything", "release", when) is not None) is held
