"""`infrastream codeowners`: the CODEOWNERS file of a manifest source's repository, from the
ownership rule (`domain.ownership`, rendered by `domain.codeowners`)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from infrastream.domain.codeowners import Owned, render
from infrastream.domain.errors import Invalid, NotFound
from infrastream.store.tables import manifest_objects, manifest_sources, teams

from .context import Services

HOSTS = ("github", "gitlab")


def codeowners(services: Services, source: str, *, host: str = "github",
               role_handles: Mapping[str, str] | None = None) -> str:
    if host not in HOSTS:
        raise Invalid(f"`{host}` is not a Git host (" + ", ".join(HOSTS) + ")")
    with services.db.connect() as conn:
        if conn.execute(select(manifest_sources.c.name)
                        .where(manifest_sources.c.name == source)).first() is None:
            raise NotFound(f"manifest source `{source}` does not exist")
        rows = conn.execute(select(manifest_objects.c.kind, manifest_objects.c.name,
                                   manifest_objects.c.source, manifest_objects.c.body)
                            .where(manifest_objects.c.owner == source)).all()
        handles = {r.name: (r.handles or {}).get(host) for r in conn.execute(select(teams))}
    objects = [Owned(r.source, r.kind, r.name,
                     (r.body.get("metadata") or {}).get("team")) for r in rows]
    return render(objects, team_handles={t: h for t, h in handles.items() if h},
                  role_handles=dict(role_handles or {}), host=host)
