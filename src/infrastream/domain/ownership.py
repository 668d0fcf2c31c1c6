"""Who may change a manifest, and who must review a change to it (one rule for `apply`,
`delete`, manifest pull-request checks and CODEOWNERS).

The seed gives each stakeholder one kind: development teams own Applications, release
managers ApplicationSets, the platform team tracks, environments and freeze windows
(`roles.KIND_OWNERS`). A manifest may also name its owning team (`metadata.team`); then a
developer or release manager may change it only as a member of that team (of both teams, when
the change moves it to another). Platform engineers are not bound to teams: they govern the
path to production itself. Admins manage people, not manifests.
"""

from __future__ import annotations

from collections.abc import Collection

from .roles import KIND_OWNERS, Principal, Role

TEAM_BOUND = frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER})
"""Owner roles whose holders may change a team's manifest only as its members."""
UNBOUND = frozenset({Role.PLATFORM})


def refusal(principal: Principal, kind: str, name: str, teams: Collection[str | None],
            member_of: Collection[str]) -> str | None:
    """Why `principal` may not change (create, configure, delete) manifest `kind/name`, whose
    owning team is (before and after the change) `teams`; None when they may."""
    owners = KIND_OWNERS[kind]
    held = principal.roles & owners
    if not held:
        return (f"{principal.name} may not change {kind} `{name}`: it needs the role "
                + " or ".join(sorted(owners)))
    if held & UNBOUND:
        return None
    outside = sorted({team for team in teams if team and team not in member_of})
    if outside:
        return (f"{principal.name} may not change {kind} `{name}`: it belongs to team "
                + " and ".join(f"`{t}`" for t in outside) + f", and {principal.name} is not "
                "a member" + ("" if len(outside) == 1 else " of all of them"))
    return None


def reviewers(kind: str, team: str | None) -> str:
    """Who must review a change to a manifest of `kind` owned by `team`, in words."""
    if team and kind in ("Application", "ApplicationSet"):
        return f"a reviewer from team `{team}`"
    owner = {"Application": "developer", "ApplicationSet": "release-manager"}.get(kind,
                                                                                  "platform")
    return f"a {owner} reviewer"
