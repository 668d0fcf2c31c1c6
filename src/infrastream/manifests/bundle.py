"""A Bundle: every manifest of a repository, checked against each other.

Field-level problems are found per document; this module finds the problems that only show
when manifests are read together: duplicate names, parents that do not exist or are of the
wrong kind, sets without applications, lanes that repeat an environment, environments a
track uses but nobody declares. A Bundle with no errors is what the rest of Infrastream
consumes: lookups by name and the hierarchy track → sets → applications.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar, cast

from .application import Application, ApplicationSet
from .diagnostics import Diagnostic, Severity, did_you_mean
from .documents import Identity, LoadedManifest, Locatable, identify, read_manifest
from .environment import Environment, default_environment
from .freeze import FreezeWindow
from .kinds import KINDS, PARENT_KIND, Manifest
from .track import Lane, ReleaseTrack
from .yaml_source import parse_documents

M = TypeVar("M", ReleaseTrack, ApplicationSet, Application, Environment, FreezeWindow)


@dataclass(frozen=True)
class Bundle:
    """Validated manifests by kind and name, in input order."""

    tracks: dict[str, ReleaseTrack] = field(default_factory=dict)
    sets: dict[str, ApplicationSet] = field(default_factory=dict)
    applications: dict[str, Application] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    freezes: dict[str, FreezeWindow] = field(default_factory=dict)

    def sets_of(self, track: str) -> list[ApplicationSet]:
        return [s for s in self.sets.values() if _parent_name(s) == track]

    def applications_of(self, app_set: str) -> list[Application]:
        return [a for a in self.applications.values() if _parent_name(a) == app_set]

    def track_of(self, app_set: str) -> ReleaseTrack:
        parent = _parent_name(self.sets[app_set])
        return self.tracks[parent or ""]

    def environment(self, name: str) -> Environment:
        """The declared Environment, or the default one for an undeclared name."""
        return self.environments.get(name) or default_environment(name)

    def used_environments(self) -> list[str]:
        names: dict[str, None] = {}
        for track in self.tracks.values():
            for _lane, stages in track.spec.lanes():
                for stage in stages:
                    names.update(dict.fromkeys(stage.environments))
        return list(names)

    def manifests(self) -> Iterator[Manifest]:
        yield from self.environments.values()
        yield from self.freezes.values()
        yield from self.tracks.values()
        yield from self.sets.values()
        yield from self.applications.values()


@dataclass(frozen=True)
class LoadResult:
    bundle: Bundle
    diagnostics: list[Diagnostic]
    documents: int
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) → the source (file) each manifest read from text came from."""

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def load_texts(sources: Iterable[tuple[str, str]], *, cross_check: bool = True) -> LoadResult:
    """Parse and validate manifests given as (source name, text) pairs. Pure: no I/O.

    With `cross_check=False` only each document is checked on its own (for a partial set of
    manifests that will be checked together with others later).
    """
    result, loaded, invalid = load_documents(sources)
    bundle, problems = check_bundle(loaded, invalid)
    diagnostics = list(result.diagnostics)
    if cross_check:
        diagnostics.extend(problems)
    else:  # still refuse a name defined twice in the input itself
        diagnostics.extend(p for p in problems if p.code == "duplicate-name")
    return LoadResult(bundle, diagnostics, result.documents, origins(loaded))


def origins(loaded: Iterable[LoadedManifest]) -> dict[tuple[str, str], str]:
    """Where each manifest was read from, by (kind, name)."""
    return {(item.kind, item.name): item.document.source for item in loaded}


def load_documents(sources: Iterable[tuple[str, str]]
                   ) -> tuple[LoadResult, list[LoadedManifest], list[Identity]]:
    """Every document of `sources` parsed and validated on its own: the problems (in a
    LoadResult with an empty bundle), the valid manifests and what the invalid ones still
    say about themselves."""
    with collection_paused():
        return _load_documents(sources)


