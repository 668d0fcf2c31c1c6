"""Errors as RFC 9457 problem details: one mapping from the error tree to HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from infrastream.domain.errors import InfrastreamError
from infrastream.http_status import status_of

PROBLEM_TYPE = "https://infrastream.dev/problems/"


def problem(status: int, title: str, detail: str, instance: str,
            **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_TYPE + title.lower().replace(" ", "-"), "title": title,
            "status": status, "detail": detail, "instance": instance, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)


async def on_infrastream_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InfrastreamError)
    status = status_of(exc)
    return problem(status, exc.title, exc.reason, request.url.path, **exc.details)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
              for e in exc.errors()]
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    return problem(422, "Invalid input", detail, request.url.path, errors=errors)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing errors (unknown path, wrong method) as problems too."""
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    response = problem(exc.status_code, title, detail, request.url.path)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response
