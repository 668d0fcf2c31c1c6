"""The gate's verdicts: what a head commit's status says over its applications' runs, and
what a merge commit's status says about the release it cut."""

from __future__ import annotations

import pytest

from infrastream.domain.pull_request_gate import (
    AppRun,
    AppState,
    GateState,
    HeadState,
    MergeState,
    ReleaseFacts,
    head_verdict,
    merge_verdict,
)

API_WAITS = AppRun("api", AppState.BUILD, line="waiting for the build of ec26c3e")
API_QUEUED = AppRun("api", AppState.QUEUED, run_id=4, environment="development",
                    line="queued at position 2 for development: waiting for 1 run ahead")
API_RUNS = AppRun("api", AppState.RUNNING, run_id=4, environment="development")
API_PASSED = AppRun("api", AppState.PASSED, run_id=4, environment="development",
                    summary="api: integration tests passed in 3s")
API_FAILED = AppRun("api", AppState.FAILED, run_id=4, environment="development",
                    summary="api: FAIL checkout returns 500")
WEB_PASSED = AppRun("web", AppState.PASSED, run_id=5, environment="development")
WEB_SKIPPED = AppRun("web", AppState.SKIPPED, summary="nothing below services/web changed")

CASES = [
    ("a head waiting for its build is pending with the readiness line", HeadState.OPEN,
     [API_WAITS], GateState.PENDING, "waiting for the build of ec26c3e", None),
    ("a queued run is pending with its queue position", HeadState.OPEN, [API_QUEUED],
     GateState.PENDING, "queued at position 2 for development: waiting for 1 run ahead", 4),
    ("a running run is running", HeadState.OPEN, [API_RUNS], GateState.RUNNING,
     "deploying the PR build to development and running its integration tests", 4),
    ("a passed run is a success naming where it passed", HeadState.OPEN, [API_PASSED],
     GateState.SUCCESS, "passed in development — api: integration tests passed in 3s", 4),
    ("a failed run is a failure with the test's words", HeadState.OPEN, [API_FAILED],
     GateState.FAILURE, "failed in development — api: FAIL checkout returns 500", 4),
    ("one failed app fails the head although the other passed", HeadState.OPEN,
     [WEB_PASSED, API_FAILED], GateState.FAILURE,
     "api: failed in development — api: FAIL checkout returns 500", 4),
    ("the first app still waiting names itself when several are concerned", HeadState.OPEN,
     [WEB_PASSED, API_WAITS], GateState.PENDING, "api: waiting for the build of ec26c3e",
     None),
    ("an app the change does not touch does not count", HeadState.OPEN,
     [WEB_SKIPPED, API_PASSED], GateState.SUCCESS,
     "passed in development — api: integration tests passed in 3s", 4),
    ("a change that touches no app passes at once", HeadState.OPEN, [WEB_SKIPPED],
     GateState.SUCCESS, "no application is affected: nothing below services/web changed",
     None),
    ("a superseded head is canceled naming the new head", HeadState.SUPERSEDED, [API_RUNS],
     GateState.CANCELED, "superseded by def5678", None),
    ("closing the pull request cancels a head still running", HeadState.CLOSED, [API_RUNS],
     GateState.CANCELED, "canceled: the pull request was closed", None),
    ("a head that finished before the close keeps its verdict", HeadState.CLOSED,
     [API_PASSED], GateState.SUCCESS,
     "passed in development — api: integration tests passed in 3s", 4),
    ("a merge group dropped by the queue is canceled with the queue's reason",
     HeadState.DESTROYED, [API_QUEUED], GateState.CANCELED,
     "canceled: the merge group was dequeued", None),
    ("a run that could not start is an error with the reason", HeadState.OPEN,
     [AppRun("api", AppState.ERROR, summary="track `shop-track` has no preReleaseStages")],
     GateState.ERROR, "could not run: track `shop-track` has no preReleaseStages", None),
]


@pytest.mark.parametrize(("story", "state", "runs", "expected", "text", "run_id"), CASES,
                         ids=[c[0] for c in CASES])
def test_head_verdicts(story: str, state: HeadState, runs: list[AppRun], expected: GateState,
                       text: str, run_id: int | None) -> None:
    verdict = head_verdict(state, runs, superseded_by="def5678" + "0" * 33,
                           reason="dequeued")
    assert (verdict.state, verdict.description, verdict.run_id) == (expected, text, run_id)


def test_only_final_verdicts_end_a_head() -> None:
    assert [s for s in GateState if s.final] == [GateState.SUCCESS, GateState.FAILURE,
                                                 GateState.ERROR, GateState.CANCELED]


FIRST = ReleaseFacts("shop/v8", "development", "deploying", line="deploying to development")
MERGES = [
    ("a merge waiting for its build is pending", MergeState.BUILD, None, GateState.PENDING,
     "waiting for the build of 3f2a1c9"),
    ("a release deploying to the first stage is running", MergeState.RELEASED, FIRST,
     GateState.RUNNING, "shop/v8 in development: deploying — deploying to development"),
    ("a release that reached the first stage is a success", MergeState.RELEASED,
     ReleaseFacts("shop/v8", "development", "succeeded"), GateState.SUCCESS,
     "shop/v8 deployed to development"),
    ("a release that failed there is a failure with the reason", MergeState.RELEASED,
     ReleaseFacts("shop/v8", "development", "failed", reason="api unhealthy"),
     GateState.FAILURE, "shop/v8 in development failed: api unhealthy"),
    ("an abandoned release is an error", MergeState.RELEASED,
     ReleaseFacts("shop/v8", "development", "queued", release_state="abandoned"),
     GateState.ERROR, "shop/v8 was abandoned"),
    ("a release that could not be cut is an error with why", MergeState.FAILED, None,
     GateState.ERROR, "no release cut: no version recorded for web"),
]


@pytest.mark.parametrize(("story", "state", "release", "expected", "text"), MERGES,
                         ids=[m[0] for m in MERGES])
def test_merge_verdicts(story: str, state: MergeState, release: ReleaseFacts | None,
                        expected: GateState, text: str) -> None:
    verdict = merge_verdict(state, line="waiting for the build of 3f2a1c9",
                            reason="no version recorded for web", release=release)
    assert verdict is not None
    assert (verdict.state, verdict.description) == (expected, text)


def test_a_merge_on_a_manual_track_gets_no_status() -> None:
    assert merge_verdict(MergeState.MANUAL) is None
