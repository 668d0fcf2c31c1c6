"""`ReleaseTrack`: the path a release must travel, in three lanes of stages.

A stage is a list of environments deployed together (in parallel). A stage's `checks` must
pass before a release may leave it; its `approvals` must be satisfied before a release may
enter it. The lanes follow the product page: `preReleaseStages` validate pull requests,
`releaseStages` carry versioned releases to production, `hotfixStages` are the emergency lane.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from .fields import Count, Duration, ManifestModel, Name, Role, parse_duration
from .metadata import Metadata


class Lane(StrEnum):
    PRE_RELEASE = "preRelease"
    RELEASE = "release"
    HOTFIX = "hotfix"

    @property
    def field(self) -> str:
        """The manifest field of the lane, e.g. `releaseStages`."""
        return f"{self.value}Stages"

    @property
    def attribute(self) -> str:
        return {"preRelease": "pre_release", "release": "release", "hotfix": "hotfix"}[
            self.value
        ] + "_stages"


class IntegrationTestsCheck(ManifestModel):
    """Run every Application's `integrationTests` command against the stage's environments."""

    type: Literal["integration-tests"]
    timeout: Duration | None = None
    """Overrides each Application's own integration-test timeout."""


class HttpCheck(ManifestModel):
    """Call every Application's health endpoint (or `path`) and expect a status."""

    type: Literal["http"]
    path: str | None = None
    """Path to call instead of the Application's healthCheck path."""
    expect_status: StrictInt = Field(200, ge=100, le=599)
    """HTTP status that counts as passing."""
    timeout: Duration = "30s"
    """How long to keep retrying before the check fails."""


class SoakCheck(ManifestModel):
    """The release must have run healthy in the stage for `duration` before leaving it."""

    type: Literal["soak"]
    duration: Duration


Check = Annotated[IntegrationTestsCheck | HttpCheck | SoakCheck, Field(discriminator="type")]


class ApprovalRule(ManifestModel):
    """Sign-off required to enter a stage: `count` distinct people holding `role`."""

    role: Role
    count: Count = 1
    expires_after: Duration | None = None
    """An approval older than this no longer counts."""


def _non_empty(environments: list[str]) -> list[str]:
    if not environments:
        raise PydanticCustomError("empty-stage", "a stage must list at least one environment")
    return environments


class Stage(ManifestModel):
    name: Name | None = None
    """Optional display name; defaults to the environments joined with `+`."""
    environments: Annotated[list[Name], AfterValidator(_non_empty), Field(min_length=1)]
    """Environments deployed together, in parallel."""
    checks: list[Check] = Field(default_factory=list)
    """Automated gates that must pass before the release may leave this stage."""
    approvals: list[ApprovalRule] = Field(default_factory=list)
    """Sign-offs required before the release may enter this stage."""

    @property
    def display_name(self) -> str:
        return self.name or "+".join(self.environments)


class ReleaseOn(StrEnum):
    MANUAL = "manual"
    """A release manager cuts each release (`infrastream release create`)."""
    MERGE = "merge"
    """Every merge to an application's branch cuts a release that enters the first release
    stage by itself; merges within `mergeWindow` of each other make one release."""


class ApprovalPolicy(ManifestModel):
    """Governance switches that apply to every approval rule of the track."""

    initiator_may_approve: StrictBool = False
    """Whether the person who requested a promotion may approve it (four-eyes off)."""


class ApprovalReminders(ManifestModel):
    """When a promotion that waits for sign-offs reminds its approvers, and whom it escalates
    to: `{after: 4h, escalateAfter: 24h, escalateTo: release-manager}`."""

    after: Duration
    """Remind the approvers a promotion still waits for after this long, and again each time
    this long has passed since the last reminder (at most `maxReminders` times)."""
    max_reminders: StrictInt = Field(3, ge=1, le=100)
    """How many reminders one wait sends at most."""
    escalate_after: Duration | None = None
    """Tell the holders of `escalateTo` once the promotion has waited this long."""
    escalate_to: Role | None = None
    """The role told when a promotion still waits after `escalateAfter`."""

    @model_validator(mode="after")
    def _escalation_complete(self) -> ApprovalReminders:
        if (self.escalate_after is None) != (self.escalate_to is None):
            raise PydanticCustomError(
                "incomplete-escalation",
                "escalateAfter and escalateTo go together: name {missing} too",
                {"missing": "escalateTo" if self.escalate_to is None else "escalateAfter"})
        return self

    @property
    def after_seconds(self) -> int:
        return parse_duration(self.after)

    @property
    def escalate_seconds(self) -> int | None:
        return parse_duration(self.escalate_after) if self.escalate_after else None


class ReleaseTrackSpec(ManifestModel):
    pre_release_stages: list[Stage] | None = None
    """Path for validating pull requests: only the first environment is used."""
    release_stages: list[Stage] | None = None
    """Path of full, versioned releases, stage by stage to production."""
    hotfix_stages: list[Stage] | None = None
    """Accelerated path for emergency fixes, with its own approvers."""
    policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    approval_reminders: ApprovalReminders | None = None
    """Remind approvers of a promotion that keeps waiting, and escalate it (notifications)."""
    pre_release_restore: StrictBool = True
    """After validating a pull-request build, put the pre-release environment back on the
    version it ran before."""
    release_on: ReleaseOn = ReleaseOn.MANUAL
    """`manual`: release managers cut releases; `merge`: each merge to an application's
    branch (reported by its `source` connection) cuts one."""
    merge_window: Duration = "1m"
    """With `releaseOn: merge`: a release is cut once this long has passed without another
    merge build of the set, so several merges in a row make one release."""

    def stages(self, lane: Lane) -> list[Stage]:
        return list(getattr(self, lane.attribute) or [])

    def lanes(self) -> list[tuple[Lane, list[Stage]]]:
        return [(lane, self.stages(lane)) for lane in Lane if self.stages(lane)]


class ReleaseTrack(ManifestModel):
    """How the applications of its ApplicationSets must travel to production."""

    api_version: Literal["lowops.manifests.v1"]
    kind: Literal["ReleaseTrack"]
    metadata: Metadata
    spec: ReleaseTrackSpec

__all__ = [
    "ApprovalPolicy",
    "ApprovalReminders",
    "ApprovalRule",
    "Check",
    "HttpCheck",
    "IntegrationTestsCheck",
    "Lane",
    "ReleaseOn",
    "ReleaseTrack",
    "ReleaseTrackSpec",
    "SoakCheck",
    "Stage",
]
