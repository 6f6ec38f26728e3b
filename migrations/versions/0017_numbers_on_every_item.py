"""one number space: a number on directives, study items, meetings and leave requests

Directive and study numbers stay what people were sent (number = id). Meetings, then leave
requests, get new numbers above the highest directive number, in the order they were created, and
the item_number sequence continues above all of them.

Revision ID: 0017
Revises: 0008
Create Date: 2026-12-01 16:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0008'
branch_labels = None
depends_on = None

_TABLES = ('directive', 'meeting', 'leave_request')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
    conn = op.get_bind()
    numbers = sa.table('item_number', sa.column('number', sa.Integer), sa.column('kind', sa.String),
                       sa.column('item_id', sa.Integer))
    taken = conn.execute(sa.select(sa.func.max(numbers.c.number))).scalar() or 0
    directives = conn.execute(sa.text('SELECT id, kind FROM directive ORDER BY id')).all()
    conn.execute(sa.text('UPDATE directive SET number = id'))
    rows = [{'number': i, 'kind': 'study' if kind == 'study' else 'directive', 'item_id': i}
            for i, kind in directives]
    highest = max([taken, *(r['number'] for r in rows)])
    for table, kind in (('meeting', 'meeting'), ('leave_request', 'leave')):
        ids = conn.execute(sa.text(f'SELECT id FROM {table} ORDER BY id')).scalars().all()
        given = [{'id': i, 'number': highest + n} for n, i in enumerate(ids, start=1)]
        if given:
            conn.execute(sa.text(f'UPDATE {table} SET number = :number WHERE id = :id'), given)
        rows += [{'number': g['number'], 'kind': kind, 'item_id': g['id']} for g in given]
        highest += len(given)
    if rows:
        conn.execute(numbers.insert(), rows)
    if conn.dialect.name == 'postgresql' and highest:
        # Explicit numbers do not move the identity sequence; SQLite's AUTOINCREMENT follows the
        # highest row by itself.
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('item_number', 'number'), :n)"),
                     {'n': highest})
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('number', existing_type=sa.Integer(), nullable=False)
            batch_op.create_unique_constraint(batch_op.f(f'uq_{table}_number'), ['number'])


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'uq_{table}_number'), type_='unique')
            batch_op.drop_column('number')
    op.execute(sa.text("DELETE FROM item_number WHERE kind IN ('directive', 'study', 'meeting', 'leave')"))
