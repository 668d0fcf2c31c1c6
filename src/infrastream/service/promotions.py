"""Promotion requests, approvals and rejections (the Portal's and CLI's sign-off actions).

A release manager requests the next stage; the stage's approval rules (from the release's own
manifest snapshot, never today's manifests) decide who must sign off. Every state change is a
compare-and-set on the stage run, so concurrent requests or approvals cannot advance a stage
twice; a refused approve attempt is itself audited. Only what gives the engine something to
do wakes it: a request that needs no approval, or that somebody is to be told about (a
notification subscription exists), and the approval that completes the stage's rules. Before
that the engine has nothing to do for the promotion (approvals are counted one after the other
under the stage run's lock, so the last one sees all the others), and the notification pass
reads who still waits from the stored state at its next pass anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.exc import IntegrityError

from infrastream.domain.approvals import (
    Approval,
    Refusal,
    RefusalKind,
    RuleTally,
    check_can_approve,
    tally,
)
from infrastream.domain.errors import Conflict, Forbidden, InfrastreamError, Invalid
from infrastream.domain.forward_port import violations
from infrastream.domain.freeze import Frozen
from infrastream.domain.inputs import free_text, optional_text
from infrastream.domain.roles import PROMOTE, Principal, deciders, promoters
from infrastream.domain.stage_machine import (
    Accepted,
    StageEvent,
    StageState,
    decide,
    request_target,
)
from infrastream.manifests import Lane, Stage
from infrastream.store.tables import approvals, releases, stage_runs

from . import telemetry
from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.freezes import freezes_holding
from .records.release_content import ReleaseContent
from .records.releases import (
    ReleaseRef,
    approvals_of,
    content_of,
    find_with_runs,
    production_fixes,
)
from .records.shapes import FreezeOverride, GuardOverride
from .records.subscribers import anybody_subscribed
from .releases import guard_override


class PromotionRequested(ReadModel):
    """A promotion requested (or let through what held it)."""

    release: str
    stage: str
    stage_index: int
    request: int
    """The request's number (approvals are bound to it)."""
    approvals_required: list[str] | None = None
    """`role × count` per approval rule of the stage (a new request only)."""
    frozen: list[str]
    """The freeze windows that hold the stage now."""
    freeze_override: FreezeOverride | None
    forward_port_override: GuardOverride | None = None


class ApprovalGranted(ReadModel):
    release: str
    stage: str
    role: str
    approved_by: str


class Rejected(ReadModel):
    release: str
    stage: str
    rejected_by: str
    reason: str


def _freeze(override: dict[str, Any] | None) -> FreezeOverride | None:
    return FreezeOverride.model_validate(override) if override is not None else None

_ENTERING = (StageState.AWAITING_APPROVAL, StageState.QUEUED)
_REFUSED: dict[RefusalKind, type[InfrastreamError]] = {
    RefusalKind.FORBIDDEN: Forbidden, RefusalKind.CONFLICT: Conflict,
    RefusalKind.AMBIGUOUS: Invalid}


_TRANSITION = update(stage_runs).where(
    (stage_runs.c.id == bindparam("run_id")) & (stage_runs.c.state == bindparam("from_state"))
    & (stage_runs.c.request_id == bindparam("from_request")))
"""The compare-and-set; the columns it sets are the keys of its parameters."""
_APPROVAL = insert(approvals)


def transition(conn: Connection, row: Any, event: StageEvent, now: Any, **values: Any) -> bool:
    """Compare-and-set the stage run from its current state; False if someone beat us."""
    verdict = decide(StageState(row.state), event)
    if not isinstance(verdict, Accepted):
        raise Conflict(verdict.reason)
    result = conn.execute(_TRANSITION, {
        "run_id": row.id, "from_state": row.state, "from_request": row.request_id,
        "state": verdict.state.value, "updated_at": now, **values})
    return result.rowcount == 1


