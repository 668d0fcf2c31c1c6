"""A stand-in for Argo CD or Flux: it "syncs" the bare repository's newest commit into the
status of its Application or Kustomization in the Kubernetes API emulator.

A fake only at our own interface: the target reads these objects through the real
Kubernetes API (lightkube, watch, the emulator's HTTP server) exactly as it reads them
from a cluster running the real agent. The controller polls the branch head of the
repository on disk and, `delay` seconds after it moves, writes what the agent would
report for it: synced and healthy, Degraded with Argo's message, Ready=False with
Flux's, or nothing at all (a stuck agent).
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from k8s_emulator import KubernetesEmulator

Outcome = Literal["healthy", "degraded", "silent"]
ARGO_DEGRADED = 'Deployment "api" exceeded its progress deadline'
FLUX_NOT_READY = ("health check failed after 30s: timeout waiting for: "
                  "[Deployment/shop-staging/api status: 'InProgress']")


@dataclass
class AgentController:
    cluster: KubernetesEmulator
    repo: Path
    kind: Literal["argocd", "flux"]
    name: str = "shop-staging"
    branch: str = "main"
    delay: float = 0.3
    outcome: Outcome = "healthy"
    synced: list[str] = field(default_factory=list)
    """Every commit the controller reported, in order."""
    synced_at: list[float] = field(default_factory=list)
    """When (time.time()) it reported each of them."""
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def namespace(self) -> str:
        return "argocd" if self.kind == "argocd" else "flux-system"

    def start(self) -> AgentController:
        if self.kind == "argocd":
            self.cluster.create({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"project": "default", "source": {
                    "repoURL": str(self.repo), "targetRevision": self.branch,
                    "path": "envs/staging"}, "destination": {
                    "server": "https://kubernetes.default.svc", "namespace": "shop-staging"}}})
        else:
            self.cluster.create({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"interval": "1m", "path": "./envs/staging", "prune": True,
                         "sourceRef": {"kind": "GitRepository", "name": "shop"}}})
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        seen = ""
        while not self._stop.wait(0.02):
            head = self._head()
            if not head or head == seen:
                continue
            seen = head
            time.sleep(self.delay)
            if self.outcome != "silent":
                self.cluster.write_status(self._plural(), self.namespace, self.name,
                                          self._status(head))
                self.synced.append(head)
                self.synced_at.append(time.time())

    def _plural(self) -> str:
        return "applications" if self.kind == "argocd" else "kustomizations"

    def _head(self) -> str:
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", self.branch],
                              cwd=self.repo, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    def _status(self, commit: str) -> dict[str, object]:
        healthy = self.outcome == "healthy"
        if self.kind == "argocd":
            health = {"status": "Healthy"} if healthy else {
                "status": "Degraded", "message": ARGO_DEGRADED}
            return {"sync": {"status": "Synced", "revision": commit}, "health": health,
                    "operationState": {"phase": "Succeeded",
                                       "message": "successfully synced (all tasks run)"}}
        revision = f"{self.branch}@sha1:{commit}"
        previous = f"{self.branch}@sha1:{self.synced[-1]}" if self.synced else ""
        ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                 "message": f"Applied revision: {revision}",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"} if healthy else {
            "type": "Ready", "status": "False", "reason": "HealthCheckFailed",
            "message": FLUX_NOT_READY, "lastTransitionTime": "2026-01-01T00:00:00Z"}
        return {"observedGeneration": 1, "lastAttemptedRevision": revision,
                "lastAppliedRevision": revision if healthy else previous,
                "conditions": [ready]}
