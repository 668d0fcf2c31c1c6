"""Drift: a process killed by hand in an environment shows up as a difference."""

from __future__ import annotations

import json
import os
import signal

import pytest
from story import Story

from infrastream.service.drift import drift_report


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
    assert drift_report(story.services) == [
        {"environment": "development", "release": str(release), "state": "in-sync",
         "differences": []}]

    state = json.loads((story.services.data_dir / "local" / "development" / "state.json")
                       .read_text())
    apps = state.get("apps", state)
    os.kill(apps["web"]["pid"], signal.SIGKILL)

    (report,) = drift_report(story.services, "development")
    assert report["state"] == "drifted"
    assert report["differences"][0].startswith(
        "web: expected registry.example.com/shop/web:1.0.0, nothing runs")
