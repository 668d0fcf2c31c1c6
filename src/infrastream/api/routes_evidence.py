"""The REST routes of the verifiable audit trail: public key, export, checkpoints, evidence.

Thin like `routes.py`: parse, call the service layer, choose the media type. The export is
streamed as JSON lines so a long trail never sits in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from infrastream.service.auditing import evidence, signing
from infrastream.service.auditing import export as audit_export
from infrastream.service.auditing.pack import EvidencePack
from infrastream.service.auditing.view import CheckpointResult, CheckpointView
from infrastream.service.records.releases import ReleaseRef

from .deps import PrincipalDep, ServicesDep, clean_parameters
from .problems import declared
from .refusals_api import mutation

router = APIRouter(prefix="/api/v1", dependencies=[Depends(clean_parameters)])
Json = dict[str, Any]


@router.get("/audit/public-key", tags=["audit"], response_class=PlainTextResponse,
            responses={200: {"content": {"application/x-pem-file": {"schema": {
                "type": "string"}}}, "description": "This server's public key (PEM)"},
                **declared(401, 502)})
def audit_public_key(services: ServicesDep, principal: PrincipalDep) -> PlainTextResponse:
    return PlainTextResponse(signing.public_key_pem(services),
                             media_type="application/x-pem-file",
                             headers={"X-Key-Id": signing.key_id(services)})


def _lines(records: Iterator[Json]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


@router.get("/audit/export", tags=["audit"], response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {"schema": {
                "type": "string"}}}, "description": "One JSON object per line"},
                **declared(401, 422)})
def audit_export_lines(services: ServicesDep, principal: PrincipalDep,
                       since: datetime | None = None,
                       until: datetime | None = None) -> StreamingResponse:
    return StreamingResponse(_lines(audit_export.export(services, since, until)),
                             media_type="application/x-ndjson")


@router.post("/audit/checkpoints", tags=["audit"], status_code=201,
             responses={200: {"model": CheckpointResult,
                              "description": "Nothing new to sign: the latest checkpoint"},
                        **declared(401, 409, 502)},
             openapi_extra=mutation("audit.checkpoint", "audit"))
def create_checkpoint(services: ServicesDep, principal: PrincipalDep,
                      response: Response) -> CheckpointResult:
    created = signing.checkpoint(services)
    if created is None:
        response.status_code = 200
        latest = signing.latest_checkpoint(services)
        return CheckpointResult(created=False, checkpoint=CheckpointView.model_validate(latest)
                                if latest else None)
    return CheckpointResult(created=True, checkpoint=CheckpointView.model_validate(created))


@router.get("/releases/{app_set}/{name}/evidence", tags=["audit"], response_class=JSONResponse,
            responses={200: {"model": EvidencePack, "description": "The signed pack (JSON), "
                             "or the same for people (`format=markdown`)",
                             "content": {"text/markdown": {"schema": {"type": "string"}}}},
                       **declared(401, 404, 409, 422, 502)})
def release_evidence(app_set: str, name: str, services: ServicesDep, principal: PrincipalDep,
                     format: str = Query("json", pattern="^(json|markdown)$")) -> Response:
    """The release's evidence pack, signed as a whole. It is sent exactly as signed (the
    declared model describes it; nothing re-serialises it)."""
    pack = evidence.build_evidence(services, ReleaseRef(app_set, name))
    if format == "markdown":
        return PlainTextResponse(evidence.render_markdown(pack),
                                 media_type="text/markdown; charset=utf-8")
    return JSONResponse(pack)
