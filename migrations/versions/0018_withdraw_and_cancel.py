"""withdrawn directives and study items, cancelled meetings, WeCom card response codes

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 16:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('directive') as batch:
        batch.add_column(sa.Column('withdrawn_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('withdraw_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('meeting') as batch:
        batch.add_column(sa.Column('cancelled_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('outbox_message') as batch:
        batch.add_column(sa.Column('response_code', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message') as batch:
        batch.drop_column('response_code')
    with op.batch_alter_table('meeting') as batch:
        batch.drop_column('cancel_reason')
        batch.drop_column('cancelled_at')
    with op.batch_alter_table('directive') as batch:
        batch.drop_column('withdraw_reason')
        batch.drop_column('withdrawn_at')
