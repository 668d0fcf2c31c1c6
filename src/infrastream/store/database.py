"""Opening the database: SQLite (the embedded default, WAL mode) or PostgreSQL, migrated.

`open_database(url)` returns an Engine whose schema is at the newest Alembic revision. SQLite
gets WAL, foreign keys and a busy timeout on every connection so the engine loop, the API
threads and a CLI can share one file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_OPTION = "infrastream_write"
"""Execution option marking a connection whose transaction will write (see `writing`)."""


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'infrastream.db'}"


def _alembic_config() -> Config:
    from alembic.config import Config  # alembic only where the schema is migrated or checked

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            # A write transaction takes the write lock at BEGIN, so two writers queue instead
            # of deadlocking on a lock upgrade; reads stay deferred and never block (WAL).
            immediate = connection.get_execution_options().get(WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        _disable_pysqlite_begin(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _disable_pysqlite_begin(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed at the end of the block, rolled back on error."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


def migrate(engine: Engine) -> None:
    from alembic import command

    config = _alembic_config()
    with writing(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str) -> Engine:
    engine = create(url)
    migrate(engine)
    return engine


def schema_problem(engine: Engine) -> str | None:
    """Why the database cannot serve now (unreachable, or its schema is not the newest
    migration this code knows), or None when it can."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception as exc:  # any driver failure means "not ready", with its words
        return f"the database does not answer: {type(exc).__name__}: {exc}"
    newest = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
    if current != newest:
        return (f"the database schema is at {', '.join(sorted(current)) or 'nothing'}, not "
                f"{', '.join(sorted(newest))}: run a server of this version to migrate it")
    return None
