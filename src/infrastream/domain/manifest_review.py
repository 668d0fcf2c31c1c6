"""What a manifest pull request would do, said the way a reviewer needs it: the verdict, the
plan (which objects the merge creates, configures or deletes, and which fields), who must
approve it, and every problem at its file and line.

The same ownership rule that judges `apply` (`domain.ownership`) names the reviewers here, so
a pull request that changes team B's Application says "needs a reviewer from team `b`"
before anyone merges it — and CODEOWNERS, generated from the same rule, lets the Git host
enforce it. Pure: the service layer hands in the planned changes and the diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infrastream.manifests import Diagnostic

from .ownership import reviewers

MAX_FIELDS = 8
"""Changed fields named per object in the summary (the rest are counted)."""
MAX_ANNOTATIONS = 200


@dataclass(frozen=True)
class PlannedChange:
    kind: str
    name: str
    change: str
    """`created`, `configured` or `deleted` (unchanged objects are left out)."""
    fields: tuple[str, ...]
    """The dotted paths whose values differ (for `configured`)."""
    reviewers: tuple[str, ...]
    """Who must approve, in words (both teams' reviewers when the change moves the object)."""


@dataclass(frozen=True)
class Review:
    ok: bool
    title: str
    """One line: the verdict (for the commit status's description too)."""
    summary: str
    """Markdown: the plan, the reviewers and the problems."""
    changes: tuple[PlannedChange, ...]
    reviewers: tuple[str, ...]
    problems: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]


def changed_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The dotted paths at which two manifest bodies differ (lists compare whole)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            found += changed_fields(before.get(key), after.get(key), f"{prefix}{key}.")
        return found
    return [] if before == after else [prefix.rstrip(".") or "(whole object)"]


def _team(body: Mapping[str, Any] | None) -> str | None:
    team = ((body or {}).get("metadata") or {}).get("team")
    return str(team) if team else None


def planned(changes: Sequence[Mapping[str, Any]]) -> list[PlannedChange]:
    """The changes of a plan (`service.revisions.Plan.changes`) that change something."""
    result = []
    for item in changes:
        if item["change"] == "unchanged":
            continue
        before, after = item.get("before"), item.get("after")
        teams: list[str | None] = [*sorted({t for t in (_team(before), _team(after)) if t})]
        teams = teams or [None]
        fields = () if item["change"] != "configured" else tuple(
            f for f in changed_fields(before, after) if not f.startswith("status"))
        result.append(PlannedChange(item["kind"], item["name"], item["change"], fields,
                                    tuple(dict.fromkeys(reviewers(item["kind"], t)
                                                        for t in teams))))
    return result


def review(changes: Sequence[PlannedChange], diagnostics: Sequence[Diagnostic], *,
           refused: str | None = None, commit: str = "") -> Review:
    """The verdict on a pull request's tree. `refused`: why the plan itself was refused (an
    object another source owns, a deletion something still needs)."""
    problems = tuple(d for d in diagnostics if d.is_error)
    warnings = tuple(d for d in diagnostics if not d.is_error)
    needed = tuple(dict.fromkeys(r for c in changes for r in c.reviewers))
    ok = not problems and refused is None
    if not ok:
        count = len(problems) + (1 if refused else 0)
        title = (f"{count} problem{'s' if count != 1 else ''}: "
                 + (refused or one_line(problems[0])))
    elif not changes:
        title = "valid; merging changes no manifest"
    else:
        title = (f"valid; {len(changes)} change{'s' if len(changes) != 1 else ''}; needs "
                 + ", ".join(needed))
    return Review(ok, title, _summary(ok, changes, needed, problems, warnings, refused,
                                      commit), tuple(changes), needed, problems, warnings)


def one_line(diagnostic: Diagnostic) -> str:
    """`file:line:col: code: message`, without the hint."""
    d = diagnostic
    return f"{d.source}:{d.line}:{d.column}: {d.code}: {d.message}"


def _item(diagnostic: Diagnostic) -> str:
    hint = f" (hint: {diagnostic.hint})" if diagnostic.hint else ""
    return f"- `{one_line(diagnostic)}`{hint}"


def _summary(ok: bool, changes: Sequence[PlannedChange], needed: Sequence[str],
             problems: Sequence[Diagnostic], warnings: Sequence[Diagnostic],
             refused: str | None, commit: str) -> str:
    head = f" at `{commit[:12]}`" if commit else ""
    lines = [f"**{'Valid' if ok else 'Invalid'}**: the manifests{head} "
             + ("can be merged." if ok else "cannot be applied as they are.")]
    if refused:
        lines += ["", f"The merge would be refused: {refused}"]
    if changes:
        lines += ["", "### What merging changes", "", "| change | object | fields |",
                  "|---|---|---|"]
        for c in changes:
            shown = ", ".join(f"`{f}`" for f in c.fields[:MAX_FIELDS])
            if len(c.fields) > MAX_FIELDS:
                shown += f" and {len(c.fields) - MAX_FIELDS} more"
            lines.append(f"| {c.change} | {c.kind} `{c.name}` | {shown} |")
        lines += ["", "### Who must approve", ""]
        lines += [f"- changes {c.kind} `{c.name}`: needs {' and '.join(c.reviewers)}"
                  for c in changes]
    elif ok:
        lines += ["", "Merging changes no manifest."]
    if problems:
        lines += ["", f"### Problems ({len(problems)})", ""]
        lines += [_item(d) for d in problems[:MAX_ANNOTATIONS]]
    if warnings:
        lines += ["", f"### Warnings ({len(warnings)})", ""]
        lines += [_item(d) for d in warnings[:MAX_ANNOTATIONS]]
    return "\n".join(lines)
