"""Shared fixtures: a real database (SQLite file or PostgreSQL), services and the engine.

Every test gets a database of its own, already at the newest migration: a copy of one
migrated by Alembic once per test process (an SQLite file copied; a PostgreSQL database
created with `CREATE DATABASE … TEMPLATE`), so that ~350 tests do not each run the whole
migration chain. Opening it still runs `migrate` (a no-op at head). The migrations
themselves are tested on empty databases (`empty_database_url`, tests/store).
"""

from __future__ import annotations

import os
import queue
import shutil
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx._transports.default as httpx_transports
import pytest
from sqlalchemy import Engine, create_engine, text

from infrastream.store.database import open_database

_create_ssl_context = httpx_transports.create_ssl_context
_default_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def _shared_default_ssl_context(verify: Any = True, cert: Any = None,
                                trust_env: bool = True) -> ssl.SSLContext:
    """httpx builds a new SSL context (reading certifi's whole CA bundle, ~20-30 ms) for
    every client, even one that only ever talks plain HTTP to loopback; the tests make
    thousands of clients. The default context (verify=True, no client certificate) is the
    same every time, so this process builds it once per CA setting; any other `verify` or
    `cert` goes to httpx as before."""
    if verify is not True or cert is not None or not trust_env:
        return _create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    if key not in _default_ssl_contexts:
        _default_ssl_contexts[key] = _create_ssl_context(verify=True, trust_env=True)
    return _default_ssl_contexts[key]


httpx_transports.create_ssl_context = _shared_default_ssl_context  # type: ignore[assignment]

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


class Databases:
    """The databases of one test process: migrated templates made on first use, fresh
    copies of them per test, and the PostgreSQL ones dropped behind the tests' backs (a
    thread drops a test's database while the next test runs)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self._sqlite: Path | None = None
        self._template: str | None = None
        self._admin: Engine | None = None
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._dropper: threading.Thread | None = None
        self._failed_drops: list[str] = []

    # -- PostgreSQL ------------------------------------------------------------------------

    def admin(self) -> Engine:
        if self._admin is None:
            if not _postgres_available():
                pytest.fail("PostgreSQL at 127.0.0.1:5432 is required (./dev.sh test starts it)")
            self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        return self._admin

    def _create(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
            # A commit does not wait for its WAL to reach the disk (~3 ms per commit here,
            # thousands per test): what other sessions see is the same, only a crash of
            # PostgreSQL itself could lose the last commits, and no test crashes it.
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        return PG_URL.format(name=name)

    def postgres(self, *, migrated: bool) -> str:
        """The URL of a new PostgreSQL database: empty, or a copy of the migrated template."""
        name = f"infra_{uuid.uuid4().hex[:12]}"
        if not migrated:
            return self._create(name)
        if self._template is None:
            template = f"infra_template_{self.worker}_{uuid.uuid4().hex[:8]}"
            open_database(self._create(template)).dispose()  # no session left: copyable
            self._template = template
        return self._create(name, self._template)

    def drop_later(self, url: str) -> None:
        if self._dropper is None:
            self._dropper = threading.Thread(target=self._drop_all, name="database-drops",
                                             daemon=True)
            self._dropper.start()
        self._drops.put(url.rsplit("/", 1)[1])

    def _drop_all(self) -> None:
        while (name := self._drops.get()) is not None:
            try:
                self._drop(name)
            except Exception as exc:  # told at the end of the session, the others dropped
                self._failed_drops.append(f"{name}: {type(exc).__name__}: {exc}")

    def _drop(self, name: str) -> None:
        with self.admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    # -- SQLite ----------------------------------------------------------------------------

    def sqlite(self, directory: Path, *, migrated: bool) -> str:
        """The URL of a new SQLite file in `directory`: none yet, or a migrated copy."""
        path = directory / "infrastream.db"
        if migrated:
            if self._sqlite is None:
                template = self.directory / "template.db"
                engine = open_database(f"sqlite:///{template}")
                with engine.connect() as conn:  # everything into the main file: one to copy
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                engine.dispose()
                self._sqlite = template
            shutil.copyfile(self._sqlite, path)
        return f"sqlite:///{path}"

    def close(self) -> None:
        if self._dropper is not None:
            self._drops.put(None)
            self._dropper.join(timeout=120)
        if self._template is not None:
            self._drop(self._template)
        if self._admin is not None:
            self._admin.dispose()
        assert not self._failed_drops, f"test databases not dropped: {self._failed_drops}"


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    found = Databases(tmp_path_factory.mktemp("databases"))
    try:
        yield found
    finally:
        found.close()


def _database(request: pytest.FixtureRequest, tmp_path: Path, databases: Databases, *,
              migrated: bool) -> Iterator[str]:
    if request.param == "sqlite":
        yield databases.sqlite(tmp_path, migrated=migrated)
        return
    url = databases.postgres(migrated=migrated)
    try:
        yield url
    finally:
        databases.drop_later(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 databases: Databases) -> Iterator[str]:
    """A database of this test's own at the newest migration, with no data: an SQLite file,
    or a new PostgreSQL database."""
    yield from _database(request, tmp_path, databases, migrated=True)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path,
                       databases: Databases) -> Iterator[str]:
    """A fresh, empty database (no tables at all): an SQLite file, or a new PostgreSQL
    database."""
    yield from _database(request, tmp_path, databases, migrated=False)


LONG_FIRST = (
    "tests/packaging/test_wheel_install.py",  # builds the wheel, pip-installs it, the demo
    "tests/engine/test_three_servers_proof.py",
    "tests/api/test_openapi_truth.py",
    "tests/cli/test_readme_walkthrough.py",
    "tests/portal/test_portal_browser.py",
    "tests/oidc/test_cli_sso.py",
    "tests/engine/test_crash_recovery.py",
    "tests/notify/test_approvers_are_told_story.py",
    "tests/api/test_authorization.py",
    "tests/engine/test_two_servers_story.py",
    "tests/cli/live/",
    "tests/cli/test_demo_lifecycle.py",
    "tests/gates/test_gates.py",
    "tests/gate/test_scm_commands.py",
    "tests/oidc/test_portal_sso.py",
    "tests/engine/test_cluster_targets_story.py",
    "tests/engine/test_truth_stories.py",
    "tests/gate/",
    "tests/engine/",
)
"""The test files that take longest (a `serve` process or three, Chromium, Node, pip, many
requests), longest first, as measured on the 2-core machine: they are dealt out first, so
that the run does not end with one worker on a long test while the others are idle (with
`--no-loadscope-reorder`, ./dev.sh test). Only the order depends on this list."""


def _long_first(item: pytest.Item) -> int:
    path = item.nodeid.split("::")[0]
    return next((rank for rank, prefix in enumerate(LONG_FIRST) if path.startswith(prefix)),
                len(LONG_FIRST))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup` (./dev.sh test) every test is dealt out on its own to the
    next free worker, except those sharing a module- or class-scoped fixture (a real `serve`,
    the demo, Chromium): one group per module, so that fixture starts once. The long ones
    come first (`LONG_FIRST`; a stable sort: a module's tests stay together and in order)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group") is not None:
            continue
        if any(definition.scope in ("module", "class", "package")
               for definitions in info.name2fixturedefs.values()
               for definition in definitions):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=_long_first)
