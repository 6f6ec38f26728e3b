"""event append-only in the database; receipts' replies no longer in clear; binding tries by time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 15:40:00

On PostgreSQL a trigger refuses every UPDATE, DELETE and TRUNCATE of `event`, whoever sends it, so
the record cannot be changed with SQL either (the ORM refused already). Ordinary triggers do not
fire while `session_replication_role` is `replica`, and only a superuser may set that: the
application's role must not be one. A test database's cleanup uses exactly that, inside its own
transaction. SQLite keeps the ORM's guard only: it has no roles to tell the cleanup from the
application.
"""
from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Wrong 绑定 tries are counted by time for all followers together (models.identity).
    with op.batch_alter_table('binding_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_binding_attempt_at'), ['at'], unique=False)
    # Receipts' replies are stored sealed from now on (models.inbound); those written in clear
    # may hold live one-time codes. They only served retries, minutes after the message.
    op.execute("UPDATE inbound_receipt SET reply_text = NULL WHERE reply_text IS NOT NULL")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'event is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
    """)
    op.execute("CREATE TRIGGER event_no_update_or_delete BEFORE UPDATE OR DELETE ON event "
               "FOR EACH ROW EXECUTE FUNCTION event_append_only()")
    op.execute("CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON event "
               "FOR EACH STATEMENT EXECUTE FUNCTION event_append_only()")


def downgrade() -> None:
    with op.batch_alter_table('binding_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_binding_attempt_at'))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS event_no_truncate ON event")
    op.execute("DROP TRIGGER IF EXISTS event_no_update_or_delete ON event")
    op.execute("DROP FUNCTION IF EXISTS event_append_only()")
