"""Who may see a portal page: the signed-in viewer, or a way to the sign-in page.

Only *being signed in* is checked here. What a person may see or do is decided by the
service layer, as for the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.roles import Principal
from infrastream.service.context import Services

from .render import redirect, root
from .session import Viewer, viewer
from .single_sign_on import SingleSignOn

MAX_FORM = 64 * 1024


@dataclass
class PortalState:
    services: Services
    key: bytes
    demo_tokens: dict[str, str] = field(default_factory=dict)
    sso: SingleSignOn | None = None

    @property
    def demo(self) -> bool:
        return bool(self.demo_tokens)


def state(request: Request) -> PortalState:
    return cast(PortalState, request.app.state.portal)


def current(request: Request) -> tuple[Services, Viewer]:
    portal = state(request)
    return portal.services, viewer(request, portal.services, portal.key)


@dataclass(frozen=True)
class Visit:
    """A request of a signed-in person."""

    services: Services
    viewer: Viewer
    principal: Principal


def signed_in(request: Request) -> Visit | Response:
    """The signed-in visit, or the response that sends the viewer to sign in."""
    services, me = current(request)
    if me.principal is not None:
        return Visit(services, me, me.principal)
    if me.ended:
        me.remember("error", me.ended)
    if request.headers.get("HX-Request"):
        # htmx: stop polling (286) and load the sign-in page instead of swapping a fragment
        response = Response(status_code=286,
                            headers={"HX-Redirect": root(request) + "/sign-in"})
        return me.store(request, response)
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, me, "/sign-in?next=" + quote(wanted, safe="/"))


def safe_next(request: Request, wanted: str | None) -> str:
    """A portal path to go to after sign-in (never another site)."""
    prefix = root(request)
    if wanted and wanted.startswith(prefix + "/") and not wanted.startswith("//") \
            and "\\" not in wanted:
        return wanted[len(prefix):]
    return "/"


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form (the portal's forms send nothing else)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
