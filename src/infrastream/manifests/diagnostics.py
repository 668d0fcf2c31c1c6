"""Diagnostics: the one shape every manifest problem takes.

Zuul taught us that configuration errors are part of the product, so a diagnostic always
carries a location (`file:line:col`, 1-based), a stable code a user can search for, a
message that states the problem and a hint that suggests the fix. Codes are kebab-case
names rather than numbers so they stay readable in CI logs; they never change meaning.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from .limits import MAX_APPROVALS, MAX_DEPTH, MAX_DURATION_TEXT, MAX_SCALAR_LENGTH, MAX_VALUES


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


#: Every code the validator can emit, with a one-line description (shown by docs and tests).
CODES: dict[str, str] = {
    "yaml-syntax": "the file is not well-formed YAML",
    "not-utf8": "the file is not UTF-8 text",
    "duplicate-key": "a mapping repeats a key",
    "unsupported-yaml": "a YAML feature manifests do not use (custom tags, merge keys)",
    "not-a-mapping": "a document is not a mapping of fields",
    "unknown-api-version": "apiVersion is not lowops.manifests.v1",
    "unknown-kind": "kind is not one of the known manifest kinds",
    "unknown-field": "a field the kind does not define",
    "missing-field": "a required field is absent",
    "wrong-type": "a field has a value of the wrong type",
    "invalid-value": "a field's value is not one of those allowed",
    "invalid-name": "a name is not a DNS-1123 label",
    "invalid-duration": "a duration is not like 30s, 10m, 1h30m or 2d, or is longer than "
                        f"{MAX_DURATION_TEXT}",
    "invalid-count": f"an approval count is below 1 or above {MAX_APPROVALS}",
    "unknown-type": "a check or target type that does not exist",
    "empty-stage": "a stage lists no environments",
    "track-without-stages": "a ReleaseTrack defines no stage in any lane",
    "duplicate-environment": "the same environment appears twice in one lane",
    "duplicate-name": "two manifests of one kind share a name",
    "missing-parent": "an Application or ApplicationSet has no metadata.parent",
    "unknown-parent": "metadata.parent names a manifest that does not exist",
    "wrong-parent-kind": "metadata.parent has a kind that cannot be this manifest's parent",
    "empty-application-set": "an ApplicationSet has no Application",
    "undeclared-environment": "a track uses an environment no Environment manifest declares",
    "unused-track": "a ReleaseTrack has no ApplicationSet",
    "duplicate-env-var": "an Application declares the same environment variable twice",
    "secret-with-value": "a secret environment variable carries its value in the manifest",
    "incomplete-escalation": "a track's approvalReminders names escalateAfter without "
                             "escalateTo, or the other way round",
    "no-manifests": "no manifest was found in the given input",
    "too-deep": f"values are nested deeper than {MAX_DEPTH} levels",
    "too-large": f"a scalar over {MAX_SCALAR_LENGTH:,} characters, an integer beyond 64 bits, or "
                 f"a document of more than {MAX_VALUES:,} values (aliases expanded)",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in the input, located at a 1-based line and column."""

    source: str
    line: int
    column: int
    severity: Severity
    code: str
    message: str
    hint: str = ""

    def render(self) -> str:
        head = f"{self.source}:{self.line}:{self.column}: {self.severity.value}[{self.code}] "
        text = head + self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    return (diagnostic.source, diagnostic.line, diagnostic.column, diagnostic.code)


def errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.is_error]


def warnings(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if not d.is_error]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A "did you mean `x`?" hint when one candidate is close to `word`, else ""."""
    options = list(candidates)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in options}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    if close:
        return f"did you mean `{close[0]}`?"
    if options:
        return "expected one of: " + ", ".join(f"`{o}`" for o in sorted(options))
    return ""
