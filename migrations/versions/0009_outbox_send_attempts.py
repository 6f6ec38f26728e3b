"""outbox send attempts and deferrals

Revision ID: 0009
Revises: 0016
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = '0009'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_key', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('send_started_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deferrals', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('deferrals')
        batch_op.drop_column('send_started_at')
        batch_op.drop_column('send_key')
