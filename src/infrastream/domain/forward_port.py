"""The forward-port guard: a regular release must not undo a hotfix that is in production.

A hotfix puts a build of a hotfix branch into production. A regular release cut later from
mainline versions recorded *before* that hotfix cannot contain the fix, so promoting it to
production would roll the fix back. A mainline version recorded after the hotfix is assumed
to carry the forward-ported fix (that is what "forward-port, then record the build" means),
as is the hotfix build itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fix:
    app: str
    image: str
    version_id: int
    release: str
    incident: str

    def to_json(self) -> dict[str, Any]:
        return {"app": self.app, "image": self.image, "versionId": self.version_id,
                "release": self.release, "incident": self.incident}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fix:
        return cls(data["app"], data["image"], int(data["versionId"]), data["release"],
                   data["incident"])


def violations(versions: Mapping[str, Mapping[str, Any]], fixes: list[Fix]) -> list[str]:
    """One line per hotfixed app that `versions` would roll back; empty when none."""
    problems = []
    for fix in fixes:
        version = versions.get(fix.app)
        if version is None or version["image"] == fix.image:
            continue
        if int(version["id"]) < fix.version_id:
            problems.append(f"{fix.app} {version['version']} predates hotfix {fix.release} "
                            f"({fix.image}, incident {fix.incident})")
    return problems
