"""Why a stage of a release may not proceed: the one home of every wait reason.

`blockers(facts, now)` takes the stored facts of one stage of one release (its state, the
previous stage, the approvals given against the stage's rules, the freeze windows, the
hotfixes in production, who else occupies its environments, its deployments and checks) and
returns the ordered list of what holds it, each with a stable code, one line a person can
read and the data behind it. The engine moves a stage on exactly when that list is empty
(`next_event` says which way); the CLI, the API, the Portal, the inbox and the SCM statuses
print the same list. No other module words a wait reason.

    code             holds a stage while …
    not-requested    nobody asked for it yet (pending; promote to request it)
    previous-stage   the stage before it has not succeeded
    approval-missing a sign-off rule is short of people (one blocker per rule)
    frozen           a freeze window holds one of its environments (no override recorded)
    forward-port     entering it would roll back a hotfix in production (no override)
    env-busy         another release, a rollback, a pre-release run or a teardown occupies
                     one of its environments (one blocker per environment)
    deploying        a deployment of the stage is still running
    check-running    a check of the stage is starting or running
    soak-remaining   the stage's soak time has not run out
    failed           the stage failed (promote again to retry)
    rejected         a sign-off was refused (promote again to re-request)
    abandoned        the release was abandoned

The same function family says why a pull request's pre-release run or a merge waits
(`prerelease_blockers`, `merge_blockers`), for the SCM statuses and every face:

    paths-unknown    the host has not said yet which paths the pull request changes
    build-missing    the PR build (or the mainline build of a merge) is not recorded yet
    queued           other pre-release runs are ahead of it in its environment's queue
    env-busy         something else occupies its environment (as for a stage)
    merge-window     more merges may come before the window closes and one release is cut
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from infrastream.manifests import Stage, format_duration, parse_duration
from infrastream.manifests.freeze import FreezeWindow

from .approvals import Approval, Tally, tally
from .forward_port import Fix, violations
from .freeze import Frozen, frozen
from .stage_machine import StageEvent, StageState


class Code(StrEnum):
    NOT_REQUESTED = "not-requested"
    PREVIOUS_STAGE = "previous-stage"
    APPROVAL_MISSING = "approval-missing"
    FROZEN = "frozen"
    FORWARD_PORT = "forward-port"
    ENV_BUSY = "env-busy"
    DEPLOYING = "deploying"
    CHECK_RUNNING = "check-running"
    SOAK_REMAINING = "soak-remaining"
    FAILED = "failed"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    PATHS_UNKNOWN = "paths-unknown"
    BUILD_MISSING = "build-missing"
    QUEUED = "queued"
    MERGE_WINDOW = "merge-window"


#: Codes that end a stage's run rather than hold it: only a person moves it on from there.
FINAL = frozenset({Code.FAILED, Code.REJECTED, Code.ABANDONED})


@dataclass(frozen=True)
class Blocker:
    code: Code
    text: str
    """One line a person can act on, e.g. `security 0/1` or `soak 4m left`."""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code.value, "text": self.text, "data": dict(self.data)}


class OccupantKind(StrEnum):
    RELEASE = "release"
    ROLLBACK = "rollback"
    PRERELEASE = "prerelease"
    TEARDOWN = "teardown"


@dataclass(frozen=True)
class Occupant:
    """Something that runs in an environment right now: it holds the environment alone."""

    kind: OccupantKind
    environment: str
    id: int
    """The deployment, pre-release run or teardown id."""
    release_id: int | None = None
    release: str | None = None
    """`set/name` of the release being deployed (a release deployment or a rollback)."""
    app: str | None = None
    ref: str | None = None
    """The pull request a pre-release run validates."""

    def describe(self) -> str:
        if self.kind is OccupantKind.PRERELEASE:
            return f"pre-release run {self.id} of {self.app} ({self.ref})"
        if self.kind is OccupantKind.ROLLBACK:
            return f"a rollback to {self.release}"
        if self.kind is OccupantKind.TEARDOWN:
            return "a teardown"
        return f"{self.release}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "environment": self.environment, "id": self.id,
                "release": self.release, "app": self.app, "ref": self.ref,
                "text": self.describe()}


def occupied(occupants: Sequence[Occupant], environments: Sequence[str], *,
             release_id: int | None = None) -> dict[str, Occupant]:
    """Per environment, who holds it other than the release `release_id` itself.

    The occupancy rule: an environment runs one thing at a time (a release deployment, a
    rollback, a pre-release run from its deploy until its restore, a teardown)."""
    found: dict[str, Occupant] = {}
    for occupant in occupants:
        if occupant.environment not in environments or occupant.environment in found:
            continue
        if occupant.kind is OccupantKind.RELEASE and occupant.release_id == release_id:
            continue
        found[occupant.environment] = occupant
    return found


@dataclass(frozen=True)
class DeploymentFact:
    environment: str
    state: str
    """deploying, healthy or failed."""
    message: str = ""


@dataclass(frozen=True)
class CheckFact:
    type: str
    app: str
    environment: str
    state: str
    """pending (not started yet), running, passed, failed or skipped."""
    summary: str = ""


@dataclass(frozen=True)
class ForwardPort:
    """The hotfixes in production a release lane's last stage must not roll back."""

    versions: Mapping[str, Mapping[str, Any]]
    """The release's versions (app → {id, image, version})."""
    fixes: tuple[Fix, ...]
    overridden: bool = False

    def problems(self) -> list[str]:
        return [] if self.overridden else violations(self.versions, list(self.fixes))


