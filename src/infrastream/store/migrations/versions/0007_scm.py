"""scm gate: connections, deliveries, the status outbox, pull request heads and merges

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('app_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pull_request', sa.Integer(), nullable=True))
        batch_op.create_index('ix_app_versions_app_commit', ['app', 'commit'], unique=False)
    with op.batch_alter_table('prerelease_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))

    op.create_table('scm_connections',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('settings', sa.Text(), nullable=False),
    sa.Column('public', sa.JSON(), nullable=False),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scm_connections'))
    )
    op.create_table('scm_deliveries',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('connection', sa.String(length=63), nullable=False),
    sa.Column('delivery_id', sa.String(length=100), nullable=True),
    sa.Column('claimed_id', sa.String(length=100), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=True),
    sa.Column('sender', sa.String(length=100), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('received_at', Time, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scm_deliveries')),
    sa.UniqueConstraint('connection', 'delivery_id',
                        name='uq_scm_deliveries_connection_delivery')
    )
    op.create_index('ix_scm_deliveries_connection', 'scm_deliveries', ['connection', 'id'],
                    unique=False)
    op.create_table('scm_statuses',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('connection', sa.String(length=63), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('context', sa.String(length=255), nullable=False),
    sa.Column('pending_key', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('target_url', sa.Text(), nullable=True),
    sa.Column('ref', sa.String(length=255), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', Time, nullable=False),
    sa.Column('claimed_until', Time, nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('receipt', sa.JSON(), nullable=True),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('updated_at', Time, nullable=False),
    sa.Column('delivered_at', Time, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scm_statuses')),
    sa.UniqueConstraint('pending_key', name=op.f('uq_scm_statuses_pending_key'))
    )
    op.create_index('ix_scm_statuses_due', 'scm_statuses', ['outcome', 'next_attempt_at'],
                    unique=False)
    op.create_table('gate_heads',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('connection', sa.String(length=63), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('ref', sa.String(length=255), nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('base_branch', sa.String(length=255), nullable=False),
    sa.Column('head_branch', sa.String(length=255), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('web_url', sa.Text(), nullable=False),
    sa.Column('delivery_id', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('superseded_by', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('reported', sa.JSON(), nullable=True),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('updated_at', Time, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_heads')),
    sa.UniqueConstraint('connection', 'repository', 'ref', 'sha', name='uq_gate_heads_head')
    )
    op.create_index('ix_gate_heads_done', 'gate_heads', ['done', 'id'], unique=False)
    op.create_table('gate_runs',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('head_id', Id, nullable=False),
    sa.Column('app', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('run_id', Id, nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('updated_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['head_id'], ['gate_heads.id'],
                            name=op.f('fk_gate_runs_head_id_gate_heads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['prerelease_runs.id'],
                            name=op.f('fk_gate_runs_run_id_prerelease_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_runs')),
    sa.UniqueConstraint('head_id', 'app', name='uq_gate_runs_head_app')
    )
    op.create_table('gate_merges',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('connection', sa.String(length=63), nullable=False),
    sa.Column('repository', sa.String(length=255), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('app', sa.String(length=63), nullable=False),
    sa.Column('app_set', sa.String(length=63), nullable=False),
    sa.Column('pusher', sa.String(length=100), nullable=False),
    sa.Column('delivery_id', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('version_id', Id, nullable=True),
    sa.Column('built_at', Time, nullable=True),
    sa.Column('release_id', Id, nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('reported', sa.JSON(), nullable=True),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('updated_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['app_versions.id'],
                            name=op.f('fk_gate_merges_version_id_app_versions')),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'],
                            name=op.f('fk_gate_merges_release_id_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_merges')),
    sa.UniqueConstraint('connection', 'repository', 'sha', 'app',
                        name='uq_gate_merges_commit_app')
    )
    op.create_index('ix_gate_merges_done', 'gate_merges', ['done', 'id'], unique=False)
    op.create_index('ix_gate_merges_release', 'gate_merges', ['release_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_gate_merges_release', table_name='gate_merges')
    op.drop_index('ix_gate_merges_done', table_name='gate_merges')
    op.drop_table('gate_merges')
    op.drop_table('gate_runs')
    op.drop_index('ix_gate_heads_done', table_name='gate_heads')
    op.drop_table('gate_heads')
    op.drop_index('ix_scm_statuses_due', table_name='scm_statuses')
    op.drop_table('scm_statuses')
    op.drop_index('ix_scm_deliveries_connection', table_name='scm_deliveries')
    op.drop_table('scm_deliveries')
    op.drop_table('scm_connections')
    with op.batch_alter_table('prerelease_runs', schema=None) as batch_op:
        batch_op.drop_column('cancel_reason')
    with op.batch_alter_table('app_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_app_versions_app_commit')
        batch_op.drop_column('pull_request')
