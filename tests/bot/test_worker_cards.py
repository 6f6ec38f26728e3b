"""A WeCom card update is one outbox row and one update_template_card call, on PostgreSQL with
workers racing and crashing: its code serves one call, so no worker takes part of it, and a
resend that finds the code spent is that same call (the row is the code's only user), never a
false SENT for people whose cards were not updated."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, select

import bot.worker as worker
from models.cards import queue_update, update_payload
from models.event import Event
from models.outbox import OutboxMessage, OutboxStatus
from tests.bot.test_worker import NOTICE, _enqueue, _rows, _statuses, _users, drain_killed_in
from tests.conftest import needs_postgres

WITHDRAWN = "已撤回 2026年11月21日 19:45"
PEOPLE = [(f"member{i:02d}", None) for i in range(30)]


def _queue(runtime, clock, state, people=PEOPLE) -> str:
    state.clock = clock.timestamp  # the code ages with the test's clock
    code = state.issue_response_code()
    with runtime.db.session() as s:
        assert queue_update(s, update_payload(code, WITHDRAWN), people, at=clock(), purpose="withdrawn",
                            subject=("directive", 7)) == len(people)
    return code


def _update_calls(state) -> list:
    return [c for c in state.calls if c.path == "message/update_template_card"]


def _update_row(runtime) -> OutboxMessage:
    [row] = [r for r in _rows(runtime) if r.payload["type"] == "card_update"]
    return row


def _card_events(runtime) -> list[Event]:
    with runtime.db.session() as s:
        return list(s.scalars(select(Event).where(Event.kind.like("card.%")).order_by(Event.id)))


def test_a_card_update_is_one_row_listing_its_people(wechat_runtime, fake_wechat, clock):
    code = _queue(wechat_runtime, clock, fake_wechat.state)
    [row] = _rows(wechat_runtime)
    assert row.payload["recipients"] == [user for user, _ in PEOPLE] and row.payload["response_code"] == code
    assert row.recipient == "member00" and row.person_id is None
    with wechat_runtime.db.session() as s:  # the code is spent: a second update of it queues nothing
        assert queue_update(s, update_payload(code, "已撤回"), PEOPLE[:1], at=clock(), purpose="withdrawn",
                            subject=("directive", 7)) == 0
        with pytest.raises(ValueError):  # more than one call's 1,000 userids
            queue_update(s, update_payload("rc-big", "已撤回"), [(f"u{i}", None) for i in range(1001)],
                         at=clock(), purpose="withdrawn", subject=("directive", 7))
    assert worker.drain_once(wechat_runtime, limit=10) == 1
    [call] = _update_calls(fake_wechat.state)
    assert call.body["userids"] == [user for user, _ in PEOPLE]
    assert _update_row(wechat_runtime).status is OutboxStatus.SENT
    [sent] = _card_events(wechat_runtime)
    assert sent.kind == "card.updated" and sent.subject_type == "directive" and sent.subject_id == 7
    assert (sent.data["people"], sent.data["updated"], sent.data["text"]) == (30, 30, WITHDRAWN)


def test_people_wecom_refuses_are_counted_and_the_update_is_still_sent(wechat_runtime, fake_wechat, clock):
    fake_wechat.state.set_known_users([user for user, _ in PEOPLE[1:]])
    _queue(wechat_runtime, clock, fake_wechat.state)
    worker.drain_once(wechat_runtime)
    assert _update_row(wechat_runtime).status is OutboxStatus.SENT
    [sent] = _card_events(wechat_runtime)
    assert (sent.data["people"], sent.data["updated"]) == (30, 29)


@needs_postgres
def test_two_workers_racing_on_one_30_person_update_make_one_call_of_30(wechat_runtime, fake_wechat, clock):
    """The reviewer's order: worker B claims while A's claim is still open (A holds its rows
    locked). The update is one row, so A has it whole or B has it whole."""
    state = fake_wechat.state
    _queue(wechat_runtime, clock, state)
    _enqueue(wechat_runtime, _users(40), NOTICE)  # more work than one round of 10 for each
    b_go, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_a_claim_open(_conn, _cursor, statement, *_args):
        held = threading.current_thread().name == "a" and not b_go.is_set()
        if held and statement.lstrip().upper().startswith("UPDATE OUTBOX_MESSAGE SET STATUS"):
            b_go.set()
            b_done.wait(30)  # B claims, sends and marks while A's claim transaction is open

    def run(name: str):
        try:
            if name == "b":
                b_go.wait(30)
                worker.drain_once(wechat_runtime, limit=10)
                b_done.set()
            while worker.drain_once(wechat_runtime, limit=10):
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            b_done.set()

    engine = wechat_runtime.db.engine
    event.listen(engine, "after_cursor_execute", hold_a_claim_open)
    try:
        threads = [threading.Thread(target=run, args=(name,), name=name) for name in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        event.remove(engine, "after_cursor_execute", hold_a_claim_open)
    assert not errors and b_go.is_set() and b_done.is_set()
    [call] = _update_calls(state)  # one call, and WeCom refused none
    assert sorted(call.body["userids"]) == sorted(user for user, _ in PEOPLE)
    assert state.requests["message/update_template_card"] == 1
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 1 + 40}  # every row accounted for
    row = _update_row(wechat_runtime)
    assert row.attempts == 1 and row.last_error is None
    assert all(state.card_updates[user] == 1 for user, _ in PEOPLE)


@pytest.mark.parametrize("down_for", [worker.LEASE + timedelta(seconds=1), timedelta(minutes=40)])
def test_a_crash_after_prepare_resends_the_one_call_whole(wechat_runtime, fake_wechat, clock, monkeypatch,
                                                          down_for):
    """The worker dies after writing the send key and before the call. The row is resent as that
    same call, with all 30: after the lease, or later than the duplicate-check interval (an
    update's resend is harmless whenever it comes)."""
    state = fake_wechat.state
    _queue(wechat_runtime, clock, state)
    _enqueue(wechat_runtime, _users(20), NOTICE)
    drain_killed_in(wechat_runtime, monkeypatch, "_send_batch", limit=10)
    stuck = _update_row(wechat_runtime)
    assert stuck.status is OutboxStatus.SENDING and stuck.send_key is not None
    assert _update_calls(state) == []

    clock.advance(seconds=down_for.total_seconds())
    for _ in range(5):
        worker.drain_once(wechat_runtime, limit=10)
    [call] = _update_calls(state)
    assert sorted(call.body["userids"]) == sorted(user for user, _ in PEOPLE)
    row = _update_row(wechat_runtime)
    assert row.status is OutboxStatus.SENT and row.attempts == 2
    [sent] = _card_events(wechat_runtime)
    assert sent.kind == "card.updated" and sent.data["updated"] == 30  # once


def test_a_crash_after_the_call_is_proven_by_the_spent_code(wechat_runtime, fake_wechat, clock, monkeypatch):
    """The worker dies after WeCom updated the 30 cards, before marking. The resend is refused
    because the code is spent; as the row is the code's only user, that proves its own first
    call arrived (with all 30): SENT, and no second update."""
    state = fake_wechat.state
    _queue(wechat_runtime, clock, state)
    drain_killed_in(wechat_runtime, monkeypatch, "mark")
    clock.advance(seconds=worker.LEASE.total_seconds() + 1)
    assert worker.drain_once(wechat_runtime) == 1
    assert len(_update_calls(state)) == 1 and state.requests["message/update_template_card"] == 2
    assert all(state.card_updates[user] == 1 for user, _ in PEOPLE)
    row = _update_row(wechat_runtime)
    assert row.status is OutboxStatus.SENT and row.attempts == 2
    assert [e.kind for e in _card_events(wechat_runtime)] == ["card.updated"]