@contextmanager
def collection_paused() -> Iterator[None]:
    """No garbage collection while the loader runs: it allocates many long-lived objects
    (every value of every document and every model), and collecting them as they come is
    pure waste.

    Pausing alone only defers that waste: the first collection after it would traverse
    every object allocated meanwhile (a third of `validate`'s time on 10k manifests), then
    again as they age into the older generations. So when the outermost pause ends, the
    objects allocated meanwhile are moved straight to the oldest generation
    (`gc.freeze()` + `gc.unfreeze()`, which only splice lists): they are traversed at the
    next full collection, when one is due anyway, and a cycle among them is still
    collected then. (Not when something froze objects on purpose: unfreezing would release
    them too.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()  # every generation → the permanent one,
                gc.unfreeze()  # and that → the oldest: no traversal
            gc.enable()


def _load_documents(sources: Iterable[tuple[str, str]]
                    ) -> tuple[LoadResult, list[LoadedManifest], list[Identity]]:
    diagnostics: list[Diagnostic] = []
    loaded: list[LoadedManifest] = []
    invalid: list[Identity] = []
    count = 0
    for source, text in sources:
        documents, problems = parse_documents(source, text)
        diagnostics.extend(problems)
        for document in documents:
            count += 1
            if document.refused:  # its limit is reported; it still counts as existing
                if (identity := identify(document)) is not None:
                    invalid.append(identity)
                continue
            manifest, problems = read_manifest(document)
            diagnostics.extend(problems)
            if manifest is not None:
                loaded.append(manifest)
            elif (identity := identify(document)) is not None:
                invalid.append(identity)
    return LoadResult(Bundle(), diagnostics, count), loaded, invalid


def check_bundle(loaded: list[LoadedManifest], invalid: Iterable[Identity] = ()
                 ) -> tuple[Bundle, list[Diagnostic]]:
    """Check valid manifests against each other. `invalid` names the manifests that failed
    their own validation: they count as existing (as parent, set member or declared
    environment) so that their errors are not reported a second time elsewhere."""
    problems: list[Diagnostic] = []
    by_kind: dict[str, dict[str, LoadedManifest]] = {kind: {} for kind in KINDS}
    for item in loaded:
        named = by_kind[item.kind]
        seen = named.get(item.name)
        if seen is not None:
            first = seen.document.locate(("metadata", "name"))
            problems.append(_error(item.document, ("metadata", "name"), "duplicate-name",
                                   f"{item.kind} `{item.name}` is defined twice",
                                   f"first defined at {seen.document.source}:{first.line}:"
                                   f"{first.column}; rename one of them"))
            continue
        named[item.name] = item
    children: dict[tuple[str, str], int] = defaultdict(int)
    broken: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for identity in invalid:
        broken[identity.kind].add(identity.name)
        if identity.parent is not None and identity.parent[0] == PARENT_KIND[identity.kind]:
            children[identity.parent] += 1
    for kind, items in by_kind.items():
        for item in items.values():
            problems.extend(_check_parent(item, PARENT_KIND[kind], by_kind, broken, children))
    for item in by_kind["ApplicationSet"].values():
        if children[("ApplicationSet", item.name)] == 0:
            problems.append(_warning(
                item.document, ("metadata", "name"), "empty-application-set",
                f"ApplicationSet `{item.name}` has no Application yet: it cannot be released "
                "until one names it as its parent",
                f"add an Application with `parent: {{kind: ApplicationSet, name: {item.name}}}`"))
    declared = set(by_kind["Environment"]) | broken["Environment"]
    for item in by_kind["ReleaseTrack"].values():
        problems.extend(_check_track(item, declared))
        if children[("ReleaseTrack", item.name)] == 0:
            problems.append(_warning(item.document, ("metadata", "name"), "unused-track",
                                     f"ReleaseTrack `{item.name}` has no ApplicationSet",
                                     "nothing travels this track until a set names it as parent"))
    bundle = Bundle(
        tracks=_of(by_kind, ReleaseTrack),
        sets=_of(by_kind, ApplicationSet),
        applications=_of(by_kind, Application),
        environments=_of(by_kind, Environment),
        freezes=_of(by_kind, FreezeWindow),
    )
    return bundle, problems


def _of(by_kind: dict[str, dict[str, LoadedManifest]], model: type[M]) -> dict[str, M]:
    """The loaded manifests of one kind, by name, typed as that kind (which they are: each
    was validated by, or stored as, the model its kind names)."""
    return cast(dict[str, M], {name: item.manifest
                               for name, item in by_kind[model.__name__].items()})


def _check_parent(item: LoadedManifest, parent_kind: str | None,
                  by_kind: dict[str, dict[str, LoadedManifest]], broken: dict[str, set[str]],
                  children: dict[tuple[str, str], int]) -> list[Diagnostic]:
    parent = item.parent
    if parent_kind is None:
        return []  # tracks and environments may name a parent of the wider platform; not ours
    if parent is None:
        return [_error(item.document, ("metadata",), "missing-parent",
                       f"{item.kind} `{item.name}` has no parent",
                       f"add `parent: {{kind: {parent_kind}, name: …}}` under metadata")]
    if parent[0] != parent_kind:
        return [_error(item.document, ("metadata", "parent", "kind"), "wrong-parent-kind",
                       f"the parent of {item.kind} `{item.name}` must be {_article(parent_kind)} "
                       f"{parent_kind}, "
                       f"not `{parent[0]}`", f"use `kind: {parent_kind}`")]
    if parent[1] in broken[parent_kind]:
        return []  # the parent exists but is invalid: its own errors say so
    if parent[1] not in by_kind[parent_kind]:
        return [_error(item.document, ("metadata", "parent", "name"), "unknown-parent",
                       f"{parent_kind} `{parent[1]}` does not exist",
                       did_you_mean(parent[1], by_kind[parent_kind]))]
    children[parent] += 1
    return []


def _check_track(item: LoadedManifest, declared: set[str]) -> list[Diagnostic]:
    track = item.manifest
    assert isinstance(track, ReleaseTrack)
    problems: list[Diagnostic] = []
    if not track.spec.lanes():
        problems.append(_error(item.document, ("spec",), "track-without-stages",
                               f"ReleaseTrack `{track.metadata.name}` defines no stage",
                               "add `releaseStages:` (or `preReleaseStages:` / `hotfixStages:`) "
                               "with at least one stage"))
    for lane in Lane:
        for index, stage in enumerate(track.spec.stages(lane)):
            path: tuple[str | int, ...] = ("spec", lane.field, index)
            if not stage.environments:
                problems.append(_error(item.document, (*path, "environments"), "empty-stage",
                                       f"stage {index + 1} of {lane.field} lists no environment",
                                       "name at least one environment, or remove the stage"))
        seen: dict[str, int] = {}
        for index, stage in enumerate(track.spec.stages(lane)):
            for position, env in enumerate(stage.environments):
                path = ("spec", lane.field, index, "environments", position)
                if env in seen:
                    problems.append(_error(item.document, path, "duplicate-environment",
                                           f"environment `{env}` appears twice in {lane.field}",
                                           f"already in stage {seen[env] + 1}; a lane visits "
                                           "each environment once"))
                    continue
                seen[env] = index
                if env not in declared:
                    problems.append(_warning(item.document, path, "undeclared-environment",
                                             f"environment `{env}` is not declared",
                                             "it gets the default `local` target; add an "
                                             "Environment manifest to choose another"))
                    declared = declared | {env}  # warn once per environment
    return problems


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _parent_name(manifest: ApplicationSet | Application) -> str | None:
    parent = manifest.metadata.parent
    return parent.name if parent else None


def _error(document: Locatable, path: tuple[str | int, ...], code: str, message: str,
           hint: str = "") -> Diagnostic:
    position = document.locate(path)
    return Diagnostic(document.source, position.line, position.column, Severity.ERROR, code,
                      message, hint)


def _warning(document: Locatable, path: tuple[str | int, ...], code: str, message: str,
             hint: str = "") -> Diagnostic:
    position = document.locate(path)
    return Diagnostic(document.source, position.line, position.column, Severity.WARNING, code,
                      message, hint)
