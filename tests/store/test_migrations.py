"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from infrastream.store.database import open_database
from infrastream.store.tables import metadata


def test_migrations_produce_the_declared_schema(empty_database_url):
    engine = open_database(empty_database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert compare_metadata(context, metadata) == []
            assert set(inspect(conn).get_table_names()) >= set(metadata.tables)
    finally:
        engine.dispose()


def test_opening_a_migrated_database_again_is_harmless(empty_database_url):
    open_database(empty_database_url).dispose()
    engine = open_database(empty_database_url)
    engine.dispose()


def test_an_upgraded_installation_tells_nothing_of_its_past(empty_database_url):
    """Migration 0017 starts the notification pass's audit cursor at the newest entry."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import insert, select

    from infrastream.store import database
    from infrastream.store.tables import server_settings

    engine = database.create(empty_database_url)
    config = database._alembic_config()
    try:
        with database.writing(engine) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0014")
            for seq in (1, 2, 3):
                conn.execute(insert(metadata.tables["audit_log"]).values(
                    seq=seq, at=datetime.now(UTC), actor="rita", action="stage.fail",
                    object_type="release", object_id="shop/v1", prev_hash="x", hash="y"))
        with database.writing(engine) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(select(server_settings.c.value).where(
                server_settings.c.key == "notifications-audit-cursor")).scalar() == "3"
    finally:
        engine.dispose()
