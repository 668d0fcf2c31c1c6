"""Manifest pull requests are judged before they merge, as a story on the fake GitHub (a
GitHub App connection, so the check run carries a summary and annotations; every request
checked against GitHub's official REST description).

A platform engineer points a manifest source at `octo-org/shop-manifests` (a real bare
repository on disk) and connects it to the GitHub connection. A developer opens pull
request #7 that changes the track and the api Application: the check run
`infrastream/manifests` says it is valid, lists what merging changes (objects and fields)
and that a platform reviewer and one from team `payments` must approve — the ownership rule
`apply` uses. Pull request #8 breaks a manifest: the check fails, with an annotation at the
file and line. A push to `main` asks for a sync at once.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from gate_world import SECRET, Gate
from git_http import git_http_server

from infrastream.scm.fake_github import FakeGitHub
from infrastream.scm.git_tree import basic_header
from infrastream.service import sources

MANIFESTS = "octo-org/shop-manifests"
CONTEXT = "infrastream/manifests"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "Dana Dev",
                                          "GIT_AUTHOR_EMAIL": "dana@example.com",
                                          "GIT_COMMITTER_NAME": "Dana Dev",
                                          "GIT_COMMITTER_EMAIL": "dana@example.com",
                                          "PATH": "/usr/bin:/bin"}).stdout.strip()


class Remote:
    """The manifest repository as the Git host keeps it: a bare repository whose pull
    requests are refs `refs/pull/N/head`, and a working clone to write commits."""

    def __init__(self, root: Path, example: Path) -> None:
        self.bare = root / "hosts" / "octo-org" / "shop-manifests.git"
        self.bare.parent.mkdir(parents=True)
        self.work = root / "manifests-work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        shutil.copytree(example / "manifests", self.work / "deploy")
        api = self.work / "deploy" / "apps" / "api.yaml"
        api.write_text(api.read_text().replace("  name: api\n", "  name: api\n  team: payments\n",
                                                1))

    def commit(self, message: str, ref: str = "main") -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "--force", "origin", f"HEAD:{ref}")
        return git(self.work, "rev-parse", "HEAD")

    def branch(self, name: str) -> None:
        git(self.work, "checkout", "-q", "-B", name, "origin/main")


def _check_run(gate: Gate, head: str) -> dict[str, Any]:
    assert isinstance(gate.host, FakeGitHub)
    host = gate.host

    def finished() -> dict[str, Any] | None:
        runs = [r for r in host.check_runs(MANIFESTS, head) if r["name"] == CONTEXT]
        return runs[0] if runs and runs[0]["status"] == "completed" else None
    try:
        return dict(gate.wait_for(finished))
    except AssertionError:
        checks = gate.as_user("pat").get("/api/v1/sources/shop/checks").json()
        raise AssertionError(f"the manifest check of {head[:7]} did not finish: {checks}; "
                             f"{host.check_runs(MANIFESTS, head)}; {gate.sent(head)}") from None


def test_a_manifest_pull_request_is_judged_by_the_rules_its_merge_will_meet(
        github_gate: Gate, tmp_path: Path) -> None:
    gate = github_gate
    assert isinstance(gate.host, FakeGitHub)
    key = gate.host.enable_app()
    gate.host.add_repository(MANIFESTS)
    response = gate.as_user("pat").post("/api/v1/scm/connections", json={
        "type": "github", "name": "github", "webhookSecret": SECRET,
        "baseUrl": gate.host.base_url, "appId": 4242, "privateKey": key,
        "publicUrl": gate.url})
    assert response.status_code == 201, response.text
    remote = Remote(tmp_path, gate.repo)
    first = remote.commit("the shop's manifests")
    added = gate.as_user("pat").post("/api/v1/sources", json={
        "name": "shop", "repository": str(remote.bare), "branch": "main", "path": "deploy",
        "scm": "github"})
    assert added.status_code == 201, added.text
    synced = gate.as_user("pat").post("/api/v1/sources/shop/sync").json()
    assert (synced["state"], synced["appliedCommit"]) == ("ok", first), synced

    # pull request #7: a longer soak on the track, more replicas... for the api of payments
    remote.branch("longer-soak")
    track = remote.work / "deploy" / "track.yaml"
    track.write_text(track.read_text().replace("duration: 1s", "duration: 2s"))
    api = remote.work / "deploy" / "apps" / "api.yaml"
    api.write_text(api.read_text().replace("  team: payments\n",
                                           "  team: payments\n  labels:\n    tier: gold\n"))
    head = remote.commit("a longer soak; label the api", ref="refs/pull/7/head")
    delivered = gate._pull_request("opened", 7, head, repository=MANIFESTS)
    assert delivered.status_code == 202, delivered.text
    assert delivered.json()["actions"] == [f"manifest-check:shop@{head[:12]}"]

    run = _check_run(gate, head)
    assert run["conclusion"] == "success", run
    summary = run["output"]["summary"]
    assert "| configured | ReleaseTrack `shop-track` |" in summary, summary
    assert "`spec.releaseStages" in summary  # the field the soak lives in
    assert "| configured | Application `api` | `metadata.labels.tier` |" in summary
    assert "- changes ReleaseTrack `shop-track`: needs a platform reviewer" in summary
    assert "- changes Application `api`: needs a reviewer from team `payments`" in summary
    assert run["output"]["title"] == ("valid; 2 changes; needs a platform reviewer, a "
                                      "reviewer from team `payments`")
    assert run["details_url"] == f"{gate.url}/portal/manifests?source=shop"
    # nothing was applied: the pull request is not merged
    status = gate.as_user("pat").get("/api/v1/sources/shop").json()
    assert status["appliedCommit"] == first

    # pull request #8: an invalid Application, annotated at its file and line
    remote.branch("broken")
    web = remote.work / "deploy" / "apps" / "web.yaml"
    web.write_text(web.read_text() + "  replicaz: 2\n")
    broken = remote.commit("typo", ref="refs/pull/8/head")
    assert gate._pull_request("opened", 8, broken, repository=MANIFESTS).status_code == 202
    run = _check_run(gate, broken)
    assert run["conclusion"] == "failure", run
    [annotation] = run["annotations"]
    line = web.read_text().splitlines().index("  replicaz: 2") + 1
    assert (annotation["path"], annotation["start_line"]) == ("deploy/apps/web.yaml", line)
    assert annotation["annotation_level"] == "failure"
    assert "replicaz" in annotation["message"]
    assert run["output"]["title"].startswith("1 problem: deploy/apps/web.yaml:")
    assert gate.host.violations == []

    # the same head delivered again is not checked twice
    again = gate._pull_request("synchronize", 8, broken, repository=MANIFESTS)
    assert again.json()["actions"] == []

    # a push to main asks for a sync now, not at the next interval
    remote.branch("main")
    api.write_text(api.read_text().replace("  team: payments\n",
                                           "  team: payments\n  labels:\n    tier: gold\n"))
    merged = remote.commit("merge #7 (the api label)")
    assert sources.due(gate.services) == []
    pushed = gate.merged(merged, repository=MANIFESTS, files=("deploy/apps/api.yaml",))
    assert pushed.status_code == 202 and "source-sync:shop" in pushed.json()["actions"]
    assert sources.due(gate.services) == ["shop"]
    sources.sync_source(gate.services, "shop")
    assert gate.as_user("pat").get("/api/v1/sources/shop").json()["appliedCommit"] == merged
    assert sources.due(gate.services) == []

    shown = gate.cli("pat", "source", "checks", "shop")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith("#8") and broken[:12] in line and "failure" in line
               for line in lines), shown.stdout
    assert any(line.startswith("#7") and "success" in line and "team `payments`" in line
               for line in lines), shown.stdout


def test_a_source_over_https_fetches_with_its_connections_token(github_gate: Gate,
                                                                 tmp_path: Path) -> None:
    """`source add --scm github` over HTTPS: git fetches with the connection's token (as
    GitHub wants it: the password of `x-access-token`); without the connection the same
    server refuses, and the source says so in one line without any secret."""
    gate = github_gate
    assert isinstance(gate.host, FakeGitHub)
    gate.connect()
    remote = Remote(tmp_path, gate.repo)
    first = remote.commit("the shop's manifests")
    header = basic_header("x-access-token", gate.host.token)
    assert header.startswith("Authorization: Basic ")
    expected = header.removeprefix("Authorization: ")
    with git_http_server(remote.bare.parent.parent, expected) as (url, seen):
        pat = gate.as_user("pat")
        for name, scm in (("shop", "github"), ("anonymous", None)):
            added = pat.post("/api/v1/sources", json={
                "name": name, "repository": f"{url}/{MANIFESTS}.git", "path": "deploy",
                "scm": scm})
            assert added.status_code == 201, added.text
        synced = pat.post("/api/v1/sources/shop/sync").json()
        assert (synced["state"], synced["appliedCommit"]) == ("ok", first), (synced, seen)
        assert seen and set(seen) == {expected}
        refused = pat.post("/api/v1/sources/anonymous/sync").json()
    assert refused["state"] == "error"
    assert refused["message"].startswith("cannot fetch main: git fetch:"), refused
    assert gate.host.token not in str(refused) and expected not in str(refused)
    assert gate.host.token not in str(pat.get("/api/v1/sources").json())
