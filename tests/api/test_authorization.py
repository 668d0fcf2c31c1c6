"""The authorization matrix: every mutating operation × every built-in role, no token, a bad
token, a revoked token and a disabled user, exactly as the README's table "Who may do what"
says — and every refusal is in the audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from test_api import apply_example, record_versions, stage_succeeded, wait_for

from infrastream.service.auditing import refusals

if TYPE_CHECKING:
    from conftest import Api

README = Path(__file__).parents[2] / "README.md"
ANONYMOUS = {"no token", "bad token", "revoked token", "disabled user"}
USERS = {"developer": "ci-bot", "release-manager": "rita", "platform": "pat", "qa": "quinn",
         "product": "paula", "security": "sam", "incident-commander": "ivan",
         "admin": "admin"}


def readme_matrix() -> tuple[list[str], dict[str, dict[str, str]]]:
    """The README's table: its columns and, per operation, the outcome per column."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| operation |"))
    columns = [c.strip() for c in lines[start].strip("|").split("|")][1:]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(columns, cells[1:], strict=True))
    return columns, rows


@dataclass
class Call:
    method: str
    path: str
    body: Callable[[str], Any] | None = None
    """The body, given the column (so allowed callers do not collide)."""


def _slug(column: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", column).strip("-")


def _calls(api: Api, prefix: str) -> dict[str, Call]:
    sources = {Path(s["source"]).name: s for s in api.manifest_body(checks=False)["sources"]}
    application = sources["api.yaml"]
    environments = sources["environments.yaml"]
    return {
        "`POST /users`": Call("POST", "/users",
                              lambda c: {"name": f"made-by-{_slug(c)}", "roles": ["qa"]}),
        "`POST /users/{name}/disable`": Call("POST", "/users/victim/disable"),
        "`POST /users/{name}/enable`": Call("POST", "/users/victim/enable"),
        "`POST /users/{name}/end-sessions`": Call("POST", "/users/victim/end-sessions"),
        "`PUT /users/{name}/email`": Call("PUT", "/users/victim/email",
                                          lambda c: {"email": "victim@example.com"}),
        "`POST /tokens`": Call("POST", "/tokens", lambda c: {"user": "ci-bot"}),
        "`DELETE /tokens/{prefix}`": Call("DELETE", f"/tokens/{prefix}"),
        "`POST /manifests` (Application)": Call(
            "POST", "/manifests", lambda c: {"sources": [application]}),
        "`POST /manifests` (Environment)": Call(
            "POST", "/manifests", lambda c: {"sources": [environments]}),
        "`POST /applications/{app}/versions`": Call(
            "POST", "/applications/api/versions",
            lambda c: {"image": f"registry.example.com/shop/api:m-{_slug(c)}"}),
        "`POST /releases`": Call("POST", "/releases", lambda c: {"applicationSet": "shop"}),
        "`POST /hotfixes`": Call("POST", "/hotfixes", lambda c: {
            "applicationSet": "shop", "incident": "INC-1",
            "apps": {"api": f"registry.example.com/shop/api:hf-{_slug(c)}"}}),
        "`POST /releases/{app_set}/{name}/promotions`": Call(
            "POST", "/releases/shop/v1/promotions"),
        "`POST /releases/{app_set}/{name}/approvals`": Call(
            "POST", "/releases/shop/v1/approvals", lambda c: {"comment": "matrix"}),
        "`POST /releases/{app_set}/{name}/rejections`": Call(
            "POST", "/releases/shop/v2/rejections", lambda c: {"reason": "matrix"}),
        "`POST /releases/{app_set}/{name}/abandon`": Call(
            "POST", "/releases/shop/v2/abandon", lambda c: {"reason": "matrix"}),
        "`POST /environments/{environment}/rollbacks`": Call(
            "POST", "/environments/production/rollbacks", lambda c: {"reason": "matrix"}),
        "`POST /environments/{environment}/teardowns`": Call(
            "POST", "/environments/scratch/teardowns", lambda c: {"reason": "matrix"}),
        "`PUT /environments/{environment}/binding`": Call(
            "PUT", "/environments/scratch/binding", lambda c: {"node": "elsewhere"}),
        "`POST /prereleases`": Call("POST", "/prereleases", lambda c: {
            "application": "api", "image": f"registry.example.com/shop/api:pr-{_slug(c)}",
            "ref": "pull/1"}),
        "`PUT /secrets/{environment}/{app}/{name}`": Call(
            "PUT", "/secrets/production/api/DB_PASSWORD", lambda c: {"value": "s3cret"}),
        "`POST /audit/checkpoints`": Call("POST", "/audit/checkpoints"),
        "`DELETE /manifests/{kind}/{name}` (Application)": Call(
            "DELETE", "/manifests/Application/worker"),
        "`POST /manifests/diff` (Application)": Call(
            "POST", "/manifests/diff", lambda c: {"sources": [application]}),
        "`POST /applications/{app}/pull-request-builds`": Call(
            "POST", "/applications/api/pull-request-builds", lambda c: {
                "image": f"registry.example.com/shop/api:pr-b-{_slug(c)}", "commit": "abc1234",
                "pullRequest": 7}),
        "`POST /sources`": Call("POST", "/sources", lambda c: {
            "name": f"src-{_slug(c)}", "repository": "/nonexistent/repo.git"}),
        "`POST /sources/{name}/sync`": Call("POST", "/sources/nowhere/sync"),
        "`POST /teams`": Call("POST", "/teams", lambda c: {"name": f"team-{_slug(c)}"}),
        "`PUT /teams/{team}/members/{user}`": Call("PUT", "/teams/nobody/members/quinn"),
        "`DELETE /teams/{team}/members/{user}`": Call("DELETE", "/teams/nobody/members/quinn"),
        "`POST /scm/connections`": Call("POST", "/scm/connections", lambda c: {
            "type": "github", "name": f"gh-{_slug(c)}", "token": "t", "webhookSecret": "s"}),
        "`DELETE /scm/connections/{name}`": Call("DELETE", "/scm/connections/nowhere"),
        "`POST /scm/protect`": Call("POST", "/scm/protect", lambda c: {
            "repository": "octo-org/none", "branch": "main"}),
        "`POST /notification-subscriptions`": Call(
            "POST", "/notification-subscriptions",
            lambda c: {"channel": "nowhere", "selector": "everyone"}),
        "`DELETE /notification-subscriptions/{subscription_id}`": Call(
            "DELETE", "/notification-subscriptions/999"),
        "`POST /notification-channels`": Call(
            "POST", "/notification-channels", lambda c: {
                "name": f"hook-{_slug(c)}", "kind": "webhook",
                "url": "http://127.0.0.1:9/hook", "secret": "s" * 32}),
        "`DELETE /notification-channels/{name}`": Call("DELETE", "/notification-channels/none"),
        "`POST /notification-channels/{name}/test`": Call(
            "POST", "/notification-channels/none/test"),
    }


def _to_production_gate(api: Api, release: str) -> None:
    rita = api.as_user("rita")
    wait_for(rita, release, stage_succeeded(0))
    assert rita.post(release + "/promotions").status_code == 202
    wait_for(rita, release, stage_succeeded(1))
    assert rita.post(release + "/promotions").status_code == 202


def _callers(api: Api) -> dict[str, httpx.Client]:
    admin = api.admin
    for name, roles in (("ivan", ["incident-commander"]), ("victim", ["qa"]),
                        ("dora", ["release-manager"])):
        created = admin.post("/api/v1/users", json={"name": name, "roles": roles})
        api.tokens[name] = created.json()["token"]
    revoked = admin.post("/api/v1/tokens", json={"user": "rita"}).json()
    assert admin.delete(f"/api/v1/tokens/{revoked['details']['prefix']}").status_code == 200
    assert admin.post("/api/v1/users/dora/disable").status_code == 200
    callers = {column: api.as_user(user) if user != "admin" else admin
               for column, user in USERS.items()}
    callers |= {"no token": api.client(), "bad token": api.client("ifs_not-a-token"),
                "revoked token": api.client(revoked["token"]),
                "disabled user": api.client(api.tokens["dora"])}
    return callers


def _outcome(response: httpx.Response) -> str:
    return str(response.status_code) if response.status_code in (401, 403) else "✓"


def _refusal_audited(api: Api, column: str, response: httpx.Response, action: str) -> bool:
    actor = "anonymous" if column in ANONYMOUS else USERS[column]
    found = api.admin.get("/api/v1/audit", params={"limit": 50}).json()
    code = "unauthenticated" if response.status_code == 401 else "forbidden"
    return any(e["action"] == f"{action}.refused" and e["actor"] == actor
               and e["after"]["code"] == code and e["after"]["reason"] ==
               response.json()["detail"] for e in found)


def test_the_authorization_matrix_is_the_readme_table_and_every_refusal_is_audited(
        people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    rita = people.as_user("rita")
    for _ in range(2):
        assert rita.post("/api/v1/releases", json={"applicationSet": "shop"}).status_code == 201
    _to_production_gate(people, "/api/v1/releases/shop/v1")
    _to_production_gate(people, "/api/v1/releases/shop/v2")
    throwaway = people.admin.post("/api/v1/tokens", json={"user": "quinn"}).json()
    calls = _calls(people, throwaway["details"]["prefix"])
    callers = _callers(people)
    columns, table = readme_matrix()
    document = people.client().get("/openapi.json").json()
    audit_of = {f"`{m.upper()} {p.removeprefix('/api/v1')}`": op["x-audit"]["action"]
                for p, ops in document["paths"].items() for m, op in ops.items()
                if "x-audit" in op and not op["x-audit"].get("signed")}

    assert set(columns) == set(callers)
    assert {row.split(" (")[0] for row in table} == set(audit_of), "a mutation is missing"
    assert set(table) == set(calls)
    found: dict[str, dict[str, str]] = {}
    unaudited: list[str] = []
    for row, expected in table.items():
        call = calls[row]
        action = audit_of[row.split(" (")[0]]
        # refusals first, while the state still lets the allowed ones through afterwards
        order = sorted(columns, key=lambda c: expected[c] == "✓")
        found[row] = {}
        for column in order:
            body = call.body(column) if call.body else None
            response = callers[column].request(call.method, "/api/v1" + call.path, json=body)
            found[row][column] = _outcome(response)
            if found[row][column] != "✓" and not _refusal_audited(
                    people, column, response, action):
                unaudited.append(f"{row} as {column}")
        refusals.flush(people.services, everything=True)  # as if the window had closed

    mismatches = [f"{row} as {column}: README says {table[row][column]}, the API "
                  f"{found[row][column]}" for row in table for column in columns
                  if table[row][column] != found[row][column]]
    assert mismatches == [], "\n".join(mismatches)
    assert unaudited == [], "\n".join(unaudited)
