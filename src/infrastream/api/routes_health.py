"""Health endpoints for whoever runs Infrastream (a kubelet, a load balancer).

`/livez` says the process answers; `/readyz` says this server can do its work: the database
answers, its schema is the newest migration this code knows, and this server's engine loop
finished a pass within the last `stall_after` seconds (`INFRASTREAM_ENGINE_STALL_SECONDS`).
None of this is on the hot path: only the probe reads the database. Both are outside the API
prefix and need no token, like Kubernetes' own endpoints; failures are problem JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from infrastream.store.database import schema_problem

from .deps import ServicesDep
from .problems import declared, problem

router = APIRouter()


class Alive(BaseModel):
    ok: bool


class Health(Alive):
    database: str
    migrations: str
    engine: str


@router.get("/livez", tags=["server"], responses=declared())
def livez() -> Alive:
    """The process answers."""
    return Alive(ok=True)


@router.get("/readyz", tags=["server"], response_model=Health, responses=declared(503))
def readyz(services: ServicesDep) -> Any:
    """The database answers, its schema is current, and the engine loop keeps passing."""
    reason = schema_problem(services.db) or services.heartbeat.problem()
    if reason is not None:
        return problem(503, "Not ready", reason, "/readyz")
    return JSONResponse({"ok": True, "database": "ok", "migrations": "current",
                         "engine": "passing" if services.heartbeat.expected else "not run here"})
