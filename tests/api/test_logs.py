"""The JSON log of a release lifecycle: one line per engine step with the release, stage,
environment and attempt ids; every HTTP request with its route template, status, user and
request id (the caller's `X-Request-ID`, echoed back, and named in problem responses); and
no secret value (the admin's and the users' API tokens) anywhere in it."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from test_api import apply_example, cut_release, record_versions, stage_succeeded, wait_for

from infrastream.service import logs


@pytest.fixture
def json_log():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure("json", stream=buffer)
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)


def test_the_json_log_of_a_release_has_its_steps_and_requests(people, json_log):
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    rita = people.as_user("rita")
    wait_for(rita, release, stage_succeeded(0))
    seen = rita.get(release, headers={"X-Request-ID": "trace-42"})
    assert seen.headers["x-request-id"] == "trace-42"
    refused = rita.get("/api/v1/releases/shop/nope", headers={"X-Request-ID": "trace-43"})
    assert refused.status_code == 404 and refused.json()["requestId"] == "trace-43"

    deadline = time.monotonic() + 10  # a request's line is written just after its response
    while '"trace-43"' not in json_log.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = json_log.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    steps = [line for line in lines if line["event"] == "engine.step"]
    finished = [s for s in steps if s["step"] == "deployment.finished"]
    assert finished and all({"release_id", "stage", "environment", "attempt", "deployment_id"}
                            <= s.keys() for s in finished)
    assert all(s["outcome"] == "healthy" for s in finished)
    assert any(s["step"] == "release.advanced" and s["started"] for s in steps)
    request = next(line for line in lines if line["event"] == "http.request"
                   and line.get("request_id") == "trace-42")
    assert request["route"] == "/api/v1/releases/{app_set}/{name}"
    assert request["status"] == 200 and request["user"] == "rita" and "duration_ms" in request
    assert any(line.get("request_id") == "trace-43" and line.get("status") == 404
               for line in lines)
    for secret in [people.admin_token, *people.tokens.values()]:
        assert secret not in text
