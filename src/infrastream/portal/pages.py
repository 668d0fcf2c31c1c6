"""The portal's pages (GET): read the service layer, render a template.

Pages that change while people watch (the tracks overview, a release's pipeline) also serve
the changing part alone as a fragment, which htmx polls; without JavaScript the full page
shows the same thing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.errors import NotFound
from infrastream.service import merges, prerelease
from infrastream.service.auditing.search import audit_page, chain_status, verify_everything
from infrastream.service.identity import get_user
from infrastream.service.records.releases import ReleaseRef
from infrastream.service.views import release_lists
from infrastream.service.views.environment_matrix import environment_matrix
from infrastream.service.views.inbox import waiting_for
from infrastream.service.views.release_page import (
    ReleaseActions,
    check_output,
    production_diff,
    release_actions,
)
from infrastream.service.views.release_status import release_status
from infrastream.service.views.tracks_overview import tracks_overview

from .access import Visit, current, safe_next, signed_in, state
from .render import page, redirect

router = APIRouter()
POLL = "every 2s"
PAGE = 50


def nav(visit: Visit) -> dict[str, Any]:
    """What the layout shows on every page: the size of the viewer's inbox."""
    return {"inbox_count": len(waiting_for(visit.services, visit.principal))}


@router.get("/", name="overview")
def overview(request: Request) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    recent = release_lists.newest(services, limit=8)
    return page(request, me, "overview.html", tracks=tracks_overview(services),
                recent=recent["releases"], poll=POLL, **nav(found))


@router.get("/overview/tracks", name="overview-tracks")
def overview_tracks(request: Request) -> Response:
    """The tracks of the overview alone (what htmx polls)."""
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    return page(request, me, "_tracks.html", tracks=tracks_overview(services), poll=POLL,
                flash=None)


@router.get("/releases", name="releases")
def releases(request: Request, before: int | None = Query(None, ge=1),
             app_set: str | None = Query(None, alias="set", max_length=63)) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    listing = release_lists.newest(services, app_set=app_set, before=before,
                                         limit=PAGE)
    return page(request, me, "releases.html", listing=listing, app_set=app_set or "",
                before=before, **nav(found))


@router.get("/hotfixes", name="hotfixes")
def hotfixes(request: Request, before: int | None = Query(None, ge=1)) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    listing = release_lists.newest(services, lane="hotfix", before=before, limit=PAGE)
    details = release_lists.hotfix_details(services, [r["id"] for r in listing["releases"]])
    return page(request, me, "hotfixes.html", listing=listing, details=details, before=before,
                **nav(found))


def _key(actions: ReleaseActions) -> str:
    """A short fingerprint of the actions a viewer has, to notice when they change."""
    return hashlib.sha256(json.dumps(actions.to_json(), sort_keys=True).encode()
                          ).hexdigest()[:12]


def release_context(visit: Visit, ref: ReleaseRef) -> dict[str, Any]:
    status = release_status(visit.services, ref).to_json()
    actions = release_actions(visit.services, visit.principal, ref)
    return {"status": status, "actions": actions, "actions_key": _key(actions),
            "diff": production_diff(visit.services, ref), "poll": POLL,
            "merges": merges.of_release(visit.services, ref.app_set, ref.name)}


@router.get("/releases/{app_set}/{name}", name="release")
def release(request: Request, app_set: str, name: str) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    ref = ReleaseRef(app_set, name)
    return page(request, found.viewer, "release.html", **release_context(found, ref),
                **nav(found))


@router.get("/releases/{app_set}/{name}/pipeline", name="pipeline")
def pipeline(request: Request, app_set: str, name: str,
             actions: str = Query("", max_length=64)) -> Response:
    """The live part of a release page (what htmx polls): the pipeline and summary, and the
    action forms too when what the viewer may do has changed since the page was shown."""
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    ref = ReleaseRef(app_set, name)
    status = release_status(services, ref).to_json()
    allowed = release_actions(services, found.principal, ref)
    key = _key(allowed)
    return page(request, me, "_pipeline_poll.html", status=status, poll=POLL, flash=None,
                actions_key=key, actions=allowed if key != actions else None)


@router.get("/releases/{app_set}/{name}/checks/{stage}/{attempt}/{environment}/{app}/{kind}",
            name="check")
def check(request: Request, app_set: str, name: str, stage: int, attempt: int,
          environment: str, app: str, kind: str) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    result = check_output(services, ReleaseRef(app_set, name), stage, attempt, environment,
                          app, kind)
    return page(request, me, "check.html", check=result, **nav(found))


@router.get("/inbox", name="inbox")
def inbox(request: Request) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    items = waiting_for(services, found.principal)
    return page(request, me, "inbox.html", items=items, inbox_count=len(items))


@router.get("/environments", name="environments")
def environments(request: Request) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    return page(request, me, "environments.html", matrix=environment_matrix(services),
                **nav(found))


@router.get("/audit", name="audit")
def audit(request: Request, before: int | None = Query(None, ge=1),
          actor: str = Query("", max_length=63), action: str = Query("", max_length=63),
          object_type: str = Query("", alias="type", max_length=32),
          object_id: str = Query("", alias="object", max_length=200)) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    filters = {"actor": actor.strip(), "action": action.strip(), "type": object_type.strip(),
               "object": object_id.strip()}
    result = audit_page(services, actor=filters["actor"], action=filters["action"],
                        object_type=filters["type"], object_id=filters["object"],
                        before=before)
    return page(request, me, "audit.html", result=result, filters=filters, before=before,
                chain=chain_status(services), full=None, **nav(found))


@router.get("/audit/verify", name="audit-verify")
def audit_verify(request: Request) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    result = verify_everything(services)
    return page(request, me, "verify.html", full=result, **nav(found))


@router.get("/prereleases", name="prereleases")
def prereleases(request: Request, app: str | None = Query(None, max_length=63)) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    runs = [r.to_json() for r in prerelease.list_prereleases(services, app or None, PAGE)]
    return page(request, me, "prereleases.html", runs=runs, app=app or "",
                **nav(found))


@router.get("/prereleases/{run_id}", name="prerelease")
def prerelease_run(request: Request, run_id: int) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    run = prerelease.prerelease_status(services, run_id).to_json()
    return page(request, me, "prerelease.html", run=run, **nav(found))


@router.get("/sign-in", name="sign-in")
def sign_in_page(request: Request,
                 wanted: str | None = Query(None, alias="next", max_length=500)) -> Response:
    services, me = current(request)
    if me.principal is not None:
        return redirect(request, me, safe_next(request, wanted))
    portal = state(request)
    demo_users = []
    for user in portal.demo_tokens:
        try:
            demo_users.append({"name": user, "roles": sorted(get_user(services, user).roles)})
        except NotFound:  # a demo user that was removed is simply not offered
            continue
    return page(request, me, "sign_in.html", next=wanted or "", demo_users=demo_users,
                sso=portal.sso is not None, inbox_count=0)
