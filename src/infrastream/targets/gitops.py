"""The `gitops` target: a release is a commit of rendered manifests that Argo CD or Flux syncs.

This is how platform teams that run Kargo or Argo CD promote: Infrastream never talks to
the cluster, it writes the desired state (`<app>.yaml` per application, see `render`) under
the environment's `path` and pushes one commit naming the release, its digest, the
environment and the person who promoted it. Content decides, not the deploy key: when the
rendered tree is already what the branch holds there is no commit at all, so a redeploy is
a no-op and a rollback (a redeploy of the earlier release) restores that release's tree
byte for byte.

Pushing races with people and other tools. A rejected push (the branch moved since our
fetch) is replayed onto the new head with `git rebase` and pushed again, a bounded number of
times with growing pauses; a rebase conflict is for a person to resolve (PermanentError).
Health is "the commit is on the remote branch"; `status` reads the branch head, so a hand
edit of the tree shows up as a different image or version.
"""

from __future__ import annotations

import fcntl
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.manifests import Environment
from infrastream.manifests.environment import GitOpsTarget as GitOpsSettings

from .base import AppStatus, DeployRequest, DeployResult, Health
from .gitops_clone import WorkingClone
from .render import describe_deployment, render_app, render_yaml


class GitOpsTarget:
    """Commits rendered manifests to each environment's GitOps repository and pushes them."""

    type_name = "gitops"

    def __init__(self, data_dir: Path, *, push_attempts: int = 5, backoff: float = 0.2,
                 git_timeout: float = 120.0) -> None:
        self.data_dir = data_dir
        self.push_attempts = push_attempts
        self.backoff = backoff
        self.git_timeout = git_timeout

    def deploy(self, request: DeployRequest) -> DeployResult:
        name = request.environment.metadata.name
        files = {f"{a.app}.yaml": render_yaml(render_app(
            a, environment=name, release=request.release, digest=request.digest))
            for a in request.apps}
        message = _commit_message(request)
        with self._clone(request.environment) as (clone, settings):
            commit, changed = self._converge(clone, _path(settings, name), files,
                                             prune=request.prune, message=message)
        statuses = tuple(AppStatus(
            app=a.app, version=a.version, image=a.image, health=Health.HEALTHY,
            release=request.release, deploy_key=request.key, detail=commit or "")
            for a in request.apps)
        summary = f"committed {commit} to {settings.branch}" if changed else "already deployed"
        return DeployResult(request.key, statuses, summary)

    def status(self, environment: Environment) -> tuple[AppStatus, ...]:
        with self._clone(environment) as (clone, settings):
            head = clone.fetch()
            if head is None:
                return ()
            files = clone.remote_files(_path(settings, environment.metadata.name))
        statuses: list[AppStatus] = []
        for file_name, text in sorted(files.items()):
            try:
                documents = list(yaml.safe_load_all(text))
            except yaml.YAMLError as exc:
                statuses.append(AppStatus(
                    app=file_name.rsplit(".", 1)[0], version="", image="",
                    health=Health.DEGRADED, detail=f"{file_name} is not valid YAML: {exc}"))
                continue
            for document in documents:
                deployed = describe_deployment(document) if isinstance(document, dict) else None
                if deployed is not None:
                    statuses.append(AppStatus(
                        app=deployed.app, version=deployed.version, image=deployed.image,
                        health=Health.HEALTHY, release=deployed.release, detail=head))
        return tuple(statuses)

    def teardown(self, environment: Environment) -> None:
        name = environment.metadata.name
        with self._clone(environment) as (clone, settings):
            self._converge(clone, _path(settings, name), {}, prune=True,
                           message=f"Tear down {name}\n\nEnvironment: {name}\n")

    def _converge(self, clone: WorkingClone, path: str, files: dict[str, str], *,
                  prune: bool, message: str) -> tuple[str | None, bool]:
        """Make the remote branch hold `files` under `path`: (head commit, whether we pushed)."""
        head = clone.fetch()
        clone.reset()
        clone.write(path, files, prune=prune)
        if not clone.stage(path):
            return head, False
        commit = clone.commit(message)
        for attempt in range(self.push_attempts):
            if clone.push():
                return commit, True
            time.sleep(self.backoff * (2 ** attempt) * (0.5 + random.random()))
            clone.fetch()
            if not clone.rebase():  # the remote already holds exactly our change
                return clone.remote_head(), False
            commit = clone.head()
        raise TransientError(f"the {clone.branch} branch kept moving: {self.push_attempts} "
                             "pushes were rejected; will try again")

    @contextmanager
    def _clone(self, environment: Environment) -> Iterator[tuple[WorkingClone, GitOpsSettings]]:
        """The environment's working clone, held exclusively (threads and processes)."""
        settings = environment.spec.target
        name = environment.metadata.name
        if not isinstance(settings, GitOpsSettings):
            raise PermanentError(f"environment {name} is not deployed by the gitops target")
        root = self.data_dir / "gitops"
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f".{name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                clone = WorkingClone(root / name, settings.repo, settings.branch,
                                     timeout=self.git_timeout)
                clone.open()
                yield clone, settings
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _path(settings: GitOpsSettings, environment: str) -> str:
    return settings.path or f"envs/{environment}"


def _commit_message(request: DeployRequest) -> str:
    name = request.environment.metadata.name
    apps = ", ".join(f"{a.app} {a.version}" for a in sorted(request.apps, key=lambda a: a.app))
    return (f"Deploy {request.release} to {name}\n\n"
            f"{apps or 'no applications'}\n\n"
            f"Release: {request.release}\n"
            f"Digest: {request.digest}\n"
            f"Environment: {name}\n"
            f"Promoted-by: {request.actor}\n"
            f"Deploy-key: {request.key}\n")
