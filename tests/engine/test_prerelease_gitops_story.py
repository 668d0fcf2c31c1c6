"""A pre-release run on a GitOps environment tests the PR build only once Argo CD has synced
it, and frees the environment only once the restore is synced too.

Development is a `gitops` environment observed through Argo CD (a test controller plays the
agent in the Kubernetes API emulator and syncs the bare repository's newest commit after a
delay). The PR build's integration test records when it ran and which version it saw; the
story compares that with when the agent reported each commit.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from story import CI, Story

from infrastream.service import prerelease

sys.path.insert(0, str(Path(__file__).parent.parent / "targets"))
from gitops_agent_fake import AgentController
from k8s_emulator import KubernetesEmulator, write_kubeconfig

MARKER = """\
import os, sys, time
with open(os.environ["RUN_LOG"], "a") as log:
    log.write(f"{time.time()} {os.environ['INFRASTREAM_VERSION']}\\n")
"""


@pytest.fixture
def cluster():
    emulator = KubernetesEmulator(namespaces={"argocd"}).start()
    yield emulator
    emulator.stop()


def test_a_pr_build_on_gitops_is_tested_after_argo_synced_it_and_restored_before_release(
        tmp_path, database_url, cluster, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(
        tmp_path / "kubeconfig", cluster.url, {"token": cluster.token})))
    remote = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    story = Story.begin(tmp_path, database_url, target="noop")
    agent = AgentController(cluster, remote, "argocd", name="shop-development",
                            delay=0.4).start()
    try:
        envs = story.repo / "manifests" / "environments.yaml"
        envs.write_text(envs.read_text().replace(
            "  tier: development\n  target:\n    type: noop",
            "  tier: development\n  target:\n    type: gitops\n"
            f"    repo: {remote}\n"
            "    argocd: {application: shop-development, namespace: argocd, "
            "context: emulator, timeout: 30s}"))
        log = tmp_path / "runs.log"
        (story.repo / "tests" / "marker.py").write_text(MARKER)
        api = story.repo / "manifests" / "apps" / "api.yaml"
        text = api.read_text()
        assert "integrationTests:" in text and "env:" in text
        text = text.replace("env:\n", f"env:\n    - name: RUN_LOG\n      value: {log}\n", 1)
        text = text.replace("tests/smoke_test.py", "tests/marker.py")
        api.write_text(text)
        story.apply_manifests()
        story.record_versions("1.0.0")
        v1 = story.cut_release()
        story.start_engine()
        story.wait_until(v1, lambda s: s["stages"][0]["state"] == "succeeded")
        synced_before = len(agent.synced)

        run = prerelease.start_prerelease(story.services, CI, "api",
                                          "registry.example.com/shop/api:pr-17", "pull/17")
        deadline = time.monotonic() + 60
        while prerelease.prerelease_status(story.services, run["id"])["state"] in (
                "queued", "running"):
            assert time.monotonic() < deadline, "the pre-release run did not finish"
            time.sleep(0.1)
        done = prerelease.prerelease_status(story.services, run["id"])
        assert done["state"] == "passed", done["summary"]
        assert done["restored"] is True

        tested_at, version = log.read_text().split()
        assert version == "pr-17"
        pr_commit, restore_commit = agent.synced[synced_before:synced_before + 2]
        pr_synced, restore_synced = agent.synced_at[synced_before:synced_before + 2]
        assert pr_synced < float(tested_at) < restore_synced
        finished = datetime.fromisoformat(done["finishedAt"])
        assert finished.astimezone(UTC).timestamp() >= restore_synced
        assert pr_commit != restore_commit
    finally:
        agent.stop()
        story.finish()
