"""Alembic environment: runs migrations on the connection the store hands over."""

from __future__ import annotations

from alembic import context

from infrastream.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes one
    raise RuntimeError("infrastream migrations run through infrastream.store.database")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
