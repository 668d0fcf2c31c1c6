"""Stored rows → the facts `domain.readiness` judges a stage by, for the engine and every view.

The engine reads the rows of all active releases in one pass, a view reads those of one
release; both hand them here, so the readiness function sees the same facts whichever face
asks why a stage waits. `read_context` fetches what is not a row of the release itself: the
freeze windows in force, the hotfixes in production, who occupies the environments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from infrastream.domain.approvals import Approval
from infrastream.domain.forward_port import Fix
from infrastream.domain.readiness import (
    CheckFact,
    DeploymentFact,
    ForwardPort,
    Occupant,
    StageFacts,
)
from infrastream.domain.stage_machine import StageState
from infrastream.manifests import Lane
from infrastream.manifests.freeze import FreezeWindow
from infrastream.store.clock import utc

from ..context import Services
from .check_plan import check_plan
from .manifests import current_bundle
from .occupancy import occupants
from .release_content import ReleaseContent
from .releases import production_fixes


class RunRow(Protocol):
    """What a stage run row (or the engine's copy of one) carries."""

    @property
    def stage_index(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def request_id(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def deployed_at(self) -> datetime | None: ...
    @property
    def freeze_override(self) -> Any: ...
    @property
    def reason(self) -> str | None: ...


@dataclass
class Context:
    """What stage facts need beyond the release's own rows."""

    freezes: tuple[FreezeWindow, ...] = ()
    fixes: dict[str, tuple[Fix, ...]] = field(default_factory=dict)
    """By application set: the hotfixes the release in production carries."""
    occupants: tuple[Occupant, ...] = ()


def read_context(services: Services, conn: Connection, *, app_sets: Sequence[str] = (),
                 environments: Sequence[str] = (), revision: int | None = None) -> Context:
    """The freeze windows in force, the hotfixes in production of `app_sets` and who occupies
    `environments` (each read only when asked for); `revision` is the manifests' current
    one when the caller read it already in this transaction."""
    return Context(
        freezes=current_freezes(services, conn, revision),
        fixes={app_set: fixes_in_production(conn, app_set) for app_set in set(app_sets)},
        occupants=tuple(occupants(conn, environments)))


def current_freezes(services: Services, conn: Connection,
                    revision: int | None = None) -> tuple[FreezeWindow, ...]:
    """The freeze windows of the manifests as currently applied."""
    return tuple(current_bundle(services, conn, revision=revision).freezes.values())


def fixes_in_production(conn: Connection, app_set: str) -> tuple[Fix, ...]:
    """The hotfixes the set's release in production carries."""
    return tuple(production_fixes(conn, app_set))


def needs_fixes(lane: str, runs: Sequence[RunRow]) -> bool:
    """Whether the forward-port guard can hold this release now: a release-lane release
    whose last stage has not been entered yet."""
    return lane == Lane.RELEASE.value and bool(runs) and StageState(runs[-1].state) in (
        StageState.PENDING, StageState.AWAITING_APPROVAL, StageState.QUEUED)


def stage_facts(*, release_id: int, release_state: str, lane: str, app_set: str,
                digest: str, content: ReleaseContent, runs: Sequence[RunRow], index: int,
                guard_overridden: bool, context: Context,
                approvals: Sequence[Approval] = (),
                deployments: Sequence[Any] = (),
                checks: Mapping[str, Any] | None = None) -> StageFacts:
    """The facts of stage `index` of a release.

    `approvals` are those given to the stage's run; `deployments` are rows of the release's
    deployments (any stage, any attempt); `checks` are check run rows by key."""
    stages = content.stages(lane)
    run = runs[index]
    stage = stages[index]
    previous = runs[index - 1] if index > 0 else None
    attempt = run.attempt
    deps = tuple(DeploymentFact(d.environment, d.state, d.message or "")
                 for d in deployments
                 if d.stage_index == index and d.attempt == attempt)
    planned = check_plan(release_id, content, index, attempt, stage)
    found = checks or {}
    check_facts = []
    for item in planned:
        row = found.get(item.key)
        state = row.state if row is not None else ("skipped" if item.skip_reason else "pending")
        check_facts.append(CheckFact(item.check_type, item.app, item.environment, state,
                                     row.summary if row is not None else item.skip_reason))
    forward_port = None
    if lane == Lane.RELEASE.value and index == len(stages) - 1:
        forward_port = ForwardPort(content.versions, context.fixes.get(app_set, ()),
                                   overridden=guard_overridden)
    return StageFacts(
        stage=stage, index=index, state=StageState(run.state), release_id=release_id,
        release_state=release_state, lane=lane, reason=run.reason or "", digest=digest,
        request_id=run.request_id,
        previous=(stages[index - 1].display_name, StageState(previous.state))
        if previous is not None else None,
        approvals=tuple(approvals), freezes=context.freezes,
        freeze_override=run.freeze_override is not None, forward_port=forward_port,
        occupants=context.occupants, deployments=deps, checks=tuple(check_facts),
        deployed_at=utc(run.deployed_at))
