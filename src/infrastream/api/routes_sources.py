"""The REST routes of manifests from Git: sources, deletion, history, diff, teams, CODEOWNERS.

Thin like `routes.py`: parse, call the service layer, return its answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import Field

from infrastream.domain.errors import Invalid
from infrastream.service import manifest_checks, manifests, sources, teams
from infrastream.service.codeowners import codeowners
from infrastream.service.manifest_checks import ManifestCheck
from infrastream.service.manifests import ApplyResult, HistoryEntry
from infrastream.service.sources import SourceView
from infrastream.service.teams import TeamView

from .deps import PrincipalDep, ServicesDep
from .problems import declared
from .refusals_api import mutation
from .schemas import Body

router = APIRouter(prefix="/api/v1")
Json = dict[str, Any]


class SourceCreate(Body):
    name: str = Field(max_length=63, examples=["shop-manifests"])
    repository: str = Field(min_length=1, max_length=2000,
                            description="Clone URL or path (file://, https, ssh)")
    branch: str = Field("main", min_length=1, max_length=255)
    path: str = Field("", max_length=1000, description="Directory of the manifests")
    scm: str | None = Field(None, max_length=63, description="SCM connection for fetching")
    interval: int = Field(sources.DEFAULT_INTERVAL, ge=10, le=86400,
                          description="Seconds between fetches")


class DiffSource(Body):
    source: str = Field(max_length=1000)
    text: str


class DiffRequest(Body):
    sources: list[DiffSource] = Field(min_length=1)


class TeamCreate(Body):
    name: str = Field(max_length=63, examples=["payments"])
    description: str = Field("", max_length=200)
    handles: dict[str, str] = Field(default_factory=dict,
                                    examples=[{"github": "@acme/payments"}])


@router.post("/sources", status_code=201, tags=["sources"], responses=declared(401, 403, 409, 422),
             openapi_extra=mutation("source.add", "source"))
def add_source(body: SourceCreate, services: ServicesDep,
               principal: PrincipalDep) -> SourceView:
    """Make a Git repository the source of truth for the manifests under its path."""
    return sources.add_source(services, principal, body.name, body.repository,
                              branch=body.branch, path=body.path, scm=body.scm,
                              interval=body.interval)


@router.get("/sources", tags=["sources"], responses=declared(401))
def list_sources(services: ServicesDep, principal: PrincipalDep) -> list[SourceView]:
    return sources.list_sources(services)


@router.get("/sources/{name}", tags=["sources"], responses=declared(401, 404, 422))
def source_status(name: str, services: ServicesDep, principal: PrincipalDep) -> SourceView:
    return sources.source_status(services, name)


@router.get("/sources/{name}/checks", tags=["sources"], responses=declared(401, 404, 422))
def source_checks(name: str, services: ServicesDep, principal: PrincipalDep,
                  limit: int = Query(50, ge=1, le=500)) -> list[ManifestCheck]:
    """The manifest pull-request checks of a source, newest first: verdict, reviewers, plan."""
    sources.source_status(services, name)
    return manifest_checks.recent(services, name, limit)


@router.post("/sources/{name}/sync", tags=["sources"], responses=declared(401, 403, 404, 422),
             openapi_extra=mutation("source.sync", "source", "{name}"))
def sync_source(name: str, services: ServicesDep, principal: PrincipalDep) -> SourceView:
    """Fetch the branch now and apply its tree (or say why not)."""
    return sources.request_sync(services, principal, name)


@router.delete("/manifests/{kind}/{name}", tags=["manifests"],
               responses=declared(401, 403, 404, 409, 422),
               openapi_extra=mutation("manifest.delete", "manifest", "{kind}/{name}"))
def delete_manifest(kind: str, name: str, services: ServicesDep,
                    principal: PrincipalDep) -> ApplyResult:
    """Delete an object applied with `apply`, unless something still needs it."""
    return manifests.delete_manifest(services, principal, kind, name)


@router.get("/manifests/{kind}/{name}/history", tags=["manifests"],
            responses=declared(401, 404, 422))
def manifest_history(kind: str, name: str, services: ServicesDep,
                     principal: PrincipalDep) -> list[HistoryEntry]:
    return manifests.history(services, kind, name)


@router.post("/manifests/diff", tags=["manifests"], responses=declared(401, 403, 409, 422),
             openapi_extra=mutation("manifest.apply", "manifests"))
def diff(body: DiffRequest, services: ServicesDep, principal: PrincipalDep) -> ApplyResult:
    """What applying these manifests would change, object by object (nothing is stored)."""
    return manifests.apply(services, principal, [(s.source, s.text) for s in body.sources],
                           dry_run=True)


@router.post("/teams", status_code=201, tags=["teams"], responses=declared(401, 403, 409, 422),
             openapi_extra=mutation("team.create", "team"))
def create_team(body: TeamCreate, services: ServicesDep, principal: PrincipalDep) -> TeamView:
    return teams.create_team(services, principal, body.name, description=body.description,
                             handles=body.handles)


@router.get("/teams", tags=["teams"], responses=declared(401))
def list_teams(services: ServicesDep, principal: PrincipalDep) -> list[TeamView]:
    return teams.list_teams(services)


@router.put("/teams/{team}/members/{user}", tags=["teams"],
            responses=declared(401, 403, 404, 422),
            openapi_extra=mutation("team.add-member", "team", "{team}"))
def add_member(team: str, user: str, services: ServicesDep,
               principal: PrincipalDep) -> TeamView:
    return teams.set_membership(services, principal, team, user, member=True)


@router.delete("/teams/{team}/members/{user}", tags=["teams"],
               responses=declared(401, 403, 404, 422),
               openapi_extra=mutation("team.remove-member", "team", "{team}"))
def remove_member(team: str, user: str, services: ServicesDep,
                  principal: PrincipalDep) -> TeamView:
    return teams.set_membership(services, principal, team, user, member=False)


@router.get("/sources/{name}/codeowners", tags=["sources"], response_class=PlainTextResponse,
            responses=declared(401, 404, 422))
def source_codeowners(name: str, services: ServicesDep, principal: PrincipalDep,
                      host: str = "github",
                      owner: list[str] = Query(default_factory=list,
                                               description="ROLE=@handle")) -> PlainTextResponse:
    """The CODEOWNERS file of the source's repository, from the ownership rules."""
    pairs = {}
    for item in owner:
        role, equals, handle = item.partition("=")
        if not equals or not role or not handle:
            raise Invalid(f"`{item}` is not ROLE=@handle")
        pairs[role] = handle
    return PlainTextResponse(codeowners(services, name, host=host, role_handles=pairs))
