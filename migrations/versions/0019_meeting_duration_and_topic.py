"""Meetings get a duration and a topic

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 16:45:00

`meeting.duration_minutes` (90 for the meetings already scheduled, as for new ones unless
`时长` says otherwise): a meeting now closes by itself 30 minutes after its end, and two meetings
of a branch clash when their times overlap. `meeting.topic`: the 议题 written under `会议 …`.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('meeting', sa.Column('duration_minutes', sa.Integer(), nullable=False, server_default='90'))
    op.add_column('meeting', sa.Column('topic', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('meeting') as batch:
        batch.drop_column('topic')
        batch.drop_column('duration_minutes')
