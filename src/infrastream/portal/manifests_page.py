"""The portal's Manifests page: where each manifest comes from (a Git source and its commit
and author, or `infrastream apply` and who), and each manifest source's state with the
diagnostics of a commit it refused; platform engineers may sync a source now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.errors import InfrastreamError
from infrastream.domain.roles import MANAGE_SOURCES
from infrastream.service import manifests, sources

from .access import signed_in
from .actions import Form, forged
from .pages import nav
from .render import page, redirect

router = APIRouter()


def _context(services: Any, principal: Any) -> dict[str, Any]:
    return {"sources": sources.list_sources(services),
            "objects": manifests.get_objects(services),
            "may_sync": principal.holds(MANAGE_SOURCES)}


@router.get("/manifests", name="manifests")
def manifests_page(request: Request) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    return page(request, found.viewer, "manifests.html",
                **_context(found.services, found.principal), **nav(found))


@router.post("/manifests/sources/{name}/sync", name="source-sync")
def sync(request: Request, name: str, form: Form) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    me = found.viewer
    if not me.csrf_ok(form.get("csrf")):
        return forged(request, me)
    try:
        status = sources.request_sync(found.services, found.principal, name)
    except InfrastreamError as exc:  # post/redirect/get: a reload never syncs again
        me.remember("error", exc.reason)
        return redirect(request, me, "/manifests")
    me.remember("ok" if status["state"] == "ok" else "error",
                f"Source {name}: {status['message']}")
    return redirect(request, me, "/manifests")
