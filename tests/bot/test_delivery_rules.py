"""The platforms' outbound rules, against a fake that enforces them: lower-cased invaliduser,
per-member limits, the Official Account's service window, refused credentials, task_id and
resends that can never give one person the same card twice."""

from __future__ import annotations

import logging
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

import bot.worker as worker
from bot.channels.mp_window import REASON_OUTSIDE, REASON_QUOTA
from fakewx import FakeServer, FakeState
from models.event import Event
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, text_payload
from tests.bot.test_worker import CARD, _enqueue, _rows, _statuses, _users
from tests.conftest import MP, WECOM, Chat


def _card(n: int) -> dict:
    return dict(CARD, title=f"#{n} 通知", task_id=f"directive-{n}", buttons=[{"key": f"ack:{n}", "text": "收到"}])


@pytest.fixture
def fake_on_clock(clock):
    """The fake with its clock tied to the test's: its per-minute and 48-hour rules move with it."""
    state = FakeState(clock=lambda: clock.current.timestamp())
    state.add_wecom_app(WECOM.corp_id, WECOM.secret)
    state.add_mp_app(MP.app_id, MP.secret)
    with FakeServer(state) as fake:
        yield fake


@pytest.fixture
def wired(settings, fake_on_clock, clock):
    """The app and its runtime (one store for callbacks, worker and /readyz) on the fake."""
    from dataclasses import replace

    from bot.app import create_app

    app = create_app(settings.with_overrides(
        wecom=replace(WECOM, api_base=fake_on_clock.base_url), mp=replace(MP, api_base=fake_on_clock.base_url),
        http_timeout_seconds=1.0), clock=clock)
    runtime = app.extensions["zhitong"]
    if hasattr(runtime.store, "prefix"):
        runtime.store.prefix = f"test:{uuid.uuid4().hex[:8]}:"
    yield app, runtime
    runtime.db.dispose()


def _drain(runtime, clock, rounds=30, *, limit=None, minutes=11):
    for _ in range(rounds):
        counts = _statuses(runtime)
        if not counts.get(OutboxStatus.PENDING) and not counts.get(OutboxStatus.SENDING):
            return
        worker.drain_once(runtime, limit=limit)
        clock.advance(minutes=minutes)
    raise AssertionError(f"outbox not drained: {_statuses(runtime)}")


def _cards_per_person(fake) -> Counter:
    """(person, directive's task id base) → cards that person received."""
    got: Counter = Counter()
    with fake.state.lock:
        for user, indices in fake.state.per_user.items():
            for index in indices:
                call = fake.state.calls[index]
                if call.msgtype == "template_card":
                    base = call.body["template_card"]["task_id"].rsplit("-", 1)[0]
                    got[(user.lower(), base)] += 1
    return got


# -- rule 2: returned userids are lower case -------------------------------------------------

def test_a_mixed_case_userid_refused_in_lower_case_is_failed_not_sent(wired, fake_on_clock):
    _app, runtime = wired
    fake_on_clock.state.set_known_users(["zhangsan"])
    _enqueue(runtime, ["ZhangSan", "GhostUser", "LiSi"])
    worker.drain_once(runtime)
    by_recipient = {r.recipient: r for r in _rows(runtime)}
    assert by_recipient["ZhangSan"].status is OutboxStatus.SENT  # userids are case-insensitive
    for refused in ("GhostUser", "LiSi"):
        assert by_recipient[refused].status is OutboxStatus.FAILED
        assert "invaliduser" in by_recipient[refused].last_error
    assert fake_on_clock.state.count("ZhangSan") == 1


def test_the_fake_answers_invaliduser_in_lower_case(fake_on_clock):
    import requests

    fake_on_clock.state.set_known_users(["zhangsan"])
    token = requests.get(f"{fake_on_clock.base_url}gettoken",
                         params={"corpid": WECOM.corp_id, "corpsecret": WECOM.secret}, timeout=5).json()["access_token"]
    answer = requests.post(f"{fake_on_clock.base_url}message/send", params={"access_token": token}, timeout=5, json={
        "touser": "ZhangSan|GhostUser", "agentid": 1, "msgtype": "text", "text": {"content": "x"}}).json()
    assert answer["errcode"] == 0 and answer["invaliduser"] == "ghostuser"


# -- rule 3: per-member limits -------------------------------------------------------------

