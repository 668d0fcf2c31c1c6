"""The REST API routes: parse, call the service layer, return its JSON.

No rule lives here: authorization and every check happen in the service layer, so the CLI,
the API and the portal cannot disagree.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from infrastream.service import (
    hotfix,
    identity,
    manifests,
    prerelease,
    promotions,
    releases,
    rollback,
    secrets,
    versions,
)
from infrastream.service.auditing import view as audit_view
from infrastream.service.auditing.verify import verify_all as audit_verify_all
from infrastream.service.drift import drift_report
from infrastream.service.records.releases import ReleaseRef, parse_ref
from infrastream.service.views.environments import environment_overview
from infrastream.service.views.release_status import release_status

from .deps import PrincipalDep, ServicesDep
from .schemas import (
    AbandonRequest,
    ApplyRequest,
    ApprovalCreate,
    HotfixCreate,
    PreReleaseCreate,
    PromotionCreate,
    RejectionCreate,
    ReleaseCreate,
    RollbackCreate,
    SecretValue,
    UserCreate,
    VersionRecord,
)

router = APIRouter(prefix="/api/v1")
Json = dict[str, Any]


@router.get("/whoami", tags=["identity"])
def whoami(principal: PrincipalDep) -> Json:
    return {"name": principal.name, "roles": sorted(principal.roles)}


@router.post("/users", status_code=201, tags=["identity"])
def create_user(body: UserCreate, services: ServicesDep, principal: PrincipalDep) -> Json:
    token = identity.create_user(services, principal, body.name, body.roles)
    return {"name": body.name, "roles": sorted(set(body.roles)), "token": token}


@router.get("/users", tags=["identity"])
def list_users(services: ServicesDep, principal: PrincipalDep) -> list[Json]:
    return identity.list_users(services, principal)


@router.post("/manifests", tags=["manifests"])
def apply(body: ApplyRequest, services: ServicesDep, principal: PrincipalDep) -> Json:
    return manifests.apply(services, principal, [(s.source, s.text) for s in body.sources],
                           body.sourceRoot)


@router.get("/manifests", tags=["manifests"])
def get_manifests(services: ServicesDep, principal: PrincipalDep,
                  kind: str | None = None) -> list[Json]:
    return manifests.get_objects(services, kind)


@router.get("/manifests/{kind}/{name}", tags=["manifests"])
def get_manifest(kind: str, name: str, services: ServicesDep, principal: PrincipalDep) -> Json:
    return manifests.get_objects(services, kind, name)[0]


@router.post("/applications/{app}/versions", status_code=201, tags=["versions"])
def record_version(app: str, body: VersionRecord, services: ServicesDep,
                   principal: PrincipalDep) -> Json:
    return versions.record_version(services, principal, app, body.image, body.commit)


@router.get("/applications/{app}/versions", tags=["versions"])
def list_versions(app: str, services: ServicesDep, principal: PrincipalDep,
                  limit: int = Query(50, ge=1, le=500)) -> list[Json]:
    return versions.list_versions(services, app, limit)


@router.post("/releases", status_code=201, tags=["releases"])
def create_release(body: ReleaseCreate, services: ServicesDep, principal: PrincipalDep) -> Json:
    return releases.create_release(services, principal, body.applicationSet, body.name,
                                   override_reason=body.forwardPortOverride)


@router.post("/hotfixes", status_code=201, tags=["releases"])
def create_hotfix(body: HotfixCreate, services: ServicesDep, principal: PrincipalDep) -> Json:
    return hotfix.create_hotfix(services, principal, body.applicationSet, body.apps,
                                body.incident, body.name)


@router.get("/releases", tags=["releases"])
def list_releases(services: ServicesDep, principal: PrincipalDep,
                  applicationSet: str | None = None, limit: int = Query(50, ge=1, le=500),
                  before: int | None = None) -> list[Json]:
    return releases.list_releases(services, applicationSet, limit=limit, before=before)


@router.get("/releases/{app_set}/{name}", tags=["releases"])
def get_release(app_set: str, name: str, services: ServicesDep,
                principal: PrincipalDep) -> Json:
    return release_status(services, ReleaseRef(app_set, name))


@router.post("/releases/{app_set}/{name}/promotions", status_code=202, tags=["promotions"])
def promote(app_set: str, name: str, services: ServicesDep, principal: PrincipalDep,
            body: PromotionCreate | None = None) -> Json:
    body = body or PromotionCreate()
    return promotions.promote(services, principal, ReleaseRef(app_set, name),
                              override_reason=body.forwardPortOverride,
                              freeze_override_reason=body.freezeOverride)


@router.post("/releases/{app_set}/{name}/approvals", status_code=201, tags=["promotions"])
def approve(app_set: str, name: str, services: ServicesDep, principal: PrincipalDep,
            body: ApprovalCreate | None = None) -> Json:
    body = body or ApprovalCreate()
    return promotions.approve(services, principal, ReleaseRef(app_set, name),
                              body.role, body.comment)


@router.post("/releases/{app_set}/{name}/rejections", status_code=201, tags=["promotions"])
def reject(app_set: str, name: str, body: RejectionCreate, services: ServicesDep,
           principal: PrincipalDep) -> Json:
    return promotions.reject(services, principal, ReleaseRef(app_set, name),
                             body.reason)


@router.post("/releases/{app_set}/{name}/abandon", tags=["releases"])
def abandon(app_set: str, name: str, body: AbandonRequest, services: ServicesDep,
            principal: PrincipalDep) -> Json:
    """Stop the release for good: it leaves every queue and is never promoted again."""
    return releases.abandon_release(services, principal, ReleaseRef(app_set, name),
                                    body.reason)


@router.get("/environments/drift", tags=["environments"])
def environments_drift(services: ServicesDep, principal: PrincipalDep,
                       environment: str | None = None) -> list[Json]:
    """Per environment: in-sync, drifted (with every difference) or unknown."""
    return drift_report(services, environment)


@router.get("/environments", tags=["environments"])
def environments(services: ServicesDep, principal: PrincipalDep) -> list[Json]:
    return environment_overview(services)


@router.get("/audit", tags=["audit"])
def audit_list(services: ServicesDep, principal: PrincipalDep,
               limit: int = Query(100, ge=1, le=1000), before: int | None = None,
               objectType: str | None = None, objectId: str | None = None) -> list[Json]:
    return audit_view.list_entries(services, limit=limit, before=before,
                                   object_type=objectType, object_id=objectId)


@router.get("/audit/verify", tags=["audit"])
def audit_verify(services: ServicesDep, principal: PrincipalDep, response: Response) -> Json:
    """The hash chain and every signed checkpoint."""
    return audit_verify_all(services)


@router.post("/environments/{environment}/rollbacks", status_code=202, tags=["environments"])
def roll_back(environment: str, services: ServicesDep, principal: PrincipalDep,
              body: RollbackCreate) -> Json:
    target = parse_ref(body.to) if body.to else None
    return rollback.rollback(services, principal, environment, target, body.reason)


@router.post("/prereleases", status_code=201, tags=["pre-release"])
def start_prerelease(body: PreReleaseCreate, services: ServicesDep,
                     principal: PrincipalDep) -> Json:
    return prerelease.start_prerelease(services, principal, body.application, body.image,
                                       body.ref, body.commit)


@router.get("/prereleases", tags=["pre-release"])
def list_prereleases(services: ServicesDep, principal: PrincipalDep,
                     application: str | None = None,
                     limit: int = Query(50, ge=1, le=500)) -> list[Json]:
    return prerelease.list_prereleases(services, application, limit)


@router.get("/prereleases/{run_id}", tags=["pre-release"])
def get_prerelease(run_id: int, services: ServicesDep, principal: PrincipalDep) -> Json:
    return prerelease.prerelease_status(services, run_id)


@router.put("/secrets/{environment}/{app}/{name}", tags=["secrets"])
def set_secret(environment: str, app: str, name: str, body: SecretValue,
               services: ServicesDep, principal: PrincipalDep) -> Json:
    return secrets.set_secret(services, principal, environment, app, name, body.value)


@router.get("/secrets", tags=["secrets"])
def list_secrets(services: ServicesDep, principal: PrincipalDep,
                 environment: str | None = None) -> list[Json]:
    return secrets.list_secrets(services, environment)


@router.get("/healthz", tags=["server"], include_in_schema=False)
def healthz() -> Json:
    return {"ok": True}
