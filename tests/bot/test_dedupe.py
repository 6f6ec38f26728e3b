"""WeChat's retries are harmless: a message is acted on once, answered the same, and never lost.

Each test runs against three stores: the in-process store (REDIS_URL unset), Redis (when
available), and Redis configured but down (a closed port), where the RedisStore degrades and only
the database's unique receipt key stands between a retry and a second state change. The
concurrent tests post from many threads at once to a real threaded HTTP server."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import make_server

from bot import router
from bot.channels.simulator import MpSimulator, SignedRequest, WeComSimulator
from bot.dispatch import ERROR_REPLY
from bot.stores import MemoryStore, RedisStore
from models.event import Event
from models.identity import BindingAttempt, BindingCode, ChannelIdentity
from models.inbound import InboundReceipt
from models.outbox import OutboxMessage
from tests.conftest import MP, REDIS_URL, WECOM, needs_redis, redis_prefix
from tests.factories import small_tree

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"
STORES = ["memory", pytest.param("redis", marks=needs_redis), "redis_down"]
TABLES = (InboundReceipt, Event, OutboxMessage, BindingAttempt, ChannelIdentity, BindingCode)
CODE = re.compile(r"绑定验证码：(\d{6})")
PUBLISH = "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00"


def counts(db) -> dict[str, int]:
    with db.session() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}


def events(db, kind: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Event).where(Event.kind == kind))


@pytest.fixture(params=STORES)
def store_mode(request) -> str:
    return request.param


@pytest.fixture
def bot(settings, clock, store_mode):
    """The app with the store under test, seeded with the small organisation tree."""
    from bot.app import create_app

    url = {"memory": None, "redis": REDIS_URL, "redis_down": CLOSED_PORT_REDIS}[store_mode]
    app = create_app(settings.with_overrides(redis_url=url), clock=clock)
    runtime = app.extensions["zhitong"]
    if isinstance(runtime.store, RedisStore):
        runtime.store.prefix = redis_prefix()
    expected = {"memory": MemoryStore, "redis": RedisStore, "redis_down": RedisStore}[store_mode]
    assert isinstance(runtime.store, expected)
    with runtime.db.session() as s:
        small_tree(s)
    yield app
    runtime.db.dispose()


@pytest.fixture
def db(bot):
    return bot.extensions["zhitong"].db


@pytest.fixture
def wecom(clock) -> WeComSimulator:
    return WeComSimulator(WECOM, now=clock.timestamp)


@pytest.fixture
def mp(clock) -> MpSimulator:
    return MpSimulator(MP, now=clock.timestamp)


def post(app, req: SignedRequest):
    response = app.test_client().post(req.path, query_string=req.query, data=req.body, content_type="text/xml")
    assert response.status_code == 200, response.status_code
    return response


def pushed_texts(db, recipient: str) -> list[str]:
    with db.session() as s:
        return [m.payload["text"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.recipient == recipient).order_by(OutboxMessage.id)) if m.payload["type"] == "text"]


def say(app, sim, req: SignedRequest) -> str | None:
    reply = sim.read_reply(post(app, req).data)
    return reply["Content"] if reply else None


# -- sequential retries ----------------------------------------------------------------------------


def test_same_msgid_twice_is_processed_once_and_answered_the_same(bot, db, wecom, store_mode):
    req = wecom.text("lina", "绑定码 张伟")
    first = say(bot, wecom, req)
    assert CODE.search(first), first
    retry = say(bot, wecom, req)
    assert retry == first  # the same code, not a second one
    assert counts(db) == {"inbound_receipt": 1, "event": 1, "outbox_message": 0, "binding_attempt": 0,
                          "channel_identity": 7, "binding_code": 1}


def test_same_msgid_from_another_build_of_the_request_is_still_a_retry(bot, db, wecom):
    """WeChat re-signs and re-encrypts a retry (new nonce, new random prefix): only MsgId counts."""
    first = say(bot, wecom, wecom.text("lina", "绑定码 张伟", msg_id=424242))
    retry = say(bot, wecom, wecom.text("lina", "绑定码 张伟", msg_id=424242))
    assert retry == first
    assert counts(db)["binding_code"] == 1
    other = say(bot, wecom, wecom.text("lina", "绑定码 张伟", msg_id=424243))
    assert CODE.search(other).group(1) != CODE.search(first).group(1)
    assert counts(db)["binding_code"] == 2


@pytest.mark.parametrize("mp_mode", ["safe", "plain"])
def test_official_account_retry_counts_one_failed_binding_try(bot, db, clock, settings):
    sim = MpSimulator(settings.mp, now=clock.timestamp)  # the account's mode: safe with a key, else plain
    req = sim.text("o_stranger", "绑定 000000")
    first = say(bot, sim, req)
    assert "验证码不正确" in first
    assert say(bot, sim, req) == first
    assert say(bot, sim, req) == first
    assert counts(db)["binding_attempt"] == 1
    assert events(db, "binding.failed") == 1


def test_same_msgid_on_the_two_channels_is_two_messages(bot, db, wecom, mp):
    say(bot, wecom, wecom.text("lina", "绑定码 张伟", msg_id=777))
    say(bot, mp, mp.text("o_stranger", "绑定 000000", msg_id=777))
    assert counts(db)["inbound_receipt"] == 2
    assert counts(db)["binding_attempt"] == 1 and counts(db)["binding_code"] == 1


def test_events_are_deduped_by_sender_createtime_and_event(bot, db, wecom, clock):
    assert say(bot, wecom, wecom.text("wangsj", PUBLISH)).startswith("已发布 #1")
    before = counts(db)

    tap = wecom.card_tap("zhaolei", "directive-1", "ack:1", at=clock.timestamp())
    assert say(bot, wecom, tap) is None  # a tap's answer is pushed: WeCom ignores a passive reply
    first = pushed_texts(db, "zhaolei")
    assert len(first) == 1 and first[0].startswith("已确认收到 #1")
    assert say(bot, wecom, tap) is None  # WeChat's retry of the same event
    assert pushed_texts(db, "zhaolei") == first  # answered once
    after = counts(db)
    assert after["inbound_receipt"] == before["inbound_receipt"] + 1
    assert after["outbox_message"] == before["outbox_message"] + 2  # one card update, one answer
    assert events(db, "delivery.acknowledged") == 1

    # A tap one second later is a new event: processed (already acknowledged, card updated again).
    assert say(bot, wecom, wecom.card_tap("zhaolei", "directive-1", "ack:1", at=clock.timestamp() + 1)) is None
    assert pushed_texts(db, "zhaolei")[-1].startswith("您已于")
    assert counts(db)["inbound_receipt"] == before["inbound_receipt"] + 2
    assert counts(db)["outbox_message"] == before["outbox_message"] + 4
    assert events(db, "delivery.acknowledged") == 1


def test_event_key_is_sender_time_and_event_name(bot, db, mp, wecom, clock):
    at = clock.timestamp()
    subscribe = mp.event("o_stranger", "subscribe", at=at)
    first = say(bot, mp, subscribe)
    assert "绑定 验证码" in first
    assert say(bot, mp, mp.event("o_stranger", "subscribe", at=at)) == first  # rebuilt retry
    assert counts(db)["inbound_receipt"] == 1
    say(bot, mp, mp.event("o_stranger", "unsubscribe", at=at))  # other event, same second
    say(bot, mp, mp.event("o_other", "subscribe", at=at))  # other sender, same second
    say(bot, mp, mp.event("o_stranger", "subscribe", at=at + 1))  # same sender, next second
    assert counts(db)["inbound_receipt"] == 4


# -- handler failures ------------------------------------------------------------------------------


@contextmanager
def handler_replaced(route_name: str, wrap) -> Iterator[None]:
    """Run a route with `wrap(real_handler)` as its handler for the duration of the block."""
    table = router.routes()
    index = next(i for i, r in enumerate(table) if r.name == route_name)
    original = table[index]
    table[index] = replace(original, handle=wrap(original.handle))
    try:
        yield
    finally:
        table[index] = original


@contextmanager
def failing_once(route_name: str, exc: Exception) -> Iterator[list]:
    """Make a route's handler do its real work (writes included) and then raise, once."""
    calls: list = []

    def wrap(real):
        def flaky(cmd, ctx):
            reply = real(cmd, ctx)
            calls.append(reply)
            if len(calls) == 1:
                raise exc
            return reply
        return flaky

    with handler_replaced(route_name, wrap):
        yield calls


