"""The gate stories run once per Git host (GitHub, GitLab) and per database; what only
GitHub has (merge queues, Apps with check runs, `ping`) runs on `github_gate`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gate_world import Gate, gate_world


@pytest.fixture(params=["github", "gitlab"])
def gate(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[Gate]:
    with gate_world(tmp_path, database_url, request.param) as world:
        yield world


@pytest.fixture
def github_gate(tmp_path: Path, database_url: str) -> Iterator[Gate]:
    with gate_world(tmp_path, database_url, "github") as world:
        yield world
