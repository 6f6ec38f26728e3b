"""A directive from 发布 to every member's chat: through the worker and the fake WeCom server,
surviving server errors and a worker crash without losing or doubling a push."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import worker
from models.directive import Delivery, DeliveryStatus
from models.event import Event
from tests.bot.conftest import wechat_settings  # noqa: F401  (fixture)
from tests.conftest import Chat, redis_prefix
from tests.factories import BRANCH_A, BRANCH_B, person, small_tree
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (fixture)

PUBLISH = "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00"


@pytest.fixture
def wired(wechat_settings, clock):  # noqa: F811

    from bot.app import create_app

    app = create_app(wechat_settings, clock=clock)
    runtime = app.extensions["zhitong"]
    if hasattr(runtime.store, "prefix"):
        runtime.store.prefix = redis_prefix()
    with runtime.db.session() as s:
        small_tree(s)
        for i in range(40):
            person(s, f"党员{i:02d}", f"member{i:02d}", BRANCH_A if i % 2 else BRANCH_B)
    yield app, runtime, Chat(app.test_client(), clock)
    runtime.db.dispose()


def _drain_all(runtime, clock, rounds=20):
    for _ in range(rounds):
        worker.drain_once(runtime)
        clock.advance(minutes=11)  # past any back-off (capped at 10 min) and the lease


def _task_userids(runtime):
    with runtime.db.session() as s:
        from models.person import Person

        return [u for (u,) in s.execute(
            select(Person.wecom_userid).join(Delivery, Delivery.person_id == Person.id)
            .where(Delivery.directive_id == 1))]


def test_every_member_receives_the_card_once_and_deliveries_are_marked_sent(wired, fake_wechat):  # noqa: F811
    _app, runtime, chat = wired
    assert chat.say("wangsj", PUBLISH).startswith("已发布 #1，推送 45 人")
    worker.drain_once(runtime)
    users = _task_userids(runtime)
    assert len(users) == 45
    assert all(fake_wechat.state.count(u) == 1 for u in users)
    card = fake_wechat.state.messages_for("member01")[0]
    assert "学习贯彻全会精神" in str(card)
    with runtime.db.session() as s:
        statuses = {st for (st,) in s.execute(select(Delivery.status))}
        assert statuses == {DeliveryStatus.SENT}
        sent = list(s.scalars(select(Event).where(Event.kind == "delivery.sent")))  # one per directive and mark
        assert {(e.subject_type, e.subject_id) for e in sent} == {("directive", 1)}
        assert sum(e.data["count"] for e in sent) == 45
        assert len({d for e in sent for d in e.data["deliveries"]}) == 45


def test_server_errors_and_token_expiry_still_deliver_everything_once(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    chat.say("wangsj", PUBLISH)
    state = fake_wechat.state
    state.fail_next("message/send", errcode=45009, times=1)
    state.fail_next("message/send", http_status=500, times=1)
    state.expire_tokens()
    _drain_all(runtime, clock)
    assert all(state.count(u) == 1 for u in _task_userids(runtime))
    assert state.stats()["same_content_twice"] == 0
    with runtime.db.session() as s:
        assert {st for (st,) in s.execute(select(Delivery.status))} == {DeliveryStatus.SENT}


def test_worker_crash_between_send_and_mark_neither_loses_nor_doubles(wired, fake_wechat, clock, monkeypatch):  # noqa: F811
    _app, runtime, chat = wired
    chat.say("wangsj", PUBLISH)

    def crash(*_args, **_kwargs):
        raise SystemExit("worker killed after sending, before marking")

    with monkeypatch.context() as m:
        m.setattr(worker, "mark", crash)
        with pytest.raises(SystemExit):
            worker.drain_once(runtime)
    state = fake_wechat.state
    users = _task_userids(runtime)
    assert all(state.count(u) == 1 for u in users)  # the pushes went out before the crash
    _drain_all(runtime, clock)  # restart: the lease expires and the rows are sent again
    assert all(state.count(u) == 1 for u in users)  # WeCom's duplicate check absorbs the resend
    with runtime.db.session() as s:
        assert {st for (st,) in s.execute(select(Delivery.status))} == {DeliveryStatus.SENT}


def test_member_acknowledges_by_tapping_the_card_and_the_card_is_updated(wired, fake_wechat):  # noqa: F811
    _app, runtime, chat = wired
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    assert "已确认收到 #1" in chat.tap("member03", "directive-1", "ack:1")  # pushed: no passive reply
    worker.drain_once(runtime)
    assert fake_wechat.state.stats()["card_updates"] == 1
    assert chat.say("wangsj", "进度 1").split("\n")[0] == "已确认 1/45"
