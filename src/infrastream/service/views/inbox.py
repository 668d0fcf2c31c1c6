"""A person's approvals inbox: every promotion waiting for a sign-off of a role they hold.

Only active releases can wait for approval, so the query starts from the `releases.state`
index and reaches their stage runs through the (release, stage) key: the inbox costs the
same with ten releases or ten thousand. Whether the person may sign (four-eyes, already
signed, rule complete) is the same verdict `promotions.approve` applies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from infrastream.domain.approvals import check_can_approve, tally
from infrastream.domain.roles import Principal
from infrastream.domain.stage_machine import StageState
from infrastream.store.clock import utc
from infrastream.store.tables import releases, stage_runs

from ..context import Services
from ..records.releases import approvals_of, release_stages, release_track

_WAITING = (
    select(stage_runs.c.id, stage_runs.c.stage_index, stage_runs.c.request_id,
           stage_runs.c.requested_by, stage_runs.c.requested_at,
           releases.c.id.label("release_id"), releases.c.app_set, releases.c.name,
           releases.c.lane, releases.c.digest, releases.c.incident, releases.c.content)
    .join(releases, releases.c.id == stage_runs.c.release_id)
    .where((releases.c.state == "active")
           & (stage_runs.c.state == StageState.AWAITING_APPROVAL.value))
    .order_by(stage_runs.c.requested_at, stage_runs.c.id)
)


def waiting_for(services: Services, principal: Principal) -> list[dict[str, Any]]:
    """Promotions that still need a sign-off of one of the principal's roles, oldest first."""
    now = services.now()
    found: list[dict[str, Any]] = []
    with services.db.connect() as conn:
        for row in conn.execute(_WAITING).all():
            stage = release_stages(row)[row.stage_index]
            given = approvals_of(conn, row.id)
            current = tally(stage.approvals, given, digest=row.digest,
                            request_id=row.request_id, now=now)
            mine = [r.role for r in current.rules
                    if not r.satisfied and r.role in principal.roles]
            if not mine:
                continue
            verdict = check_can_approve(
                user=principal.name, user_roles=sorted(principal.roles), role=None,
                rules=stage.approvals, approvals=given, initiator=row.requested_by,
                initiator_may_approve=release_track(row).spec.policy.initiator_may_approve,
                digest=row.digest, request_id=row.request_id, now=now)
            requested = utc(row.requested_at)
            found.append({
                "release": f"{row.app_set}/{row.name}",
                "applicationSet": row.app_set,
                "name": row.name,
                "lane": row.lane,
                "incident": row.incident,
                "stage": stage.display_name,
                "requestedBy": row.requested_by,
                "requestedAt": requested.isoformat() if requested else None,
                "roles": mine,
                "missing": current.missing(),
                "canApprove": not isinstance(verdict, str),
                "note": verdict if isinstance(verdict, str) else "",
            })
    return found