@pytest.mark.parametrize("exc", [RuntimeError("boom"),
                                 IntegrityError("INSERT INTO binding_code …", {}, Exception("constraint"))],
                         ids=["error", "integrity_error"])
def test_failing_handler_answers_politely_commits_nothing_and_retry_is_processed(
        bot, db, wecom, caplog, exc):
    before = counts(db)
    req = wecom.text("lina", "绑定码 张伟", msg_id=5550001)
    with failing_once("binding_code", exc) as calls:
        assert say(bot, wecom, req) == ERROR_REPLY.text
        assert "抱歉" in ERROR_REPLY.text
        assert len(calls) == 1  # the handler did run and wrote a code before failing
        assert counts(db) == before  # …but nothing of it, not even the receipt, was committed
        assert "handler failed for wecom message msg:5550001 from lina" in caplog.text  # logged with its id

        retry = say(bot, wecom, req)  # WeChat's retry of the same MsgId is processed afresh
        assert CODE.search(retry), retry
        assert len(calls) == 2
        assert counts(db)["binding_code"] == before["binding_code"] + 1
        assert counts(db)["inbound_receipt"] == before["inbound_receipt"] + 1
        assert say(bot, wecom, req) == retry  # and from now on it is a plain retry
        assert len(calls) == 2


def test_retry_waiting_on_a_delivery_that_fails_takes_over_and_is_processed(bot, db, wecom, store_mode):
    """WeChat retries while the first delivery is still being handled; the first then fails. The
    retry must not answer with nothing (the message would be lost): it takes the released claim
    over and is processed, once."""
    retry_sent, calls = threading.Event(), []

    def wrap(real):
        def first_fails(cmd, ctx):
            calls.append(1)
            if len(calls) == 1:
                assert retry_sent.wait(10)
                time.sleep(0.3)  # the retry is waiting on the claim by now
                raise RuntimeError("boom")
            return real(cmd, ctx)
        return first_fails

    before = counts(db)
    req = wecom.text("lina", "绑定码 张伟", msg_id=5550002)
    answers: dict[str, str | None] = {}

    def deliver(name: str) -> None:
        answers[name] = say(bot, wecom, req)

    with handler_replaced("binding_code", wrap):
        first = threading.Thread(target=deliver, args=("first",))
        first.start()
        while not calls:
            time.sleep(0.01)
        retry_sent.set()
        deliver("retry")
        first.join(10)
    assert answers["first"] == ERROR_REPLY.text
    assert CODE.search(answers["retry"] or ""), answers
    assert len(calls) == 2
    assert counts(db)["binding_code"] == before["binding_code"] + 1
    assert counts(db)["inbound_receipt"] == before["inbound_receipt"] + 1
    assert say(bot, wecom, req) == answers["retry"]  # a later retry gets the same answer


