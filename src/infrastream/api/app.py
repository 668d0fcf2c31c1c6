"""The FastAPI application: routes, problem-JSON error handlers, OpenAPI at /openapi.json."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from infrastream import __version__
from infrastream.domain.errors import InfrastreamError
from infrastream.service.context import Services

from . import routes_evidence, routes_health, routes_insights, routes_scm, routes_sources
from .problems import on_http_error, on_infrastream_error, on_validation_error
from .routes import router


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="Infrastream", version=__version__,
                  description="Release orchestration: manifests, versions, releases, "
                  "promotions, approvals and the audit trail.")
    app.state.services = services
    app.add_exception_handler(InfrastreamError, on_infrastream_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.include_router(router)
    app.include_router(routes_evidence.router)
    app.include_router(routes_sources.router)
    app.include_router(routes_health.router)
    app.include_router(routes_insights.router)
    app.include_router(routes_scm.router)
    return app
