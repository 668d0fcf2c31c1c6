"""`GET /metrics`: Prometheus text exposition of this server.

Counters and histograms are this process's (`service/telemetry.py`); the gauge of releases by
lane and state is read from the database at scrape time by a custom collector, so every
server behind the load balancer reports the same numbers. HTTP request durations are
labelled by route template (`/api/v1/releases/{app_set}/{name}`), never by raw path, and
are recorded by a middleware that does no I/O. Unauthenticated like `/livez`, unless the
setting `INFRASTREAM_METRICS_TOKEN` is set: then a scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac
import os
import re
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastream.service import logs, telemetry
from infrastream.service.context import Services
from infrastream.store.tables import releases

from .problems import declared, problem

router = APIRouter()
_log = logs.get("infrastream.http")
_SANE = re.compile(r"[A-Za-z0-9._:-]+")


class ReleasesByState(Collector):
    """Releases by lane and state, counted in the database when Prometheus scrapes."""

    def __init__(self) -> None:
        self.services: Services | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("infrastream_releases", "Releases by lane and state "
                                   "(from the database)", labels=["lane", "state"])
        if self.services is not None:
            query = select(releases.c.lane, releases.c.state, func.count()).group_by(
                releases.c.lane, releases.c.state)
            try:
                with self.services.db.connect() as conn:
                    for lane, state, count in conn.execute(query):
                        family.add_metric([lane, state], count)
            except Exception:  # a scrape must still answer the process's own metrics
                pass
        yield family


_RELEASES = ReleasesByState()
REGISTRY.register(_RELEASES)


@router.get("/metrics", tags=["server"], responses=declared(401),
            response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics of this server (text exposition format)."""
    _RELEASES.services = request.app.state.services
    token = os.environ.get("INFRASTREAM_METRICS_TOKEN")
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return problem(401, "Unauthorized", "/metrics needs the metrics bearer token",
                           "/metrics")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class Timed:
    """ASGI middleware: each HTTP request's duration, by method, route template, status,
    and its log line (method, route, status, duration, user, request id). The request id is
    the caller's `X-Request-ID` when it sends a sane one, else a new one; the response
    carries it back, and problem responses name it (`requestId`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status = 500
        request_id = _request_id(scope)
        token = logs.REQUEST_ID.set(request_id)

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            took = time.monotonic() - began
            route = route_of(scope)
            telemetry.HTTP_SECONDS.labels(scope.get("method", ""), route,
                                          str(status)).observe(took)
            who = getattr(scope.get("state", {}).get("principal"), "name", None)
            _log.info("http.request", method=scope.get("method"), route=route,
                      path=scope.get("path"), status=status, duration_ms=round(took * 1000, 1),
                      user=who)
            logs.REQUEST_ID.reset(token)


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            sent = bytes(value).decode("latin-1")
            if 0 < len(sent) <= 128 and _SANE.fullmatch(sent):
                return sent
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The route template that served the request, or `unmatched` (no raw paths: they would
    make one series per release)."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"
