"""one number space: the item_number table

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 15:55:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'item_number',
        sa.Column('number', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('number', name=op.f('pk_item_number')),
        sa.UniqueConstraint('kind', 'item_id', name=op.f('uq_item_number_kind_item_id')),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('item_number')
