"""Roles and who may do what (DESIGN §2). Approvals are checked per rule elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    DEVELOPER = "developer"
    RELEASE_MANAGER = "release-manager"
    PLATFORM = "platform"
    QA = "qa"
    PRODUCT = "product"
    SECURITY = "security"
    INCIDENT_COMMANDER = "incident-commander"
    ADMIN = "admin"


#: Which roles may apply each manifest kind (the owners of the seed), admin aside.
KIND_OWNERS: dict[str, frozenset[str]] = {
    "Application": frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER, Role.PLATFORM}),
    "ApplicationSet": frozenset({Role.RELEASE_MANAGER, Role.PLATFORM}),
    "ReleaseTrack": frozenset({Role.PLATFORM}),
    "Environment": frozenset({Role.PLATFORM}),
    "FreezeWindow": frozenset({Role.PLATFORM, Role.RELEASE_MANAGER}),
}

RECORD_VERSION = frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER, Role.PLATFORM, Role.ADMIN})
CUT_RELEASE = frozenset({Role.RELEASE_MANAGER, Role.ADMIN})
PROMOTE = frozenset({Role.RELEASE_MANAGER})
MANAGE_USERS = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user name and the roles they hold."""

    name: str
    roles: frozenset[str]

    def holds(self, allowed: frozenset[str]) -> bool:
        return bool(self.roles & allowed)


SYSTEM = Principal("infrastream", frozenset())
