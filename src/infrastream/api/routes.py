"""The REST API routes: parse, call the service layer, return its typed read model.

No rule lives here: authorization and every check happen in the service layer, so the CLI,
the API and the portal cannot disagree. Each operation declares its response model and the
problems it can answer with (`declared`); each mutation names the audit action its refusals
are recorded under (`mutation`, see `refusals_api`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from infrastream.domain.inputs import MAX_ID
from infrastream.service import (
    bindings,
    hotfix,
    identity,
    manifests,
    prerelease,
    promotions,
    releases,
    rollback,
    secrets,
    single_sign_on,
    teardown,
    tokens,
    versions,
)
from infrastream.service.auditing import view as audit_view
from infrastream.service.auditing.verify import progress as audit_verify_progress
from infrastream.service.auditing.verify import verify_all as audit_verify_all
from infrastream.service.context import Services
from infrastream.service.drift import DriftReport, drift_report
from infrastream.service.readmodel import ReadModel
from infrastream.service.records.releases import ReleaseRef, parse_ref
from infrastream.service.views.environments import EnvironmentView, environment_overview
from infrastream.service.views.release_status import ReleaseStatus, release_status

from . import watching
from .deps import BearerDep, PrincipalDep, ServicesDep, clean_parameters
from .problems import declared
from .refusals_api import mutation
from .schemas import (
    AbandonRequest,
    ApplyRequest,
    ApprovalCreate,
    BindingSet,
    HotfixCreate,
    PreReleaseCreate,
    PromotionCreate,
    RejectionCreate,
    ReleaseCreate,
    RollbackCreate,
    SecretValue,
    TeardownCreate,
    TokenCreate,
    UserCreate,
    UserEmail,
    VersionRecord,
)

router = APIRouter(prefix="/api/v1", dependencies=[Depends(clean_parameters)])
READ = declared(401, 422)
"""What every read can answer with besides 200."""
RELEASE = "{app_set}/{name}"


class Whoami(ReadModel):
    name: str
    roles: list[str]
    token_expires_at: str | None = None
    """When the token of this request stops working (None: never)."""


class Health(ReadModel):
    ok: bool


@router.get("/whoami", tags=["identity"], responses=declared(401))
def whoami(principal: PrincipalDep, services: ServicesDep,
           credentials: BearerDep) -> Whoami:
    expires = identity.token_expiry(services, credentials.credentials) if credentials else None
    return Whoami(name=principal.name, roles=sorted(principal.roles), token_expires_at=expires)


@router.post("/users", status_code=201, tags=["identity"],
             responses=declared(401, 403, 409, 422), openapi_extra=mutation("user.create", "user"))
def create_user(body: UserCreate, services: ServicesDep,
                principal: PrincipalDep) -> identity.CreatedUser:
    return identity.create_user(services, principal, body.name, body.roles, email=body.email)


@router.get("/users", tags=["identity"], responses=declared(401, 403))
def list_users(services: ServicesDep, principal: PrincipalDep) -> list[identity.UserView]:
    return identity.list_users(services, principal)


@router.get("/users/{name}", tags=["identity"], responses=declared(401, 403, 404, 422))
def get_user(name: str, services: ServicesDep, principal: PrincipalDep) -> identity.UserView:
    return identity.user_view(services, principal, name)


@router.put("/users/{name}/email", tags=["identity"],
            responses=declared(401, 403, 404, 422),
            openapi_extra=mutation("user.email", "user", "{name}"))
def set_user_email(name: str, body: UserEmail, services: ServicesDep,
                   principal: PrincipalDep) -> identity.UserView:
    """Set (or clear, with null) the address notifications mail the user at."""
    return identity.set_email(services, principal, name, body.email)


@router.post("/users/{name}/disable", tags=["identity"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("user.disable", "user", "{name}"))
def disable_user(name: str, services: ServicesDep,
                 principal: PrincipalDep) -> identity.UserView:
    """Disable a user: their tokens and Portal sessions stop working at once."""
    return identity.disable_user(services, principal, name)


@router.post("/users/{name}/enable", tags=["identity"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("user.enable", "user", "{name}"))
def enable_user(name: str, services: ServicesDep,
                principal: PrincipalDep) -> identity.UserView:
    return identity.enable_user(services, principal, name)


@router.post("/users/{name}/end-sessions", tags=["identity"],
             responses=declared(401, 403, 404, 422),
             openapi_extra=mutation("user.end-sessions", "user", "{name}"))
def end_user_sessions(name: str, services: ServicesDep,
                      principal: PrincipalDep) -> single_sign_on.EndedSessions:
    """End every sign-in session of a user (portal and `login --sso`) at once; their
    automation tokens keep working."""
    return single_sign_on.end_sessions(services, principal, name)


@router.post("/tokens", status_code=201, tags=["identity"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("token.create", "user"))
def create_token(body: TokenCreate, services: ServicesDep,
                 principal: PrincipalDep) -> tokens.CreatedToken:
    """A new API token (default: for the caller), shown once; `expires` like `90d`."""
    return tokens.create_token(services, principal, body.user, body.name, body.expires)


@router.get("/tokens", tags=["identity"], responses=declared(401, 403, 422))
def list_tokens(services: ServicesDep, principal: PrincipalDep,
                user: str | None = Query(None, max_length=63)) -> list[tokens.TokenView]:
    """Every token: prefix, name, created, last used, expiry, state; never the secret."""
    return tokens.list_tokens(services, principal, user)


@router.delete("/tokens/{prefix}", tags=["identity"],
               responses=declared(401, 403, 404, 409, 422),
               openapi_extra=mutation("token.revoke", "token", "{prefix}"))
def revoke_token(prefix: str, services: ServicesDep,
                 principal: PrincipalDep) -> tokens.TokenView:
    """Revoke the token with this prefix (as `token list` shows it)."""
    return tokens.revoke_token(services, principal, prefix)


@router.post("/manifests", tags=["manifests"], responses=declared(401, 403, 422),
             openapi_extra=mutation("manifest.apply", "manifests"))
def apply(body: ApplyRequest, services: ServicesDep,
          principal: PrincipalDep) -> manifests.ApplyResult:
    return manifests.apply(services, principal, [(s.source, s.text) for s in body.sources],
                           body.sourceRoot)


@router.get("/manifests", tags=["manifests"], responses=READ)
def get_manifests(services: ServicesDep, principal: PrincipalDep,
                  kind: str | None = Query(None, max_length=32)
                  ) -> list[manifests.StoredManifest]:
    return manifests.get_objects(services, kind)


@router.get("/manifests/{kind}/{name}", tags=["manifests"], responses=declared(401, 404, 422))
def get_manifest(kind: str, name: str, services: ServicesDep,
                 principal: PrincipalDep) -> manifests.StoredManifest:
    return manifests.get_objects(services, kind, name)[0]


@router.post("/applications/{app}/versions", status_code=201, tags=["versions"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("version.record", "application", "{app}"))
def record_version(app: str, body: VersionRecord, services: ServicesDep,
                   principal: PrincipalDep) -> versions.VersionView:
    return versions.record_version(services, principal, app, body.image, body.commit)


@router.get("/applications/{app}/versions", tags=["versions"],
            responses=declared(401, 404, 422))
def list_versions(app: str, services: ServicesDep, principal: PrincipalDep,
                  limit: int = Query(50, ge=1, le=500)) -> list[versions.VersionView]:
    return versions.list_versions(services, app, limit)


@router.post("/releases", status_code=201, tags=["releases"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("release.create", "release"))
def create_release(body: ReleaseCreate, services: ServicesDep,
                   principal: PrincipalDep) -> releases.CreatedRelease:
    return releases.create_release(services, principal, body.applicationSet, body.name,
                                   override_reason=body.forwardPortOverride)


@router.post("/hotfixes", status_code=201, tags=["releases"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("hotfix.create", "release"))
def create_hotfix(body: HotfixCreate, services: ServicesDep,
                  principal: PrincipalDep) -> releases.CreatedRelease:
    return hotfix.create_hotfix(services, principal, body.applicationSet, body.apps,
                                body.incident, body.name)


@router.get("/releases", tags=["releases"], responses=READ)
def list_releases(services: ServicesDep, principal: PrincipalDep,
                  applicationSet: str | None = Query(None, max_length=63),
                  limit: int = Query(50, ge=1, le=500),
                  before: int | None = Query(None, ge=0, le=MAX_ID)
                  ) -> list[releases.ReleaseSummary]:
    return releases.list_releases(services, applicationSet, limit=limit, before=before)


@router.get("/releases/{app_set}/{name}", tags=["releases"], response_model=ReleaseStatus,
            responses={**declared(401, 404, 422), **watching.NOT_MODIFIED})
async def get_release(app_set: str, name: str, request: Request, services: ServicesDep,
                      principal: PrincipalDep) -> Response:
    """The release per stage. Carries an `ETag`; send it back in `If-None-Match` to get 304
    when nothing changed, and add `Prefer: wait=N` (seconds, at most 60) to be answered
    when the release changes instead of polling: the request is held until then, or 304
    after N seconds."""
    # The read clients poll most: one trip through the thread pool (not one for the call and
    # another for FastAPI's check of the model it returns), serialised once, to the same
    # bytes FastAPI would send for the `response_model`.
    ref = ReleaseRef(app_set, name)
    return await watching.answer(request, services, str(ref),
                                 lambda: run_in_threadpool(_release_json, services, ref))


def _release_json(services: Services, ref: ReleaseRef) -> bytes:
    return release_status(services, ref).model_dump_json().encode()


@router.post("/releases/{app_set}/{name}/promotions", status_code=202, tags=["promotions"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("promotion.request", "release", RELEASE))
def promote(app_set: str, name: str, services: ServicesDep, principal: PrincipalDep,
            body: PromotionCreate | None = None) -> promotions.PromotionRequested:
    body = body or PromotionCreate()
    return promotions.promote(services, principal, ReleaseRef(app_set, name),
                              override_reason=body.forwardPortOverride,
                              freeze_override_reason=body.freezeOverride)


@router.post("/releases/{app_set}/{name}/approvals", status_code=201, tags=["promotions"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("approval.grant", "release", RELEASE))
def approve(app_set: str, name: str, services: ServicesDep, principal: PrincipalDep,
            body: ApprovalCreate | None = None) -> promotions.ApprovalGranted:
    body = body or ApprovalCreate()
    return promotions.approve(services, principal, ReleaseRef(app_set, name),
                              body.role, body.comment)


@router.post("/releases/{app_set}/{name}/rejections", status_code=201, tags=["promotions"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("approval.reject", "release", RELEASE))
def reject(app_set: str, name: str, body: RejectionCreate, services: ServicesDep,
           principal: PrincipalDep) -> promotions.Rejected:
    return promotions.reject(services, principal, ReleaseRef(app_set, name), body.reason)


@router.post("/releases/{app_set}/{name}/abandon", tags=["releases"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("release.abandon", "release", RELEASE))
def abandon(app_set: str, name: str, body: AbandonRequest, services: ServicesDep,
            principal: PrincipalDep) -> releases.Abandoned:
    """Stop the release for good: it leaves every queue and is never promoted again."""
    return releases.abandon_release(services, principal, ReleaseRef(app_set, name),
                                    body.reason)


@router.get("/environments/drift", tags=["environments"], responses=READ)
def environments_drift(services: ServicesDep, principal: PrincipalDep,
                       environment: str | None = Query(None, max_length=63)
                       ) -> list[DriftReport]:
    """Per environment: in-sync, drifted (with every difference) or unknown."""
    return drift_report(services, environment)


@router.get("/environments", tags=["environments"], responses=declared(401))
def environments(services: ServicesDep, principal: PrincipalDep) -> list[EnvironmentView]:
    return environment_overview(services)


@router.get("/audit", tags=["audit"], responses=READ)
def audit_list(services: ServicesDep, principal: PrincipalDep,
               limit: int = Query(100, ge=1, le=1000),
               before: int | None = Query(None, ge=0, le=MAX_ID),
               objectType: str | None = Query(None, max_length=32),
               objectId: str | None = Query(None, max_length=200)
               ) -> list[audit_view.AuditEntryView]:
    return audit_view.list_entries(services, limit=limit, before=before,
                                   object_type=objectType, object_id=objectId)


@router.get("/audit/verify", tags=["audit"], responses=declared(401, 502))
def audit_verify(services: ServicesDep, principal: PrincipalDep) -> audit_view.VerifyReport:
    """The hash chain and every signed checkpoint."""
    return audit_verify_all(services)


@router.get("/audit/verify/progress", tags=["audit"], responses=declared(401))
def audit_verify_progress_route(services: ServicesDep,
                                principal: PrincipalDep) -> audit_view.VerifyProgress:
    """How far a verification running on this server has got (entries of the chain)."""
    return audit_verify_progress(services)


@router.post("/environments/{environment}/rollbacks", status_code=202, tags=["environments"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("environment.rollback", "environment", "{environment}"))
def roll_back(environment: str, services: ServicesDep, principal: PrincipalDep,
              body: RollbackCreate) -> rollback.RollbackStarted:
    target = parse_ref(body.to) if body.to else None
    return rollback.rollback(services, principal, environment, target, body.reason)


@router.post("/environments/{environment}/teardowns", status_code=201, tags=["environments"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("environment.teardown", "environment", "{environment}"))
def tear_down(environment: str, services: ServicesDep, principal: PrincipalDep,
              body: TeardownCreate) -> teardown.TornDown:
    """Stop everything the environment's target runs there (platform role); audited."""
    return teardown.teardown(services, principal, environment, body.reason)


