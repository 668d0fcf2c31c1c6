"""The portal's Insights page: the four delivery figures, each linking to the releases
behind it, and charts of deployment frequency per tier and of where each stage's time goes
(filterable by track and period)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.insights import human
from infrastream.service.records.manifests import current_bundle
from infrastream.service.views.insights import insights

from .access import signed_in
from .charts import stacked
from .pages import nav
from .render import page

router = APIRouter()
PERIODS = (7, 30, 90)


@router.get("/insights", name="insights")
def insights_page(request: Request, days: int = Query(30, ge=1, le=366),
                  track: str | None = Query(None, max_length=63)) -> Response:
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services = found.services
    figures = insights(services, days=days, track=track or None)
    phases = [p["phase"] for p in figures["phases"]]
    frequency = figures["deploymentFrequency"]["deployments"]
    return page(
        request, found.viewer, "insights.html", figures=figures, days=days,
        track=track or "", periods=PERIODS, tracks=sorted(current_bundle(services).tracks),
        frequency=stacked([(tier, {"deployments": float(n)}) for tier, n in frequency.items()],
                          ["deployments"], lambda v: f"{v:g}"),
        stages=stacked([(s["stage"], s["seconds"]) for s in figures["timeByStage"]], phases,
                       human),
        phases=phases, **nav(found))
