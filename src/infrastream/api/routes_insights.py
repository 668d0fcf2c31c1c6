"""The REST route of delivery insights (`service.views.insights`)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from infrastream.service.views.insights import InsightsView
from infrastream.service.views.insights import insights as compute_insights

from .deps import PrincipalDep, ServicesDep
from .problems import declared

router = APIRouter(prefix="/api/v1")


@router.get("/insights", tags=["insights"], responses=declared(401, 422))
def insights(services: ServicesDep, principal: PrincipalDep,
             days: int = Query(30, ge=1, le=366, description="The period: these last days"),
             track: str | None = Query(None, max_length=63)) -> InsightsView:
    """Deployment frequency, lead time, change failure rate, time to restore, and where the
    time of each stage goes, over the period."""
    return compute_insights(services, days=days, track=track)