@dataclass(frozen=True)
class StageFacts:
    """What is stored about one stage of one release, as readiness needs it."""

    stage: Stage
    index: int
    state: StageState
    release_id: int = 0
    release_state: str = "active"
    lane: str = "release"
    reason: str = ""
    """Why it failed or was rejected (stored with the transition)."""
    digest: str = ""
    request_id: int = 0
    previous: tuple[str, StageState] | None = None
    """The name and state of the stage before it (None for the first)."""
    approvals: tuple[Approval, ...] = ()
    freezes: tuple[FreezeWindow, ...] = ()
    """The FreezeWindow manifests in force (current manifests)."""
    freeze_override: bool = False
    forward_port: ForwardPort | None = None
    """Set for the last stage of the release lane only."""
    occupants: tuple[Occupant, ...] = ()
    deployments: tuple[DeploymentFact, ...] = ()
    """The deployments of the current attempt."""
    checks: tuple[CheckFact, ...] = ()
    """The planned checks of the current attempt, with their state."""
    deployed_at: datetime | None = None

    def tally(self, now: datetime) -> Tally:
        return tally(self.stage.approvals, self.approvals, digest=self.digest,
                     request_id=self.request_id, now=now)

    def frozen(self, now: datetime) -> list[Frozen]:
        found = [frozen(self.freezes, env, self.lane, now) for env in self.stage.environments]
        return [f for f in found if f is not None]

    def soak(self) -> int:
        return max((parse_duration(c.duration) for c in self.stage.checks if c.type == "soak"),
                   default=0)

    def soak_remaining(self, now: datetime) -> float:
        """Seconds of soak left once deployed (the whole soak before that)."""
        if self.deployed_at is None:
            return float(self.soak())
        return (self.deployed_at + timedelta(seconds=self.soak()) - now).total_seconds()


# -- the rule -------------------------------------------------------------------------------

def blockers(facts: StageFacts, now: datetime) -> list[Blocker]:
    """Everything that holds the stage now, in the order a person should deal with it."""
    state = facts.state
    if facts.release_state == "abandoned" and not state.terminal:
        return [Blocker(Code.ABANDONED, "the release was abandoned")]
    if state is StageState.FAILED:
        return [Blocker(Code.FAILED, facts.reason or "the stage failed")]
    if state is StageState.REJECTED:
        return [Blocker(Code.REJECTED, facts.reason or "the promotion was rejected")]
    if state is StageState.SUCCEEDED or facts.release_state != "active":
        return []
    if state is StageState.PENDING:
        return _entry(facts, now, requested=False)
    if state is StageState.AWAITING_APPROVAL:
        return _entry(facts, now, requested=True)
    if state is StageState.QUEUED:
        return _guards(facts, now) + _busy(facts)
    if state is StageState.DEPLOYING:
        return _deploying(facts)
    return _verifying(facts, now)


