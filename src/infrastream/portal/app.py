"""Mounting the portal on the API's FastAPI application.

`mount_portal(app, services)` adds the portal under `/portal` (and sends `/` there): pages
rendered on the server with Jinja2, htmx (vendored, no CDN) for live updates, sign-in with an
API token. The portal is a face like the API: every page and action calls the service layer
with the signed-in principal, and the services decide what is allowed.

In a demo (`demo_tokens` given: user name → API token) the sign-in page says it is a demo
and offers one-click sign-in as each demo user; the tokens never reach the browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse

from infrastream.domain.errors import InfrastreamError
from infrastream.service import sessions
from infrastream.service.context import Services

from . import actions, insights_page, manifests_page, pages, pull_request_pages, sso_routes
from .access import PortalState
from .errors import on_http_error, on_service_error
from .single_sign_on import SingleSignOn

PREFIX = "/portal"
STATIC = Path(__file__).parent / "static"


def create_portal(services: Services, *,
                  demo_tokens: Mapping[str, str] | None = None,
                  sso: SingleSignOn | None = None) -> FastAPI:
    """The portal as its own ASGI application (what `mount_portal` mounts)."""
    portal = FastAPI(title="Infrastream portal", docs_url=None, redoc_url=None,
                     openapi_url=None)
    portal.state.portal = PortalState(services, sessions.session_key(services),
                                      dict(demo_tokens or {}), sso)
    portal.add_exception_handler(InfrastreamError, on_service_error)
    portal.add_exception_handler(StarletteHTTPException, on_http_error)
    portal.mount("/static", StaticFiles(directory=STATIC), name="static")
    portal.include_router(pages.router)
    portal.include_router(pull_request_pages.router)
    portal.include_router(actions.router)
    portal.include_router(sso_routes.router)
    portal.include_router(manifests_page.router)
    portal.include_router(insights_page.router)
    return portal


def mount_portal(app: FastAPI, services: Services, *,
                 demo_tokens: Mapping[str, str] | None = None,
                 sso: SingleSignOn | None = None) -> None:
    """Serve the portal at `/portal` of `app`, and send `/` there.

    `demo_tokens` (user name → API token) makes it a demo: the sign-in page says so and
    offers one-click sign-in as each of those users.
    """
    app.mount(PREFIX, create_portal(services, demo_tokens=demo_tokens, sso=sso), name="portal")

    async def to_portal() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=307)

    app.add_api_route("/", to_portal, methods=["GET"], include_in_schema=False)
