"""audit entries waiting for the chainer; history-flat indexes and release numbers

Revision ID: 0012
Revises: 0018
Create Date: 2026-12-02 13:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0018'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('audit_pending',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=63), nullable=False),
    sa.Column('action', sa.String(length=63), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=200), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_pending'))
    )
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
        batch_op.create_index('ix_releases_number', ['app_set', 'number'], unique=False)
    releases = sa.table('releases', sa.column('id', Id), sa.column('name', sa.String),
                        sa.column('number', sa.Integer))
    bind = op.get_bind()
    numbered = [{"key": row.id, "number": int(row.name[1:])}
                for row in bind.execute(sa.select(releases.c.id, releases.c.name))
                if row.name.startswith("v") and row.name[1:].isdigit()
                and row.name[1:].isascii() and int(row.name[1:]) < 2**31]
    if numbered:
        bind.execute(releases.update().where(releases.c.id == sa.bindparam("key"))
                     .values(number=sa.bindparam("number")), numbered)
    deploying = sa.text("state = 'deploying'")
    running = sa.text("state = 'running'")
    op.create_index('ix_deployments_deploying', 'deployments', ['environment', 'id'],
                    postgresql_where=deploying, sqlite_where=deploying)
    op.create_index('ix_deployments_state', 'deployments', ['state', 'id'])
    op.create_index('ix_prerelease_runs_running', 'prerelease_runs', ['environment', 'id'],
                    postgresql_where=running, sqlite_where=running)


def downgrade() -> None:
    op.drop_index('ix_prerelease_runs_running', table_name='prerelease_runs')
    op.drop_index('ix_deployments_state', table_name='deployments')
    op.drop_index('ix_deployments_deploying', table_name='deployments')
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_index('ix_releases_number')
        batch_op.drop_column('number')
    op.drop_table('audit_pending')