def next_event(facts: StageFacts, now: datetime) -> StageEvent | None:
    """What the engine does with the stage now: None while anything holds it (or when only a
    person can move it on), else the event of the step it takes."""
    if facts.release_state != "active" or blockers(facts, now):
        return None
    state = facts.state
    if state is StageState.AWAITING_APPROVAL:
        return StageEvent.APPROVALS_MET
    if state is StageState.QUEUED:
        return StageEvent.ENV_FREE
    if state is StageState.DEPLOYING:
        healthy = all(d.state == "healthy" for d in facts.deployments)
        return StageEvent.DEPLOYED if healthy else StageEvent.DEPLOY_FAILED
    if state is StageState.VERIFYING:
        failed = any(c.state == "failed" for c in facts.checks)
        return StageEvent.CHECKS_FAILED if failed else StageEvent.CHECKS_PASSED
    return None


def _entry(facts: StageFacts, now: datetime, *, requested: bool) -> list[Blocker]:
    found: list[Blocker] = []
    if facts.previous is not None and facts.previous[1] is not StageState.SUCCEEDED:
        name, previous = facts.previous
        found.append(Blocker(Code.PREVIOUS_STAGE, f"{name} to succeed ({previous.value})",
                             {"stage": name, "state": previous.value}))
    if not requested:
        needs = [rule_text(r.role, r.count) for r in facts.stage.approvals]
        text = f"a release manager to promote to {facts.stage.display_name}"
        found.append(Blocker(Code.NOT_REQUESTED, text + (f" (needs {', '.join(needs)})"
                                                         if needs else ""),
                             {"stage": facts.stage.display_name, "needs": needs}))
    else:
        for rule in facts.tally(now).rules:
            if not rule.satisfied:
                found.append(Blocker(Code.APPROVAL_MISSING, rule.describe(), {
                    "role": rule.role, "required": rule.required,
                    "approvers": list(rule.approvers), "expired": rule.expired}))
    return found + _guards(facts, now)


def _guards(facts: StageFacts, now: datetime) -> list[Blocker]:
    """Freeze windows and the forward-port guard: they hold a stage until it has entered."""
    found: list[Blocker] = []
    if not facts.freeze_override:
        for freeze in facts.frozen(now):
            found.append(Blocker(Code.FROZEN, freeze.describe(), {
                "window": freeze.window, "until": freeze.until.isoformat(),
                "overrideRole": freeze.override_role}))
    if facts.forward_port is not None:
        for problem in facts.forward_port.problems():
            found.append(Blocker(Code.FORWARD_PORT, f"forward-port: {problem}",
                                 {"problem": problem}))
    return found


def _busy(facts: StageFacts) -> list[Blocker]:
    holders = occupied(facts.occupants, facts.stage.environments, release_id=facts.release_id)
    return [Blocker(Code.ENV_BUSY, f"{env} (busy with {holder.describe()})",
                    {"environment": env, "occupant": holder.to_json()})
            for env, holder in holders.items()]


def _deploying(facts: StageFacts) -> list[Blocker]:
    done = {d.environment: d for d in facts.deployments if d.state != "deploying"}
    found: list[Blocker] = []
    for env in facts.stage.environments:
        if env in done:
            continue
        running = next((d for d in facts.deployments if d.environment == env), None)
        note = f": {running.message}" if running is not None and running.message else ""
        found.append(Blocker(Code.DEPLOYING, f"deploying to {env}{note}",
                             {"environment": env}))
    return found


def _verifying(facts: StageFacts, now: datetime) -> list[Blocker]:
    if any(c.state == "failed" for c in facts.checks):
        return []  # a failed check fails the stage at once
    found = [Blocker(Code.CHECK_RUNNING, f"{c.type} {c.app}@{c.environment}",
                     {"type": c.type, "app": c.app, "environment": c.environment,
                      "state": c.state})
             for c in facts.checks if c.state in ("pending", "running")]
    remaining = facts.soak_remaining(now)
    if remaining > 0:
        found.append(Blocker(Code.SOAK_REMAINING, f"soak {format_duration(remaining)} left",
                             {"seconds": round(remaining, 3)}))
    return found


# -- how long it held -----------------------------------------------------------------------

