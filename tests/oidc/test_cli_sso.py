"""`infrastream login --sso` end to end: a real `infrastream serve` process configured with
the real oidc-provider (under Node) and its public CLI client, the CLI as a real subprocess
running the device authorization grant, and the person approving on the provider's device
pages in Debian's Chromium. The token the CLI saves works as that person with the roles
their groups map to, and expires when the configured CLI lifetime says; ID tokens that are
tampered with, meant for another client or expired are refused by the exchange endpoint with
the reason; a person who aborts at the device page gets one line and a non-zero exit.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastream.oidc.device_grant import DeviceGrant

from .conftest import CLIENT, SECRET, OpenIdProvider

sys.path.insert(0, str(Path(__file__).parent.parent / "engine"))
from servers import Server, signing_key

pytestmark = pytest.mark.browser

CLI_CLIENT = "infrastream-cli"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCOPES = ("openid", "profile", "email", "groups")
LIFETIME = 7200
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


@pytest.fixture()
def server(tmp_path: Path, openid_provider: OpenIdProvider) -> Iterator[Server]:
    found = Server(tmp_path / "server", f"sqlite:///{tmp_path / 'infrastream.db'}",
                   node="one", key=signing_key(),
                   env={"INFRASTREAM_OIDC_CLIENT_SECRET": SECRET},
                   args=["--oidc-issuer", openid_provider.issuer, "--oidc-client-id", CLIENT,
                         "--oidc-cli-client-id", CLI_CLIENT,
                         "--oidc-cli-token-lifetime", str(LIFETIME),
                         "--oidc-group-role", "qa-engineers=qa",
                         "--oidc-group-role", "sre-oncall=incident-commander"])
    found.start()
    try:
        yield found
    finally:
        found.stop()


def _cli(tmp_path: Path, *args: str, background: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "INFRASTREAM_CONFIG": str(tmp_path / "cli" / "config.json"),
           "HOME": str(tmp_path)}
    env.pop("INFRASTREAM_TOKEN", None)
    env.pop("INFRASTREAM_URL", None)
    return subprocess.Popen([sys.executable, "-m", "infrastream.cli.main", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    process = _cli(tmp_path, *args)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def _verification_link(process: subprocess.Popen[str]) -> tuple[str, list[str]]:
    """What the CLI told the person on stderr, up to the link with the code in it."""
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line.rstrip("\n"))
        if line.startswith("(or open "):
            return line.removeprefix("(or open ").rstrip().rstrip(")"), seen
    raise AssertionError(f"the CLI printed no verification link: {seen}")


class _Chromium:
    """One Chromium for the module's visits to the device page, launched at the first one
    (a launch takes ~1.5 s): each visit gets a browser context of its own (its own cookies
    and storage), as a freshly launched browser would have."""

    def __init__(self) -> None:
        self._playwright: Any = None
        self._browser: Any = None

    def new_context(self) -> Any:
        if self._browser is None:
            playwright_sync = pytest.importorskip("playwright.sync_api")
            self._playwright = playwright_sync.sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=ARGS)
        return self._browser.new_context()

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._playwright.stop()
            self._browser = self._playwright = None


_CHROMIUM = _Chromium()


@pytest.fixture(scope="module", autouse=True)
def _one_chromium() -> Iterator[None]:
    try:
        yield
    finally:
        _CHROMIUM.close()


def _at_device_page(link: str, person: str, *, approve: bool = True) -> str:
    """Open the verification link in Chromium as the person would: confirm the code (or
    abort), sign in on the provider's login page, consent. The page's final heading."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    context = _CHROMIUM.new_context()
    try:
        page = context.new_page()
        page.goto(link)
        playwright_sync.expect(page.locator("h1")).to_have_text("Confirm Device")
        if not approve:
            page.get_by_role("button", name="[ Abort ]").click()
            page.wait_for_load_state()
            heading: str = page.locator("h1").inner_text()
            return heading
        page.get_by_role("button", name="Continue").click()
        page.locator('input[name="login"]').fill(person)
        page.locator('input[name="password"]').fill("any")
        page.locator('button[type="submit"]').click()
        page.locator('button[type="submit"]').click()  # the provider's consent page
        playwright_sync.expect(page.locator("h1")).to_have_text("Sign-in Success",
                                                                timeout=20_000)
        heading = page.locator("h1").inner_text()
        return heading
    finally:
        context.close()


