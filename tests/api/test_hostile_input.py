"""Bad input, as an attacker or a careless client sends it, is refused precisely: a 4xx problem
naming what is wrong, and nothing stored. An unexpected error is a 500 problem with a
correlation id that the log carries too, and the connection stays usable.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

import pytest
from test_api import apply_example, cut_release, problem, record_versions, stage_succeeded, wait_for

if TYPE_CHECKING:
    from conftest import Api

BIG = 2**63


def errors_at(response: Any, location: str) -> list[str]:
    body = problem(response, 422)
    return [e["message"] for e in body["errors"] if e["location"] == location]


def audit_actions(api: Api) -> list[str]:
    entries = api.admin.get("/api/v1/audit", params={"limit": 1000}).json()
    return [e["action"] for e in entries]


# -- 1. no unhandled error reaches a client ----------------------------------------------


def _two_requests_on_one_connection(url: str, path: str, token: str) -> list[bytes]:
    host, port = url.removeprefix("http://").split(":")
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
               "\r\n").encode()
    answers = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(request)
            answers.append(_one_response(sock))
    return answers


def _one_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data  # the server closed the connection
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_unexpected_error_is_a_500_problem_whose_correlation_id_is_logged(
        api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(_services: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr("infrastream.api.routes.environment_overview", broken)
    with caplog.at_level(logging.ERROR, logger="infrastream.api"):
        response = api.admin.get("/api/v1/environments")
        answers = _two_requests_on_one_connection(api.url, "/api/v1/environments",
                                                  api.admin_token)

    body = problem(response, 500)
    assert body["title"] == "Internal error"
    correlation = body["correlationId"]
    assert correlation in body["detail"] and "fire" not in body["detail"]
    assert response.headers["x-correlation-id"] == correlation
    logged = [r for r in caplog.records if correlation in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert [a.split(b"\r\n")[0] for a in answers] == [b"HTTP/1.1 500 Internal Server Error"] * 2
    assert all(b"application/problem+json" in a for a in answers)


def test_ids_beyond_64_bits_are_refused_with_422(people: Api) -> None:
    rita = people.as_user("rita")
    releases = rita.get("/api/v1/releases", params={"before": BIG})
    audit = rita.get("/api/v1/audit", params={"before": BIG})
    run = rita.get(f"/api/v1/prereleases/{BIG}")
    negative = rita.get("/api/v1/audit", params={"before": -1})

    assert errors_at(releases, "query.before")
    assert errors_at(audit, "query.before")
    assert errors_at(run, "path.run_id")
    assert errors_at(negative, "query.before")
    assert rita.get("/api/v1/releases", params={"before": BIG - 1}).json() == []


def test_nul_bytes_in_paths_queries_and_bodies_are_refused_and_nothing_is_stored(
        people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    rita, quinn, ci = (people.as_user(n) for n in ("rita", "quinn", "ci-bot"))
    wait_for(rita, release, stage_succeeded(0))
    before = audit_actions(people)

    in_query = rita.get("/api/v1/releases", params={"applicationSet": "sh\x00op"})
    in_audit_query = rita.get("/api/v1/audit", params={"objectId": "shop/v1\x00"})
    in_path = rita.get("/api/v1/releases/shop/v%001")
    in_post_path = ci.post("/api/v1/applications/a%00pi/versions",
                           json={"image": "registry.example.com/shop/api:2.0.0"})
    image = ci.post("/api/v1/applications/api/versions",
                    json={"image": "registry.example.com/shop/api:2.0.0\x00"})
    assert rita.post(release + "/promotions").status_code == 202
    wait_for(rita, release, stage_succeeded(1))
    assert rita.post(release + "/promotions").status_code == 202
    comment = quinn.post(release + "/approvals", json={"comment": "fine\x00"})
    reason = quinn.post(release + "/rejections", json={"reason": "no\x00"})
    surrogate = quinn.post(release + "/approvals", content=b'{"comment": "\\ud800"}',
                           headers={"Content-Type": "application/json"})
    rollback = rita.post("/api/v1/environments/development/rollbacks",
                         json={"reason": "bad\x00"})

    assert "NUL" in problem(in_query, 422)["detail"]
    assert "NUL" in problem(in_audit_query, 422)["detail"]
    assert "NUL" in problem(in_path, 422)["detail"]
    assert "NUL" in problem(in_post_path, 422)["detail"]
    assert errors_at(image, "body.image") == ["contains a NUL character"]
    assert errors_at(comment, "body.comment") == ["contains a NUL character"]
    assert errors_at(reason, "body.reason") == ["contains a NUL character"]
    assert "unicode" in errors_at(surrogate, "body.comment")[0]
    assert errors_at(rollback, "body.reason") == ["contains a NUL character"]
    stage = rita.get(release).json()["stages"][2]
    assert stage["state"] == "awaiting-approval" and stage["decisions"] == []
    assert len(ci.get("/api/v1/applications/api/versions").json()) == 1
    stored = [a for a in audit_actions(people) if a not in before]
    assert "approval.grant" not in stored and "approval.reject" not in stored
    assert "environment.rollback" not in stored and stored.count("version.record") == 0
    # each refused mutation is itself audited (the 422s the API refused before any use case)
    assert {"approval.grant.refused", "approval.reject.refused", "version.record.refused",
            "environment.rollback.refused"} <= set(stored)


# -- 3. strict request bodies -------------------------------------------------------------


def test_unknown_fields_are_refused_by_name_and_nothing_is_created(people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    rita = people.as_user("rita")

    admin_flag = people.admin.post("/api/v1/users",
                                   json={"name": "mallory", "roles": ["qa"], "isAdmin": True})
    misspelt = rita.post("/api/v1/releases",
                         json={"applicationSet": "shop", "forwardPortOveride": "trust me"})

    assert errors_at(admin_flag, "body.isAdmin") == ["unknown field `isAdmin`"]
    assert errors_at(misspelt, "body.forwardPortOveride") == [
        "unknown field `forwardPortOveride`"]
    assert "mallory" not in [u["name"] for u in people.admin.get("/api/v1/users").json()]
    assert rita.get("/api/v1/releases").json() == []


def test_roles_must_be_built_in_or_declared_by_a_manifest(people: Api) -> None:
    admin = people.admin
    traversal = admin.post("/api/v1/users", json={"name": "eve", "roles": ["../../etc/passwd"]})
    unknown = admin.post("/api/v1/users", json={"name": "eve", "roles": ["release-captain"]})
    before_manifest = admin.post("/api/v1/users", json={"name": "sre", "roles": ["sre"]})
    track = next(s for s in people.manifest_body()["sources"]
                 if s["source"].endswith("track.yaml"))
    declared = track["text"].replace("        - role: security",
                                     "        - role: sre\n        - role: security")
    assert declared != track["text"]
    applied = people.as_user("pat").post("/api/v1/manifests", json={
        "sources": [{"source": "track.yaml", "text": declared}]})
    after_manifest = admin.post("/api/v1/users", json={"name": "sre", "roles": ["sre"]})

    assert errors_at(traversal, "body.roles.0")
    assert "release-captain" in problem(unknown, 422)["detail"]
    assert "not a known role" in problem(unknown, 422)["detail"]
    assert problem(before_manifest, 422)["detail"].startswith("`sre` is not a known role")
    assert applied.status_code == 200, applied.text
    assert after_manifest.status_code == 201, after_manifest.text
    names = [u["name"] for u in admin.get("/api/v1/users").json()]
    assert "eve" not in names and "sre" in names


def test_free_text_is_limited_to_4_kib_and_nothing_is_stored(people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    rita, quinn = people.as_user("rita"), people.as_user("quinn")
    wait_for(rita, release, stage_succeeded(0))

    huge = rita.post("/api/v1/environments/development/rollbacks",
                     json={"reason": "x" * 10_000_000})
    long_comment = rita.post(release + "/promotions", json={"freezeOverride": "y" * 4097})
    incident = rita.post("/api/v1/hotfixes", json={
        "applicationSet": "shop", "incident": "z" * 4097,
        "apps": {"api": "registry.example.com/shop/api:1.0.0-hf1"}})
    just_fits = quinn.post(release + "/approvals", json={"comment": "c" * 4096})

    assert errors_at(huge, "body.reason") == [
        "String should have at most 4096 characters"]
    assert errors_at(long_comment, "body.freezeOverride")
    assert errors_at(incident, "body.incident")
    assert problem(just_fits, 409)["detail"] == (
        f"no promotion of {release.removeprefix('/api/v1/releases/')} is waiting for approval")
    waiting = [e for e in people.admin.get("/api/v1/audit", params={"limit": 100}).json()
               if e["action"] == "approval.grant.refused"]
    assert waiting[0]["actor"] == "quinn" and waiting[0]["after"]["code"] == "conflict"
    assert "environment.rollback" not in audit_actions(people)
    assert rita.get(release).json()["stages"][1]["state"] != "awaiting-approval"


def test_release_and_user_names_follow_one_rule(people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    rita = people.as_user("rita")

    upper = rita.post("/api/v1/releases", json={"applicationSet": "shop", "name": "A"})
    underscore = rita.post("/api/v1/releases", json={"applicationSet": "shop", "name": "a_b"})
    user = people.admin.post("/api/v1/users", json={"name": "a_b", "roles": ["qa"]})
    good = rita.post("/api/v1/releases", json={"applicationSet": "shop", "name": "spring-1"})

    for response in (upper, underscore):
        assert errors_at(response, "body.name")
    assert errors_at(user, "body.name")
    assert good.status_code == 201, good.text
    assert [r["name"] for r in rita.get("/api/v1/releases").json()] == ["spring-1"]


def test_a_body_that_is_not_utf8_is_invalid_input_and_audited(people: Api) -> None:
    response = people.as_user("rita").post("/api/v1/releases", content=b'{"a": "\xff\xfe"}',
                                           headers={"Content-Type": "application/json"})
    assert problem(response, 422)["errors"] == [
        {"location": "body", "message": "the body could not be parsed (it must be JSON in "
         "UTF-8)"}]
    assert "release.create.refused" in audit_actions(people)
