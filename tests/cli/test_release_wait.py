"""`release status --wait` follows a release with held reads: it sends the entity tag of what
it saw with `Prefer: wait`, so the server answers when the release moves (no polling); against
a server that sends no tag (one that does not hold reads) it polls instead. Both against
stand-in HTTP servers that record what the CLI asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from stand_in import stand_in

from infrastream.cli import release_cmd

RUNNING = {"release": "shop/v1", "state": "active", "summary": "development deploying",
           "stages": [{"index": 0, "name": "development", "state": "deploying"}]}
DONE = {"release": "shop/v1", "state": "completed", "summary": "completed",
        "stages": [{"index": 0, "name": "development", "state": "succeeded"}]}


@pytest.fixture
def holding() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Holds reads: the first answer is RUNNING with tag "a"; a read naming "a" with
    `Prefer: wait` is answered DONE with tag "b" (the release moved while it was held)."""
    def answer(_path: str, headers: dict[str, str], count: int
               ) -> tuple[int, Any, dict[str, str]]:
        if headers.get("if-none-match") == '"a"' and "wait=" in headers.get("prefer", ""):
            return 200, DONE, {"ETag": '"b"', "Preference-Applied": headers["prefer"]}
        return 200, RUNNING, {"ETag": '"a"'}
    with stand_in(answer) as running:
        yield running


@pytest.fixture
def plain() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Holds nothing and sends no tag: RUNNING twice, then DONE."""
    def answer(_path: str, _headers: dict[str, str], count: int
               ) -> tuple[int, Any, dict[str, str]]:
        return 200, (DONE if count >= 3 else RUNNING), {}
    with stand_in(answer) as running:
        yield running


def test_wait_sends_the_tag_it_saw_and_is_answered_when_the_release_moves(cli, holding):
    url, seen = holding
    done = cli("release", "status", "shop/v1", "--wait", "--timeout", "20", "-o", "json",
               "--server", url, "--token", "t")
    assert done.code == 0, done.err
    assert json.loads(done.out)["state"] == "completed"
    assert len(seen) == 2, "one read to see it, one held read until it moved"
    assert "if-none-match" not in seen[0]
    assert seen[1]["if-none-match"] == '"a"'
    held = seen[1]["prefer"].removeprefix("wait=")
    assert held.isdigit() and 1 <= int(held) <= min(20, release_cmd.HELD_SECONDS)


def test_wait_polls_a_server_that_holds_no_reads(cli, plain, monkeypatch):
    monkeypatch.setattr(release_cmd, "POLL_SECONDS", 0.05)
    url, seen = plain
    done = cli("release", "status", "shop/v1", "--wait", "--timeout", "20", "-o", "json",
               "--server", url, "--token", "t")
    assert done.code == 0, done.err
    assert json.loads(done.out)["state"] == "completed"
    assert len(seen) == 3
    assert all("if-none-match" not in headers for headers in seen)
