"""Fixtures of the portal tests (the world itself is in `portal_site`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from portal_site import Served, Site, build_site, serving


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    built = build_site(tmp_path)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def quiet_site(tmp_path: Path) -> Iterator[Site]:
    """The same without the engine (shop/v1 waits for development) and not a demo."""
    built = build_site(tmp_path, engine=False, demo=False)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def served(site: Site) -> Iterator[Served]:
    """`site` behind a real uvicorn server on a free loopback port."""
    with serving(site) as running:
        yield running