@dataclass(frozen=True)
class Target:
    row: Any
    stage: Stage


def next_stage(release: Any, rows: list[Any], stages: list[Stage]) -> Target:
    """The stage run a promotion request of `release` targets (`request_target`'s rule)."""
    index = request_target([StageState(r.state) for r in rows],
                           [s.display_name for s in stages], f"{release.app_set}/{release.name}")
    return Target(rows[index], stages[index])


def _freeze_override(principal: Principal, holding: list[Frozen],
                     reason: str | None, now: Any) -> dict[str, Any] | None:
    if not holding or reason is None:
        return None
    if not reason.strip():
        raise Invalid("overriding a freeze window needs a reason")
    for freeze in holding:
        if freeze.override_role is None or freeze.override_role not in principal.roles:
            raise Forbidden(f"{principal.name} may not override freeze `{freeze.window}`"
                            + (f": it needs the role {freeze.override_role}"
                               if freeze.override_role else ": it allows no override"))
    return {"by": principal.name, "reason": reason.strip(), "at": now.isoformat(),
            "windows": [f.window for f in holding]}


@refusals.audited("promotion.request", "release", lambda a: a["ref"])
def promote(services: Services, principal: Principal, ref: ReleaseRef, *,
            override_reason: str | None = None,
            freeze_override_reason: str | None = None) -> PromotionRequested:
    """Request promotion to the next stage (or a retry of a failed/rejected one).

    Entering the last stage of the release lane passes the forward-port guard first: a
    release that would roll back a hotfix in production needs an override with a reason.
    """
    override_reason = optional_text("the forward-port override reason", override_reason)
    freeze_override_reason = optional_text("the freeze override reason", freeze_override_reason)
    now = services.now()
    with services.transaction() as conn:
        release, rows = find_with_runs(conn, ref)
        require(principal, promoters(release.lane), "promote releases")
        if release.state != "active":
            raise Conflict(f"release {ref} is {release.state}; only active releases promote")
        content = content_of(conn, release)
        waiting = next((r for r in rows if r.state in _ENTERING), None)
        if waiting is not None and (freeze_override_reason is not None
                                    or override_reason is not None):
            return _override_request(services, conn, principal, ref, release, content,
                                     waiting, now, forward_port=override_reason,
                                     freeze=freeze_override_reason)
        target = next_stage(release, rows, content.stages(release.lane))
        if target.row.stage_index == len(rows) - 1:
            _guard(conn, principal, ref, release, content, override_reason, now)
        holding = freezes_holding(services, target.stage, release.lane, now, conn)
        freeze_override = _freeze_override(principal, holding, freeze_override_reason, now)
        if not transition(conn, target.row, StageEvent.REQUEST, now,
                          request_id=target.row.request_id + 1, requested_by=principal.name,
                          requested_at=now, reason="", freeze_override=freeze_override):
            raise Conflict(f"the promotion of {ref} changed concurrently; try again")
        observe = telemetry.run_left(conn, release, target.row, target.stage,
                                     StageState.AWAITING_APPROVAL, now)
        # a promotion that waits for people gives the engine nothing to do, unless somebody
        # is to be told that it waits
        wake = tally(target.stage.approvals, [], digest=release.digest,
                     request_id=target.row.request_id + 1, now=now).satisfied \
            or anybody_subscribed(conn)
        audit.record(conn, at=now, actor=principal.name, action="promotion.request",
                     object_type="release", object_id=str(ref),
                     before={"stage": target.stage.display_name, "state": target.row.state},
                     after={"stage": target.stage.display_name,
                            "state": StageState.AWAITING_APPROVAL.value,
                            "request": target.row.request_id + 1,
                            "freezeOverride": freeze_override})
    observe()
    if wake:
        services.notify(str(ref))
    else:
        services.changed(str(ref))  # the release reads differently: it waits for approvals
    rules = [f"{r.role} × {r.count}" for r in target.stage.approvals]
    return PromotionRequested(release=str(ref), stage=target.stage.display_name,
                              stage_index=target.row.stage_index,
                              request=target.row.request_id + 1, approvals_required=rules,
                              frozen=[f.describe() for f in holding],
                              freeze_override=_freeze(freeze_override))


