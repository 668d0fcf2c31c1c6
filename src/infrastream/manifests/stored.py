"""Manifests the control plane already holds, checked together with new ones.

A stored manifest was validated when it was applied, so it is read back from its JSON body
with its model (no YAML, no positions) and stands in the cross-checks of a new revision as a
`StoredDocument`: a problem that points at it (a set whose track is being deleted, say) is
reported at `stored:Kind/name`. This is what lets `apply` check one file against ten
thousand stored Applications, and a source sync check its tree against what other sources
and `apply` hold, without turning every stored body into YAML and parsing it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .bundle import Bundle, LoadResult, check_bundle, load_documents, origins
from .documents import Identity, LoadedManifest
from .kinds import KINDS, Manifest
from .raw_document import Position


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """Where a stored manifest "is" for a diagnostic: its synthetic source, line 1."""

    source: str

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> Position:
        return Position(1, 1)


def stored_source(kind: str, name: str) -> str:
    """The synthetic source name a stored manifest is reported under."""
    return f"stored:{kind}/{name}"


def from_body(kind: str, body: Mapping[str, Any]) -> Manifest:
    """The manifest a stored JSON body holds (it was valid when stored)."""
    return KINDS[kind].model_validate(body)


def assemble(manifests: Iterable[Manifest]) -> Bundle:
    """A Bundle of manifests already checked together (what the control plane holds)."""
    loaded = [LoadedManifest(m, StoredDocument(stored_source(m.kind, m.metadata.name)))
              for m in manifests]
    bundle, _problems = check_bundle(loaded)
    return bundle


@dataclass(frozen=True)
class Parsed:
    """Sources parsed and validated document by document, not yet checked together."""

    result: LoadResult
    """Their own problems, and (in `bundle`) the valid manifests among themselves."""
    loaded: list[LoadedManifest]
    invalid: list[Identity]

    @property
    def ok(self) -> bool:
        return self.result.ok


def parse(sources: Iterable[tuple[str, str]]) -> Parsed:
    """Every document of `sources` on its own (duplicate names among them refused), ready
    to be checked among what is stored with `check_with_stored`."""
    result, loaded, invalid = load_documents(sources)
    bundle, problems = check_bundle(loaded, invalid)
    own = [p for p in problems if p.code == "duplicate-name"]
    return Parsed(LoadResult(bundle, result.diagnostics + own, result.documents,
                             origins(loaded)), loaded, invalid)


def load_with_stored(sources: Iterable[tuple[str, str]],
                     stored: Iterable[Manifest]) -> LoadResult:
    """Validate `sources` as they would stand among `stored` (of which those the sources
    define again are replaced): every problem of the sources, and every cross-check of the
    whole."""
    return check_with_stored(parse(sources), stored)


def check_with_stored(parsed: Parsed, stored: Iterable[Manifest]) -> LoadResult:
    """`parsed` checked among `stored` (see `load_with_stored`), without parsing again."""
    loaded, invalid = parsed.loaded, parsed.invalid
    result = LoadResult(Bundle(), [d for d in parsed.result.diagnostics
                                   if d.code != "duplicate-name"], parsed.result.documents)
    given = {(m.kind, m.name) for m in loaded} | {(i.kind, i.name) for i in invalid}
    kept = [LoadedManifest(m, StoredDocument(stored_source(m.kind, m.metadata.name)))
            for m in stored if (m.kind, m.metadata.name) not in given]
    bundle, problems = check_bundle(loaded + kept, invalid)
    return LoadResult(bundle, result.diagnostics + problems, result.documents, origins(loaded))
