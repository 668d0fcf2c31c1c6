"""What a release page shows besides `release_status`: what the viewer may do, what changes
against production, and the output of one check.

`release_actions` answers "which buttons does this person get" with the very predicates the
use cases enforce (`require`, the next-stage rule of `promote`, `check_can_approve`, the
rejecter and rollback roles), so a face never shows a button the service would refuse for
lack of a role, nor hides one it would accept. The service still decides: a button is a
hint, the use case is the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from infrastream.domain.approvals import Refusal, check_can_approve
from infrastream.domain.errors import Conflict, NotFound
from infrastream.domain.roles import ROLL_BACK, Principal, deciders, promoters
from infrastream.domain.stage_machine import StageState
from infrastream.store.clock import utc
from infrastream.store.tables import check_runs, users

from ..context import Services
from ..promotions import next_stage
from ..readmodel import ReadModel
from ..records import release_content
from ..records.deployments import current, rollback_target
from ..records.releases import (
    ReleaseRef,
    approvals_of,
    find,
    release_stages,
    release_track,
    stage_rows,
)


class RollbackOffer(ReadModel):
    environment: str
    to: str


class ReleaseActions(ReadModel):
    """The buttons a viewer gets on a release page."""

    promote: str | None
    """The stage a promotion would request."""
    retry: bool
    approve_as: list[str]
    approve_note: str
    """Why the viewer cannot approve, when a role of theirs is asked for."""
    reject: bool
    rollback: list[RollbackOffer]
    signers: dict[str, list[str]] = {}
    """Per role the waiting stage asks for: the enabled users holding it (who may sign)."""
    cannot_sign: dict[str, str] = {}
    """Per role the waiting stage asks for that the viewer cannot sign as: why not."""


class VersionLine(ReadModel):
    image: str
    version: str
    commit: str | None


class AppChange(ReadModel):
    app: str
    change: str
    """`added`, `removed`, `changed` or `unchanged`."""
    old: VersionLine | None
    new: VersionLine | None


class ProductionDiff(ReadModel):
    environments: list[str]
    against: str | None
    """The release production runs now."""
    same: bool
    elsewhere: list[str]
    apps: list[AppChange]


class CheckOutput(ReadModel):
    release: str
    stage: int
    attempt: int
    environment: str
    app: str
    type: str
    state: str
    summary: str
    output: str
    started_at: str | None
    finished_at: str | None


def _holders(conn: Connection, roles: list[str]) -> dict[str, list[str]]:
    """The enabled users holding each of `roles`, by name."""
    holders: dict[str, list[str]] = {role: [] for role in roles}
    for name, held in conn.execute(select(users.c.name, users.c.roles)
                                   .where(users.c.disabled.is_(False))
                                   .order_by(users.c.name)):
        for role in roles:
            if role in held:
                holders[role].append(name)
    return holders


def release_actions(services: Services, principal: Principal,
                    ref: ReleaseRef) -> ReleaseActions:
    """The actions `principal` may take on the release now, and why an approval is refused."""
    now = services.now()
    actions: dict[str, Any] = {"promote": None, "retry": False, "approveAs": [],
                               "approveNote": "", "reject": False, "rollback": [],
                               "signers": {}, "cannotSign": {}}
    with services.db.connect() as conn:
        release = find(conn, ref)
        rows = stage_rows(conn, release.id)
        stages = release_stages(release)
        if release.state == "active":
            if principal.holds(promoters(release.lane)):
                try:
                    target = next_stage(release, rows, stages)
                except Conflict:
                    target = None
                if target is not None:
                    actions["promote"] = target.stage.display_name
                    actions["retry"] = target.row.state in (StageState.FAILED,
                                                            StageState.REJECTED)
            waiting = next((r for r in rows if r.state == StageState.AWAITING_APPROVAL), None)
            if waiting is not None:
                stage = stages[waiting.stage_index]
                given = approvals_of(conn, waiting.id)
                policy = release_track(release).spec.policy
                asked = list(dict.fromkeys(r.role for r in stage.approvals))
                actions["signers"] = _holders(conn, asked)
                for role in asked:
                    if role not in principal.roles:
                        actions["cannotSign"][role] = (
                            f"you ({', '.join(sorted(principal.roles)) or 'no role'}) "
                            f"do not hold the {role} role")
                        continue
                    verdict = check_can_approve(
                        user=principal.name, user_roles=sorted(principal.roles), role=role,
                        rules=stage.approvals, approvals=given, initiator=waiting.requested_by,
                        initiator_may_approve=policy.initiator_may_approve,
                        digest=release.digest, request_id=waiting.request_id, now=now)
                    if isinstance(verdict, Refusal):
                        actions["approveNote"] = actions["approveNote"] or verdict.reason
                        actions["cannotSign"][role] = verdict.reason
                    else:
                        actions["approveAs"].append(verdict.role)
                # promotions.reject: a holder of a needed role, or a release manager
                actions["reject"] = principal.holds(deciders({r.role for r in stage.approvals}))
        if principal.holds(ROLL_BACK):
            environments = dict.fromkeys(e for s in stages for e in s.environments)
            actions["rollback"] = [found for env in environments
                                   if (found := _rollback_target(conn, release.id, env))]
    return ReleaseActions.model_validate(actions)


def _rollback_target(conn: Connection, release_id: int, environment: str
                     ) -> dict[str, str] | None:
    """Where `rollback(environment)` would go, if the release is what runs there now."""
    running, target = rollback_target(conn, environment)
    if running is None or running.release_id != release_id or target is None:
        return None
    return {"environment": environment, "to": f"{target.app_set}/{target.name}"}


def production_diff(services: Services, ref: ReleaseRef) -> ProductionDiff:
    """The release's versions against what runs in its lane's last stage (production) now."""
    with services.db.connect() as conn:
        release = find(conn, ref)
        stages = release_stages(release)
        environments = stages[-1].environments if stages else []
        running = current(conn, environments)
        against = next(iter(running.values()), None)
        old = release_content.load(conn, against.release_id, against.digest).versions \
            if against is not None else {}
    new = release.content["versions"]
    result: dict[str, Any] = {
        "environments": list(environments),
        "against": f"{against.app_set}/{against.name}" if against is not None else None,
        "same": against is not None and against.release_id == release.id,
        "elsewhere": sorted({f"{r.app_set}/{r.name}" for r in running.values()
                             if against is not None and r.release_id != against.release_id}),
        "apps": [],
    }
    for app in sorted(set(new) | set(old)):
        before, after = old.get(app), new.get(app)
        if before is None:
            change = "added"
        elif after is None:
            change = "removed"
        elif before["image"] != after["image"] or before.get("commit") != after.get("commit"):
            change = "changed"
        else:
            change = "unchanged"
        result["apps"].append({"app": app, "change": change, "old": _version(before),
                               "new": _version(after)})
    return ProductionDiff.model_validate(result)


def _version(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"image": value["image"], "version": value["version"], "commit": value.get("commit")}


def check_output(services: Services, ref: ReleaseRef, stage_index: int, attempt: int,
                 environment: str, app: str, check_type: str) -> CheckOutput:
    """One check run of a release, with its output (found by its idempotency key)."""
    with services.db.connect() as conn:
        release = find(conn, ref)
        key = f"{release.id}/{stage_index}/{attempt}/{environment}/{app}/{check_type}"
        row = conn.execute(select(check_runs).where(check_runs.c.key == key)).first()
    if row is None:
        raise NotFound(f"no {check_type} check of {app} in {environment} (attempt {attempt}) "
                       f"for release {ref}")
    return CheckOutput(release=str(ref), stage=stage_index, attempt=attempt,
                       environment=environment, app=app, type=check_type, state=row.state,
                       summary=row.summary, output=row.output,
                       started_at=_iso(row.started_at), finished_at=_iso(row.finished_at))


def _iso(value: Any) -> str | None:
    moment = utc(value)
    return moment.isoformat() if moment else None
