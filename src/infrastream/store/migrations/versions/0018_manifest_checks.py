"""manifest pull-request checks, check-run output, push-requested source syncs

Revision ID: 0018
Revises: 0010
Create Date: 2026-12-02 13:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0018'
down_revision = '0010'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('manifest_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('scm_statuses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('output', sa.JSON(), nullable=True))
    op.create_table('manifest_checks',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=63), nullable=False),
    sa.Column('connection', sa.String(length=63), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manifest_checks')),
    sa.UniqueConstraint('source', 'sha', name='uq_manifest_checks_source_sha')
    )
    with op.batch_alter_table('manifest_checks', schema=None) as batch_op:
        batch_op.create_index('ix_manifest_checks_state', ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('manifest_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_manifest_checks_state')
    op.drop_table('manifest_checks')
    with op.batch_alter_table('scm_statuses', schema=None) as batch_op:
        batch_op.drop_column('output')
    with op.batch_alter_table('manifest_sources', schema=None) as batch_op:
        batch_op.drop_column('requested_at')
