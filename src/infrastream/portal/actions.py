"""The portal's actions (POST): sign in and out, promote, approve, reject, roll back.

Every action checks the form's CSRF token first (a forged or stale form gets a 403 page and
changes nothing), then calls the same use case as the API with the signed-in principal. On
success, and when the service refuses, it redirects to the release page (post/redirect/get)
with a one-line message, so reloading never sends the form again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from infrastream.domain.errors import InfrastreamError, Unauthenticated
from infrastream.service import promotions, rollback, sessions, single_sign_on
from infrastream.service.records.releases import ReleaseRef, parse_ref

from .access import current, form_fields, safe_next, signed_in, state
from .render import page, redirect
from .session import Viewer

router = APIRouter()
Form = Annotated[dict[str, str], Depends(form_fields)]


def forged(request: Request, me: Viewer) -> Response:
    return page(request, me, "error.html", code=403, title="Form refused",
                detail="This form was not sent by a portal page of your current session "
                "(its security token is missing or stale), so nothing was done. Reload the "
                "page and try again.", inbox_count=0)


@router.post("/sign-in", name="sign-in-submit")
def sign_in(request: Request, form: Form) -> Response:
    services, me = current(request)
    if not me.csrf_ok(form.get("csrf")):
        return forged(request, me)
    token = form.get("token", "")
    demo_user = form.get("demo_user")
    if demo_user:
        token = state(request).demo_tokens.get(demo_user, "")
    try:
        signed = sessions.sign_in(services, token)
    except Unauthenticated as exc:
        me.remember("error", "That token was not accepted: " + exc.reason
                    if token else "Paste your API token to sign in.")
        return redirect(request, me, "/sign-in")
    me.sign_in(signed.principal, signed.token_hash)
    me.remember("ok", f"Signed in as {signed.principal.name} "
                f"({', '.join(sorted(signed.principal.roles))}).")
    return redirect(request, me, safe_next(request, form.get("next")))


@router.post("/sign-out", name="sign-out")
def sign_out(request: Request, form: Form) -> Response:
    services, me = current(request)
    if not me.csrf_ok(form.get("csrf")):
        return forged(request, me)
    if me.session.token_hash:
        single_sign_on.sign_out(services, me.session.token_hash)
    me.sign_out()
    me.remember("ok", "Signed out.")
    return redirect(request, me, "/sign-in")


def _act(request: Request, form: dict[str, str], ref: ReleaseRef,
         action: Any) -> Response:
    """Run `action(services, principal)` for a release form; show the outcome."""
    found = signed_in(request)
    if isinstance(found, Response):
        return found
    me = found.viewer
    if not me.csrf_ok(form.get("csrf")):
        return forged(request, me)
    try:
        message = action(found.services, found.principal)
    except InfrastreamError as exc:
        # Post/redirect/get for refusals too: the message survives the redirect and a
        # reload of the page shows it again without sending the form a second time.
        me.remember("error", exc.reason)
        return redirect(request, me, f"/releases/{ref.app_set}/{ref.name}")
    me.remember("ok", message)
    return redirect(request, me, f"/releases/{ref.app_set}/{ref.name}")


@router.post("/releases/{app_set}/{name}/promote", name="promote")
def promote(request: Request, app_set: str, name: str, form: Form) -> Response:
    ref = ReleaseRef(app_set, name)

    def run(services: Any, principal: Any) -> str:
        result = promotions.promote(
            services, principal, ref,
            override_reason=form.get("forward_port_override") or None,
            freeze_override_reason=form.get("freeze_override") or None)
        needs = result.approvals_required or []
        return (f"Promotion of {ref} to {result.stage} requested"
                + (f"; it needs sign-off from {', '.join(needs)}." if needs else "."))

    return _act(request, form, ref, run)


@router.post("/releases/{app_set}/{name}/approve", name="approve")
def approve(request: Request, app_set: str, name: str, form: Form) -> Response:
    ref = ReleaseRef(app_set, name)

    def run(services: Any, principal: Any) -> str:
        result = promotions.approve(services, principal, ref, form.get("role") or None,
                                    form.get("comment", "").strip())
        return f"You approved {ref} for {result.stage} as {result.role}."

    return _act(request, form, ref, run)


@router.post("/releases/{app_set}/{name}/reject", name="reject")
def reject(request: Request, app_set: str, name: str, form: Form) -> Response:
    ref = ReleaseRef(app_set, name)

    def run(services: Any, principal: Any) -> str:
        result = promotions.reject(services, principal, ref, form.get("reason", ""))
        return f"You rejected the promotion of {ref} to {result.stage}: {result.reason}"

    return _act(request, form, ref, run)


@router.post("/releases/{app_set}/{name}/rollback", name="rollback")
def roll_back(request: Request, app_set: str, name: str, form: Form) -> Response:
    ref = ReleaseRef(app_set, name)

    def run(services: Any, principal: Any) -> str:
        target = parse_ref(form["to"]) if form.get("to") else None
        result = rollback.rollback(services, principal, form.get("environment", ""), target,
                                   form.get("reason", ""))
        return (f"Rolling {result.environment} back from {result.from_} to "
                f"{result.to}.")

    return _act(request, form, ref, run)
