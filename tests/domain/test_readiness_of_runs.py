"""Why a pull request's run or a merge waits: the same readiness module as the stages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infrastream.domain.readiness import (
    Code,
    Occupant,
    OccupantKind,
    RunFacts,
    merge_blockers,
    prerelease_blockers,
    prerelease_line,
    waiting_for,
)

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RELEASE = Occupant(OccupantKind.RELEASE, "development", 3, release_id=2, release="shop/v3")


def line(facts: RunFacts) -> str:
    return prerelease_line(facts, prerelease_blockers(facts))


def test_a_run_without_its_build_waits_for_the_build_of_its_commit() -> None:
    facts = RunFacts(SHA, "development", build=False)
    assert [b.code for b in prerelease_blockers(facts)] == [Code.BUILD_MISSING]
    assert line(facts) == "waiting for the build of ec26c3e"


def test_a_run_waits_for_the_changed_paths_before_its_build() -> None:
    facts = RunFacts(SHA, "development", build=False, paths_known=False)
    assert line(facts) == "waiting for the list of paths the change touches"


def test_a_queued_run_says_its_position_and_who_occupies_the_environment() -> None:
    facts = RunFacts(SHA, "development", build=True, queued=True, ahead=1,
                     occupants=(RELEASE,))
    found = prerelease_blockers(facts)
    assert [b.code for b in found] == [Code.QUEUED, Code.ENV_BUSY]
    assert found[0].data == {"environment": "development", "ahead": 1, "position": 2}
    assert line(facts) == ("queued at position 2 for development: waiting for 1 run ahead, "
                           "development (busy with shop/v3)")


def test_the_first_run_in_a_free_environment_is_starting() -> None:
    facts = RunFacts(SHA, "development", build=True, queued=True)
    assert prerelease_blockers(facts) == [] and line(facts) == "starting"


def test_a_merge_waits_for_its_build_then_for_the_window_then_nothing() -> None:
    assert waiting_for(merge_blockers(SHA, build=False, window_ends=None, window="1m",
                                      now=NOW)) == "waiting for the build of ec26c3e"
    found = merge_blockers(SHA, build=True, window_ends=NOW + timedelta(seconds=40),
                           window="1m", now=NOW)
    assert [b.code for b in found] == [Code.MERGE_WINDOW]
    assert waiting_for(found) == ("waiting for more merges until 12:00:40 UTC (merges "
                                  "within 1m make one release)")
    assert merge_blockers(SHA, build=True, window_ends=NOW, window="1m", now=NOW) == []
