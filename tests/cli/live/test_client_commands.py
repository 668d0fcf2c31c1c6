"""The CLI as a client of a real `infrastream serve`: the release story, told through commands.

One server (a subprocess on a free port, its own data directory) serves the whole module;
each test drives `main([...])` in-process with INFRASTREAM_URL/INFRASTREAM_TOKEN set, and no
output ever contains a traceback.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from live_server import Server, free_port, one_line_error

from infrastream.cli.init_cmd import write_example

pytestmark = pytest.mark.timeout(90)

GATED = """\
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {name: gate-dev}
spec: {tier: development, target: {type: noop}}
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {name: gate-prod}
spec: {tier: production, target: {type: noop}}
---
apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata: {name: gate-track}
spec:
  releaseStages:
    - environments: [gate-dev]
    - environments: [gate-prod]
      approvals:
        - {role: qa}
        - {role: product}
---
apiVersion: lowops.manifests.v1
kind: ApplicationSet
metadata:
  name: gated
  parent: {kind: ReleaseTrack, name: gate-track}
---
apiVersion: lowops.manifests.v1
kind: Application
metadata:
  name: ledger
  parent: {kind: ApplicationSet, name: gated}
spec:
  image: registry.example.com/gated/ledger
"""


def test_the_release_story_through_the_cli(cli, tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    write_example(shop)
    environments = shop / "manifests" / "environments.yaml"
    text = environments.read_text()
    assert text.count("type: local") == 3
    environments.write_text(text.replace("type: local", "type: noop"))

    applied = cli("apply", str(shop))
    assert applied.code == 0, applied
    assert "ReleaseTrack/shop-track created" in applied.out
    assert "Application/worker created" in applied.out
    assert "Environment/staging unchanged" in cli("apply", str(shop / "manifests")).out

    apps = json.loads(cli("get", "apps", "-o", "json").out)
    assert [a["metadata"]["name"] for a in apps] == ["api", "web", "worker"]
    assert "shop-track" in cli("get", "Track").out
    described = cli("describe", "environment", "staging")
    assert "type: noop" in described.out and "kind: Environment" in described.out

    tokens = {}
    for name, role in [("rm", "release-manager"), ("qa", "qa"), ("product", "product"),
                       ("security", "security"), ("dev", "developer")]:
        created = cli("user", "create", name, "--role", role, "-o", "json")
        assert created.code == 0, created
        body = json.loads(created.out)
        assert body["name"] == name and body["roles"] == [role]
        tokens[name] = body["token"]
    plain = cli("user", "create", "auditor", "--role", "qa")
    assert plain.code == 0 and plain.out.strip().startswith("ifs_")
    assert {u["name"] for u in json.loads(cli("user", "list", "-o", "json").out)} >= {
        "admin", "rm", "qa", "product", "security", "dev"}

    for app in ("api", "web", "worker"):
        recorded = cli("version", "record", app, "--image",
                       f"registry.example.com/shop/{app}:1.0.0", "--commit", "abc1234",
                       token=tokens["dev"])
        assert recorded.code == 0, recorded
        assert f"recorded {app} 1.0.0" in recorded.out
    listed = json.loads(cli("version", "list", "api", "-o", "json").out)
    assert [v["version"] for v in listed] == ["1.0.0"]

    denied = cli("release", "create", "shop", token=tokens["dev"])
    assert "release-manager" in one_line_error(denied)

    created = cli("release", "create", "shop", "-o", "json", token=tokens["rm"])
    assert created.code == 0, created
    assert json.loads(created.out)["release"] == "shop/v1"

    status = json.loads(cli("release", "status", "shop/v1", "-o", "json").out)
    assert status["stages"][0]["index"] == 0
    assert status["stages"][0]["state"] != "pending"
    assert status["stages"][0]["requestedBy"] == "rm"

    waited = cli("release", "status", "shop/v1", "--wait", "--timeout", "20", "-o", "json")
    assert waited.code == 0, waited
    first = json.loads(waited.out)["stages"][0]
    assert first["state"] == "succeeded"
    assert [(e["name"], e["state"]) for e in first["environments"]] == [
        ("development", "healthy")]

    shown = cli("release", "status", "shop/v1")
    assert shown.code == 0
    assert "stage 1/3 development" in shown.out and "ready to promote to staging" in shown.out
    running = {e["environment"]: e for e in json.loads(cli("status", "-o", "json").out)}
    assert running["development"]["release"] == "shop/v1"
    assert running["development"]["versions"] == {"api": "1.0.0", "web": "1.0.0",
                                                  "worker": "1.0.0"}
    assert "shop/v1" in cli("env", "list").out

    promoted = cli("release", "promote", "shop/v1", token=tokens["rm"])
    assert promoted.code == 0 and "to staging requested" in promoted.out, promoted
    staging = json.loads(cli("release", "status", "shop/v1", "-o", "json").out)["stages"][1]
    assert staging["state"] != "pending" and staging["requestedBy"] == "rm"

    releases = json.loads(cli("release", "list", "--set", "shop", "-o", "json").out)
    assert [r["release"] for r in releases] == ["shop/v1"]
    actions = {e["action"] for e in json.loads(
        cli("audit", "list", "--object-id", "shop/v1", "-o", "json").out)}
    assert {"release.create", "promotion.request"} <= actions
    assert "user/rm" in cli("audit", "list", "--object-type", "user").out
    verified = cli("audit", "verify")
    assert verified.code == 0 and "intact" in verified.out


def test_sign_offs_rejection_and_retry(cli, tmp_path: Path) -> None:
    (tmp_path / "gated.yaml").write_text(GATED)
    assert cli("apply", str(tmp_path / "gated.yaml")).code == 0
    tokens = {name: json.loads(cli("user", "create", f"g-{name}", "--role", role, "-o",
                                   "json").out)["token"]
              for name, role in [("rm", "release-manager"), ("qa", "qa"),
                                 ("product", "product")]}
    assert cli("version", "record", "ledger", "--image",
               "registry.example.com/gated/ledger:2.0.0").code == 0
    assert cli("release", "create", "gated", "--name", "r1", token=tokens["rm"]).code == 0
    assert cli("release", "status", "gated/r1", "--wait", "--timeout", "20").code == 0

    early = cli("release", "approve", "gated/r1", token=tokens["qa"])
    assert "no promotion of gated/r1 is waiting for approval" in one_line_error(early)
    promoted = cli("release", "promote", "gated/r1", token=tokens["rm"])
    assert "needs qa × 1, product × 1" in promoted.out, promoted
    stage = json.loads(cli("release", "status", "gated/r1", "-o", "json").out)["stages"][1]
    assert stage["state"] == "awaiting-approval"
    assert "qa 0/1" in stage["waiting"] and "product 0/1" in stage["waiting"]

    assert "g-rm" in one_line_error(cli("release", "approve", "gated/r1", token=tokens["rm"]))
    approved = cli("release", "approve", "gated/r1", "--comment", "stable", token=tokens["qa"])
    assert approved.code == 0 and "as qa" in approved.out, approved
    rejected = cli("release", "reject", "gated/r1", "--reason", "pricing copy not final",
                   token=tokens["product"])
    assert rejected.code == 0, rejected
    stopped = cli("release", "status", "gated/r1", "--wait", "--timeout", "20")
    line = one_line_error(stopped)
    assert "rejected" in line and "pricing copy not final" in line
    assert "APPROVAL" in stopped.out and "g-qa" in stopped.out

    assert cli("release", "promote", "gated/r1", token=tokens["rm"]).code == 0
    assert cli("release", "approve", "gated/r1", token=tokens["qa"]).code == 0
    assert cli("release", "approve", "gated/r1", token=tokens["product"]).code == 0
    done = cli("release", "status", "gated/r1", "--wait", "--timeout", "20", "-o", "json")
    assert done.code == 0, done
    final = json.loads(done.out)
    assert final["state"] == "completed"
    assert {a["role"]: a["approvers"] for a in final["stages"][1]["approvals"]} == {
        "qa": ["g-qa"], "product": ["g-product"]}
    where = {e["environment"]: e["release"] for e in json.loads(cli("env", "list", "-o",
                                                                     "json").out)}
    assert where["gate-prod"] == "gated/r1"


def test_an_invalid_manifest_is_refused_with_its_location(cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: lowops.manifests.v1\nkind: Environment\nmetadata:\n"
                      "  name: broken\nspec:\n  tier: staging\n  colour: blue\n")
    result = cli("apply", str(broken))
    assert one_line_error(result, after_diagnostics=True) == (
        "error: the manifests are invalid; nothing was applied")
    assert f"{broken}:7:3: error[unknown-field]" in result.err

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"kind: \xff\xfe\n")
    local = cli("apply", str(binary))
    assert "not UTF-8" in one_line_error(local, after_diagnostics=True)
    assert f"{binary}:" in local.err and "error[not-utf8]" in local.err

    assert cli("apply", str(tmp_path / "missing.yaml")).code == 2
    assert cli("get", "widgets").code == 2


def test_errors_are_one_line(cli, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "does not exist" in one_line_error(cli("release", "status", "shop/nope"))
    assert "does not exist" in one_line_error(cli("describe", "app", "nope"))
    assert cli("release", "status", "shop").code == 2
    assert "unknown or revoked" in one_line_error(cli("whoami", token="ifs_bogus"))

    monkeypatch.setenv("INFRASTREAM_URL", f"http://127.0.0.1:{free_port()}")
    unreachable = one_line_error(cli("whoami"))
    assert "cannot reach the Infrastream server" in unreachable
    assert "infrastream serve" in unreachable


def test_login_writes_a_private_config_that_later_commands_use(
        cli, server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "home" / "infrastream" / "config.json"
    monkeypatch.setenv("INFRASTREAM_CONFIG", str(config))
    monkeypatch.delenv("INFRASTREAM_URL")
    assert "no API token" in one_line_error(cli("whoami", token=None))

    refused = cli("login", "--server", server.url, "--token", "ifs_wrong", token=None)
    assert "unknown or revoked" in one_line_error(refused)
    assert not config.exists()

    logged_in = cli("login", "--server", server.url, "--token", server.admin_token, token=None)
    assert logged_in.code == 0 and "as admin" in logged_in.out, logged_in
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"server": server.url,
                                              "token": server.admin_token}

    me = cli("whoami", "-o", "json", token=None)
    assert me.code == 0, me
    assert json.loads(me.out) == {"name": "admin", "roles": ["admin"], "server": server.url,
                                  "tokenExpiresAt": None}
    assert cli("whoami", token=None).out.startswith("admin (admin)")


def test_service_tokens_and_disabled_users_through_the_cli(cli) -> None:
    created = cli("user", "create", "ci", "--role", "developer", "-o", "json")
    assert created.code == 0, created
    made = cli("token", "create", "--user", "ci", "--name", "pipeline", "--expires", "90d")
    assert made.code == 0, made
    secret = made.out.strip()
    assert secret.startswith("ifs_") and "created token ifs_" in made.err
    assert "expires" in made.err

    listed = cli("token", "list", "--user", "ci")
    assert listed.code == 0 and secret not in listed.out
    assert "pipeline" in listed.out and "never" in listed.out
    rows = json.loads(cli("token", "list", "--user", "ci", "-o", "json").out)
    assert secret not in json.dumps(rows)
    (mine,) = [t for t in rows if t["name"] == "pipeline"]
    assert mine["state"] == "active" and mine["expiresAt"] and mine["prefix"] in listed.out
    prefix = mine["prefix"]
    assert cli("whoami", token=secret).out.startswith("ci (developer)")

    revoked = cli("token", "revoke", prefix)
    assert revoked.code == 0 and f"revoked token {prefix} of ci" in revoked.out
    assert "was revoked" in one_line_error(cli("whoami", token=secret))
    assert "already revoked" in one_line_error(cli("token", "revoke", prefix))
    assert "may not create API tokens" in one_line_error(
        cli("token", "create", token=json.loads(created.out)["token"]))

    first = json.loads(created.out)["token"]
    assert cli("user", "disable", "ci").code == 0
    assert "user `ci` is disabled" in one_line_error(cli("whoami", token=first))
    users = json.loads(cli("user", "list", "-o", "json").out)
    assert next(u for u in users if u["name"] == "ci")["disabled"] is True
    assert cli("user", "enable", "ci").code == 0
    assert cli("whoami", token=first).code == 0
    actions = {e["action"] for e in json.loads(
        cli("audit", "list", "--object-type", "user", "-o", "json").out)}
    assert {"token.create", "user.disable", "user.enable"} <= actions
