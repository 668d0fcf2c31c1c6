"""The verdict of the pull-request gate: what the commit status of a head says, and why.

A pull request's head commit (or a merge queue group's head) concerns one or more
Applications of the repository; each has its own pre-release run. The status a Git host shows
is one per commit and context, so it is the verdict over all of them: pending while any
waits (with the readiness line of the first that does: `waiting for the build of abc1234`),
running while any runs, then failure when any failed, else success. A head that a new push
superseded, or whose pull request was closed, is canceled whatever its runs say. The merge
commit's status follows the release the merge cut (`merge_verdict`).

Pure: the service layer gathers the facts, `domain.readiness` words every wait, and this
module only decides and words the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class GateState(StrEnum):
    """The provider-neutral states of a commit status (the scm layer maps them)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self not in (GateState.PENDING, GateState.RUNNING)


class HeadState(StrEnum):
    OPEN = "open"
    SUPERSEDED = "superseded"
    """A newer push to the pull request replaced this head."""
    CLOSED = "closed"
    MERGED = "merged"
    """Merged before its runs finished."""
    DESTROYED = "destroyed"
    """The merge queue dropped the group (merged, invalidated or dequeued)."""


class AppState(StrEnum):
    """Where the run of one application for one head is."""

    PATHS = "paths"
    """Asking the host which paths the pull request changes (monorepo filter)."""
    BUILD = "build"
    """Waiting for the PR build."""
    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    """The change does not touch the application's path."""
    ERROR = "error"
    """The run could not be started (the reason says why)."""

    @property
    def final(self) -> bool:
        return self in (AppState.PASSED, AppState.FAILED, AppState.CANCELED,
                        AppState.SKIPPED, AppState.ERROR)


@dataclass(frozen=True)
class AppRun:
    app: str
    state: AppState
    line: str = ""
    """While it waits: the readiness line (`waiting for the build of abc1234`)."""
    summary: str = ""
    """Once finished: the run's summary; for SKIPPED and ERROR: why."""
    run_id: int | None = None
    environment: str = ""


@dataclass(frozen=True)
class Verdict:
    state: GateState
    description: str
    run_id: int | None = None
    """The pre-release run whose page the status links to."""


def head_verdict(state: HeadState, runs: Sequence[AppRun], *,
                 superseded_by: str | None = None, reason: str = "") -> Verdict:
    """The status of a head commit over the runs of every application it concerns."""
    if state is HeadState.SUPERSEDED:
        return Verdict(GateState.CANCELED, f"superseded by {(superseded_by or '?')[:7]}")
    ended = not all(r.state.final for r in runs) or any(
        r.state is AppState.CANCELED for r in runs)
    if state is not HeadState.OPEN and ended:  # its runs were cut short by the close
        why = {HeadState.CLOSED: "the pull request was closed",
               HeadState.MERGED: "merged before the run finished",
               HeadState.DESTROYED: f"the merge group was {reason or 'removed'}"}[state]
        return Verdict(GateState.CANCELED, f"canceled: {why}")
    affected = [r for r in runs if r.state is not AppState.SKIPPED]
    if not affected:
        skipped = "; ".join(r.summary for r in runs if r.summary)
        return Verdict(GateState.SUCCESS, "no application is affected"
                       + (f": {skipped}" if skipped else ""))
    several = len(affected) > 1

    def label(run: AppRun) -> str:
        return f"{run.app}: " if several else ""

    waiting = next((r for r in affected if not r.state.final), None)
    if waiting is not None:
        running = next((r for r in affected if r.state is AppState.RUNNING), None)
        if running is not None:
            return Verdict(GateState.RUNNING, f"{label(running)}deploying the PR build to "
                           f"{running.environment} and running its integration tests",
                           running.run_id)
        return Verdict(GateState.PENDING, label(waiting) + (waiting.line or "waiting"),
                       waiting.run_id)
    failed = next((r for r in affected if r.state is AppState.FAILED), None)
    error = next((r for r in affected if r.state is AppState.ERROR), None)
    canceled = next((r for r in affected if r.state is AppState.CANCELED), None)
    if error is not None:
        return Verdict(GateState.ERROR, f"{label(error)}could not run: "
                       f"{error.summary or 'no reason given'}", error.run_id)
    if failed is not None:
        return Verdict(GateState.FAILURE, _outcome(label(failed) + "failed", failed),
                       failed.run_id)
    if canceled is not None:
        return Verdict(GateState.CANCELED, _outcome(label(canceled) + "canceled", canceled),
                       canceled.run_id)
    if several:
        where = f" in {affected[0].environment}" if affected[0].environment else ""
        return Verdict(GateState.SUCCESS, f"passed{where}: "
                       + ", ".join(r.app for r in affected), affected[0].run_id)
    return Verdict(GateState.SUCCESS, _outcome("passed", affected[0]), affected[0].run_id)


def _outcome(word: str, run: AppRun) -> str:
    where = f" in {run.environment}" if run.environment else ""
    return f"{word}{where}" + (f" — {run.summary}" if run.summary else "")


class MergeState(StrEnum):
    BUILD = "build"
    """Waiting for the mainline build of the merge commit."""
    RECORDED = "recorded"
    """The build is recorded; the release is cut when the merge window closes."""
    RELEASED = "released"
    """A release carrying it was cut; it follows that release's first stage."""
    MANUAL = "manual"
    """The track releases by hand: the build is recorded and that is all."""
    FAILED = "failed"
    """No release could be cut (the reason says why)."""


@dataclass(frozen=True)
class ReleaseFacts:
    """Where the release a merge cut stands in its first stage."""

    release: str
    stage: str
    stage_state: str
    """The stage machine's state of the first stage (`succeeded`, `deploying`, …)."""
    line: str = ""
    """The stage's readiness line while it waits (`waiting for: development (busy …)`)."""
    reason: str = ""
    release_state: str = "active"


def merge_verdict(state: MergeState, *, line: str = "", reason: str = "",
                  release: ReleaseFacts | None = None) -> Verdict | None:
    """The status of a merge commit; None when the merge gets none (manual releases)."""
    if state is MergeState.MANUAL:
        return None
    if state is MergeState.FAILED:
        return Verdict(GateState.ERROR, f"no release cut: {reason}")
    if state is not MergeState.RELEASED or release is None:
        return Verdict(GateState.PENDING, line or "waiting for the release to be cut")
    where = f"{release.release} in {release.stage}"
    if release.release_state == "abandoned":
        return Verdict(GateState.ERROR, f"{release.release} was abandoned")
    if release.stage_state == "succeeded":
        return Verdict(GateState.SUCCESS, f"{release.release} deployed to {release.stage}")
    if release.stage_state in ("failed", "rejected"):
        return Verdict(GateState.FAILURE, f"{where} {release.stage_state}"
                       + (f": {release.reason}" if release.reason else ""))
    running = release.stage_state in ("deploying", "verifying")
    return Verdict(GateState.RUNNING if running else GateState.PENDING,
                   f"{where}: {release.stage_state}" + (f" — {release.line}"
                                                        if release.line else ""))
