"""The life of one stage of one release, as an explicit state machine.

States are an enum; every transition is a named rule with the states it leaves from, the
event that triggers it and the state it enters (Prefect's orchestration rules, in small).
`decide(state, event)` returns a verdict: accepted with the new state, or rejected with a
reason a person can act on. Nothing else changes a stage's state.

    PENDING ──request──▶ AWAITING_APPROVAL ──approvals_met──▶ QUEUED ──env_free──▶ DEPLOYING
       ▲                     │ reject                                           │    │
       │                     ▼                                       deploy_failed    deployed
       └─────────────── REJECTED / FAILED ◀──────checks_failed──── VERIFYING ◀─────┘
                         (request again)                              │ checks_passed
                                                                      ▼
                                                                  SUCCEEDED
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .errors import Conflict


class StageState(StrEnum):
    PENDING = "pending"
    """Not entered, and nobody asked to."""
    AWAITING_APPROVAL = "awaiting-approval"
    """Promotion requested; waiting for the previous stage and the sign-offs."""
    QUEUED = "queued"
    """Cleared to deploy; waiting for its environments to be free."""
    DEPLOYING = "deploying"
    VERIFYING = "verifying"
    """Deployed and healthy; the stage's checks run (integration tests, HTTP, soak)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"

    @property
    def active(self) -> bool:
        return self in _ACTIVE

    @property
    def terminal(self) -> bool:
        return self in (StageState.SUCCEEDED, StageState.FAILED, StageState.REJECTED)


_ACTIVE = frozenset(
    {StageState.AWAITING_APPROVAL, StageState.QUEUED, StageState.DEPLOYING, StageState.VERIFYING}
)


class StageEvent(StrEnum):
    REQUEST = "request"
    APPROVALS_MET = "approvals-met"
    REJECT = "reject"
    ENV_FREE = "env-free"
    DEPLOYED = "deployed"
    DEPLOY_FAILED = "deploy-failed"
    CHECKS_PASSED = "checks-passed"
    CHECKS_FAILED = "checks-failed"


@dataclass(frozen=True)
class Rule:
    name: str
    from_states: frozenset[StageState]
    event: StageEvent
    to_state: StageState


RULES: tuple[Rule, ...] = (
    Rule("request-promotion",
         frozenset({StageState.PENDING, StageState.REJECTED, StageState.FAILED}),
         StageEvent.REQUEST, StageState.AWAITING_APPROVAL),
    Rule("clear-for-deploy", frozenset({StageState.AWAITING_APPROVAL}),
         StageEvent.APPROVALS_MET, StageState.QUEUED),
    Rule("reject-promotion", frozenset({StageState.AWAITING_APPROVAL, StageState.QUEUED}),
         StageEvent.REJECT, StageState.REJECTED),
    Rule("start-deploy", frozenset({StageState.QUEUED}), StageEvent.ENV_FREE,
         StageState.DEPLOYING),
    Rule("deploy-healthy", frozenset({StageState.DEPLOYING}), StageEvent.DEPLOYED,
         StageState.VERIFYING),
    Rule("deploy-failed", frozenset({StageState.DEPLOYING}), StageEvent.DEPLOY_FAILED,
         StageState.FAILED),
    Rule("checks-passed", frozenset({StageState.VERIFYING}), StageEvent.CHECKS_PASSED,
         StageState.SUCCEEDED),
    Rule("checks-failed", frozenset({StageState.VERIFYING}), StageEvent.CHECKS_FAILED,
         StageState.FAILED),
)

_BY_EVENT: dict[StageEvent, list[Rule]] = {}
for _rule in RULES:
    _BY_EVENT.setdefault(_rule.event, []).append(_rule)


@dataclass(frozen=True)
class Accepted:
    rule: str
    state: StageState


@dataclass(frozen=True)
class Rejected:
    reason: str


Verdict = Accepted | Rejected

_WHY = {
    StageState.PENDING: "the stage has not been requested",
    StageState.AWAITING_APPROVAL: "the promotion is waiting for approval",
    StageState.QUEUED: "the stage is queued for deployment",
    StageState.DEPLOYING: "the stage is deploying",
    StageState.VERIFYING: "the stage is running its checks",
    StageState.SUCCEEDED: "the stage already succeeded",
    StageState.FAILED: "the stage failed",
    StageState.REJECTED: "the promotion was rejected",
}


def decide(state: StageState, event: StageEvent) -> Verdict:
    """The verdict of `event` on a stage in `state`."""
    for rule in _BY_EVENT.get(event, ()):
        if state in rule.from_states:
            return Accepted(rule.name, rule.to_state)
    return Rejected(f"cannot {event.value.replace('-', ' ')}: {_WHY[state]}")


def request_target(states: Sequence[StageState], names: Sequence[str], release: str) -> int:
    """The stage a promotion request of a release targets: the first stage when nothing
    started, the failed or rejected stage to retry it, else the one after the current stage.
    Raises Conflict (with the reason) when a request makes no sense now."""
    started = [index for index, state in enumerate(states) if state is not StageState.PENDING]
    if not started:
        return 0
    current = started[-1]
    state = states[current]
    if state in (StageState.FAILED, StageState.REJECTED):
        return current
    if state in (StageState.AWAITING_APPROVAL, StageState.QUEUED):
        raise Conflict(f"a promotion to {names[current]} is already in progress ({state.value})")
    if current + 1 >= len(states):
        if state is StageState.SUCCEEDED:
            raise Conflict(f"release {release} already completed its last stage")
        raise Conflict(f"{names[current]} is the last stage; it is {state.value}")
    return current + 1
