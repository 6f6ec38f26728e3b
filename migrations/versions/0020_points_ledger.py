"""points ledger: entries, monthly rule snapshots and totals, self-reports, publications

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 16:40:00

`points_entry` is append-only: on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE the same
way `event`'s does (migration 0010), with a function of its own.
"""
from __future__ import annotations

import sqlalchemy as sa

import models.base
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'points_period',
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('rules', sa.JSON(), nullable=False),
        sa.Column('opened_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('summarised_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('period', name=op.f('pk_points_period')),
    )
    op.create_table(
        'points_month_total',
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('category', sa.String(length=12), nullable=False),
        sa.Column('points', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('period', 'person_id', 'category', name=op.f('pk_points_month_total')),
    )
    op.create_table(
        'points_rate',
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('rule', sa.String(length=40), nullable=False),
        sa.Column('category', sa.String(length=12), nullable=False),
        sa.Column('points', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('period', 'rule', name=op.f('pk_points_rate')),
    )
    op.create_table(
        'points_cap',
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('category', sa.String(length=12), nullable=False),
        sa.Column('month_cap', sa.Integer(), nullable=False),
        sa.Column('year_cap', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('period', 'category', name=op.f('pk_points_cap')),
    )
    op.create_table(
        'points_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('category', sa.String(length=12), nullable=False),
        sa.Column('points', sa.Integer(), nullable=False),
        sa.Column('rule', sa.String(length=40), nullable=False),
        sa.Column('source_type', sa.String(length=20), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('capped', sa.String(length=10), nullable=True),
        sa.Column('reverses_id', sa.Integer(), nullable=True),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_points_entry_person_id_person')),
        sa.ForeignKeyConstraint(['reverses_id'], ['points_entry.id'],
                                name=op.f('fk_points_entry_reverses_id_points_entry')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_points_entry')),
        sa.UniqueConstraint('reverses_id', name=op.f('uq_points_entry_reverses_id')),
    )
    op.create_index('ix_points_entry_person_category_period', 'points_entry', ['person_id', 'category', 'period'])
    op.create_index('ix_points_entry_source', 'points_entry', ['source_type', 'source_id'])
    op.create_index('ix_points_entry_period', 'points_entry', ['period'])
    op.create_index('uq_points_entry_fact', 'points_entry', ['rule', 'source_type', 'source_id', 'person_id'],
                    unique=True, postgresql_where=sa.text('reverses_id IS NULL'),
                    sqlite_where=sa.text('reverses_id IS NULL'))
    op.create_table(
        'self_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('category', sa.String(length=12), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('points', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_self_report_person_id_person')),
        sa.ForeignKeyConstraint(['branch_id'], ['organisation.id'],
                                name=op.f('fk_self_report_branch_id_organisation')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['person.id'], name=op.f('fk_self_report_decided_by_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_self_report')),
        sa.UniqueConstraint('number', name=op.f('uq_self_report_number')),
    )
    op.create_index(op.f('ix_self_report_person_id'), 'self_report', ['person_id'])
    op.create_index(op.f('ix_self_report_branch_id'), 'self_report', ['branch_id'])
    op.create_table(
        'points_publication',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('recipient_id', sa.Integer(), nullable=False),
        sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['recipient_id'], ['person.id'],
                                name=op.f('fk_points_publication_recipient_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_points_publication')),
        sa.UniqueConstraint('period', 'kind', 'recipient_id',
                            name=op.f('uq_points_publication_period_kind_recipient_id')),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION points_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'points_entry is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
    """)
    op.execute("CREATE TRIGGER points_entry_no_update_or_delete BEFORE UPDATE OR DELETE ON points_entry "
               "FOR EACH ROW EXECUTE FUNCTION points_entry_append_only()")
    op.execute("CREATE TRIGGER points_entry_no_truncate BEFORE TRUNCATE ON points_entry "
               "FOR EACH STATEMENT EXECUTE FUNCTION points_entry_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS points_entry_no_truncate ON points_entry")
        op.execute("DROP TRIGGER IF EXISTS points_entry_no_update_or_delete ON points_entry")
        op.execute("DROP FUNCTION IF EXISTS points_entry_append_only()")
    op.drop_table('points_publication')
    op.drop_index(op.f('ix_self_report_branch_id'), table_name='self_report')
    op.drop_index(op.f('ix_self_report_person_id'), table_name='self_report')
    op.drop_table('self_report')
    op.drop_index('uq_points_entry_fact', table_name='points_entry')
    op.drop_index('ix_points_entry_period', table_name='points_entry')
    op.drop_index('ix_points_entry_source', table_name='points_entry')
    op.drop_index('ix_points_entry_person_category_period', table_name='points_entry')
    op.drop_table('points_entry')
    op.drop_table('points_cap')
    op.drop_table('points_rate')
    op.drop_table('points_month_total')
    op.drop_table('points_period')
