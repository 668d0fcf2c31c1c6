"""Service errors as portal pages: the same status codes the API gives them."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.errors import InfrastreamError
from infrastream.http_status import status_of

from .access import current
from .render import page


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