def held_for(runtime, key: str, seconds: float) -> None:
    """Leave the claim `key` as a delivery would that took it `seconds` ago and is still silent."""
    from bot import dispatch

    runtime.store.set(key, dispatch.PROCESSING, dispatch.CLAIM_TTL_SECONDS - seconds)


@pytest.mark.parametrize("held", [5.2, 3.8], ids=["at_the_first_retry", "during_the_wait"])
def test_retry_of_a_delivery_whose_process_died_is_processed(bot, db, wecom, store_mode, held):
    """The process handling the first delivery died mid-way: nothing committed, the claim never
    released. WeChat retries about 5 s after the first delivery, and an answer (even an empty one)
    ends its retries: the retry must take the claim over and process the message, once, while
    WeChat still waits for it (at once, or when the claim comes of age during its wait)."""
    from bot import dispatch

    req = wecom.text("lina", "绑定码 张伟", msg_id=5550003)
    held_for(bot.extensions["zhitong"], "inbound:wecom:msg:5550003", held)
    before = counts(db)
    started = time.monotonic()
    reply = say(bot, wecom, req)
    assert CODE.search(reply or ""), reply
    assert time.monotonic() - started < dispatch.RETRY_WAIT_SECONDS + 1  # within WeChat's 5 s
    assert counts(db)["binding_code"] == before["binding_code"] + 1
    assert say(bot, wecom, req) == reply  # and from now on it is a plain retry
    assert counts(db)["binding_code"] == before["binding_code"] + 1


@pytest.mark.parametrize("store_mode", ["memory", pytest.param("redis", marks=needs_redis)])
def test_duplicate_of_a_delivery_still_being_handled_waits_for_its_answer(bot, db, wecom, store_mode):
    """A claim taken a moment ago may belong to a delivery still being handled: the duplicate waits
    for its receipt first. When none comes, it is processed here rather than answered with an empty
    200 while nothing is committed (which would end WeChat's retries and lose the message if the
    earlier delivery had died). (With Redis down there is no shared claim to find, and the receipt's
    unique key alone decides.)"""
    from bot import dispatch

    req = wecom.text("lina", "绑定码 张伟", msg_id=5550004)
    held_for(bot.extensions["zhitong"], "inbound:wecom:msg:5550004", 0.5)
    before = counts(db)
    started = time.monotonic()
    reply = say(bot, wecom, req)
    assert CODE.search(reply), reply  # answered, not an empty 200
    if store_mode != "redis_down":
        assert time.monotonic() - started >= dispatch.RETRY_WAIT_SECONDS  # it waited for the receipt first
    assert counts(db)["binding_code"] == before["binding_code"] + 1
    assert say(bot, wecom, req) == reply  # a later retry finds the receipt


