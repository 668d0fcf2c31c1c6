"""Whether manifests may be deleted: never while something still needs them.

Immutable releases carry their own snapshot, so deleting a manifest never changes a release;
but the control plane must not lose what running work or the remaining manifests still
stand on. An Application can always go (its set simply ships without it from the next
release on). Pure: the facts are passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from infrastream.manifests import Bundle


def refusals(deleted: Sequence[tuple[str, str]], remaining: Bundle, *,
             active_releases: Mapping[str, Sequence[str]],
             occupied: Collection[str]) -> list[str]:
    """One line per deletion that must not happen, and why; empty when all may.

    `remaining` is every manifest that would be left; `active_releases` the names of the
    active releases per application set; `occupied` the environments work runs in now."""
    problems: list[str] = []
    for kind, name in deleted:
        if kind == "ApplicationSet" and active_releases.get(name):
            problems.append(f"ApplicationSet `{name}` has active releases ("
                            + ", ".join(f"{name}/{r}" for r in active_releases[name])
                            + "): let them complete or abandon them first")
        elif kind == "ReleaseTrack":
            sets = [s.metadata.name for s in remaining.sets_of(name)]
            if sets:
                problems.append(f"ReleaseTrack `{name}` still has ApplicationSets ("
                                + ", ".join(sets) + "): move or delete them first")
        elif kind == "Environment":
            users = [t for t, track in remaining.tracks.items()
                     if any(name in stage.environments for _lane, stages in track.spec.lanes()
                            for stage in stages)]
            if users:
                problems.append(f"Environment `{name}` is used by ReleaseTrack "
                                + ", ".join(f"`{t}`" for t in users)
                                + ": take it out of their stages first")
            elif name in occupied:
                problems.append(f"Environment `{name}` is being deployed to right now")
    return problems
