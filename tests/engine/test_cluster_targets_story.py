"""Issue 5's story: a three-application release through development (local processes),
staging (a GitOps repository: a bare repo on disk as the remote) and production (a cluster:
the Kubernetes API emulator on loopback). Every rendered object is schema-valid; a redeploy
is a no-op; a rollback through GitOps restores the previous tree exactly; hand edits of the
tree or of a cluster object show up as drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml
from sqlalchemy import select
from story import PLATFORM, RELEASE_MANAGER, Story

from infrastream.domain.errors import Conflict, Forbidden
from infrastream.service.auditing import view as audit_view
from infrastream.service.drift import drift_report
from infrastream.service.engine.deploy_job import deploy_request
from infrastream.service.records.releases import find
from infrastream.service.rollback import rollback
from infrastream.service.teardown import teardown
from infrastream.service.views.environment_matrix import environment_matrix
from infrastream.service.views.environments import environment_overview
from infrastream.service.views.tracks_overview import tracks_overview
from infrastream.store.tables import deployments

sys.path.insert(0, str(Path(__file__).parent.parent / "targets"))
from k8s_emulator import KubernetesEmulator

NAMESPACE = "shop-prod"
TRACK = """\
apiVersion: lowops.manifests.v1
kind: ReleaseTrack
metadata: {name: shop-track}
spec:
  releaseStages:
    - environments: [development]
      checks: [{type: integration-tests}]
    - environments: [staging]
    - environments: [production]
      approvals: [{role: qa}, {role: product}, {role: security}]
---
apiVersion: lowops.manifests.v1
kind: ApplicationSet
metadata: {name: shop, parent: {kind: ReleaseTrack, name: shop-track}}
"""
ENVIRONMENTS = """\
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {{name: development}}
spec: {{tier: development, target: {{type: local}}}}
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {{name: staging}}
spec: {{tier: staging, target: {{type: gitops, repo: "{repo}", branch: main}}}}
---
apiVersion: lowops.manifests.v1
kind: Environment
metadata: {{name: production}}
spec: {{tier: production, target: {{type: kubernetes, namespace: {namespace}, context: emulator}}}}
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def cluster():
    emulator = KubernetesEmulator(namespaces={NAMESPACE}).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def remote(tmp_path):
    """The GitOps repository's remote: a bare repository on disk."""
    path = tmp_path / "gitops.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
    return path