# -- concurrent duplicates -------------------------------------------------------------------------


@contextmanager
def live_server(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def fire(url: str, req: SignedRequest, n: int) -> list[requests.Response | BaseException]:
    """Post the same request from `n` threads released at the same instant."""
    barrier = threading.Barrier(n)
    results: list[requests.Response | BaseException] = [None] * n  # type: ignore[list-item]

    def worker(i: int) -> None:
        try:
            barrier.wait(10)
            with requests.Session() as session:
                results[i] = session.post(url + req.path, params=req.query, data=req.body,
                                          headers={"Content-Type": "text/xml"}, timeout=60)
        except BaseException as exc:  # reported by the test, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return results


N = 8


@pytest.mark.parametrize("channel", ["wecom", "mp"])
def test_concurrent_duplicates_change_state_exactly_once(bot, db, wecom, mp, channel, store_mode):
    sim, req = ((wecom, wecom.text("lina", "绑定码 张伟")) if channel == "wecom"
                else (mp, mp.text("o_stranger", "绑定 000000")))
    with live_server(bot) as url:
        results = fire(url, req, N)
    errors = [r for r in results if not isinstance(r, requests.Response)]
    assert not errors, errors
    assert [r.status_code for r in results] == [200] * N
    replies = [sim.read_reply(r.content) for r in results]
    texts = {r["Content"] for r in replies if r}
    # Everyone who got an answer got the same one; the rest got an empty 200 (still processing).
    assert len(texts) == 1, texts
    (text,) = texts
    c = counts(db)
    assert c["inbound_receipt"] == 1
    if channel == "wecom":
        assert CODE.search(text)
        assert c["binding_code"] == 1
        assert events(db, "binding_code.issued") == 1
    else:
        assert "验证码不正确" in text
        assert c["binding_attempt"] == 1
        assert events(db, "binding.failed") == 1
    if store_mode == "redis_down":
        # Only the database could have caught them, and every loser still got the first reply.
        assert all(replies), [r.content for r in results]


def test_concurrent_binding_with_one_code_binds_one_follower(bot, db, wecom, mp, store_mode):
    """Different followers racing for one code (different MsgIds): one wins, the rest are refused."""
    code = CODE.search(say(bot, wecom, wecom.text("lina", "绑定码 张伟"))).group(1)
    reqs = [mp.text(f"o_racer{i}", f"绑定 {code}") for i in range(N)]
    barrier = threading.Barrier(N)
    results: list = [None] * N

    def worker(i: int, url: str) -> None:
        try:
            barrier.wait(10)
            with requests.Session() as session:
                r = session.post(url + reqs[i].path, params=reqs[i].query, data=reqs[i].body,
                                 headers={"Content-Type": "text/xml"}, timeout=60)
            results[i] = mp.read_reply(r.content)["Content"] if r.status_code == 200 else r.status_code
        except BaseException as exc:
            results[i] = exc

    with live_server(bot) as url:
        threads = [threading.Thread(target=worker, args=(i, url)) for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    assert all(isinstance(r, str) for r in results), results
    assert sum("绑定成功" in r for r in results) == 1, results
    assert counts(db)["channel_identity"] == 7 + 1
    assert events(db, "binding.bound") == 1


def test_a_reply_too_long_for_one_message_continues_as_pushes(chat, runtime, monkeypatch):
    """WeCom cuts passive replies at 2,048 bytes: the first part is the reply, the rest is pushed."""
    from sqlalchemy import select

    from bot import router
    from bot.messages import Reply
    from models.outbox import OutboxMessage

    long_text = "\n".join(f"第{i:03d}行：" + "很长的内容" * 10 for i in range(60))
    import dataclasses

    patched = [dataclasses.replace(r, handle=lambda cmd, ctx: Reply(long_text)) if r.name == "help" else r
               for r in router.routes()]
    monkeypatch.setattr(router, "ROUTES", patched)
    with runtime.db.session() as s:
        from tests.factories import small_tree

        small_tree(s)
    reply = chat.say("zhangwei", "帮助")
    assert len(reply.encode("utf-8")) <= 2048
    assert reply.startswith("第000行") and "其余" in reply
    with runtime.db.session() as s:
        pushes = s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "zhangwei")).all()
    assert pushes and all(len(p.payload["text"].encode("utf-8")) <= 2100 for p in pushes)
    joined = reply + "".join(p.payload["text"] for p in pushes)
    assert "第059行" in joined
