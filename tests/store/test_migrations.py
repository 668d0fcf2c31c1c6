"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from infrastream.store.database import open_database
from infrastream.store.tables import metadata


def test_migrations_produce_the_declared_schema(database_url):
    engine = open_database(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert compare_metadata(context, metadata) == []
            assert set(inspect(conn).get_table_names()) >= set(metadata.tables)
    finally:
        engine.dispose()


def test_opening_a_migrated_database_again_is_harmless(database_url):
    open_database(database_url).dispose()
    engine = open_database(database_url)
    engine.dispose()
