"""sso exchanges: the ID tokens `infrastream login --sso` exchanged, so each is used once

Revision ID: 0016
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sso_exchanges',
    sa.Column('id_token_hash', sa.String(length=64), nullable=False),
    sa.Column('exchanged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id_token_hash', name=op.f('pk_sso_exchanges'))
    )


def downgrade() -> None:
    op.drop_table('sso_exchanges')
