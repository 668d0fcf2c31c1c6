"""Drift: a process killed by hand in an environment shows up as a difference."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from story import Story

from infrastream.service.auditing import view as audit_view
from infrastream.service.drift import drift_report
from infrastream.service.engine.loop import Engine
from infrastream.service.views.environments import environment_overview


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    yield story
    story.finish()


def test_a_process_stopped_by_hand_is_reported_as_drift(story):
    story.apply_manifests()
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()
    story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
    assert [r.to_json() for r in drift_report(story.services)] == [
        {"environment": "development", "release": str(release), "state": "in-sync",
         "differences": []}]

    state = json.loads((story.services.data_dir / "local" / "development" / "state.json")
                       .read_text())
    apps = state.get("apps", state)
    os.kill(apps["web"]["pid"], signal.SIGKILL)

    deadline = time.monotonic() + 10  # the killed process is reaped a moment later
    while True:
        (report,) = drift_report(story.services, "development")
        if "nothing runs" in " ".join(report["differences"]) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert report["state"] == "drifted"
    assert report["differences"][0].startswith(
        "web: expected registry.example.com/shop/web:1.0.0, nothing runs")


def test_the_engine_marks_a_drifted_environment_and_audits_it(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    try:
        story.apply_manifests()
        story.record_versions("1.0.0")
        release = story.cut_release()
        story.engine = Engine(story.services, poll=0.2, drift_every=0.2)
        story.engine.start()
        story.started.append(story.engine)
        story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
        state = json.loads((story.services.data_dir / "local" / "development" /
                            "state.json").read_text())
        os.kill(state.get("apps", state)["worker"]["pid"], signal.SIGKILL)

        deadline = time.monotonic() + 30
        mark = None
        while time.monotonic() < deadline:
            (development,) = environment_overview(story.services)
            mark = development["drift"]
            if mark and mark["state"] == "drifted":
                break
            time.sleep(0.1)
        assert mark is not None and mark["state"] == "drifted", mark
        assert mark["differences"][0].startswith("worker: expected")
        entries = [e for e in audit_view.list_entries(story.services, limit=200)
                   if e["action"] == "environment.drift"]
        assert entries[0]["after"]["state"] == "drifted"
    finally:
        story.finish()
