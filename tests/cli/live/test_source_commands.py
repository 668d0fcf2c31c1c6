"""Manifests from Git through the CLI, against a real server process: a platform engineer adds
a source and syncs it, a bad commit is shown at file:line:col, `diff` previews a change,
`delete` removes what `apply` made, teams own Applications and `codeowners` says so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from live_server import one_line_error

TRACK = """\
apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata: {name: git-track}
spec:
  releaseStages:
    - environments: [git-dev]
---
apiVersion: lowops.manifests.v1
kind: ApplicationSet
metadata: {name: gitshop, parent: {kind: ReleaseTrack, name: git-track}}
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {name: git-dev}
spec: {tier: development, target: {type: noop}}
"""
APP = """\
apiVersion: lowops.manifests.v1
kind: Application
metadata: {name: cart, team: payments, parent: {kind: ApplicationSet, name: gitshop}}
spec:
  image: registry.example.com/gitshop/cart
  replicas: {replicas}
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Dana", "-c", "user.email=dana@example.com",
                           *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _token(cli, name: str, role: str) -> str:
    created = cli("user", "create", name, "--role", role, "-o", "json")
    assert created.code == 0, created
    return str(json.loads(created.out)["token"])


def test_a_source_is_added_synced_diffed_and_owned_through_the_cli(cli, tmp_path):
    pat = _token(cli, "pat-git", "platform")
    dana = _token(cli, "dana-git", "developer")
    assert cli("team", "create", "payments", "--github", "@acme/payments").code == 0
    assert cli("team", "add-member", "payments", "dana-git").code == 0

    remote = tmp_path / "manifests.git"
    work = tmp_path / "work"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    _git(tmp_path, "clone", "-q", str(remote), str(work))
    (work / "deploy" / "apps").mkdir(parents=True)
    (work / "deploy" / "track.yaml").write_text(TRACK)
    (work / "deploy" / "apps" / "cart.yaml").write_text(APP.replace("{replicas}", "2"))
    (work / "README.md").write_text("not a manifest\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "the gitshop")
    _git(work, "push", "-q", "origin", "HEAD:main")
    head = _git(work, "rev-parse", "HEAD")

    refused = cli("source", "add", "gitshop", "--repository", str(remote), token=dana)
    assert "may not add manifest sources" in one_line_error(refused)
    added = cli("source", "add", "gitshop", "--repository", str(remote), "--path", "deploy",
                token=pat)
    assert added.code == 0 and "pending" in added.out
    synced = cli("source", "sync", "gitshop", "-o", "json", token=pat)
    assert synced.code == 0, synced
    assert json.loads(synced.out)["appliedCommit"] == head
    listed = cli("get", "apps").out
    cart = next(line for line in listed.splitlines() if line.startswith("Application  cart"))
    assert "source/gitshop" in cart and head[:12] in cart and "Dana" in cart

    (work / "deploy" / "apps" / "cart.yaml").write_text(APP.replace("{replicas}", "'3'"))
    _git(work, "commit", "-q", "-am", "three carts")
    _git(work, "push", "-q", "origin", "HEAD:main")
    bad = cli("source", "sync", "gitshop", token=pat)
    assert bad.code == 1
    assert "deploy/apps/cart.yaml:6:13: error[wrong-type]" in bad.err
    assert "stays in force" in bad.out

    local = tmp_path / "local.yaml"
    local.write_text(APP.replace("name: cart", "name: basket").replace("{replicas}", "1"))
    preview = cli("diff", str(local), token=dana)
    assert preview.code == 1  # like kubectl diff: something would change
    assert "+++ merged/Application/basket" in preview.out and "+  name: basket" in preview.out
    assert cli("get", "apps").out == listed  # nothing stored

    assert cli("apply", str(local), token=dana).code == 0
    outsider = _token(cli, "erin-git", "developer")
    refused = cli("delete", "app", "basket", token=outsider)
    assert "belongs to team `payments`" in one_line_error(refused)
    gone = cli("delete", "app", "basket", token=dana)
    assert gone.code == 0 and "Application/basket deleted" in gone.out
    owned = cli("delete", "app", "cart", token=dana)
    assert "managed by source `gitshop`" in one_line_error(owned)

    owners = cli("codeowners", "gitshop", "--owner", "platform=@acme/platform")
    assert owners.code == 0
    assert "/deploy/apps/cart.yaml @acme/payments" in owners.out
    assert "/deploy/track.yaml @acme/platform" in owners.out
    assert "# missing: no handle for role release-manager" in owners.out
