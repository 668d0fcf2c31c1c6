"""job leases, server nodes, node bindings (several servers on one database)

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_leases',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('expires', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_job_leases'))
    )
    op.create_table('server_nodes',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('instance', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('seen', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_server_nodes'))
    )
    op.create_table('node_bindings',
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('node', sa.String(length=200), nullable=False),
    sa.Column('bound', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('environment', name=op.f('pk_node_bindings'))
    )


def downgrade() -> None:
    op.drop_table('node_bindings')
    op.drop_table('server_nodes')
    op.drop_table('job_leases')
