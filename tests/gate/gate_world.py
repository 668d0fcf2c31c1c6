"""The world of the gate stories: a real Infrastream server, a fake Git host, the shop.

An Infrastream API server (uvicorn on a loopback port, in a thread) with its engine, over
SQLite or PostgreSQL; the `init` example shop on the `local` target, so pull-request builds
really run as processes beside the other applications; the fake GitHub or GitLab of
`infrastream.scm` on its own port, which the connection's statuses really reach. Webhooks are
signed (GitHub) or carry the secret token (GitLab) and are POSTed to the server over HTTP.
GitHub payloads are the real examples of `@octokit/webhooks-examples`, changed only where
the story needs another repository, number or commit.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from infrastream.api.app import create_app
from infrastream.cli.manifest_files import read_sources
from infrastream.manifests.environment import default_environment
from infrastream.portal.app import mount_portal
from infrastream.scm.fake_github import FakeGitHub
from infrastream.scm.fake_gitlab import FakeGitLab
from infrastream.scm.github_webhooks import signature
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.identity import bootstrap_admin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scm"))
from scm_payloads import github_examples, gitlab_hook
from story import example_repo

PEOPLE = {"pat": ["platform"], "ci-bot": ["developer"], "rita": ["release-manager"]}
SECRET = "whsec-7d1f0c2b9e4a"
REPOSITORY = "octo-org/shop-api"
PROJECT = "platform/shop/api"
ZERO = "0" * 40


def sha(label: str) -> str:
    """A 40-hex commit id that reads like its label in failures (`ab12…`)."""
    return uuid.uuid5(uuid.NAMESPACE_OID, label).hex + uuid.uuid5(
        uuid.NAMESPACE_URL, label).hex[:8]


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, host="127.0.0.1", port=sock.getsockname()[1],
                            log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="uvicorn-gate")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


SLOW_MOST = 60
"""Seconds a `-slow` build's integration test runs at most (`Gate.slow_gate`)."""

