"""Fixtures of the notification tests: services over a real database, receivers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receivers import HttpReceiver

from infrastream.service.context import Services, open_services


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    found = open_services(tmp_path / "data", database_url)
    yield found
    found.db.dispose()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    found = HttpReceiver().start()
    yield found
    found.stop()
