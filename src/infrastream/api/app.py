"""The FastAPI application: routes, problem-JSON error handlers, OpenAPI at /openapi.json and
interactive documentation at /docs that works offline (Swagger UI shipped in the package)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from infrastream import __version__
from infrastream.domain.errors import InfrastreamError
from infrastream.service.context import Services

from . import (
    docs,
    metrics,
    routes_evidence,
    routes_health,
    routes_insights,
    routes_notification_channels,
    routes_notifications,
    routes_scm,
    routes_sources,
    routes_sso,
)
from .problems import (
    MEDIA_TYPE,
    Contained,
    on_http_error,
    on_infrastream_error,
    on_validation_error,
)
from .routes import router


class InfrastreamApi(FastAPI):
    """FastAPI whose OpenAPI document says what the API really sends (see
    `openapi_document`)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = openapi_document(self)
        return self.openapi_schema


def create_app(services: Services) -> FastAPI:
    app = InfrastreamApi(title="Infrastream", version=__version__,
                  description="Release orchestration: manifests, versions, releases, "
                  "promotions, approvals and the audit trail. Every error is an RFC 9457 "
                  "problem (`application/problem+json`).",
                  docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.cli_sign_in = None  # set by `serve --oidc-cli-client-id` (routes_sso)
    app.add_exception_handler(InfrastreamError, on_infrastream_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_middleware(Contained)
    app.add_middleware(metrics.Timed)
    app.include_router(metrics.router)
    app.include_router(router)
    app.include_router(routes_evidence.router)
    app.include_router(routes_sources.router)
    app.include_router(routes_health.router)
    app.include_router(routes_insights.router)
    app.include_router(routes_scm.router)
    app.include_router(routes_sso.router)
    app.include_router(routes_notifications.router)
    app.include_router(routes_notification_channels.router)
    docs.mount(app)
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error response under `application/problem+json` (what
    the API really sends) instead of the operation's own media type."""
    document = get_openapi(title=app.title, version=app.version,
                           description=app.description, routes=app.routes)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and content:
                    response["content"] = {MEDIA_TYPE: next(iter(content.values()))}
    return document
