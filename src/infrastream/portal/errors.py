"""Service errors as portal pages: the same status codes the API gives them."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.errors import (
    BackendError,
    Conflict,
    Forbidden,
    InfrastreamError,
    Invalid,
    NotFound,
    Unauthenticated,
)

from .access import current
from .render import page

STATUS: dict[type[InfrastreamError], int] = {
    NotFound: 404, Forbidden: 403, Unauthenticated: 401, Conflict: 409, Invalid: 422,
    BackendError: 502,
}


def status_of(error: InfrastreamError) -> int:
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), 500)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    _services, me = current(request)
    return page(request, me, "error.html", code=status, title=title, detail=detail,
                inbox_count=0)


def on_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InfrastreamError)
    return error_page(request, status_of(exc), exc.title, exc.reason)


def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_page(request, 404, "Not found",
                          f"There is no portal page at {request.url.path}.")
    return error_page(request, exc.status_code, "Error", str(exc.detail))
