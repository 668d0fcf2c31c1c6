"""Health endpoints for whoever runs Infrastream (a kubelet, a load balancer).

`/livez` says the process answers; `/readyz` says this server can do its work: the database
answers and its schema is the newest migration this code knows. Both are outside the API
prefix and need no token, like Kubernetes' own endpoints; failures are problem JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from infrastream.store.database import schema_problem

from .deps import ServicesDep
from .problems import problem

router = APIRouter()


@router.get("/livez", tags=["server"])
def livez() -> dict[str, Any]:
    """The process answers."""
    return {"ok": True}


@router.get("/readyz", tags=["server"], responses={503: {"description": "Not ready"}})
def readyz(services: ServicesDep) -> Any:
    """The database answers and its schema is current."""
    reason = schema_problem(services.db)
    if reason is not None:
        return problem(503, "Not ready", reason, "/readyz")
    return JSONResponse({"ok": True, "database": "ok", "migrations": "current"})