def _login(tmp_path: Path, server: Server, person: str) -> tuple[int, str, str, list[str]]:
    process = _cli(tmp_path, "login", "--sso", "--server", server.url)
    link, told = _verification_link(process)
    assert _at_device_page(link, person) == "Sign-in Success"
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err, told


def test_a_person_signs_in_on_the_command_line_and_the_token_works_as_them(
        tmp_path: Path, server: Server) -> None:
    code, out, err, told = _login(tmp_path, server, "ada")
    assert code == 0, err
    assert told[0].startswith("To sign in, open http://127.0.0.1:")
    assert "/device and enter the code " in told[0]
    assert out.startswith(f"logged in to {server.url} as ada (qa) until ")
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert saved["server"] == server.url and saved["token"].startswith("ifs_")
    assert oct((tmp_path / "cli" / "config.json").stat().st_mode & 0o777) == "0o600"

    listed = _run(tmp_path, "release", "list")
    assert listed.returncode == 0, listed.stderr
    assert "no releases" in listed.stdout
    me = _run(tmp_path, "whoami", "-o", "json")
    assert me.returncode == 0, me.stderr
    person = json.loads(me.stdout)
    assert (person["name"], person["roles"]) == ("ada", ["qa"])
    shown = _run(tmp_path, "whoami").stdout
    assert shown.startswith(f"ada (qa) on {server.url}; token expires at ")

    admin = server.client(server.admin_token())
    [token] = admin.get("/tokens", params={"user": "ada"}).json()
    assert token["name"] == "sso-cli" and token["state"] == "active"
    assert token["expiresAt"] == person["tokenExpiresAt"]
    lifetime = (datetime.fromisoformat(token["expiresAt"])
                - datetime.fromisoformat(token["createdAt"]))
    assert lifetime == timedelta(seconds=LIFETIME)
    issued = [e for e in admin.get("/audit", params={"objectId": "ada"}).json()
              if e["action"] == "token.issue"]
    assert len(issued) == 1 and issued[0]["after"]["via"] == "sso"
    assert issued[0]["actor"] == "ada"
    assert saved["token"] not in json.dumps(issued)


def test_a_person_in_another_group_gets_other_roles(tmp_path: Path, server: Server) -> None:
    code, out, err, _ = _login(tmp_path, server, "omar")
    assert code == 0, err
    assert out.startswith(f"logged in to {server.url} as omar (incident-commander) until ")
    me = json.loads(_run(tmp_path, "whoami", "-o", "json").stdout)
    assert (me["name"], me["roles"]) == ("omar", ["incident-commander"])


def test_aborting_at_the_device_page_is_one_line_and_a_failed_exit(
        tmp_path: Path, server: Server) -> None:
    process = _cli(tmp_path, "login", "--sso", "--server", server.url)
    link, _ = _verification_link(process)
    _at_device_page(link, "ada", approve=False)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.splitlines()[-1] == "error: sign-in was denied at the identity provider"
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "cli" / "config.json").exists()


def test_login_sso_against_a_server_without_it_says_so(tmp_path: Path) -> None:
    plain = Server(tmp_path / "plain", f"sqlite:///{tmp_path / 'plain.db'}", node="plain",
                   key=signing_key())
    plain.start()
    try:
        done = _run(tmp_path, "login", "--sso", "--server", plain.url)
    finally:
        plain.stop()
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: sign-in with an identity provider is not "
                                          "configured on this server")
    assert len(done.stderr.strip().splitlines()) == 1


# --- the exchange endpoint refuses ID tokens it must not believe ---------------------------

def _device_id_token(op: OpenIdProvider, person: str, *, client_id: str = CLI_CLIENT,
                     secret: str | None = None) -> tuple[str, str]:
    """An ID token from the provider's device grant for `client_id`, and its nonce."""
    grant = DeviceGrant(op.issuer, client_id, SCOPES)
    if secret is not None:  # a confidential client: its secret goes in every request
        grant._http = httpx.Client(timeout=10, event_hooks={"request": [
            lambda request: _with_secret(request, client_id, secret)]})
    endpoints = grant.endpoints()
    started = grant.start(endpoints)
    assert started.verification_uri_complete is not None
    _at_device_page(started.verification_uri_complete, person)
    return grant.wait(endpoints, started), started.nonce


