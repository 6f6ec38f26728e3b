"""改期 and 撤回 update the WeCom cards already sent, through the real endpoint, the worker and the
fake WeCom server (on the test's clock): those who still owe an item get a fresh card, those done
see their card replaced with the new deadline, and every response code is spent once, never
after 72 hours; a code WeCom refuses ends its row as failed with the reason, once."""

from __future__ import annotations

import io
import re

from sqlalchemy import select

from bot import worker
from models.cards import queue_update, update_payload
from models.event import Event
from models.identity import ChannelIdentity
from models.outbox import OutboxMessage, OutboxStatus
from models.person import Role
from tests.bot.conftest import wechat_settings  # noqa: F401  (fixture)
from tests.factories import person
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (fixture)
from tests.handlers.test_directive_delivery import wired  # noqa: F401  (fixture)

PUBLISH = "发布 报送年度总结\n请各支部报送。\n截止 12月1日17:00"
LATER = "改期 1 12月3日17:00"
EARLIER = "改期 1 11月28日17:00"
RECIPIENTS = 45  # the small tree's task recipients and the 40 members of `wired`


def _on_test_clock(fake, clock):
    fake.state.clock = clock.timestamp  # response codes (and tokens) age with the test's clock
    return fake.state


def _updates(state, user=None) -> list[dict]:
    """Every update_template_card call the fake accepted (for `user`), oldest first."""
    calls = [c for c in state.calls if c.path == "message/update_template_card"]
    return [c.body for c in calls if user is None or user in c.body["userids"]]


def _cards(state, user) -> list[dict]:
    return [m["body"]["template_card"] for m in state.messages_for(user) if m["msgtype"] == "template_card"]


def _texts(state, user) -> list[str]:
    return [m["body"]["text"]["content"] for m in state.messages_for(user) if m["msgtype"] == "text"]


def _assert_every_code_once_and_nothing_failed(runtime, state) -> None:
    codes = [body["response_code"] for body in _updates(state)]
    assert len(codes) == len(set(codes))
    # Every update request the fake received was accepted: none refused (40058 or otherwise).
    assert state.requests["message/update_template_card"] == len(codes)
    with runtime.db.session() as s:
        failed = s.scalars(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)).all()
        assert failed == []
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.status != OutboxStatus.SENT)).all() == []


