"""notifications: channels (Slack, Teams, email, signed webhook), who subscribes to what,
the events that happened (one row per notification, deduplicated by key) and their
deliveries per channel (the outbox); users gain an email address

Revision ID: 0014
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0011'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('email', sa.String(length=254), nullable=True))
    op.create_table('notification_channels',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('settings', sa.Text(), nullable=False),
    sa.Column('public', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_notification_channels'))
    )
    op.create_table('notification_subscriptions',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=63), nullable=False),
    sa.Column('track', sa.String(length=63), nullable=True),
    sa.Column('selector', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=63), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=63), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_subscriptions')),
    sa.UniqueConstraint('channel', 'track', 'selector', 'value',
                        name='uq_notification_subscriptions_channel')
    )
    op.create_table('notification_events',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('track', sa.String(length=63), nullable=False),
    sa.Column('release', sa.String(length=130), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_events')),
    sa.UniqueConstraint('key', name='uq_notification_events_key')
    )
    op.create_table('notification_deliveries',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=63), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    sa.UniqueConstraint('event_id', 'channel', name='uq_notification_deliveries_event_id')
    )
    op.create_index('ix_notification_deliveries_due', 'notification_deliveries',
                    ['outcome', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notification_deliveries_due', table_name='notification_deliveries')
    op.drop_table('notification_deliveries')
    op.drop_table('notification_events')
    op.drop_table('notification_subscriptions')
    op.drop_table('notification_channels')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('email')
