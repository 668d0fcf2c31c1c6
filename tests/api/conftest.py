"""A real Infrastream API server for the tests: uvicorn on a free loopback port, in a thread.

Each test gets its own database (SQLite file or PostgreSQL, via `database_url`), its own
services and engine, the `admin` bootstrap token, and the `init` example repository on the
`noop` target, so nothing is spawned. Clients talk HTTP to the server with httpx.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from infrastream.api.app import create_app
from infrastream.cli.manifest_files import read_sources
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.identity import bootstrap_admin

sys.path.insert(0, str(Path(__file__).parent.parent / "engine"))
from story import example_repo

#: The people of the stories, by user name, with their roles.
PEOPLE: dict[str, list[str]] = {
    "pat": ["platform"],
    "ci-bot": ["developer"],
    "rita": ["release-manager"],
    "quinn": ["qa"],
    "paula": ["product"],
    "sam": ["security"],
}


def _without_checks(text: str) -> str:
    documents = list(yaml.safe_load_all(text))
    for document in documents:
        spec = document.get("spec") if isinstance(document, dict) else None
        for stage in (spec or {}).get("releaseStages", []):
            stage.pop("checks", None)
    return yaml.safe_dump_all(documents, sort_keys=False)


@dataclass
class Api:
    """The running server: its URL, services, admin token and example repository."""

    url: str
    services: Services
    admin_token: str
    repo: Path
    tokens: dict[str, str] = field(default_factory=dict)
    engine: Engine | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=15)
        self._clients.append(client)
        return client

    def as_user(self, name: str) -> httpx.Client:
        return self.client(self.tokens[name])

    @property
    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    def manifest_body(self, *, checks: bool = True) -> dict[str, Any]:
        """The example's manifests as an apply request; `checks=False` drops the stage checks
        (the noop target skips all but the soak, which still takes its 1 s)."""
        sources, _ = read_sources([str(self.repo)])
        if not checks:
            sources = [(s, _without_checks(t) if s.endswith("track.yaml") else t)
                       for s, t in sources]
        return {"sources": [{"source": s, "text": t} for s, t in sources],
                "sourceRoot": str(self.repo)}

    def close(self) -> None:
        for client in self._clients:
            client.close()


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener says so, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    services = open_services(tmp_path / "data", database_url)
    token = bootstrap_admin(services)
    assert token is not None
    # the live health pass audits changes at its own pace; these stories read exact audit
    # trails, so it looks only once (the health stories are tests/cli/live/test_health_story)
    engine = Engine(services, poll=0.5, health_every=3600)
    engine.start()
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    api: Api | None = None
    try:
        server, thread, url = _serve(create_app(services))
        api = Api(url, services, token, example_repo(tmp_path, target="noop"),
                  engine=engine)
        yield api
    finally:
        if api is not None:
            api.close()
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
        engine.stop()
        services.db.dispose()


@pytest.fixture
def people(api: Api) -> Api:
    """`api` with the users of PEOPLE created over HTTP by the admin; tokens in api.tokens."""
    admin = api.admin
    for name, roles in PEOPLE.items():
        response = admin.post("/api/v1/users", json={"name": name, "roles": roles})
        assert response.status_code == 201, response.text
        api.tokens[name] = response.json()["token"]
    return api


@pytest.fixture
def serve_app() -> Any:
    """`_serve` for tests that build their own app (e.g. on a database they then drop)."""
    return _serve