def held(facts: StageFacts, entered: datetime, now: datetime, *,
         previous_done: datetime | None = None,
         checks_done: datetime | None = None) -> list[tuple[Code, float]]:
    """What held the stage in the state it leaves `now` (`facts.state`, entered at
    `entered`), and for how many seconds, from stored timestamps only: the same answer on
    any server and after a restart. Codes that held it at once overlap; a code that held it
    for no time is left out.

    awaiting-approval: previous-stage until the stage before it succeeded (`previous_done`),
    approval-missing until the approval that satisfied the rules (until `now` if they never
    were: a rejection), then frozen while a freeze window held it. queued: frozen if a window
    held it when it entered, else env-busy. deploying: deploying. verifying: soak-remaining
    for the soak, check-running until the last check finished (`checks_done`). pending,
    failed, rejected: not-requested, failed, rejected (until a person promoted it).
    """
    state = facts.state
    found: list[tuple[Code, float]] = []
    if state is StageState.AWAITING_APPROVAL:
        free = entered
        if facts.previous is not None and previous_done is not None:
            found.append((Code.PREVIOUS_STAGE, _span(entered, previous_done)))
            free = max(free, previous_done)
        if facts.stage.approvals:
            signed = now
            if facts.tally(now).satisfied:
                signed = max((a.at for a in facts.approvals
                              if a.request_id == facts.request_id), default=entered)
            found.append((Code.APPROVAL_MISSING, _span(entered, signed)))
            free = max(free, signed)
        if not facts.freeze_override and facts.frozen(free):
            found.append((Code.FROZEN, _span(free, now)))
    elif state is StageState.QUEUED:
        frozen_then = not facts.freeze_override and facts.frozen(entered)
        found.append((Code.FROZEN if frozen_then else Code.ENV_BUSY, _span(entered, now)))
    elif state is StageState.DEPLOYING:
        found.append((Code.DEPLOYING, _span(entered, now)))
    elif state is StageState.VERIFYING:
        if facts.soak():
            found.append((Code.SOAK_REMAINING, min(_span(entered, now), float(facts.soak()))))
        if checks_done is not None:
            found.append((Code.CHECK_RUNNING, _span(entered, min(checks_done, now))))
    else:
        code = {StageState.PENDING: Code.NOT_REQUESTED, StageState.FAILED: Code.FAILED,
                StageState.REJECTED: Code.REJECTED}.get(state)
        if code is not None:
            found.append((code, _span(entered, now)))
    return [(code, seconds) for code, seconds in found if seconds > 0]


def _span(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)


# -- how it reads -----------------------------------------------------------------------------

def rule_text(role: str, count: int) -> str:
    return f"{role} × {count}" if count > 1 else role


def waiting_line(state: StageState, found: Sequence[Blocker]) -> str:
    """The one line a stage shows: `waiting for: security 0/1, soak 4m left`."""
    final = [b for b in found if b.code in FINAL]
    if final:
        return final[0].text
    if found:
        return "waiting for: " + ", ".join(b.text for b in found)
    return {StageState.AWAITING_APPROVAL: "cleared; starting", StageState.QUEUED: "starting",
            StageState.DEPLOYING: "deployed; checking health",
            StageState.VERIFYING: "checks passed"}.get(state, "")


@dataclass(frozen=True)
class StageLine:
    """What the release summary needs of each stage."""

    name: str
    state: StageState
    blockers: tuple[Blocker, ...]


def release_summary(release_state: str, stages: Sequence[StageLine], *,
                    runs_in: Sequence[str], replaced: Mapping[str, str] | None = None,
                    abandoned: str = "") -> str:
    """The one line a release shows: where it is, and what it waits for.

    `runs_in` is where it runs now (derived from each environment's current deployment);
    `replaced` says, for the environments of its last stage it no longer runs in, what runs
    there instead.
    """
    if release_state == "abandoned":
        return "abandoned" + (f": {abandoned}" if abandoned else "")
    if release_state == "completed":
        if runs_in:
            return "completed: running in " + ", ".join(runs_in)
        elsewhere = "; ".join(f"{env} runs {other}" for env, other in (replaced or {}).items())
        return "completed; no longer running" + (f" ({elsewhere})" if elsewhere else "")
    current = [s for s in stages if s.state not in (StageState.PENDING, StageState.SUCCEEDED)]
    if current:
        stage = current[-1]
        line = waiting_line(stage.state, stage.blockers)
        return f"{stage.name}: {stage.state.value}" + (f" — {line}" if line else "")
    following = next_stage(stages)
    if following is not None:
        return f"{stages[following - 1].name}: succeeded — " + ready_line(stages[following])
    return "pending"


