"""Manifests in the control plane: `apply` stores a new revision, `delete` removes one
object, `get` and `history` read them back.

Apply works like `kubectl apply`: the applied manifests replace those of the same kind and
name, the others stay. The merged whole is validated before anything is written (stored
manifests take part as they are stored, reported as `stored:Kind/name`), so an Application
can be applied alone when its set already exists, and nothing is stored if any error is
found. `dry_run` answers what would change, with each object before and after
(`infrastream diff`). Who may change what is `domain.ownership` (kind owners, and team
members for a team's manifests); objects a manifest source owns are changed in its
repository, never here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from infrastream.domain.errors import Forbidden, Invalid, NotFound
from infrastream.domain.ownership import refusal
from infrastream.domain.roles import Principal
from infrastream.manifests import KINDS, Diagnostic, check_with_stored, load_with_stored, parse
from infrastream.manifests.diagnostics import sort_key
from infrastream.store.tables import manifest_history, manifest_objects, manifest_revisions

from .auditing import refusals
from .context import Services
from .readmodel import ReadModel
from .records.manifests import current_revision
from .records.teams import teams_of
from .revisions import Plan, owner_label, plan, result, write


class DiagnosticView(ReadModel):
    """A problem found in manifests, at a 1-based line and column of its source."""

    source: str
    line: int
    column: int
    severity: str
    """`error` or `warning`."""
    code: str
    """A stable code (README, "Validation codes")."""
    message: str
    hint: str = ""


class Change(ReadModel):
    kind: str
    name: str
    change: str
    """`created`, `configured`, `unchanged` or `deleted`."""


class ObjectDiff(Change):
    before: dict[str, Any] | None
    """The object as stored (None: it does not exist yet)."""
    after: dict[str, Any] | None
    """The object as it would be stored (None: it would be deleted)."""


class ApplyResult(ReadModel):
    revision: int
    changes: list[Change]
    warnings: list[DiagnosticView]
    dry_run: bool = False
    objects: list[ObjectDiff] = []
    """With a dry run: every object before and after."""


class StoredManifest(ReadModel):
    kind: str
    name: str
    revision: int
    manifest: dict[str, Any]
    """The manifest as applied (its JSON Schema: `infrastream schema`)."""
    managed_by: str = "apply"
    """`apply`, or `source/NAME` for a manifest from Git."""
    file: str = ""
    commit: str | None = None
    author: str | None = None
    changed_at: str | None = None


class HistoryEntry(ReadModel):
    revision: int
    change: str
    manifest: dict[str, Any] | None
    at: str
    by: str
    source: str | None
    commit: str | None
    author: str | None


def _applied(outcome: dict[str, Any], **extra: Any) -> ApplyResult:
    return ApplyResult.model_validate({**outcome, **extra})


def _sources_named(arguments: dict[str, Any]) -> str:
    names = [source for source, _text in arguments["sources"]]
    return names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "") if names else "-"


def diagnostics_json(items: list[Diagnostic]) -> list[dict[str, Any]]:
    return [d.to_json() for d in sorted(items, key=sort_key)]


def check_may_change(conn: Connection, principal: Principal, planned: Plan) -> None:
    """Refuse (Forbidden, every reason at once) the changes `principal` may not make."""
    member_of = teams_of(conn, principal.name)
    problems = []
    for change in planned.changes:  # unchanged ones too: a refusal must not depend on state
        teams = {_team(change["before"]), _team(change["after"])}
        reason = refusal(principal, change["kind"], change["name"], teams, member_of)
        if reason:
            problems.append(reason)
    if problems:
        raise Forbidden("; ".join(problems), problems=problems)


def _team(body: dict[str, Any] | None) -> str | None:
    team = ((body or {}).get("metadata") or {}).get("team")
    return str(team) if team else None


@refusals.audited("manifest.apply", "manifests", _sources_named)
def apply(services: Services, principal: Principal, sources: list[tuple[str, str]],
          source_root: str | None = None, *, dry_run: bool = False) -> ApplyResult:
    """Validate and store manifests. Raises Invalid (with every diagnostic) on any error."""
    applied = parse(sources)
    if not applied.ok:
        raise Invalid("the manifests are invalid; nothing was applied",
                      diagnostics=diagnostics_json(applied.result.diagnostics))
    objects = list(applied.result.bundle.manifests())
    if not objects:
        raise Invalid("no manifest found in the input; nothing was applied")
    with services.transaction() as conn:
        planned = plan(conn, objects, [], owner=None)
        check_may_change(conn, principal, planned)
        merged = check_with_stored(applied, planned.kept())
        if not merged.ok:
            raise Invalid("the manifests are invalid together with those already applied; "
                          "nothing was applied", diagnostics=diagnostics_json(
                              merged.diagnostics))
        warnings = [d.to_json() for d in merged.diagnostics if not d.is_error]
        if dry_run:
            return _applied(result(planned, current_revision(conn), warnings), dry_run=True,
                            objects=[_diff(c) for c in planned.changes])
        if not planned.changed:
            return _applied(result(planned, current_revision(conn), warnings))
        revision = write(conn, planned, at=services.now(), actor=principal.name, owner=None,
                         source_root=source_root, sources=sources, origins=merged.origins)
    return _applied(result(planned, revision, warnings))


def _diff(change: dict[str, Any]) -> dict[str, Any]:
    return {k: change[k] for k in ("kind", "name", "change", "before", "after")}


@refusals.audited("manifest.delete", "manifest", lambda a: f"{a['kind']}/{a['name']}")
def delete_manifest(services: Services, principal: Principal, kind: str,
                    name: str) -> ApplyResult:
    """Delete one object applied with `apply` (a source's objects go with their file)."""
    if kind not in KINDS:
        raise Invalid(f"`{kind}` is not a manifest kind (" + ", ".join(KINDS) + ")")
    with services.transaction() as conn:
        planned = _deletion(conn, kind, name)
        check_may_change(conn, principal, planned)
        revision = write(conn, planned, at=services.now(), actor=principal.name, owner=None,
                         source_root=None)
    return _applied(result(planned, revision, []))


def _deletion(conn: Connection, kind: str, name: str) -> Plan:
    found = conn.execute(select(manifest_objects.c.owner).where(
        (manifest_objects.c.kind == kind) & (manifest_objects.c.name == name))).first()
    if found is None:
        raise NotFound(f"{kind} `{name}` does not exist")
    if found.owner is not None:
        raise Forbidden(f"{kind} `{name}` is managed by {owner_label(found.owner)}: delete it "
                        "from that repository")
    planned = plan(conn, [], [(kind, name)], owner=None)
    remaining = load_with_stored([], planned.remaining())
    if not remaining.ok:
        raise Invalid(f"deleting {kind} `{name}` would leave the manifests invalid; nothing "
                      "was deleted", diagnostics=diagnostics_json(remaining.diagnostics))
    return planned


def get_objects(services: Services, kind: str | None = None,
                name: str | None = None) -> list[StoredManifest]:
    query = (select(manifest_objects, manifest_revisions.c.commit,
                    manifest_revisions.c.author, manifest_revisions.c.created_by,
                    manifest_revisions.c.created_at)
             .join(manifest_revisions, manifest_revisions.c.id == manifest_objects.c.revision_id)
             .order_by(manifest_objects.c.kind, manifest_objects.c.name))
    if kind:
        query = query.where(manifest_objects.c.kind == kind)
    if name:
        query = query.where(manifest_objects.c.name == name)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    if name and not rows:
        raise NotFound(f"{kind or 'manifest'} `{name}` does not exist")
    return [StoredManifest(kind=r.kind, name=r.name, revision=r.revision_id, manifest=r.body,
                           managed_by=f"source/{r.owner}" if r.owner else "apply",
                           file=r.source, commit=r.commit, author=r.author or r.created_by,
                           changed_at=r.created_at.isoformat()) for r in rows]


def history(services: Services, kind: str, name: str) -> list[HistoryEntry]:
    """Every change of one object, newest first, deletions included."""
    query = (select(manifest_history, manifest_revisions.c.created_at,
                    manifest_revisions.c.created_by, manifest_revisions.c.commit,
                    manifest_revisions.c.author, manifest_revisions.c.manifest_source)
             .join(manifest_revisions, manifest_revisions.c.id == manifest_history.c.revision_id)
             .where((manifest_history.c.kind == kind) & (manifest_history.c.name == name))
             .order_by(manifest_history.c.id.desc()))
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        raise NotFound(f"{kind} `{name}` has no history")
    return [HistoryEntry(revision=r.revision_id, change=r.change, manifest=r.body,
                         at=r.created_at.isoformat(), by=r.created_by,
                         source=r.manifest_source, commit=r.commit, author=r.author)
            for r in rows]

