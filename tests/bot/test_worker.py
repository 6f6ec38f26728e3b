"""The outbox drain end to end against the fake WeCom/MP server on a real port: batching, retries
with back-off, permanent failures, crash recovery, concurrent workers, Redis going away."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, insert, select

import bot.worker as worker
from bot.runtime import Runtime
from bot.stores import RedisStore
from models.event import Event
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of, text_payload
from tests.conftest import REDIS_URL, needs_postgres, redis_prefix

NOTICE = text_payload("【通知】#12「学习贯彻全会精神」请于明天17:00前确认。")
NOTICE_KEY = content_key_of(OutboxChannel.WECOM, NOTICE)
CARD = {
    "type": "card", "title": "#12 学习贯彻全会精神", "description": "机关党委发布 · 请各支部组织学习",
    "task_id": "directive-12", "buttons": [{"key": "ack:12", "text": "收到"}],
}


def _users(n: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def _enqueue(runtime: Runtime, recipients: list[str], payload=NOTICE, channel=OutboxChannel.WECOM, *,
             attempts: int = 0, subject_type: str | None = None) -> None:
    now = runtime.now()
    key = content_key_of(channel, payload)
    rows = [{
        "channel": channel, "recipient": r, "payload": payload, "content_key": key,
        "status": OutboxStatus.PENDING, "attempts": attempts, "next_attempt_at": now, "created_at": now,
        "subject_type": subject_type, "subject_id": i if subject_type else None,
    } for i, r in enumerate(recipients, start=1)]
    with runtime.db.session() as session:
        for i in range(0, len(rows), 5000):
            session.execute(insert(OutboxMessage), rows[i:i + 5000])


def _rows(runtime: Runtime) -> list[OutboxMessage]:
    with runtime.db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _statuses(runtime: Runtime) -> dict[OutboxStatus, int]:
    with runtime.db.session() as session:
        return dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())


def _drain_until_idle(runtime: Runtime, clock, *, rounds: int = 30, step_minutes: int = 11) -> None:
    for _ in range(rounds):
        if not _statuses(runtime).get(OutboxStatus.PENDING) and not _statuses(runtime).get(OutboxStatus.SENDING):
            return
        worker.drain_once(runtime)
        clock.advance(minutes=step_minutes)
    raise AssertionError(f"outbox not drained: {_statuses(runtime)}")


def drain_killed_in(runtime: Runtime, monkeypatch, step: str, **drain) -> None:
    """One round whose worker dies when it reaches `step` (a function of bot.worker: "mark",
    "_send_batch"); the step is put back afterwards."""
    real = getattr(worker, step)

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(worker, step, killed)
    with pytest.raises(KeyboardInterrupt):
        worker.drain_once(runtime, **drain)
    monkeypatch.setattr(worker, step, real)


def _sends(fake) -> int:
    return fake.state.stats()["calls_by_path"].get("message/send", 0)


def test_2500_recipients_go_out_in_three_calls(wechat_runtime, fake_wechat, clock):
    users = _users(2500)
    _enqueue(wechat_runtime, users)
    assert worker.drain_once(wechat_runtime) == 2500
    assert _sends(fake_wechat) == 3
    assert sorted(len(c.body["touser"].split("|")) for c in fake_wechat.state.calls) == [500, 1000, 1000]
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 2500}
    assert all(fake_wechat.state.count(u) == 1 for u in users)
    row = _rows(wechat_runtime)[0]
    assert row.sent_at == clock.current and row.attempts == 1 and row.last_error is None
    assert fake_wechat.state.calls[0].body["enable_duplicate_check"] == 1
    assert worker.drain_once(wechat_runtime) == 0


def test_card_payloads_render_per_channel(wechat_runtime, fake_wechat):
    _enqueue(wechat_runtime, ["zhangsan"], CARD)
    _enqueue(wechat_runtime, ["openid-1"], CARD, OutboxChannel.MP)
    # A card update as rows were queued before one row per code (no `recipients`): for its recipient.
    _enqueue(wechat_runtime, ["zhangsan"], {"type": "card_update", "response_code": "rc-1",
                                            "replace_text": "已确认 2026年11月21日 19:45"})
    _enqueue(wechat_runtime, ["robot-key"], {"type": "markdown", "text": "**机关党委发布 #12**"},
             OutboxChannel.WEBHOOK)
    assert worker.drain_once(wechat_runtime) == 4
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 4}

    (card_push, card_update) = [m["body"] for m in fake_wechat.state.messages_for("zhangsan")]
    card = card_push["template_card"]
    assert card_push["msgtype"] == "template_card" and card["card_type"] == "button_interaction"
    assert card["main_title"]["title"] == "#12 学习贯彻全会精神"
    assert card["task_id"].startswith("directive-12")
    assert card["button_list"] == [{"type": 0, "text": "收到", "style": 1, "key": "ack:12"}]
    assert card_update["response_code"] == "rc-1"
    assert card_update["button"] == {"replace_name": "已确认 2026年11月21日 19:45"}

    (mp_text,) = [m["body"] for m in fake_wechat.state.messages_for("openid-1")]
    assert mp_text["msgtype"] == "text" and "回复「收到 12」确认" in mp_text["text"]["content"]
    (robot,) = [m["body"] for m in fake_wechat.state.messages_for("webhook:robot-key")]
    assert robot == {"msgtype": "markdown", "markdown": {"content": "**机关党委发布 #12**"}}


@pytest.mark.parametrize("fault", ["45009", "http500", "timeout"])
def test_transient_faults_are_retried_and_everything_arrives_once(wechat_runtime, fake_wechat, clock, fault):
    users = _users(1500)
    _enqueue(wechat_runtime, users)
    if fault == "45009":
        fake_wechat.state.fail_next("message/send", errcode=45009)
    elif fault == "http500":
        fake_wechat.state.fail_next("message/send", http_status=500)
    else:  # the server acts, then answers after the client's 1 s timeout
        fake_wechat.state.delay_next("message/send", 1.5)
    worker.drain_once(wechat_runtime)
    statuses = _statuses(wechat_runtime)
    assert statuses == {OutboxStatus.PENDING: 1000, OutboxStatus.SENT: 500}
    retried = [r for r in _rows(wechat_runtime) if r.status is OutboxStatus.PENDING]
    assert all(r.attempts == 1 and r.last_error and r.next_attempt_at > clock.current for r in retried)

    assert worker.drain_once(wechat_runtime) == 0  # not yet due: back-off
    clock.advance(minutes=1)
    assert worker.drain_once(wechat_runtime) == 1000
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 1500}
    assert {r.attempts for r in _rows(wechat_runtime) if r.recipient in set(r2.recipient for r2 in retried)} == {2}
    assert all(fake_wechat.state.count(u) == 1 for u in users)
    assert fake_wechat.state.stats()["same_content_twice"] == 0


def test_an_expired_token_is_refreshed_within_the_same_round(wechat_runtime, fake_wechat):
    _enqueue(wechat_runtime, _users(10))
    worker.drain_once(wechat_runtime)
    fake_wechat.state.expire_tokens()
    _enqueue(wechat_runtime, _users(10, "member"))
    assert worker.drain_once(wechat_runtime) == 10
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 20}
    assert fake_wechat.state.tokens_issued["wecom"] == 2
    assert {r.attempts for r in _rows(wechat_runtime)} == {1}


def test_users_outside_the_visible_range_fail_with_the_reason(wechat_runtime, fake_wechat):
    fake_wechat.state.set_known_users(["zhangsan"])
    _enqueue(wechat_runtime, ["zhangsan", "ghost"], subject_type="nudge")
    _enqueue(wechat_runtime, ["phantom"], text_payload("另一条"))
    worker.drain_once(wechat_runtime)
    by_recipient = {r.recipient: r for r in _rows(wechat_runtime)}
    assert by_recipient["zhangsan"].status is OutboxStatus.SENT
    assert by_recipient["ghost"].status is OutboxStatus.FAILED
    assert "invaliduser" in by_recipient["ghost"].last_error
    assert by_recipient["phantom"].status is OutboxStatus.FAILED
    assert "81013" in by_recipient["phantom"].last_error
    with wechat_runtime.db.session() as session:
        events = list(session.scalars(select(Event).order_by(Event.id)))
    failed = [e for e in events if e.kind == "outbox.failed"]
    assert {e.data["outbox_id"] for e in failed} == {by_recipient["ghost"].id, by_recipient["phantom"].id}
    assert [(e.subject_type, e.kind) for e in events if e.kind == "outbox.sent"] == [("nudge", "outbox.sent")]


def test_a_worker_killed_between_send_and_mark_loses_nothing_and_sends_nothing_twice(
        wechat_runtime, fake_wechat, clock, monkeypatch):
    users = _users(2500)
    _enqueue(wechat_runtime, users)
    drain_killed_in(wechat_runtime, monkeypatch, "mark")
    assert _statuses(wechat_runtime) == {OutboxStatus.SENDING: 2500}
    assert all(fake_wechat.state.count(u) == 1 for u in users)  # the fake did get them

    assert worker.drain_once(wechat_runtime) == 0  # leased: nobody touches them
    clock.advance(seconds=worker.LEASE.total_seconds() + 1)
    assert worker.drain_once(wechat_runtime) == 2500  # reclaimed and resent …
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 2500}
    assert all(fake_wechat.state.count(u) == 1 for u in users)  # … and WeCom's duplicate check dropped them
    assert fake_wechat.state.stats()["suppressed_duplicates"] == 2500
    assert {r.attempts for r in _rows(wechat_runtime)} == {2}


def test_rows_reclaimed_too_often_are_failed_not_resent(wechat_runtime, fake_wechat, clock):
    _enqueue(wechat_runtime, ["zhangsan"], attempts=worker.MAX_ATTEMPTS)
    with wechat_runtime.db.session() as session:
        session.execute(OutboxMessage.__table__.update().values(status=OutboxStatus.SENDING))
    worker.drain_once(wechat_runtime)
    (row,) = _rows(wechat_runtime)
    assert row.status is OutboxStatus.FAILED and "stopped" in row.last_error
    assert row.attempts == worker.MAX_ATTEMPTS  # the claim that found it worn is given back
    assert fake_wechat.state.count("zhangsan") == 0


def test_one_statement_claims_oldest_first_and_an_expired_lease_is_not_starved(wechat_runtime, clock):
    from sqlalchemy import event, update

    _enqueue(wechat_runtime, _users(10))
    _enqueue(wechat_runtime, ["stuck"], text_payload("另一条"))
    stuck = max(r.id for r in _rows(wechat_runtime))
    with wechat_runtime.db.session() as session:  # a dead worker's claim, its lease expired
        session.execute(update(OutboxMessage).where(OutboxMessage.id == stuck).values(
            status=OutboxStatus.SENDING, attempts=1, next_attempt_at=clock.current - worker.LEASE / 2))
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split()).upper())

    engine = wechat_runtime.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        rows, payloads, worn = worker.claim(wechat_runtime, clock.current, 3)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [r.id for r in rows] == [1, 2, stuck] and not worn  # the oldest due rows, sorted by id
    assert {r.id: r.attempts for r in rows} == {1: 1, 2: 1, stuck: 2}
    assert payloads == {NOTICE_KEY: NOTICE, content_key_of(OutboxChannel.WECOM, text_payload("另一条")): text_payload("另一条")}
    updates = [s for s in statements if s.startswith(("UPDATE", "WITH"))]
    assert len(updates) == 1 and "RETURNING" in updates[0]  # lock, lease and read in one statement
    assert len(statements) == 2  # … and the payloads
    if wechat_runtime.db.dialect == "postgresql":
        assert "FOR UPDATE SKIP LOCKED" in updates[0]
    claimed = {r.id: r for r in _rows(wechat_runtime) if r.status is OutboxStatus.SENDING}
    assert set(claimed) == {1, 2, stuck}
    assert {r.next_attempt_at for r in claimed.values()} == {clock.current + worker.LEASE}
    assert worker.claim(wechat_runtime, clock.current, 100)[0][0].id == 3  # the rest, leased rows not again


def test_delivery_outcomes_are_one_event_per_directive_and_mark(wechat_runtime, fake_wechat, clock):
    from models.directive import Delivery, DeliveryStatus, Directive
    from tests.factories import BRANCH_A, org, person, small_tree

    fake_wechat.state.set_known_users(["zhangwei", "liuyang", "lina", "chenjing"])
    with wechat_runtime.db.session() as session:
        people = small_tree(session)
        directive = Directive(organisation_id=org(session, "机关党委").id, issuer_id=people["top"].id, title="学习",
                              created_at=clock.current)
        session.add(directive)
        session.flush()
        recipients = [people[k] for k in ("sec_a", "zhangwei", "liuyang", "sec_b", "zhaolei")]
        recipients.append(person(session, "吴敏", "wumin", BRANCH_A))
        deliveries = [Delivery(directive_id=directive.id, person_id=p.id, organisation_id=p.memberships[0].organisation_id,
                               channel="wecom", status=DeliveryStatus.PENDING) for p in recipients]
        session.add_all(deliveries)
        session.flush()
        by_user = {p.wecom_userid: d.id for p, d in zip(recipients, deliveries, strict=True)}
        directive_id = directive.id
        now = clock.current
        for userid, delivery_id in by_user.items():
            session.add(OutboxMessage(channel=OutboxChannel.WECOM, recipient=userid, payload=NOTICE,
                                      content_key=NOTICE_KEY, status=OutboxStatus.PENDING, attempts=0,
                                      next_attempt_at=now, created_at=now, subject_type="delivery",
                                      subject_id=delivery_id))
    assert worker.drain_once(wechat_runtime, limit=3) == 3  # two rounds: two marks
    assert worker.drain_once(wechat_runtime, limit=3) == 3
    with wechat_runtime.db.session() as session:
        events = list(session.scalars(select(Event).where(Event.kind.like("delivery.%")).order_by(Event.id)))
        statuses = dict(session.execute(select(Delivery.id, Delivery.status)).all())
    assert {(e.kind, e.subject_type, e.subject_id) for e in events} == {
        ("delivery.sent", "directive", directive_id), ("delivery.failed", "directive", directive_id)}
    sent = [e for e in events if e.kind == "delivery.sent"]
    assert len(sent) == 2  # one per mark, not one per delivery
    assert sorted(d for e in sent for d in e.data["deliveries"]) == sorted(
        by_user[u] for u in ("lina", "zhangwei", "liuyang", "chenjing"))
    assert sum(e.data["count"] for e in sent) == 4
    (failed,) = [e for e in events if e.kind == "delivery.failed"]
    assert sorted(failed.data["deliveries"]) == sorted([by_user["zhaolei"], by_user["wumin"]])
    assert failed.data["count"] == 2 and "invaliduser" in failed.data["reason"]
    assert statuses == {**{by_user[u]: DeliveryStatus.SENT for u in ("lina", "zhangwei", "liuyang", "chenjing")},
                        by_user["zhaolei"]: DeliveryStatus.FAILED, by_user["wumin"]: DeliveryStatus.FAILED}


def test_transient_errors_give_up_after_max_attempts(wechat_runtime, fake_wechat, clock):
    _enqueue(wechat_runtime, ["zhangsan"], attempts=worker.MAX_ATTEMPTS - 1)
    fake_wechat.state.fail_next("message/send", errcode=45009)
    worker.drain_once(wechat_runtime)
    (row,) = _rows(wechat_runtime)
    assert row.status is OutboxStatus.FAILED
    assert row.last_error.startswith(f"已重试 {worker.MAX_ATTEMPTS} 次仍未发出：") and "45009" in row.last_error


def test_backoff_grows_with_jitter_and_a_cap():
    assert 4 <= worker.backoff_seconds(1) <= 6
    assert 8 <= worker.backoff_seconds(2) <= 12
    assert worker.backoff_seconds(30) <= worker.BACKOFF_CAP_SECONDS * 1.2
    assert worker.backoff_seconds(1, retry_after=120) == 120


def test_a_channel_that_is_not_configured_fails_its_rows(wechat_settings, fake_wechat, clock):
    runtime = Runtime.build(wechat_settings.with_overrides(mp=None), clock=clock)
    if hasattr(runtime.store, "prefix"):
        runtime.store.prefix = redis_prefix()
    _enqueue(runtime, ["openid-1"], channel=OutboxChannel.MP)
    worker.drain_once(runtime)
    (row,) = _rows(runtime)
    assert row.status is OutboxStatus.FAILED and row.last_error == "公众号发送通道未配置，请联系管理员"
    runtime.db.dispose()


def test_the_shared_rate_budget_holds_rows_for_the_next_minute(wechat_settings, fake_wechat, clock):
    runtime = Runtime.build(wechat_settings.with_overrides(wecom_rate_per_minute=2), clock=clock)
    if hasattr(runtime.store, "prefix"):
        runtime.store.prefix = redis_prefix()
    _enqueue(runtime, _users(2500))
    assert worker.drain_once(runtime) == 2000
    assert _sends(fake_wechat) == 2
    held = [r for r in _rows(runtime) if r.status is OutboxStatus.PENDING]
    assert len(held) == 500 and {r.attempts for r in held} == {0}  # not counted as an attempt
    assert worker.drain_once(runtime) == 0
    clock.advance(minutes=1)
    assert worker.drain_once(runtime) == 500
    assert _statuses(runtime) == {OutboxStatus.SENT: 2500}
    runtime.db.dispose()


def test_redis_going_away_mid_run_falls_back_to_in_process_limits(wechat_runtime, fake_wechat, clock):
    """A RedisStore whose server disappears (a closed port) answers from memory; the drain goes on."""
    store = RedisStore(REDIS_URL or "redis://127.0.0.1:1/0")
    store.prefix = redis_prefix()
    wechat_runtime.store = store
    users = _users(3000)
    _enqueue(wechat_runtime, users)
    assert worker.drain_once(wechat_runtime, limit=1000) == 1000
    broken = RedisStore("redis://127.0.0.1:1/0")
    store.client = broken.client  # Redis "stops"
    assert worker.drain_once(wechat_runtime, limit=1000) == 1000
    assert not store.available
    assert worker.drain_once(wechat_runtime, limit=1000) == 1000
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 3000}
    assert all(fake_wechat.state.count(u) == 1 for u in users)


def test_run_worker_drains_until_stopped(wechat_runtime, fake_wechat):
    _enqueue(wechat_runtime, _users(50))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_worker, args=(wechat_runtime, stop), kwargs={"idle_sleep": 0.05})
    thread.start()
    try:
        for _ in range(100):
            if _statuses(wechat_runtime) == {OutboxStatus.SENT: 50}:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 50}


@needs_postgres
def test_two_workers_at_once_never_claim_the_same_row(wechat_runtime, fake_wechat, monkeypatch):
    fake_wechat.state.duplicate_check = False  # so a double claim would show as a double delivery
    users = _users(6000)
    _enqueue(wechat_runtime, users)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    real_claim = worker.claim

    def recording_claim(runtime, now, limit):
        rows, payloads, worn = real_claim(runtime, now, limit)
        claimed[threading.current_thread().name].extend(r.id for r in rows)
        return rows, payloads, worn

    monkeypatch.setattr(worker, "claim", recording_claim)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run():
        try:
            start.wait()
            while worker.drain_once(wechat_runtime, limit=500):
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, name=name) for name in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert claimed["a"] and claimed["b"], "both workers should have taken part"
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == 6000
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 6000}
    assert all(fake_wechat.state.count(u) == 1 for u in users)


def test_the_parts_of_a_long_text_arrive_in_order_even_when_part_one_waits_out_a_retry(
        wechat_runtime, fake_wechat, clock):
    """Parts 2 and 3 are the same for both people, so their rows share calls; A's part 1 fails
    once (rate limit) and waits out its back-off: A's part 2 is held behind it, B's goes on."""
    from models.outbox import enqueue_parts

    shared = [text_payload("（2/3）\n第二部分"), text_payload("（3/3）\n第三部分")]
    with wechat_runtime.db.session() as session:
        for user in ("usera", "userb"):
            enqueue_parts(session, OutboxChannel.WECOM, user, [text_payload(f"（1/3）\n{user} 的第一部分"), *shared],
                          at=clock.current)
    fake_wechat.state.fail_next("message/send", errcode=45009)  # the round's first call: A's part 1
    worker.drain_once(wechat_runtime)
    by_user = {(r.recipient, r.payload["text"][:5]): r.status for r in _rows(wechat_runtime)}
    assert by_user[("usera", "（1/3）")] is OutboxStatus.PENDING and by_user[("usera", "（2/3）")] is OutboxStatus.HELD
    assert by_user[("userb", "（1/3）")] is OutboxStatus.SENT and by_user[("userb", "（2/3）")] is OutboxStatus.PENDING
    _drain_until_idle(wechat_runtime, clock, step_minutes=2)
    for user in ("usera", "userb"):
        got = [m["body"]["text"]["content"] for m in fake_wechat.state.messages_for(user)]
        assert [t[:5] for t in got] == ["（1/3）", "（2/3）", "（3/3）"], got
    assert _statuses(wechat_runtime) == {OutboxStatus.SENT: 6}
