"""A database restart kills every pooled connection. The pool does not ping before each checkout
(that would cost a round trip per message), so the first message after the restart meets a dead
connection: it is handled again on a fresh one, recorded once, and the member sees the normal
answer."""

from __future__ import annotations

import logging

import psycopg
import pytest
from sqlalchemy import func, select

from models.directive import Delivery
from models.event import Event
from models.inbound import InboundReceipt
from tests.bot.test_read_path import directive
from tests.conftest import needs_postgres
from tests.factories import small_tree


@pytest.fixture
def people(db):
    with db.session() as s:
        return {key: p.id for key, p in small_tree(s).items()}


def _restart_database(db) -> int:
    """What a database restart does to the app's pooled connections: the server ends them. Only
    this app's (other tests may share the database), from a connection outside its pools."""
    pids = set()
    for engine in {db.engine, db.read_engine}:
        with engine.connect() as conn:
            pids.add(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    with psycopg.connect(db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        return sum(conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] for pid in pids)


@needs_postgres
def test_a_write_after_the_database_dropped_its_connections_is_recorded_once(chat, db, people, caplog):
    number = directive(db, "报送党费收缴情况", [people["zhangwei"], people["liuyang"]])
    assert chat.say("liuyang", f"收到 {number}").startswith(f"已确认收到 #{number}")  # the pool holds connections now
    assert _restart_database(db) == 2

    with caplog.at_level(logging.WARNING, logger="bot.dispatch"):
        answer = chat.say("zhangwei", f"收到 {number}")
    assert answer.startswith(f"已确认收到 #{number}")
    assert any("trying once more" in r.getMessage() for r in caplog.records)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboundReceipt)) == 2
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "delivery.acknowledged")) == 2
        acked = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.acknowledged_at.is_not(None)))
        assert acked == 2