def test_moved_later_the_done_see_the_new_deadline_on_their_card_and_the_others_get_a_new_card(
        wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    assert "已确认收到 #1" in chat.tap("member03", "directive-1", "ack:1")
    assert chat.say("member05", "收到 1").startswith("已确认收到 #1")
    worker.drain_once(runtime)
    [tapped] = _updates(state)  # the tap's own update: 已确认 with the time
    assert tapped["button"]["replace_name"] == "已确认 2026年11月21日 19:45"

    answered = {done: _texts(state, done) for done in ("member03", "member05")}  # the tap's answer
    clock.advance(minutes=30)
    reply = chat.say("wangsj", LATER)
    assert reply == ("已将通知 #1「报送年度总结」的截止时间改为 2026年12月3日 17:00（原 2026年12月1日 17:00）。"
                     f"已通知 {RECIPIENTS - 2} 人，提醒按新时间重新安排。")
    worker.drain_once(runtime)

    for done in ("member03", "member05"):
        assert len(_cards(state, done)) == 1 and _texts(state, done) == answered[done]  # no push at all
        update = _updates(state, done)[-1]
        assert "button" not in update
        card = update["template_card"]
        assert card["card_type"] == "button_interaction" and card["replace_text"] == "已确认"
        assert "截止：2026年12月3日 17:00" in card["sub_title_text"]
        assert "task_id" not in card
    whole = _updates(state, "member03")[-1]
    assert sorted(whole["userids"]) == ["member03", "member05"]  # one call for the one send's code
    assert whole["response_code"] != tapped["response_code"]

    first, fresh = _cards(state, "member01")
    assert fresh["task_id"] != first["task_id"]
    assert fresh["sub_title_text"].startswith("【改期】截止时间改为 2026年12月3日 17:00（原截止 2026年12月1日 17:00）")
    assert [b["key"] for b in fresh["button_list"]] == ["ack:1"]
    assert _updates(state, "member01") == []
    with runtime.db.session() as s:
        [event] = s.scalars(select(Event).where(Event.kind == "directive.rescheduled")).all()
        assert event.data["cards_updated"] == 2 and event.data["told"] == RECIPIENTS - 2

    # The fresh card's button works: its tap greys that card out with its own code.
    assert "已确认收到 #1" in chat.tap("member01", fresh["task_id"], "ack:1")
    worker.drain_once(runtime)
    assert _updates(state, "member01")[-1]["button"]["replace_name"] == "已确认 2026年11月21日 20:15"
    _assert_every_code_once_and_nothing_failed(runtime, state)


def test_moved_earlier_the_done_are_told_and_their_card_shows_the_new_deadline(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    chat.tap("member03", "directive-1", "ack:1")
    worker.drain_once(runtime)
    assert "已通知 45 人" in chat.say("wangsj", EARLIER)
    worker.drain_once(runtime)
    _answer, told = _texts(state, "member03")
    assert "截止时间改为 2026年11月28日 17:00（原截止 2026年12月1日 17:00）" in told and "您已确认，无需再办" in told
    card = _updates(state, "member03")[-1]["template_card"]
    assert "截止：2026年11月28日 17:00" in card["sub_title_text"] and card["replace_text"] == "已确认"
    assert len(_cards(state, "member03")) == 1  # a text and the card updated, not a second card
    assert len(_cards(state, "member01")) == 2 and _texts(state, "member01") == []
    _assert_every_code_once_and_nothing_failed(runtime, state)


def test_moved_twice_then_withdrawn_every_code_is_spent_once(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    chat.tap("member03", "directive-1", "ack:1")  # the first send's code: member03's card at 改期
    worker.drain_once(runtime)
    clock.advance(minutes=10)
    chat.say("wangsj", LATER)
    worker.drain_once(runtime)
    chat.say("member07", "收到 1")  # on the second card: its send's code updates it at the next 改期
    clock.advance(minutes=10)
    chat.say("wangsj", EARLIER)
    worker.drain_once(runtime)
    clock.advance(minutes=10)
    assert chat.say("wangsj", "撤回 1 重复发布").startswith("已撤回通知 #1")
    worker.drain_once(runtime)

    updates = _updates(state)
    assert len(updates) == 4  # the tap, 改期 (member03), 改期 (member07), 撤回 (the third cards)
    assert _updates(state, "member07")[-1]["template_card"]["sub_title_text"].count("2026年11月28日 17:00") == 2
    withdrawn = updates[-1]
    assert withdrawn["button"]["replace_name"] == "已撤回 2026年11月21日 20:15"
    assert len(withdrawn["userids"]) == RECIPIENTS - 2 and "member03" not in withdrawn["userids"]
    assert len(_cards(state, "member01")) == 3
    # member03's and member07's codes are spent: no update names them again; the 【撤回】 text tells them.
    assert "【撤回】" in _texts(state, "member03")[-1] and "【撤回】" in _texts(state, "member07")[-1]
    with runtime.db.session() as s:
        [event] = s.scalars(select(Event).where(Event.kind == "directive.withdrawn")).all()
        assert event.data["cards_updated"] == RECIPIENTS - 2
    _assert_every_code_once_and_nothing_failed(runtime, state)


def test_cards_older_than_72_hours_are_left_alone(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    chat.say("member03", "收到 1")
    clock.advance(hours=71, minutes=30)  # inside 72 h, but too close to it for an update to be sure
    assert "已通知 44 人" in chat.say("wangsj", LATER)
    worker.drain_once(runtime)
    assert _updates(state) == []  # member03's only card can no longer be updated: no call
    assert len(_cards(state, "member01")) == 2
    clock.advance(hours=1)
    chat.say("wangsj", "撤回 1")
    worker.drain_once(runtime)
    [withdrawn] = _updates(state)  # only the fresh cards' code; the first send's has expired
    assert len(withdrawn["userids"]) == RECIPIENTS - 1
    _assert_every_code_once_and_nothing_failed(runtime, state)


def test_a_code_wecom_refuses_fails_its_rows_once_with_the_reason(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    expired = state.issue_response_code()
    clock.advance(hours=73)
    with runtime.db.session() as s:
        assert queue_update(s, update_payload(expired, "已撤回"), [("member01", None)], at=clock(),
                            purpose="withdrawn", subject=("directive", None)) == 1
        # The same code again queues nothing: it is spent from the moment it is queued.
        assert queue_update(s, update_payload(expired, "已撤回"), [("member02", None)], at=clock(),
                            purpose="withdrawn", subject=("directive", None)) == 0
    assert worker.drain_once(runtime) == 1
    with runtime.db.session() as s:
        [row] = s.scalars(select(OutboxMessage)).all()
        assert row.status is OutboxStatus.FAILED and row.attempts == 1
        assert row.last_error.startswith("卡片更新码已用过或已超过 72 小时，企业微信未更新卡片（40058")
    clock.advance(minutes=15)
    assert worker.drain_once(runtime) == 0  # not retried
    assert state.requests["message/update_template_card"] == 1 and _updates(state) == []


def test_a_study_item_moved_later_keeps_its_confirmed_cards_greyed_as_studied(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    chat.say("wangsj", "学习资料 党章第一章 https://example.cn/a 截止 12月5日")
    worker.drain_once(runtime)
    chat.tap("member03", "study-1", "study:1")
    worker.drain_once(runtime)
    clock.advance(minutes=5)
    chat.say("wangsj", "改期 1 12月8日")
    worker.drain_once(runtime)
    card = _updates(state, "member03")[-1]["template_card"]
    assert card["replace_text"] == "已学" and "截止：2026年12月8日 23:59" in card["sub_title_text"]
    fresh = _cards(state, "member01")[-1]
    assert fresh["sub_title_text"].startswith("【改期】截止时间改为 2026年12月8日 23:59（原截止 2026年12月5日 23:59）")
    assert [b["key"] for b in fresh["button_list"]] == ["study:1"]
    _assert_every_code_once_and_nothing_failed(runtime, state)


def test_a_card_update_goes_out_in_one_call_even_past_the_rounds_claim_limit(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    code = state.issue_response_code()
    people = [(f"member{i:02d}", None) for i in range(30)]
    with runtime.db.session() as s:
        queue_update(s, update_payload(code, "已撤回"), people, at=clock(), purpose="withdrawn",
                     subject=("directive", None))
    with runtime.db.session() as s:
        [row] = s.scalars(select(OutboxMessage)).all()  # one row: a claim has it whole or not at all
        assert row.payload["recipients"] == [user for user, _ in people]
    worker.drain_once(runtime, limit=10)
    [call] = _updates(state)
    assert sorted(call["userids"]) == sorted(user for user, _ in people)
    _assert_every_code_once_and_nothing_failed(runtime, state)


def test_the_matter_file_words_each_card_update_as_one_line_in_chinese(wired, fake_wechat, clock):  # noqa: F811
    """A 45-person directive moved (改期) and withdrawn (撤回): the file says once per update what
    the cards now show and for how many, a refused update with its reason in words; no blank
    记录 and no English anywhere in its steps."""
    from docx import Document

    from bot.reports.docx_file import matter_docx
    from bot.reports.matter import matter_of
    from bot.timefmt import SHANGHAI as TZ

    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    chat.tap("member03", "directive-1", "ack:1")
    chat.say("member05", "收到 1")
    worker.drain_once(runtime)
    clock.advance(minutes=30)
    chat.say("wangsj", LATER)
    worker.drain_once(runtime)
    clock.advance(minutes=10)
    with runtime.db.session() as s:  # member07 has left the app's visible range: WeCom refuses that one
        state.set_known_users([u for u in s.scalars(select(ChannelIdentity.external_id)) if u != "member07"])
    assert chat.say("wangsj", "撤回 1 重复发布").startswith("已撤回通知 #1")
    worker.drain_once(runtime)
    expired = state.issue_response_code()  # one more update, refused: its code is too old
    with runtime.db.session() as s:
        directive_id = s.scalar(select(Event.subject_id).where(Event.kind == "directive.withdrawn"))
    clock.advance(hours=73)
    with runtime.db.session() as s:
        queue_update(s, update_payload(expired, "已撤回"), [("member09", None)], at=clock(), purpose="withdrawn",
                     subject=("directive", directive_id))
    worker.drain_once(runtime)

    with runtime.db.session() as s:
        steps = [step.text for step in matter_of(s, 1, TZ).ordered_steps()]
        data = matter_docx(matter_of(s, 1, TZ), TZ)
    moved = steps.index("改期，新截止时间 2026年12月3日 17:00（原 2026年12月1日 17:00）")
    assert steps[moved + 1] == "卡片已更新为新的截止时间（按钮显示「已确认」），共 2 人"  # the two done
    withdrawn = [t for t in steps if t.startswith("卡片已更新为「已撤回 2026年11月21日 20:25」")]
    assert withdrawn == [f"卡片已更新为「已撤回 2026年11月21日 20:25」，共 {RECIPIENTS - 3} 人，另有 1 人未能更新"]
    assert "发送失败 1 人（党员07），原因：企业微信账号不存在或不在应用可见范围内" in steps  # its 【撤回】 text
    assert "卡片未能更新为「已撤回」，共 1 人，原因：卡片更新码已用过或已超过 72 小时，企业微信未更新卡片" in steps
    assert not [t for t in steps if t.startswith("记录")]
    assert not [t for t in steps if re.search("[A-Za-z]", t)]
    table = next(t for t in Document(io.BytesIO(data)).tables if t.rows[0].cells[0].text == "时间")
    shown = [row.cells[1].text for row in table.rows[1:]]
    assert [t for t in shown if "卡片" in t] == [t for t in steps if "卡片" in t]


def test_a_copy_to_a_general_branch_secretary_is_told_in_words_not_sent_a_card(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    state = _on_test_clock(fake_wechat, clock)
    with runtime.db.session() as s:
        person(s, "周总支", "zhouzz", "机关党委/第一党总支", Role.SECRETARY)
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    assert len(_texts(state, "zhouzz")) == 1  # the 【抄送】
    chat.say("wangsj", LATER)
    worker.drain_once(runtime)
    assert _cards(state, "zhouzz") == [] and "【改期】" in _texts(state, "zhouzz")[-1]
    assert len(_cards(state, "member01")) == 2
    _assert_every_code_once_and_nothing_failed(runtime, state)
