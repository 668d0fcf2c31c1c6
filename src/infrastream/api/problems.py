"""Errors as RFC 9457 problem details: one mapping from the error tree to HTTP.

Deliberate errors (`domain.errors`) become the status `http_status` gives them; request
validation errors a 422 naming each field; routing errors 404/405. Anything else is a bug:
`Contained` (an ASGI middleware) turns it into a 500 problem carrying a correlation id that
the log line with the traceback carries too, and the connection stays open for the next
request (an exception escaping to the server would make it drop the keep-alive connection).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastream.domain.errors import InfrastreamError
from infrastream.http_status import status_of
from infrastream.service import logs
from infrastream.service.auditing.refusals import code_of

from .refusals_api import refused

PROBLEM_TYPE = "https://infrastream.dev/problems/"
MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("infrastream.api")


class Problem(BaseModel):
    """An RFC 9457 problem; errors add their own members (`errors`, `diagnostics`, `needed`,
    `candidates`, `correlationId`, …)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str = Field(description="What went wrong, in one line a person can act on")
    instance: str = Field(description="The path of the request")


def problem(status: int, title: str, detail: str, instance: str,
            **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_TYPE + title.lower().replace(" ", "-"), "title": title,
            "status": status, "detail": detail, "instance": instance, **extra}
    request_id = logs.REQUEST_ID.get()
    if request_id is not None:  # the id the log has this request's lines under
        body.setdefault("requestId", request_id)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def on_infrastream_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InfrastreamError)
    status = status_of(exc)
    refused(request, code_of(exc), exc.reason, exc)
    return problem(status, exc.title, exc.reason, request.url.path, **exc.details)


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Each refused value as `{location, message}`; an unknown field is named as such."""
    found = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"])
        message = error["msg"]
        if error.get("type") == "extra_forbidden":
            message = f"unknown field `{error['loc'][-1]}`"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        found.append({"location": location, "message": message})
    return found


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    refused(request, "invalid", detail)
    return problem(422, "Invalid input", detail, request.url.path, errors=errors)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing errors (unknown path, wrong method) as problems too; a body that cannot even
    be parsed (not UTF-8) is invalid input like one that is not JSON (422)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        errors = [{"location": "body", "message": "the body could not be parsed (it must be "
                   "JSON in UTF-8)"}]
        refused(request, "invalid", errors[0]["message"])
        return problem(422, "Invalid input", "body: " + errors[0]["message"], request.url.path,
                       errors=errors)
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


class Contained:
    """ASGI middleware: an unexpected exception becomes a 500 problem with a correlation id
    (logged with the traceback), and is not re-raised, so the server keeps the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            correlation = uuid.uuid4().hex
            log.exception("unexpected error in %s %s (correlation id %s)", scope.get("method"),
                          scope.get("path"), correlation)
            if started:  # half a response went out: only closing the connection tells
                raise
            response = problem(500, "Internal error",
                               "an unexpected error occurred; the server log has the details "
                               f"under correlation id {correlation}", scope.get("path", ""),
                               correlationId=correlation)
            response.headers["X-Correlation-Id"] = correlation
            await response(scope, receive, send)


_MEANING = {
    400: "The request cannot be read (e.g. a webhook body that is not JSON)",
    401: "No API token, or one that is unknown, revoked or expired, or its user is disabled",
    403: "The caller's roles do not allow this",
    404: "The named thing does not exist",
    409: "Not allowed in the current state",
    413: "The request body is too large",
    422: "The input is invalid (every problem named)",
    500: "An unexpected error (the problem carries a correlation id the log has too)",
    502: "A backend (target, signing key, SCM host) failed",
    503: "This server cannot serve now (the reason says why)",
}


def declared(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses an operation declares, each an RFC 9457 problem (the OpenAPI
    document names the media type `application/problem+json`, see `app.openapi_document`);
    every operation can also answer 500."""
    return {status: {"model": Problem, "description": _MEANING[status]}
            for status in sorted({*statuses, 500})}
