"""A meeting's page and 我的 after 改期 and 取消: a moved meeting shows its new time (and the one it
had), a cancelled one says 已取消 with the time and reason, offers neither 签到 nor 请假, lists no one
as 未签到 and invites no minutes (nor does 纪要 take any)."""

from __future__ import annotations

from sqlalchemy import func, select

from models.meeting import LeaveRequest
from tests.factories import small_tree


def test_a_moved_then_cancelled_meeting_says_so_on_its_page_and_leaves_my_page(browser, chat, db, clock):
    with db.session() as s:
        small_tree(s)
    assert chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室").startswith("已安排 #1")
    assert chat.say("lina", "改期 1 11月25日19:00").startswith("已将会议 #1")
    browser.login("lina")
    page = browser.client.get("/m/meeting/1").get_data(as_text=True)
    assert "2026年11月25日 19:00" in page and "已改期，原定 2026年11月22日 19:00" in page
    assert "签到时间 2026年11月25日 18:30 至" in page and "已取消" not in page

    browser.client.delete_cookie("zt_session", path="/m/")
    browser.login("zhangwei")
    opened = browser.client.get("/m/").get_data(as_text=True)
    assert "2026年11月25日 19:00" in opened and 'name="action" value="leave"' in opened

    clock.advance(minutes=20)
    assert chat.say("lina", "取消 1 与上级会议冲突").startswith("已取消会议 #1")
    mine = browser.client.get("/m/").get_data(as_text=True)
    assert "支部党员大会" not in mine and 'value="leave"' not in mine and "没有即将召开的会议" in mine
    # A 请假 posted from a page opened before the cancellation changes nothing and says why.
    browser.post("/m/act", opened, action="leave", number="1", text="出差在外", back="/m/")
    assert "已于 2026年11月21日 20:05 取消，无需请假" in browser.client.get("/m/").get_data(as_text=True)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LeaveRequest)) == 0

    browser.client.delete_cookie("zt_session", path="/m/")
    browser.login("lina")
    page = browser.client.get("/m/meeting/1").get_data(as_text=True)
    assert "已取消" in page and "于 2026年11月21日 20:05 取消，原因：与上级会议冲突。无需签到，也无需请假。" in page
    assert "签到时间" not in page and 'value="leave"' not in page
    # Nobody will check in to it: the invitees are listed without 未签到, and no minutes are invited.
    assert "原定参加 3 人" in page and "未签到" not in page and "应到" not in page
    assert "会议已取消，没有纪要。" in page and "纪要 1 内容" not in page
    for said in ("纪要 1 补记", "纪要 1"):
        assert chat.say("lina", said) == ("#1 综合处党支部 支部党员大会（2026年11月25日 19:00）已于 "
                                          "2026年11月21日 20:05 取消，没有召开，不记录纪要。")
    mine = browser.client.get("/m/").get_data(as_text=True)
    assert "2026年11月25日 19:00 · 已取消" in mine
