"""Rolling an environment back to the release that ran there before, and marking the one
rolled back from."""

from __future__ import annotations

import pytest
from story import RELEASE_MANAGER, Story, person

from infrastream.domain.errors import Conflict, Forbidden
from infrastream.service.auditing import view as audit_view
from infrastream.service.records.releases import ReleaseRef
from infrastream.service.rollback import rollback
from infrastream.service.views.environments import environment_overview


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    yield story
    story.finish()




def _running(story: Story, environment: str) -> str:
    return {e["environment"]: e["release"] for e in environment_overview(story.services)}[
        environment]


def test_rollback_returns_production_to_the_previous_release_and_marks_the_bad_one(story):
    story.apply_manifests()
    story.start_engine()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.wait_until(v1, lambda s: s["stages"][0]["state"] == "succeeded")
    with pytest.raises(Conflict, match="no earlier release succeeded in development"):
        rollback(story.services, RELEASE_MANAGER, "development", reason="try")
    story.to_production(v1)
    story.record_versions("2.0.0")
    v2 = story.cut_release()
    story.to_production(v2)
    assert _running(story, "production") == "shop/v2"

    with pytest.raises(Forbidden, match="roll back"):
        rollback(story.services, person("dev", "developer"), "production", reason="try")
    result = rollback(story.services, person("ic", "incident-commander"), "production",
                      reason="checkout errors after v2")
    assert result.to_json() == {"environment": "production", "from": "shop/v2", "to": "shop/v1",
                      "attempt": 2}
    deadline_status = story.wait_until(
        v2, lambda s: s["rolledBack"] and s["rolledBack"][0]["state"] == "healthy")
    marker = deadline_status["rolledBack"][0]
    assert marker["to"] == "shop/v1" and marker["by"] == "ic"
    assert marker["reason"] == "checkout errors after v2"
    assert _running(story, "production") == "shop/v1"
    assert _running(story, "staging") == "shop/v2"

    v3 = _unreleased(story)
    with pytest.raises(Conflict, match="never succeeded in production"):
        rollback(story.services, RELEASE_MANAGER, "production", to=v3, reason="try")
    actions = [e["action"] for e in audit_view.list_entries(story.services, limit=300)]
    assert "environment.rollback" in actions and "release.rolled-back" in actions


def _unreleased(story: Story) -> ReleaseRef:
    story.record_versions("3.0.0")
    return story.cut_release()