def test_more_than_30_messages_a_minute_to_one_member_are_spread_not_dropped(wired, fake_on_clock, clock):
    _app, runtime = wired
    for i in range(45):
        _enqueue(runtime, ["zhangsan"], text_payload(f"第 {i} 条提醒"))
    worker.drain_once(runtime)
    assert _statuses(runtime) == {OutboxStatus.SENT: 30, OutboxStatus.PENDING: 15}
    held = [r for r in _rows(runtime) if r.status is OutboxStatus.PENDING]
    assert all(r.deferrals == 1 and r.attempts == 0 and r.send_key is None and r.next_attempt_at > clock.current
               for r in held)
    with runtime.db.session() as session:
        (deferred,) = session.scalars(select(Event).where(Event.kind == "outbox.deferred"))
    assert deferred.data["count"] == 15 and sorted(deferred.data["outbox_ids"]) == sorted(r.id for r in held)

    clock.advance(seconds=59)
    assert worker.drain_once(runtime) == 0  # still within a minute of the first 30
    _drain(runtime, clock, minutes=1)
    assert _statuses(runtime) == {OutboxStatus.SENT: 45}
    assert fake_on_clock.state.count("zhangsan") == 45
    assert fake_on_clock.state.stats()["member_limit_dropped"] == 0


def test_the_hourly_limit_holds_across_minutes_and_case(wired, fake_on_clock, clock, monkeypatch):
    _app, runtime = wired
    monkeypatch.setattr(worker, "MEMBER_PER_HOUR", 40)  # the same rule, a smaller number
    for i in range(50):
        _enqueue(runtime, ["ZhangSan" if i % 2 else "zhangsan"], text_payload(f"第 {i} 条"))
    for _ in range(5):
        worker.drain_once(runtime)
        clock.advance(minutes=2)
    assert _statuses(runtime) == {OutboxStatus.SENT: 40, OutboxStatus.PENDING: 10}  # one member, two spellings
    clock.advance(hours=2)
    _drain(runtime, clock)
    assert _statuses(runtime) == {OutboxStatus.SENT: 50}


def test_the_fake_drops_and_counts_what_exceeds_the_per_member_limit(fake_on_clock, clock):
    state = fake_on_clock.state
    reached = [state.deliver("message/send", {"msgtype": "text", "text": {"content": str(i)}}, ["zhangsan"],
                             msgtype="text") for i in range(31)]
    assert sum(len(r) for r in reached) == 30 and reached[-1] == []
    assert state.stats()["member_limit_dropped"] == 1
    clock.advance(seconds=61)
    assert state.deliver("message/send", {"msgtype": "text", "text": {"content": "x"}}, ["zhangsan"],
                         msgtype="text") == ["zhangsan"]


# -- rule 4: the Official Account's window -------------------------------------------------

def test_a_follower_message_allows_five_pushes_in_48_hours_and_no_more(wired, fake_on_clock, clock):
    app, runtime = wired
    fake_on_clock.state.enforce_mp_window = True
    chat = Chat(app.test_client(), clock, runtime.settings.mp)
    chat.say_mp("openid-1", "你好")  # opens the bot's record of the window …
    fake_on_clock.state.mp_windows.clear()
    from fakewx.rules import open_mp_window

    open_mp_window(fake_on_clock.state, "openid-1")  # … and the fake's (it does not see callbacks)
    for i in range(7):
        _enqueue(runtime, ["openid-1"], text_payload(f"第 {i} 条"), OutboxChannel.MP)
    worker.drain_once(runtime)
    rows = _rows(runtime)
    assert [r.status for r in rows].count(OutboxStatus.SENT) == 5
    refused = [r for r in rows if r.status is OutboxStatus.FAILED]
    assert len(refused) == 2 and {r.last_error for r in refused} == {REASON_QUOTA}
    assert fake_on_clock.state.requests["message/custom/send"] == 5  # the quota is not spent on refusals

    clock.advance(hours=49)
    _enqueue(runtime, ["openid-1"], text_payload("过期之后"), OutboxChannel.MP)
    worker.drain_once(runtime)
    assert _rows(runtime)[-1].last_error == REASON_OUTSIDE
    assert fake_on_clock.state.requests["message/custom/send"] == 5


def test_a_menu_click_allows_three_within_a_minute(wired, fake_on_clock, clock):
    from bot.channels.mp_window import open_window
    from bot.messages import InboundKind, InboundMessage
    from models.identity import Channel

    _app, runtime = wired
    click = InboundMessage(Channel.MP, "openid-2", InboundKind.EVENT, clock.current, "k", event="CLICK")
    open_window(runtime.store, click, clock.current.timestamp())
    for i in range(4):
        _enqueue(runtime, ["openid-2"], text_payload(f"菜单 {i}"), OutboxChannel.MP)
    worker.drain_once(runtime)
    assert [r.status for r in _rows(runtime)].count(OutboxStatus.SENT) == 3
    clock.advance(minutes=2)
    _enqueue(runtime, ["openid-2"], text_payload("一分钟后"), OutboxChannel.MP)
    worker.drain_once(runtime)
    assert _rows(runtime)[-1].last_error == REASON_OUTSIDE


