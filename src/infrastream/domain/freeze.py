"""Is an environment frozen now, and until when? (Pure: the time is passed in.)"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from infrastream.manifests.freeze import DAYS, FreezeWindow, Window


@dataclass(frozen=True)
class Frozen:
    window: str
    until: datetime
    override_role: str | None
    reason: str

    def describe(self) -> str:
        local = self.until.strftime("%Y-%m-%d %H:%M %Z")
        text = f"frozen until {local} ({self.window}"
        return text + (f": {self.reason})" if self.reason else ")")


def _active_until(window: Window, now_local: datetime) -> datetime | None:
    zone = now_local.tzinfo
    if window.start is not None and window.end is not None:
        start = window.start.replace(tzinfo=zone) if window.start.tzinfo is None \
            else window.start.astimezone(zone)
        end = window.end.replace(tzinfo=zone) if window.end.tzinfo is None \
            else window.end.astimezone(zone)
        return end if start <= now_local < end else None
    weekly = window.weekly
    assert weekly is not None
    start_clock = time.fromisoformat(weekly.from_)
    end_clock = time.fromisoformat(weekly.to)
    for days_back in (0, 1):  # a window that crosses midnight may have started yesterday
        day = (now_local - timedelta(days=days_back)).date()
        if DAYS[day.weekday()] not in weekly.days:
            continue
        start = datetime.combine(day, start_clock, tzinfo=zone)
        end = datetime.combine(day, end_clock, tzinfo=zone)
        if end <= start:
            end += timedelta(days=1)
        if start <= now_local < end:
            return end
    return None


def frozen(freezes: Iterable[FreezeWindow], environment: str, lane: str,
           now: datetime) -> Frozen | None:
    """The freeze that holds `environment` for `lane` at `now` (the one ending last)."""
    found: Frozen | None = None
    for freeze in freezes:
        spec = freeze.spec
        if spec.environments and environment not in spec.environments:
            continue
        if lane in spec.exempt_lanes:
            continue
        now_local = now.astimezone(ZoneInfo(spec.time_zone))
        for window in spec.windows:
            until = _active_until(window, now_local)
            if until is not None and (found is None or until > found.until):
                found = Frozen(freeze.metadata.name, until, spec.override_role, spec.reason)
    return found