def _with_secret(request: httpx.Request, client_id: str, secret: str) -> None:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request.headers["Authorization"] = f"Basic {raw}"


def _exchange(server: Server, id_token: str, nonce: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/sso/token", json={
        "subjectToken": id_token, "subjectTokenType": ID_TOKEN, "nonce": nonce})


def _tampered(id_token: str) -> str:
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["sre-oncall", "platform-admins"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_the_exchange_refuses_tampered_foreign_and_expired_id_tokens(
        server: Server, openid_provider: OpenIdProvider) -> None:
    id_token, nonce = _device_id_token(openid_provider, "ada")
    tampered = _exchange(server, _tampered(id_token), nonce)
    assert tampered.status_code == 401
    assert tampered.headers["content-type"] == "application/problem+json"
    assert "signature does not verify" in tampered.json()["detail"]

    portal_token, portal_nonce = _device_id_token(openid_provider, "ada", client_id=CLIENT,
                                                  secret=SECRET)
    foreign = _exchange(server, portal_token, portal_nonce)
    assert foreign.status_code == 401
    assert foreign.json()["detail"] == ("sign-in refused: the ID token is meant for another "
                                        "client (wrong audience)")

    httpx.post(f"{openid_provider.issuer}/test/id-token-ttl", content="-300").raise_for_status()
    old_token, old_nonce = _device_id_token(openid_provider, "ada")
    expired = _exchange(server, old_token, old_nonce)
    assert expired.status_code == 401
    assert expired.json()["detail"].startswith("sign-in refused: the ID token expired at ")

    admin = server.client(server.admin_token())
    assert admin.get("/tokens", params={"user": "ada"}).json() == []
    assert _exchange(server, id_token, nonce).status_code == 200  # the genuine one works
    replayed = _exchange(server, id_token, nonce)
    assert replayed.status_code == 401
    assert replayed.json()["detail"].startswith(
        "sign-in refused: this ID token was already exchanged (at ")
    assert len(admin.get("/tokens", params={"user": "ada"}).json()) == 1


def test_a_disabled_person_gets_no_token(server: Server,
                                         openid_provider: OpenIdProvider) -> None:
    id_token, nonce = _device_id_token(openid_provider, "omar")
    assert _exchange(server, id_token, nonce).status_code == 200
    admin = server.client(server.admin_token())
    admin.post("/users/omar/disable").raise_for_status()
    id_token, nonce = _device_id_token(openid_provider, "omar")
    refused = _exchange(server, id_token, nonce)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "sign-in refused: user `omar` is disabled"


def test_the_config_endpoint_tells_the_cli_how_to_sign_in(
        server: Server, openid_provider: OpenIdProvider) -> None:
    config = httpx.get(f"{server.url}/api/v1/sso/config").json()
    assert config == {"issuer": openid_provider.issuer, "clientId": CLI_CLIENT,
                      "scopes": list(SCOPES),
                      "grantType": "urn:ietf:params:oauth:grant-type:device_code",
                      "tokenEndpoint": "/api/v1/sso/token"}


def test_polling_slows_down_when_the_provider_asks(openid_provider: OpenIdProvider) -> None:
    """RFC 8628 §3.5: `slow_down` adds 5 s to the interval for every later poll."""
    grant = DeviceGrant(openid_provider.issuer, CLI_CLIENT, SCOPES)
    endpoints = grant.endpoints()
    started = grant.start(endpoints)
    assert started.interval == 1
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the person approves while the CLI waits
        waits.append(seconds)
        if len(waits) == 1:
            httpx.post(f"{openid_provider.issuer}/test/slow-down").raise_for_status()
        if len(waits) == 2:
            assert started.verification_uri_complete is not None
            _at_device_page(started.verification_uri_complete, "ada")

    id_token = grant.wait(endpoints, started, sleep=sleep)
    assert id_token.count(".") == 2
    assert waits == [1, 6]