def test_the_servers_45015_and_45047_mark_the_follower_unreachable_with_the_reason(wired, fake_on_clock):
    _app, runtime = wired
    fake_on_clock.state.enforce_mp_window = True  # the bot has no record of this follower: the server decides
    _enqueue(runtime, ["openid-3"], text_payload("无窗口"), OutboxChannel.MP)
    worker.drain_once(runtime)
    assert _rows(runtime)[0].status is OutboxStatus.FAILED and _rows(runtime)[0].last_error == REASON_OUTSIDE


# -- rule 5: refused credentials -----------------------------------------------------------

def test_a_wrong_secret_stops_sending_logs_once_and_names_the_setting_in_readyz(wired, fake_on_clock, clock, caplog):
    app, runtime = wired
    state = fake_on_clock.state
    state.credentials.wecom[WECOM.corp_id] = {"the-real-secret"}  # ours is wrong
    _enqueue(runtime, _users(10))
    with caplog.at_level(logging.ERROR, logger="bot.channels.clients"):
        assert worker.drain_once(runtime) == 0
        clock.advance(minutes=1)
        _enqueue(runtime, _users(5, "later"))
        for _ in range(5):
            worker.drain_once(runtime)
    assert state.requests["gettoken"] == 1  # one refused fetch, not one per round
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "WECOM_SECRET" in errors[0].getMessage()
    rows = _rows(runtime)
    assert {r.status for r in rows} == {OutboxStatus.PENDING} and {r.attempts for r in rows} == {0}
    assert all(r.next_attempt_at >= clock.current for r in rows)

    ready = app.test_client().get("/readyz")
    body = ready.get_data(as_text=True)
    assert ready.status_code == 200 and "WECOM_SECRET" in body and "40001" in body and "企业微信推送已暂停" in body

    state.credentials.wecom[WECOM.corp_id].add(WECOM.secret)  # the operator fixes it
    runtime.store.delete("fault:wecom:credentials")  # an hour later: the store's key has expired
    clock.advance(hours=1, minutes=1)
    _drain(runtime, clock)
    assert _statuses(runtime) == {OutboxStatus.SENT: 15}
    assert state.requests["gettoken"] == 2
    assert app.test_client().get("/readyz").get_data(as_text=True) == "ok"


def test_a_wrong_corp_id_names_wecom_corp_id(wired, fake_on_clock):
    app, runtime = wired
    fake_on_clock.state.credentials.wecom.pop(WECOM.corp_id)
    fake_on_clock.state.add_wecom_app("some-other-corp", WECOM.secret)
    _enqueue(runtime, ["zhangsan"])
    worker.drain_once(runtime)
    assert "WECOM_CORP_ID" in app.test_client().get("/readyz").get_data(as_text=True)
    assert _statuses(runtime) == {OutboxStatus.PENDING: 1}


# -- rule 6: task_id and resends -----------------------------------------------------------

def test_the_fake_refuses_a_reused_or_malformed_task_id(fake_on_clock):
    from fakewx.rules import check_task_id

    state = fake_on_clock.state
    assert check_task_id(state, {"task_id": "directive-1-abc"}) is None
    assert check_task_id(state, {"task_id": "directive-1-abc"})[0] == 40058
    assert check_task_id(state, {"task_id": "带中文"})[0] == 40058
    assert check_task_id(state, {"task_id": "a" * 129})[0] == 40058
    assert check_task_id(state, {"task_id": "a" * 128}) is None


def test_every_call_gets_its_own_valid_task_id(wired, fake_on_clock):
    _app, runtime = wired
    _enqueue(runtime, _users(2500), dict(CARD, task_id="directive-12 带空格和中文" + "x" * 200))
    worker.drain_once(runtime)
    ids = [c.body["template_card"]["task_id"] for c in fake_on_clock.state.calls]
    assert len(ids) == len(set(ids)) == 3
    assert all(len(i.encode()) <= 128 for i in ids)
    assert fake_on_clock.state.stats()["task_id_refusals"] == 0


