"""The fake GitHub and GitLab, started on loopback for one test each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scm_payloads import PROJECT, REPOSITORY

from infrastream.scm.fake_github import FakeGitHub
from infrastream.scm.fake_gitlab import FakeGitLab


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(repositories=[REPOSITORY]) as fake:
        yield fake


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(projects=[PROJECT]) as fake:
        yield fake
