"""Sign-in with the identity provider: the redirect there (authorization code flow with
PKCE, `state` and `nonce` kept in the signed session cookie) and the callback that checks
them, verifies the ID token, and signs the person in (`service.single_sign_on`). Every
refusal comes back to the sign-in page with its reason."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from infrastream.domain.errors import InfrastreamError, Unauthenticated
from infrastream.domain.sign_in import check_state
from infrastream.service.single_sign_on import last_sign_in, sign_in_person

from .access import current, safe_next, signed_in, state
from .render import SECURITY_HEADERS, page, redirect, root

router = APIRouter()


def _callback(request: Request) -> str:
    """Where the provider sends the browser back (registered there as a redirect URI)."""
    return f"{request.url.scheme}://{request.url.netloc}{root(request)}/sign-in/oidc/callback"


@router.get("/sign-in/oidc", name="oidc-start")
def start(request: Request,
          wanted: str | None = Query(None, alias="next", max_length=500)) -> Response:
    _services, me = current(request)
    sso = state(request).sso
    if sso is None:
        me.remember("error", "Sign-in with an identity provider is not configured here.")
        return redirect(request, me, "/sign-in")
    callback = _callback(request)
    try:
        started = sso.provider.start(callback)
    except InfrastreamError as failed:
        me.remember("error", failed.reason)
        return redirect(request, me, "/sign-in")
    me.start_sign_in({"state": started.state, "nonce": started.nonce,
                      "verifier": started.verifier, "next": wanted or ""})
    return me.store(request, RedirectResponse(started.url, status_code=303,
                                              headers=SECURITY_HEADERS))


@router.get("/sign-in/oidc/callback", name="oidc-callback")
def callback(request: Request,
             code: str | None = Query(None, max_length=2000),
             returned_state: str | None = Query(None, alias="state", max_length=500),
             error: str | None = Query(None, max_length=200),
             error_description: str | None = Query(None, max_length=500)) -> Response:
    services, me = current(request)
    sso = state(request).sso
    pending = me.take_pending()
    try:
        if sso is None:
            raise Unauthenticated("sign-in with an identity provider is not configured here")
        check_state(pending["state"] if pending else None, returned_state)
        assert pending is not None
        if error:
            raise Unauthenticated(f"the identity provider refused: {error}"
                                  f"{': ' + error_description if error_description else ''}")
        if not code:
            raise Unauthenticated("the identity provider sent no authorization code")
        person = sso.provider.finish(pending["nonce"], pending["verifier"], code,
                                     _callback(request), services.now())
        signed = sign_in_person(services, person, sso.policy)
    except InfrastreamError as refused:
        me.remember("error", "Sign-in refused: " + refused.reason.removeprefix(
            "sign-in refused: "))
        return redirect(request, me, "/sign-in")
    me.sign_in(signed.principal, signed.token_hash)
    roles = ", ".join(sorted(signed.principal.roles)) or "no roles"
    me.remember("ok", f"Signed in as {signed.principal.name} ({roles}).")
    return redirect(request, me, safe_next(request, pending.get("next") if pending else None))


@router.get("/me", name="me")
def my_page(request: Request) -> Response:
    """Your name and roles, and, if you signed in with the provider, the groups your roles
    came from at that sign-in."""
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    services, me = found.services, found.viewer
    return page(request, me, "me.html", person=found.principal,
                roles=sorted(found.principal.roles),
                last=last_sign_in(services, found.principal), inbox_count=0)
