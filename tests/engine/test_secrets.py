"""Secret values reach the deployed process and nothing else: not the audit trail, not the
API's listings, not the local target's state or log files, not the server's JSON log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from story import PLATFORM, RELEASE_MANAGER, Story

from infrastream.domain.errors import Forbidden, Invalid
from infrastream.service import logs, secrets
from infrastream.service.auditing import view as audit_view
from infrastream.service.views.environments import environment_overview

VALUE = "s3cr3t-pa55w0rd-value"


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    yield story
    story.finish()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged meanwhile, as the server writes it in JSON mode (debug included)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure("json", level=logging.DEBUG, stream=buffer)
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)


def _process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_a_secret_reaches_the_process_but_no_log_audit_entry_or_listing(story, tmp_path,
                                                                         json_log):
    story.apply_manifests()
    secrets.set_secret(story.services, PLATFORM, "development", "api", "DB_PASSWORD", VALUE)
    with pytest.raises(Forbidden):
        secrets.set_secret(story.services, RELEASE_MANAGER, "development", "api",
                           "DB_PASSWORD", VALUE)
    with pytest.raises(Invalid, match="declares no secret variable `LOG_LEVEL`"):
        secrets.set_secret(story.services, PLATFORM, "development", "api", "LOG_LEVEL", "x")
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()
    story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")

    state = json.loads((story.services.data_dir / "local" / "development" / "state.json")
                       .read_text())
    api_pid = next(v["pid"] for k, v in _apps(state).items() if k == "api")
    assert _process_environment(api_pid)["DB_PASSWORD"] == VALUE

    listing = json.dumps([s.to_json() for s in secrets.list_secrets(story.services)])
    assert "DB_PASSWORD" in listing and VALUE not in listing
    audit = json.dumps([e.to_json() for e in audit_view.list_entries(story.services, limit=1000)])
    assert "secret.set" in audit and VALUE not in audit
    assert VALUE not in json.dumps([e.to_json() for e in environment_overview(story.services)])
    assert VALUE not in json.dumps(story.status(release).to_json())
    for path in story.services.data_dir.rglob("*"):
        if path.is_file() and path.name != "infrastream.db" and "secret-key" not in path.name:
            assert VALUE.encode() not in path.read_bytes(), path
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    steps = [line for line in lines if line.get("event") == "engine.step"]
    assert any(s.get("step") == "deployment.finished" and s.get("environment") == "development"
               for s in steps), lines[-5:]
    assert VALUE not in json_log.getvalue()


def _apps(state: dict) -> dict:
    apps = state.get("apps", state)
    return {name: entry for name, entry in apps.items() if isinstance(entry, dict)}


def test_secret_set_is_refused_for_a_gitops_environment_without_a_route_and_says_how(
        tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    try:
        envs = story.repo / "manifests" / "environments.yaml"
        bare = tmp_path / "gitops.git"
        envs.write_text(envs.read_text().replace(
            "  tier: staging\n  target:\n    type: local",
            f"  tier: staging\n  target:\n    type: gitops\n    repo: {bare}"))
        story.apply_manifests()
        with pytest.raises(Invalid) as refused:
            secrets.set_secret(story.services, PLATFORM, "staging", "api", "DB_PASSWORD", VALUE)
        assert "has no route for secret values" in refused.value.reason
        assert "secrets: {cluster:" in refused.value.reason
        assert secrets.list_secrets(story.services, "staging") == []
        assert VALUE not in refused.value.reason
        kept = secrets.set_secret(story.services, PLATFORM, "development", "api", "DB_PASSWORD",
                                  VALUE)
        assert "next deployment" in kept["delivery"]
    finally:
        story.services.db.dispose()
