"""Merge to development, on GitHub and on GitLab: a push to the default branch records the
mainline build and, on a track with `releaseOn: merge`, cuts one release for the merges of a
short window; it enters development by itself and the merge commit's status follows it."""

from __future__ import annotations

from gate_world import Gate, sha


def merging_shop(gate: Gate, **api: object) -> None:
    gate.connect()
    gate.apply(track={"releaseOn": "merge", "mergeWindow": "2s"},
               apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository},
                             **api}})
    for app in ("api", "web", "worker"):
        gate.record(app, f"registry.example.com/shop/{app}:1.0.0", sha("main-0"))


def _releases(gate: Gate) -> list[dict]:
    return list(gate.as_user("rita").get("/api/v1/releases").json())


def test_two_merges_in_a_row_make_one_release_deployed_to_development(gate: Gate) -> None:
    merging_shop(gate)
    first, second = sha("merge-1"), sha("merge-2")
    assert gate.merged(first, pusher="dana").json()["outcome"] == "accepted"
    waiting = gate.wait_state(first, "pending", context="infrastream/development", timeout=10)
    assert waiting["description"] == f"waiting for the build of {first[:7]}"

    gate.record("api", "registry.example.com/shop/api:1.1.0", first)  # CI, after the merge
    gate.merged(second, pusher="erik")
    gate.record("api", "registry.example.com/shop/api:1.1.1", second)
    done = gate.wait_state(second, "success", context="infrastream/development")
    assert done["description"] == "shop/v1 deployed to development"
    assert done["url"] == f"{gate.url}/portal/releases/shop/v1"
    assert gate.wait_state(first, "success", context="infrastream/development") == done

    releases = _releases(gate)
    assert [r["release"] for r in releases] == ["shop/v1"]  # one release for both merges
    release = gate.as_user("rita").get("/api/v1/releases/shop/v1").json()
    assert release["versions"]["api"]["image"] == "registry.example.com/shop/api:1.1.1"
    assert release["createdBy"] == f"scm:{gate.kind}"
    audit = gate.as_user("rita").get("/api/v1/audit", params={
        "objectType": "release", "objectId": "shop/v1"}).json()
    [created] = [e for e in audit if e["action"] == "release.create"]
    cause = created["after"]["cause"]
    assert cause["commits"] == sorted([first, second])
    assert cause["pushers"] == ["dana", "erik"] and cause["scm"] == gate.kind
    page = gate.portal("rita").get("/portal/releases/shop/v1")
    assert page.status_code == 200 and "Cut by merges" in page.text
    assert f'data-merge="{first}"' in page.text and f'data-merge="{second}"' in page.text
    assert "erik" in page.text and f"{second[:7]}</a>" in page.text
    assert getattr(gate.host, "violations", []) == []


def test_a_declared_mainline_image_needs_no_version_record(gate: Gate) -> None:
    merging_shop(gate, mainlineImage="registry.example.com/shop/api:main-{sha7}")
    merge = sha("merge-template")
    gate.merged(merge)
    done = gate.wait_state(merge, "success", context="infrastream/development")
    assert done["description"] == "shop/v1 deployed to development"
    versions = gate.as_user("rita").get("/api/v1/applications/api/versions").json()
    assert versions[0]["image"] == f"registry.example.com/shop/api:main-{merge[:7]}"
    assert versions[0]["commit"] == merge and versions[0]["recordedBy"] == f"scm:{gate.kind}"


def test_a_push_that_does_not_touch_a_monorepo_apps_path_changes_nothing(gate: Gate) -> None:
    gate.connect()
    gate.apply(track={"releaseOn": "merge", "mergeWindow": "1s"},
               apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository,
                                        "path": "services/api"}}})
    response = gate.merged(sha("docs"), files=("docs/index.md",))
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"
    assert response.json()["reason"] == "nothing below services/api changed for api"
    touched = gate.merged(sha("api-fix"), files=("services/api/app.py",))
    assert touched.json()["outcome"] == "accepted"


def test_on_a_manual_track_a_merge_records_the_build_and_cuts_nothing(gate: Gate) -> None:
    gate.connect()
    gate.apply(apps={"api": {"source": {"scm": gate.kind, "repository": gate.repository},
                             "mainlineImage": "registry.example.com/shop/api:main-{sha7}"}})
    merge = sha("manual")
    gate.merged(merge)
    gate.wait_for(lambda: [v for v in gate.as_user("rita").get(
        "/api/v1/applications/api/versions").json() if v["commit"] == merge],
        message="the mainline build")
    assert _releases(gate) == []
    assert gate.statuses(merge, "infrastream/development") == []
