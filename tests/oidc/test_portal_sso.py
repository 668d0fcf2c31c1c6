"""Portal sign-in through a real OpenID provider (oidc-provider under Node): in Debian's
Chromium a person signs in on the provider's login page, lands in the portal with the roles
their groups map to, approves, and the audit trail names them; over plain HTTP, leaving a
group takes the role away at the next sign-in, and a callback with the wrong state is refused.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from infrastream.domain.sign_in import parse_group_roles
from infrastream.oidc.client import ClientSettings, Provider
from infrastream.portal.single_sign_on import SingleSignOn
from infrastream.service.identity import get_user
from infrastream.service.single_sign_on import SsoPolicy
from infrastream.store.tables import audit_log

from .conftest import CLIENT, SECRET, OpenIdProvider, log_in_through_provider

sys.path.insert(0, str(Path(__file__).parent.parent / "portal"))
from portal_site import Site, build_site

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MAPPING = ["qa-engineers=qa", "sre-oncall=incident-commander"]


def _sso(op: OpenIdProvider) -> SingleSignOn:
    settings = ClientSettings(issuer=op.issuer, client_id=CLIENT, client_secret=SECRET)
    return SingleSignOn(Provider(settings), SsoPolicy(issuer=op.issuer,
                                                      group_roles=parse_group_roles(MAPPING)))


@contextmanager
def _serving(site: Site, port: int) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "portal did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture()
def sso_site(tmp_path: Path, openid_provider: OpenIdProvider) -> Iterator[tuple[Site, str]]:
    site = build_site(tmp_path, sso=_sso(openid_provider))
    try:
        with _serving(site, openid_provider.portal_port) as url:
            yield site, url
    finally:
        site.close()


def _sign_in_over_http(url: str, person: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)  # a loaded machine is slow
    started = client.get("/portal/sign-in/oidc")
    assert started.status_code == 303
    back = log_in_through_provider(client, started.headers["location"], person)
    landed = client.get(back.headers["location"])
    assert landed.status_code == 303, landed.text
    return client


def test_leaving_a_group_takes_the_role_away_at_the_next_sign_in(
        sso_site: tuple[Site, str], openid_provider: OpenIdProvider) -> None:
    site, url = sso_site
    openid_provider.set_groups("omar", ["sre-oncall", "qa-engineers"])
    first = _sign_in_over_http(url, "omar")
    assert "Signed in as omar (incident-commander, qa)" in first.get("/portal/").text
    first.close()
    assert get_user(site.services, "omar").roles == {"incident-commander", "qa"}
    openid_provider.set_groups("omar", ["sre-oncall"])
    second = _sign_in_over_http(url, "omar")
    assert "Signed in as omar (incident-commander)" in second.get("/portal/").text
    mine = second.get("/portal/me").text
    assert "<strong data-roles>incident-commander</strong>" in mine
    assert "<span data-groups>sre-oncall</span>" in mine
    second.close()
    assert get_user(site.services, "omar").roles == {"incident-commander"}
    with site.services.db.connect() as conn:
        changes = conn.execute(select(audit_log.c.before, audit_log.c.after).where(
            (audit_log.c.action == "user.roles") & (audit_log.c.object_id == "omar"))).all()
    assert [(c.before["roles"], c.after["roles"]) for c in changes] == [
        (["incident-commander", "qa"], ["incident-commander"])]


def test_a_callback_with_the_wrong_state_is_refused(sso_site: tuple[Site, str]) -> None:
    _site, url = sso_site
    with httpx.Client(base_url=url, timeout=30) as client:
        started = client.get("/portal/sign-in/oidc")
        back = log_in_through_provider(client, started.headers["location"], "ada")
        location = urlparse(back.headers["location"])
        forged = location.query.replace("state=", "state=x")
        refused = client.get(f"{location.path}?{forged}")
        assert refused.headers["location"].endswith("/portal/sign-in")
        page = client.get("/portal/sign-in").text
        assert "Sign-in refused" in page and "wrong state" in page
        assert "Signed in as" not in client.get("/portal/sign-in").text


def test_a_person_signs_in_with_the_provider_in_a_browser_and_approves(
        sso_site: tuple[Site, str]) -> None:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    expect = playwright_sync.expect
    site, url = sso_site
    site.to_production_gate()
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=ARGS)
        page = browser.new_context().new_page()
        page.goto(url + "/portal/sign-in")
        page.get_by_role("link", name="Sign in with your identity provider").click()
        page.locator('input[name="login"]').fill("ada")
        page.locator('input[name="password"]').fill("any")
        page.locator('button[type="submit"]').click()
        page.locator('button[type="submit"]').click()  # the provider's consent page
        expect(page.locator(".flash")).to_contain_text("Signed in as ada (qa)", timeout=20_000)
        page.goto(url + "/portal/releases/shop/v1")
        page.get_by_role("button", name="Approve as qa").click()
        expect(page.locator(".flash")).to_contain_text("You approved shop/v1")
        page.goto(url + "/portal/audit")
        expect(page.locator("main")).to_contain_text("ada")
        browser.close()
    with site.services.db.connect() as conn:
        approvals = conn.execute(select(audit_log.c.actor).where(
            audit_log.c.action.like("%approv%"))).scalars().all()
    assert "ada" in approvals
