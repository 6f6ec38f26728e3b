"""待办 shows every time in the configured zone (`BOT_TIMEZONE`), meetings included."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.factories import small_tree


@pytest.fixture
def settings(settings):
    return replace(settings, timezone="Asia/Tokyo")  # UTC+9: one hour ahead of Shanghai


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


def test_todo_shows_meeting_times_in_the_configured_zone(chat, people):
    # The clock is 2026-11-21 11:45 UTC, 20:45 in Tokyo: "明天19:00" is 19:00 Tokyo time.
    reply = chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    assert "2026年11月22日 19:00" in reply
    todo = chat.say("zhangwei", "待办")
    assert ("综合处党支部 支部党员大会，2026年11月22日 19:00 开始（党员活动室），"
            "签到时间 2026年11月22日 18:30 起，截止 2026年11月22日 19:30") in todo
    assert "截至 2026年11月21日 20:45" in todo
