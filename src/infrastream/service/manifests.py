"""Manifests in the control plane: `apply` stores a new revision, `get` reads them back.

Apply works like `kubectl apply`: the applied manifests replace those of the same kind and
name, the others stay. The merged whole is validated before anything is written (stored
manifests take part as synthetic sources named `stored:Kind/name`), so an Application can be
applied alone when its set already exists, and nothing is stored if any error is found.
Each kind can only be applied by its owners (DESIGN §2).
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml
from sqlalchemy import insert, select, update

from infrastream.domain.errors import Invalid, NotFound
from infrastream.domain.roles import KIND_OWNERS, Principal, Role
from infrastream.manifests import Diagnostic, load_texts
from infrastream.manifests.diagnostics import sort_key
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import manifest_objects, manifest_revisions

from .auditing import trail as audit
from .context import Services
from .permissions import require
from .records.manifests import current_revision, stored_source


def apply(services: Services, principal: Principal, sources: list[tuple[str, str]],
          source_root: str | None = None) -> dict[str, Any]:
    """Validate and store manifests. Raises Invalid (with every diagnostic) on any error."""
    applied = load_texts(sources, cross_check=False)
    if not applied.ok:
        raise Invalid("the manifests are invalid; nothing was applied",
                      diagnostics=_diagnostics(applied.diagnostics))
    objects = [(m.kind, m.metadata.name, m) for m in applied.bundle.manifests()]
    if not objects:
        raise Invalid("no manifest found in the input; nothing was applied")
    for kind, name, _ in objects:
        owners = KIND_OWNERS[kind] | {Role.ADMIN}
        require(principal, frozenset(owners), f"apply {kind} `{name}`")
    now = services.now()
    with services.transaction() as conn:
        stored = {(r.kind, r.name): r for r in conn.execute(select(manifest_objects))}
        merged_sources = list(sources) + [
            (stored_source(kind, name), yaml.safe_dump(row.body, sort_keys=False))
            for (kind, name), row in stored.items()
            if not any(k == kind and n == name for k, n, _ in objects)
        ]
        merged = load_texts(merged_sources)
        if not merged.ok:
            raise Invalid("the manifests are invalid together with those already applied; "
                          "nothing was applied", diagnostics=_diagnostics(merged.diagnostics))
        changes: list[dict[str, str]] = []
        bodies = {(k, n): m.model_dump(mode="json", by_alias=True) for k, n, m in objects}
        if all(stored.get(key) is not None and stored[key].body == body
               for key, body in bodies.items()):
            return {"revision": current_revision(conn),
                    "changes": [{"kind": k, "name": n, "change": "unchanged"}
                                for k, n in bodies],
                    "warnings": [d.to_json() for d in merged.diagnostics if not d.is_error]}
        revision_id = inserted_id(conn.execute(insert(manifest_revisions).values(
            created_at=now, created_by=principal.name, source_root=source_root,
            sources=[{"source": s, "sha256": hashlib.sha256(t.encode()).hexdigest()}
                     for s, t in sources],
            summary=[],
        )))
        for kind, name, _manifest in objects:
            body = bodies[(kind, name)]
            previous = stored.get((kind, name))
            if previous is not None and previous.body == body:
                changes.append({"kind": kind, "name": name, "change": "unchanged"})
                continue
            values = {"revision_id": revision_id, "body": body, "source": f"{kind}/{name}",
                      "source_root": source_root}
            if previous is None:
                conn.execute(insert(manifest_objects).values(kind=kind, name=name, **values))
                changes.append({"kind": kind, "name": name, "change": "created"})
            else:
                conn.execute(update(manifest_objects).where(
                    (manifest_objects.c.kind == kind) & (manifest_objects.c.name == name)
                ).values(**values))
                changes.append({"kind": kind, "name": name, "change": "configured"})
            audit.record(conn, at=now, actor=principal.name, action="manifest.apply",
                         object_type=kind, object_id=name,
                         before=previous.body if previous is not None else None, after=body)
        conn.execute(update(manifest_revisions).where(manifest_revisions.c.id == revision_id)
                     .values(summary=changes))
    return {"revision": revision_id, "changes": changes,
            "warnings": [d.to_json() for d in merged.diagnostics if not d.is_error]}


def _diagnostics(items: list[Diagnostic]) -> list[dict[str, Any]]:
    return [d.to_json() for d in sorted(items, key=sort_key)]


def get_objects(services: Services, kind: str | None = None,
                name: str | None = None) -> list[dict[str, Any]]:
    query = select(manifest_objects).order_by(manifest_objects.c.kind, manifest_objects.c.name)
    if kind:
        query = query.where(manifest_objects.c.kind == kind)
    if name:
        query = query.where(manifest_objects.c.name == name)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    if name and not rows:
        raise NotFound(f"{kind or 'manifest'} `{name}` does not exist")
    return [{"kind": r.kind, "name": r.name, "revision": r.revision_id, "manifest": r.body}
            for r in rows]
