"""environment health and teardowns: the live health each environment's target reports,
and the teardowns that stopped what ran there

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('environment_health',
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('release', sa.String(length=130), nullable=False),
    sa.Column('apps', sa.JSON(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('environment', name=op.f('pk_environment_health'))
    )
    op.create_table('environment_teardowns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.String(length=63), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_environment_teardowns'))
    )
    op.create_index('ix_environment_teardowns_environment', 'environment_teardowns',
                    ['environment', 'deployment_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_environment_teardowns_environment', table_name='environment_teardowns')
    op.drop_table('environment_teardowns')
    op.drop_table('environment_health')
