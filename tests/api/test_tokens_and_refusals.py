"""Tokens and users you can manage, refused at once when revoked, expired or disabled; and
every refused mutation audited, coalesced so hammering cannot fill the database."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from test_api import (
    apply_example,
    at_once,
    cut_release,
    problem,
    record_versions,
    stage_succeeded,
    wait_for,
)

from infrastream.domain.errors import Unauthenticated
from infrastream.service import sessions
from infrastream.service.auditing import refusals
from infrastream.service.identity import hash_token

if TYPE_CHECKING:
    from conftest import Api


def audit(api: Api, action: str | None = None) -> list[dict[str, Any]]:
    entries = api.admin.get("/api/v1/audit", params={"limit": 1000}).json()
    return [e for e in entries if action is None or e["action"] == action]


def test_tokens_are_created_listed_and_revoked_and_a_revoked_one_is_refused_at_once(
        people: Api) -> None:
    admin = people.admin
    created = admin.post("/api/v1/tokens", json={"user": "ci-bot", "name": "ci",
                                                 "expires": "90d"})
    assert created.status_code == 201, created.text
    secret, details = created.json()["token"], created.json()["details"]
    assert secret.startswith("ifs_") and details["prefix"] == secret[:12]
    assert (details["user"], details["name"], details["state"]) == ("ci-bot", "ci", "active")
    assert details["expiresAt"] is not None and details["lastUsedAt"] is None

    ci = people.client(secret)
    assert ci.get("/api/v1/whoami").json()["name"] == "ci-bot"
    listed = admin.get("/api/v1/tokens", params={"user": "ci-bot"})
    assert secret not in listed.text and "tokenHash" not in listed.text
    mine = next(t for t in listed.json() if t["prefix"] == details["prefix"])
    assert mine["lastUsedAt"] is not None and mine["createdBy"] == "admin"
    assert {"prefix", "name", "createdAt", "lastUsedAt", "expiresAt", "state"} <= mine.keys()

    revoked = admin.delete(f"/api/v1/tokens/{details['prefix']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert "was revoked" in problem(ci.get("/api/v1/whoami"), 401)["detail"]
    again = admin.delete(f"/api/v1/tokens/{details['prefix']}")
    assert "already revoked" in problem(again, 409)["detail"]
    assert problem(admin.delete("/api/v1/tokens/ifs_nothing"), 404)
    assert people.as_user("ci-bot").get("/api/v1/whoami").status_code == 200  # its other one

    by_qa = people.as_user("quinn").post("/api/v1/tokens", json={})
    assert "quinn may not create API tokens" in problem(by_qa, 403)["detail"]
    too_long = admin.post("/api/v1/tokens", json={"user": "ci-bot", "expires": "400d"})
    assert "365d" in problem(too_long, 422)["detail"]
    actions = [e["action"] for e in audit(people)]
    assert "token.create" in actions and "token.revoke" in actions
    assert "token.create.refused" in actions


def test_an_expired_token_is_refused_at_once(people: Api) -> None:
    created = people.admin.post("/api/v1/tokens", json={"user": "quinn", "expires": "1s"})
    token = created.json()["token"]
    time.sleep(1.2)
    assert "expired at" in problem(people.client(token).get("/api/v1/whoami"), 401)["detail"]
    listed = people.admin.get("/api/v1/tokens", params={"user": "quinn"}).json()
    assert "expired" in [t["state"] for t in listed]


def test_a_disabled_user_is_refused_everywhere_until_enabled_again(people: Api) -> None:
    admin, quinn = people.admin, people.as_user("quinn")
    signed_in = sessions.sign_in(people.services, people.tokens["quinn"])

    disabled = admin.post("/api/v1/users/quinn/disable")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert problem(quinn.get("/api/v1/whoami"), 401)["detail"] == "user `quinn` is disabled"
    with pytest.raises(Unauthenticated, match="quinn` is disabled"):
        sessions.session_principal(people.services, "quinn", signed_in.token_hash)
    token = admin.post("/api/v1/tokens", json={"user": "quinn"})
    assert "is disabled" in problem(token, 409)["detail"]
    assert "already disabled" in problem(admin.post("/api/v1/users/quinn/disable"), 409)["detail"]
    assert "yourself" in problem(admin.post("/api/v1/users/admin/disable"), 409)["detail"]
    assert problem(admin.post("/api/v1/users/nobody/disable"), 404)

    assert admin.post("/api/v1/users/quinn/enable").json()["disabled"] is False
    assert quinn.get("/api/v1/whoami").status_code == 200
    assert sessions.session_principal(people.services, "quinn", signed_in.token_hash).name == \
        "quinn"
    assert [e["action"] for e in audit(people) if e["objectId"] == "quinn"
            and not e["action"].endswith(".refused")][:2] == ["user.enable", "user.disable"]
    assert "user.disable.refused" in [e["action"] for e in audit(people)]


def test_a_revoked_token_ends_its_portal_session(people: Api) -> None:
    created = people.admin.post("/api/v1/tokens", json={"user": "sam"}).json()
    signed_in = sessions.sign_in(people.services, created["token"])
    people.admin.delete(f"/api/v1/tokens/{created['details']['prefix']}")
    with pytest.raises(Unauthenticated, match="your session has ended: the API token"):
        sessions.session_principal(people.services, "sam", signed_in.token_hash)
    assert signed_in.token_hash == hash_token(created["token"])


def test_hammered_refusals_are_coalesced_into_counts_and_every_attempt_is_counted(
        people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    quinn = people.as_user("quinn")
    strangers = [people.client(f"ifs_guess{n}") for n in range(30)]

    hammered = [quinn.post(release + "/promotions") for _ in range(40)]
    guessed = [c.post(release + "/promotions") for c in strangers]
    scattered = [quinn.post(f"/api/v1/releases/shop/v{n}/promotions") for n in range(100, 160)]

    assert {r.status_code for r in hammered} == {403}
    assert {r.status_code for r in guessed} == {401}
    assert {r.status_code for r in scattered} == {404}
    written = audit(people, "promotion.request.refused")
    assert len(written) <= 2 + refusals.KINDS_PER_ACTOR + 1, len(written)
    refusals.flush(people.services, everything=True)
    entries = audit(people, "promotion.request.refused") + audit(people, "*.refused")
    counted: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        counted[entry["actor"], entry["after"]["code"]] += entry["after"]["count"]
    assert counted["quinn", "forbidden"] == 40
    assert counted["anonymous", "unauthenticated"] == 30
    assert counted["quinn", "not-found"] + counted["quinn", "many-refusals"] == 60
    first = next(e for e in reversed(entries) if e["actor"] == "quinn"
                 and e["after"]["code"] == "forbidden")
    assert first["after"]["count"] == 1 and first["objectId"] == "shop/v1"
    assert "quinn may not promote releases" in first["after"]["reason"]
    assert len(entries) <= 2 * (3 + refusals.KINDS_PER_ACTOR + 1)


def test_every_refused_attempt_of_a_promotion_race_is_counted(people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    rita = people.as_user("rita")
    wait_for(rita, release, stage_succeeded(0))
    assert rita.post(release + "/promotions").status_code == 202
    wait_for(rita, release, stage_succeeded(1))

    responses = at_once(12, lambda: rita.post(release + "/promotions"))

    refused = [r for r in responses if r.status_code == 409]
    assert len(refused) == 11, [r.text for r in responses]
    refusals.flush(people.services, everything=True)
    total = sum(e["after"]["count"] for e in audit(people, "promotion.request.refused")
                if e["actor"] == "rita")
    assert total == len(refused)