def _guard(conn: Connection, principal: Principal, ref: ReleaseRef, release: Any,
           content: ReleaseContent, reason: str | None, now: Any) -> dict[str, Any] | None:
    """The forward-port guard at the entry of a release lane's last stage: refuse a release
    that would roll back a hotfix in production, unless overridden with a reason (recorded
    and audited). The readiness function holds the stage on the same rule until it enters."""
    if release.lane != Lane.RELEASE.value or release.guard_override is not None:
        return None
    fixes = production_fixes(conn, release.app_set)
    override = guard_override(principal, violations(content.versions, fixes),
                              reason, now)
    if override is not None:
        conn.execute(update(releases).where(releases.c.id == release.id)
                     .values(guard_override=override))
        audit.record(conn, at=now, actor=principal.name, action="forward-port.override",
                     object_type="release", object_id=str(ref), after=override)
    return override


def _override_request(services: Services, conn: Connection, principal: Principal,
                      ref: ReleaseRef, release: Any, content: ReleaseContent, row: Any,
                      now: Any, *, forward_port: str | None,
                      freeze: str | None) -> PromotionRequested:
    """Let an already requested promotion through what holds it: a freeze window (its
    override role only) or the forward-port guard (a release manager), each with a reason."""
    require(principal, PROMOTE, "override what holds a promotion")
    stages = content.stages(release.lane)
    stage = stages[row.stage_index]
    holding = freezes_holding(services, stage, release.lane, now, conn) if freeze else []
    override = None
    if freeze is not None:
        if not holding:
            raise Conflict(f"no freeze window holds {stage.display_name} now; nothing to "
                           "override")
        override = _freeze_override(principal, holding, freeze, now)
        conn.execute(update(stage_runs).where(stage_runs.c.id == row.id)
                     .values(freeze_override=override, updated_at=now))
        audit.record(conn, at=now, actor=principal.name, action="freeze.override",
                     object_type="release", object_id=str(ref), after=override)
    guard = None
    if forward_port is not None:
        last = row.stage_index == len(stages) - 1
        guard = (_guard(conn, principal, ref, release, content, forward_port, now) if last
                 else None)
        if guard is None:
            raise Conflict(f"the forward-port guard does not hold {ref} now; nothing to "
                           "override")
    services.notify(str(ref))
    return PromotionRequested(release=str(ref), stage=stage.display_name,
                              stage_index=row.stage_index, request=row.request_id,
                              frozen=[f.describe() for f in holding],
                              freeze_override=_freeze(override),
                              forward_port_override=GuardOverride.model_validate(guard)
                              if guard is not None else None)


def _awaiting(conn: Connection, ref: ReleaseRef) -> tuple[Any, ReleaseContent, Any, Stage]:
    """The release, its content, and its stage run waiting for approval, locked until the
    transaction ends (PostgreSQL: FOR UPDATE; SQLite: the write lock BEGIN IMMEDIATE took),
    so concurrent approvals of one promotion are counted one after the other."""
    release, locked = find_with_runs(conn, ref, lock=True)
    content = content_of(conn, release)
    for row in locked:
        if row.state == StageState.AWAITING_APPROVAL:
            return release, content, row, content.stages(release.lane)[row.stage_index]
    raise Conflict(f"no promotion of {ref} is waiting for approval")


@refusals.audited("approval.grant", "release", lambda a: a["ref"],
                  lambda a: {"role": a["role"]})
