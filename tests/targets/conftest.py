"""Fixtures for the cluster-backed targets: the Kubernetes API emulator and a kubeconfig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from k8s_emulator import KubernetesEmulator, write_kubeconfig

NAMESPACE = "shop-prod"


@pytest.fixture
def cluster() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespaces={NAMESPACE, "other-team", "argocd",
                                              "flux-system"}).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def kubeconfig(tmp_path: Path, cluster: KubernetesEmulator,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    """`$KUBECONFIG` with a context `emulator` that reaches the emulator with its token."""
    path = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, {"token": cluster.token})
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path
