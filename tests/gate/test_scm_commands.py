"""`infrastream scm …`, `version record --pull-request` and `prerelease list --pull-request`
as a platform engineer and CI run them: real processes against a real server."""

from __future__ import annotations

import json

from gate_world import SECRET, Gate, sha
from sqlalchemy import select

from infrastream.scm.fake_github import FakeGitHub
from infrastream.scm.fake_gitlab import FakeGitLab
from infrastream.store.tables import audit_log, scm_connections


def test_scm_add_reads_the_token_and_secret_from_stdin_and_never_shows_them(
        gate: Gate) -> None:
    added = gate.cli("pat", "scm", "add", gate.kind, "acme", "--url", gate.host.base_url,
                     stdin=f"{gate.host.token}\n{SECRET}\n")
    assert added.returncode == 0, added.stderr
    assert f"webhook URL: {gate.url}/api/v1/scm/acme/webhook" in added.stdout
    listed = gate.cli("pat", "scm", "list", "-o", "json")
    assert [c["name"] for c in json.loads(listed.stdout)] == ["acme"]
    for text in (added.stdout + added.stderr, listed.stdout):
        assert gate.host.token not in text and SECRET not in text
    with gate.services.db.connect() as conn:
        stored = conn.execute(select(scm_connections)).one()
        trail = " ".join(json.dumps(r.after) for r in conn.execute(select(audit_log)))
    assert gate.host.token not in stored.settings and SECRET not in stored.settings
    assert gate.host.token not in json.dumps(stored.public) and SECRET not in trail

    public = gate.cli("pat", "scm", "add", gate.kind, "elsewhere", "--url", gate.host.base_url,
                      "--public-url", "https://infrastream.example.com/",
                      stdin=f"{gate.host.token}\n{SECRET}\n")
    assert "webhook URL: https://infrastream.example.com/api/v1/scm/elsewhere/webhook" in \
        public.stdout
    gate.cli("pat", "scm", "remove", "elsewhere")

    refused = gate.cli("ci-bot", "scm", "add", gate.kind, "other", stdin="t\ns\n")
    assert refused.returncode == 1
    assert "ci-bot may not connect Git hosts: it needs the role platform" in \
        refused.stderr
    missing = gate.cli("pat", "scm", "add", gate.kind, "other", stdin="only-a-token\n")
    assert missing.returncode == 2 and "one per line" in missing.stderr
    removed = gate.cli("pat", "scm", "remove", "acme")
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert json.loads(gate.cli("pat", "scm", "list", "-o", "json").stdout) == []


def test_scm_protect_requires_the_check_or_prints_what_to_set(gate: Gate) -> None:
    gate.connect()
    gate.apply(apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository}}})
    done = gate.cli("pat", "scm", "protect", gate.repository, "--branch", "main")
    assert done.returncode == 0, done.stderr
    if gate.kind == "github":
        assert "now requires infrastream/pre-release on main" in done.stdout
        assert isinstance(gate.host, FakeGitHub)
        [ruleset] = gate.host.rulesets(gate.repository)
        assert ruleset["enforcement"] == "active"
    else:
        assert "pipelines must now succeed" in done.stdout
    again = gate.cli("pat", "scm", "protect", gate.repository, "--branch", "main")
    assert again.returncode == 0 and "already" in again.stdout

    gate.host.deny_protection = True
    other = "main" if gate.kind == "gitlab" else "release"
    if isinstance(gate.host, FakeGitLab):  # undo, so that GitLab has to be asked again
        gate.host.projects[gate.repository].settings[
            "only_allow_merge_if_pipeline_succeeds"] = False
    denied = gate.cli("pat", "scm", "protect", gate.repository, "--branch", other)
    assert denied.returncode == 1
    assert "A repository admin can require the check by hand" in denied.stdout or \
        "A Maintainer or Owner of the project can require the check by hand" in denied.stdout
    assert "infrastream/pre-release" in denied.stdout
    assert "error: the check is not required yet" in denied.stderr
    assert getattr(gate.host, "violations", []) == []


def test_ci_records_a_pr_build_and_the_runs_are_listed_by_pull_request(gate: Gate) -> None:
    gate.connect()
    gate.apply(apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository},
                             "integrationTests": None}},
               track={"preReleaseRestore": False})
    head = sha("cli-pr-17")
    gate.opened(17, head)
    gate.wait_state(head, "pending", timeout=10)
    recorded = gate.cli("ci-bot", "version", "record", "api", "--image",
                        "registry.example.com/shop/api:pr-17", "--commit", head,
                        "--pull-request", "17")
    assert recorded.returncode == 0, recorded.stderr
    assert "for pull request 17" in recorded.stdout
    gate.wait_for(lambda: gate.statuses(head)[-1]["state"] == "success")
    listed = gate.cli("ci-bot", "prerelease", "list", "--pull-request", "17")
    assert listed.returncode == 0, listed.stderr
    assert f"{gate.repository}#17" in listed.stdout and head[:7] in listed.stdout
    assert "passed" in listed.stdout
    as_json = json.loads(gate.cli("ci-bot", "prerelease", "list", "--pull-request", "17",
                                  "-o", "json").stdout)
    assert as_json[0]["runs"][0]["runState"] == "passed"
    assert gate.cli("ci-bot", "prerelease", "list", "--pull-request", "18").stdout.strip() \
        == "no pre-release runs for that pull request"
    versions = gate.as_user("ci-bot").get("/api/v1/applications/api/versions").json()
    assert (versions[0]["channel"], versions[0]["pullRequest"]) == ("pull-request", 17)

    shown = gate.cli("pat", "scm", "deliveries")
    assert shown.returncode == 0, shown.stderr
    assert "Webhooks received" in shown.stdout and "accepted" in shown.stdout
    assert "Statuses sent" in shown.stdout and "delivered" in shown.stdout


def test_a_github_app_connection_reports_check_runs(github_gate: Gate) -> None:
    gate = github_gate
    assert isinstance(gate.host, FakeGitHub)
    key = gate.host.enable_app()
    response = gate.as_user("pat").post("/api/v1/scm/connections", json={
        "type": "github", "name": "github", "webhookSecret": SECRET,
        "baseUrl": gate.host.base_url, "appId": 4242, "privateKey": key})
    assert response.status_code == 201, response.text
    assert "BEGIN" not in response.text
    gate.apply(apps={"api": {"source": {"scm": "github", "repository": gate.repository}}})
    head = sha("app-pr")
    gate.opened(60, head)
    host = gate.host
    [run] = gate.wait_for(lambda: host.check_runs(gate.repository, head))
    assert (run["name"], run["status"]) == ("infrastream/pre-release", "queued")
    assert run["output"]["summary"] == f"waiting for the build of {head[:7]}"
    assert gate.host.violations == []
