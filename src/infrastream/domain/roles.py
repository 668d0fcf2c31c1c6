"""Roles and who may do what (DESIGN §2): the one home of every permission rule.

Each action names the roles allowed to take it; the service layer enforces them with
`service.permissions.require`, whatever face called, and the faces ask the same sets which
buttons to show. Approval rules are per stage (the track's `approvals`), see `approvals`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from infrastream.manifests import Bundle


class Role(StrEnum):
    DEVELOPER = "developer"
    RELEASE_MANAGER = "release-manager"
    PLATFORM = "platform"
    QA = "qa"
    PRODUCT = "product"
    SECURITY = "security"
    INCIDENT_COMMANDER = "incident-commander"
    ADMIN = "admin"


#: Which roles may apply each manifest kind (the owners of the seed).
KIND_OWNERS: dict[str, frozenset[str]] = {
    "Application": frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER, Role.PLATFORM}),
    "ApplicationSet": frozenset({Role.RELEASE_MANAGER, Role.PLATFORM}),
    "ReleaseTrack": frozenset({Role.PLATFORM}),
    "Environment": frozenset({Role.PLATFORM}),
    "FreezeWindow": frozenset({Role.PLATFORM, Role.RELEASE_MANAGER}),
}

# Separation of duties: `admin` manages users and tokens and nothing else; it cannot apply
# manifests, record versions, set secrets, cut, promote or approve (grant yourself a role
# to do those, and the grant is audited).
RECORD_VERSION = frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER, Role.PLATFORM})
"""Record a build of an application; start a pre-release run of a pull-request build."""
CUT_RELEASE = frozenset({Role.RELEASE_MANAGER})
PROMOTE = frozenset({Role.RELEASE_MANAGER})
"""Request the next stage of a release, override its guards, abandon it."""
PROMOTE_HOTFIX = PROMOTE | {Role.INCIDENT_COMMANDER}
"""The same, for a release of the hotfix lane: incident commanders drive emergencies too."""
START_HOTFIX = frozenset({Role.RELEASE_MANAGER, Role.INCIDENT_COMMANDER})
ROLL_BACK = frozenset({Role.RELEASE_MANAGER, Role.INCIDENT_COMMANDER})
MANAGE_SECRETS = frozenset({Role.PLATFORM})
TEAR_DOWN = frozenset({Role.PLATFORM})
"""Stop everything a target runs in an environment (`env teardown`)."""
BIND_NODE = frozenset({Role.PLATFORM})
"""Move a `local` environment to another node when its node is dead for good."""
MANAGE_USERS = frozenset({Role.ADMIN})
"""Create, list, disable and enable users; manage teams."""
MANAGE_TOKENS = frozenset({Role.ADMIN})
"""Create (for any user, service accounts included), list and revoke API tokens."""


def declared_roles(bundle: Bundle) -> frozenset[str]:
    """The roles the manifests name: every approval rule's role, every freeze window's
    `overrideRole`."""
    found = {rule.role for track in bundle.tracks.values()
             for _lane, stages in track.spec.lanes() for stage in stages
             for rule in stage.approvals}
    found |= {w.spec.override_role for w in bundle.freezes.values() if w.spec.override_role}
    return frozenset(found)


def unknown_roles(roles: Iterable[str], declared: frozenset[str]) -> list[str]:
    """The roles of `roles` that are neither built in nor declared by a manifest."""
    known = {role.value for role in Role} | declared
    return sorted({role for role in roles if role not in known})
MANAGE_SOURCES = frozenset({Role.PLATFORM})
"""Add, sync and remove manifest sources (the Git repositories manifests come from)."""
MANAGE_NOTIFICATIONS = frozenset({Role.ADMIN, Role.PLATFORM})
"""Add, test and remove notification channels (Slack, Teams, email, signed webhooks) and
subscribe them to events."""
MANAGE_SCM = frozenset({Role.PLATFORM})
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
