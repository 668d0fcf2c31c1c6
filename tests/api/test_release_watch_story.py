"""Story: a CI job follows a release without polling it. It reads the release once and keeps
its `ETag`; asking again with `If-None-Match` answers 304 while nothing changed; with
`Prefer: wait=N` the request is held and answered the moment the release moves (here: the
release manager promotes it while the job waits), or with 304 after N seconds when nothing
happened. Against a real server over HTTP, a real database and the engine running.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

from test_api import apply_example, cut_release, record_versions, stage_succeeded, wait_for

if TYPE_CHECKING:
    from conftest import Api


def test_a_held_read_is_answered_when_the_release_moves_and_304_when_it_does_not(
        people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    ci = people.as_user("ci-bot")
    wait_for(ci, release, stage_succeeded(0))

    first = ci.get(release)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')

    # a conditional read of an unchanged release: 304, no body, the same tag
    same = ci.get(release, headers={"If-None-Match": tag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", tag)
    # another tag (what the job saw before) gets the current body
    other = ci.get(release, headers={"If-None-Match": '"something-older"'})
    assert other.status_code == 200 and other.json() == first.json()

    # a wait longer than the server holds reads is cut to its most, and says so
    capped = ci.get(release, headers={"If-None-Match": '"something-older"', "Prefer": "wait=600"})
    assert capped.status_code == 200 and capped.headers["preference-applied"] == "wait=60"

    # held: nothing moves for a second, so 304 after the wait, saying it waited
    began = time.monotonic()
    idle = ci.get(release, headers={"If-None-Match": tag, "Prefer": "wait=1"})
    assert idle.status_code == 304
    assert idle.headers["preference-applied"] == "wait=1"
    assert time.monotonic() - began >= 1.0

    # held while the release manager promotes it: answered with the moved release
    answered: dict[str, Any] = {}

    def follow() -> None:
        response = ci.get(release, headers={"If-None-Match": tag, "Prefer": "wait=30"},
                          timeout=60)
        answered.update(status=response.status_code, body=response.json(),
                        tag=response.headers["etag"], at=time.monotonic())

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.3)  # the follower's request is being held by now
    assert not answered
    promoted = people.as_user("rita").post(release + "/promotions")
    assert promoted.status_code == 202, promoted.text
    follower.join(timeout=60)
    assert answered["status"] == 200
    assert answered["tag"] != tag
    assert answered["body"]["stages"][1]["state"] != first.json()["stages"][1]["state"]
    # what it was answered with is what the release says now or said on the way there
    assert ci.get(release, headers={"If-None-Match": answered["tag"]}).status_code in (200, 304)


def test_a_held_read_still_needs_a_valid_token_and_an_existing_release(people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    anonymous = people.client().get(release, headers={"If-None-Match": "*", "Prefer": "wait=5"})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    missing = people.as_user("ci-bot").get("/api/v1/releases/shop/v999",
                                           headers={"If-None-Match": "*", "Prefer": "wait=5"})
    assert missing.status_code == 404


def test_a_change_wakes_the_held_reads_of_its_release_only() -> None:
    """`watching.Changes`, which the held reads wait on: a change of shop/v2 leaves a read of
    shop/v1 waiting; a change of shop/v1, or of anything (None), wakes it."""
    from infrastream.api.watching import Changes

    async def story() -> list[str]:
        changes = Changes(asyncio.get_running_loop())
        woken: list[str] = []

        async def follow(label: str, release: str) -> None:
            await changes.wait(release, changes.generation(release), timeout=30)
            woken.append(label)

        v1 = asyncio.create_task(follow("v1", "shop/v1"))
        v2 = asyncio.create_task(follow("v2", "shop/v2"))
        await asyncio.sleep(0.01)
        changes("shop/v2")
        await asyncio.wait_for(v2, 5)
        await asyncio.sleep(0.05)
        assert not v1.done(), "a change of shop/v2 woke the read of shop/v1"
        changes("shop/v1")
        await asyncio.wait_for(v1, 5)
        again = asyncio.create_task(follow("anything", "shop/v1"))
        await asyncio.sleep(0.01)
        changes(None)
        await asyncio.wait_for(again, 5)
        return woken

    assert asyncio.run(story()) == ["v2", "v1", "anything"]
