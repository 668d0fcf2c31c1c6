"""The REST routes of the verifiable audit trail: public key, export, checkpoints, evidence.

Thin like `routes.py`: parse, call the service layer, choose the media type. The export is
streamed as JSON lines so a long trail never sits in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from infrastream.service.auditing import evidence, signing
from infrastream.service.auditing import export as audit_export
from infrastream.service.records.releases import ReleaseRef

from .deps import PrincipalDep, ServicesDep

router = APIRouter(prefix="/api/v1")
Json = dict[str, Any]


@router.get("/audit/public-key", tags=["audit"], response_class=PlainTextResponse,
            responses={200: {"content": {"application/x-pem-file": {}}}})
def audit_public_key(services: ServicesDep, principal: PrincipalDep) -> PlainTextResponse:
    return PlainTextResponse(signing.public_key_pem(services),
                             media_type="application/x-pem-file",
                             headers={"X-Key-Id": signing.key_id(services)})


def _lines(records: Iterator[Json]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


@router.get("/audit/export", tags=["audit"], response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def audit_export_lines(services: ServicesDep, principal: PrincipalDep,
                       since: datetime | None = None,
                       until: datetime | None = None) -> StreamingResponse:
    return StreamingResponse(_lines(audit_export.export(services, since, until)),
                             media_type="application/x-ndjson")


@router.post("/audit/checkpoints", tags=["audit"], status_code=201)
def create_checkpoint(services: ServicesDep, principal: PrincipalDep,
                      response: Response) -> Json:
    created = signing.checkpoint(services)
    if created is None:
        response.status_code = 200
        return {"created": False, "checkpoint": signing.latest_checkpoint(services)}
    return {"created": True, "checkpoint": created}


@router.get("/releases/{app_set}/{name}/evidence", tags=["audit"],
            responses={200: {"content": {"application/json": {}, "text/markdown": {}}}})
def release_evidence(app_set: str, name: str, services: ServicesDep, principal: PrincipalDep,
                     format: str = Query("json", pattern="^(json|markdown)$")) -> Any:
    pack = evidence.build_evidence(services, ReleaseRef(app_set, name))
    if format == "markdown":
        return PlainTextResponse(evidence.render_markdown(pack),
                                 media_type="text/markdown; charset=utf-8")
    return pack
