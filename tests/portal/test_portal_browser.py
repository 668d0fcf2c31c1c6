"""The portal in a real browser: Debian's Chromium driven by Playwright against a uvicorn
server, the engine and the example product (noop target, 1 s soak).

The stories of the seed's "How Stakeholders are Bound to Release Stages": the release manager
initiates the promotion in the portal, QA, Product and Security record their sign-offs there,
and production turns healthy while the page watches; a developer gets no sign-off button and
a forged request is refused; a rejection shows its reason. Screenshots of every page land in
`test-artifacts/portal/` (not committed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from portal_site import Served

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"
WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT = 20_000  # ms

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed: apt-get install chromium")
    with playwright_sync.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=ARGS)
        yield chromium
        chromium.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in_with_token(browser, served: Served, name: str, viewport=WIDE):
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(served.url + "/")
    page.get_by_role("textbox", name="API token").fill(served.site.tokens[name])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".flash")).to_contain_text(f"Signed in as {name}")
    return page


def sign_in_as_demo_user(browser, served: Served, name: str, viewport=WIDE):
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(served.url + "/portal/sign-in")
    page.get_by_role("button", name=re.compile(f"^{name}\\b")).click()
    expect(page.locator(".flash")).to_contain_text(f"Signed in as {name}")
    return page


def test_a_release_manager_promotes_and_three_sign_offs_take_it_to_production(browser, served):
    url = served.url
    first = browser.new_context(viewport=WIDE).new_page()
    first.goto(url + "/")
    expect(first.get_by_role("note")).to_contain_text("This is a demo")
    shot(first, "sign-in")

    rita = sign_in_with_token(browser, served, "rita")
    expect(rita.locator('[data-lane="release"] [data-environment="development"]')
           ).to_contain_text("shop/v1")
    shot(rita, "overview")
    rita.get_by_role("link", name="shop/v1").first.click()
    rita.get_by_role("button", name="Promote to staging").click()
    expect(rita.locator(".flash")).to_contain_text("Promotion of shop/v1 to staging")
    # the button for the next stage arrives with the live update, without a reload
    rita.get_by_role("button", name="Promote to production").click()
    expect(rita.locator("#release-summary")).to_contain_text(
        "waiting for: qa 0/1, product 0/1, security 0/1")
    shot(rita, "release-waiting-for-sign-off")

    quinn = sign_in_as_demo_user(browser, served, "quinn")
    quinn.get_by_role("link", name=re.compile("My approvals")).click()
    expect(quinn.locator('[data-release="shop/v1"]')).to_contain_text("production")
    shot(quinn, "inbox")
    quinn.get_by_role("button", name="Approve as qa").click()
    expect(quinn.locator(".flash")).to_contain_text("You approved shop/v1")

    paula = sign_in_as_demo_user(browser, served, "paula")
    paula.goto(url + "/portal/releases/shop/v1")
    paula.get_by_label("Comment (optional)").fill("Launch copy signed off")
    paula.get_by_role("button", name="Approve as product").click()
    expect(paula.get_by_text("“Launch copy signed off”")).to_be_visible()

    sam = sign_in_as_demo_user(browser, served, "sam")
    sam.goto(url + "/portal/releases/shop/v1")
    sam.get_by_role("button", name="Approve as security").click()
    expect(sam.locator(".flash")).to_contain_text("as security")
    # production turns healthy on the open page: htmx polls the pipeline
    expect(sam.locator('[data-stage="production"] [data-environment="production"]')
           ).to_have_attribute("data-state", "healthy")
    expect(sam.locator("#release-summary")).to_contain_text("completed: running in production")
    shot(sam, "release-in-production")

    for path, name in [("/portal/", "overview-after"), ("/portal/environments", "environments"),
                       ("/portal/audit", "audit"), ("/portal/releases", "releases"),
                       ("/portal/prereleases", "prereleases"), ("/portal/hotfixes", "hotfixes")]:
        rita.goto(url + path)
        expect(rita.locator("main h1")).to_be_visible()
        if name == "environments":
            expect(rita.locator('tr[data-environment="production"]')).to_contain_text("1.0.0")
        shot(rita, name)

    phone = sign_in_as_demo_user(browser, served, "quinn", viewport=PHONE)
    phone.goto(url + "/portal/")
    shot(phone, "phone-overview")
    phone.goto(url + "/portal/releases/shop/v1")
    shot(phone, "phone-release")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1


def test_a_developer_sees_no_sign_off_button_and_a_forged_post_is_refused(browser, served):
    served.site.to_production_gate()
    dana = sign_in_as_demo_user(browser, served, "dana")
    dana.goto(served.url + "/portal/releases/shop/v1")
    expect(dana.locator("#release-summary")).to_contain_text("waiting for: qa 0/1")
    expect(dana.get_by_role("button", name=re.compile("Approve|Reject|Promote"))
           ).to_have_count(0)
    shot(dana, "release-as-developer")

    approve = served.url + "/portal/releases/shop/v1/approve"
    without_token = dana.request.post(approve, form={"role": "qa"})
    assert without_token.status == 403
    assert "Form refused" in without_token.text()
    token = dana.locator('input[name="csrf"]').first.get_attribute("value")
    with_token = dana.request.post(approve, form={"role": "qa", "csrf": token},
                                   max_redirects=0)
    assert with_token.status == 303  # post/redirect/get: the refusal is shown after it
    dana.reload()
    expect(dana.locator(".flash")).to_contain_text("dana does not hold role `qa`")
    dana.reload()  # a reload shows the page without the message and sends nothing again
    expect(dana.locator(".flash")).to_have_count(0)
    expect(dana.locator('[data-role="qa"]')).to_contain_text("0/1")


def test_a_rejection_shows_its_reason_to_everyone(browser, served):
    served.site.to_production_gate()
    quinn = sign_in_as_demo_user(browser, served, "quinn")
    quinn.goto(served.url + "/portal/releases/shop/v1")
    quinn.get_by_label("Reason (required)").fill("checkout fails on Safari 17")
    quinn.get_by_role("button", name="Reject promotion").click()
    expect(quinn.locator(".flash")).to_contain_text("You rejected the promotion")

    rita = sign_in_as_demo_user(browser, served, "rita")
    rita.goto(served.url + "/portal/releases/shop/v1")
    expect(rita.locator('[data-stage="production"]')).to_contain_text(
        "rejected by quinn (qa): checkout fails on Safari 17")
    expect(rita.get_by_role("button", name="Retry production")).to_be_visible()
    shot(rita, "release-rejected")


PAGES = ["/", "/releases", "/releases/shop/v1", "/inbox", "/environments", "/audit",
         "/audit/verify", "/prereleases", "/hotfixes", "/pull-requests", "/manifests",
         "/insights"]
CLIPPED = """() => [...document.querySelectorAll('nav, .table-wrap, .pipeline, .stages, main')]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' + e.scrollWidth
        + '>' + e.clientWidth)"""


def test_every_page_fits_390_px_without_clipping_and_has_a_favicon(browser, served):
    served.site.to_production_gate()
    rita = sign_in_as_demo_user(browser, served, "rita", viewport=PHONE)
    for path in PAGES:
        rita.goto(served.url + "/portal" + path)
        assert rita.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        assert rita.evaluate(CLIPPED) == [], path
        shot(rita, "phone" + (path.replace("/", "-") if path != "/" else "-overview"))
    icon = rita.locator('link[rel="icon"]').get_attribute("href")
    assert icon is not None
    served_icon = rita.request.get(served.url + icon)
    assert served_icon.status == 200 and b"<svg" in served_icon.body()
