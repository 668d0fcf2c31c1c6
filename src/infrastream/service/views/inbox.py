"""A person's approvals inbox: every promotion waiting for a sign-off of a role they hold.

Only active releases can wait for approval, so the query starts from the `releases.state`
index and reaches their stage runs through the (release, stage) key: the inbox costs the
same with ten releases or ten thousand. Whether the person may sign (four-eyes, already
signed, rule complete) is the same verdict `promotions.approve` applies; what else the
promotion waits for is the readiness blocker list every face prints.
"""

from __future__ import annotations

from sqlalchemy import select

from infrastream.domain.approvals import Refusal, check_can_approve
from infrastream.domain.readiness import Code, blockers, waiting_line
from infrastream.domain.roles import Principal
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Lane
from infrastream.store.clock import utc
from infrastream.store.tables import releases, stage_runs

from ..context import Services
from ..readmodel import ReadModel
from ..records import release_content
from ..records.releases import approvals_by_run, stage_rows
from ..records.stage_facts import read_context, stage_facts
from .release_status import BlockerView

_WAITING = (
    select(stage_runs.c.id, stage_runs.c.stage_index, stage_runs.c.request_id,
           stage_runs.c.requested_by, stage_runs.c.requested_at,
           releases.c.id.label("release_id"), releases.c.app_set, releases.c.name,
           releases.c.lane, releases.c.digest, releases.c.incident, releases.c.content,
           releases.c.guard_override)
    .join(releases, releases.c.id == stage_runs.c.release_id)
    .where((releases.c.state == "active")
           & (stage_runs.c.state == StageState.AWAITING_APPROVAL.value))
    .order_by(stage_runs.c.requested_at, stage_runs.c.id)
)


class InboxItem(ReadModel):
    """A promotion waiting for a sign-off of a role the viewer holds."""

    release: str
    application_set: str
    name: str
    lane: str
    incident: str | None
    stage: str
    requested_by: str | None
    requested_at: str | None
    roles: list[str]
    """The viewer's roles the promotion still needs."""
    missing: list[str]
    blockers: list[BlockerView]
    waiting: str
    can_approve: bool
    note: str
    """Why the viewer cannot sign it (four-eyes, already signed, …), if they cannot."""


def waiting_for(services: Services, principal: Principal) -> list[InboxItem]:
    """Promotions that still need a sign-off of one of the principal's roles, oldest first."""
    now = services.now()
    found: list[InboxItem] = []
    with services.db.connect() as conn:
        waiting = conn.execute(_WAITING).all()
        if not waiting:
            return found
        given = approvals_by_run(conn, [row.id for row in waiting])
        context = read_context(services, conn, app_sets=[
            row.app_set for row in waiting if row.lane == Lane.RELEASE.value])
        for row in waiting:
            content = release_content.of_row(row)
            runs = stage_rows(conn, row.release_id)
            facts = stage_facts(
                release_id=row.release_id, release_state="active", lane=row.lane,
                app_set=row.app_set, digest=row.digest, content=content, runs=runs,
                index=row.stage_index, guard_overridden=row.guard_override is not None,
                context=context, approvals=given.get(row.id, []))
            missing = [b for b in blockers(facts, now) if b.code is Code.APPROVAL_MISSING]
            mine = [str(b.data["role"]) for b in missing if b.data["role"] in principal.roles]
            if not mine:
                continue
            held = blockers(facts, now)
            verdicts = [check_can_approve(
                user=principal.name, user_roles=sorted(principal.roles), role=role,
                rules=facts.stage.approvals, approvals=given.get(row.id, []),
                initiator=row.requested_by,
                initiator_may_approve=content.track.spec.policy.initiator_may_approve,
                digest=row.digest, request_id=row.request_id, now=now) for role in mine]
            refusals = [v for v in verdicts if isinstance(v, Refusal)]
            requested = utc(row.requested_at)
            found.append(InboxItem(
                release=f"{row.app_set}/{row.name}",
                application_set=row.app_set,
                name=row.name,
                lane=row.lane,
                incident=row.incident,
                stage=facts.stage.display_name,
                requested_by=row.requested_by,
                requested_at=requested.isoformat() if requested else None,
                roles=mine,
                missing=[b.text for b in missing],
                blockers=[BlockerView.model_validate(b.to_json()) for b in held],
                waiting=waiting_line(facts.state, held),
                can_approve=len(refusals) < len(verdicts),
                note=refusals[0].reason if refusals and len(refusals) == len(verdicts)
                else "",
            ))
    return found
