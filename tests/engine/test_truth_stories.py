"""Stories of what Infrastream says being true: each reproduces a defect found from outside
(a hotfix silently undone, "running in production" after a rollback, a release deploying
over a pre-release run, a stuck release nobody could stop, a role picked silently) and shows
what a user sees now."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from story import CI, PLATFORM, PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story, person

from infrastream.cli.manifest_files import read_sources
from infrastream.domain.errors import Conflict, Forbidden, Invalid
from infrastream.service import hotfix, manifests, prerelease, promotions, releases
from infrastream.service.auditing import trail
from infrastream.service.records.releases import ReleaseRef, parse_ref
from infrastream.service.records.secret_values import fernet
from infrastream.service.rollback import rollback
from infrastream.service.views.inbox import waiting_for

ANN = person("ann", "incident-commander")
BOB = person("bob", "incident-commander")


def _codes(stage: dict) -> list[str]:
    return [b["code"] for b in stage["blockers"]]


def _actions(story: Story) -> list[tuple[str, str, dict]]:
    with story.services.db.connect() as conn:
        return [(e.action, e.object_id, e.after or {}) for e in trail.entries(conn)]


# -- occupancy: one thing at a time per environment -------------------------------------------

@pytest.fixture
def local_story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    slow = story.repo / "tests" / "smoke_test.py"
    slow.write_text(slow.read_text() + (
        "\nimport time\nif os.environ.get('INFRASTREAM_VERSION', '').endswith('-slow'):\n"
        "    time.sleep(4)\n"))
    yield story
    story.finish()


def test_a_release_waits_while_a_pre_release_run_tests_in_development_then_deploys(local_story):
    story = local_story
    story.apply_manifests()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.start_engine()
    story.wait_until(v1, lambda s: s["stages"][0]["state"] == "succeeded")

    run = prerelease.start_prerelease(story.services, CI, "api",
                                      "registry.example.com/shop/api:pr-17-slow", "pull/17")
    deadline = time.monotonic() + 30
    while prerelease.prerelease_status(story.services, run["id"])["state"] != "running":
        assert time.monotonic() < deadline, "the pre-release run never started"
        time.sleep(0.05)

    story.record_versions("1.1.0")
    v2 = story.cut_release()
    held = story.wait_until(v2, lambda s: "env-busy" in _codes(s["stages"][0]), timeout=10)
    development = held["stages"][0]
    assert development["state"] == "queued"
    assert development["waiting"] == (f"waiting for: development (busy with pre-release run "
                                      f"{run['id']} of api (pull/17))")
    assert development["environments"][0]["state"] == "not-deployed"

    finished = story.wait_until(v2, lambda s: s["stages"][0]["state"] == "succeeded")
    assert prerelease.prerelease_status(story.services, run["id"])["restored"] is True
    assert {a["app"]: a["version"] for a in finished["stages"][0]["environments"][0]["apps"]} \
        == {"api": "1.1.0", "web": "1.1.0", "worker": "1.1.0"}
    local = story.services.targets.get_target("local")
    from infrastream.manifests.environment import default_environment
    running = {s.app: s.version for s in local.status(default_environment("development"))}
    assert running == {"api": "1.1.0", "web": "1.1.0", "worker": "1.1.0"}  # not restored over
    order = [a for a, o, _ in _actions(story)
             if (a.startswith("prerelease.") or a == "deployment.start") and o in
             (str(run["id"]), str(v2))]
    assert order == ["prerelease.start", "prerelease.passed", "deployment.start"]


def test_a_rollback_waits_for_a_running_pre_release_run(local_story):
    story = local_story
    story.apply_manifests()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.start_engine()
    story.wait_until(v1, lambda s: s["stages"][0]["state"] == "succeeded")
    story.record_versions("1.1.0")
    v2 = story.cut_release()
    story.wait_until(v2, lambda s: s["stages"][0]["state"] == "succeeded")
    run = prerelease.start_prerelease(story.services, CI, "api",
                                      "registry.example.com/shop/api:pr-18-slow", "pull/18")
    deadline = time.monotonic() + 30
    while prerelease.prerelease_status(story.services, run["id"])["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(Conflict, match=f"busy with pre-release run {run['id']} of api"):
        rollback(story.services, RELEASE_MANAGER, "development", reason="v2 is slow")


# -- rollback done right ------------------------------------------------------------------------

@pytest.fixture
def noop_story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop", soak="1s")
    yield story
    story.finish()


def _healthy_rollback(story: Story, environment: str, **kwargs) -> dict:
    result = rollback(story.services, RELEASE_MANAGER, environment, **kwargs)
    to = parse_ref(result["to"])
    story.wait_until(to, lambda s: environment in s["runsIn"], timeout=30)
    return result


def test_two_default_rollbacks_go_further_back_and_the_releases_left_never_say_they_run(
        noop_story):
    story = noop_story
    story.apply_manifests()
    story.start_engine()
    refs = []
    for tag in ("1.0.0", "1.1.0", "1.2.0"):
        story.record_versions(tag)
        refs.append(story.cut_release())
        story.to_production(refs[-1])
    v1, v2, v3 = refs
    assert story.status(v3)["summary"] == "completed: running in production"

    with pytest.raises(Invalid, match="needs a reason"):
        rollback(story.services, RELEASE_MANAGER, "production", reason="  ")
    first = _healthy_rollback(story, "production", reason="checkout errors")
    assert (first["from"], first["to"]) == (str(v3), str(v2))
    second = _healthy_rollback(story, "production", reason="v2 has them too")
    assert (second["from"], second["to"]) == (str(v2), str(v1))  # not back to v3

    left = story.status(v3)
    assert "running in production" not in left["summary"]
    assert left["summary"] == f"completed; no longer running (production runs {v1})"
    assert "production" not in left["runsIn"]
    assert [r["to"] for r in left["rolledBack"]] == [str(v2)]
    assert story.status(v2)["summary"] == f"completed; no longer running (production runs {v1})"
    assert story.status(v1)["summary"] == "completed: running in production"
    with pytest.raises(Conflict, match="no earlier release"):
        rollback(story.services, RELEASE_MANAGER, "production", reason="again")


def test_release_status_text_shows_the_rollback_and_the_forward_port_warning():
    from rich.console import Console

    from infrastream.cli.release_view import render_status

    status = {
        "release": "shop/v3", "lane": "release", "track": "shop-track", "digest": "sha256:ab",
        "state": "completed", "versions": {"api": {"version": "1.2.0"}},
        "createdAt": "2026-12-01T10:00:00+00:00", "createdBy": "rita", "runsIn": [],
        "summary": "completed; no longer running (production runs shop/v2)",
        "rolledBack": [{"environment": "production", "to": "shop/v2", "by": "rita",
                        "at": "2026-12-01T11:00:00+00:00", "reason": "checkout errors",
                        "state": "healthy"}],
        "forwardPort": {"warnings": ["api 1.0.0 predates hotfix shop/v1-hotfix-1"],
                        "override": None},
        "stages": [],
    }
    console = Console(width=120, record=True, color_system=None)
    console.print(render_status(status))
    text = console.export_text()
    assert "rolled back" in text and "production → shop/v2 by rita" in text
    assert "checkout errors" in text
    assert "forward-port" in text and "predates hotfix shop/v1-hotfix-1" in text


# -- the forward-port guard is a blocker ---------------------------------------------------------

def test_a_release_requested_before_a_hotfix_reached_production_cannot_undo_it(noop_story):
    story = noop_story
    story.apply_manifests()
    story.start_engine()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.to_production(v1)
    story.record_versions("1.1.0")
    v2 = story.cut_release()
    story.to_production_gate(v2)  # production requested: waiting for QA, Product, Security

    fix = parse_ref(hotfix.create_hotfix(story.services, ANN, "shop",
                                         {"api": "registry.example.com/shop/api:1.0.0-hf1"},
                                         "INC-7")["release"])
    story.wait_until(fix, lambda s: s["stages"][0]["state"] == "succeeded")
    promotions.promote(story.services, ANN, fix)
    promotions.approve(story.services, BOB, fix)
    promotions.approve(story.services, person("cid", "incident-commander"), fix)
    story.wait_until(fix, lambda s: s["state"] == "completed")

    for approver in (QA, PRODUCT, SECURITY):
        promotions.approve(story.services, approver, v2)
    time.sleep(1.0)  # the engine had every chance to move it
    held = story.status(v2)
    production = held["stages"][2]
    assert production["state"] == "awaiting-approval"
    assert _codes(production) == ["forward-port"]
    assert production["waiting"].startswith("waiting for: forward-port: api 1.1.0 predates "
                                            "hotfix shop/v1-hotfix-1")
    assert held["forwardPort"]["warnings"] and "ready to promote" not in held["summary"]
    assert story.status(fix)["summary"] == "completed: running in production"

    with pytest.raises(Invalid, match="needs a reason"):
        promotions.promote(story.services, RELEASE_MANAGER, v2, override_reason=" ")
    promotions.promote(story.services, RELEASE_MANAGER, v2,
                       override_reason="1.1.0 carries the fix as commit 77aa")
    done = story.wait_until(v2, lambda s: s["state"] == "completed")
    assert done["forwardPort"]["override"]["by"] == "rita"
    assert ("forward-port.override", str(v2)) in [(a, o) for a, o, _ in _actions(story)]


def test_a_release_between_stages_says_the_guard_would_hold_it(noop_story):
    story = noop_story
    story.apply_manifests()
    story.start_engine()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.to_production(v1)
    story.record_versions("1.1.0")
    v2 = story.cut_release()
    story.wait_until(v2, lambda s: s["stages"][0]["state"] == "succeeded")
    promotions.promote(story.services, RELEASE_MANAGER, v2)
    story.wait_until(v2, lambda s: s["stages"][1]["state"] == "succeeded")
    fix = parse_ref(hotfix.create_hotfix(story.services, ANN, "shop",
                                         {"web": "registry.example.com/shop/web:1.0.0-hf1"},
                                         "INC-8")["release"])
    story.wait_until(fix, lambda s: s["stages"][0]["state"] == "succeeded")
    promotions.promote(story.services, ANN, fix)
    promotions.approve(story.services, BOB, fix)
    promotions.approve(story.services, person("cid", "incident-commander"), fix)
    story.wait_until(fix, lambda s: s["state"] == "completed")

    status = story.status(v2)
    assert "ready to promote" not in status["summary"]
    assert status["summary"].startswith("staging: succeeded — promoting to production is "
                                        "held by: forward-port: web 1.1.0 predates hotfix")
    assert _codes(status["stages"][2]) == ["not-requested", "forward-port"]


# -- abandon ------------------------------------------------------------------------------------

def test_a_stuck_release_is_abandoned_and_leaves_every_queue(noop_story):
    story = noop_story
    story.apply_manifests()
    story.start_engine()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.to_production_gate(v1)
    assert [i["release"] for i in waiting_for(story.services, QA)] == [str(v1)]

    with pytest.raises(Invalid, match="needs a reason"):
        releases.abandon_release(story.services, RELEASE_MANAGER, v1, "")
    with pytest.raises(Forbidden, match="may not abandon"):
        releases.abandon_release(story.services, QA, v1, "stuck")
    done = releases.abandon_release(story.services, RELEASE_MANAGER, v1,
                                    "snapshot is unusable; cut v2")
    assert done["state"] == "abandoned"
    assert waiting_for(story.services, QA) == []
    with pytest.raises(Conflict, match="abandoned"):
        promotions.promote(story.services, RELEASE_MANAGER, v1)
    with pytest.raises(Conflict, match="abandoned"):
        releases.abandon_release(story.services, RELEASE_MANAGER, v1, "twice")
    assert ("release.abandon", str(v1)) in [(a, o) for a, o, _ in _actions(story)]

    story.record_versions("1.1.0")
    v2 = story.cut_release()
    story.to_production(v2)  # the engine is not stuck on v1


# -- approvals ----------------------------------------------------------------------------------

def test_approving_without_a_role_when_holding_two_open_roles_asks_which(noop_story):
    story = noop_story
    story.apply_manifests()
    story.start_engine()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.to_production_gate(v1)
    both = person("quincy", "qa", "security")
    with pytest.raises(Invalid) as refused:
        promotions.approve(story.services, both, v1)
    assert "holds several roles this promotion still needs (qa, security)" in str(refused.value)
    assert refused.value.details["candidates"] == ["qa", "security"]
    assert story.stage(v1, 2)["approvals"][0]["approvers"] == []
    assert ("approval.grant.refused", str(v1)) in [(a, o) for a, o, _ in _actions(story)]
    signed = promotions.approve(story.services, both, v1, role="security")
    assert signed["role"] == "security"


# -- secrets key --------------------------------------------------------------------------------

def test_the_secret_key_of_a_fresh_server_is_never_read_half_written(tmp_path: Path):
    failures: list[BaseException] = []

    def use(directory: Path) -> None:
        try:
            token = fernet(directory).encrypt(b"s3cret")
            assert fernet(directory).decrypt(token) == b"s3cret"
        except BaseException as exc:  # collected: any thread's failure fails the test
            failures.append(exc)

    for index in range(150):
        directory = tmp_path / f"fresh-{index}"
        directory.mkdir()
        barrier = threading.Barrier(4)

        def racer(d: Path = directory, b: threading.Barrier = barrier) -> None:
            b.wait()
            use(d)

        threads = [threading.Thread(target=racer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert (directory / "secret-key").stat().st_mode & 0o777 == 0o600
        assert len((directory / "secret-key").read_bytes().strip()) == 44
    assert failures == []


# -- each owner applies their own manifests, in the seed's order --------------------------------

def test_platform_then_release_manager_then_developers_apply_their_own_manifests(tmp_path,
                                                                                 database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    try:
        sources, _ = read_sources([str(story.repo)])
        by_file = {Path(name).name: (name, text) for name, text in sources}
        track_text = by_file["track.yaml"][1]
        track_doc, set_doc = track_text.split("\n---\n", 1)
        platform = [("track.yaml", track_doc), by_file["environments.yaml"]]
        applied = manifests.apply(story.services, PLATFORM, platform, str(story.repo))
        assert {c["change"] for c in applied["changes"]} == {"created"}
        ours = manifests.apply(story.services, RELEASE_MANAGER, [("shop.yaml", set_doc)],
                               str(story.repo))
        assert [w["code"] for w in ours["warnings"]] == ["empty-application-set"]
        with pytest.raises(Conflict, match="no Application"):
            releases.create_release(story.services, RELEASE_MANAGER, "shop")
        apps = [s for s in sources if "/apps/" in s[0]]
        assert apps
        manifests.apply(story.services, CI, apps, str(story.repo))
        story.record_versions("1.0.0")
        assert story.cut_release() == ReleaseRef("shop", "v1")
    finally:
        story.services.db.dispose()
