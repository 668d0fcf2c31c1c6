"""The SCM routes: connections, the webhook endpoint, deliveries, pull requests, PR builds.

`POST /api/v1/scm/{connection}/webhook` is the one route without a bearer token: the Git
host's signature (GitHub) or secret token (GitLab) authenticates each delivery, checked by
the service layer. The body is read up to the size limit and no further.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from infrastream.domain.errors import Invalid
from infrastream.service import pull_requests, scm_connections, scm_outbox, versions, webhooks
from infrastream.service.pull_requests import HeadView
from infrastream.service.records.read_model import ReadModel
from infrastream.service.scm_connections import ConnectionView, ProtectionView
from infrastream.service.scm_outbox import StatusDelivery
from infrastream.service.webhooks import Receipt, WebhookDelivery

from .deps import PrincipalDep, ServicesDep
from .problems import declared, problem
from .refusals_api import mutation
from .schemas_scm import ConnectionCreate, ProtectRequest, PullRequestBuild

router = APIRouter(prefix="/api/v1")


class Deliveries(ReadModel):
    webhooks: list[WebhookDelivery]
    statuses: list[StatusDelivery]


@router.post("/scm/connections", status_code=201, tags=["scm"], response_model=ConnectionView,
             responses=declared(401, 403, 409, 422),
             openapi_extra=mutation("scm.add", "scm-connection"))
def add_connection(body: ConnectionCreate, request: Request, services: ServicesDep,
                   principal: PrincipalDep) -> ConnectionView:
    return scm_connections.add_connection(
        services, principal, body.name, body.type, token=body.token,
        webhook_secret=body.webhookSecret, base_url=body.baseUrl,
        public_url=body.publicUrl or str(request.base_url), context=body.context,
        app_id=body.appId, private_key=body.privateKey, installation_id=body.installationId)


@router.get("/scm/connections", tags=["scm"], response_model=list[ConnectionView],
            responses=declared(401))
def list_connections(services: ServicesDep, principal: PrincipalDep) -> list[ConnectionView]:
    return scm_connections.list_connections(services)


@router.delete("/scm/connections/{name}", tags=["scm"], response_model=ConnectionView,
               responses=declared(401, 403, 404, 409, 422),
               openapi_extra=mutation("scm.remove", "scm-connection", "{name}"))
def remove_connection(name: str, services: ServicesDep,
                      principal: PrincipalDep) -> ConnectionView:
    return scm_connections.remove_connection(services, principal, name)


@router.post("/scm/protect", tags=["scm"], response_model=ProtectionView,
             responses=declared(401, 403, 404, 409, 422, 502),
             openapi_extra=mutation("scm.protect", "repository"))
def protect(body: ProtectRequest, services: ServicesDep,
            principal: PrincipalDep) -> ProtectionView:
    """Make the gate's status a required check on a branch (or say what to set by hand)."""
    return scm_connections.protect(services, principal, body.repository, body.branch,
                                   body.connection)


@router.get("/scm/deliveries", tags=["scm"], response_model=Deliveries,
            responses=declared(401, 422))
def deliveries(services: ServicesDep, principal: PrincipalDep, connection: str | None = None,
               limit: int = Query(50, ge=1, le=500)) -> Deliveries:
    """Recent webhook deliveries and commit-status deliveries, with their outcome."""
    return Deliveries(webhooks=webhooks.recent(services, connection, limit),
                      statuses=scm_outbox.recent(services, connection, limit))


@router.get("/scm/pull-requests", tags=["scm"], response_model=list[HeadView],
            responses=declared(401, 422))
def list_pull_requests(services: ServicesDep, principal: PrincipalDep,
                       number: int | None = Query(None, ge=1, le=2**31 - 1),
                       repository: str | None = None,
                       application: str | None = None,
                       limit: int = Query(50, ge=1, le=500)) -> list[HeadView]:
    """Pull request heads the gate judged, newest first, with their pre-release runs."""
    return pull_requests.list_heads(services, number=number, repository=repository,
                                    app=application, limit=limit)


@router.post("/applications/{app}/pull-request-builds", status_code=201, tags=["versions"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("version.record", "application", "{app}"))
def record_pull_request_build(app: str, body: PullRequestBuild, services: ServicesDep,
                              principal: PrincipalDep) -> versions.VersionView:
    """Record a PR build (channel `pull-request`: never the latest version of a release)."""
    return versions.record_version(services, principal, app, body.image, body.commit,
                                   pull_request=body.pullRequest)


@router.post("/scm/{connection}/webhook", status_code=202, tags=["scm"],
             response_model=Receipt,
             responses={200: {"model": Receipt}, **declared(400, 401, 404, 413, 422)},
             openapi_extra=mutation("scm.webhook", "scm-connection", "{connection}",
                                    signed=True))
async def webhook(connection: str, request: Request, services: ServicesDep) -> Any:
    """A Git host's webhook delivery, authenticated by its signature or secret token."""
    body, complete = await _read(request, webhooks.MAX_BODY)
    client = request.client.host if request.client else None
    try:
        receipt = await run_in_threadpool(webhooks.receive, services, connection,
                                          dict(request.headers), body, complete=complete,
                                          client=client)
    except Invalid as exc:
        if exc.title != Invalid.title:
            raise  # a more precise kind (too large) has its own status
        return problem(400, "Bad delivery", exc.reason, request.url.path)
    status = 200 if receipt.outcome == "duplicate" else 202
    return JSONResponse(receipt.to_json(), status_code=status)


async def _read(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, up to `limit` bytes; whether it was complete."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", False
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            return b"", False
    return bytes(chunks), True
