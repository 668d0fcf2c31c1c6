"""The hotfix, pre-release, rollback and secret commands against a real server process."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from live_server import one_line_error

LANES = """\
apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata: {name: lanes-track}
spec:
  preReleaseStages:
    - environments: [lane-dev]
  releaseStages:
    - environments: [lane-dev]
    - environments: [lane-prod]
  hotfixStages:
    - environments: [lane-prod]
      approvals: [{role: incident-commander}]
---
apiVersion: lowops.manifests.v1
kind: ApplicationSet
metadata: {name: lanes, parent: {kind: ReleaseTrack, name: lanes-track}}
---
apiVersion: lowops.manifests.v1
kind: Application
metadata: {name: svc, parent: {kind: ApplicationSet, name: lanes}}
spec:
  image: registry.example.com/lanes/svc
  env:
    - {name: API_TOKEN, secret: true}
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {name: lane-dev}
spec: {tier: development, target: {type: noop}}
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {name: lane-prod}
spec: {tier: production, target: {type: noop}}
"""
IMAGE = "registry.example.com/lanes/svc"


def _wait_state(cli, ref: str, state: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = json.loads(cli("release", "status", ref, "-o", "json").out)
        if status["state"] == state or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_hotfix_prerelease_rollback_and_secrets_through_the_cli(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lanes.yaml").write_text(LANES)
    assert cli("apply", str(tmp_path / "lanes.yaml")).code == 0
    tokens = {name: json.loads(cli("user", "create", f"l-{name}", "--role", role, "-o",
                                   "json").out)["token"]
              for name, role in [("rm", "release-manager"), ("ic", "incident-commander"),
                                 ("ic2", "incident-commander"), ("ops", "platform"),
                                 ("dev", "developer")]}

    monkeypatch.setattr("sys.stdin", io.StringIO("tok-123-secret\n"))
    assert cli("secret", "set", "lane-dev", "svc", "API_TOKEN", token=tokens["ops"]).code == 0
    listed = cli("secret", "list", "-o", "json", token=tokens["ops"]).out
    assert "API_TOKEN" in listed and "tok-123-secret" not in listed

    for tag, name in (("1.0.0", "r1"), ("2.0.0", "r2")):
        assert cli("version", "record", "svc", "--image", f"{IMAGE}:{tag}").code == 0
        assert cli("release", "create", "lanes", "--name", name, token=tokens["rm"]).code == 0
        _wait_state(cli, f"lanes/{name}", "active")
        deadline = time.monotonic() + 30
        while cli("release", "promote", f"lanes/{name}", token=tokens["rm"]).code != 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert _wait_state(cli, f"lanes/{name}", "completed")["state"] == "completed"

    unexplained = cli("rollback", "lane-prod", token=tokens["ic"])
    assert unexplained.code == 2 and "--reason" in unexplained.err
    refused = cli("rollback", "lane-prod", "--reason", "bad r2", token=tokens["dev"])
    assert "may not roll back" in one_line_error(refused)
    rolled = cli("rollback", "lane-prod", "--reason", "bad r2", token=tokens["ic"])
    assert rolled.code == 0 and "from lanes/r2 to lanes/r1" in rolled.out, rolled
    deadline = time.monotonic() + 30
    while True:
        where = {e["environment"]: e["release"]
                 for e in json.loads(cli("env", "list", "-o", "json").out)}
        if where.get("lane-prod") == "lanes/r1" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert where["lane-prod"] == "lanes/r1"

    bad = cli("hotfix", "create", "lanes", "--app", "svc", "--incident", "INC-7",
              token=tokens["ic"])
    assert bad.code == 2 and "APP=IMAGE_REF" in bad.err
    created = cli("hotfix", "create", "lanes", "--app", f"svc={IMAGE}:2.0.0-hf1",
                  "--incident", "INC-7", "-o", "json", token=tokens["ic"])
    assert created.code == 0, created
    hotfix = json.loads(created.out)
    assert hotfix["incident"] == "INC-7" and hotfix["lane"] == "hotfix"

    run = cli("prerelease", "run", "svc", "--image", f"{IMAGE}:pr-5", "--ref", "pull/5",
              "--wait", "--timeout", "30", "-o", "json", token=tokens["dev"])
    assert run.code == 0, run
    assert json.loads(run.out)["state"] == "passed"
    runs = json.loads(cli("prerelease", "list", "--app", "svc", "-o", "json").out)
    assert runs[0]["ref"] == "pull/5"


def test_an_evidence_pack_written_by_the_cli_verifies_offline_and_detects_an_edit(
        cli, tmp_path: Path) -> None:
    (tmp_path / "lanes.yaml").write_text(LANES)
    assert cli("apply", str(tmp_path / "lanes.yaml")).code == 0
    rm = json.loads(cli("user", "create", "ev-rm", "--role", "release-manager", "-o",
                        "json").out)["token"]
    cli("version", "record", "svc", "--image", f"{IMAGE}:9.9.9")
    assert cli("release", "create", "lanes", "--name", "ev1", token=rm).code == 0
    deadline = time.monotonic() + 30
    while cli("release", "promote", "lanes/ev1", token=rm).code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert _wait_state(cli, "lanes/ev1", "completed")["state"] == "completed"

    pack = tmp_path / "ev1.json"
    written = cli("release", "evidence", "lanes/ev1", "-o", str(pack))
    assert written.code == 0, written
    assert "| " in (tmp_path / "ev1.md").read_text()
    key = tmp_path / "infrastream.pem"
    key.write_text(cli("audit", "public-key").out)
    assert cli("evidence", "verify", str(pack), "--public-key", str(key)).code == 0

    text = pack.read_text()
    position = text.index("9.9.9")
    pack.write_text(text[:position] + "9.9.8" + text[position + 5:])
    broken = cli("evidence", "verify", str(pack), "--public-key", str(key))
    assert "does NOT verify" in one_line_error(broken)

    exported = cli("audit", "export", "-o", "jsonl").out.splitlines()
    kinds = {json.loads(line)["type"] for line in exported}
    assert kinds == {"entry", "checkpoint"}
    verified = cli("audit", "verify")
    assert verified.code == 0 and "signed checkpoints verified" in verified.out
