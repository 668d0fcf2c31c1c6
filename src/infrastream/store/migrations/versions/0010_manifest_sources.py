"""manifest sources, history, teams

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('manifest_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manifest_source', sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column('commit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('author', sa.String(length=200), nullable=True))
    with op.batch_alter_table('manifest_objects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=63), nullable=True))
    op.create_table('manifest_history',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('revision_id', Id, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('body', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['revision_id'], ['manifest_revisions.id'], name=op.f('fk_manifest_history_revision_id_manifest_revisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manifest_history'))
    )
    with op.batch_alter_table('manifest_history', schema=None) as batch_op:
        batch_op.create_index('ix_manifest_history_object', ['kind', 'name', 'id'], unique=False)
    op.create_table('manifest_sources',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('repository', sa.Text(), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('scm', sa.String(length=63), nullable=True),
    sa.Column('interval', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('commit', sa.String(length=64), nullable=True),
    sa.Column('applied_commit', sa.String(length=64), nullable=True),
    sa.Column('applied_revision', Id, nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('diagnostics', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_manifest_sources'))
    )
    op.create_table('teams',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('handles', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_teams'))
    )
    op.create_table('team_members',
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('user', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['team'], ['teams.name'], name=op.f('fk_team_members_team_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team', 'user', name=op.f('pk_team_members'))
    )


def downgrade() -> None:
    op.drop_table('team_members')
    op.drop_table('teams')
    op.drop_table('manifest_sources')
    with op.batch_alter_table('manifest_history', schema=None) as batch_op:
        batch_op.drop_index('ix_manifest_history_object')
    op.drop_table('manifest_history')
    with op.batch_alter_table('manifest_objects', schema=None) as batch_op:
        batch_op.drop_column('owner')
    with op.batch_alter_table('manifest_revisions', schema=None) as batch_op:
        batch_op.drop_column('author')
        batch_op.drop_column('commit')
        batch_op.drop_column('manifest_source')
