"""A real OpenID provider for the tests: the npm package `oidc-provider` (installed in
tests/npm by dev.sh) under Node on loopback, configured by tests/oidc/provider.mjs with the
client `infrastream-portal` and two people: `ada` in `qa-engineers`, `omar` in `sre-oncall`."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
SECRET = "portal-secret-for-tests"
CLIENT = "infrastream-portal"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class OpenIdProvider:
    issuer: str
    portal_port: int
    cli_port: int

    def set_groups(self, person: str, groups: list[str]) -> None:
        httpx.post(f"{self.issuer}/test/groups/{person}", json=groups).raise_for_status()

    @property
    def portal_callback(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}/portal/sign-in/oidc/callback"

    @property
    def cli_callback(self) -> str:
        return f"http://127.0.0.1:{self.cli_port}/callback"


@pytest.fixture()
def openid_provider() -> Iterator[OpenIdProvider]:
    port, portal_port, cli_port = free_port(), free_port(), free_port()
    found = OpenIdProvider(f"http://127.0.0.1:{port}", portal_port, cli_port)
    process = subprocess.Popen(
        ["node", str(HERE / "provider.mjs"), str(port), found.portal_callback,
         found.cli_callback],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("listening"):
                break
        else:
            pytest.fail(f"oidc-provider did not start (exit {process.wait()})")
        yield found
    finally:
        process.terminate()
        process.wait(timeout=10)


def log_in_through_provider(client: httpx.Client, url: str, person: str) -> httpx.Response:
    """Follow an authorization URL through oidc-provider's dev login and consent pages as
    `person`, up to (not into) the redirect back to the relying party."""
    answer = client.get(url, follow_redirects=True)
    for _ in range(4):
        form = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
        if form is None:
            break
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"',
                                 answer.text))
        if 'name="login"' in answer.text:
            fields.update(login=person, password="any")
        action = str(answer.url.join(form.group(1)))
        answer = client.post(action, data=fields)
        while answer.is_redirect and "/callback" not in answer.headers["location"]:
            answer = client.get(answer.url.join(answer.headers["location"]))
        if answer.is_redirect:
            return answer
    raise AssertionError(f"the provider did not redirect back: {answer.text[:400]}")
