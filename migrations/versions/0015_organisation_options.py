"""organisation options

Revision ID: 0015
Revises: 0007
Create Date: 2026-12-01 15:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0015'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'org_option',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('value', sa.String(length=100), nullable=False),
        sa.Column('set_by_id', sa.Integer(), nullable=True),
        sa.Column('set_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                                name=op.f('fk_org_option_organisation_id_organisation')),
        sa.ForeignKeyConstraint(['set_by_id'], ['person.id'], name=op.f('fk_org_option_set_by_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_org_option')),
        sa.UniqueConstraint('organisation_id', 'name', name=op.f('uq_org_option_organisation_id_name')),
    )


def downgrade() -> None:
    op.drop_table('org_option')
