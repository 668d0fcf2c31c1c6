"""The pre-release lane as a story: a PR build of one application is validated in
development while the other applications keep running there; a failing integration test
reports failure with the test output, and development is put back as it was."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from story import DEVELOPER, Story, person

from infrastream.domain.errors import Forbidden, Invalid
from infrastream.manifests.environment import default_environment
from infrastream.service import prerelease
from infrastream.service.views.environments import environment_overview


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    yield story
    story.finish()


def _wait_run(story: Story, run_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    run = prerelease.prerelease_status(story.services, run_id)
    while time.monotonic() < deadline and run["state"] in ("queued", "running"):
        time.sleep(0.1)
        run = prerelease.prerelease_status(story.services, run_id)
    return run


def _answers(endpoint: str) -> dict:
    with urllib.request.urlopen(endpoint + "/healthz", timeout=5) as response:
        return json.load(response)


def _development(story: Story) -> dict[str, dict]:
    env = {e["environment"]: e for e in environment_overview(story.services)}["development"]
    return {a["app"]: a for a in env["apps"]}


def test_a_pr_build_is_validated_in_development_beside_the_running_apps(story):
    smoke = story.repo / "tests" / "smoke_test.py"
    smoke.write_text(smoke.read_text() + (
        "\nif os.environ.get('INFRASTREAM_VERSION', '').endswith('-broken'):\n"
        "    sys.exit('FAIL checkout returns 500 for an empty cart')\n"))
    story.apply_manifests()
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()
    story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
    before = _development(story)

    with pytest.raises(Forbidden):
        prerelease.start_prerelease(story.services, person("q", "qa"), "api",
                                    "registry.example.com/shop/api:pr-17", "pull/17")
    with pytest.raises(Invalid, match="is not from"):
        prerelease.start_prerelease(story.services, DEVELOPER, "api",
                                    "registry.example.com/other/api:pr-17", "pull/17")

    run = prerelease.start_prerelease(story.services, DEVELOPER, "api",
                                      "registry.example.com/shop/api:pr-17", "pull/17",
                                      commit="feedbeef")
    run = _wait_run(story, run["id"])
    assert run["state"] == "passed", run["summary"]
    assert "PASS" in run["output"] and "pr-17" in run["output"]
    assert run["previous"]["release"] == str(release)
    assert run["restored"] is True
    after = _development(story)
    for app in ("web", "worker"):  # the other apps kept running, untouched
        assert _answers(before[app]["endpoint"])["version"] == "1.0.0"
    local = story.services.targets.get_target("local")
    running = {s.app: s for s in local.status(default_environment("development"))}
    assert running["api"].version == "1.0.0"  # restored after the run
    assert running["web"].endpoint == after["web"]["endpoint"] == before["web"]["endpoint"]
    assert _answers(running["api"].endpoint)["version"] == "1.0.0"

    failing = prerelease.start_prerelease(story.services, DEVELOPER, "api",
                                          "registry.example.com/shop/api:pr-18-broken",
                                          "pull/18")
    failing = _wait_run(story, failing["id"])
    assert failing["state"] == "failed"
    assert "checkout returns 500 for an empty cart" in failing["output"]
    listed = prerelease.list_prereleases(story.services, "api")
    assert [r["state"] for r in listed] == ["failed", "passed"]
    assert story.stage(release, 0)["state"] == "succeeded"  # the release lane is untouched
