"""environment health: the live health each environment's target reports

Revision ID: 0013
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0010'
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


def downgrade() -> None:
    op.drop_table('environment_health')
