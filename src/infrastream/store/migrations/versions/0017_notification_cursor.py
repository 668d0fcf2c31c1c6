"""notifications: the audit cursor of the notification pass starts at the newest entry, so an
existing installation is not told again about everything that ever happened

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

CURSOR = 'notifications-audit-cursor'


def upgrade() -> None:
    bind = op.get_bind()
    newest = bind.execute(sa.text('SELECT MAX(seq) FROM audit_log')).scalar() or 0
    bind.execute(sa.text('INSERT INTO server_settings (key, value) VALUES (:key, :value)'),
                 {'key': CURSOR, 'value': str(newest)})


def downgrade() -> None:
    op.get_bind().execute(sa.text('DELETE FROM server_settings WHERE key = :key'),
                          {'key': CURSOR})
