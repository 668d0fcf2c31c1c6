"""The plan of a bundle: per track, its lanes → stages → environments with their gates,
and the sets and applications that travel it. Plain data, rendered by the faces."""

from __future__ import annotations

from typing import Any

from .bundle import Bundle
from .track import Stage


def plan(bundle: Bundle, track: str | None = None) -> list[dict[str, Any]]:
    """The plan of every track (or only `track`; KeyError if it does not exist)."""
    names = [track] if track is not None else sorted(bundle.tracks)
    return [_track_plan(bundle, name) for name in names]


def _track_plan(bundle: Bundle, name: str) -> dict[str, Any]:
    track = bundle.tracks[name]
    return {
        "track": name,
        "lanes": [
            {"lane": lane.value, "stages": [_stage_plan(bundle, stage) for stage in stages]}
            for lane, stages in track.spec.lanes()
        ],
        "policy": {"initiatorMayApprove": track.spec.policy.initiator_may_approve},
        "applicationSets": [
            {
                "name": app_set.metadata.name,
                "applications": [
                    {"name": app.metadata.name, "image": app.spec.image}
                    for app in bundle.applications_of(app_set.metadata.name)
                ],
            }
            for app_set in bundle.sets_of(name)
        ],
    }


def _stage_plan(bundle: Bundle, stage: Stage) -> dict[str, Any]:
    return {
        "name": stage.display_name,
        "environments": [
            {
                "name": env,
                "tier": bundle.environment(env).spec.tier.value,
                "target": bundle.environment(env).spec.target.type,
                "declared": env in bundle.environments,
            }
            for env in stage.environments
        ],
        "checks": [check.model_dump(by_alias=True, exclude_none=True) for check in stage.checks],
        "approvals": [
            rule.model_dump(by_alias=True, exclude_none=True) for rule in stage.approvals
        ],
    }
