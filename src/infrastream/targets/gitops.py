"""The `gitops` target: a release is a commit of rendered manifests that Argo CD or Flux syncs.

This is how platform teams that run Kargo or Argo CD promote: Infrastream writes the
desired state (`<app>.yaml` per application, see `render`, and the environment's release
record `infrastream-release.yaml`, see `release_record`) under the environment's `path`
and pushes one commit naming the release, its digest, the environment and the person who
promoted it. Content decides, not the deploy key: when the rendered tree is already what
the branch holds there is no commit at all, so a redeploy is a no-op, a rollback (a
redeploy of the earlier release) restores that release's tree byte for byte, and a release
that does not change an application does not touch its file.

Pushing races with people and other tools. A rejected push (the branch moved since our
fetch) is replayed onto the new head with `git rebase` and pushed again, a bounded number of
times with growing pauses; a rebase conflict is for a person to resolve (PermanentError).

Health: with an agent named (`argocd` or `flux`), the deployment returns once the agent
reports the branch head synced and healthy, and fails with the agent's message when it
reports a failure or its timeout passes (see `gitops_agents`); without one, "healthy" means
"the commit is on the remote branch". Secret values never go to Git: an `externalSecret`
route renders an ExternalSecret beside each application, a `cluster` route applies the
Secret to the cluster directly (see `gitops_cluster`). `status` reads the branch head, so a
hand edit of the tree shows up as a different image or version.
"""

from __future__ import annotations

import dataclasses
import fcntl
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.manifests import Environment
from infrastream.manifests.environment import GitOpsTarget as GitOpsSettings

from . import kubeconfig
from .base import AppDeployment, AppStatus, DeployRequest, DeployResult, Health
from .gitops_clone import WorkingClone
from .gitops_cluster import GitOpsCluster
from .kube_api import run
from .kubernetes import Resolver
from .release_record import merge_releases, recorded_releases, render_release_record
from .render import app_set_of, describe_deployment, render_app, render_yaml
from .render_secrets import render_external_secret

RECORD_FILE = "infrastream-release.yaml"


