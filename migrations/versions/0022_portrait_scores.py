"""portrait scores set by hand

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 16:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'portrait_score',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('feature', sa.String(length=20), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('set_by_id', sa.Integer(), nullable=True),
        sa.Column('set_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                                name=op.f('fk_portrait_score_organisation_id_organisation')),
        sa.ForeignKeyConstraint(['set_by_id'], ['person.id'], name=op.f('fk_portrait_score_set_by_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portrait_score')),
        sa.UniqueConstraint('organisation_id', 'feature', name=op.f('uq_portrait_score_organisation_id_feature')),
    )


def downgrade() -> None:
    op.drop_table('portrait_score')
