"""Wording shared by pushes, reminders and replies comes from `bot.texts`, rendered before the
outbox row is written: a meeting without a place says 地点另行通知 once in every message about it,
and a push resent after a timeout is byte for byte the first send, through the real callback
endpoint, the scheduler tick, the worker and the fake WeCom server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import worker
from bot.texts import meeting as meeting_texts
from bot.texts import reminders as reminder_texts
from models.identity import Channel
from models.meeting import Meeting
from models.outbox import OutboxMessage
from scheduler.jobs import tick
from tests.factories import small_tree


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 Shanghai wall-clock time as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def wired(wired_chat):
    runtime, _chat = wired_chat
    with runtime.db.session() as s:
        small_tree(s)
    return wired_chat


def _reminders_to(runtime, userid: str) -> list[str]:
    with runtime.db.session() as s:
        return [m.payload["text"] for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == userid, OutboxMessage.subject_type == "reminder")
            .order_by(OutboxMessage.id))]


def test_a_meeting_without_a_place_says_so_once_in_every_message(wired, fake_wechat, clock):
    runtime, chat = wired
    said = [chat.say("lina", "会议 党课 后天19:00")]  # Monday 23 November
    worker.drain_once(runtime)
    (card,) = [m["body"]["template_card"] for m in fake_wechat.state.messages_for("zhangwei")]
    said.append(card["main_title"]["title"] + "\n" + card["sub_title_text"])
    with runtime.db.session() as s:
        said.append(meeting_texts.notice(s.get(Meeting, 1), Channel.MP, runtime.settings.tz)["text"])
    said += [chat.say("lina", "会议码 1"), chat.say("zhangwei", "待办")]
    clock.set(local(22, 19))
    tick(runtime)  # the day before
    clock.set(local(23, 18))
    tick(runtime)  # 1 h before
    reminders = _reminders_to(runtime, "zhangwei")
    assert len(reminders) == 2 and "将于" in reminders[0] and "1 小时后" in reminders[1]
    for text in said + reminders:
        assert text.count("地点另行通知") == 1 and "地点：" not in text, text


def test_a_push_resent_after_a_timeout_is_the_first_send_byte_for_byte(wired, fake_wechat, clock,
                                                                       monkeypatch):
    runtime, chat = wired
    chat.say("lina", "会议 党课 明天19:00 党员活动室")
    worker.drain_once(runtime)  # the notices
    clock.set(local(22, 18))
    tick(runtime)  # the 1 h reminder, rendered and queued
    (stored,) = _reminders_to(runtime, "zhangwei")
    fake_wechat.state.delay_next("message/send", 1.5)  # the server acts, then answers after the timeout
    worker.drain_once(runtime)
    monkeypatch.setattr(reminder_texts, "meeting_reminder", lambda *_a, **_k: "措辞已改")  # nothing re-renders
    clock.advance(minutes=1)
    worker.drain_once(runtime)

    sends = [c.body for c in fake_wechat.state.calls
             if c.path == "message/send" and "zhangwei" in c.body["touser"].split("|") and c.msgtype == "text"]
    assert len(sends) == 2 and sends[0]["text"] == sends[1]["text"] == {"content": stored}
    assert "【会议提醒】#1 综合处党支部 党课 1 小时后" in stored
    assert fake_wechat.state.count("zhangwei") == 2  # the notice, and the reminder once
    assert fake_wechat.state.stats()["suppressed_duplicates"] >= 1  # WeCom's duplicate check saw the same bytes