@pytest.fixture
def story(tmp_path, database_url, cluster, remote, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulated", "cluster": {"server": cluster.url}}],
        "users": [{"name": "deployer", "user": {"token": cluster.token}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulated",
                                                      "user": "deployer"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    story = Story.begin(tmp_path, database_url)
    (story.repo / "manifests" / "track.yaml").write_text(TRACK)
    (story.repo / "manifests" / "environments.yaml").write_text(
        ENVIRONMENTS.format(repo=remote, namespace=NAMESPACE))
    yield story
    story.finish()


def _commits(remote: Path) -> list[str]:
    return git(remote, "log", "--format=%H %s", "main").splitlines()


def _tree(remote: Path, rev: str) -> str:
    return git(remote, "rev-parse", f"{rev}^{{tree}}")


def _versions(cluster: KubernetesEmulator) -> dict[str, tuple[str, str]]:
    found = {}
    for app in ("api", "web", "worker"):
        deployment = cluster.get("deployments", NAMESPACE, app)
        assert deployment is not None, app
        found[app] = (deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                      deployment["metadata"]["resourceVersion"])
    return found


def test_a_release_goes_through_local_gitops_and_kubernetes_and_drift_is_seen(
        story, cluster, remote):
    story.apply_manifests()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.start_engine()
    story.to_production(v1)

    (first,) = _commits(remote)
    assert "shop/v1" in first and "staging" in first
    files = git(remote, "ls-tree", "-r", "--name-only", "main").splitlines()
    assert sorted(files) == ["envs/staging/api.yaml", "envs/staging/infrastream-release.yaml",
                             "envs/staging/web.yaml", "envs/staging/worker.yaml"]
    for name in files:
        for obj in yaml.safe_load_all(git(remote, "show", f"main:{name}")):
            kubernetes_validate.validate(obj, "1.30.0", strict=True)
    applied = _versions(cluster)
    assert {app: image for app, (image, _) in applied.items()} == {
        app: f"registry.example.com/shop/{app}:1.0.0" for app in ("api", "web", "worker")}
    assert all(r["state"] == "in-sync" for r in drift_report(story.services))

    # a redeploy of the same release is a no-op: no commit, no changed object
    with story.services.db.connect() as conn:
        release = find(conn, v1)
        rows = conn.execute(select(deployments).where(deployments.c.release_id == release.id)
                            ).all()
    for row in rows:
        if row.environment in ("staging", "production"):
            request = deploy_request(story.services, release, row, "rita")
            story.services.targets.for_environment(request.environment).deploy(request)
    assert len(_commits(remote)) == 1
    assert _versions(cluster) == applied

    story.record_versions("2.0.0")
    v2 = story.cut_release()
    story.to_production(v2)
    assert len(_commits(remote)) == 2
    rollback(story.services, RELEASE_MANAGER, "staging", reason="v2 breaks checkout")
    story.wait_until(v2, lambda s: bool(s["rolledBack"])
                     and s["rolledBack"][0]["state"] == "healthy")
    commits = _commits(remote)
    assert len(commits) == 3 and "shop/v1" in commits[0]
    assert _tree(remote, "main") == _tree(remote, commits[2].split()[0])

    person = remote.parent / "person"
    git(remote.parent, "clone", "-q", str(remote), str(person))
    git(person, "config", "user.email", "ops@example.com")
    git(person, "config", "user.name", "Ops")
    text = (person / "envs/staging/api.yaml").read_text()
    (person / "envs/staging/api.yaml").write_text(text.replace("api:1.0.0", "api:debug"))
    git(person, "commit", "-q", "-am", "debug build")
    git(person, "push", "-q", "origin", "HEAD:main")
    deployment = cluster.get("deployments", NAMESPACE, "web")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "registry.example.com/shop/web:hotpatched"
    edited = httpx.patch(f"{cluster.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web",
                         json={"spec": {"template": {"spec": {"containers": containers}}}},
                         headers={"Content-Type": "application/merge-patch+json",
                                  "Authorization": f"Bearer {cluster.token}"})
    assert edited.status_code == 200

    report = {r["environment"]: r for r in drift_report(story.services)}
    assert report["staging"]["state"] == "drifted"
    assert report["staging"]["differences"] == [
        "api: expected registry.example.com/shop/api:1.0.0, runs "
        "registry.example.com/shop/api:debug"]
    assert report["production"]["differences"] == [
        "web: expected registry.example.com/shop/web:2.0.0, runs "
        "registry.example.com/shop/web:hotpatched"]
    assert report["development"]["state"] == "in-sync"


def _pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_teardown_stops_what_each_target_runs_and_nothing_counts_as_running_after_it(
        story, cluster, remote):
    story.apply_manifests()
    story.record_versions("1.0.0")
    v1 = story.cut_release()
    story.start_engine()
    story.to_production(v1)
    state = story.services.data_dir / "local" / "development" / "state.json"
    pids = [r["pid"] for r in json.loads(state.read_text())["apps"].values()]
    assert pids and all(_pid_alive(p) for p in pids)
    assert cluster.get("deployments", NAMESPACE, "api") is not None

    with pytest.raises(Forbidden):
        teardown(story.services, RELEASE_MANAGER, "development", "not mine")
    for env in ("development", "staging", "production"):
        done = teardown(story.services, PLATFORM, env, "end of the test")
        assert done["release"] == str(v1)

    assert not any(_pid_alive(p) for p in pids)  # local: the processes
    assert all(cluster.get("deployments", NAMESPACE, app) is None  # kubernetes: its objects
               for app in ("api", "web", "worker"))
    assert git(remote, "ls-tree", "-r", "--name-only", "main") == ""  # gitops: a commit
    assert _commits(remote)[0].split(" ", 1)[1] == "Tear down staging"

    assert environment_overview(story.services) == []
    assert drift_report(story.services) == []
    assert [r["release"] for r in environment_matrix(story.services)["environments"]] == [
        None, None, None]
    cells = [c for t in tracks_overview(story.services) for lane in t["lanes"]
             for stage in lane["stages"] for c in stage["cells"]]
    assert cells and all(c["running"] is None and c["state"] == "empty" for c in cells)
    with pytest.raises(Conflict, match="since its teardown"):
        rollback(story.services, RELEASE_MANAGER, "production", reason="after a teardown")
    entries = [e for e in audit_view.list_entries(story.services, limit=500)
               if e["action"] == "environment.teardown"]
    assert sorted(e["objectId"] for e in entries) == ["development", "production", "staging"]
    assert all(e["after"]["reason"] == "end of the test" for e in entries)
