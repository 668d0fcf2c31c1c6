"""Persistence: SQLAlchemy tables, Alembic migrations, SQLite and PostgreSQL."""