@pytest.mark.parametrize("claim_limit", [None, 700])
def test_a_worker_killed_after_three_sends_never_doubles_a_card(wired, fake_on_clock, clock, monkeypatch,
                                                               claim_limit):
    """The adversarial run: 3,005 people; the worker dies after 3 calls (between send and mark);
    two more directives are published; a worker starts after the lease. Smaller claims regroup
    the old rows with the new ones."""
    _app, runtime = wired
    people = _users(3005)
    _enqueue(runtime, people, _card(1))
    real_send = worker._send_batch
    calls = {"n": 0}

    def dies_after_three(*args, **kwargs):
        if calls["n"] == 3:
            raise KeyboardInterrupt("worker killed")
        calls["n"] += 1
        return real_send(*args, **kwargs)

    monkeypatch.setattr(worker, "_send_batch", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        worker.drain_once(runtime)
    monkeypatch.setattr(worker, "_send_batch", real_send)
    assert sum(fake_on_clock.state.count(u) for u in people) == 3000

    _enqueue(runtime, people, _card(2))
    _enqueue(runtime, people, _card(3))
    clock.advance(seconds=worker.LEASE.total_seconds() + 1)
    _drain(runtime, clock, limit=claim_limit, minutes=1)

    assert _statuses(runtime) == {OutboxStatus.SENT: 3 * 3005}
    got = _cards_per_person(fake_on_clock)
    assert len(got) == 3 * 3005 and set(got.values()) == {1}  # everyone got each card, once
    assert fake_on_clock.state.stats()["task_id_refusals"] >= 3  # the resends of the three calls


def _round_whose_mark_dies(runtime, monkeypatch) -> None:
    """One round whose sends succeed and whose "mark sent" transaction dies."""
    def dies(*_args, **_kwargs):
        raise KeyboardInterrupt("the mark transaction died")

    with monkeypatch.context() as patched:
        patched.setattr(worker, "mark", dies)
        with pytest.raises(KeyboardInterrupt):
            worker.drain_once(runtime)


def test_mark_dying_after_a_round_resends_nothing_to_anyone_who_got_it(wired, fake_on_clock, clock, monkeypatch):
    _app, runtime = wired
    people = _users(2100)
    _enqueue(runtime, people, _card(7))
    _round_whose_mark_dies(runtime, monkeypatch)
    assert all(r.send_key for r in _rows(runtime))  # the intent was recorded before the calls
    clock.advance(seconds=worker.LEASE.total_seconds() + 1)
    _drain(runtime, clock, limit=900, minutes=1)
    assert _statuses(runtime) == {OutboxStatus.SENT: 2100}
    assert set(_cards_per_person(fake_on_clock).values()) == {1}


def test_an_attempt_older_than_the_duplicate_check_is_failed_not_resent(wired, fake_on_clock, clock, monkeypatch):
    _app, runtime = wired
    _enqueue(runtime, ["zhangsan"], text_payload("一次"))
    _round_whose_mark_dies(runtime, monkeypatch)
    clock.advance(minutes=31)  # WeCom would no longer drop a repeat
    worker.drain_once(runtime)
    (row,) = _rows(runtime)
    assert row.status is OutboxStatus.FAILED and "未重发" in row.last_error
    assert fake_on_clock.state.count("zhangsan") == 1


# -- the group robot after a timeout ---------------------------------------------------------

@pytest.mark.parametrize(("fault", "status", "attempts"), [
    ("timeout", OutboxStatus.FAILED, 2),  # posted, answered after our 1 s timeout: never reposted
    ("45009", OutboxStatus.SENT, 2),  # refused with an errcode: certainly not posted, so retried
])
def test_a_robot_post_reaches_the_group_at_most_once(wired, fake_on_clock, clock, fault, status, attempts):
    _app, runtime = wired
    _enqueue(runtime, ["robot-key"], {"type": "markdown", "text": "**机关党委发布 #12**"}, OutboxChannel.WEBHOOK)
    if fault == "timeout":
        fake_on_clock.state.delay_next("webhook/send", 1.5)
    else:
        fake_on_clock.state.fail_next("webhook/send", errcode=45009)
    _drain(runtime, clock)
    (row,) = _rows(runtime)
    assert row.status is status and row.attempts == attempts
    assert status is OutboxStatus.SENT or "未重发" in row.last_error
    assert fake_on_clock.state.count("webhook:robot-key") == 1


def test_outbox_rows_record_the_attempt_they_were_sent_in(wired, fake_on_clock, clock):
    _app, runtime = wired
    _enqueue(runtime, _users(1500), _card(5))
    worker.drain_once(runtime)
    with runtime.db.session() as session:
        keys = Counter(session.scalars(select(OutboxMessage.send_key)))
    assert sorted(keys.values()) == [500, 1000]
    ids = {c.body["template_card"]["task_id"] for c in fake_on_clock.state.calls}
    assert {f"directive-5-{k}" for k in keys} == ids


# -- 进度 names the unreachable and why ------------------------------------------------------

def test_progress_counts_the_unreachable_with_their_reasons(wired, fake_on_clock, clock):
    from tests.factories import BRANCH_A, BRANCH_B, person, small_tree

    app, runtime = wired
    with runtime.db.session() as s:
        small_tree(s)
        person(s, "周无号", None, BRANCH_A)  # no account on any channel
        person(s, "吴离职", "WuLiZhi", BRANCH_B)  # WeCom refuses it (answered lower-cased)
    fake_on_clock.state.set_known_users(["wangsj", "lina", "zhangwei", "liuyang", "chenjing", "zhaolei", "sunll"])
    chat = Chat(app.test_client(), clock)
    assert chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织专题学习。").startswith("已发布 #1")
    worker.drain_once(runtime)
    lines = chat.say("wangsj", "进度 1").split("\n")
    unreachable = [line for line in lines if line.startswith("无法送达")]
    assert unreachable == ["无法送达 2 人：企业微信账号不存在或不在应用可见范围内（invaliduser） 1 人；未绑定企业微信或公众号 1 人"]
    assert any("无法送达：吴离职" in line for line in lines) and any("周无号" in line for line in lines)


def test_a_long_reply_on_the_official_account_is_one_message_and_spends_no_quota(wired, fake_on_clock, clock):
    from bot.messages import Reply
    from tests.bot.test_dedupe import handler_replaced

    app, runtime = wired
    chat = Chat(app.test_client(), clock, runtime.settings.mp)
    long_text = "\n".join(f"第 {i} 行：请各支部组织专题学习，按时报送学习情况。" for i in range(200))
    with handler_replaced("help", lambda real: lambda cmd, ctx: Reply(long_text)):
        reply = chat.say_mp("openid-9", "帮助")
        wecom_reply = chat.say("zhangsan", "帮助")
    assert reply.endswith("（内容较长，只显示了前一部分）") and len(reply.encode()) <= 2048
    assert "随后推送" in wecom_reply  # WeCom has no such quota: the rest follows as pushes
    with runtime.db.session() as session:
        recipients = set(session.scalars(select(OutboxMessage.recipient)))
    assert recipients == {"zhangsan"}


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_budgets_hold_over_any_sliding_window_in_both_stores(kind):
    from bot.stores import MemoryStore, RedisStore
    from tests.conftest import REDIS_URL

    if kind == "redis":
        if REDIS_URL is None:
            pytest.skip("needs Redis")
        store = RedisStore(REDIS_URL, prefix=f"test:{uuid.uuid4().hex[:8]}:")
    else:
        store = MemoryStore()
    windows = [(60, 3), (3600, 5)]
    assert store.take_budgets(["a"] * 4 + ["b"], windows, 119.0) == [0, 0, 0, 60, 0]  # 3 in minute 1
    assert store.take_budgets(["a"], windows, 121.0) == [60]  # minute 2: minute 1 still counts
    assert store.take_budgets(["a", "a", "a"], windows, 181.0) == [0, 0, 3600]  # hour: 5 in all


def test_a_wrong_official_account_secret_names_mp_secret_and_keeps_the_rows(wired, fake_on_clock):
    import requests

    app, runtime = wired
    requests.post(f"{fake_on_clock.root_url}/_fake/config", timeout=5,
                  json={"credentials": {"mp": {MP.app_id: ["rotated-secret"]}}}).raise_for_status()
    _enqueue(runtime, ["openid-1"], text_payload("通知"), OutboxChannel.MP)
    _enqueue(runtime, ["zhangsan"], text_payload("通知"))
    for _ in range(3):
        worker.drain_once(runtime)
    by_channel = {r.channel: r for r in _rows(runtime)}
    assert by_channel[OutboxChannel.MP].status is OutboxStatus.PENDING and by_channel[OutboxChannel.MP].attempts == 0
    assert by_channel[OutboxChannel.WECOM].status is OutboxStatus.SENT  # the other channel is unaffected
    assert fake_on_clock.state.requests["token"] == 1
    body = app.test_client().get("/readyz").get_data(as_text=True)
    assert "公众号推送已暂停" in body and "MP_SECRET" in body and "40125" in body
