"""Manifests from Git, as a story: a platform engineer points Infrastream at a repository;
every commit of its branch is validated as a whole and applied as one revision with its sha
and author, or — when anything is invalid — nothing is applied and the source says why at
file:line:col; a file removed is a manifest deleted, unless something still needs it; the
objects the source owns cannot be changed by `apply`; and teams own their Applications."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from story import CI, PLATFORM, Story, person

from infrastream.domain.errors import Conflict, Forbidden
from infrastream.service import identity, manifests, sources, teams
from infrastream.service.auditing import trail
from infrastream.service.records.manifests import current_bundle

ADMIN = person("admin", "admin")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "Dana Dev",
                                          "GIT_AUTHOR_EMAIL": "dana@example.com",
                                          "GIT_COMMITTER_NAME": "Dana Dev",
                                          "GIT_COMMITTER_EMAIL": "dana@example.com",
                                          "PATH": "/usr/bin:/bin"}).stdout.strip()


class Repo:
    """A working clone that commits and pushes to a bare repository (the remote)."""

    def __init__(self, root: Path, example: Path) -> None:
        self.remote = root / "manifests.git"
        self.work = root / "work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.remote))
        git(root, "clone", "-q", str(self.remote), str(self.work))
        shutil.copytree(example / "manifests", self.work / "deploy")

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url, target="noop")
    yield story
    story.finish()


def _source(story: Story, repo: Repo) -> None:
    sources.add_source(story.services, PLATFORM, "shop", str(repo.remote), branch="main",
                       path="deploy")


def test_each_commit_is_applied_as_one_revision_or_not_at_all(story, tmp_path):
    repo = Repo(tmp_path, story.repo)
    first = repo.commit("the shop, as the platform team set it up")
    with pytest.raises(Forbidden):
        sources.add_source(story.services, CI, "mine", str(repo.remote))
    _source(story, repo)
    synced = sources.sync_source(story.services, "shop")
    assert synced["state"] == "ok" and synced["appliedCommit"] == first
    assert {c["change"] for c in synced["applied"]["changes"]} == {"created"}
    api = manifests.get_objects(story.services, "Application", "api")[0]
    assert api["managedBy"] == "source/shop" and api["commit"] == first
    assert api["author"] == "Dana Dev <dana@example.com>"
    again = sources.sync_source(story.services, "shop")
    assert again["appliedRevision"] == synced["appliedRevision"]  # nothing new: no revision

    track = repo.work / "deploy" / "track.yaml"
    good = track.read_text()
    track.write_text(good.replace("duration: 1s", "duration: 1 second"))
    (repo.work / "deploy" / "apps" / "web.yaml").write_text(
        (repo.work / "deploy" / "apps" / "web.yaml").read_text().replace("port:", "prot:"))
    broken = repo.commit("a typo or two")
    failed = sources.sync_source(story.services, "shop")
    assert failed["state"] == "error" and failed["commit"] == broken
    assert failed["appliedCommit"] == first
    assert f"revision {synced['appliedRevision']} stays in force" in failed["message"]
    where = {(d["source"], d["code"]) for d in failed["diagnostics"]}
    assert ("deploy/track.yaml", "invalid-duration") in where
    assert ("deploy/apps/web.yaml", "unknown-field") in where
    assert all(d["line"] > 0 and d["column"] > 0 for d in failed["diagnostics"])
    assert current_bundle(story.services).tracks["shop-track"].spec.release_stages[1] \
        .checks[2].duration == "1s"  # the last good revision is still in force

    track.write_text(good)
    shutil.copy(story.repo / "manifests" / "apps" / "web.yaml",
                repo.work / "deploy" / "apps" / "web.yaml")
    (repo.work / "deploy" / "apps" / "worker.yaml").unlink()
    fixed = repo.commit("fix the typos; the worker is retired")
    done = sources.sync_source(story.services, "shop")
    assert done["state"] == "ok" and done["appliedCommit"] == fixed
    assert {(c["kind"], c["name"], c["change"]) for c in done["applied"]["changes"]
            if c["change"] != "unchanged"} == {("Application", "worker", "deleted")}
    assert "worker" not in current_bundle(story.services).applications
    history = manifests.history(story.services, "Application", "worker")
    assert [h["change"] for h in history] == ["deleted", "created"]
    assert history[0]["commit"] == fixed
    with story.services.db.connect() as conn:
        actions = [(e.action, e.object_id) for e in trail.entries(conn)]
    assert ("manifest.delete", "worker") in actions and ("source.error", "shop") in actions


def test_a_set_with_an_active_release_cannot_be_removed_from_the_tree(story, tmp_path):
    repo = Repo(tmp_path, story.repo)
    repo.commit("the shop")
    _source(story, repo)
    sources.sync_source(story.services, "shop")
    story.record_versions("1.0.0")
    release = story.cut_release()
    shutil.rmtree(repo.work / "deploy" / "apps")
    track = repo.work / "deploy" / "track.yaml"
    track.write_text(track.read_text().split("\n---\n")[0])
    repo.commit("retire the shop")
    refused = sources.sync_source(story.services, "shop")
    assert refused["state"] == "error"
    assert f"ApplicationSet `shop` has active releases ({release})" in refused["message"]
    assert "shop" in current_bundle(story.services).sets


def test_apply_cannot_change_what_a_source_owns_and_delete_removes_what_apply_made(story,
                                                                                   tmp_path):
    repo = Repo(tmp_path, story.repo)
    (repo.work / "deploy" / "apps" / "worker.yaml").unlink()
    repo.commit("the shop without its worker")
    _source(story, repo)
    sources.sync_source(story.services, "shop")
    worker = (story.repo / "manifests" / "apps" / "worker.yaml").read_text()
    api = (story.repo / "manifests" / "apps" / "api.yaml").read_text()
    with pytest.raises(Conflict, match="Application `api` is managed by source `shop`"):
        manifests.apply(story.services, CI, [("api.yaml", api)])
    applied = manifests.apply(story.services, CI, [("worker.yaml", worker)])
    assert [c.model_dump() for c in applied.changes] == [
        {"kind": "Application", "name": "worker", "change": "created"}]
    with pytest.raises(Forbidden, match="managed by source `shop`"):
        manifests.delete_manifest(story.services, PLATFORM, "Application", "api")
    with pytest.raises(Forbidden, match="may not change Application `worker`"):
        manifests.delete_manifest(story.services, person("q", "qa"), "Application", "worker")
    gone = manifests.delete_manifest(story.services, CI, "Application", "worker")
    assert [c.model_dump() for c in gone.changes] == [
        {"kind": "Application", "name": "worker", "change": "deleted"}]
    assert "worker" not in current_bundle(story.services).applications


def test_a_developer_changes_only_the_applications_of_their_team(story):
    for name in ("dana", "erin"):
        identity.create_user(story.services, ADMIN, name, ["developer"])
    teams.create_team(story.services, ADMIN, "payments", handles={"github": "@acme/payments"})
    teams.create_team(story.services, ADMIN, "storefront")
    teams.set_membership(story.services, ADMIN, "payments", "dana", member=True)
    teams.set_membership(story.services, ADMIN, "storefront", "erin", member=True)
    dana, erin = person("dana", "developer"), person("erin", "developer")
    story.apply_manifests()
    api = (story.repo / "manifests" / "apps" / "api.yaml").read_text()
    owned = api.replace("  name: api\n", "  name: api\n  team: payments\n", 1)
    manifests.apply(story.services, dana, [("api.yaml", owned)])
    louder = owned.replace("value: info", "value: debug")
    with pytest.raises(Forbidden, match="belongs to team `payments`, and erin is not a member"):
        manifests.apply(story.services, erin, [("api.yaml", louder)])
    manifests.apply(story.services, dana, [("api.yaml", louder)])
    moved = louder.replace("team: payments", "team: storefront")
    with pytest.raises(Forbidden, match="team `storefront`"):
        manifests.apply(story.services, dana, [("api.yaml", moved)])
    manifests.apply(story.services, PLATFORM, [("api.yaml", moved)])  # platform governs
    quiet = moved.replace("value: debug", "value: warning")
    preview = manifests.apply(story.services, erin, [("api.yaml", quiet)], dry_run=True)
    (item,) = preview["objects"]
    assert preview["dryRun"] is True and item["change"] == "configured"
    assert item["before"]["spec"]["env"][1]["value"] == "debug"
    assert item["after"]["spec"]["env"][1]["value"] == "warning"
    assert current_bundle(story.services).applications["api"].spec.env[1].value == "debug"
