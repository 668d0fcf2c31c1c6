"""The Portal's pull-request pages: what the gate judged, by pull request and head commit.

`/pull-requests` lists the heads the SCM gate saw, newest first, each with links to the pull
request and the commit on the Git host, the status the gate last set and the pre-release run
of every application it concerns; `/pull-requests/{id}` is one head (commit statuses link
there until the head has a run). Read from `service.pull_requests`; no rule of its own.
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.errors import NotFound
from infrastream.service.pull_requests import list_heads

from .access import signed_in
from .pages import PAGE, nav
from .render import page

router = APIRouter()


@router.get("/pull-requests", name="pull-requests")
def pull_requests(request: Request, number: int | None = Query(None, ge=1),
                  repository: str | None = Query(None, max_length=255)) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    heads = list_heads(found.services, number=number, repository=repository or None,
                       limit=PAGE)
    return page(request, found.viewer, "pull_requests.html", heads=heads, number=number,
                repository=repository or "", **nav(found))


@router.get("/pull-requests/{head_id}", name="pull-request")
def pull_request(request: Request, head_id: int) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    heads = list_heads(found.services, head_id=head_id, limit=1)
    if not heads:
        raise NotFound(f"the gate saw no pull request head {head_id}")
    return page(request, found.viewer, "pull_requests.html", heads=heads, number=None,
                repository="", single=True, **nav(found))
