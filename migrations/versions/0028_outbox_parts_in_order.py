"""the parts of a long text held behind the part before them; publications sent to everyone

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-02 12:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0028'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'points_publication_run',
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('finished_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('period', 'kind', name=op.f('pk_points_publication_run')),
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('after_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_message_after_id_outbox_message'), 'outbox_message',
                                    ['after_id'], ['id'])
        batch_op.create_index('ix_outbox_after', ['after_id'], unique=False,
                              postgresql_where=sa.text('after_id IS NOT NULL'),
                              sqlite_where=sa.text('after_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_table('points_publication_run')
    # A part still held would never go: let it go now, out of order rather than never.
    op.execute("UPDATE outbox_message SET status = 'pending' WHERE status = 'held'")
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_after', postgresql_where=sa.text('after_id IS NOT NULL'),
                            sqlite_where=sa.text('after_id IS NOT NULL'))
        batch_op.drop_constraint(batch_op.f('fk_outbox_message_after_id_outbox_message'), type_='foreignkey')
        batch_op.drop_column('after_id')
