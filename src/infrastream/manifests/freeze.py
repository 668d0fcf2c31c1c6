"""`FreezeWindow`: times when promotions into some environments must wait.

A window is one-off (`start`/`end`, local times in the manifest's `timeZone`) or weekly
(`weekly: {days, from, to}`; `to` earlier than `from` means the next day). Holders of
`overrideRole` may promote anyway, with a reason; lanes in `exemptLanes` (typically
`hotfix`) are never held.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from .fields import ManifestModel, Name, Role
from .metadata import Metadata

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LaneName = Literal["preRelease", "release", "hotfix"]


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError("invalid-value", "`{value}` is not an IANA time zone",
                                  {"value": value}) from None
    return value


def _clock(value: str) -> str:
    try:
        datetime.strptime(value, "%H:%M")
    except ValueError:
        raise PydanticCustomError("invalid-value", "`{value}` is not a time like 09:30",
                                  {"value": value}) from None
    return value


Clock = Annotated[str, AfterValidator(_clock), Field(examples=["18:00"])]


class WeeklyWindow(ManifestModel):
    days: list[Day] = Field(min_length=1)
    from_: Clock = Field(alias="from")
    to: Clock


class Window(ManifestModel):
    """Either `start` and `end` (one-off) or `weekly`."""

    start: datetime | None = None
    end: datetime | None = None
    weekly: WeeklyWindow | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        one_off = self.start is not None or self.end is not None
        if one_off == (self.weekly is not None):
            raise PydanticCustomError("invalid-value",
                                      "a window has either start and end, or weekly")
        if one_off and (self.start is None or self.end is None or self.end <= self.start):
            raise PydanticCustomError("invalid-value",
                                      "a one-off window needs a start before its end")
        return self


class FreezeWindowSpec(ManifestModel):
    environments: list[Name] = Field(default_factory=list)
    """Environments frozen; empty means every environment."""
    time_zone: Annotated[str, AfterValidator(_time_zone)] = "UTC"
    windows: list[Window] = Field(min_length=1)
    override_role: Role | None = None
    """Holders of this role may promote during the freeze, giving a reason."""
    exempt_lanes: list[LaneName] = Field(default_factory=list)
    reason: str = ""


class FreezeWindow(ManifestModel):
    api_version: Literal["lowops.manifests.v1"]
    kind: Literal["FreezeWindow"]
    metadata: Metadata
    spec: FreezeWindowSpec