def next_stage(stages: Sequence[StageLine]) -> int | None:
    """The index of the stage a promotion would request next, when the release sits between
    stages (every earlier stage succeeded, nothing in flight); else None."""
    done = 0
    while done < len(stages) and stages[done].state is StageState.SUCCEEDED:
        done += 1
    if 0 < done < len(stages) and stages[done].state is StageState.PENDING:
        return done
    return None


def ready_line(following: StageLine) -> str:
    """What a release between stages says about the next one: ready, and what it needs, or
    what would refuse it (a freeze window, the forward-port guard)."""
    requested = [b for b in following.blockers if b.code is Code.NOT_REQUESTED]
    others = [b.text for b in following.blockers if b.code is not Code.NOT_REQUESTED]
    if others:
        return f"promoting to {following.name} is held by: {', '.join(others)}"
    needs = requested[0].data.get("needs", []) if requested else []
    return f"ready to promote to {following.name}" + (f" (needs {', '.join(needs)})"
                                                       if needs else "")


# -- pre-release runs and merges ----------------------------------------------------------------

@dataclass(frozen=True)
class RunFacts:
    """What is stored about the pre-release run of one application for one commit."""

    commit: str
    environment: str
    build: bool
    """Whether the build of `commit` is known (recorded by CI, or named by a template)."""
    paths_known: bool = True
    """False while the host is asked whether the change touches the app's `path`."""
    queued: bool = False
    """The run exists and waits for its environment (not started yet)."""
    ahead: int = 0
    """Queued pre-release runs of the same environment that will start before it."""
    occupants: tuple[Occupant, ...] = ()
    """Who occupies the environment now."""


def prerelease_blockers(facts: RunFacts) -> list[Blocker]:
    """What holds a pull request's pre-release run before it starts, in order."""
    if not facts.paths_known:
        return [Blocker(Code.PATHS_UNKNOWN, "the list of paths the change touches")]
    if not facts.build:
        return [_build_missing(facts.commit)]
    if not facts.queued:
        return []
    found: list[Blocker] = []
    if facts.ahead:
        runs = "run" if facts.ahead == 1 else "runs"
        found.append(Blocker(Code.QUEUED, f"{facts.ahead} {runs} ahead",
                             {"environment": facts.environment, "ahead": facts.ahead,
                              "position": facts.ahead + 1}))
    for env, holder in occupied(facts.occupants, [facts.environment]).items():
        found.append(Blocker(Code.ENV_BUSY, f"{env} (busy with {holder.describe()})",
                             {"environment": env, "occupant": holder.to_json()}))
    return found


def prerelease_line(facts: RunFacts, found: Sequence[Blocker]) -> str:
    """The one line a waiting run shows: `waiting for the build of abc1234`, or
    `queued at position 2 for development: waiting for 1 run ahead`."""
    if not found:
        return "starting" if facts.queued else ""
    waits = waiting_for(found)
    if facts.queued:
        return f"queued at position {facts.ahead + 1} for {facts.environment}: {waits}"
    return waits


def merge_blockers(commit: str, *, build: bool, window_ends: datetime | None,
                   window: str, now: datetime) -> list[Blocker]:
    """What holds the release a merge cuts (tracks with `releaseOn: merge`)."""
    if not build:
        return [_build_missing(commit)]
    if window_ends is not None and window_ends > now:
        until = window_ends.strftime("%H:%M:%S UTC")  # stable, so the status is not redrawn
        return [Blocker(Code.MERGE_WINDOW,
                        f"more merges until {until} (merges within {window} make one "
                        "release)", {"until": window_ends.isoformat(), "window": window})]
    return []


def waiting_for(found: Sequence[Blocker]) -> str:
    """`waiting for the build of abc1234, …`: the line of a waiting run or merge."""
    return "waiting for " + ", ".join(b.text for b in found) if found else ""


def _build_missing(commit: str) -> Blocker:
    return Blocker(Code.BUILD_MISSING, f"the build of {commit[:7]}", {"commit": commit})