@dataclass
class Gate:
    """The running world: the server's URL and services, the fake host, the shop's files."""

    url: str
    services: Services
    repo: Path
    host: FakeGitHub | FakeGitLab
    kind: str
    admin_token: str
    tokens: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)
    slow_gate: Path | None = None
    """While this file is missing, an integration test of a `-slow` build keeps running (at
    most SLOW_MOST seconds): a story does what it must while a run is busy, then lets it end."""

    @property
    def repository(self) -> str:
        return REPOSITORY if self.kind == "github" else PROJECT

    def let_slow_runs_finish(self) -> None:
        assert self.slow_gate is not None
        self.slow_gate.touch()

    # -- people and manifests -------------------------------------------------------------

    def as_user(self, name: str | None) -> httpx.Client:
        token = self.tokens[name] if name else self.admin_token
        client = httpx.Client(base_url=self.url, timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        self.clients.append(client)
        return client

    def portal(self, name: str) -> httpx.Client:
        """A browser-like client signed in to the Portal as `name` through its form."""
        client = httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)
        self.clients.append(client)
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/portal/sign-in").text)
        assert csrf is not None
        response = client.post("/portal/sign-in", data={"csrf": csrf.group(1),
                                                        "token": self.tokens[name]})
        assert response.status_code == 303, response.text
        return client

    def cli(self, user: str, *args: str,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`infrastream ARGS…` as a real process, talking to this server as `user`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFRASTREAM_")}
        env.update(INFRASTREAM_URL=self.url, INFRASTREAM_TOKEN=self.tokens[user],
                   INFRASTREAM_CONFIG=str(self.repo.parent / "no-login.json"), NO_COLOR="1",
                   COLUMNS="200", PYTHONIOENCODING="utf-8")
        return subprocess.run([sys.executable, "-m", "infrastream.cli.main", *args],
                              input=stdin if stdin is not None else "", capture_output=True,
                              text=True, env=env, timeout=60, check=False)

    def connect(self, **extra: Any) -> dict[str, Any]:
        """`pat` connects the fake host as connection `<kind>` (what `scm add` sends)."""
        body = {"type": self.kind, "name": self.kind, "token": self.host.token,
                "webhookSecret": SECRET, "baseUrl": self.host.base_url, **extra}
        response = self.as_user("pat").post("/api/v1/scm/connections", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def apply(self, *, track: dict[str, Any] | None = None,
              apps: dict[str, dict[str, Any]] | None = None) -> None:
        """Apply the shop with changes to the track's spec and to apps' specs."""
        sources, _ = read_sources([str(self.repo)])
        changed = []
        for source, text in sources:
            documents = list(yaml.safe_load_all(text))
            for document in documents:
                if not isinstance(document, dict):
                    continue
                name = document["metadata"]["name"]
                if document["kind"] == "ReleaseTrack" and track:
                    document["spec"].update(track)
                if document["kind"] == "Application" and apps and name in apps:
                    document["spec"].update(apps[name])
            changed.append({"source": source, "text": yaml.safe_dump_all(documents)})
        response = self.as_user("pat").post("/api/v1/manifests", json={
            "sources": changed, "sourceRoot": str(self.repo)})
        assert response.status_code == 200, response.text

    def record(self, app: str, image: str, commit: str, *,
               pull_request: int | None = None) -> dict[str, Any]:
        """CI records a build (`version record … [--pull-request N]`)."""
        ci = self.as_user("ci-bot")
        if pull_request is None:
            response = ci.post(f"/api/v1/applications/{app}/versions",
                               json={"image": image, "commit": commit})
        else:
            response = ci.post(f"/api/v1/applications/{app}/pull-request-builds",
                               json={"image": image, "commit": commit,
                                     "pullRequest": pull_request})
        assert response.status_code == 201, response.text
        return dict(response.json())

    # -- deliveries -----------------------------------------------------------------------

    def post(self, event: str, payload: dict[str, Any], *, secret: str | None = SECRET,
             delivery: str | None = None, connection: str | None = None) -> httpx.Response:
        """Deliver `payload` as the host would: GitHub signs it, GitLab sends its token."""
        body = json.dumps(payload).encode()
        delivery = delivery or str(uuid.uuid4())
        headers = {"Content-Type": "application/json"}
        if self.kind == "github":
            headers.update({"X-GitHub-Event": event, "X-GitHub-Delivery": delivery})
            if secret is not None:
                headers["X-Hub-Signature-256"] = signature(secret, body)
        else:
            headers.update({"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery})
            if secret is not None:
                headers["X-Gitlab-Token"] = secret
        return httpx.post(f"{self.url}/api/v1/scm/{connection or self.kind}/webhook",
                          content=body, headers=headers, timeout=30)

    def opened(self, number: int, head: str, **options: Any) -> httpx.Response:
        return self._pull_request("opened", number, head, **options)

    def pushed_to_pull_request(self, number: int, head: str, before: str) -> httpx.Response:
        return self._pull_request("synchronize", number, head, before=before)

    def closed(self, number: int, head: str) -> httpx.Response:
        return self._pull_request("closed", number, head)

    def merged(self, sha_: str, *, files: tuple[str, ...] = ("README.md",),
               pusher: str = "octocat", repository: str | None = None) -> httpx.Response:
        """A push of merge commit `sha_` to the default branch `main`."""
        if self.kind == "github":
            payload = copy.deepcopy(next(p for p in github_examples("push")
                                         if p["ref"] == "refs/heads/master"))
            payload["repository"].update(full_name=repository or REPOSITORY,
                                         default_branch="main")
            payload.update(ref="refs/heads/main", before=sha("before-" + sha_), after=sha_)
            payload["pusher"]["name"] = pusher
            payload["commits"] = [{**payload["commits"][0], "id": sha_, "added": [],
                                   "modified": list(files), "removed": []}]
            return self.post("push", payload)
        payload = copy.deepcopy(gitlab_hook("push"))
        payload["project"].update(path_with_namespace=repository or PROJECT,
                                  default_branch="main")
        payload.update(ref="refs/heads/main", before=sha("before-" + sha_), after=sha_,
                       user_username=pusher, total_commits_count=1)
        payload["commits"] = [{**payload["commits"][0], "id": sha_, "added": [],
                               "modified": list(files), "removed": []}]
        return self.post("Push Hook", payload)

    def _pull_request(self, action: str, number: int, head: str, *, before: str | None = None,
                      author: str = "octocat", repository: str | None = None,
                      **delivery: Any) -> httpx.Response:
        """A pull request event (in `repository`, by default the shop's); `delivery` options
        (secret, delivery id) go to `post`."""
        if self.kind == "github":
            payload = copy.deepcopy(next(p for p in github_examples("pull_request")
                                         if p["action"] == action))
            name = repository or REPOSITORY
            payload["repository"]["full_name"] = name
            payload["number"] = number
            pr = payload["pull_request"]
            pr.update(number=number, merged=False, html_url=(
                f"https://github.com/{name}/pull/{number}"))
            pr["head"]["sha"] = head
            pr["head"]["repo"]["full_name"] = name
            pr["base"].update(ref="main")
            pr["user"]["login"] = author
            if before is not None:
                payload["before"] = before
            return self.post("pull_request", payload, **delivery)
        actions = {"opened": "open", "synchronize": "update", "closed": "close"}
        payload = copy.deepcopy(gitlab_hook("merge_request"))
        payload["project"]["path_with_namespace"] = repository or PROJECT
        payload["user"]["username"] = author
        attributes = payload["object_attributes"]
        attributes.update(action=actions[action], iid=number, target_branch="main",
                          url=f"{self.host.root_url}/{PROJECT}/-/merge_requests/{number}")
        attributes["last_commit"]["id"] = head
        attributes["source"]["path_with_namespace"] = repository or PROJECT
        if before is not None:
            attributes["oldrev"] = before
        return self.post("Merge Request Hook", payload, **delivery)

    # -- what the host shows --------------------------------------------------------------

    def statuses(self, sha_: str,
                 context: str = "infrastream/pre-release") -> list[dict[str, Any]]:
        """Every status the host took for `sha_` in `context`, oldest first, as {state,
        description, url}: GitHub's list of statuses; GitLab keeps one status per job and
        moves it on, so its history is the requests it accepted."""
        if isinstance(self.host, FakeGitHub):
            return [{"state": s["state"], "description": s.get("description", ""),
                     "url": s.get("target_url")} for s in self.host.statuses(REPOSITORY, sha_)
                    if s.get("context") == context]
        return [{"state": body["state"], "description": body.get("description") or "",
                 "url": body.get("target_url")} for body in self.posted(sha_)
                if body.get("name") == context]

    def sent(self, sha_: str) -> list[dict[str, Any]]:
        """What Infrastream delivered for `sha_` (its `scm deliveries`), oldest first. GitLab
        keeps a pending status's first description (it refuses pending → pending), so what
        was said later shows here and in the Portal."""
        listed = self.as_user("ci-bot").get("/api/v1/scm/deliveries",
                                            params={"limit": 500}).json()["statuses"]
        return [s for s in reversed(listed) if s["sha"] == sha_]

    def posted(self, sha_: str) -> list[dict[str, Any]]:
        """The bodies of the status requests for `sha_` the host accepted, oldest first."""
        marker = f"/statuses/{sha_}"
        return [r.body for r in self.host.requests
                if r.method == "POST" and r.path.endswith(marker) and r.status < 300]

    def wait_for(self, what: Callable[[], Any], timeout: float = 60,
                 message: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {message or what}")

    def wait_state(self, sha_: str, state: str, context: str = "infrastream/pre-release",
                   timeout: float = 60) -> dict[str, Any]:
        def latest() -> dict[str, Any] | None:
            found = self.statuses(sha_, context)
            return found[-1] if found and found[-1]["state"] == state else None
        try:
            return dict(self.wait_for(latest, timeout))
        except AssertionError:
            raise AssertionError(f"{sha_[:7]} never showed {state} in {context}: "
                                 f"{self.statuses(sha_, context)}") from None

    def close(self) -> None:
        for client in self.clients:
            client.close()


@contextmanager
def gate_world(tmp_path: Path, database_url: str, kind: str) -> Iterator[Gate]:
    services = open_services(tmp_path / "data", database_url)
    admin = bootstrap_admin(services)
    assert admin is not None
    host: FakeGitHub | FakeGitLab = FakeGitHub(repositories=[REPOSITORY]) \
        if kind == "github" else FakeGitLab(projects=[PROJECT])
    host.start()
    engine = Engine(services, poll=0.2)
    engine.start()
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    gate: Gate | None = None
    try:
        app = create_app(services)
        mount_portal(app, services)
        server, thread, url = _serve(app)
        repo = example_repo(tmp_path)
        smoke = repo / "tests" / "smoke_test.py"
        slow_gate = tmp_path / "slow-runs-may-finish"
        smoke.write_text(smoke.read_text() + (
            "\nimport time\n"
            "if os.environ.get('INFRASTREAM_VERSION', '').endswith('-slow'):\n"
            f"    deadline = time.monotonic() + {SLOW_MOST}\n"
            f"    while not os.path.exists({str(slow_gate)!r}) and time.monotonic() < deadline:\n"
            "        time.sleep(0.05)\n"
            "if os.environ.get('INFRASTREAM_VERSION', '').endswith('-broken'):\n"
            "    sys.exit('FAIL checkout returns 500 for an empty cart')\n"))
        gate = Gate(url, services, repo, host, kind, admin, slow_gate=slow_gate)
        for name, roles in PEOPLE.items():
            response = gate.as_user(None).post("/api/v1/users",
                                               json={"name": name, "roles": roles})
            assert response.status_code == 201, response.text
            gate.tokens[name] = response.json()["token"]
        yield gate
    finally:
        if gate is not None:
            gate.close()
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
        engine.stop()
        host.stop()
        local = services.targets.get_target("local")
        for env in ("development", "staging", "production"):
            local.teardown(default_environment(env))
        services.db.dispose()
