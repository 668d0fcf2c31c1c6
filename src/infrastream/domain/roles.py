"""Roles and who may do what (DESIGN §2): the one home of every permission rule.

Each action names the roles allowed to take it; the service layer enforces them with
`service.permissions.require`, whatever face called, and the faces ask the same sets which
buttons to show. Approval rules are per stage (the track's `approvals`), see `approvals`.
"""

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
"""Record a build of an application; start a pre-release run of a pull-request build."""
CUT_RELEASE = frozenset({Role.RELEASE_MANAGER, Role.ADMIN})
PROMOTE = frozenset({Role.RELEASE_MANAGER})
"""Request the next stage of a release, override its guards, abandon it."""
PROMOTE_HOTFIX = PROMOTE | {Role.INCIDENT_COMMANDER}
"""The same, for a release of the hotfix lane: incident commanders drive emergencies too."""
START_HOTFIX = frozenset({Role.RELEASE_MANAGER, Role.INCIDENT_COMMANDER})
ROLL_BACK = frozenset({Role.RELEASE_MANAGER, Role.INCIDENT_COMMANDER})
MANAGE_SECRETS = frozenset({Role.PLATFORM, Role.ADMIN})
MANAGE_USERS = frozenset({Role.ADMIN})
"""Manage users, tokens and teams."""
MANAGE_SOURCES = frozenset({Role.PLATFORM})
"""Add, sync and remove manifest sources (the Git repositories manifests come from)."""
MANAGE_SCM = frozenset({Role.PLATFORM, Role.ADMIN})
"""Connect Git hosts (the connections hold their tokens), make the gate a required check."""


def promoters(lane: str) -> frozenset[str]:
    """Who may promote (and abandon) a release of `lane`."""
    return PROMOTE_HOTFIX if lane == "hotfix" else PROMOTE


def deciders(approval_roles: frozenset[str] | set[str]) -> frozenset[str]:
    """Who may reject a promotion: a holder of a role it asks for, or a release manager."""
    return frozenset(approval_roles) | PROMOTE


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user name and the roles they hold."""

    name: str
    roles: frozenset[str]

    def holds(self, allowed: frozenset[str]) -> bool:
        return bool(self.roles & allowed)


SYSTEM = Principal("infrastream", frozenset())


def scm_actor(connection: str) -> Principal:
    """Who acts on what a connection's webhooks report: it records the builds its templates
    name, starts pre-release runs, and cuts the releases a track wants on every merge
    (`releaseOn: merge`, the platform team's choice), as a developer and a release manager
    would. Audit entries name it `scm:<connection>` beside the delivery and the author."""
    return Principal(f"scm:{connection}", frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER}))
