"""The release lane as a story, on SQLite and on PostgreSQL, with real local processes.

apply the `init` example → record versions → cut a release → it deploys to development →
promote to staging (its checks run) → promote to production, which waits for QA, Product
and Security (a rejection blocks it) → every environment runs the release's versions and the
processes answer on their ports.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from story import PRODUCT, QA, RELEASE_MANAGER, SECURITY, Story, person

from infrastream.domain.errors import Conflict, Forbidden, NotFound
from infrastream.service import promotions, releases
from infrastream.service.auditing import view as audit_view
from infrastream.service.views.environments import environment_overview


@pytest.fixture
def story(tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    yield story
    story.finish()


def _answer(endpoint: str) -> dict:
    with urllib.request.urlopen(endpoint + "/healthz", timeout=5) as response:
        return json.load(response)


def test_a_release_travels_to_production_only_after_qa_product_and_security_sign_off(story):
    story.apply_manifests()
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()

    status = story.wait_until(release, lambda s: s["stages"][0]["state"] == "succeeded")
    assert "ready to promote to staging" in status["summary"]

    promotions.promote(story.services, RELEASE_MANAGER, release)
    status = story.wait_until(release, lambda s: s["stages"][1]["state"] == "succeeded")
    checks = {(c["type"], c["app"]): c["state"] for c in status["stages"][1]["checks"]}
    assert checks[("integration-tests", "api")] == "passed"
    assert checks[("http", "worker")] == "passed"
    assert checks[("soak", "*")] == "passed"

    promotions.promote(story.services, RELEASE_MANAGER, release)
    production = story.stage(release, 2)
    assert production["state"] == "awaiting-approval"
    assert production["waiting"] == "waiting for: qa 0/1, product 0/1, security 0/1"

    promotions.approve(story.services, QA, release, comment="regression suite green")
    promotions.approve(story.services, PRODUCT, release)
    production = story.stage(release, 2)
    assert production["waiting"] == "waiting for: security 0/1"
    assert production["environments"][0]["state"] == "not-deployed"

    promotions.reject(story.services, SECURITY, release, "CVE-2026-1234 in the base image")
    production = story.stage(release, 2)
    assert production["state"] == "rejected"
    assert "CVE-2026-1234" in production["waiting"]

    promotions.promote(story.services, RELEASE_MANAGER, release)
    assert story.stage(release, 2)["waiting"] == "waiting for: qa 0/1, product 0/1, security 0/1"
    for approver in (QA, PRODUCT, SECURITY):
        promotions.approve(story.services, approver, release)

    status = story.wait_until(release, lambda s: s["state"] == "completed")
    assert status["summary"] == "completed: running in production"
    overview = {e["environment"]: e for e in environment_overview(story.services)}
    assert set(overview) == {"development", "staging", "production"}
    for env in overview.values():
        assert env["release"] == str(release)
        assert env["versions"] == {"api": "1.0.0", "web": "1.0.0", "worker": "1.0.0"}
        for app in env["apps"]:
            answer = _answer(app["endpoint"])
            assert answer["version"] == "1.0.0"
            assert answer["component"] == app["app"]
    assert audit_view.verify(story.services)["ok"]


def test_only_the_roles_named_by_the_rules_can_approve_and_nobody_approves_twice(story):
    story.apply_manifests()
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()
    story.to_production_gate(release)

    with pytest.raises(Forbidden, match="holds none of the roles"):
        promotions.approve(story.services, person("dev", "developer"), release)
    with pytest.raises(Forbidden, match="does not hold role `security`"):
        promotions.approve(story.services, QA, release, role="security")
    with pytest.raises(Forbidden, match="requested this promotion"):
        promotions.approve(story.services, person("rita", "release-manager", "qa"), release)
    promotions.approve(story.services, QA, release)
    with pytest.raises(Conflict, match="already approved"):
        promotions.approve(story.services, QA, release)
    with pytest.raises(Forbidden, match="release-manager"):
        promotions.promote(story.services, QA, release)
    refused = [e for e in audit_view.list_entries(story.services, limit=50)
               if e["action"] == "approval.grant.refused"]
    assert len(refused) == 4


def test_a_release_is_refused_while_an_application_has_no_version(story):
    story.apply_manifests()
    with pytest.raises(Conflict, match="no version recorded for api, web, worker"):
        story.cut_release()
    with pytest.raises(Forbidden, match="cut releases"):
        releases.create_release(story.services, person("dev", "developer"), "shop")
    with pytest.raises(NotFound, match="`nope`"):
        releases.create_release(story.services, RELEASE_MANAGER, "nope")


def test_an_application_can_be_applied_alone_once_its_set_exists_and_reapplying_is_a_no_op(
        story):
    first = story.apply_manifests()
    again = story.apply_manifests()
    assert again["revision"] == first["revision"]
    assert {c["change"] for c in again["changes"]} == {"unchanged"}
    api = story.repo / "manifests" / "apps" / "api.yaml"
    api.write_text(api.read_text().replace("value: info", "value: debug"))
    from story import PLATFORM

    from infrastream.service import manifests
    result = manifests.apply(story.services, PLATFORM, [(str(api), api.read_text())])
    assert result.to_json()["changes"] == [
        {"kind": "Application", "name": "api", "change": "configured"}]
    assert result["revision"] == first["revision"] + 1


def test_a_rejection_needs_a_reason_and_a_re_request_needs_fresh_approvals(story):
    from infrastream.domain.errors import Invalid

    story.apply_manifests()
    story.record_versions("1.0.0")
    release = story.cut_release()
    story.start_engine()
    story.to_production_gate(release)
    promotions.approve(story.services, QA, release)
    with pytest.raises(Invalid, match="needs a reason"):
        promotions.reject(story.services, SECURITY, release, "  ")
    assert story.stage(release, 2)["state"] == "awaiting-approval"
    promotions.reject(story.services, SECURITY, release, "pen test findings open")
    promotions.promote(story.services, RELEASE_MANAGER, release)
    production = story.stage(release, 2)
    assert production["waiting"] == "waiting for: qa 0/1, product 0/1, security 0/1"
