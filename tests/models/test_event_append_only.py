"""The event log is append-only in the database itself: SQL from the application's connection
cannot change or remove an event (PostgreSQL trigger, migration 0010)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from models.event import Event, record
from tests.conftest import needs_postgres


@pytest.fixture
def one_event(db):
    with db.session() as s:
        record(s, "test.recorded", subject_type="system", data={"n": 1})
        s.commit()


def events(db) -> list[tuple[str, dict]]:
    with db.session() as s:
        return [(e.kind, e.data) for e in s.scalars(select(Event))]


@needs_postgres
@pytest.mark.parametrize("statement", [
    "UPDATE event SET kind = 'forged', data = '{}'",
    "DELETE FROM event",
    "TRUNCATE event",
    "TRUNCATE person CASCADE",  # would empty event through its foreign key
])
def test_the_applications_connection_cannot_change_an_event(db, one_event, statement):
    with pytest.raises(DBAPIError, match="event is append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert events(db) == [("test.recorded", {"n": 1})]


@needs_postgres
def test_the_application_cannot_switch_the_trigger_off(db, one_event):
    """Replica mode skips ordinary triggers, so only a superuser may enter it; the production role
    is not one. The tests connect as a superuser, so this runs as a plain role with every table
    privilege on `event`, created in a transaction that is rolled back (roles are transactional)."""
    role = f"zhitong_app_{uuid.uuid4().hex[:8]}"
    with db.engine.connect() as conn, conn.begin() as outer:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON event TO {role}"))
        conn.execute(text(f"SET LOCAL ROLE {role}"))
        with pytest.raises(DBAPIError, match="session_replication_role"), conn.begin_nested():
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in ("UPDATE event SET kind = 'forged'", "DELETE FROM event", "TRUNCATE event"):
            with pytest.raises(DBAPIError, match="event is append-only"), conn.begin_nested():
                conn.execute(text(statement))
        outer.rollback()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 1
