"""概况 for liaison officers, through the real callback endpoint."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models.meeting import MeetingType, close_meeting, schedule
from models.outbox import text_payload
from models.person import Person
from tests.factories import BRANCH_A, org, small_tree


def _meeting(db, clock, branch, by, meeting_type, starts_in):
    with db.session() as s:
        convener = s.scalar(select(Person).where(Person.wecom_userid == by))
        m = schedule(s, branch=org(s, branch), meeting_type=meeting_type, starts_at=clock() + starts_in,
                     convener=convener, now=clock(), render=lambda *_: text_payload("会议通知"))
        return m.id


def test_overview_lists_directives_meetings_study_and_overdue_per_organisation(chat, db, clock):
    with db.session() as s:
        small_tree(s)
    assert chat.say("wangsj", "发布 年终总结\n请各支部报送。\n截止 2026-11-22 12:00").startswith("已发布 #1")
    assert chat.say("wangsj", "发布 安全检查\n自查。\n截止 2026-12-10 17:00").startswith("已发布 #2")
    assert chat.say("wangsj", "学习资料 党章第一章 https://example.org/1 截止 2026-12-20 17:00").startswith("已")
    chat.say("lina", "收到 1")
    chat.say("zhangwei", "收到 2")
    chat.say("chenjing", "已学 3")
    # A 支委会 held in branch A this month (started 20 minutes ago, closed now).
    clock.advance(hours=1)
    meeting_id = _meeting(db, clock, BRANCH_A, "lina", MeetingType.COMMITTEE, timedelta(minutes=5))
    clock.advance(minutes=25)
    with db.session() as s:
        from models.meeting import Meeting

        close_meeting(s, s.get(Meeting, meeting_id), by=None, now=clock())
    clock.advance(days=1)  # 2026-11-22 21:10: #1 is overdue

    reply = chat.say("sunll", "概况")
    lines = reply.split("\n")
    assert lines[0] == "概况（2026年11月22日 21:10）"
    a = lines.index("【综合处党支部】")
    b = lines.index("【财务处党支部】")
    section_a, section_b = lines[a:b], lines[b:]
    assert section_a[1] == "通知：#2「安全检查」已确认 1/3（33%），截止 2026年12月10日 17:00"
    assert "支委会 1/1" in section_a[2] and "主题党日 0/1" in section_a[2] and "本季度" in section_a[2]
    assert "党小组会" not in section_a[2]  # the branch has no groups
    assert section_a[3] == "学习：#3「党章第一章」已学 0/3（0%）"
    # Overdue: the directive, then last month's required meetings not held (nothing was held in October).
    assert section_a[4] == ("逾期：#1「年终总结」截止 2026年11月22日 12:00，2 人未确认；"
                            "2026年10月支委会未召开：综合处党支部；2026年10月主题党日未召开：综合处党支部")
    assert "支委会 0/1" in section_b[2]
    assert section_b[3] == "学习：#3「党章第一章」已学 1/2（50%）"
    assert section_b[4].startswith("逾期：#1「年终总结」截止 2026年11月22日 12:00，2 人未确认；2026年10月支委会未召开")
    assert len(reply.encode()) < 2048


def test_overview_is_for_liaisons_only(chat, db):
    with db.session() as s:
        small_tree(s)
    assert "不能使用「概况」" in chat.say("zhangwei", "概况")
    assert "概况" in chat.say("sunll", "帮助")


def test_overview_leaves_the_calendar_to_the_administrator(chat, db, clock):
    """The calendar's gap is the administrator's to close (`python -m bot holidays`, the start-up
    warning), not something every liaison is told in 概况."""
    with db.session() as s:
        small_tree(s)
    clock.advance(days=30)  # 2026-12-21: next month is 2027, which the built-in calendar does not cover
    reply = chat.say("sunll", "概况")
    assert "节假日" not in reply and "周一至周五" not in reply
    assert "通知：无进行中的通知" in reply