def approve(services: Services, principal: Principal, ref: ReleaseRef, role: str | None = None,
            comment: str = "") -> ApprovalGranted:
    comment = free_text("the comment", comment)
    now = services.now()
    refusal: InfrastreamError | None = None
    with services.transaction() as conn:
        release, content, row, stage = _awaiting(conn, ref)
        track = content.track
        given = approvals_of(conn, row.id)
        verdict = check_can_approve(
            user=principal.name, user_roles=sorted(principal.roles), role=role,
            rules=stage.approvals, approvals=given,
            initiator=row.requested_by,
            initiator_may_approve=track.spec.policy.initiator_may_approve,
            digest=release.digest, request_id=row.request_id, now=now)
        if isinstance(verdict, Refusal):
            refusal = _REFUSED[verdict.kind](verdict.reason,
                                             **({"candidates": list(verdict.candidates)}
                                                if verdict.candidates else {}))
        else:
            try:
                conn.execute(_APPROVAL, {
                    "stage_run_id": row.id, "request_id": row.request_id,
                    "digest": release.digest, "user": principal.name, "role": verdict.role,
                    "decision": "approve", "comment": comment, "at": now})
            except IntegrityError:
                raise Conflict(f"{principal.name} already approved this promotion") from None
            audit.record(conn, at=now, actor=principal.name, action="approval.grant",
                         object_type="release", object_id=str(ref),
                         after={"stage": stage.display_name, "role": verdict.role,
                                "digest": release.digest, "request": row.request_id,
                                "comment": comment})
    if refusal is not None:
        raise refusal  # audited as a refusal (`approval.grant.refused`) by the wrapper
    assert isinstance(verdict, RuleTally)  # a refusal was raised above
    mine = Approval(principal.name, verdict.role, now, release.digest, row.request_id, comment)
    if tally(stage.approvals, [*given, mine], digest=release.digest,
             request_id=row.request_id, now=now).satisfied:
        services.notify(str(ref))  # the last one: the engine clears the promotion, deploys
    else:
        services.changed(str(ref))  # one more sign-off to show, nothing for the engine yet
    telemetry.approval_given(release.lane, verdict.role, row.requested_at, now)
    return ApprovalGranted(release=str(ref), stage=stage.display_name, role=verdict.role,
                           approved_by=principal.name)


@refusals.audited("approval.reject", "release", lambda a: a["ref"])
def reject(services: Services, principal: Principal, ref: ReleaseRef,
           reason: str) -> Rejected:
    if not reason.strip():
        raise Invalid("a rejection needs a reason")
    reason = free_text("the reason", reason)
    now = services.now()
    with services.transaction() as conn:
        release, _content, row, stage = _awaiting(conn, ref)
        allowed = deciders({r.role for r in stage.approvals})
        if not principal.holds(allowed):
            raise Forbidden(f"{principal.name} may not reject this promotion: it needs one of "
                            + ", ".join(sorted(allowed)))
        role = next((r.role for r in stage.approvals if r.role in principal.roles),
                    next(iter(principal.roles & allowed)))
        if not transition(conn, row, StageEvent.REJECT, now, reason=f"rejected by "
                          f"{principal.name} ({role}): {reason.strip()}", finished_at=now):
            raise Conflict(f"the promotion of {ref} changed concurrently; try again")
        observe = telemetry.run_left(conn, release, row, stage, StageState.REJECTED, now)
        conn.execute(_APPROVAL, {
            "stage_run_id": row.id, "request_id": row.request_id, "digest": release.digest,
            "user": principal.name, "role": role, "decision": "reject",
            "comment": reason.strip(), "at": now})
        audit.record(conn, at=now, actor=principal.name, action="approval.reject",
                     object_type="release", object_id=str(ref),
                     before={"stage": stage.display_name, "state": row.state},
                     after={"stage": stage.display_name, "state": "rejected", "role": role,
                            "reason": reason.strip()})
    observe()
    services.notify(str(ref))
    return Rejected(release=str(ref), stage=stage.display_name, rejected_by=principal.name,
                    reason=reason.strip())
