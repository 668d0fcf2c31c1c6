"""The REST API over real HTTP: a uvicorn server in a thread, an engine, SQLite and PostgreSQL.

Errors are RFC 9457 problems; authorization is by bearer token and role; the release story
(apply → record versions → cut → promote → approve → completed) works end to end over HTTP;
concurrent promotions and approvals never advance a stage twice; the audit trail reads newest
first and verifies.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import TypeAdapter

from infrastream.service.records.releases import parse_ref
from infrastream.service.views.release_status import ReleaseStatus, release_status

if TYPE_CHECKING:
    from conftest import Api

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert `response` is an RFC 9457 problem with `status`; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["type"].startswith("https://")
    return body


def apply_example(api: Api, *, checks: bool = True) -> dict[str, Any]:
    response = api.as_user("pat").post("/api/v1/manifests", json=api.manifest_body(checks=checks))
    assert response.status_code == 200, response.text
    return response.json()


def record_versions(api: Api, tag: str) -> None:
    ci = api.as_user("ci-bot")
    for app in ("api", "web", "worker"):
        response = ci.post(f"/api/v1/applications/{app}/versions",
                           json={"image": f"registry.example.com/shop/{app}:{tag}",
                                 "commit": "0a1b2c3d"})
        assert response.status_code == 201, response.text


def cut_release(api: Api) -> str:
    response = api.as_user("rita").post("/api/v1/releases", json={"applicationSet": "shop"})
    assert response.status_code == 201, response.text
    return f"/api/v1/releases/{response.json()['release']}"


def wait_for(client: httpx.Client, path: str, condition: Callable[[dict[str, Any]], bool],
             timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; the release is at: {status['summary']}")
        time.sleep(0.1)


def stage_succeeded(index: int) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status["stages"][index]["state"] == "succeeded"


def at_once(count: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run `call` from `count` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def fire() -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(fire) for _ in range(count)]
        return [f.result() for f in futures]


def rejected(responses: list[httpx.Response]) -> list[str]:
    """The details of the 409 problems among `responses`."""
    return [problem(r, 409)["detail"] for r in responses if r.status_code == 409]


# -- the OpenAPI document, authentication and users ------------------------------------


def test_the_openapi_document_is_public_the_api_needs_a_token_and_only_admins_add_users(api):
    document = api.client().get("/openapi.json")
    missing = api.client().get("/api/v1/releases")
    bad = api.client("ifs_not-a-real-token").get("/api/v1/releases")
    basic = api.client().get("/api/v1/releases", headers={"Authorization": "Basic YTpi"})

    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")
    assert document.json()["info"]["title"] == "Infrastream"
    paths = document.json()["paths"]
    assert {"post", "get"} <= paths["/api/v1/releases"].keys()
    assert "get" in paths["/api/v1/releases/{app_set}/{name}"]
    assert "post" in paths["/api/v1/releases/{app_set}/{name}/promotions"]
    assert "post" in paths["/api/v1/releases/{app_set}/{name}/approvals"]
    assert "post" in paths["/api/v1/releases/{app_set}/{name}/rejections"]
    assert "HTTPBearer" in document.json()["components"]["securitySchemes"]
    body = problem(missing, 401)
    assert body["title"] == "Unauthenticated"
    assert "Authorization: Bearer" in body["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "unknown or revoked" in problem(bad, 401)["detail"]
    assert bad.headers["www-authenticate"] == "Bearer"
    assert problem(basic, 401)["title"] == "Unauthenticated"

    created = api.admin.post("/api/v1/users", json={"name": "quinn", "roles": ["qa", "qa"]})
    again = api.admin.post("/api/v1/users", json={"name": "quinn", "roles": ["product"]})
    quinn = api.client(created.json()["token"])
    forbidden = quinn.post("/api/v1/users", json={"name": "mallory", "roles": ["admin"]})

    assert created.status_code == 201, created.text
    assert created.json()["name"] == "quinn" and created.json()["roles"] == ["qa"]
    assert created.json()["token"].startswith("ifs_")
    assert quinn.get("/api/v1/whoami").json() == {"name": "quinn", "roles": ["qa"],
                                                   "tokenExpiresAt": None}
    assert problem(again, 409)["detail"] == "user `quinn` already exists"
    body = problem(forbidden, 403)
    assert body["detail"] == "quinn may not create users: it needs the role admin"
    assert body["needed"] == ["admin"]
    assert "www-authenticate" not in forbidden.headers
    names = [u["name"] for u in api.admin.get("/api/v1/users").json()]
    assert names == ["admin", "quinn"]


# -- refusals: invalid, forbidden, not found, conflict ---------------------------------


def test_refused_requests_are_problems_that_say_why_and_change_nothing(people):
    broken = ("apiVersion: lowops.manifests.v1\nkind: Application\nmetadata:\n"
              "  name: api\n  parent: {kind: ApplicationSet, name: nowhere}\n"
              "spec:\n  image: registry.example.com/shop/api\n  colour: blue\n")
    pat, ci, rita = people.as_user("pat"), people.as_user("ci-bot"), people.as_user("rita")
    example = people.manifest_body()

    invalid = pat.post("/api/v1/manifests",
                       json={"sources": [*example["sources"],
                                         {"source": "broken.yaml", "text": broken}]})
    track_by_developer = ci.post("/api/v1/manifests", json=example)

    body = problem(invalid, 422)
    assert "nothing was applied" in body["detail"]
    assert body["diagnostics"], body
    for item in body["diagnostics"]:
        assert {"source", "line", "column", "code"} <= item.keys()
        assert isinstance(item["line"], int) and isinstance(item["column"], int)
    colour = next(d for d in body["diagnostics"] if d["code"] == "unknown-field")
    assert (colour["source"], colour["line"], colour["column"]) == ("broken.yaml", 8, 3)
    forbidden = problem(track_by_developer, 403)
    assert "ci-bot may not change" in forbidden["detail"]
    assert "platform" in forbidden["detail"]
    assert pat.get("/api/v1/manifests").json() == []

    apply_example(people)
    missing_release = rita.get("/api/v1/releases/shop/v99")
    unknown_app = ci.post("/api/v1/applications/payments/versions",
                          json={"image": "registry.example.com/shop/payments:1.0.0"})
    malformed = ci.post("/api/v1/applications/api/versions",
                        json={"image": "registry.example.com/shop/api:not a tag!"})
    foreign = ci.post("/api/v1/applications/api/versions",
                      json={"image": "docker.io/library/nginx:1.27"})
    image = {"image": "registry.example.com/shop/api:1.0.0"}
    first = ci.post("/api/v1/applications/api/versions", json=image)
    again = ci.post("/api/v1/applications/api/versions", json=image)
    no_field = rita.post("/api/v1/releases", json={"name": "v1"})
    not_json = rita.post("/api/v1/releases", content=b"{",
                         headers={"Content-Type": "application/json"})

    assert "shop/v99" in problem(missing_release, 404)["detail"]
    assert "`payments`" in problem(unknown_app, 404)["detail"]
    assert problem(malformed, 422)["title"] == "Invalid input"
    assert "registry.example.com/shop/api" in problem(foreign, 422)["detail"]
    assert first.status_code == 201, first.text
    assert "already recorded" in problem(again, 409)["detail"]
    assert len(ci.get("/api/v1/applications/api/versions").json()) == 1
    body = problem(no_field, 422)
    assert body["errors"] == [{"location": "body.applicationSet", "message": "Field required"}]
    assert "body.applicationSet" in body["detail"]
    assert problem(not_json, 422)["errors"]


# -- the release story over HTTP -------------------------------------------------------


def test_a_release_travels_to_production_over_http_and_the_audit_trail_tells_it(people):
    applied = apply_example(people)
    assert {c["change"] for c in applied["changes"]} == {"created"}
    record_versions(people, "1.0.0")
    rita, quinn = people.as_user("rita"), people.as_user("quinn")

    created = rita.post("/api/v1/releases", json={"applicationSet": "shop"})
    assert created.status_code == 201, created.text
    name = created.json()["release"]
    release = f"/api/v1/releases/{name}"
    status = rita.get(release).json()
    assert [s["name"] for s in status["stages"]] == ["development", "staging", "production"]
    assert status["stages"][1]["state"] == status["stages"][2]["state"] == "pending"
    assert status["versions"]["api"]["version"] == "1.0.0"

    status = wait_for(rita, release, stage_succeeded(0))
    assert "ready to promote to staging" in status["summary"]
    promoted = rita.post(release + "/promotions")
    assert promoted.status_code == 202, promoted.text
    assert promoted.json()["stage"] == "staging"
    staging = wait_for(rita, release, stage_succeeded(1))["stages"][1]
    assert {"type": "soak", "state": "passed"}.items() <= staging["checks"][-1].items()

    to_production = rita.post(release + "/promotions")
    assert to_production.status_code == 202, to_production.text
    assert to_production.json()["approvalsRequired"] == ["qa × 1", "product × 1",
                                                         "security × 1"]
    again = rita.post(release + "/promotions")
    assert problem(again, 409)["detail"] == (
        "a promotion to production is already in progress (awaiting-approval)")
    production = rita.get(release).json()["stages"][2]
    assert production["waiting"] == "waiting for: qa 0/1, product 0/1, security 0/1"

    for person in ("quinn", "paula", "sam"):
        approval = people.as_user(person).post(release + "/approvals",
                                               json={"comment": f"{person} signs off"})
        assert approval.status_code == 201, approval.text
        assert approval.json()["approvedBy"] == person

    status = wait_for(rita, release, lambda s: s["state"] == "completed")
    assert status["summary"] == "completed: running in production"
    # the status is sent as the bytes FastAPI makes of its response model (a completed
    # release's status stays as it is: nothing in it depends on the clock any more)
    sent = rita.get(release)
    assert sent.headers["content-type"] == "application/json"
    assert sent.content == TypeAdapter(ReleaseStatus).dump_json(
        release_status(people.services, parse_ref(name)), by_alias=True)
    assert [s["state"] for s in status["stages"]] == ["succeeded"] * 3
    assert [(d["user"], d["decision"]) for d in status["stages"][2]["decisions"]] == [
        ("quinn", "approve"), ("paula", "approve"), ("sam", "approve")]
    environments = rita.get("/api/v1/environments").json()
    assert [e["environment"] for e in environments] == ["development", "production", "staging"]
    for env in environments:
        assert env["release"] == name
        assert env["versions"] == {"api": "1.0.0", "web": "1.0.0", "worker": "1.0.0"}
    listed = rita.get("/api/v1/releases").json()
    assert [(r["release"], r["state"]) for r in listed] == [(name, "completed")]

    entries = quinn.get("/api/v1/audit", params={"limit": 1000}).json()
    sequence = [e["seq"] for e in entries]
    assert sequence == sorted(sequence, reverse=True) and len(set(sequence)) == len(sequence)
    assert entries[0]["action"] == "release.complete" and entries[0]["objectId"] == name
    assert entries[-1]["action"] == "user.create" and entries[-1]["objectId"] == "admin"
    story = [e["action"] for e in reversed(entries)]
    assert story.index("manifest.apply") < story.index("version.record") < story.index(
        "release.create") < story.index("promotion.request") < story.index("approval.grant")
    page = quinn.get("/api/v1/audit", params={"limit": 2}).json()
    assert [e["seq"] for e in page] == sequence[:2]
    older = quinn.get("/api/v1/audit", params={"limit": 2, "before": page[-1]["seq"]}).json()
    assert [e["seq"] for e in older] == sequence[2:4]
    web = quinn.get("/api/v1/audit", params={"objectType": "application",
                                             "objectId": "web"}).json()
    assert [(e["action"], e["actor"]) for e in web] == [("version.record", "ci-bot")]
    verdict = quinn.get("/api/v1/audit/verify").json()
    assert verdict["ok"] is True, verdict
    assert verdict["entries"] == len(entries)


# -- concurrency -----------------------------------------------------------------------


def test_simultaneous_promotions_and_approvals_never_advance_a_stage_twice(people):
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    rita, quinn = people.as_user("rita"), people.as_user("quinn")
    wait_for(rita, release, stage_succeeded(0))

    # Right after the first stage: one request wins staging. One may also queue production
    # behind it (allowed while staging deploys), but no stage is ever requested twice.
    after_development = at_once(10, lambda: rita.post(release + "/promotions"))
    wait_for(rita, release, stage_succeeded(1))
    at_the_gate = at_once(10, lambda: rita.post(release + "/promotions"))

    responses = after_development + at_the_gate
    assert {r.status_code for r in responses} == {202, 409}, [r.text for r in responses]
    accepted = Counter(r.json()["stage"] for r in responses if r.status_code == 202)
    assert accepted == {"staging": 1, "production": 1}
    assert [r.status_code for r in after_development].count(202) >= 1
    assert all(rejected(responses))
    if "production" not in {r.json()["stage"] for r in after_development
                            if r.status_code == 202}:
        assert Counter(r.status_code for r in at_the_gate) == {202: 1, 409: 9}
    assert set(rejected(at_the_gate)) <= {
        "a promotion to production is already in progress (awaiting-approval)",
        f"the promotion of {release.removeprefix('/api/v1/releases/')} changed "
        "concurrently; try again"}
    assert rita.get(release).json()["stages"][2]["state"] == "awaiting-approval"

    approvals = at_once(10, lambda: quinn.post(release + "/approvals", json={}))

    assert Counter(r.status_code for r in approvals) == {201: 1, 409: 9}
    assert all("quinn already approved this promotion" in d for d in rejected(approvals))
    production = rita.get(release).json()["stages"][2]
    assert production["approvals"][0] == {"role": "qa", "required": 1, "approvers": ["quinn"]}

    callers = ["paula", "sam", "paula", "sam", "rita", "rita", "quinn", "paula"]
    clients = {name: people.as_user(name) for name in set(callers)}
    barrier = threading.Barrier(len(callers))

    def act(name: str) -> tuple[str, httpx.Response]:
        client = clients[name]
        barrier.wait()
        if name == "rita":
            return name, client.post(release + "/promotions")
        return name, client.post(release + "/approvals", json={})

    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        outcomes = list(pool.map(act, callers))

    granted = Counter(name for name, r in outcomes if r.status_code == 201)
    assert granted == {"paula": 1, "sam": 1}, [(n, r.text) for n, r in outcomes]
    assert all(rejected([r for _, r in outcomes if r.status_code != 201]))
    status = wait_for(rita, release, lambda s: s["state"] == "completed")
    decisions = status["stages"][2]["decisions"]
    assert sorted(d["user"] for d in decisions) == ["paula", "quinn", "sam"]
    assert status["stages"][2]["attempt"] == 1
    audit = rita.get("/api/v1/audit", params={"limit": 1000}).json()
    steps = Counter((e["after"]["stage"], e["action"]) for e in audit
                    if e["action"] in ("promotion.request", "promotion.cleared",
                                       "deployment.start", "stage.succeed"))
    for stage in ("staging", "production"):
        assert [steps[stage, action] for action in ("promotion.request", "promotion.cleared",
                                                    "deployment.start", "stage.succeed")] == [
            1, 1, 1, 1], steps


def test_racing_qa_engineers_and_release_cuts_are_counted_once_each(people):
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    rita = people.as_user("rita")
    cuts = at_once(6, lambda: rita.post("/api/v1/releases", json={"applicationSet": "shop"}))
    assert [r.status_code for r in cuts] == [201] * 6, [r.text for r in cuts]
    assert sorted(r.json()["name"] for r in cuts) == [f"v{n}" for n in range(1, 7)]

    release = "/api/v1/releases/shop/v1"
    wait_for(rita, release, stage_succeeded(0))
    assert rita.post(release + "/promotions").status_code == 202
    wait_for(rita, release, stage_succeeded(1))
    assert rita.post(release + "/promotions").status_code == 202
    testers = [f"qa-{n}" for n in range(6)]
    for name in testers:
        created = people.admin.post("/api/v1/users", json={"name": name, "roles": ["qa"]})
        people.tokens[name] = created.json()["token"]
    clients = iter([people.as_user(name) for name in testers])
    approvals = at_once(6, lambda: next(clients).post(release + "/approvals"))
    assert Counter(r.status_code for r in approvals) == {201: 1, 409: 5}
    assert set(rejected(approvals)) == {
        "the `qa` approvals of this promotion are already complete"}
    audit = rita.get("/api/v1/audit", params={"limit": 1000}).json()
    actions = Counter(e["action"] for e in audit if e["objectId"] == "shop/v1")
    assert actions["approval.grant"] == 1 and actions["approval.grant.refused"] == 5
    assert problem(rita.get("/api/v1/nope"), 404)["detail"] == \
        "no such resource: GET /api/v1/nope"
    assert problem(rita.delete("/api/v1/releases"), 405)["title"] == "Method not allowed"
