"""Targets by type name, so the engine asks for `local` or `gitops` and never imports a backend.

A registry is built for one data directory (targets that keep state put it there) and
creates each target lazily, once: one instance serves every environment of its type. Tests
and plugins `register` their own factory under a name, replacing a built-in one if they like.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from infrastream.domain.errors import PermanentError
from infrastream.manifests import Environment

from .base import Target
from .gitops import GitOpsTarget
from .kubernetes import KubernetesTarget
from .local import LocalTarget
from .noop import NoopTarget

TargetFactory = Callable[[Path], Target]
"""Builds a target given the data directory it may keep state in."""

BUILTIN: dict[str, TargetFactory] = {
    "local": lambda data_dir: LocalTarget(data_dir),
    "noop": lambda data_dir: NoopTarget(data_dir),
    "gitops": lambda data_dir: GitOpsTarget(data_dir),
    "kubernetes": lambda data_dir: KubernetesTarget(data_dir),
}
"""The kubernetes target finds its cluster from each environment's `context` ($KUBECONFIG or
~/.kube/config) or, without one, from the pod's service account; a test or an embedding
registers `KubernetesTarget(data_dir, resolve=…)` to point it elsewhere."""


class TargetRegistry:
    def __init__(self, data_dir: Path, *, builtin: bool = True) -> None:
        self.data_dir = data_dir
        self._factories: dict[str, TargetFactory] = dict(BUILTIN) if builtin else {}
        self._targets: dict[str, Target] = {}
        self._lock = threading.Lock()

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def register(self, type_name: str, factory: TargetFactory | Target) -> None:
        """Make `type_name` served by `factory`, or by a ready-made target instance."""
        with self._lock:
            self._targets.pop(type_name, None)
            if callable(factory):
                self._factories[type_name] = factory
            else:
                instance = factory
                self._factories[type_name] = lambda _data_dir: instance
                self._targets[type_name] = instance

    def get_target(self, type_name: str) -> Target:
        """The target of `type_name`; PermanentError when no such target is available."""
        with self._lock:
            if type_name not in self._targets:
                factory = self._factories.get(type_name)
                if factory is None:
                    known = ", ".join(sorted(self._factories)) or "none"
                    raise PermanentError(
                        f"no `{type_name}` target is available here (available: {known})",
                        type_name=type_name)
                self._targets[type_name] = factory(self.data_dir)
            return self._targets[type_name]

    def for_environment(self, environment: Environment) -> Target:
        """The target that deploys `environment`, chosen by its `spec.target.type`."""
        return self.get_target(environment.spec.target.type)
