"""roster columns (党员类别, 岗位类型) and leaving (状态 已转出)

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.Enum('full', 'probationary', name='membercategory',
                                                          native_enum=False, length=20),
                                      server_default='full', nullable=False))
        batch_op.add_column(sa.Column('post_type', sa.Enum('office', 'field', 'posted', name='posttype',
                                                           native_enum=False, length=20), nullable=True))
        batch_op.add_column(sa.Column('left_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('left_on')
        batch_op.drop_column('post_type')
        batch_op.drop_column('category')
