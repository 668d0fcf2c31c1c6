"""The portal in process (httpx against the ASGI app): signing in, sessions, CSRF, every
page, and the actions going through the same rules as the API."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time

import pytest
from portal_site import V1, Site, csrf_of
from sqlalchemy import update

from infrastream.manifests.environment import default_environment
from infrastream.service import promotions
from infrastream.service.auditing import trail as audit
from infrastream.service.auditing import view as audit_view
from infrastream.service.records.releases import ReleaseRef
from infrastream.service.releases import create_release
from infrastream.store.tables import users


def cookie_payload(client) -> dict:
    value = client.cookies.get("infrastream_session")
    body = value.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_every_page_sends_a_stranger_to_sign_in_and_back_afterwards(quiet_site: Site):
    client = quiet_site.client()
    assert client.get("/").headers["location"] == "/portal/"
    response = client.get("/portal/releases/shop/v1")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/sign-in?next=/portal/releases/shop/v1"
    signed = client.post("/portal/sign-in", data={
        "csrf": csrf_of(client), "token": quiet_site.tokens["rita"],
        "next": "/portal/releases/shop/v1"})
    assert signed.headers["location"] == "/portal/releases/shop/v1"
    page = client.get("/portal/releases/shop/v1")
    assert page.status_code == 200
    assert "Signed in as rita (release-manager)." in page.text


def test_the_session_cookie_is_signed_http_only_lax_and_holds_no_token(quiet_site: Site):
    client = quiet_site.client()
    response = client.post("/portal/sign-in", data={"csrf": csrf_of(client),
                                                    "token": quiet_site.tokens["quinn"]})
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header.replace("Lax", "lax")
    token = quiet_site.tokens["quinn"]
    assert token not in header
    payload = cookie_payload(client)
    assert payload["u"] == "quinn"
    assert payload["h"] == hashlib.sha256(token.encode()).hexdigest()
    assert (quiet_site.services.data_dir / "portal-session.key").stat().st_mode & 0o077 == 0


def test_a_tampered_cookie_or_a_wrong_token_signs_nobody_in(quiet_site: Site):
    client = quiet_site.signed_in("dana")
    body, signature = client.cookies.get("infrastream_session").split(".", 1)
    forged = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged["u"] = "rita"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    client.cookies.set("infrastream_session", f"{forged_body}.{signature}",
                       domain="portal.test")
    assert client.get("/portal/inbox").status_code == 303

    stranger = quiet_site.client()
    refused = stranger.post("/portal/sign-in", data={"csrf": csrf_of(stranger),
                                                     "token": "ifs_not-a-token"})
    assert refused.headers["location"] == "/portal/sign-in"
    assert "That token was not accepted" in stranger.get("/portal/sign-in").text


def test_disabling_a_user_ends_their_portal_session(quiet_site: Site):
    client = quiet_site.signed_in("sam")
    assert client.get("/portal/inbox").status_code == 200
    with quiet_site.services.transaction() as conn:
        conn.execute(update(users).where(users.c.name == "sam").values(disabled=True))
    assert client.get("/portal/inbox").headers["location"].startswith("/portal/sign-in")
    assert "your session has ended" in client.get("/portal/sign-in").text


def test_sign_in_and_sign_out_need_the_form_token_and_rotate_it(quiet_site: Site):
    client = quiet_site.client()
    before = csrf_of(client)
    refused = client.post("/portal/sign-in", data={"token": quiet_site.tokens["rita"]})
    assert refused.status_code == 403
    assert "Form refused" in refused.text
    client.post("/portal/sign-in", data={"csrf": before, "token": quiet_site.tokens["rita"]})
    after = csrf_of(client, "/portal/")
    assert after != before
    assert client.post("/portal/sign-out", data={"csrf": before}).status_code == 403
    assert client.post("/portal/sign-out", data={"csrf": after}).status_code == 303
    assert client.get("/portal/").status_code == 303


def test_the_demo_signs_in_with_one_click_and_says_it_is_a_demo(site: Site):
    client = site.client()
    page = client.get("/portal/sign-in").text
    assert "This is a demo" in page
    for name in ("rita", "quinn", "paula", "sam", "dana"):
        assert f'name="demo_user" value="{name}"' in page
    assert site.tokens["rita"] not in page
    client.post("/portal/sign-in", data={"csrf": csrf_of(client), "demo_user": "paula"})
    assert "paula" in client.get("/portal/inbox").text


def test_a_server_that_is_no_demo_offers_no_demo_sign_in(quiet_site: Site):
    client = quiet_site.client()
    page = client.get("/portal/sign-in").text
    assert "This is a demo" not in page and "demo_user" not in page
    client.post("/portal/sign-in", data={"csrf": csrf_of(client), "demo_user": "rita"})
    assert client.get("/portal/").status_code == 303


PAGES = [
    "/portal/", "/portal/overview/tracks", "/portal/releases", "/portal/releases?set=shop",
    "/portal/releases/shop/v1", "/portal/releases/shop/v1/pipeline", "/portal/inbox",
    "/portal/environments", "/portal/audit", "/portal/audit?actor=rita",
    "/portal/audit?type=release&object=shop/v1", "/portal/audit?action=manifest.*",
    "/portal/audit/verify", "/portal/prereleases", "/portal/hotfixes",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_a_signed_in_person(quiet_site: Site, path: str):
    response = quiet_site.signed_in("quinn").get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")


def test_unknown_things_are_pages_with_the_api_status_codes(quiet_site: Site):
    client = quiet_site.signed_in("quinn")
    missing = client.get("/portal/releases/shop/v99")
    assert missing.status_code == 404 and "release `shop/v99` does not exist" in missing.text
    assert client.get("/portal/no-such-page").status_code == 404
    assert client.get("/portal/prereleases/12345").status_code == 404


def test_times_are_time_elements_in_utc_with_the_absolute_time_on_hover(quiet_site: Site):
    page = quiet_site.signed_in("quinn").get("/portal/releases").text
    stamp = re.search(r'<time datetime="([^"]+)" title="([^"]+)"', page)
    assert stamp is not None
    assert stamp.group(1).endswith("Z") and stamp.group(2).endswith(" UTC")
    assert 'src="/portal/static/portal.js"' in page
    assert quiet_site.client().get("/portal/static/htmx.min.js").text.startswith("/*! htmx 2.")


def test_the_release_list_pages_by_keyset(quiet_site: Site):
    for _ in range(52):  # v2 … v53, with the same versions as v1
        create_release(quiet_site.services, quiet_site.user("rita"), "shop")
    client = quiet_site.signed_in("rita")
    first = client.get("/portal/releases").text
    assert first.count('class="dots"') == 50 and "shop/v53<" in first
    older = re.search(r'href="/portal/releases\?before=(\d+)" rel="next"', first)
    assert older is not None
    second = client.get(f"/portal/releases?before={older.group(1)}").text
    assert second.count('class="dots"') == 3
    assert "shop/v1<" in second and 'rel="next"' not in second


def test_the_audit_trail_filters_pages_by_keyset_and_shows_the_chain_status(quiet_site: Site):
    with quiet_site.services.transaction() as conn:
        for number in range(70):
            audit.record(conn, at=quiet_site.services.now(), actor="quinn",
                         action="test.note", object_type="release", object_id="shop/v1",
                         after={"n": number})
    client = quiet_site.signed_in("quinn")
    first = client.get("/portal/audit").text
    assert 'data-chain="ok"' in first
    assert first.count("<tr>") == 51  # the header row and 50 entries
    older = re.search(r'href="/portal/audit\?before=(\d+)[^"]*" rel="next"', first)
    assert older is not None
    rest = client.get(f"/portal/audit?before={older.group(1)}").text
    assert "user.create" in rest
    mine = client.get("/portal/audit?actor=rita").text
    assert "release.create" in mine and "test.note" not in mine
    notes = client.get("/portal/audit?action=test.*&type=release&object=shop/v1").text
    assert notes.count("test.note") == 50
    verified = client.get("/portal/audit/verify").text
    assert "Full verification" in verified and "intact" in verified
    assert "Last full verification" in client.get("/portal/audit").text


def test_a_forged_post_without_the_form_token_is_refused_and_changes_nothing(site: Site):
    site.wait_until(lambda s: s["stages"][0]["state"] == "succeeded")
    rita = site.signed_in("rita")
    refused = rita.post("/portal/releases/shop/v1/promote", data={})
    assert refused.status_code == 403
    assert site.status()["stages"][1]["state"] == "pending"
    promoted = rita.post("/portal/releases/shop/v1/promote",
                         data={"csrf": csrf_of(rita, "/portal/releases/shop/v1")})
    assert promoted.status_code == 303
    assert site.status()["stages"][1]["state"] != "pending"


def test_a_developer_gets_no_buttons_and_the_service_refuses_their_forged_approval(site: Site):
    site.to_production_gate()
    dana = site.signed_in("dana")
    page = dana.get("/portal/releases/shop/v1").text
    assert "Approve as" not in page and "Reject promotion" not in page
    assert "Promote to" not in page
    refused = dana.post("/portal/releases/shop/v1/approve",
                        data={"csrf": csrf_of(dana, "/portal/releases/shop/v1"), "role": "qa"})
    # Post/redirect/get: the refusal redirects to the release page, which shows it (and a
    # reload there sends nothing again).
    assert refused.status_code == 303
    assert refused.headers["location"].endswith("/portal/releases/shop/v1")
    shown = dana.get(refused.headers["location"]).text
    assert "dana does not hold role `qa`" in shown
    assert "dana does not hold role `qa`" not in dana.get("/portal/releases/shop/v1").text
    assert all(not rule["approvers"] for rule in site.status()["stages"][2]["approvals"])
    trail = audit_view.list_entries(site.services, limit=20, object_id="shop/v1")
    assert [(e.actor, e.after["code"]) for e in trail
            if e.action == "approval.grant.refused"] == [("dana", "forbidden")]


def test_qa_approves_from_the_inbox_and_the_release_page_shows_who_signed(site: Site):
    site.to_production_gate()
    quinn = site.signed_in("quinn")
    inbox = quinn.get("/portal/inbox").text
    assert "shop/v1</a> → production" in inbox and "Approve as qa" in inbox
    approved = quinn.post("/portal/releases/shop/v1/approve",
                          data={"csrf": csrf_of(quinn, "/portal/inbox"), "role": "qa",
                                "comment": "regression suite green"})
    assert approved.headers["location"] == "/portal/releases/shop/v1"
    page = quinn.get("/portal/releases/shop/v1").text
    assert "You approved shop/v1 for production as qa." in page
    assert "regression suite green" in page
    assert "Approve as qa" not in page
    assert "Nothing is waiting for you" in quinn.get("/portal/inbox").text
    # the release manager who asked may not sign (four-eyes); the page says why
    assert "Approve as" not in site.signed_in("rita").get("/portal/releases/shop/v1").text


def test_a_rejection_needs_a_reason_and_the_release_page_shows_it(site: Site):
    site.to_production_gate()
    sam = site.signed_in("sam")
    token = csrf_of(sam, "/portal/releases/shop/v1")
    empty = sam.post("/portal/releases/shop/v1/reject", data={"csrf": token, "reason": " "})
    # Refused: post/redirect/get, the message is shown on the page it redirects to.
    assert empty.status_code == 303
    assert "a rejection needs a reason" in sam.get(empty.headers["location"]).text
    sam.post("/portal/releases/shop/v1/reject",
             data={"csrf": token, "reason": "CVE-2024-1234 is not patched"})
    page = sam.get("/portal/releases/shop/v1").text
    assert "rejected by sam (security): CVE-2024-1234 is not patched" in page
    rita = site.signed_in("rita")
    rita_page = rita.get("/portal/releases/shop/v1").text
    assert "Retry production" in rita_page
    retried = rita.post("/portal/releases/shop/v1/promote",
                        data={"csrf": csrf_of(rita, "/portal/releases/shop/v1")})
    assert retried.status_code == 303
    # After the retry, sam's rejection belongs to the earlier request and says so.
    again = rita.get("/portal/releases/shop/v1").text
    earlier = re.search(r'<li data-decision="reject" data-current="no" class="earlier">(.*?)</li>',
                        again, re.S)
    assert earlier is not None and "earlier request" in earlier.group(1)
    assert "no longer counts" in earlier.group(1)


def test_sign_off_cards_name_who_may_sign_and_why_the_viewer_cannot(site: Site):
    site.to_production_gate()
    rita = site.signed_in("rita").get("/portal/releases/shop/v1").text
    card = rita[rita.index('class="card signoff"'):]
    card = card[:card.index("</section>")]
    for role, holder in (("qa", "quinn"), ("product", "paula"), ("security", "sam")):
        assert re.search(rf'data-signers="{role}">.*?held by [^<]*{holder}', card, re.S), card
        assert f'data-cannot-sign="{role}"' in card
    assert "do not hold the qa role" in card
    quinn = site.signed_in("quinn").get("/portal/releases/shop/v1").text
    card = quinn[quinn.index('class="card signoff"'):]
    card = card[:card.index("</section>")]
    assert 'data-cannot-sign="qa"' not in card and 'data-cannot-sign="security"' in card


def test_the_pipeline_fragment_polls_while_active_and_brings_changed_actions(site: Site):
    site.to_production_gate()
    quinn = site.signed_in("quinn")
    page = quinn.get("/portal/releases/shop/v1").text
    key = re.search(r'/pipeline\?actions=([0-9a-f]+)"', page)
    assert key is not None and 'hx-trigger="every 2s"' in page
    same = quinn.get(f"/portal/releases/shop/v1/pipeline?actions={key.group(1)}").text
    assert 'id="release-actions"' not in same and 'id="release-summary"' in same
    promotions.approve(site.services, site.user("quinn"), V1, "qa")
    changed = quinn.get(f"/portal/releases/shop/v1/pipeline?actions={key.group(1)}").text
    assert 'id="release-actions" hx-swap-oob="true"' in changed
    assert "Approve as qa" not in changed


def test_the_overview_shows_each_lane_with_what_runs_and_what_waits(site: Site):
    site.to_production_gate()
    page = site.signed_in("rita").get("/portal/").text
    assert 'data-lane="release"' in page and 'data-lane="hotfix"' in page
    assert "qa 0/1, product 0/1, security 0/1" in page
    environments = site.signed_in("rita").get("/portal/environments").text
    assert 'data-environment="staging"' in environments and "1.0.0" in environments


def test_rollback_is_offered_to_the_release_manager_where_an_earlier_release_ran(site: Site):
    site.wait_until(lambda s: s["stages"][0]["state"] == "succeeded")
    v2 = site.cut("1.1.0")
    site.wait_until(lambda s: s["stages"][0]["state"] == "succeeded", v2)
    rita = site.signed_in("rita")
    page = rita.get("/portal/releases/shop/v2").text
    assert "Roll back development to shop/v1" in page
    assert "Roll back" not in site.signed_in("quinn").get("/portal/releases/shop/v2").text
    rolled = rita.post("/portal/releases/shop/v2/rollback", data={
        "csrf": csrf_of(rita, "/portal/releases/shop/v2"), "environment": "development",
        "to": "shop/v1", "reason": "v2 breaks checkout"})
    assert rolled.status_code == 303
    assert "Rolling development back from shop/v2 to shop/v1." in \
        rita.get("/portal/releases/shop/v2").text
    assert ReleaseRef("shop", "v2") == v2


def test_mounting_the_portal_leaves_the_api_and_its_problems_alone(quiet_site: Site):
    client = quiet_site.client()
    missing = client.get("/api/v1/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith("/portal") or path == "/" for path in paths)
    whoami = client.get("/api/v1/whoami",
                        headers={"Authorization": f"Bearer {quiet_site.tokens['sam']}"})
    assert whoami.json()["name"] == "sam"


def test_pages_may_not_be_framed_and_are_not_cached(quiet_site: Site):
    response = quiet_site.signed_in("sam").get("/portal/inbox")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_an_environment_that_no_longer_runs_what_was_deployed_shows_as_drifted(site: Site):
    site.wait_until(lambda s: s["stages"][0]["state"] == "succeeded")
    noop = site.services.targets.get_target("noop")
    noop.teardown(default_environment("development"))
    rita = site.signed_in("rita")
    deadline = time.monotonic() + 10
    while 'data-environment="development"' not in (page := rita.get(
            "/portal/overview/tracks").text) or "drift: api" not in page:
        assert time.monotonic() < deadline, "the overview never showed the drift"
        time.sleep(0.1)
    assert "api: expected registry.example.com/shop/api:1.0.0, nothing runs" in page


def test_a_portal_sign_in_is_recorded_in_the_audit_trail(quiet_site: Site):
    quiet_site.signed_in("quinn")
    with quiet_site.services.db.connect() as conn:
        entries = audit.entries(conn, object_type="user", object_id="quinn", newest_first=True)
    assert entries and entries[0].action == "session.sign-in"
    assert entries[0].actor == "quinn" and entries[0].after == {"face": "portal"}