class GitOpsTarget:
    """Commits rendered manifests to each environment's GitOps repository and pushes them."""

    type_name = "gitops"

    def __init__(self, data_dir: Path, *, push_attempts: int = 5, backoff: float = 0.2,
                 git_timeout: float = 120.0, resolve: Resolver | None = None) -> None:
        self.data_dir = data_dir
        self.push_attempts = push_attempts
        self.backoff = backoff
        self.git_timeout = git_timeout
        self.cluster = GitOpsCluster(resolve or kubeconfig.resolve)

    def deploy(self, request: DeployRequest) -> DeployResult:
        settings = _settings(request.environment)
        name = request.environment.metadata.name
        app_set = app_set_of(request.release)
        files = {f"{a.app}.yaml": render_yaml(_objects(a, request, settings, app_set))
                 for a in request.apps}
        route = settings.secrets.cluster if settings.secrets else None
        if route is not None:
            run(self.cluster.apply_secrets(request, route))

        def record(recorded: dict[str, str]) -> str:
            apps = merge_releases(recorded, request.release, [a.app for a in request.apps],
                                  prune=request.prune)
            return render_yaml([render_release_record(
                name, release=request.release, digest=request.digest, apps=apps)])

        with self._clone(request.environment) as clone:
            commit, changed = self._converge(clone, _path(settings, name), files,
                                             prune=request.prune, record=record,
                                             message=_commit_message(request))
        detail = commit or ""
        if commit and (settings.argocd or settings.flux):
            detail = run(self.cluster.await_agent(settings, commit, lambda revision: (
                self._contains(request.environment, revision, commit))))
        statuses = tuple(AppStatus(
            app=a.app, version=a.version, image=a.image, health=Health.HEALTHY,
            endpoint=_endpoint(settings, a.app, name), release=request.release,
            deploy_key=request.key, detail=detail) for a in request.apps)
        summary = f"committed {commit} to {settings.branch}" if changed else "already deployed"
        return DeployResult(request.key, statuses, summary if detail == commit else
                            f"{summary}; {detail}")

    def status(self, environment: Environment) -> tuple[AppStatus, ...]:
        settings = _settings(environment)
        name = environment.metadata.name
        with self._clone(environment) as clone:
            head = clone.fetch()
            if head is None:
                return ()
            files = clone.remote_files(_path(settings, name))
        releases: dict[str, str] = {}
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
                if file_name == RECORD_FILE and isinstance(document, dict):
                    releases = recorded_releases(document)
                deployed = describe_deployment(document) if isinstance(document, dict) else None
                if deployed is not None:
                    statuses.append(AppStatus(
                        app=deployed.app, version=deployed.version, image=deployed.image,
                        health=Health.HEALTHY, endpoint=_endpoint(settings, deployed.app, name),
                        release=deployed.release, detail=head))
        return tuple(dataclasses.replace(s, release=releases.get(s.app, s.release))
                     for s in statuses)

    def teardown(self, environment: Environment) -> None:
        settings = _settings(environment)
        name = environment.metadata.name
        with self._clone(environment) as clone:
            self._converge(clone, _path(settings, name), {}, prune=True, record=None,
                           message=f"Tear down {name}\n\nEnvironment: {name}\n")
        if settings.secrets and settings.secrets.cluster:
            run(self.cluster.remove_secrets(name, settings.secrets.cluster))

    def _converge(self, clone: WorkingClone, path: str, files: dict[str, str], *,
                  prune: bool, record: Callable[[dict[str, str]], str] | None,
                  message: str) -> tuple[str | None, bool]:
        """Make the remote branch hold `files` (and the release record, merged with the one
        it holds) under `path`: (head commit, whether we pushed)."""
        head = clone.fetch()
        clone.reset()
        if record is not None:
            current = clone.read_yaml(path, RECORD_FILE)
            files = {**files, RECORD_FILE: record(recorded_releases(current))}
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

    def _contains(self, environment: Environment, revision: str, commit: str) -> bool:
        """Whether `revision` (reported by the agent) holds `commit`; fetches once when
        the clone does not know `revision` yet."""
        with self._clone(environment) as clone:
            known = clone.contains(revision, commit)
            if known is None:
                clone.fetch()
                known = clone.contains(revision, commit)
        return bool(known)

    @contextmanager
    def _clone(self, environment: Environment) -> Iterator[WorkingClone]:
        """The environment's working clone, held exclusively (threads and processes)."""
        settings = _settings(environment)
        name = environment.metadata.name
        root = self.data_dir / "gitops"
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f".{name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                clone = WorkingClone(root / name, settings.repo, settings.branch,
                                     timeout=self.git_timeout)
                clone.open()
                yield clone
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _settings(environment: Environment) -> GitOpsSettings:
    settings = environment.spec.target
    if not isinstance(settings, GitOpsSettings):
        raise PermanentError(
            f"environment {environment.metadata.name} is not deployed by the gitops target")
    return settings


def _objects(app: AppDeployment, request: DeployRequest, settings: GitOpsSettings,
             app_set: str) -> list[dict[str, Any]]:
    """What `<app>.yaml` holds: the application's objects, and its ExternalSecret when the
    environment's secrets come from an external store."""
    name = request.environment.metadata.name
    objects = render_app(app, request.environment, app_set=app_set)
    external = settings.secrets.external_secret if settings.secrets else None
    if external is not None:
        secret = render_external_secret(app, name, external, app_set=app_set)
        objects += [secret] if secret is not None else []
    return objects


def _endpoint(settings: GitOpsSettings, app: str, environment: str) -> str | None:
    return settings.endpoints.url(app, environment=environment) if settings.endpoints else None


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
