"""The gate stories run once per Git host (GitHub, GitLab) and per database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gate_world import Gate, gate_world


@pytest.fixture(params=["github", "gitlab"])
def gate(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[Gate]:
    with gate_world(tmp_path, database_url, request.param) as world:
        yield world
