"""One new revision of the control plane's manifests, written as a whole or not at all.

`apply`, `delete` and a manifest source's sync all end here: given what the caller wants to
put and to delete, `plan` compares it with what is stored (created, configured, unchanged,
deleted), refuses deletions something still needs (`domain.deletion`), and `write` stores
the objects, their history and one audit entry per change in the caller's transaction, with
the revision row naming who or which source (commit, author) made it. The history keeps
every body; each audit entry binds its change with the body's sha256 (`digest`), so an
auditor can check any historic body against the hash chain. A revision that changes
nothing writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from infrastream.domain.deletion import refusals
from infrastream.domain.errors import Conflict
from infrastream.domain.release import canonical_json
from infrastream.manifests import Manifest, assemble, from_body
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import (
    manifest_history,
    manifest_objects,
    manifest_revisions,
    releases,
)

from .auditing import trail as audit
from .records.occupancy import occupants

_STORED = select(manifest_objects.c.kind, manifest_objects.c.name, manifest_objects.c.body,
                 manifest_objects.c.owner, manifest_objects.c.source_root)
_ACTIVE = select(releases.c.app_set, releases.c.name).where(releases.c.state == "active")


@dataclass(frozen=True)
class Stored:
    kind: str
    name: str
    body: dict[str, Any]
    owner: str | None
    source_root: str | None

    @property
    def team(self) -> str | None:
        team = (self.body.get("metadata") or {}).get("team")
        return str(team) if team else None


def stored(conn: Connection) -> dict[tuple[str, str], Stored]:
    """Every stored manifest by (kind, name), with its body and owner."""
    return {(r.kind, r.name): Stored(r.kind, r.name, r.body, r.owner, r.source_root)
            for r in conn.execute(_STORED)}


def owner_label(owner: str | None) -> str:
    return f"source `{owner}`" if owner else "`infrastream apply`"


@dataclass
class Plan:
    """What a revision changes, object by object."""

    puts: dict[tuple[str, str], dict[str, Any]]
    deletes: list[tuple[str, str]]
    stored: dict[tuple[str, str], Stored]
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c["change"] != "unchanged" for c in self.changes)

    def kept(self) -> list[Manifest]:
        """The stored manifests the revision neither puts nor deletes."""
        gone = set(self.deletes)
        return [from_body(key[0], item.body) for key, item in self.stored.items()
                if key not in self.puts and key not in gone]

    def remaining(self) -> list[Manifest]:
        """The manifests the control plane holds once the revision is written."""
        return self.kept() + [from_body(kind, body) for (kind, _name), body in self.puts.items()]


def plan(conn: Connection, puts: Sequence[Manifest], deletes: Sequence[tuple[str, str]],
         *, owner: str | None) -> Plan:
    """Compare the wanted state with what is stored; refuse what the caller may not change
    (objects another source or `apply` owns) and deletions something still needs."""
    found = stored(conn)
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        (str(m.kind), m.metadata.name): m.model_dump(mode="json", by_alias=True) for m in puts}
    taken = [f"{kind} `{name}` is managed by {owner_label(found[(kind, name)].owner)}"
             for kind, name in bodies
             if (kind, name) in found and found[(kind, name)].owner != owner]
    if taken:
        raise Conflict("; ".join(taken) + ": change it there (nothing was changed)",
                       problems=taken)
    result = Plan(bodies, list(deletes), found)
    for key, body in bodies.items():
        before = found.get(key)
        change = "created" if before is None else (
            "unchanged" if before.body == body else "configured")
        result.changes.append({"kind": key[0], "name": key[1], "change": change,
                               "before": before.body if before else None, "after": body})
    for key in deletes:
        result.changes.append({"kind": key[0], "name": key[1], "change": "deleted",
                               "before": found[key].body, "after": None})
    if deletes:
        active: dict[str, list[str]] = {}
        for row in conn.execute(_ACTIVE):
            active.setdefault(row.app_set, []).append(row.name)
        envs = [name for kind, name in deletes if kind == "Environment"]
        busy = {o.environment for o in occupants(conn, envs)}
        problems = refusals(deletes, assemble(result.remaining()), active_releases=active,
                            occupied=busy)
        if problems:
            raise Conflict("; ".join(problems) + " (nothing was changed)", problems=problems)
    return result


def write(conn: Connection, planned: Plan, *, at: datetime, actor: str, owner: str | None,
          source_root: str | None, sources: Sequence[tuple[str, str]] = (),
          origins: Mapping[tuple[str, str], str] | None = None,
          meta: Mapping[str, Any] | None = None) -> int:
    """Store the revision; its id. Call only when `planned.changed`. `origins` names the
    file each object came from (kept as the object's `source`)."""
    origins = origins or {}
    meta = dict(meta or {})
    summary = [{k: c[k] for k in ("kind", "name", "change")} for c in planned.changes]
    revision_id = inserted_id(conn.execute(insert(manifest_revisions).values(
        created_at=at, created_by=actor, source_root=source_root,
        sources=[{"source": s, "sha256": hashlib.sha256(t.encode()).hexdigest()}
                 for s, t in sources],
        summary=summary, manifest_source=meta.get("source"), commit=meta.get("commit"),
        author=meta.get("author"))))
    created, history, entries = [], [], []
    for change in planned.changes:
        kind, name, what = change["kind"], change["name"], change["change"]
        if what == "unchanged":
            continue
        values = {"revision_id": revision_id, "body": change["after"],
                  "source": origins.get((kind, name), f"{kind}/{name}"),
                  "source_root": source_root, "owner": owner}
        if what == "created":
            created.append({"kind": kind, "name": name, **values})
        elif what == "configured":
            conn.execute(update(manifest_objects).where(
                (manifest_objects.c.kind == kind) & (manifest_objects.c.name == name)
            ).values(**values))
        else:
            conn.execute(delete(manifest_objects).where(
                (manifest_objects.c.kind == kind) & (manifest_objects.c.name == name)))
        history.append({"revision_id": revision_id, "kind": kind, "name": name,
                        "change": what, "body": change["after"]})
        entries.append(audit.NewEntry(
            at, actor, "manifest.delete" if what == "deleted" else "manifest.apply", kind,
            name, before=_digest(change["before"]), after={
                "revision": revision_id, "change": what, "digest": _digest(change["after"]),
                "file": values["source"], **{k: v for k, v in meta.items() if v}}))
    if created:
        conn.execute(insert(manifest_objects), created)
    if history:
        conn.execute(insert(manifest_history), history)
    if entries:
        audit.record_many(conn, entries)
    return revision_id


def _digest(body: dict[str, Any] | None) -> str | None:
    """What the audit trail binds a manifest body with (the body is in the history)."""
    return None if body is None else "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def result(planned: Plan, revision: int, warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """What apply, delete and sync answer: the revision, each change, the warnings."""
    return {"revision": revision,
            "changes": [{k: c[k] for k in ("kind", "name", "change")}
                        for c in planned.changes],
            "warnings": warnings}
