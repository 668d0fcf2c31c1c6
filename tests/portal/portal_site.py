"""The portal tests' world: the example product on the `noop` target (1 s soak), its people,
release shop/v1 already cut, the engine running, and the API app with the portal mounted in
demo mode; clients that call the ASGI app in process, and a real uvicorn server.

(A module of its own, not conftest, so that test modules can import it by a unique name.)
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from infrastream.api.app import create_app
from infrastream.cli.manifest_files import read_sources
from infrastream.portal import mount_portal
from infrastream.service import identity, manifests, promotions, versions
from infrastream.service.context import Services, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.records.releases import ReleaseRef
from infrastream.service.releases import create_release
from infrastream.service.views.release_status import release_status

sys.path.insert(0, str(Path(__file__).parent.parent / "engine"))
from story import example_repo

PEOPLE: dict[str, list[str]] = {
    "pat": ["platform"], "dana": ["developer"], "rita": ["release-manager"], "quinn": ["qa"],
    "paula": ["product"], "sam": ["security"], "ivan": ["incident-commander"],
}
V1 = ReleaseRef("shop", "v1")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class InProcess(httpx.BaseTransport):
    """httpx's ASGI transport for a synchronous client: one event loop per request."""

    def __init__(self, app: FastAPI) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=body, request=request)

        return asyncio.run(call())


@dataclass
class Site:
    services: Services
    app: FastAPI
    tokens: dict[str, str]
    engine: Engine | None
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        client = httpx.Client(transport=InProcess(self.app), base_url="http://portal.test",
                              follow_redirects=False)
        self._clients.append(client)
        return client

    def signed_in(self, name: str) -> httpx.Client:
        """A client signed in as `name` through the sign-in form."""
        client = self.client()
        response = client.post("/portal/sign-in", data={"csrf": csrf_of(client),
                                                        "token": self.tokens[name]})
        assert response.status_code == 303, response.text
        return client

    def user(self, name: str) -> Any:
        return identity.get_user(self.services, name)

    def status(self, ref: ReleaseRef = V1) -> dict[str, Any]:
        return release_status(self.services, ref)

    def wait_until(self, condition: Callable[[dict[str, Any]], bool], ref: ReleaseRef = V1,
                   timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(ref)
            if condition(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; {ref} is at: {status['summary']}")
            time.sleep(0.05)

    def to_production_gate(self, ref: ReleaseRef = V1) -> dict[str, Any]:
        """Promote `ref` as the release manager until production waits for sign-off."""
        rita = self.user("rita")
        self.wait_until(lambda s: s["stages"][0]["state"] == "succeeded", ref)
        promotions.promote(self.services, rita, ref)
        self.wait_until(lambda s: s["stages"][1]["state"] in ("deploying", "verifying",
                                                              "succeeded"), ref)
        promotions.promote(self.services, rita, ref)
        return self.wait_until(lambda s: s["stages"][2]["state"] == "awaiting-approval", ref)

    def cut(self, tag: str) -> ReleaseRef:
        for app in ("api", "web", "worker"):
            versions.record_version(self.services, self.user("dana"), app,
                                    f"registry.example.com/shop/{app}:{tag}", "9c8b7a6")
        created = create_release(self.services, self.user("rita"), "shop")
        return ReleaseRef("shop", created["name"])

    def close(self) -> None:
        for client in self._clients:
            client.close()
        if self.engine is not None:
            self.engine.stop()
        self.services.db.dispose()


def csrf_of(client: httpx.Client, path: str = "/portal/sign-in") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)


def build_site(tmp_path: Path, *, engine: bool = True, demo: bool = True,
               sso: Any = None) -> Site:
    services = open_services(tmp_path / "data")
    admin = identity.authenticate(services, identity.bootstrap_admin(services))
    tokens = {name: identity.create_user(services, admin, name, roles).token
              for name, roles in PEOPLE.items()}
    repo = example_repo(tmp_path, target="noop", soak="1s")
    sources, _ = read_sources([str(repo)])
    manifests.apply(services, identity.get_user(services, "pat"), sources, str(repo))
    for app in ("api", "web", "worker"):
        versions.record_version(services, identity.get_user(services, "dana"), app,
                                f"registry.example.com/shop/{app}:1.0.0", "4f2a9c1")
    create_release(services, identity.get_user(services, "rita"), "shop")
    running = None
    if engine:
        running = Engine(services, poll=0.2)
        running.start()
    app = create_app(services)
    mount_portal(app, services, demo_tokens=tokens if demo else None, sso=sso)
    return Site(services, app, tokens, running)


@dataclass
class Served:
    site: Site
    url: str


@contextmanager
def serving(site: Site) -> Iterator[Served]:
    """`site` behind a real uvicorn server on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="uvicorn-portal-test")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the portal server did not start")
        time.sleep(0.01)
    try:
        yield Served(site, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
