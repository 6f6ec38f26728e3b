"""spent WeCom card response codes, and an index of the rows that carry one

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'card_code_use',
        sa.Column('code', sa.String(length=128), nullable=False),
        sa.Column('used_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('purpose', sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_card_code_use')),
    )
    # The codes spent before this table existed (by taps and 撤回): each named by a queued card update.
    op.execute(
        "INSERT INTO card_code_use (code, used_at, purpose) "
        "SELECT response_code, MIN(created_at), 'before' FROM ("
        "  SELECT json_extract(payload, '$.response_code') AS response_code, created_at FROM outbox_message"
        "  WHERE json_extract(payload, '$.type') = 'card_update') AS updates "
        "WHERE response_code IS NOT NULL GROUP BY response_code"
        if op.get_bind().dialect.name == "sqlite" else
        "INSERT INTO card_code_use (code, used_at, purpose) "
        "SELECT payload->>'response_code', MIN(created_at), 'before' FROM outbox_message "
        "WHERE payload->>'type' = 'card_update' AND payload->>'response_code' IS NOT NULL "
        "GROUP BY payload->>'response_code'"
    )
    op.create_index('ix_outbox_card_code', 'outbox_message', ['subject_id'], unique=False,
                    postgresql_where=sa.text('response_code IS NOT NULL'),
                    sqlite_where=sa.text('response_code IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_outbox_card_code', table_name='outbox_message',
                  postgresql_where=sa.text('response_code IS NOT NULL'),
                  sqlite_where=sa.text('response_code IS NOT NULL'))
    op.drop_table('card_code_use')