@router.put("/environments/{environment}/binding", tags=["environments"],
            responses=declared(401, 403, 404, 409, 422),
            openapi_extra=mutation("environment.bind", "environment", "{environment}"))
def bind_environment(environment: str, services: ServicesDep, principal: PrincipalDep,
                     body: BindingSet) -> bindings.Bound:
    """Move a `local` environment to another node once its node is dead (platform role);
    refused while that node is alive; audited."""
    return bindings.bind(services, principal, environment, body.node)


@router.post("/prereleases", status_code=201, tags=["pre-release"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("prerelease.start", "application"))
def start_prerelease(body: PreReleaseCreate, services: ServicesDep,
                     principal: PrincipalDep) -> prerelease.PreReleaseRun:
    return prerelease.start_prerelease(services, principal, body.application, body.image,
                                       body.ref, body.commit)


@router.get("/prereleases", tags=["pre-release"], responses=READ)
def list_prereleases(services: ServicesDep, principal: PrincipalDep,
                     application: str | None = Query(None, max_length=63),
                     limit: int = Query(50, ge=1, le=500)) -> list[prerelease.PreReleaseRun]:
    return prerelease.list_prereleases(services, application, limit)


@router.get("/prereleases/{run_id}", tags=["pre-release"], responses=declared(401, 404, 422))
def get_prerelease(services: ServicesDep, principal: PrincipalDep,
                   run_id: int = Path(ge=1, le=MAX_ID)) -> prerelease.PreReleaseRun:
    return prerelease.prerelease_status(services, run_id)


@router.put("/secrets/{environment}/{app}/{name}", tags=["secrets"],
            responses=declared(401, 403, 404, 422),
            openapi_extra=mutation("secret.set", "secret", "{environment}/{app}/{name}"))
def set_secret(environment: str, app: str, name: str, body: SecretValue,
               services: ServicesDep, principal: PrincipalDep) -> secrets.SecretSet:
    return secrets.set_secret(services, principal, environment, app, name, body.value)


@router.get("/secrets", tags=["secrets"], responses=READ)
def list_secrets(services: ServicesDep, principal: PrincipalDep,
                 environment: str | None = Query(None, max_length=63)
                 ) -> list[secrets.SecretView]:
    return secrets.list_secrets(services, environment)


@router.get("/healthz", tags=["server"], include_in_schema=False)
def healthz() -> Health:
    return Health(ok=True)
